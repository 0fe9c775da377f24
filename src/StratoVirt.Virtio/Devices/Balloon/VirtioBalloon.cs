using System.Buffers.Binary;
using StratoVirt.Devices.State;
using StratoVirt.Sys;

namespace StratoVirt.Virtio.Devices.Balloon;

/// <summary>virtio-balloon feature bits (virtio 1.2, section 5.5.3).</summary>
public static class VirtioBalloonFeature
{
    public const ulong StatsVq = 1UL << 1;
    public const ulong DeflateOnOom = 1UL << 2;
    public const ulong FreePageHint = 1UL << 3;
    public const ulong PagePoison = 1UL << 4;
    public const ulong PageReporting = 1UL << 5;
}

/// <summary>
/// virtio-balloon (virtio 1.2, section 5.5). The host sets a target (num_pages: 4 KiB pages it wants the guest to
/// give up); the driver hands pages over on the inflate queue as arrays of 32-bit page frame numbers and takes them
/// back on the deflate queue, and reports how many it holds in actual. Handed-over pages are discarded
/// (<see cref="StratoVirt.Memory.GuestMemory.Discard"/>: madvise(MADV_DONTNEED) for private RAM, a hole punched in the memfd or
/// file for shared RAM), so the host frees them and a later guest access faults in a zero page. That same property
/// makes deflating free. With free page reporting the driver also
/// passes ranges of free memory on a reporting queue, which are discarded the same way and handed back.
/// </summary>
/// <remarks>
/// Queues are numbered in the order the specification lists them, leaving out those whose feature was not
/// negotiated (the Linux transports do the same): 0 inflateq, 1 deflateq, then reporting_vq at 2, since neither
/// statsq nor free_page_vq is offered.
/// </remarks>
public sealed class VirtioBalloon : VirtioDevice
{
    /// <summary>The balloon's page size, whatever the guest's or the host's page size is.</summary>
    public const int PageSize = 4096;
    private const int PageShift = 12;
    private const int ConfigSize = 8;
    private const int InflateQueue = 0, DeflateQueue = 1, ReportingQueue = 2;

    private readonly DescriptorChain _chain = new();
    private uint _numPages, _actual;
    // The guest range being gathered for one discard (Discard appends, Flush issues it).
    private ulong _runStart;
    private ulong _runLength;
    private bool _warnedRejected, _warnedMadvise;

    /// <param name="ramSize">Bytes of guest RAM (the total of the memory regions): the base of the target and of
    /// <see cref="ActualBytes"/>.</param>
    /// <param name="deflateOnOom">Offer DEFLATE_ON_OOM (-device ...,deflate-on-oom=true): the guest may take pages
    /// back from the balloon when it runs out of memory.</param>
    /// <param name="freePageReporting">Offer PAGE_REPORTING (-device ...,free-page-reporting=true) and its queue.</param>
    public VirtioBalloon(ulong ramSize, bool deflateOnOom = false, bool freePageReporting = false)
        : base(VirtioDeviceId.Balloon, freePageReporting ? 3 : 2)
    {
        ArgumentOutOfRangeException.ThrowIfZero(ramSize);
        RamSize = ramSize;
        DeflateOnOom = deflateOnOom;
        FreePageReporting = freePageReporting;
    }

    public ulong RamSize { get; }
    public bool DeflateOnOom { get; }
    public bool FreePageReporting { get; }

    /// <summary>The pages the host currently asks the guest to give up (config num_pages).</summary>
    public uint TargetPages => Volatile.Read(ref _numPages);

    /// <summary>The pages the driver says the balloon holds (config actual).</summary>
    public uint ActualPages => Volatile.Read(ref _actual);

    /// <summary>Guest RAM left to the guest by the driver's own account: RAM minus the balloon (what query-balloon
    /// reports as actual).</summary>
    public ulong ActualBytes => BytesLeft(ActualPages);

    /// <summary>Raised with the new <see cref="ActualBytes"/> when the driver changes actual (or a device reset
    /// empties the balloon); for the BALLOON_CHANGED event. It runs on the vCPU thread that made the config write,
    /// holding <see cref="VirtioDevice.Gate"/>, so a handler must be quick and must not wait on another thread that
    /// takes the gate.</summary>
    public event Action<ulong>? ActualChanged;

    /// <summary>4 KiB pages inflate and deflate requests named outside guest RAM, which were skipped.</summary>
    public long RejectedPages { get; private set; }

    /// <summary>Bytes of guest RAM returned to the host (inflated pages and reported free ranges).</summary>
    public long DiscardedBytes { get; private set; }

    /// <summary>Discards issued; contiguous pages share one.</summary>
    internal long DiscardCalls { get; private set; }

    protected override ulong DeviceFeatures =>
        (DeflateOnOom ? VirtioBalloonFeature.DeflateOnOom : 0) | (FreePageReporting ? VirtioBalloonFeature.PageReporting : 0);

    /// <summary>
    /// Asks the guest to leave itself <paramref name="guestBytesWanted"/> bytes of RAM, like QMP balloon value=:
    /// num_pages becomes (RAM - wanted) / 4 KiB, a value above the RAM size meaning "all of it" (an empty balloon).
    /// The driver is told through a configuration-change interrupt.
    /// </summary>
    public void SetTarget(ulong guestBytesWanted)
    {
        ulong wanted = Math.Min(guestBytesWanted, RamSize);
        ulong pages = Math.Min((RamSize - wanted) >> PageShift, uint.MaxValue);
        lock (Gate)
        {
            Volatile.Write(ref _numPages, (uint)pages);
            SignalConfigChange();
        }
    }

    private ulong BytesLeft(uint pages)
    {
        ulong taken = (ulong)pages << PageShift;
        return taken >= RamSize ? 0 : RamSize - taken;
    }

    public override void ReadConfig(uint offset, Span<byte> data)
    {
        Span<byte> config = stackalloc byte[ConfigSize];
        BinaryPrimitives.WriteUInt32LittleEndian(config, _numPages);
        BinaryPrimitives.WriteUInt32LittleEndian(config[4..], _actual);
        ReadFrom(config, offset, data);
    }

    /// <summary>Only actual (bytes 4 to 7) is the driver's to write; num_pages and anything past the end ignore it.</summary>
    public override void WriteConfig(uint offset, ReadOnlySpan<byte> data)
    {
        Span<byte> config = stackalloc byte[ConfigSize];
        BinaryPrimitives.WriteUInt32LittleEndian(config[4..], _actual);
        for (int i = 0; i < data.Length; i++)
        {
            ulong at = (ulong)offset + (ulong)i;
            if (at >= 4 && at < ConfigSize) config[(int)at] = data[i];
        }
        SetActual(BinaryPrimitives.ReadUInt32LittleEndian(config[4..]));
    }

    private void SetActual(uint pages)
    {
        if (pages == _actual) return;
        Volatile.Write(ref _actual, pages);
        ActualChanged?.Invoke(BytesLeft(pages));
    }

    public override string StateName => BalloonState.Name;
    public override int StateVersion => BalloonState.Version;

    protected override void SaveDeviceState(StateWriter writer) =>
        new BalloonState(Features, _numPages, _actual, DeflateOnOom, FreePageReporting).Write(writer);

    protected override void RestoreDeviceState(StateReader reader)
    {
        var state = BalloonState.Read(reader);
        if (state.DeflateOnOom != DeflateOnOom) throw StateMismatch("deflate-on-oom", state.DeflateOnOom, DeflateOnOom);
        if (state.FreePageReporting != FreePageReporting)
            throw StateMismatch("free-page-reporting", state.FreePageReporting, FreePageReporting);
        Volatile.Write(ref _numPages, state.TargetPages);
        Volatile.Write(ref _actual, state.ActualPages);
        RestoreFeatures(state.Features);
    }

    /// <summary>A reset driver starts with an empty balloon (the pages it held are the guest's again).</summary>
    protected override void OnReset() => SetActual(0);

    public override void ProcessQueue(int index)
    {
        var queue = Queue(index);
        switch (index)
        {
            case InflateQueue: DrainPfnQueue(queue, discard: true); break;
            case DeflateQueue: DrainPfnQueue(queue, discard: false); break;
            case ReportingQueue when (Features & VirtioBalloonFeature.PageReporting) != 0: DrainReports(queue); break;
        }
    }

    /// <summary>Each chain's device-readable bytes are an array of little-endian u32 PFNs of 4 KiB pages. Inflated
    /// pages are discarded; deflated ones need nothing (they fault back in) beyond the check that they are RAM.</summary>
    private void DrainPfnQueue(Virtqueue queue, bool discard)
    {
        while (queue.Pop(_chain))
        {
            uint partial = 0;
            int partialBytes = 0;
            for (int i = 0; i < _chain.ReadableCount; i++)
            {
                ReadOnlySpan<byte> buffer = _chain.Buffer(i);
                int k = 0;
                if (partialBytes > 0)
                {
                    // A PFN split across two descriptors: finish it byte by byte.
                    while (partialBytes < 4 && k < buffer.Length) partial |= (uint)buffer[k++] << (8 * partialBytes++);
                    if (partialBytes < 4) continue;
                    Page(partial, discard);
                    partial = 0;
                    partialBytes = 0;
                }
                for (; k + 4 <= buffer.Length; k += 4) Page(BinaryPrimitives.ReadUInt32LittleEndian(buffer[k..]), discard);
                while (k < buffer.Length) partial |= (uint)buffer[k++] << (8 * partialBytes++);
            }
            Flush();
            queue.AddUsed(_chain.Head, 0);
        }
        SignalUsed(queue);
    }

    private void Page(uint pfn, bool discard)
    {
        ulong address = (ulong)pfn << PageShift;
        if (!Memory.Contains(address, PageSize))
        {
            RejectedPages++;
            if (!_warnedRejected)
            {
                _warnedRejected = true;
                Log.Warn($"virtio-balloon {Id}: the driver named page 0x{address:x}, which is not guest RAM; " +
                    "such pages are skipped (logged once)");
            }
            return;
        }
        if (discard) Discard(address, PageSize);
    }

    /// <summary>Each buffer of a report, readable or writable, is a range of free guest memory; the chain loader
    /// already proved each lies inside one RAM region. Nothing is written back.</summary>
    private void DrainReports(Virtqueue queue)
    {
        while (queue.Pop(_chain))
        {
            for (int i = 0; i < _chain.Count; i++)
            {
                uint length = _chain.Length(i);
                if (length != 0 && Memory.Contains(_chain.Address(i), length)) Discard(_chain.Address(i), length);
            }
            Flush();
            queue.AddUsed(_chain.Head, 0);
        }
        SignalUsed(queue);
    }

    /// <summary>Adds guest range [address, address+length) (guest RAM) to the pending run if it extends it at either
    /// end; otherwise issues the run and starts a new one.</summary>
    private void Discard(ulong address, ulong length)
    {
        if (_runLength != 0 && address == _runStart + _runLength)
        {
            _runLength += length;
            return;
        }
        if (_runLength != 0 && address + length == _runStart)
        {
            _runStart = address;
            _runLength += length;
            return;
        }
        Flush();
        _runStart = address;
        _runLength = length;
    }

    /// <summary>Gives the host the whole host pages inside the pending run: a host page larger than 4 KiB (a huge
    /// page of hugetlbfs-backed RAM) is only freed once the guest gave up all of it in one run, since releasing part
    /// of it would take the rest from the guest too. Guest RAM regions start on host pages, so guest and host
    /// addresses agree on alignment.</summary>
    private void Flush()
    {
        ulong pageMask = Memory.PageSize - 1;
        ulong start = (_runStart + pageMask) & ~pageMask;
        ulong end = (_runStart + _runLength) & ~pageMask;
        _runLength = 0;
        if (end <= start) return;
        DiscardCalls++;
        int errno = Memory.Discard(start, end - start);
        if (errno == 0)
        {
            DiscardedBytes += (long)(end - start);
        }
        else if (!_warnedMadvise)
        {
            _warnedMadvise = true;
            Log.Warn($"virtio-balloon {Id}: giving guest pages back to the host failed: {Libc.ErrorText(errno)} (logged once)");
        }
    }
}
