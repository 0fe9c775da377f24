using StratoVirt.Devices.State;

namespace StratoVirt.Tests.Devices;

/// <summary>The saved-state records: their binary layout, and the checks a restore makes.</summary>
[Trait("Level", "Unit")]
public sealed class StateRecordTests
{
    /// <summary>A component with one field of each kind the writer knows.</summary>
    private sealed class Sample : IStateful
    {
        public byte B;
        public bool Flag;
        public ushort U16;
        public uint U32;
        public ulong U64;
        public long I64;
        public byte[] Bytes = [];
        public string? Text, Missing;

        public string StateName => "sample";
        public int StateVersion { get; init; } = 3;

        public void SaveState(StateWriter w)
        {
            w.WriteByte(B);
            w.WriteBool(Flag);
            w.WriteUInt16(U16);
            w.WriteUInt32(U32);
            w.WriteUInt64(U64);
            w.WriteInt64(I64);
            w.WriteBytes(Bytes);
            w.WriteString(Text);
            w.WriteString(Missing);
        }

        public void RestoreState(StateReader r)
        {
            (B, Flag, U16, U32, U64, I64) = (r.ReadByte(), r.ReadBool(), r.ReadUInt16(), r.ReadUInt32(), r.ReadUInt64(), r.ReadInt64());
            (Bytes, Text, Missing) = (r.ReadBytes(), r.ReadString(), r.ReadString());
        }
    }

    private static Sample Filled() => new()
    {
        B = 0xAB, Flag = true, U16 = 0xBEEF, U32 = 0xDEAD_BEEF, U64 = 0x0123_4567_89AB_CDEF, I64 = -2,
        Bytes = [1, 2, 3], Text = "vdä", Missing = null,
    };

    [Fact]
    public void EveryFieldKindSurvivesARoundTrip()
    {
        var record = StateRecord.Capture(Filled());
        Assert.Equal(("sample", 3), (record.Name, record.Version));
        var copy = new Sample();
        record.Restore(copy);
        Assert.Equal((0xAB, true, 0xBEEF, 0xDEAD_BEEFu, 0x0123_4567_89AB_CDEFUL, -2L),
            ((int)copy.B, copy.Flag, (int)copy.U16, copy.U32, copy.U64, copy.I64));
        Assert.Equal([1, 2, 3], copy.Bytes);
        Assert.Equal("vdä", copy.Text);
        Assert.Null(copy.Missing);
    }

    [Fact]
    public void TheLayoutIsLittleEndianWithLengthPrefixes()
    {
        var w = new StateWriter();
        w.WriteUInt32(0x0102_0304);
        w.WriteString("ab");
        w.WriteString(null);
        Assert.Equal([4, 3, 2, 1, 2, 0, 0, 0, (byte)'a', (byte)'b', 0xFF, 0xFF, 0xFF, 0xFF], w.ToArray());
    }

    [Fact]
    public void RecordsNestInsideALargerOne()
    {
        var outer = new StateWriter();
        StateRecord.Capture(Filled()).WriteTo(outer);
        StateRecord.Capture(new Sample { U32 = 7 }).WriteTo(outer);
        var reader = new StateReader(outer.ToArray(), "snapshot");
        var first = StateRecord.ReadFrom(reader);
        var second = StateRecord.ReadFrom(reader);
        reader.ExpectEnd();
        var copy = new Sample();
        second.Restore(copy);
        Assert.Equal(7u, copy.U32);
        Assert.Equal(StateRecord.Capture(Filled()).Data, first.Data);
    }

    [Fact]
    public void AnotherComponentsOrVersionsRecordIsRefused()
    {
        var record = StateRecord.Capture(Filled());
        Assert.Equal("sample state version 3 is not supported (this build reads version 4)",
            Assert.Throws<StateException>(() => record.Restore(new Sample { StateVersion = 4 })).Message);
        Assert.Equal("a other state record cannot restore sample",
            Assert.Throws<StateException>(() => (record with { Name = "other" }).Restore(new Sample())).Message);
    }

    [Fact]
    public void ATruncatedRecordIsRefusedWhereverItEnds()
    {
        byte[] data = StateRecord.Capture(Filled()).Data;
        for (int length = 0; length < data.Length; length++)
        {
            var cut = new StateRecord("sample", 3, data[..length]);
            var e = Assert.Throws<StateException>(() => cut.Restore(new Sample()));
            Assert.StartsWith("sample state is truncated:", e.Message);
        }
    }

    [Fact]
    public void LeftOverBytesAndBadBooleansAreRefused()
    {
        var record = StateRecord.Capture(Filled());
        Assert.Equal("sample state: 1 bytes are left over after the record",
            Assert.Throws<StateException>(() => (record with { Data = [.. record.Data, 0] }).Restore(new Sample())).Message);
        byte[] badBool = [.. record.Data];
        badBool[1] = 2;
        Assert.Equal("sample state: 2 at offset 1 is not a boolean",
            Assert.Throws<StateException>(() => (record with { Data = badBool }).Restore(new Sample())).Message);
    }

    [Fact]
    public void ALengthBeyondTheRecordIsRefusedBeforeAnythingIsAllocated()
    {
        var w = new StateWriter();
        w.WriteUInt32(0x7FFF_FFFF); // a byte string that claims 2 GiB
        var reader = new StateReader(w.ToArray(), "sample");
        Assert.StartsWith("sample state is truncated: 2147483647 bytes wanted", Assert.Throws<StateException>(() => reader.ReadBytes()).Message);
    }
}
