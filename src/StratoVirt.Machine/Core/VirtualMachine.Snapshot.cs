using System.Diagnostics;
using StratoVirt.Devices.State;
using StratoVirt.Machine.Snapshot;
using StratoVirt.Memory;
using StratoVirt.Sys;
using StratoVirt.Virtio.Transport.Mmio;

namespace StratoVirt.Machine;

/// <summary>Snapshots: the machine's saved-state parts in a fixed order (the KVM VM, devices, vCPUs), written with
/// guest RAM into a directory while the VM is paused, and restored into a machine just built from the same
/// command line.</summary>
public sealed partial class VirtualMachine
{
    private readonly List<IStateful> _stateful = [];
    private readonly List<VirtioMmioTransport> _virtioSlots = [];
    private SnapshotStatus _snapshotStatus = new("none", null);

    /// <summary>Adds a part to the machine's saved state; parts are saved and restored in the order added.</summary>
    internal void AddStateful(IStateful part) => _stateful.Add(part);

    /// <summary>Adds a virtio-mmio slot to the saved state; the device it holds at snapshot time (hotplug may
    /// replace it) stops processing its queues while the snapshot is taken.</summary>
    internal void AddVirtioSlot(VirtioMmioTransport transport)
    {
        AddStateful(new VirtioSlotStateful(_virtioSlots.Count, transport));
        _virtioSlots.Add(transport);
    }

    SnapshotStatus IMachineControl.SnapshotStatus => _snapshotStatus;

    bool IMachineControl.TrySnapshot(string directory, out string? error)
    {
        if (!_paused)
        {
            error = "the VM is running: pause it with stop before migrate";
            return false;
        }
        error = UnsavablePart();
        if (error is not null) return false;
        _snapshotStatus = new("active", null);
        string memoryPath = MemoryImage.PathIn(directory), statePath = Path.Combine(directory, "state");
        var clock = Stopwatch.StartNew();
        try
        {
            ulong written = TakeSnapshot(memoryPath, statePath);
            _snapshotStatus = new("completed", null);
            Log.Info($"snapshot written to {directory} in {clock.Elapsed.TotalMilliseconds:F0} ms: {written >> 20} MiB of {Memory.TotalSize >> 20} MiB of RAM were not zero");
            error = null;
            return true;
        }
        catch (Exception e) when (e is VmmException or IOException)
        {
            Libc.Unlink(memoryPath);
            Libc.Unlink(statePath);
            error = $"snapshot to {directory} failed: {e.Message}";
            _snapshotStatus = new("failed", error);
            Log.Warn(error);
            return false;
        }
    }

    /// <summary>What this machine holds that a snapshot cannot save, as upstream refuses it, or null: RAM shared
    /// with or backed by a file (a restore maps the memory file privately), a device whose queues a backend (a vhost-user
    /// process or the kernel's vhost) serves (its rings' state is there).</summary>
    /// <summary>Why this machine cannot be saved at all (a machine type whose CPU state is not saved yet), or null.</summary>
    internal string? SnapshotUnsupported { get; set; }

    private string? UnsavablePart()
    {
        if (SnapshotUnsupported is { } why) return why;
        if (Memory.Backing.Kind is not (RamBackingKind.Anonymous or RamBackingKind.Snapshot))
            return "guest RAM on a memfd or file (mem-share=on, -mem-path, a memory backend) cannot be saved in a snapshot";
        foreach (var slot in _virtioSlots)
        {
            if (slot.Device.BackendQueues is { } backend)
                return $"device '{slot.Device.Id}' cannot be saved in a snapshot: its queues' state is held by {backend.Backend}";
        }
        return null;
    }

    /// <summary>Writes the memory file, then the state file, while no device processes its queues (their event
    /// loops may run, but every device's gate is held). Files of an earlier snapshot are unlinked, not
    /// overwritten: VMs restored from them may still map them.</summary>
    private ulong TakeSnapshot(string memoryPath, string statePath)
    {
        var gates = _virtioSlots.ConvertAll(t => t.Device.Gate);
        int locked = 0;
        try
        {
            for (; locked < gates.Count; locked++) Monitor.Enter(gates[locked]);
            var records = _stateful.ConvertAll(StateRecord.Capture);
            var state = new SnapshotState(SnapshotState.ThisArchitecture, "microvm", _config.Cpus.Count,
                Memory.Layout, SnapshotState.FactsOf(_config), records);
            ulong written;
            using (var memoryFile = CreateFile(memoryPath))
            {
                written = MemoryImage.Write(Memory, memoryFile.Fd);
                Sync(memoryFile, memoryPath);
            }
            using var stateFile = CreateFile(statePath);
            int result = VectoredIo.WriteAll(stateFile.Fd, state.Encode(), 0);
            if (result < 0) throw new SysException($"write {statePath}", -result);
            Sync(stateFile, statePath);
            return written;
        }
        finally
        {
            for (int i = locked - 1; i >= 0; i--) Monitor.Exit(gates[i]);
        }
    }

    private static FileDescriptor CreateFile(string path)
    {
        Libc.Unlink(path);
        return FileDescriptor.Open(path, Libc.O_WRONLY | Libc.O_CREAT | Libc.O_EXCL, 0x180 /* 0600 */);
    }

    private static void Sync(FileDescriptor file, string path)
    {
        if (Libc.FDataSync(file.Fd) != 0) throw SysException.Last($"fdatasync {path}");
    }

    /// <summary>Gives every part its record from <paramref name="state"/>, in the order the parts were added; the
    /// machine was built from a command line the snapshot matches (<see cref="SnapshotState.CheckMatches"/>).</summary>
    internal void Restore(SnapshotState state, string path)
    {
        if (state.Records.Count != _stateful.Count)
            throw new SnapshotException($"{path} holds {state.Records.Count} state records; this machine has {_stateful.Count} parts");
        try
        {
            for (int i = 0; i < _stateful.Count; i++) state.Records[i].Restore(_stateful[i]);
        }
        catch (StateException e)
        {
            throw new SnapshotException($"{path}: {e.Message}");
        }
    }
}
