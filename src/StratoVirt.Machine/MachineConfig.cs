using StratoVirt.Devices.Chardev;
using StratoVirt.Devices.Pci;
using StratoVirt.Memory;
using StratoVirt.Virtio.Devices;

namespace StratoVirt.Machine;

/// <summary>The vCPU topology from -smp; Count vCPUs are created, MaxCpus bounds hotplug.</summary>
public sealed record CpuTopology(int Count, int MaxCpus, int Sockets, int Dies, int Clusters, int Cores, int Threads)
{
    public const int Limit = 254;

    public static CpuTopology Single(int count) => new(count, count, 1, 1, 1, count, 1);
}

/// <summary>The -machine type: the microVM (virtio-mmio) or the q35 standard VM (PCI Express).</summary>
public enum MachineType { MicroVm, Q35 }

/// <summary>Everything needed to build and run a machine.</summary>
public sealed record MachineConfig
{
    public string Name { get; init; } = "StratoVirt";
    public MachineType Type { get; init; } = MachineType.MicroVm;
    public ulong MemorySize { get; init; } = 256UL << 20;
    public CpuTopology Cpus { get; init; } = CpuTopology.Single(1);
    /// <summary>-kernel; null only on a q35 machine with firmware (<see cref="Pflash"/>), which boots from its disks.</summary>
    public string? KernelPath { get; init; }
    public string? InitrdPath { get; init; }
    public string CommandLine { get; init; } = "";
    /// <summary>The chardev of the serial port (COM1, -serial); null: the machine has no serial port.</summary>
    public ChardevConfig? Serial { get; init; }
    /// <summary>Describe the machine with ACPI tables (Linux also gets an MP table either way).</summary>
    public bool Acpi { get; init; } = true;
    /// <summary>-machine dump-guest-core: whether guest RAM goes into the VMM's core dumps.</summary>
    public bool DumpGuestCore { get; init; } = true;
    /// <summary>What backs guest RAM (-machine mem-share, memory-backend, -mem-path, -mem-prealloc); its Dumpable
    /// is overridden by <see cref="DumpGuestCore"/>=false.</summary>
    public RamBacking Ram { get; init; } = RamBacking.Default;
    /// <summary>-S / -freeze: the vCPUs wait for QMP <c>cont</c>.</summary>
    public bool StartPaused { get; init; }
    /// <summary>-no-reboot: a reset of a machine that can reset (q35) ends the VM instead, as on the microVM.</summary>
    public bool NoReboot { get; init; }
    /// <summary>Confine every thread with its seccomp allow-list before the guest runs (-disable-seccomp: off).</summary>
    public bool Seccomp { get; init; } = true;
    /// <summary>Whether the machine keeps hotplug slots (a management client exists to use them: -qmp or -mon).</summary>
    public bool HotplugSlots { get; init; }
    /// <summary>virtio-mmio devices, in slot order.</summary>
    public IReadOnlyList<VirtioDeviceConfig> Devices { get; init; } = [];
    /// <summary>q35: the pcie-root-port devices (native hotplug slots) on pcie.0.</summary>
    public IReadOnlyList<PcieRootPortConfig> RootPorts { get; init; } = [];
    /// <summary>q35: -global pcie-root-port.fast-unplug=1, unplug without the guest's attention-button delay.</summary>
    public bool FastUnplug { get; init; }
    /// <summary>Ids of the -object iothread event loops.</summary>
    public IReadOnlyList<string> IoThreads { get; init; } = [];
    /// <summary>-drive if=pflash: the q35 machine's firmware flash units, unit 0 first; empty: direct kernel boot.</summary>
    public IReadOnlyList<PflashDrive> Pflash { get; init; } = [];
    /// <summary>-incoming: the snapshot the machine is restored from instead of booting; null: boot.</summary>
    public IncomingSnapshot? Incoming { get; init; }
}

/// <summary>A flash unit: <paramref name="Unit"/> 0 holds the firmware code (read-only), 1 its variables.</summary>
public sealed record PflashDrive(int Unit, string Path, bool ReadOnly);

/// <summary>A snapshot directory to restore from; <paramref name="Mapped"/>: map its memory file privately
/// (copy-on-write) rather than read it in.</summary>
public sealed record IncomingSnapshot(string Directory, bool Mapped);
