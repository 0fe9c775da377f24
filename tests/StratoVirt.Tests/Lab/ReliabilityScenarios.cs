namespace StratoVirt.Tests.Lab;

/// <summary>
/// Host faults and crash durability in the nested lab: a Linux guest on disks whose host storage fills up or fails
/// (scripts/lab/blk-fault-host.sh, guest test blk-fault.sh), a tap deleted under a running VM (tap-gone-host.sh,
/// tap-gone.sh), socket chardev peers killed under a running VM (chardev-gone-host.sh, chardev-gone.sh), and a few
/// crash-durability trials per drive configuration (scripts/lab/durability-trials.sh; bench/durability.sh runs many),
/// and a short load test (scripts/lab/soak-host.sh, guest test soak.sh; bench/soak.sh runs the long one).
/// </summary>
public static class ReliabilityScenarios
{
    /// <summary>Trials per configuration in the test run: enough to kill the VMM mid-write a few times, short enough
    /// for CI (a trial is one guest boot).</summary>
    public const int TestTrials = 3;

    public static readonly string[] Configs = ["direct-on", "direct-off", "iothread"];

    /// <summary>The short load test of the test run (bench/soak.sh runs the long one): seconds of load, vCPUs.</summary>
    public const int SoakSeconds = 45, SoakCpus = 4;

    public static string[] Lines =>
    [
        "scenario blk-fault 300 env STRATOVIRT_LOG_LEVEL=info blk-fault-host -machine microvm -kernel \"$KERNEL\" " +
        "-initrd \"$INITRD\" -append \"console=ttyS0 reboot=k panic=1 lab.action=test lab.test=blk-fault\" " +
        "-m 256 -smp 2 -serial stdio -name blk-fault -D",
        "scenario tap-gone 240 unshare -n env STRATOVIRT_LOG_LEVEL=info tap-gone-host -machine microvm " +
        "-kernel \"$KERNEL\" -initrd \"$INITRD\" " +
        "-append \"console=ttyS0 reboot=k panic=1 lab.action=test lab.test=tap-gone\" -m 256 -smp 2 -serial stdio " +
        "-name tap-gone -netdev tap,id=net0,ifname=tap0 -device virtio-net-device,netdev=net0,id=eth0 -D",
        .. Configs.Select(c => $"scenario durability-{c} {TestTrials * 120} durability-trials {TestTrials} {c}"),
        "scenario chardev-gone 300 env STRATOVIRT_LOG_LEVEL=info chardev-gone-host -machine microvm " +
        "-kernel \"$KERNEL\" -initrd \"$INITRD\" " +
        "-append \"console=ttyS0 reboot=k panic=1 lab.action=test lab.test=chardev-gone\" -m 256 -smp 2 -name chardev-gone",
    ];

    /// <summary>The short load test. The lab runs it first of the Linux scenarios, on an outer VM minutes old: on
    /// the project's PVM host (2026-12-06), run there after about 15 minutes of other scenarios, its guest
    /// triple-faulted and on the retry the outer VM's own kernel panicked (a stack guard page hit, a fatal
    /// exception in an interrupt) in 2 of 2 full runs, while alone on a fresh outer VM it passed twice. It gets two
    /// more attempts after a guest triple fault, as every Linux scenario now does
    /// (<see cref="LinuxScenarios.Preamble"/>): on a host without /dev/kvm (2026-12-06) both attempts of a CI run
    /// faulted early in the load, and the same lab's outer kernel panicked with QEMU as its only nested VMM (issue
    /// 11; the fault is not explained). When all three attempts fault (a CI run, 2026-12-07), it runs again in a fresh
    /// outer VM (<see cref="LabSession"/>'s rerun after lab faults); a fault there too fails the test.</summary>
    public static string SoakLine =>
        $"scenario soak-short {SoakSeconds + 300} unshare -n soak-host {SoakSeconds} {SoakCpus} 512";
}
