using StratoVirt.Devices.State;
using StratoVirt.Memory;
using StratoVirt.Sys;

namespace StratoVirt.Virtio;

/// <summary>What a device needs from its transport once the driver has set it up: it says what happened, the
/// transport decides which interrupt that is.</summary>
public interface IVirtioTransport
{
    /// <summary>Queue <paramref name="queue"/> has used buffers the driver wants to hear about.</summary>
    void SignalUsed(int queue);

    /// <summary>The configuration space changed (the driver re-reads it).</summary>
    void SignalConfigChange();

    /// <summary>Stops the device after the guest misprogrammed it: NEEDS_RESET until the driver resets it.</summary>
    void Fail(string reason);

    /// <summary>The eventfd the driver's notifications of queue <paramref name="queue"/> arrive on (KVM ioeventfd on
    /// the notify register), for a device whose queues an external backend serves.</summary>
    EventFd NotifyEvent(int queue);
}

/// <summary>
/// The device half of a virtio device: features, config space and queue processing. All processing of one device
/// runs on its event loop (the main loop or an iothread) under <see cref="Gate"/>, which the transport also takes
/// to activate and reset the device from a vCPU thread. Its saved state is the features its driver accepted and
/// its own fields (each device's state record); the queues' and the transport's are the transport core's.
/// </summary>
public abstract class VirtioDevice : IStateful, IDisposable
{
    private readonly List<ulong> _watches = [];
    private readonly HashSet<int> _backendWatched = [];
    private readonly Dictionary<int, ulong> _callWatches = [];
    private IVirtioTransport? _transport;
    private Virtqueue[] _queues = [];

    protected VirtioDevice(uint deviceId, int queueCount, ushort maxQueueSize = 256)
    {
        DeviceId = deviceId;
        QueueCount = queueCount;
        MaxQueueSize = maxQueueSize;
    }

    public uint DeviceId { get; }
    public int QueueCount { get; }
    public ushort MaxQueueSize { get; }

    /// <summary>The device's -device id (for messages).</summary>
    public string Id { get; init; } = "";

    /// <summary>The loop that runs this device's queue processing and its host fds; set before the guest starts.</summary>
    public EventLoop Loop { get; set; } = null!;

    public object Gate { get; } = new();

    /// <summary>Device-type feature bits; the transport adds <see cref="TransportFeatures"/>.</summary>
    protected abstract ulong DeviceFeatures { get; }

    /// <summary>The ring and version features offered with the device's own: VERSION_1, INDIRECT_DESC and
    /// EVENT_IDX, which the VMM's queue code supports; a device whose queues a backend serves offers the backend's.</summary>
    protected virtual ulong TransportFeatures =>
        VirtioFeature.Version1 | VirtioFeature.RingIndirectDesc | VirtioFeature.RingEventIdx;

    public ulong OfferedFeatures => DeviceFeatures | TransportFeatures;

    /// <summary>The queues a process or the kernel outside the VMM serves (vhost-user, vhost-kernel); null when the
    /// VMM serves every queue. Set by the device's constructor, which owns it.</summary>
    public BackendQueues? BackendQueues { get; protected init; }

    /// <summary>Whether the backend serves queue <paramref name="index"/>: the transport then does not read its notify
    /// eventfd, which the device hands to the backend, and <see cref="ProcessQueue"/> is never called for it.</summary>
    public bool BackendServes(int index) => index < (BackendQueues?.Count ?? 0);

    /// <summary>Features the driver accepted; valid while active.</summary>
    public ulong Features { get; private set; }

    public abstract string StateName { get; }
    public abstract int StateVersion { get; }

    public void SaveState(StateWriter writer)
    {
        lock (Gate) SaveDeviceState(writer);
    }

    /// <summary>Restores the device's record into a device built from the same configuration that its driver has
    /// not started, before its transport core restores (and so re-activates) it.</summary>
    public void RestoreState(StateReader reader)
    {
        lock (Gate)
        {
            EnsureNotLive();
            RestoreDeviceState(reader);
        }
    }

    /// <summary>State is restored only into a device its driver has not started (a machine just built, or a
    /// device just reset). Under Gate.</summary>
    internal void EnsureNotLive()
    {
        if (Active) throw new StateException($"{StateName} {Id} is live: state is restored into a device its driver has not started");
    }

    /// <summary>Writes the device's state record: the features its driver accepted and its own fields. Under Gate.</summary>
    protected abstract void SaveDeviceState(StateWriter writer);

    /// <summary>Reads the whole record, checks it against the device, then applies it. Under Gate.</summary>
    protected abstract void RestoreDeviceState(StateReader reader);

    /// <summary>For <see cref="RestoreDeviceState"/>: the features the driver had accepted.</summary>
    protected void RestoreFeatures(ulong features) => Features = features;

    /// <summary>For <see cref="RestoreDeviceState"/>: the record was saved from a device set up differently (another
    /// image, chardev, CID, ...) than this one, which a restore does not change.</summary>
    protected StateException StateMismatch(string what, object? saved, object? current) =>
        new($"{StateName} {Id}: the saved state has {what} {saved ?? "(none)"}, the device has {current ?? "(none)"}");

    public bool Active => _transport is not null;

    protected GuestMemory Memory { get; private set; } = null!;

    protected Virtqueue Queue(int index) => _queues[index];

    /// <summary>Reads the device-specific configuration space; bytes past its end read as zero.</summary>
    public virtual void ReadConfig(uint offset, Span<byte> data) => data.Clear();

    /// <summary>Writes the configuration space; devices whose config is read-only ignore it.</summary>
    public virtual void WriteConfig(uint offset, ReadOnlySpan<byte> data) { }

    /// <summary>Helper for ReadConfig: copies the part of <paramref name="config"/> at <paramref name="offset"/>.</summary>
    protected static void ReadFrom(ReadOnlySpan<byte> config, uint offset, Span<byte> data)
    {
        data.Clear();
        if (offset >= config.Length) return;
        var part = config[(int)offset..];
        part[..Math.Min(part.Length, data.Length)].CopyTo(data);
    }

    /// <summary>Called by the transport, under <see cref="Gate"/>, when the driver sets DRIVER_OK.</summary>
    internal void Activate(IVirtioTransport transport, GuestMemory memory, Virtqueue[] queues, ulong features)
    {
        Memory = memory;
        _queues = queues;
        Features = features;
        _transport = transport;
        OnActivate();
    }

    /// <summary>Called by the transport, under <see cref="Gate"/>, on a device reset or failure.</summary>
    internal void Deactivate()
    {
        foreach (ulong token in _watches) Loop.Remove(token);
        _watches.Clear();
        _backendWatched.Clear();
        _callWatches.Clear();
        try
        {
            if (_transport is not null) OnReset();
        }
        finally
        {
            _transport = null; // inactive even if the device's own reset failed
            Features = 0;
        }
    }

    /// <summary>The device is in its slot and <see cref="Loop"/> will run: start watching host fds that live as long
    /// as the device (a backend's socket). Called once, by the transport.</summary>
    protected internal virtual void OnAttach() { }

    /// <summary>The queues are ready: start host-side I/O (e.g. watch a tap fd).</summary>
    protected virtual void OnActivate() { }

    /// <summary>The driver reset the device: drop any in-flight state.</summary>
    protected virtual void OnReset() { }

    /// <summary>The driver notified queue <paramref name="index"/>. Runs on <see cref="Loop"/> under <see cref="Gate"/>.</summary>
    public abstract void ProcessQueue(int index);

    /// <summary>Raises the used-buffer interrupt if the driver wants one for what was just added to the queue.</summary>
    protected void SignalUsed(Virtqueue queue)
    {
        if (queue.NeedsInterrupt()) _transport?.SignalUsed(queue.Index);
    }

    protected void SignalConfigChange() => _transport?.SignalConfigChange();

    /// <summary>The eventfd of queue <paramref name="queue"/>'s notifications, to hand to the backend as its kick;
    /// valid while active.</summary>
    protected EventFd QueueNotifyEvent(int queue) => _transport!.NotifyEvent(queue);

    /// <summary>Relays the backend's signals of queue <paramref name="queue"/> while the device is active: its call
    /// eventfd becomes the queue's used-buffer interrupt, its error eventfd stops the device (NEEDS_RESET). Called
    /// from <see cref="OnActivate"/> for each queue handed to the backend.</summary>
    protected void WatchBackendQueue(int queue)
    {
        var queues = BackendQueues!;
        var error = queues.Error(queue);
        _backendWatched.Add(queue);
        if (!queues.CallBound(queue)) WatchBackendCall(queue);
        Watch(error.Fd, Libc.EPOLLIN, _ =>
        {
            error.Drain();
            throw new VirtqueueException($"queue {queue}: {queues.Backend} could not use the ring (a bad descriptor or address)");
        });
    }

    private void WatchBackendCall(int queue)
    {
        var call = BackendQueues!.Call(queue);
        _callWatches[queue] = Watch(call.Fd, Libc.EPOLLIN, _ =>
        {
            call.Drain();
            _transport!.SignalUsed(queue);
        });
    }

    /// <summary>
    /// For a transport that can bind an eventfd to an interrupt in the hypervisor (virtio-pci's MSI-X vectors
    /// through KVM irqfd): whether the backend's call eventfd of <paramref name="queue"/> reaches the guest without
    /// the VMM (<paramref name="bound"/>), or is relayed by the device's loop as today. The transport unbinds before
    /// it calls this with false, and calls it with true before it binds, so no signal is lost in between (KVM takes
    /// one left in the eventfd when it binds). Under <see cref="Gate"/>.
    /// </summary>
    public void SetBackendCallBound(int queue, bool bound)
    {
        var queues = BackendQueues!;
        if (queues.CallBound(queue) == bound) return;
        queues.SetCallBound(queue, bound);
        if (bound && _callWatches.Remove(queue, out ulong token)) Unwatch(token);
        else if (!bound && _backendWatched.Contains(queue)) WatchBackendCall(queue);
    }

    /// <summary>Stops the device from its host side (its backend went away): NEEDS_RESET and a configuration
    /// interrupt until the driver resets it. Under Gate, while active.</summary>
    protected void FailFromHost(string reason) => _transport?.Fail(reason);

    /// <summary>Watches a host fd on the device's loop while the device is active; the handler runs under Gate.</summary>
    protected ulong Watch(int fd, uint events, Action<uint> handler)
    {
        ulong token = Loop.Add(fd, events, ready => RunGuarded(handler, ready));
        _watches.Add(token);
        return token;
    }

    /// <summary>Runs host-side work (a callback from a backend) under <see cref="Gate"/>, only while the device is
    /// active; whatever it throws (a malformed ring met on the way, a backend failure) fails the device as in
    /// queue processing, and the VM runs on.</summary>
    protected void RunGuarded<T>(Action<T> handler, T argument)
    {
        lock (Gate)
        {
            if (!Active) return;
            try { handler(argument); }
            catch (Exception e) { _transport!.Fail(DescribeFailure(e)); }
        }
    }

    /// <summary>The reason a device stops: a guest's misprogramming is named as it is; anything else the device
    /// threw (a host-side failure, a defect) also names its type, since it is not the guest's doing.</summary>
    internal static string DescribeFailure(Exception e) =>
        e is VirtqueueException or GuestMemoryException ? e.Message : $"{e.GetType().Name}: {e.Message}";

    /// <summary>Stops watching one fd that <see cref="Watch"/> added (e.g. a closed connection's socket).</summary>
    protected void Unwatch(ulong token)
    {
        Loop.Remove(token);
        _watches.Remove(token);
    }

    public virtual void Dispose() => GC.SuppressFinalize(this);
}
