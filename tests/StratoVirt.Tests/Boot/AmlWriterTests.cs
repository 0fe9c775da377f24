using StratoVirt.Boot.Acpi;
using Xunit;

namespace StratoVirt.Tests.Boot;

[Trait("Level", "Unit")]
public class AmlWriterTests
{
    [Theory]
    [InlineData(0, new byte[] { 0x01 })]
    [InlineData(62, new byte[] { 0x3F })] // largest one-byte length
    [InlineData(63, new byte[] { 0x41, 0x04 })] // 65 = 0x041
    [InlineData(4093, new byte[] { 0x4F, 0xFF })] // 4095, largest two-byte length
    [InlineData(4094, new byte[] { 0x81, 0x00, 0x01 })] // 4097 = 0x01001
    public void PkgLengthCountsItsOwnBytes(int content, byte[] expected)
    {
        Span<byte> encoded = stackalloc byte[4];
        int n = AmlWriter.EncodePkgLength(content, encoded);
        Assert.Equal(expected, encoded[..n].ToArray());
    }

    [Theory]
    [InlineData(0ul, new byte[] { 0x00 })]
    [InlineData(1ul, new byte[] { 0x01 })]
    [InlineData(5ul, new byte[] { 0x0A, 0x05 })]
    [InlineData(0x1234ul, new byte[] { 0x0B, 0x34, 0x12 })]
    [InlineData(0xD000_0000ul, new byte[] { 0x0C, 0x00, 0x00, 0x00, 0xD0 })]
    [InlineData(0x1_0000_0000ul, new byte[] { 0x0E, 0, 0, 0, 0, 1, 0, 0, 0 })]
    public void IntegersUseTheShortestEncoding(ulong value, byte[] expected)
    {
        var aml = new AmlWriter();
        aml.Integer(value);
        Assert.Equal(expected, aml.ToArray());
    }

    [Fact]
    public void EisaIdIsCompressed()
    {
        Assert.Equal(0x0105D041u, AmlWriter.CompressEisaId("PNP0501"));
        Assert.Throws<ArgumentException>(() => AmlWriter.CompressEisaId("pnp0501"));
    }

    [Fact]
    public void ScopeAndDeviceNamesAreEncoded()
    {
        var aml = new AmlWriter();
        aml.BeginScope("\\_SB");
        aml.BeginDevice("V0");
        aml.End();
        aml.End();

        byte[] expected =
        [
            0x10, 0x0D, (byte)'\\', (byte)'_', (byte)'S', (byte)'B', (byte)'_',
            0x5B, 0x82, 0x05, (byte)'V', (byte)'0', (byte)'_', (byte)'_',
        ];
        Assert.Equal(expected, aml.ToArray());
    }

    [Fact]
    public void DottedPathsUseDualAndMultiNamePrefixes()
    {
        var aml = new AmlWriter();
        aml.Name("\\_SB_.V000");
        aml.Integer(0);
        aml.Name("A.B.C");
        aml.Integer(0);
        byte[] bytes = aml.ToArray();

        Assert.Equal([0x08, (byte)'\\', 0x2E], bytes[..3]);
        Assert.Equal([0x08, 0x2F, 3, (byte)'A', (byte)'_'], bytes[12..17]);
    }

    [Fact]
    public void ResourceTemplateGetsSizeAndEndTag()
    {
        var aml = new AmlWriter();
        aml.BeginResourceTemplate();
        aml.Memory32Fixed(true, 0xD000_0000, 0x200);
        aml.ExtendedInterrupt(5, AmlTrigger.Edge, AmlPolarity.ActiveHigh, shared: false);
        aml.End();

        byte[] expected =
        [
            0x11, 0x1A, 0x0A, 0x17, // Buffer, PkgLength 26, BufferSize 23
            0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xD0, 0x00, 0x02, 0x00, 0x00,
            0x89, 0x06, 0x00, 0x03, 0x01, 0x05, 0x00, 0x00, 0x00,
            0x79, 0x00,
        ];
        Assert.Equal(expected, aml.ToArray());
    }

    [Fact]
    public void LongBodiesGetMultiByteLengths()
    {
        var aml = new AmlWriter();
        aml.BeginScope("\\_SB_");
        for (int i = 0; i < 100; i++)
        {
            aml.Name($"N{i:D3}");
            aml.Integer(0x1234);
        }
        aml.End();
        byte[] bytes = aml.ToArray();

        int content = 5 + 100 * 8;
        Assert.Equal(1 + 2 + content, bytes.Length);
        Assert.Equal(0x40 | ((content + 2) & 0xF), bytes[1]);
        Assert.Equal((content + 2) >> 4, bytes[2]);
    }

    [Fact]
    public void MisuseIsRejected()
    {
        var aml = new AmlWriter();
        Assert.Throws<InvalidOperationException>(() => aml.End());
        Assert.Throws<InvalidOperationException>(() => aml.Memory32Fixed(true, 0, 1));
        Assert.Throws<ArgumentException>(() => aml.Name("TOOLONG"));
        Assert.Throws<ArgumentException>(() => aml.Name("1ABC"));
        aml.BeginDevice("DEV0");
        Assert.Throws<InvalidOperationException>(() => aml.ToArray());
    }
}
