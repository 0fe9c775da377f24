namespace StratoVirt.Tests.Lab;

/// <summary>The real-Linux boots of the nested lab, as lines of the scenario file (see scripts/lab/outer/lib.sh).</summary>
public static class LinuxScenarios
{
    public const string TypedCommands = @"uname -a\necho typed-$((6*7))\npoweroff -f";

    private static string Boot(string name, int cpus, int memoryMiB, string action, string extraAppend = "",
        string kernel = "\"$KERNEL\"") =>
        $"scenario {name} 300 env STRATOVIRT_LOG_LEVEL=info \"$VMM\" -machine microvm -kernel {kernel} " +
        $"-initrd \"$INITRD\" -append \"console=ttyS0 reboot=k panic=1 lab.action={action}{extraAppend}\" " +
        $"-m {memoryMiB} -smp {cpus} -serial stdio -name {name} -D";

    public static readonly string[] Lines =
    [
        Boot("linux-1cpu-poweroff", 1, 256, "poweroff"),
        Boot("linux-2cpu-reboot", 2, 256, "reboot"),
        Boot("linux-acpi-off-reboot", 2, 256, "reboot", " acpi=off"),
        Boot("linux-4cpu-poweroff", 4, 512, "poweroff"),
        // The same kernel as an uncompressed ELF vmlinux (extracted from the bzImage), entered at e_entry.
        Boot("linux-elf-poweroff", 2, 256, "poweroff", kernel: "/lab/vmlinux"),
        $"LAB_INPUT_AFTER=GUEST-SHELL scenario_input linux-shell 300 '{TypedCommands}' \"$VMM\" -machine microvm " +
        "-kernel \"$KERNEL\" -initrd \"$INITRD\" -append \"console=ttyS0 reboot=k panic=1 lab.action=shell\" " +
        "-m 256 -smp 2 -serial stdio",
    ];
}
