using System.Buffers.Binary;
using StratoVirt.Virtio;
using StratoVirt.Virtio.Devices.Balloon;
using StratoVirt.Virtio.Transport.Mmio;

namespace StratoVirt.Tests.Virtio;

/// <summary>virtio-balloon over 16 MiB of guest RAM: the target and actual, inflating (pages really discarded),
/// deflating, and free page reporting.</summary>
[Trait("Level", "Unit")]
public sealed class VirtioBalloonTests : IDisposable
{
    private const ulong Ram = 16 << 20;
    private const uint Page = 4096;
    // Well above the test driver's rings and bump-allocated request buffers.
    private const uint FirstPfn = 0x800;

    private TestDriver _d;

    public VirtioBalloonTests() => _d = Create();

    private static TestDriver Create(bool deflateOnOom = false, bool reporting = false) =>
        new(new VirtioBalloon(Ram, deflateOnOom, reporting) { Id = "balloon0" }, Ram);

    private VirtioBalloon Balloon => (VirtioBalloon)_d.Device;

    public void Dispose() => _d.Dispose();

    private void Recreate(bool deflateOnOom = false, bool reporting = false)
    {
        _d.Dispose();
        _d = Create(deflateOnOom, reporting);
    }

    private static byte[] Pfns(params uint[] pfns)
    {
        var b = new byte[4 * pfns.Length];
        for (int i = 0; i < pfns.Length; i++) BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4 * i), pfns[i]);
        return b;
    }

    private static uint[] Range(uint first, int count) => Enumerable.Range(0, count).Select(i => first + (uint)i).ToArray();

    /// <summary>Fills page <paramref name="pfn"/> with a pattern that names it.</summary>
    private void Fill(uint pfn) => _d.Memory.GetSpan((ulong)pfn * Page, Page).Fill((byte)(pfn | 1));

    private bool IsZero(uint pfn) => !_d.Memory.GetSpan((ulong)pfn * Page, Page).ContainsAnyExcept((byte)0);

    private bool HasPattern(uint pfn) => !_d.Memory.GetSpan((ulong)pfn * Page, Page).ContainsAnyExcept((byte)(pfn | 1));

    private uint ConfigU32(uint offset) => BinaryPrimitives.ReadUInt32LittleEndian(_d.ReadConfig(offset, 4));

    private void WriteActual(uint pages)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, pages);
        _d.Transport.Write(VirtioMmioRegister.Config + 4, b);
    }

    [Fact]
    public void OffersOnlyTheFeaturesAskedForAndTheirQueues()
    {
        Assert.Equal(VirtioDeviceId.Balloon, _d.ReadReg(VirtioMmioRegister.DeviceId));
        ulong plain = _d.DeviceFeatures();
        Assert.Equal(0UL, plain & (VirtioBalloonFeature.DeflateOnOom | VirtioBalloonFeature.PageReporting | VirtioBalloonFeature.StatsVq));
        _d.WriteReg(VirtioMmioRegister.QueueSel, 2);
        Assert.Equal(0u, _d.ReadReg(VirtioMmioRegister.QueueNumMax));

        Recreate(deflateOnOom: true, reporting: true);
        ulong all = _d.DeviceFeatures();
        Assert.NotEqual(0UL, all & VirtioBalloonFeature.DeflateOnOom);
        Assert.NotEqual(0UL, all & VirtioBalloonFeature.PageReporting);
        Assert.Equal(0UL, all & VirtioBalloonFeature.StatsVq); // no statsq, so reporting_vq is queue 2
        _d.WriteReg(VirtioMmioRegister.QueueSel, 2);
        Assert.NotEqual(0u, _d.ReadReg(VirtioMmioRegister.QueueNumMax));
        _d.WriteReg(VirtioMmioRegister.QueueSel, 3);
        Assert.Equal(0u, _d.ReadReg(VirtioMmioRegister.QueueNumMax));
    }

    [Fact]
    public void InflatedPagesAreDiscardedAndOthersKeepTheirData()
    {
        Assert.NotEqual(0u, _d.Initialize() & VirtioStatus.DriverOk);
        foreach (uint pfn in Range(FirstPfn, 8)) Fill(pfn);
        var c = _d.Request(0, TestBuffer.In(Pfns(FirstPfn + 1, FirstPfn + 4, FirstPfn + 6)));
        Assert.Equal(0u, c.Written);
        Assert.True(_d.Irq.Count > 0);
        foreach (uint pfn in Range(FirstPfn, 8))
        {
            bool inflated = pfn is FirstPfn + 1 or FirstPfn + 4 or FirstPfn + 6;
            Assert.True(inflated ? IsZero(pfn) : HasPattern(pfn), $"page 0x{pfn:x}");
        }
        Assert.Equal(3L * Page, Balloon.DiscardedBytes);
        Assert.Equal(0, Balloon.RejectedPages);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AContiguousRunIsOneMadviseInEitherOrder(bool descending)
    {
        _d.Initialize();
        var run = Range(FirstPfn, 64);
        if (descending) Array.Reverse(run);
        foreach (uint pfn in run) Fill(pfn);
        Fill(FirstPfn + 64);
        Fill(FirstPfn + 100);
        _d.Request(0, TestBuffer.In(Pfns([.. run, FirstPfn + 100])));
        Assert.Equal(2, Balloon.DiscardCalls); // the run, then the lone page
        Assert.All(run, pfn => Assert.True(IsZero(pfn)));
        Assert.True(IsZero(FirstPfn + 100));
        Assert.True(HasPattern(FirstPfn + 64));
        Assert.Equal(65L * Page, Balloon.DiscardedBytes);
    }

    [Fact]
    public void APfnArraySplitAcrossDescriptorsIsReassembled()
    {
        _d.Initialize();
        Fill(FirstPfn);
        Fill(FirstPfn + 1);
        Fill(FirstPfn + 2);
        byte[] all = Pfns(FirstPfn, FirstPfn + 2);
        // Three readable buffers of 3, 3 and 2 bytes: both PFNs straddle a descriptor boundary.
        _d.Request(0, TestBuffer.In(all[..3]), TestBuffer.In(all[3..6]), TestBuffer.In(all[6..]));
        Assert.True(IsZero(FirstPfn));
        Assert.True(HasPattern(FirstPfn + 1));
        Assert.True(IsZero(FirstPfn + 2));
    }

    [Fact]
    public void PfnsOutsideRamAreSkippedWithoutStoppingTheDevice()
    {
        _d.Initialize();
        uint beyond = (uint)(Ram / Page);
        Fill(FirstPfn);
        Fill(beyond - 1);
        _d.Request(0, TestBuffer.In(Pfns(beyond, FirstPfn, uint.MaxValue, beyond - 1, beyond + 1)));
        Assert.False(_d.NeedsReset);
        Assert.Equal(3, Balloon.RejectedPages);
        Assert.True(IsZero(FirstPfn));
        Assert.True(IsZero(beyond - 1)); // the last page of RAM is still a page of RAM
        // Deflate checks its PFNs the same way, and the device goes on working afterwards.
        _d.Request(1, TestBuffer.In(Pfns(FirstPfn, beyond)));
        Assert.Equal(4, Balloon.RejectedPages);
        Assert.False(_d.NeedsReset);
    }

    [Fact]
    public void DeflatedPagesAreUsableAgain()
    {
        _d.Initialize();
        Fill(FirstPfn);
        _d.Request(0, TestBuffer.In(Pfns(FirstPfn)));
        Assert.True(IsZero(FirstPfn));
        var c = _d.Request(1, TestBuffer.In(Pfns(FirstPfn)));
        Assert.Equal(0u, c.Written);
        Assert.Equal(1L, Balloon.DiscardCalls); // deflating discards nothing
        Fill(FirstPfn); // the guest writes the page again: it faults back in
        Assert.True(HasPattern(FirstPfn));
    }

    [Fact]
    public void SetTargetSetsNumPagesAndRaisesAConfigChange()
    {
        _d.Initialize();
        Assert.Equal(0u, ConfigU32(0));
        uint generation = _d.ReadReg(VirtioMmioRegister.ConfigGeneration);
        int irqs = _d.Irq.Count;

        Balloon.SetTarget(12 << 20); // leave the guest 12 of its 16 MiB
        Assert.Equal((4u << 20) / Page, ConfigU32(0));
        Assert.Equal(1024u, Balloon.TargetPages);
        Assert.Equal(irqs + 1, _d.Irq.Count);
        Assert.NotEqual(0u, _d.ReadReg(VirtioMmioRegister.InterruptStatus) & VirtioMmioRegister.ConfigChangeInterrupt);
        Assert.NotEqual(generation, _d.ReadReg(VirtioMmioRegister.ConfigGeneration));

        Balloon.SetTarget((12 << 20) + 100); // partial pages round the balloon down
        Assert.Equal(1023u, ConfigU32(0));
    }

    [Theory]
    [InlineData(Ram, 0u)]
    [InlineData(Ram + 1, 0u)]
    [InlineData(1UL << 40, 0u)]
    [InlineData(ulong.MaxValue, 0u)]
    [InlineData(0UL, (uint)(Ram / Page))]
    public void TargetsAreClampedToTheRamSize(ulong wanted, uint pages)
    {
        _d.Initialize();
        Balloon.SetTarget(8 << 20);
        Balloon.SetTarget(wanted);
        Assert.Equal(pages, ConfigU32(0));
    }

    [Fact]
    public void ATargetSetBeforeTheDriverIsReadyIsSeenAtProbe()
    {
        Balloon.SetTarget(Ram - 10 * Page);
        Assert.Equal(0, _d.Irq.Count); // nobody to tell yet
        _d.Initialize();
        Assert.Equal(10u, ConfigU32(0));
    }

    [Fact]
    public void ActualWrittenByTheDriverUpdatesActualBytesAndFiresTheEvent()
    {
        var seen = new List<ulong>();
        Balloon.ActualChanged += seen.Add;
        _d.Initialize();
        Assert.Equal(Ram, Balloon.ActualBytes);

        WriteActual(256);
        Assert.Equal(256u, ConfigU32(4));
        Assert.Equal(Ram - (1 << 20), Balloon.ActualBytes);
        Assert.Equal([Ram - (1 << 20)], seen);

        WriteActual(256); // unchanged: no event
        Assert.Single(seen);

        _d.Transport.Write(VirtioMmioRegister.Config + 5, [0x02]); // one byte of actual: 0x0200 pages
        Assert.Equal(512u, Balloon.ActualPages);
        Assert.Equal(2, seen.Count);

        _d.Transport.Write(VirtioMmioRegister.Config, [1, 0, 0, 0]); // num_pages is the host's
        Assert.Equal(0u, ConfigU32(0));

        WriteActual(uint.MaxValue); // more than the RAM: nothing left, not an underflow
        Assert.Equal(0UL, Balloon.ActualBytes);
    }

    [Fact]
    public void AResetEmptiesTheBalloonButKeepsTheTarget()
    {
        var seen = new List<ulong>();
        Balloon.ActualChanged += seen.Add;
        _d.Initialize();
        Balloon.SetTarget(Ram / 2);
        WriteActual(100);
        _d.WriteReg(VirtioMmioRegister.Status, 0);
        Assert.Equal(0u, Balloon.ActualPages);
        Assert.Equal(Ram, seen[^1]);
        Assert.Equal((uint)(Ram / 2 / Page), ConfigU32(0));
    }

    [Fact]
    public void ReportedFreeRangesAreDiscardedAndReturned()
    {
        Recreate(reporting: true);
        Assert.NotEqual(0u, _d.Initialize() & VirtioStatus.DriverOk);
        foreach (uint pfn in Range(FirstPfn, 16)) Fill(pfn);
        // Linux reports free blocks as device-writable buffers; readable ones are accepted as well.
        ulong a = (ulong)FirstPfn * Page;
        ushort head = _d.AddAt(2, [(a + 10 * Page, Page, false), (a, 4 * Page, true), (a + 4 * Page, 2 * Page, true)]);
        _d.Notify(2);
        var c = Assert.Single(_d.TakeUsed(2));
        Assert.Equal(head, c.Head);
        Assert.Equal(0u, c.Written);
        foreach (uint pfn in Range(FirstPfn, 16))
        {
            bool freed = pfn < FirstPfn + 6 || pfn == FirstPfn + 10;
            Assert.True(freed ? IsZero(pfn) : HasPattern(pfn), $"page 0x{pfn:x}");
        }
        Assert.Equal(2, Balloon.DiscardCalls); // the two adjacent ranges went as one
        Assert.Equal(7L * Page, Balloon.DiscardedBytes);
    }

    [Fact]
    public void ARangeNotCoveringWholePagesDiscardsOnlyTheWholePagesInside()
    {
        Recreate(reporting: true);
        _d.Initialize();
        foreach (uint pfn in Range(FirstPfn, 4)) Fill(pfn);
        ulong a = (ulong)FirstPfn * Page;
        _d.AddAt(2, [(a + 100, 2 * Page, true)]); // covers page 1 in full, the tail of 0 and the head of 2
        _d.Notify(2);
        Assert.Single(_d.TakeUsed(2));
        Assert.True(HasPattern(FirstPfn));
        Assert.True(IsZero(FirstPfn + 1));
        Assert.True(HasPattern(FirstPfn + 2));
        Assert.Equal(1, Balloon.DiscardCalls);
        Assert.Equal((long)Page, Balloon.DiscardedBytes);
    }

    [Fact]
    public void WithoutNegotiatedReportingTheThirdQueueIsNotUsed()
    {
        Recreate(reporting: true);
        ulong features = _d.DeviceFeatures() & ~VirtioBalloonFeature.PageReporting;
        _d.Initialize(features, queueCount: 3);
        Fill(FirstPfn);
        _d.AddAt(2, [((ulong)FirstPfn * Page, Page, true)]);
        _d.Notify(2);
        Assert.Empty(_d.TakeUsed(2));
        Assert.True(HasPattern(FirstPfn));
        // Inflate still works on queue 0.
        _d.Request(0, TestBuffer.In(Pfns(FirstPfn)));
        Assert.True(IsZero(FirstPfn));
    }
}
