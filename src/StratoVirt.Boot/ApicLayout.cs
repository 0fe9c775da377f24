namespace StratoVirt.Boot;

/// <summary>The x86 interrupt-controller layout that the MP table and the ACPI MADT both describe.</summary>
public static class ApicLayout
{
    /// <summary>Guest physical address of every vCPU's local APIC (the architectural default).</summary>
    public const uint LocalApicAddress = 0xFEE0_0000;

    /// <summary>Guest physical address of KVM's in-kernel I/O APIC.</summary>
    public const uint IoApicAddress = 0xFEC0_0000;

    /// <summary>Version register value of KVM's local APIC (integrated xAPIC).</summary>
    public const byte LocalApicVersion = 0x14;

    /// <summary>Version register value of KVM's I/O APIC (82093AA).</summary>
    public const byte IoApicVersion = 0x11;

    /// <summary>Input pins of KVM's I/O APIC; GSI n is pin n.</summary>
    public const int IoApicPins = 24;

    /// <summary>Most vCPUs an xAPIC table can name: ids 0..253, since 0xFF is the broadcast id and 0xFE is the I/O APIC.</summary>
    public const int MaxCpus = 254;

    /// <summary>
    /// APIC id of the I/O APIC: fixed at 0xFE, the highest non-broadcast xAPIC id. vCPU i has APIC id i and there are
    /// at most 254 vCPUs (ids 0..253), so the id is unique for every CPU count and stays free if CPUs are hot-added.
    /// </summary>
    public const byte IoApicId = 0xFE;

    internal static void CheckCpuCount(int cpuCount, string paramName)
    {
        if (cpuCount < 1 || cpuCount > MaxCpus)
            throw new ArgumentOutOfRangeException(paramName, cpuCount, $"vCPU count must be 1..{MaxCpus}");
    }
}
