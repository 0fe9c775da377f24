using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using StratoVirt.Devices.State;
using StratoVirt.Sys;

namespace StratoVirt.Virtio.Devices.Net;

/// <summary>
/// virtio-net (virtio 1.2, section 5.1) over a tap-like backend: one receive queue (0) and one transmit queue (1),
/// no control queue. Frames pass between guest memory and the backend with readv/writev; the 12-byte
/// virtio_net_hdr the guest and the tap both use travels unchanged, except num_buffers, which the device fills in.
/// </summary>
/// <remarks>A device may have no backend (an empty microVM hotplug slot): its link is down (VIRTIO_NET_F_STATUS),
/// it receives nothing and drops what the guest sends. <see cref="Attach"/> and <see cref="Detach"/> swap the
/// backend under <see cref="VirtioDevice.Gate"/> and raise a configuration-change interrupt so the driver sees the
/// link go up or down.</remarks>
public sealed class VirtioNet : VirtioDevice
{
    public const ulong FeatureCsum = 1UL << 0, FeatureGuestCsum = 1UL << 1, FeatureMac = 1UL << 5,
        FeatureGuestTso4 = 1UL << 7, FeatureGuestTso6 = 1UL << 8, FeatureGuestEcn = 1UL << 9,
        FeatureHostTso4 = 1UL << 11, FeatureHostTso6 = 1UL << 12, FeatureHostEcn = 1UL << 13,
        FeatureMrgRxbuf = 1UL << 15, FeatureStatus = 1UL << 16;

    public const ushort StatusLinkUp = 1;
    public const int RxQueue = 0, TxQueue = 1;
    private const int HeaderSize = Tap.VnetHeaderSize;
    private const int NumBuffersOffset = 10;

    /// <summary>The largest frame (after the header) the guest may transmit: a 64 KiB GSO frame.</summary>
    public const int MaxFrame = 64 * 1024;

    /// <summary>Room past the first receive chain for what does not fit in it (a frame is at most ~64 KiB).</summary>
    private const int ScratchSize = 128 * 1024;

    private INetBackend? _backend;
    private readonly byte[] _mac;
    private bool _macRead;
    private readonly DescriptorChain _rxHead = new(), _rxChain = new(), _txChain = new();
    private readonly Iovec[] _iov = new Iovec[257];
    private readonly byte[] _scratch = GC.AllocateUninitializedArray<byte>(ScratchSize, pinned: true);
    private readonly nint _scratchAddress;

    // A received frame that needs more mergeable buffers than the guest has given so far: the chains it already
    // took (the first is _rxHead) and the part of it in _scratch still to be copied.
    private readonly ushort[] _pendingHeads = new ushort[256];
    private readonly uint[] _pendingLengths = new uint[256];
    private int _pendingCount, _pendingPos, _pendingEnd;

    private ulong _watch;
    private uint _interest;
    private bool _rxStalled, _txBlocked, _broken;

    /// <summary>
    /// A virtio-net device on <paramref name="backend"/> (which it owns from now on; null: no backend, link down),
    /// with the guest-visible MAC <paramref name="mac"/> (6 bytes, unicast) or a random locally administered one
    /// when null.
    /// </summary>
    public VirtioNet(INetBackend? backend, byte[]? mac = null) : base(VirtioDeviceId.Net, 2)
    {
        CheckMac(mac);
        _backend = backend;
        _mac = mac is null ? RandomMac() : (byte[])mac.Clone();
        _scratchAddress = Marshal.UnsafeAddrOfPinnedArrayElement(_scratch, 0);
    }

    /// <summary>The backend's name; null while the device has none.</summary>
    public string? BackendName => _backend?.Name;

    /// <summary>The backend's fd; null while the device has none.</summary>
    public int? BackendFd => _backend?.Fd;

    internal static void CheckMac(byte[]? mac)
    {
        if (mac is not null && mac.Length != 6)
            throw new ArgumentException($"a MAC address has 6 bytes, not {mac.Length}", nameof(mac));
        if (mac is not null && (mac[0] & 1) != 0)
            throw new ArgumentException($"MAC address {FormatMac(mac)} is a multicast address", nameof(mac));
    }
    public byte[] Mac => (byte[])_mac.Clone();

    /// <summary>Frames dropped: received ones that did not fit the guest's buffers, transmitted ones that were
    /// malformed or that the backend refused.</summary>
    public long RxDropped { get; private set; }
    public long TxDropped { get; private set; }

    /// <summary>The epoll events the device currently watches its backend for (for tests).</summary>
    internal uint Interest => _interest;

    /// <summary>What a net device on a tap offers: the tap's offloads, mergeable receive buffers, MAC and link status.</summary>
    public const ulong TapFeatures =
        FeatureCsum | FeatureGuestCsum | FeatureMac | FeatureGuestTso4 | FeatureGuestTso6 | FeatureGuestEcn |
        FeatureHostTso4 | FeatureHostTso6 | FeatureHostEcn | FeatureMrgRxbuf | FeatureStatus;

    protected override ulong DeviceFeatures => TapFeatures;

    /// <summary>Parses "52:54:00:12:34:56" (or with '-'); throws ArgumentException naming the text otherwise.</summary>
    public static byte[] ParseMac(string text)
    {
        var parts = text.Split(text.Contains('-') ? '-' : ':');
        var mac = new byte[6];
        bool ok = parts.Length == 6;
        for (int i = 0; ok && i < 6; i++)
            ok = parts[i].Length is 1 or 2 &&
                 byte.TryParse(parts[i], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out mac[i]);
        if (!ok) throw new ArgumentException($"MAC address '{text}' is not six hex bytes separated by ':'");
        if ((mac[0] & 1) != 0) throw new ArgumentException($"MAC address '{text}' is a multicast address");
        return mac;
    }

    public static string FormatMac(byte[] mac)
    {
        var bytes = new string[mac.Length];
        for (int i = 0; i < mac.Length; i++) bytes[i] = mac[i].ToString("x2", CultureInfo.InvariantCulture);
        return string.Join(':', bytes);
    }

    /// <summary>A random unicast, locally administered MAC address. Random.Shared, not the crypto generator: a MAC
    /// needs no secrecy, and the crypto generator loads libssl, which a minimal host (or the lab) may not have.</summary>
    public static byte[] RandomMac()
    {
        var mac = new byte[6];
        Random.Shared.NextBytes(mac);
        mac[0] = (byte)((mac[0] & 0xFC) | 0x02);
        return mac;
    }

    public override void ReadConfig(uint offset, Span<byte> data)
    {
        ReadNetConfig(_mac, _backend is not null, offset, data);
        if (offset < 6 && data.Length > 0) _macRead = true;
    }

    /// <summary>Reads struct virtio_net_config: mac[6], status (le16); the fields after it belong to features not
    /// offered.</summary>
    internal static void ReadNetConfig(byte[] mac, bool linkUp, uint offset, Span<byte> data)
    {
        Span<byte> config = stackalloc byte[8];
        mac.CopyTo(config);
        BinaryPrimitives.WriteUInt16LittleEndian(config[6..], linkUp ? StatusLinkUp : (ushort)0);
        ReadFrom(config, offset, data);
    }

    /// <summary>The tap offloads (TUN_F_*) matching what the guest accepted to receive.</summary>
    public static uint TunOffloads(ulong features)
    {
        if ((features & FeatureGuestCsum) == 0) return 0;
        uint flags = Libc.TUN_F_CSUM;
        if ((features & FeatureGuestTso4) != 0) flags |= Libc.TUN_F_TSO4;
        if ((features & FeatureGuestTso6) != 0) flags |= Libc.TUN_F_TSO6;
        if ((features & FeatureGuestEcn) != 0 && (flags & (Libc.TUN_F_TSO4 | Libc.TUN_F_TSO6)) != 0)
            flags |= Libc.TUN_F_TSO_ECN;
        return flags;
    }

    protected override void OnActivate()
    {
        _pendingCount = 0;
        _rxStalled = _txBlocked = _broken = false;
        StartBackend();
    }

    /// <summary>Active with a backend: pass the guest's offloads on and watch the backend. Under Gate.</summary>
    private void StartBackend()
    {
        if (_backend is null || !Active) return;
        _backend.SetOffload(TunOffloads(Features));
        _interest = Queue(RxQueue).Active ? Libc.EPOLLIN : 0;
        _watch = Watch(_backend.Fd, _interest, OnBackendReady);
    }

    /// <summary>
    /// Connects <paramref name="backend"/> (owned by the device from now on) to a device without one and raises the
    /// link. <paramref name="mac"/>, when given, becomes the device's address if the driver has not read it yet
    /// (once read, the guest keeps the one it has). Safe while the queues are served.
    /// </summary>
    public void Attach(INetBackend backend, byte[]? mac)
    {
        CheckMac(mac);
        lock (Gate)
        {
            if (_backend is not null) throw new InvalidOperationException($"virtio-net {Id} already uses {_backend.Name}");
            if (mac is not null && !_macRead) mac.CopyTo(_mac, 0);
            else if (mac is not null && !mac.AsSpan().SequenceEqual(_mac))
                Log.Warn($"virtio-net {Id}: the guest already read MAC {FormatMac(_mac)}; mac={FormatMac(mac)} is not applied");
            _backend = backend;
            _rxStalled = _txBlocked = _broken = false;
            StartBackend();
            SignalConfigChange();
        }
    }

    /// <summary>Disconnects and closes the backend and takes the link down. No-op without a backend.</summary>
    public void Detach()
    {
        lock (Gate)
        {
            if (_backend is null) return;
            if (_watch != 0) Unwatch(_watch);
            ReturnPendingBuffers();
            _watch = 0;
            _interest = 0;
            _rxStalled = _txBlocked = _broken = false;
            _backend.Dispose();
            _backend = null;
            SignalConfigChange();
        }
    }

    /// <summary>Gives back the receive buffers a half-delivered frame took (popped in a row and not used), dropping
    /// the frame. Under Gate.</summary>
    private void ReturnPendingBuffers()
    {
        if (Active) for (int i = 0; i < _pendingCount; i++) Queue(RxQueue).Unpop();
        _pendingCount = 0;
    }

    public override string StateName => NetState.Name;
    public override int StateVersion => NetState.Version;

    protected override void SaveDeviceState(StateWriter writer)
    {
        if (_pendingCount > 0)
        {
            ReturnPendingBuffers();
            RxDropped++;
        }
        new NetState(Features, Mac, _macRead, RxDropped, TxDropped).Write(writer);
    }

    protected override void RestoreDeviceState(StateReader reader)
    {
        var state = NetState.Read(reader);
        try { CheckMac(state.Mac); }
        catch (ArgumentException e) { throw new StateException($"{StateName} {Id}: {e.Message}"); }
        state.Mac.CopyTo(_mac, 0);
        _macRead = state.MacRead;
        (RxDropped, TxDropped) = (state.RxDropped, state.TxDropped);
        RestoreFeatures(state.Features);
    }

    protected override void OnReset()
    {
        // The base class already removed the watch; a frame half delivered to the old rings is lost.
        _watch = 0;
        _interest = 0;
        _pendingCount = 0;
        _rxStalled = _txBlocked = _broken = false;
    }

    public override void ProcessQueue(int index)
    {
        if (index == RxQueue)
        {
            _rxStalled = false; // the guest added receive buffers
            Receive();
        }
        else if (index == TxQueue)
        {
            Transmit();
        }
        UpdateInterest();
    }

    private void OnBackendReady(uint ready)
    {
        if (_backend is null) return; // detached while this event was on its way
        if ((ready & Libc.EPOLLOUT) != 0 && _txBlocked)
        {
            _txBlocked = false;
            Transmit();
        }
        if ((ready & Libc.EPOLLIN) != 0) Receive();
        if ((ready & (Libc.EPOLLERR | Libc.EPOLLHUP)) != 0 && !_broken)
            Stop($"backend {_backend!.Name} reported {((ready & Libc.EPOLLHUP) != 0 ? "a hang-up" : "an error")}");
        UpdateInterest();
    }

    /// <summary>The backend is gone (tap deleted, socket closed): stop watching it until the driver resets us.</summary>
    private void Stop(string why)
    {
        _broken = true;
        if (_watch != 0) Loop.Remove(_watch);
        Log.Warn($"virtio-net {Id}: {why}; no more frames until the guest resets the device");
    }

    /// <summary>Watches the backend for readable only while the guest has receive buffers, and for writable only
    /// while a transmit is waiting for room, so an idle or stalled device never spins.</summary>
    private void UpdateInterest()
    {
        if (_watch == 0 || _broken) return;
        uint want = (Queue(RxQueue).Active && !_rxStalled ? Libc.EPOLLIN : 0) | (_txBlocked ? Libc.EPOLLOUT : 0);
        if (want == _interest) return;
        Loop.Modify(_watch, want);
        _interest = want;
    }

    // ---- receive: backend -> guest ----

    private void Receive()
    {
        var queue = Queue(RxQueue);
        if (!queue.Active || _broken || _backend is null) return;
        bool mergeable = (Features & FeatureMrgRxbuf) != 0;
        int used = 0;
        while (true)
        {
            if (_pendingCount > 0)
            {
                if (!ContinueMerged(queue, ref used)) { _rxStalled = true; break; }
                continue;
            }
            if (!queue.Pop(_rxHead)) { _rxStalled = true; break; }
            ulong capacity = _rxHead.WritableLength;
            if (capacity < HeaderSize)
            {
                // Too small for even the header: hand it back empty, the driver counts a length error.
                queue.AddUsed(_rxHead.Head, 0);
                used++;
                continue;
            }
            int count = GatherWritable(_rxHead);
            _iov[count++] = new Iovec { Base = _scratchAddress, Length = ScratchSize };
            long n = ReadFrame(count);
            if (n <= 0)
            {
                queue.Unpop(); // nothing to read now (or the backend's end): the buffer stays available
                break;
            }
            if (n < HeaderSize || (ulong)n >= capacity + ScratchSize)
            {
                queue.Unpop(); // a frame without a whole header, or one cut short: drop it
                RxDropped++;
                continue;
            }
            if ((ulong)n <= capacity)
            {
                SetNumBuffers(_rxHead, 1);
                queue.AddUsed(_rxHead.Head, (uint)n);
                used++;
                continue;
            }
            if (!mergeable)
            {
                queue.Unpop(); // larger than the guest's big-packet buffer: drop it, keep the buffer
                RxDropped++;
                Log.Debug($"virtio-net {Id}: dropped a {n - HeaderSize}-byte frame larger than the receive buffer");
                continue;
            }
            _pendingHeads[0] = _rxHead.Head;
            _pendingLengths[0] = (uint)capacity;
            _pendingCount = 1;
            _pendingPos = 0;
            _pendingEnd = (int)((ulong)n - capacity);
        }
        if (used > 0) SignalUsed(queue);
    }

    /// <summary>Copies the rest of a frame into further mergeable buffers. False: the queue ran dry first (the
    /// frame waits for more buffers); true: the frame was delivered, or dropped because the ring cannot hold it.</summary>
    private bool ContinueMerged(Virtqueue queue, ref int used)
    {
        while (_pendingPos < _pendingEnd)
        {
            if (_pendingCount >= queue.Size || _pendingCount >= _pendingHeads.Length)
            {
                // Every buffer the ring can hold is not enough: give them back untouched (they were popped in a
                // row, none used) and drop the frame, so the device cannot wait forever for buffers it holds.
                for (int i = 0; i < _pendingCount; i++) queue.Unpop();
                _pendingCount = 0;
                RxDropped++;
                return true;
            }
            if (!queue.Pop(_rxChain)) return false;
            int room = (int)Math.Min(_rxChain.WritableLength, (ulong)(_pendingEnd - _pendingPos));
            int written = _rxChain.Write(0, _scratch.AsSpan(_pendingPos, room));
            _pendingHeads[_pendingCount] = _rxChain.Head;
            _pendingLengths[_pendingCount] = (uint)written;
            _pendingCount++;
            _pendingPos += written;
        }
        SetNumBuffers(_rxHead, (ushort)_pendingCount);
        for (int i = 0; i < _pendingCount; i++) queue.AddUsed(_pendingHeads[i], _pendingLengths[i]);
        used += _pendingCount;
        _pendingCount = 0;
        return true;
    }

    private static void SetNumBuffers(DescriptorChain chain, ushort count)
    {
        Span<byte> value = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(value, count);
        chain.Write(NumBuffersOffset, value);
    }

    /// <summary>Fills _iov with the chain's device-writable buffers; returns how many.</summary>
    private int GatherWritable(DescriptorChain chain)
    {
        int n = 0;
        for (int i = chain.ReadableCount; i < chain.Count; i++) n = AddIovec(chain, i, n);
        return n;
    }

    private int GatherReadable(DescriptorChain chain)
    {
        int n = 0;
        for (int i = 0; i < chain.ReadableCount; i++) n = AddIovec(chain, i, n);
        return n;
    }

    private int AddIovec(DescriptorChain chain, int i, int n)
    {
        uint length = chain.Length(i);
        if (length == 0) return n;
        // The chain checked every buffer against guest RAM when it was popped; this cannot fail for a loaded chain.
        if (!Memory.TryGetIovec(chain.Address(i), length, out _iov[n]))
            throw new VirtqueueException($"buffer at 0x{chain.Address(i):x} (+{length}) is outside guest RAM");
        return n + 1;
    }

    /// <summary>readv of one frame; -1 when there is none now (or the backend failed: then the device stops).</summary>
    private long ReadFrame(int count)
    {
        nint n = Transfer(write: false, count, out int errno);
        if (n < 0 && errno != Libc.EAGAIN) Stop($"reading from {_backend!.Name}: {Libc.ErrorText(errno)}");
        return n;
    }

    /// <summary>One readv or writev of the first <paramref name="count"/> entries of _iov (each points into
    /// guest RAM or the pinned scratch array); offset -1 is the file position, as readv/writev.</summary>
    private nint Transfer(bool write, int count, out int errno)
    {
        var iov = _iov.AsSpan(0, count);
        nint n = write ? VectoredIo.Write(_backend!.Fd, iov, -1) : VectoredIo.Read(_backend!.Fd, iov, -1);
        errno = n < 0 ? (int)-n : 0;
        return n;
    }

    // ---- transmit: guest -> backend ----

    private void Transmit()
    {
        var queue = Queue(TxQueue);
        if (!queue.Active || _txBlocked) return;
        int used = 0;
        while (queue.Pop(_txChain))
        {
            ulong length = _txChain.ReadableLength;
            if (length < HeaderSize || length > HeaderSize + MaxFrame)
            {
                TxDropped++;
                Log.Debug($"virtio-net {Id}: dropped a transmit chain of {length} bytes (header {HeaderSize}, frame at most {MaxFrame})");
            }
            else if (_broken || _backend is null)
            {
                TxDropped++; // the backend is gone: drop rather than let the guest's transmit queue time out
            }
            else if (!WriteFrame(GatherReadable(_txChain), length))
            {
                queue.Unpop(); // the backend is full: retry this chain when it becomes writable
                _txBlocked = true;
                break;
            }
            queue.AddUsed(_txChain.Head, 0);
            used++;
        }
        if (used > 0) SignalUsed(queue);
    }

    /// <summary>writev of one frame; false only when the backend has no room now (EAGAIN). Other failures (the
    /// interface is down, the tap rejected the header) drop the frame.</summary>
    private bool WriteFrame(int count, ulong length)
    {
        if (Transfer(write: true, count, out int errno) >= 0) return true;
        if (errno == Libc.EAGAIN) return false;
        TxDropped++;
        Log.Debug($"virtio-net {Id}: {_backend!.Name} refused a {length}-byte frame: {Libc.ErrorText(errno)}");
        return true;
    }

    public override void Dispose()
    {
        _backend?.Dispose();
        base.Dispose();
    }
}
