using System.Text;
using StratoVirt.Tests.Native;

namespace StratoVirt.Tests.Lab;

/// <summary>One boot of the Arm nested lab per test run (scripts/lab/arm/run.sh); the
/// arm64 binary is $STRATOVIRT_ARM_BINARY or out/aarch64/stratovirt (scripts/build.sh --arch arm64). The console log
/// is kept in .cache/lab-arm/test-run.log. It runs the scenarios of <see cref="ArmLabTests"/> (what differs from
/// x86_64, in the default test run), and with STRATOVIRT_ARM_LAB=full also those of <see cref="ArmLabFullTests"/>.</summary>
public sealed class ArmLabSession
{
    private static readonly Lazy<ArmLabSession> Shared = new(() =>
    {
        lock (LabSession.OuterVmGate) return new ArmLabSession();
    }, LazyThreadSafetyMode.ExecutionAndPublication);

    public static ArmLabSession Instance => Shared.Value;

    public LabLog Log { get; }
    public string LogPath { get; }

    private ArmLabSession()
    {
        string cache = Path.Combine(VmmProcess.RepoRoot, ".cache", "lab-arm");
        Directory.CreateDirectory(cache);
        LogPath = Path.Combine(cache, "test-run.log");
        using var work = new TempDir();
        string scenarios = Path.Combine(work.Path, "scenarios.sh");
        var sb = new StringBuilder();
        // STRATOVIRT_LAB_ONLY=<regex> runs only the matching scenarios (with a matching dotnet test --filter).
        if (Environment.GetEnvironmentVariable("STRATOVIRT_LAB_ONLY") is { Length: > 0 } only)
            sb.AppendLine($"LAB_ONLY={KvmRunner.Word(only)}");
        else if (Environment.GetEnvironmentVariable("STRATOVIRT_ARM_LAB") != "full")
            sb.AppendLine($"LAB_ONLY={KvmRunner.Word(ArmScenarios.DefaultRun)}");
        // Every VMM collects often (see KvmRunner.GcStress), each collection under seccomp.
        foreach (var (name, value) in KvmRunner.GcStress) sb.AppendLine($"export {name}={value}");
        foreach (var line in ArmScenarios.Lines) sb.AppendLine(line);
        File.WriteAllText(scenarios, sb.ToString());
        string binary = Environment.GetEnvironmentVariable("STRATOVIRT_ARM_BINARY") is { Length: > 0 } b
            ? b : Path.Combine(VmmProcess.RepoRoot, "out", "aarch64", "stratovirt");
        File.Delete(LogPath); // a stale log must not stand in for a run that wrote none
        // No lock of its own, as for the x86 lab: a test run boots its outer VMs one at a time (OuterVmGate), and a
        // caller that shares the machine wraps the whole run in flock /tmp/lab.lock (a second flock here would wait
        // for that one forever).
        var r = VmmProcess.RunCommand("bash", [Path.Combine(VmmProcess.RepoRoot, "scripts/lab/arm/run.sh"),
            "--scenarios", scenarios, "--log", LogPath, "--vmm", binary, "--timeout", "900"], TimeSpan.FromMinutes(30));
        if (!File.Exists(LogPath)) throw new InvalidOperationException($"the Arm lab wrote no log:\n{r.Stderr}");
        Log = LabLog.Load(LogPath);
        if (!Log.KvmOk) throw new InvalidOperationException($"the Arm lab's outer VM has no /dev/kvm (log: {LogPath})");
    }

    /// <summary>The scenario <paramref name="name"/>, asserted to have ended.</summary>
    public LabScenario Ended(string name)
    {
        var s = Log[name];
        Assert.True(s.Ended, $"{name} did not finish (log: {LogPath})");
        return s;
    }
}
