using System.Buffers.Binary;
using System.Text;
using StratoVirt.Boot.DeviceTree;

namespace StratoVirt.Tests.Boot;

/// <summary>The device tree blob writer, read back by an independent reader.</summary>
[Trait("Level", "Unit")]
public sealed class FdtWriterTests
{
    [Fact]
    public void EveryPropertyKindReadsBack()
    {
        var fdt = new FdtWriter();
        fdt.BeginNode("");
        fdt.PropertyU32("a", 0x11223344);
        fdt.PropertyU64("b", 0x0102030405060708);
        fdt.PropertyString("c", "hello");
        fdt.PropertyStringList("d", "x", "yz", "");
        fdt.PropertyBytes("e", [1, 2, 3]);
        fdt.PropertyCells("f", 7, 8, 9);
        fdt.PropertyEmpty("g");
        fdt.BeginNode("child@10");
        fdt.PropertyString("c", "päd"); // UTF-8, odd length
        fdt.EndNode();
        fdt.EndNode();
        var root = FdtReader.Parse(fdt.Finish());

        Assert.Equal("", root.Name);
        Assert.Equal([0x11223344u], root.Cells("a"));
        Assert.Equal(0x0102030405060708UL, BinaryPrimitives.ReadUInt64BigEndian(root.Properties["b"]));
        Assert.Equal(["hello"], root.Strings("c"));
        Assert.Equal(["x", "yz", ""], root.Strings("d"));
        Assert.Equal([1, 2, 3], root.Properties["e"]);
        Assert.Equal([7u, 8u, 9u], root.Cells("f"));
        Assert.Empty(root.Properties["g"]);
        Assert.Equal(["päd"], root.Child("child@10").Strings("c"));
    }

    [Fact]
    public void PropertyNamesAreStoredOnceAndPhandlesCount()
    {
        var fdt = new FdtWriter();
        Assert.Equal(1u, fdt.AllocatePhandle());
        Assert.Equal(2u, fdt.AllocatePhandle());
        fdt.BeginNode("");
        for (int i = 0; i < 5; i++)
        {
            fdt.BeginNode($"n{i}");
            fdt.PropertyString("compatible", "same");
            fdt.PropertyU32("phandle", (uint)i);
            fdt.EndNode();
        }
        fdt.EndNode();
        byte[] blob = fdt.Finish(bootCpu: 3);
        int stringsAt = (int)BinaryPrimitives.ReadUInt32BigEndian(blob.AsSpan(12));
        int stringsSize = (int)BinaryPrimitives.ReadUInt32BigEndian(blob.AsSpan(32));
        Assert.Equal("compatible\0phandle\0", Encoding.ASCII.GetString(blob, stringsAt, stringsSize));
        Assert.Equal(3u, BinaryPrimitives.ReadUInt32BigEndian(blob.AsSpan(28)));
        Assert.Equal(5, FdtReader.Parse(blob).Children.Count);
    }

    [Fact]
    public void MisuseIsRefused()
    {
        var fdt = new FdtWriter();
        Assert.Throws<InvalidOperationException>(() => fdt.PropertyU32("x", 1));
        Assert.Throws<InvalidOperationException>(() => fdt.BeginNode("notroot"));
        Assert.Throws<InvalidOperationException>(() => fdt.EndNode());
        fdt.BeginNode("");
        Assert.Throws<ArgumentException>(() => fdt.BeginNode("a/b"));
        Assert.Throws<ArgumentException>(() => fdt.BeginNode(""));
        Assert.Throws<ArgumentException>(() => fdt.PropertyString("s", "nul\0inside"));
        fdt.BeginNode("child");
        fdt.EndNode();
        Assert.Throws<InvalidOperationException>(() => fdt.PropertyU32("late", 1));
        Assert.Throws<InvalidOperationException>(() => fdt.Finish());
        fdt.EndNode();
        Assert.Throws<InvalidOperationException>(() => fdt.BeginNode(""));
        Assert.NotEmpty(fdt.Finish());
    }
}
