using StratoVirt.Memory;

namespace StratoVirt.Tests.Unit;

/// <summary>Guest memory bounds checks and bus dispatch.</summary>
[Trait("Level", "Unit")]
public sealed class MemoryTests
{
    [Fact]
    public void AccessesInsideRegionsWork()
    {
        using var m = new GuestMemory([(0, 0x10000), (0x100000, 0x1000)]);
        m.WriteUInt64(0xFFF8, 0x1122334455667788);
        Assert.Equal(0x1122334455667788UL, m.ReadUInt64(0xFFF8));
        m.WriteByte(0x100FFF, 7);
        Assert.Equal(7, m.ReadByte(0x100FFF));
        Assert.Equal(0x11000UL, m.TotalSize);
    }

    [Theory]
    [InlineData(0xFFF9UL, 8UL)]        // straddles the end of region 0
    [InlineData(0x10000UL, 1UL)]       // in the gap
    [InlineData(0x100FFFUL, 2UL)]      // past the end of region 1
    [InlineData(ulong.MaxValue, 2UL)]  // wraps around
    [InlineData(0UL, 0x20000UL)]       // longer than the region
    public void AccessesOutsideRegionsAreRefused(ulong address, ulong length)
    {
        using var m = new GuestMemory([(0, 0x10000), (0x100000, 0x1000)]);
        Assert.False(m.TryGetSpan(address, length, out _));
        var e = Assert.Throws<GuestMemoryException>(() => m.GetSpan(address, length));
        Assert.Equal(address, e.Address);
    }

    [Fact]
    public void OverlappingRegionsAreRefused() =>
        Assert.Throws<ArgumentException>(() => new GuestMemory([(0, 0x2000), (0x1000, 0x1000)]));

    /// <summary>Regions are kept by address whatever the layout's order, and two at one address overlap.</summary>
    [Fact]
    public void RegionsAreOrderedByAddress()
    {
        using (var m = new GuestMemory([(0x100000, 0x1000), (0, 0x10000)]))
            Assert.Equal([0UL, 0x100000UL], [m.Regions[0].GuestAddress, m.Regions[1].GuestAddress]);
        Assert.Throws<ArgumentException>(() => new GuestMemory([(0x1000, 0x2000), (0x1000, 0x1000)]));
    }

    private sealed class Recorder : IBusDevice
    {
        public readonly List<(ulong Offset, byte[] Data)> Writes = [];
        public void Read(ulong offset, Span<byte> data) => data.Fill((byte)offset);
        public void Write(ulong offset, ReadOnlySpan<byte> data) => Writes.Add((offset, data.ToArray()));
    }

    [Fact]
    public void BusDispatchesByOffsetAndReadsUnclaimedAsOnes()
    {
        var bus = new IoBus("test");
        var a = new Recorder();
        var b = new Recorder();
        bus.Register(0x3F8, 8, a);
        bus.Register(0x60, 5, b);
        Assert.True(bus.Write(0x3FB, [0x80]));
        Assert.Equal(3UL, a.Writes[0].Offset);
        Assert.Equal([0x80], a.Writes[0].Data);
        Span<byte> buf = stackalloc byte[1];
        Assert.True(bus.Read(0x64, buf));
        Assert.Equal(4, buf[0]);
        Span<byte> four = stackalloc byte[4];
        Assert.False(bus.Read(0x1000, four));
        Assert.Equal(0xFFFFFFFFu, BitConverter.ToUInt32(four));
        Assert.False(bus.Write(0x3FF, [1, 2])); // straddles the end of the UART range
        Assert.Single(a.Writes);
    }

    [Fact]
    public void BusRefusesOverlapsAndUnregisters()
    {
        var bus = new IoBus("test");
        bus.Register(0x100, 0x10, new Recorder());
        Assert.Throws<ArgumentException>(() => bus.Register(0x108, 0x10, new Recorder()));
        Assert.True(bus.Unregister(0x100));
        Span<byte> b = stackalloc byte[1];
        Assert.False(bus.Read(0x100, b));
    }
}
