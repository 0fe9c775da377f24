using StratoVirt.Devices.State;
using StratoVirt.Memory;
using StratoVirt.Sys;

namespace StratoVirt.Virtio.VhostUser;

/// <summary>Which device lost its vhost-user backend, and where that backend listened.</summary>
public sealed record VhostUserDisconnect(string Device, string Chardev, string Path);

/// <summary>
/// A virtio device whose queues a vhost-user backend process serves (virtiofsd, qemu-storage-daemon). The VMM keeps
/// the transport (status, features, the device's configuration space) and connects, as a client, to the backend's
/// socket when the device is created: features, protocol features, queue count and owner are settled then, so a
/// backend that is missing or incompatible stops the start-up with one line.
/// <para>When the driver sets DRIVER_OK the backend gets guest RAM's memory table (the fds of the shared RAM) and,
/// per ready queue, its size, start, addresses, and three eventfds: kick is the queue's notify eventfd, which KVM
/// signals on the guest's QueueNotify write (ioeventfd, datamatch the queue index), so the guest reaches the backend
/// without the VMM; call and err are eventfds this device watches on its loop. Call is not bound to the slot's irqfd
/// directly: a virtio-mmio driver reads InterruptStatus on each interrupt and ignores the rings unless the
/// used-buffer bit is set, so the VMM sets the bit and then pulses the irqfd (one extra wake-up per interrupt).</para>
/// <para>A reset stops every ring (GET_VRING_BASE). A backend that closes its socket is noticed on the device's loop:
/// the device goes to NEEDS_RESET (a configuration interrupt tells the driver), <see cref="Disconnected"/> is raised
/// for the machine's management clients, and the VM runs on; the device stays failed, since the VMM does not
/// reconnect.</para>
/// </summary>
public abstract class VhostUserDevice : VirtioDevice
{
    /// <summary>Ring and version features a backend may offer the guest through this VMM's transport.</summary>
    private const ulong RingFeatures = VirtioFeature.Version1 | VirtioFeature.RingIndirectDesc | VirtioFeature.RingEventIdx;

    private readonly VhostUserFrontend _frontend;
    private readonly EventFd[] _call, _err;
    private readonly List<int> _started = [];
    private ulong _hangUpToken;
    private bool _disconnected;

    /// <summary>Connects to the backend and settles what does not depend on the driver.</summary>
    /// <exception cref="VhostUserException">Nobody listens, the backend breaks the protocol, or it lacks what the
    /// device needs (VIRTIO_F_VERSION_1, enough queues).</exception>
    protected VhostUserDevice(uint deviceId, int queueCount, ushort queueSize, string chardev, string path)
        : base(deviceId, queueCount, queueSize)
    {
        Chardev = chardev;
        _frontend = VhostUserFrontend.Connect(path);
        _call = new EventFd[queueCount];
        _err = new EventFd[queueCount];
        try
        {
            for (int i = 0; i < queueCount; i++)
            {
                _call[i] = new EventFd();
                _err[i] = new EventFd();
            }
            BackendFeatures = _frontend.GetFeatures();
            if ((BackendFeatures & VirtioFeature.Version1) == 0)
                throw new VhostUserException($"vhost-user socket {path}: the backend does not offer VIRTIO_F_VERSION_1; legacy devices are not supported");
            if ((BackendFeatures & VhostUserFeature.ProtocolFeatures) != 0)
            {
                _frontend.SetProtocolFeatures(_frontend.GetProtocolFeatures() & VhostUserProtocolFeature.Supported);
                if ((_frontend.ProtocolFeatures & VhostUserProtocolFeature.MultiQueue) != 0)
                {
                    ulong backendQueues = _frontend.GetQueueNum();
                    if (backendQueues < (ulong)queueCount)
                        throw new VhostUserException($"vhost-user socket {path}: the backend serves {backendQueues} queues; the device needs {queueCount}");
                }
            }
            _frontend.SetOwner();
        }
        catch
        {
            DisposeHost();
            throw;
        }
    }

    /// <summary>The -chardev the device names (for messages and events).</summary>
    public string Chardev { get; }

    /// <summary>The backend's socket path.</summary>
    public string SocketPath => _frontend.Path;

    /// <summary>What the backend offered (GET_FEATURES).</summary>
    protected ulong BackendFeatures { get; }

    /// <summary>The protocol features both sides use.</summary>
    protected ulong ProtocolFeatures => _frontend.ProtocolFeatures;

    /// <summary>The frontend, for a device's own requests (GET_CONFIG) while it is created. Under Gate afterwards.</summary>
    protected VhostUserFrontend Frontend => _frontend;

    /// <summary>Raised on the device's loop when the backend closed its socket.</summary>
    public event Action<VhostUserDisconnect>? Disconnected;

    public override bool ExternalQueues => true;

    protected override ulong TransportFeatures => BackendFeatures & RingFeatures;

    public override void ProcessQueue(int index) { } // the backend serves the queues (ExternalQueues)

    protected internal override void OnAttach() =>
        _hangUpToken = Loop.Add(_frontend.Fd, Libc.EPOLLRDHUP, _ => OnHangUp());

    private void OnHangUp()
    {
        Loop.Remove(_hangUpToken); // the hang-up stays readable; one report is enough
        _hangUpToken = 0;
        lock (Gate)
        {
            _disconnected = true;
            Log.Warn($"virtio {Id}: the vhost-user backend on {SocketPath} (chardev '{Chardev}') closed its socket");
            FailFromHost($"its vhost-user backend on {SocketPath} disconnected");
        }
        Disconnected?.Invoke(new VhostUserDisconnect(Id, Chardev, SocketPath));
    }

    protected override void OnActivate()
    {
        if (_disconnected) throw new VhostUserException($"its vhost-user backend on {SocketPath} has disconnected");
        bool protocol = (BackendFeatures & VhostUserFeature.ProtocolFeatures) != 0;
        _frontend.SetFeatures((Features & BackendFeatures) | (protocol ? VhostUserFeature.ProtocolFeatures : 0));
        _frontend.SetMemTable(MemoryTable(Memory));
        for (int q = 0; q < QueueCount; q++)
        {
            var queue = Queue(q);
            if (!queue.Active) continue;
            _frontend.SetVringNum(q, queue.Size);
            _frontend.SetVringBase(q, 0);
            _frontend.SetVringAddress(q, HostAddress(queue.DescTable, 16UL * queue.Size),
                HostAddress(queue.UsedRing, 6 + 8UL * queue.Size), HostAddress(queue.AvailRing, 6 + 2UL * queue.Size));
            int index = q;
            Watch(_call[q].Fd, Libc.EPOLLIN, _ =>
            {
                _call[index].Drain();
                SignalBackendUsed(index);
            });
            Watch(_err[q].Fd, Libc.EPOLLIN, _ =>
            {
                _err[index].Drain();
                throw new VhostUserException($"its vhost-user backend reported an error on queue {index}");
            });
            _frontend.SetVringCall(q, _call[q].Fd);
            _frontend.SetVringErr(q, _err[q].Fd);
            _frontend.SetVringKick(q, QueueNotifyEvent(q).Fd);
            _started.Add(q);
            if (protocol) _frontend.SetVringEnable(q, true);
        }
    }

    /// <summary>Stops the rings the backend runs; a backend that is gone or fails to answer is only logged, since
    /// the driver's reset goes through either way.</summary>
    protected override void OnReset()
    {
        try
        {
            if (_disconnected) return;
            bool protocol = (BackendFeatures & VhostUserFeature.ProtocolFeatures) != 0;
            foreach (int q in _started)
            {
                if (protocol) _frontend.SetVringEnable(q, false);
                _frontend.GetVringBase(q);
            }
        }
        catch (VhostUserException e)
        {
            Log.Warn($"virtio {Id}: stopping the vhost-user backend's rings: {e.Message}");
        }
        finally
        {
            _started.Clear();
            foreach (var fd in _call) fd.Drain();
            foreach (var fd in _err) fd.Drain();
        }
    }

    private ulong HostAddress(ulong guestAddress, ulong length) =>
        Memory.TryGetHostAddress(guestAddress, length, out nint host) ? (ulong)host
            : throw new GuestMemoryException(guestAddress, length);

    /// <summary>Guest RAM's regions as the backend maps them: each must be shared memory with a file behind it.</summary>
    public static VhostUserMemoryRegion[] MemoryTable(GuestMemory memory)
    {
        if (memory.Regions.Count > VhostUserCodec.MaxRegions)
            throw new VhostUserException($"guest RAM has {memory.Regions.Count} regions; vhost-user takes at most {VhostUserCodec.MaxRegions}");
        var table = new VhostUserMemoryRegion[memory.Regions.Count];
        for (int i = 0; i < table.Length; i++)
        {
            var r = memory.Regions[i];
            if (!r.Shared || r.File is null)
                throw new VhostUserException("guest RAM is not shared with other processes (use -machine mem-share=on or a memory backend with share=on)");
            table[i] = new VhostUserMemoryRegion(r.GuestAddress, r.Size, (ulong)r.HostAddress, r.File.Fd, r.FileOffset);
        }
        return table;
    }

    public override string StateName => "vhost-user";
    public override int StateVersion => 1;

    /// <summary>The rings' state lives in the backend process, which this VMM cannot save or move.</summary>
    protected override void SaveDeviceState(StateWriter writer) =>
        throw new StateException($"vhost-user device {Id}: its state is in the backend process and cannot be saved");

    protected override void RestoreDeviceState(StateReader reader) =>
        throw new StateException($"vhost-user device {Id}: its state is in the backend process and cannot be restored");

    private void DisposeHost()
    {
        _frontend.Dispose();
        foreach (var fd in _call) fd?.Dispose();
        foreach (var fd in _err) fd?.Dispose();
    }

    public override void Dispose()
    {
        if (_hangUpToken != 0) Loop.Remove(_hangUpToken);
        DisposeHost();
        base.Dispose();
    }
}
