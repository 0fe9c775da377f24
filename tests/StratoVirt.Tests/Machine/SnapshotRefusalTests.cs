using StratoVirt.Machine;
using StratoVirt.Memory;
using StratoVirt.Virtio.Devices;
using StratoVirt.Virtio.Devices.Fs;
using StratoVirt.Virtio.Transport.Mmio;
using StratoVirt.Tests.Devices;
using StratoVirt.Tests.Virtio;

namespace StratoVirt.Tests.Machine;

/// <summary>migrate refuses, in one line and before it writes anything, what a snapshot cannot hold: guest RAM
/// shared through a memfd, a device whose queues a vhost-user backend (here a fake one on a real socket) serves.</summary>
[Trait("Level", "Unit")]
public sealed class SnapshotRefusalTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly FakeVhostUserBackend _backend;

    public SnapshotRefusalTests() => _backend = new FakeVhostUserBackend(Path.Combine(_dir.Path, "backend.sock"));

    public void Dispose()
    {
        _backend.Dispose();
        _dir.Dispose();
    }

    private static VirtualMachine PausedMachine(RamBacking ram)
    {
        var vm = new VirtualMachine(new MachineConfig { KernelPath = "none", Seccomp = false, Cpus = CpuTopology.Single(1) });
        vm.Memory = vm.Own(new GuestMemory([(0, 16UL << 20)], ram));
        ((IMachineControl)vm).Stop();
        return vm;
    }

    private string Refusal(VirtualMachine vm)
    {
        string snapshot = Path.Combine(_dir.Path, "snap");
        Directory.CreateDirectory(snapshot);
        Assert.False(((IMachineControl)vm).TrySnapshot(snapshot, out string? error));
        Assert.Empty(Directory.GetFiles(snapshot));
        Assert.Equal("none", ((IMachineControl)vm).SnapshotStatus.Status);
        return error!;
    }

    [Fact]
    public void AVhostUserDeviceIsNamed()
    {
        using var vm = PausedMachine(RamBacking.Default);
        using var device = new VhostUserFs("labfs", 1, 128, new VhostUserBackend("chr0", _backend.Path)) { Id = "fs0" };
        vm.AddVirtioSlot(new VirtioMmioTransport(device, vm.Memory, new CountingInterruptLine()));
        Assert.Equal($"device 'fs0' cannot be saved in a snapshot: its queues' state is held by the vhost-user backend on {_backend.Path}", Refusal(vm));
    }

    [Fact]
    public void SharedGuestRamIsRefused()
    {
        using var vm = PausedMachine(new RamBacking { Kind = RamBackingKind.Memfd, Shared = true });
        Assert.Equal("guest RAM on a memfd or file (mem-share=on, -mem-path, a memory backend) cannot be saved in a snapshot", Refusal(vm));
    }
}
