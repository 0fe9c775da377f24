using System.Text.RegularExpressions;

namespace StratoVirt.Tests.Native;

/// <summary>
/// Keeps the idle microVM's memory overhead from growing unnoticed: the idle payload VM with a QMP socket, under
/// seccomp, must stay within <see cref="IdleBudgetKb"/> of Rss outside guest RAM (bench/memory.sh's rule). The
/// benchmark keeps the exact figure and compares it with QEMU and the C floor.
/// </summary>
[Trait("Level", "Native")]
[Collection("payloads")]
public sealed partial class FootprintTests(PayloadFixture payloads)
{
    /// <summary>4.5 MiB: the issue's budget, about 0.5 MiB above what bench/memory.sh measures in the lab.</summary>
    public const int IdleBudgetKb = 4608;

    [GeneratedRegex(@"OVERHEAD-KB (\d+)")]
    private static partial Regex Overhead();

    [Fact]
    public void IdleMicroVmStaysWithinItsMemoryBudget()
    {
        var r = KvmRunner.Run("idle-footprint", payloads);
        Assert.False(r.TimedOut, r.ToString());
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("\"status\":\"running\"", r.Stdout.Replace(" ", ""));
        Assert.Contains("host-qmp-quit", r.Stdout);
        Assert.Matches(@"start-up done: the pages of \d+ KiB of read-only code and data mappings given back", r.Stderr);
        var m = Overhead().Match(r.Stdout);
        Assert.True(m.Success, r.ToString());
        int kb = int.Parse(m.Groups[1].Value);
        Assert.True(kb > 0 && kb <= IdleBudgetKb, $"idle overhead {kb} kB, budget {IdleBudgetKb} kB");
    }
}
