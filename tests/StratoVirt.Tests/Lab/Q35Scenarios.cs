namespace StratoVirt.Tests.Lab;

/// <summary>The q35 standard VM in the nested lab: Debian's cloud kernel booted directly with 2 vCPUs and 512 MiB,
/// running the guest's /tests/q35.sh (ACPI tables, PCI functions, CPUs, RTC), then powering off through PM1.</summary>
public static class Q35Scenarios
{
    public const int Cpus = 2, MemoryMiB = 512;

    public static readonly string[] Lines =
    [
        $"scenario q35-boot 240 env STRATOVIRT_LOG_LEVEL=info \"$VMM\" -machine q35 -kernel \"$KERNEL\" " +
        "-initrd \"$INITRD\" -append \"console=ttyS0 reboot=k panic=1 lab.action=test lab.test=q35\" " +
        $"-m {MemoryMiB} -smp {Cpus} -serial stdio -name q35-boot -D",
    ];
}
