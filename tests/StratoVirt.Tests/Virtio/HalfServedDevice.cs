using StratoVirt.Devices.State;
using StratoVirt.Virtio;

namespace StratoVirt.Tests.Virtio;

/// <summary>A test device whose first queue a backend outside the VMM serves (the test plays the backend on the
/// eventfds the device hands out) and whose second the VMM keeps, as vhost-vsock keeps its event queue.</summary>
internal sealed class HalfServedDevice : VirtioDevice
{
    public HalfServedDevice() : base(0x7E, 2) => BackendQueues = new BackendQueues(1, "the test backend");

    public List<int> Processed { get; } = [];

    protected override ulong DeviceFeatures => 0;

    protected override void OnActivate() => WatchBackendQueue(0);

    public override void ProcessQueue(int index) => Processed.Add(index);

    public override string StateName => "half-served";
    public override int StateVersion => 1;
    protected override void SaveDeviceState(StateWriter writer) => writer.WriteUInt64(Features);
    protected override void RestoreDeviceState(StateReader reader) => RestoreFeatures(reader.ReadUInt64());

    public override void Dispose()
    {
        BackendQueues!.Dispose();
        base.Dispose();
    }
}
