using System.Buffers.Binary;
using System.Text;
using StratoVirt.Devices.State;
using StratoVirt.Sys;

namespace StratoVirt.Virtio.Devices.Block;

/// <summary>
/// virtio-blk (virtio 1.2, section 5.2) over a raw image: one request queue whose requests are served
/// synchronously on the device's loop, straight between the image and guest memory.
/// </summary>
/// <remarks>
/// A request is a device-readable 16-byte header (type, reserved, sector), then data, then a status byte: the
/// last byte of the device-writable part of the chain. Framing is free (virtio 1.2, 2.6.4): the header may be split
/// over buffers or share one with the data. Every request gets a used entry whose length counts the bytes written
/// into the guest's writable buffers: the data read, or the ID, plus the status byte; a chain with no writable byte
/// cannot carry a status and is returned with length 0. Requests never allocate: the chain, iovec array, ID and
/// discard segments are allocated with the device.
/// <para>A device may have no medium (an empty microVM hotplug slot): capacity 0, every request fails
/// with IOERR. <see cref="Insert"/> and <see cref="Eject"/> swap the image under <see cref="VirtioDevice.Gate"/>
/// and raise a configuration-change interrupt so the driver re-reads the capacity. The features offered never
/// change (the driver may already have negotiated them): an empty device offers a read-write disk's, and a
/// read-only image inserted into it refuses writes with IOERR.</para>
/// </remarks>
public sealed class VirtioBlock : VirtioDevice
{
    public const int SectorSize = 512, SectorShift = 9;
    private const int HeaderSize = 16, SegmentSize = 16, IdBytes = 20;

    /// <summary>Largest request (and discard or write-zeroes segment), in sectors: upstream's u32::MAX >> 9, so
    /// that data plus status always fits the used entry's 32-bit length.</summary>
    public const uint MaxRequestSectors = uint.MaxValue >> SectorShift;

    /// <summary>Segments in one discard or write-zeroes request (Linux merges discards up to this many
    /// ranges).</summary>
    public const int MaxSegments = 32;

    private const uint ConfigSize = 60; // through write_zeroes_may_unmap and its padding

    private readonly bool _offerReadOnly;
    private RawImage? _image;
    private readonly DescriptorChain _chain;
    private readonly Iovec[] _iov;
    private readonly byte[] _config = new byte[ConfigSize];
    private readonly byte[] _id = new byte[IdBytes];
    private readonly (ulong Sector, uint Count, bool Unmap)[] _segments = new (ulong, uint, bool)[MaxSegments];
    private bool _writeThrough, _disposed;
    private int _reportedErrno;
    private long _reportedAt;
    private ulong _failedSinceReport;
    private bool _recoveryPending;

    /// <summary>
    /// Opens <paramref name="path"/> and takes its lock (see <see cref="RawImage"/>). <paramref name="serial"/> is
    /// what VIRTIO_BLK_T_GET_ID returns, at most 20 bytes. Errors with the image are SysExceptions naming it.
    /// </summary>
    public VirtioBlock(string path, bool readOnly = false, bool direct = true, string? serial = null)
        : this(readOnly)
    {
        CheckSerial(serial); // before the image is opened, so that a bad serial leaves nothing open
        Load(RawImage.Open(path, readOnly, direct), serial);
    }

    /// <summary>A device whose medium is <paramref name="image"/> (owned by the device from now on), read-only if
    /// the image is: a disk plugged in whole (q35 hotplug).</summary>
    public static VirtioBlock WithImage(string id, RawImage image, string? serial)
    {
        CheckSerial(serial);
        var device = new VirtioBlock(image.ReadOnly) { Id = id };
        device.Load(image, serial);
        return device;
    }

    private void Load(RawImage image, string? serial)
    {
        SetSerial(serial);
        _image = image;
        Capacity = image.Size >> SectorShift;
        BuildConfig();
    }

    private VirtioBlock(bool offerReadOnly) : base(VirtioDeviceId.Block, 1)
    {
        _offerReadOnly = offerReadOnly;
        _chain = new DescriptorChain(MaxQueueSize);
        _iov = new Iovec[MaxQueueSize];
    }

    /// <summary>A device with no medium (an empty hotplug slot), offering a read-write disk's features.</summary>
    public static VirtioBlock Empty(string id)
    {
        var device = new VirtioBlock(offerReadOnly: false) { Id = id };
        device.BuildConfig();
        return device;
    }

    /// <summary>Throws ArgumentException when <paramref name="serial"/> does not fit GET_ID's 20 bytes.</summary>
    public static void CheckSerial(string? serial)
    {
        if (serial is not null && Encoding.UTF8.GetByteCount(serial) > IdBytes)
            throw new ArgumentException($"drive serial '{serial}' is longer than {IdBytes} bytes");
    }

    private void SetSerial(string? serial)
    {
        CheckSerial(serial);
        Array.Clear(_id);
        if (serial is not null) Encoding.UTF8.GetBytes(serial, _id);
        Serial = serial;
    }

    /// <summary>The image's path; null while the device has no medium.</summary>
    public string? Path => _image?.Path;

    /// <summary>Whether writes are refused: the device was created read-only, or its image is.</summary>
    public bool ReadOnly => _offerReadOnly || (_image?.ReadOnly ?? false);

    public string? Serial { get; private set; }

    /// <summary>Whether aligned requests go through O_DIRECT (false where the filesystem has none).</summary>
    public bool Direct => _image?.Direct ?? false;

    /// <summary>
    /// Raised on the device's loop when the image fails a request with an errno other than the last one reported,
    /// or the same one at least <see cref="IoErrorReportInterval"/> after it was: a full or failing disk fails
    /// every request (and a guest retrying interleaves them with ones that work), and is reported and logged once per
    /// condition and interval, not once per request. The guest gets IOERR for each failed request.
    /// </summary>
    public event Action<BlockIoError>? IoError;

    /// <summary>How long a reported failure is not reported again (see <see cref="IoError"/>).</summary>
    public TimeSpan IoErrorReportInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Whether an image is inserted.</summary>
    public bool HasMedium => _image is not null;

    /// <summary>Size in 512-byte sectors (0 without a medium); a partial last sector of the image is not part of
    /// the disk.</summary>
    public ulong Capacity { get; private set; }

    /// <summary>
    /// Puts <paramref name="image"/> (owned by the device from now on) into a device without a medium, with the
    /// GET_ID <paramref name="serial"/>, and tells the driver the new capacity. Safe while the queue is served.
    /// </summary>
    public void Insert(RawImage image, string? serial)
    {
        CheckSerial(serial);
        lock (Gate)
        {
            if (_disposed) throw new ObjectDisposedException(nameof(VirtioBlock));
            if (_image is not null) throw new InvalidOperationException($"virtio-blk {Id} already holds {_image.Path}");
            SetSerial(serial);
            _image = image;
            _failedSinceReport = 0;
            _reportedErrno = 0;
            _recoveryPending = false;
            Capacity = image.Size >> SectorShift;
            BuildConfig();
            SignalConfigChange();
        }
    }

    /// <summary>
    /// Removes the medium: waits for a request in progress, syncs and closes the image (releasing its lock), and
    /// tells the driver the capacity is now 0. No-op without a medium.
    /// </summary>
    public void Eject()
    {
        lock (Gate)
        {
            if (_image is null) return;
            CloseImage();
            Capacity = 0;
            SetSerial(null);
            BuildConfig();
            SignalConfigChange();
        }
    }

    protected override ulong DeviceFeatures =>
        VirtioBlockFeature.SegMax | VirtioBlockFeature.BlkSize | VirtioBlockFeature.Flush |
        (_offerReadOnly ? VirtioBlockFeature.ReadOnly : VirtioBlockFeature.Discard | VirtioBlockFeature.WriteZeroes);

    private void BuildConfig()
    {
        var c = _config.AsSpan();
        BinaryPrimitives.WriteUInt64LittleEndian(c, Capacity);
        // seg_max: the header and the status take two of a chain's descriptors.
        BinaryPrimitives.WriteUInt32LittleEndian(c[12..], (uint)MaxQueueSize - 2);
        BinaryPrimitives.WriteUInt32LittleEndian(c[20..], SectorSize); // blk_size
        if (_offerReadOnly) return;
        BinaryPrimitives.WriteUInt32LittleEndian(c[36..], MaxRequestSectors); // max_discard_sectors
        BinaryPrimitives.WriteUInt32LittleEndian(c[40..], MaxSegments); // max_discard_seg
        BinaryPrimitives.WriteUInt32LittleEndian(c[44..], 1); // discard_sector_alignment
        BinaryPrimitives.WriteUInt32LittleEndian(c[48..], MaxRequestSectors); // max_write_zeroes_sectors
        BinaryPrimitives.WriteUInt32LittleEndian(c[52..], MaxSegments); // max_write_zeroes_seg
        c[56] = 1; // write_zeroes_may_unmap: an unmapping write-zeroes punches a hole
    }

    public override void ReadConfig(uint offset, Span<byte> data) => ReadFrom(_config, offset, data);

    // Without FLUSH the driver assumes a write-through cache (virtio 1.2, 5.2.6.2): each write is synced.
    protected override void OnActivate() => _writeThrough = (Features & VirtioBlockFeature.Flush) == 0;

    public override void ProcessQueue(int index)
    {
        if (_disposed) return; // a notification that raced with Dispose: the image's fd numbers may be reused
        var queue = Queue(index);
        while (queue.Pop(_chain)) queue.AddUsed(_chain.Head, Execute());
        SignalUsed(queue);
    }

    /// <summary>Serves the popped chain; returns the used length.</summary>
    private uint Execute()
    {
        int last = _chain.Count - 1;
        while (last >= _chain.ReadableCount && _chain.Length(last) == 0) last--;
        if (last < _chain.ReadableCount)
        {
            if (Log.IsEnabled(LogLevel.Warn))
                Log.Warn($"virtio-blk {Id}: a request without a status byte; returned unanswered");
            return 0;
        }
        uint data = 0;
        byte status = Handle(ref data);
        Memory.WriteByte(_chain.Address(last) + _chain.Length(last) - 1, status);
        return data + 1;
    }

    private byte Handle(ref uint dataWritten)
    {
        if (_image is null) return Reject("a request to a drive without a medium");
        if (_chain.ReadableLength < HeaderSize) return Reject("a {0}-byte request header", _chain.ReadableLength);
        Span<byte> header = stackalloc byte[HeaderSize];
        _chain.Read(0, header);
        uint type = BinaryPrimitives.ReadUInt32LittleEndian(header);
        ulong sector = BinaryPrimitives.ReadUInt64LittleEndian(header[8..]);
        switch (type)
        {
            case VirtioBlockRequest.In:
                return Read(sector, ref dataWritten);
            case VirtioBlockRequest.Out:
                return ReadOnly ? Reject("a write to a read-only drive") : Write(sector);
            case VirtioBlockRequest.Flush:
                return Complete(_image!.Flush(), write: true, "flush");
            case VirtioBlockRequest.GetId:
                int n = (int)Math.Min((ulong)IdBytes, _chain.WritableLength - 1);
                dataWritten = (uint)_chain.Write(0, _id.AsSpan(0, n));
                return VirtioBlockStatus.Ok;
            case VirtioBlockRequest.Discard:
            case VirtioBlockRequest.WriteZeroes:
                return ReadOnly ? Reject("a discard or write-zeroes on a read-only drive") : DiscardOrZero(type);
            default:
                return VirtioBlockStatus.Unsupported;
        }
    }

    private byte Read(ulong sector, ref uint dataWritten)
    {
        ulong length = _chain.WritableLength - 1;
        if (!InRange(sector, length)) return Reject("a read of {0} bytes at sector {1}", length, sector);
        int count = Iovecs(_chain.ReadableCount, _chain.Count, 0, length);
        int errno = _image!.Read(_iov.AsSpan(0, count), (long)(sector << SectorShift), out ulong done);
        dataWritten = (uint)done;
        return Complete(errno, write: false, "read");
    }

    private byte Write(ulong sector)
    {
        ulong length = _chain.ReadableLength - HeaderSize;
        if (!InRange(sector, length)) return Reject("a write of {0} bytes at sector {1}", length, sector);
        int count = Iovecs(0, _chain.ReadableCount, HeaderSize, length);
        int errno = _image!.Write(_iov.AsSpan(0, count), (long)(sector << SectorShift), out _);
        if (errno == 0 && _writeThrough) errno = _image!.Flush();
        return Complete(errno, write: true, "write");
    }

    /// <summary>Whole sectors, no more than a request may carry, inside the disk (overflow-safe).</summary>
    private bool InRange(ulong sector, ulong length) =>
        length % SectorSize == 0 && length >> SectorShift <= MaxRequestSectors &&
        InDisk(sector, length >> SectorShift);

    private bool InDisk(ulong sector, ulong sectors) => sector <= Capacity && sectors <= Capacity - sector;

    /// <summary>Fills the iovec array with the host memory of <paramref name="length"/> bytes of buffers
    /// [<paramref name="from"/>, <paramref name="to"/>), after skipping <paramref name="skip"/> bytes.</summary>
    private int Iovecs(int from, int to, ulong skip, ulong length)
    {
        int count = 0;
        for (int i = from; i < to && length > 0; i++)
        {
            ulong len = _chain.Length(i);
            if (skip >= len)
            {
                skip -= len;
                continue;
            }
            ulong take = Math.Min(len - skip, length);
            // The chain checked every buffer against guest RAM when it was loaded.
            if (!Memory.TryGetIovec(_chain.Address(i) + skip, take, out _iov[count++]))
                throw new VirtqueueException($"buffer at 0x{_chain.Address(i):x} left guest RAM");
            length -= take;
            skip = 0;
        }
        return count;
    }

    /// <summary>DISCARD and WRITE_ZEROES: every segment is checked before any is carried out.</summary>
    private byte DiscardOrZero(uint type)
    {
        bool zero = type == VirtioBlockRequest.WriteZeroes;
        ulong payload = _chain.ReadableLength - HeaderSize;
        if (payload == 0 || payload % SegmentSize != 0)
            return Reject("{0} bytes of discard/write-zeroes segments", payload);
        if (payload / SegmentSize > MaxSegments) return VirtioBlockStatus.Unsupported;
        int count = (int)(payload / SegmentSize);
        Span<byte> seg = stackalloc byte[SegmentSize];
        for (int i = 0; i < count; i++)
        {
            _chain.Read(HeaderSize + (ulong)(i * SegmentSize), seg);
            ulong sector = BinaryPrimitives.ReadUInt64LittleEndian(seg);
            uint sectors = BinaryPrimitives.ReadUInt32LittleEndian(seg[8..]);
            uint flags = BinaryPrimitives.ReadUInt32LittleEndian(seg[12..]);
            // Unknown flags, and unmap on a discard, are UNSUPP (virtio 1.2, 5.2.6.2).
            if ((flags & ~(zero ? VirtioBlockRequest.FlagUnmap : 0u)) != 0) return VirtioBlockStatus.Unsupported;
            if (sectors > MaxRequestSectors || !InDisk(sector, sectors))
                return Reject("a discard/write-zeroes of {0} sectors at sector {1}", sectors, sector);
            _segments[i] = (sector, sectors, (flags & VirtioBlockRequest.FlagUnmap) != 0);
        }
        for (int i = 0; i < count; i++)
        {
            var (sector, sectors, unmap) = _segments[i];
            long offset = (long)(sector << SectorShift), length = (long)sectors << SectorShift;
            int errno = zero ? _image!.WriteZeroes(offset, length, unmap) : _image!.Discard(offset, length);
            if (errno != 0) return Complete(errno, write: true, zero ? "write-zeroes" : "discard");
        }
        return Complete(zero && _writeThrough ? _image!.Flush() : 0, write: true, "write-zeroes");
    }

    /// <summary>The status of a request the image carried out: OK, or IOERR with the failure logged and raised
    /// once per condition and interval (see <see cref="IoError"/>); the first success after a reported failure logs
    /// how many requests failed since the report.</summary>
    private byte Complete(int errno, bool write, string what)
    {
        if (errno == 0)
        {
            if (_recoveryPending) Recovered();
            return VirtioBlockStatus.Ok;
        }
        _failedSinceReport++;
        long now = Environment.TickCount64;
        if (errno != _reportedErrno || now - _reportedAt >= (long)IoErrorReportInterval.TotalMilliseconds)
        {
            _reportedErrno = errno;
            _reportedAt = now;
            _failedSinceReport = 1;
            _recoveryPending = true;
            Log.Warn($"virtio-blk {Id}: {what} on {_image!.Path} failed: {Libc.ErrorText(errno)} (errno {errno}); " +
                     "the guest gets an I/O error for each request that fails the same way");
            IoError?.Invoke(new BlockIoError(Id, write, errno));
        }
        return VirtioBlockStatus.IoError;
    }

    private void Recovered()
    {
        Log.Warn($"virtio-blk {Id}: I/O on {_image!.Path} works again; {_failedSinceReport} request(s) failed " +
                 "since the failure was reported");
        _recoveryPending = false;
    }

    /// <summary>A request the driver got wrong: IOERR, and a warning when warnings are logged. The message is a
    /// format with up to two numbers, so that nothing is allocated unless it is logged.</summary>
    private byte Reject(string format, ulong a = 0, ulong b = 0)
    {
        if (Log.IsEnabled(LogLevel.Warn)) Log.Warn($"virtio-blk {Id}: rejected {string.Format(format, a, b)}");
        return VirtioBlockStatus.IoError;
    }

    public override string StateName => BlockState.Name;
    public override int StateVersion => BlockState.Version;

    /// <summary>The medium as the guest sees it, or null without one.</summary>
    private BlockMedium? Medium => _image is null ? null : new BlockMedium(Capacity << SectorShift, ReadOnly);

    protected override void SaveDeviceState(StateWriter writer) => new BlockState(Features, Medium, Serial).Write(writer);

    protected override void RestoreDeviceState(StateReader reader)
    {
        var state = BlockState.Read(reader);
        if (state.Medium != Medium)
            throw new StateException($"{StateName} {Id}: the saved state has {BlockMedium.Describe(state.Medium)}, " +
                $"the device has {BlockMedium.Describe(Medium)} (a restore may give another image file, of the same size and mode)");
        try { CheckSerial(state.Serial); }
        catch (ArgumentException e) { throw new StateException($"{StateName} {Id}: {e.Message}"); }
        SetSerial(state.Serial);
        RestoreFeatures(state.Features);
    }

    /// <summary>
    /// Waits for a request in progress, syncs a writable image (an orderly exit leaves what the guest wrote on
    /// stable storage, as QEMU's exit does) and closes it, which releases its lock.
    /// </summary>
    public override void Dispose()
    {
        lock (Gate)
        {
            if (_disposed) return;
            _disposed = true;
            CloseImage();
        }
        base.Dispose();
    }

    /// <summary>Syncs a writable image and closes it. Under Gate.</summary>
    private void CloseImage()
    {
        if (_image is not { } image) return;
        _image = null;
        int errno = image.ReadOnly ? 0 : image.Flush();
        if (errno != 0)
            Log.Error($"virtio-blk {Id}: syncing {image.Path} failed: {Libc.ErrorText(errno)} (errno {errno})");
        image.Dispose();
    }
}

/// <summary>virtio-blk feature bits (virtio 1.2, 5.2.3).</summary>
public static class VirtioBlockFeature
{
    public const ulong SizeMax = 1UL << 1, SegMax = 1UL << 2, ReadOnly = 1UL << 5, BlkSize = 1UL << 6,
        Flush = 1UL << 9, Discard = 1UL << 13, WriteZeroes = 1UL << 14;
}

/// <summary>virtio-blk request types and segment flags (virtio 1.2, 5.2.6).</summary>
public static class VirtioBlockRequest
{
    public const uint In = 0, Out = 1, Flush = 4, GetId = 8, GetLifetime = 10, Discard = 11, WriteZeroes = 13,
        SecureErase = 14;

    public const uint FlagUnmap = 1;
}

/// <summary>virtio-blk request status values.</summary>
public static class VirtioBlockStatus
{
    public const byte Ok = 0, IoError = 1, Unsupported = 2;
}
