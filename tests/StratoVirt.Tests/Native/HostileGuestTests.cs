using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace StratoVirt.Tests.Native;

/// <summary>
/// The hostile payload guest (tests/payloads/hostile.c) attacks every virtio-mmio device from inside, one VMM run per
/// seed, under seccomp: whatever the guest writes, the VMM must stay up and let the guest finish.
/// </summary>
[Trait("Level", "Native")]
[Collection("payloads")]
public sealed partial class HostileGuestTests(PayloadFixture payloads, ITestOutputHelper output)
{
    [GeneratedRegex(@"^HOSTILE-RUN seed=(\d+) rc=(-?\d+) ms=(\d+) dots=(\d+)$", RegexOptions.Multiline)]
    private static partial Regex RunLine();

    /// <summary>A seed run again after the lab triple-faulted its guest (see KvmCases.HostileRuns).</summary>
    [GeneratedRegex(@"^HOSTILE-RETRY .*$", RegexOptions.Multiline)]
    private static partial Regex RetryLine();

    [GeneratedRegex(@"^HOSTILE-DONE seed=(\d+) steps=(\d+) needs-reset=(\d+) activations=(\d+) used=(\d+)$", RegexOptions.Multiline)]
    private static partial Regex DoneLine();

    /// <summary>What the VMM prints when it dies rather than stopping a device: an unhandled .NET exception, a
    /// runtime failure, or a system call outside its seccomp list.</summary>
    private static readonly string[] DeathMarks = ["Unhandled exception", "Fatal error", "seccomp blocked", "SIGSYS"];

    [Fact]
    public void EverySeedOfTheHostileGuestFinishesAndTheVmmSurvives() =>
        AssertSurvived(KvmRunner.Run("hostile-guest", payloads), output);

    /// <summary>Asserts that every seed's VMM exited 0 after the guest's HOSTILE-DONE with no report of its death,
    /// and that devices were set up, did work and were driven into NEEDS_RESET; writes a line per seed and a
    /// summary to <paramref name="output"/>.</summary>
    internal static void AssertSurvived(VmmResult r, ITestOutputHelper output)
    {
        Assert.False(r.TimedOut, r.ToString());
        var runs = RunLine().Matches(r.Stdout).ToDictionary(m => int.Parse(m.Groups[1].Value),
            m => (Rc: int.Parse(m.Groups[2].Value), Ms: int.Parse(m.Groups[3].Value), Steps: 256 * int.Parse(m.Groups[4].Value)));
        var done = DoneLine().Matches(r.Stdout).ToDictionary(m => int.Parse(m.Groups[1].Value), m => m);
        var stderr = r.Stderr.Split('\n').Where(l => l.StartsWith("seed=", StringComparison.Ordinal))
            .GroupBy(l => int.Parse(l[5..l.IndexOf(':')])).ToDictionary(g => g.Key, g => g.ToList());

        int needsReset = 0, activations = 0;
        long used = 0;
        var failures = new List<string>();
        for (int seed = 1; seed <= KvmCases.HostileSeeds; seed++)
        {
            var lines = stderr.GetValueOrDefault(seed, []);
            if (!runs.TryGetValue(seed, out var run))
            {
                failures.Add($"seed {seed}: did not run");
                continue;
            }
            string? death = lines.FirstOrDefault(l => DeathMarks.Any(mark => l.Contains(mark, StringComparison.Ordinal)));
            if (done.TryGetValue(seed, out var d))
            {
                needsReset += int.Parse(d.Groups[3].Value);
                activations += int.Parse(d.Groups[4].Value);
                used += long.Parse(d.Groups[5].Value);
            }
            string stopped = $"no HOSTILE-DONE (the guest stopped after {run.Steps} to {run.Steps + 255} steps)";
            output.WriteLine($"seed {seed}: exit {run.Rc}, {run.Ms} ms, " + (d is null
                ? stopped
                : $"needs-reset {d.Groups[3].Value}, activations {d.Groups[4].Value}, used {d.Groups[5].Value}"));
            if (run.Rc != 0 || d is null || death is not null)
                failures.Add($"seed {seed}: exit {run.Rc}{(d is null ? ", " + stopped : "")}" +
                    string.Concat(lines.Where(l => l.Length > $"seed={seed}: ".Length).Take(12).Select(l => "\n    " + l)));
        }
        foreach (Match retry in RetryLine().Matches(r.Stdout)) output.WriteLine(retry.Value.TrimEnd());
        output.WriteLine($"{runs.Count} seeds ran, {KvmCases.HostileIterations} steps each; windows seen in " +
            $"DEVICE_NEEDS_RESET: {needsReset} in all; activations {activations}; used buffers {used}; " +
            $"{failures.Count} seeds failed");
        Assert.True(failures.Count == 0, $"{failures.Count} of {KvmCases.HostileSeeds} seeds failed:\n" + string.Join("\n", failures));
        // The faults were reached: devices were set up, did work, and were driven into NEEDS_RESET.
        Assert.True(activations > 0 && used > 0 && needsReset > 0, r.ToString());
    }
}
