namespace StratoVirt.Boot.Acpi;

/// <summary>What the ACPI tables describe: the vCPUs and the virtio-mmio devices.</summary>
/// <param name="CpuCount">vCPUs, 1..<see cref="ApicLayout.MaxCpus"/>; vCPU i has APIC id i.</param>
/// <param name="VirtioDevices">virtio-mmio transports, in the order they get names V000, V001, ...</param>
public sealed record AcpiConfig(int CpuCount, IReadOnlyList<VirtioMmioWindow> VirtioDevices);

/// <summary>One virtio-mmio transport as the guest sees it: its register window and its I/O APIC input (GSI).</summary>
public readonly record struct VirtioMmioWindow(ulong Base, uint Size, uint Irq);
