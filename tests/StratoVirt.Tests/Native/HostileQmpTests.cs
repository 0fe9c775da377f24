using System.Text.RegularExpressions;

namespace StratoVirt.Tests.Native;

/// <summary>
/// A hostile QMP client (tests/qmp/qmp-fuzz.c) against a running payload VM under seccomp, with the GC made to
/// collect often (<see cref="KvmRunner.GcStress"/>): thousands of generated frames, then every command with valid
/// arguments, then quit. The VMM must answer throughout, exit 0, and have run full collections on the way.
/// </summary>
[Trait("Level", "Native")]
[Collection("payloads")]
public sealed partial class HostileQmpTests(PayloadFixture payloads)
{
    [GeneratedRegex(@"gc: (\d+) gen0, (\d+) gen1, (\d+) gen2 collections")]
    private static partial Regex Collections();

    [Fact]
    public void ThousandsOfHostileFramesAndEveryCommandUnderSeccompLeaveTheVmmAnsweringUntilQuit()
    {
        var r = KvmRunner.Run("qmp-fuzz", payloads);
        Assert.False(r.TimedOut, r.ToString());
        Assert.Contains($"QMP-FUZZ frames={KvmCases.QmpFuzzFrames} ", r.Stdout);
        Assert.Contains($" cycles={KvmCases.QmpFuzzCycles}\n", r.Stdout);
        Assert.Contains("FUZZ-EXIT 0", r.Stdout);
        Assert.True(r.ExitCode == 0, r.ToString());
        foreach (string death in new[] { "Unhandled exception", "Fatal error", "seccomp blocked", "internal error" })
            Assert.DoesNotContain(death, r.Stderr);
        Assert.Contains("seccomp: 3 threads confined", r.Stderr);
        // Collections of every generation ran while the lists were on (several full ones at least).
        var m = Collections().Match(r.Stderr);
        Assert.True(m.Success, r.ToString());
        Assert.True(int.Parse(m.Groups[3].Value) >= 3, $"only {m.Groups[3].Value} gen2 collections: {m.Value}");
        Assert.True(int.Parse(m.Groups[1].Value) >= 20, m.Value);
    }
}
