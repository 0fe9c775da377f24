namespace StratoVirt.Tests.Lab;

/// <summary>The real-Linux boots of the nested lab, as lines of the scenario file (see scripts/lab/outer/lib.sh).</summary>
public static class LinuxScenarios
{
    /// <summary>A boot takes 10-20 s in the lab; one that has not ended by then is stuck (the lab prints where its
    /// threads stood and, see <see cref="Preamble"/>, runs it again).</summary>
    private const int TimeoutSeconds = 120;

    /// <summary>Set before the Linux lines (after the payload cases, one of which triple-faults on purpose): the
    /// emulated lab (TCG under nested SVM) now and then stalls or triple-faults a guest; two retries keep that from
    /// failing a run, and the tests report every retry. On the PVM host (2026-12-07) 3 guests triple-faulted in 10
    /// to 12 attempts of seven Linux scenarios, alike with this build and with the one before (746eace), and with
    /// the older one virtio-rng triple-faulted in both of its two attempts.</summary>
    public const string Preamble = "LAB_TIMEOUT_RETRIES=2";

    public const string TypedCommands = @"uname -a\necho typed-$((6*7))\npoweroff -f";

    private static string Boot(string name, int cpus, int memoryMiB, string action, string extraAppend = "",
        string kernel = "\"$KERNEL\"") =>
        $"scenario {name} {TimeoutSeconds} env STRATOVIRT_LOG_LEVEL=info \"$VMM\" -machine microvm -kernel {kernel} " +
        $"-initrd \"$INITRD\" -append \"console=ttyS0 reboot=k panic=1 lab.action={action}{extraAppend}\" " +
        $"-m {memoryMiB} -smp {cpus} -serial stdio -name {name} -D";

    /// <summary>The host side of the serial-socket scenario: the guest's serial port is a unix socket chardev
    /// (-serial chardev:ser0). vsock-echo uds-pipe connects to it and keeps what the guest prints in a file; once
    /// the shell is up it types the commands into the socket, and keeps its input open until the VM is gone (closing
    /// it would half-close the connection). After the VM the file is printed, each line marked SERIAL-SOCKET.</summary>
    private const string SerialSocketHost = """
        cat >/tmp/lab-serial-host.sh <<'SERIALHOST'
        rm -f /tmp/serial.sock /tmp/serial.out
        "$VMM" "$@" &
        vmm=$!
        n=0
        until [ -S /tmp/serial.sock ] || [ $n -ge 300 ]; do sleep 0.1; n=$((n + 1)); done
        {
            n=0
            until grep -q GUEST-SHELL /tmp/serial.out 2>/dev/null || [ $n -ge 600 ]; do sleep 0.2; n=$((n + 1)); done
            sleep 2
            for line in 'uname -a' 'echo typed-$((6*7))' 'poweroff -f'; do
                printf '%s\n' "$line"
                sleep 2
            done
            while kill -0 $vmm 2>/dev/null; do sleep 0.5; done
        } | vsock-echo uds-pipe /tmp/serial.sock >/tmp/serial.out &
        wait $vmm
        rc=$?
        wait
        tr -d '\r' </tmp/serial.out | sed 's/^/SERIAL-SOCKET /'
        exit $rc
        SERIALHOST
        """;

    public static readonly string[] Lines =
    [
        Boot("linux-1cpu-poweroff", 1, 256, "poweroff"),
        Boot("linux-2cpu-reboot", 2, 256, "reboot"),
        Boot("linux-acpi-off-reboot", 2, 256, "reboot", " acpi=off"),
        Boot("linux-4cpu-poweroff", 4, 512, "poweroff"),
        // The same kernel as an uncompressed ELF vmlinux (extracted from the bzImage), entered at e_entry.
        Boot("linux-elf-poweroff", 2, 256, "poweroff", kernel: "/lab/vmlinux"),
        $"LAB_INPUT_AFTER=GUEST-SHELL scenario_input linux-shell {TimeoutSeconds} '{TypedCommands}' \"$VMM\" -machine microvm " +
        "-kernel \"$KERNEL\" -initrd \"$INITRD\" -append \"console=ttyS0 reboot=k panic=1 lab.action=shell\" " +
        "-m 256 -smp 2 -serial stdio",
        SerialSocketHost,
        $"scenario serial-socket-shell {TimeoutSeconds} env STRATOVIRT_LOG_LEVEL=info sh /tmp/lab-serial-host.sh " +
        "-machine microvm -kernel \"$KERNEL\" -initrd \"$INITRD\" " +
        "-append \"console=ttyS0 reboot=k panic=1 lab.action=shell\" -m 256 -smp 2 -name serial-socket-shell -D " +
        "-chardev socket,id=ser0,path=/tmp/serial.sock,server,nowait -serial chardev:ser0",
    ];
}
