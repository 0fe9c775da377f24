namespace StratoVirt.Tests.Lab;

/// <summary>The seccomp-strace scenario, kept as a scenario file that bench/syscalls.sh runs too
/// (scripts/lab/scenarios/seccomp-strace.sh): a Debian guest using blk, net, console and rng under seccomp while
/// strace watches every thread of the running VMM.</summary>
public static class SeccompScenarios
{
    public const string Name = "seccomp-strace";

    public static string[] Lines =>
        [File.ReadAllText(Path.Combine(VmmProcess.RepoRoot, "scripts", "lab", "scenarios", "seccomp-strace.sh"))];
}
