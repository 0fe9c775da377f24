using StratoVirt.Devices.Legacy;

namespace StratoVirt.Tests.Devices;

[Trait("Level", "Unit")]
public sealed class Pl031Tests
{
    private const ulong Dr = 0x00, Mr = 0x04, Lr = 0x08, Cr = 0x0C, Imsc = 0x10, Ris = 0x14, Mis = 0x18, Icr = 0x1C;

    private DateTime _now = new(2024, 2, 29, 13, 45, 7, DateTimeKind.Utc);
    private readonly CountingInterruptLine _irq = new();
    private readonly Pl031 _rtc;

    public Pl031Tests() => _rtc = new Pl031(_irq, () => _now);

    private static uint Seconds(DateTime t) => (uint)(t - DateTime.UnixEpoch).TotalSeconds;

    [Fact]
    public void IdentifiesAsAPl031AndCountsHostSeconds()
    {
        byte[] ids = [.. Enumerable.Range(0, 8).Select(i => (byte)_rtc.Read32(0xFE0 + 4 * (ulong)i))];
        Assert.Equal([0x31, 0x10, 0x04, 0x00, 0x0D, 0xF0, 0x05, 0xB1], ids);
        Assert.Equal(Seconds(_now), _rtc.Read32(Dr));
        Assert.Equal(1u, _rtc.Read32(Cr));
        _now = _now.AddSeconds(90);
        Assert.Equal(Seconds(_now), _rtc.Read32(Dr));
    }

    [Fact]
    public void LoadingTheCounterSetsTheGuestTime()
    {
        _rtc.Write32(Lr, 1000);
        Assert.Equal(1000u, _rtc.Read32(Dr));
        _now = _now.AddSeconds(5);
        Assert.Equal(1005u, _rtc.Read32(Dr));
        Assert.Equal(1005u, _rtc.Read32(Lr));
    }

    [Fact]
    public void TheMatchRaisesTheInterruptOnceReached()
    {
        uint now = _rtc.Read32(Dr);
        _rtc.Write32(Imsc, 1);
        _rtc.Write32(Mr, now + 10);
        Assert.Equal(now + 10, _rtc.Read32(Mr));
        _now = _now.AddSeconds(9);
        Assert.Equal(0u, _rtc.Read32(Ris));
        Assert.False(_irq.Level);
        _now = _now.AddSeconds(3); // the access comes after the match second
        Assert.Equal(1u, _rtc.Read32(Ris));
        Assert.Equal(1u, _rtc.Read32(Mis));
        Assert.True(_irq.Level);
        _rtc.Write32(Icr, 1);
        Assert.False(_irq.Level);
        _now = _now.AddSeconds(100);
        Assert.Equal(0u, _rtc.Read32(Ris)); // latched once per arming
    }

    [Fact]
    public void AMatchInThePastStaysQuietAndMaskingHidesTheLine()
    {
        uint now = _rtc.Read32(Dr);
        _rtc.Write32(Mr, now - 5);
        _now = _now.AddSeconds(60);
        Assert.Equal(0u, _rtc.Read32(Ris));
        _rtc.Write32(Mr, now + 60); // equals the counter now: fires at once
        Assert.Equal(1u, _rtc.Read32(Ris));
        Assert.Equal(0u, _rtc.Read32(Mis));
        Assert.False(_irq.Level);
        _rtc.Write32(Imsc, 1);
        Assert.True(_irq.Level);
    }
}
