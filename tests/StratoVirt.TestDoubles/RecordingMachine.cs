using StratoVirt.Devices.Pci;
using StratoVirt.Machine;

namespace StratoVirt.Tests.Unit;

/// <summary>A machine double for QMP: every control command succeeds and does nothing; hotplug calls are recorded,
/// or refused with <see cref="Refusal"/>.</summary>
public sealed class RecordingMachine : IMachineControl, IHotplug
{
    public readonly List<object> Calls = [];
    public string? Refusal;

    public void Quit() { }
    public void SystemReset() { }
    public void SystemPowerdown() { }
    public ulong? BalloonActual => null;
    public bool TrySetBalloon(ulong targetBytes, out string? error) { error = "none"; return false; }
    public IReadOnlyList<(int Index, int ThreadId)> CpuThreads => [];
    public bool Running => true;
    public void Stop() { }
    public void Cont() { }
    public bool TrySnapshot(string directory, out string? error) { Calls.Add($"snapshot {directory}"); error = null; return true; }
    public SnapshotStatus SnapshotStatus => new("none", null);
    public IReadOnlyList<PciFunctionInfo> PciFunctions => [];

    private void Record(object call)
    {
        if (Refusal is not null) throw new HotplugException(Refusal);
        Calls.Add(call);
    }

    public void BlockdevAdd(BlockdevSpec spec) => Record(spec);
    public void BlockdevDel(string nodeName) => Record($"blockdev-del {nodeName}");
    public void NetdevAdd(NetdevSpec spec) => Record(spec);
    public void NetdevDel(string id) => Record($"netdev-del {id}");
    public void DeviceAdd(DeviceAddSpec spec) => Record(spec);
    public void DeviceDel(string id) => Record($"device-del {id}");
}
