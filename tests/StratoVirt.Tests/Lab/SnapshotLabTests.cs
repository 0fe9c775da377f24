using System.Globalization;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace StratoVirt.Tests.Lab;

/// <summary>A real Linux guest snapshotted mid-count and restored after its VMM was SIGKILLed (see
/// <see cref="SnapshotScenarios"/>).</summary>
[Trait("Level", "Lab")]
public sealed class SnapshotLabTests(ITestOutputHelper output)
{
    private LabScenario Run()
    {
        var s = LabSession.Instance.Ended("snapshot-linux", output);
        Assert.True(s.ExitCode == 0, s.Text);
        return s;
    }

    /// <summary>The whole GUEST-SNAP-TICK lines one VMM printed: tick number and guest uptime.</summary>
    private static List<(int Tick, double Uptime)> Ticks(LabScenario s, string vmm) =>
        s.Output.Select(l => TickLine.Match(l))
            .Where(m => m.Success && m.Groups[1].Value == vmm)
            .Select(m => (int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture), double.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture)))
            .ToList();

    private static readonly Regex TickLine = new(@"^(BEFORE|AFTER)\|GUEST-SNAP-TICK (\d+) (\d+\.\d+)$");

    /// <summary>Whether the first VMM's console ends in the middle of a tick line (the UART was paused mid-line), so
    /// that tick shows whole in neither output.</summary>
    private static bool CutTick(LabScenario s) =>
        s.Output.LastOrDefault(l => l.StartsWith("BEFORE|", StringComparison.Ordinal)) is { } last &&
        last.StartsWith("BEFORE|GUEST-SNAP", StringComparison.Ordinal) && !TickLine.IsMatch(last);

    [Fact]
    public void TheSnapshotIsTakenFromThePausedGuest()
    {
        var s = Run();
        Assert.Contains("{\"return\":{}}", s.GuestMarker("HOST-SNAP-STOP"));
        string migrate = s.GuestMarker("HOST-SNAP-MIGRATE") ?? "";
        Assert.Contains("{\"return\":{}}", migrate);
        Assert.Contains("{\"return\":{\"status\":\"completed\"}}", migrate);
        Assert.Equal("137", s.GuestMarker("HOST-SNAP-KILLED")); // SIGKILL, not an orderly end
        Assert.Contains("\"status\":\"running\"", s.GuestMarker("HOST-SNAP-RESTORED"));
        Assert.Equal("0", s.GuestMarker("HOST-SNAP-VMM-EXIT"));
    }

    [Fact]
    public void TheCounterContinuesWhereItStoppedAndUptimeDidNotRestart()
    {
        var s = Run();
        var before = Ticks(s, "BEFORE");
        var after = Ticks(s, "AFTER");
        // The host stops the VM once tick 8 is out. Counting lines would not do: a kernel message printed into the
        // middle of a tick line (seen: "GUEST-SNAP-TICK [ 4.69] IPv6: ...") leaves that tick unparsed.
        Assert.True(before.Count > 0 && before[^1].Tick >= 8, s.Text);
        Assert.NotEmpty(after);
        Assert.Equal(before[^1].Tick + (CutTick(s) ? 2 : 1), after[0].Tick);
        Assert.Equal(39, after[^1].Tick);
        Assert.True(after[0].Uptime > before[^1].Uptime, $"uptime went from {before[^1].Uptime} to {after[0].Uptime}");
        // The guest clock stood still while the VM was stopped, killed and restored: one tick's sleep, not more.
        Assert.True(after[0].Uptime - before[^1].Uptime < 5, $"uptime jumped from {before[^1].Uptime} to {after[0].Uptime}");
        // No second boot: the restored VMM's console shows no init.
        Assert.DoesNotContain(s.Output, l => l.StartsWith("AFTER|GUEST-INIT", StringComparison.Ordinal));
        Assert.Contains(s.Output, l => l == "AFTER|GUEST-TEST-END snapshot rc=0");
    }

    [Fact]
    public void TheFileOnTheDiskHoldsEveryTickInOrder()
    {
        var s = Run();
        Assert.Contains(s.Output, l => l == "AFTER|GUEST-SNAP-FILE ok 40");
    }

    private LabScenario Template()
    {
        var s = LabSession.Instance.Ended("snapshot-template", output);
        Assert.True(s.ExitCode == 0, s.Text);
        return s;
    }

    private static readonly string[] Clones = ["vm1", "vm2", "vm3"];

    /// <summary>VM <paramref name="n"/>'s GUEST-TMPL-TICK lines of the template scenario (VM 0 is the template).</summary>
    private static List<(int Tick, double Uptime)> TemplateTicks(LabScenario s, int n) =>
        s.Output.Select(l => TemplateTickLine.Match(l))
            .Where(m => m.Success && m.Groups[1].Value == $"{n}")
            .Select(m => (int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture), double.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture)))
            .ToList();

    /// <summary>A tick line, whole. The guest kernel's console messages can land right after it, before its line
    /// break (seen: the clocksource watchdog's "[    7.426820] clocksource: ..." after a clone's first tick).</summary>
    private static readonly Regex TemplateTickLine = new(@"^VM(\d)\|GUEST-TMPL-TICK (\d+) (\d+\.\d+)(?:$|\[ *\d+\.\d+\] )");

    /// <summary>One memory figure (KiB) of a HOST-TMPL-* line: rss, pss, shared or private.</summary>
    private static long Kib(LabScenario s, string marker, string name)
    {
        var m = Regex.Match(s.GuestMarker(marker) ?? "", $@"\b{name}=(\d+)\b");
        Assert.True(m.Success, $"{marker} has no {name}: {s.GuestMarker(marker)}");
        return long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    [Fact]
    public void TemplateClonesAreRestoredAtOnceFromOneSnapshotAndEndCleanly()
    {
        var s = Template();
        Assert.Contains("{\"return\":{}}", s.GuestMarker("HOST-TMPL-STOP"));
        Assert.Contains("{\"return\":{\"status\":\"completed\"}}", s.GuestMarker("HOST-TMPL-MIGRATE"));
        foreach (var clone in Clones) Assert.Equal("0", s.GuestMarker($"HOST-TMPL-EXIT {clone}"));
        for (int n = 1; n <= 3; n++) Assert.Contains(s.Output, l => l == $"VM{n}|GUEST-TEST-END template rc=0");
    }

    [Fact]
    public void TemplateClonesEachContinueTheTemplatesCounterWithoutAReboot()
    {
        var s = Template();
        var before = TemplateTicks(s, 0);
        Assert.True(before.Count >= 5, s.Text);
        // VM 0's console may end in the middle of a tick line (the UART was paused mid-line): that tick shows whole nowhere.
        bool cut = s.Output.LastOrDefault(l => l.StartsWith("VM0|", StringComparison.Ordinal)) is { } last &&
            last.StartsWith("VM0|GUEST-TMPL", StringComparison.Ordinal) && !TemplateTickLine.IsMatch(last);
        for (int n = 1; n <= 3; n++)
        {
            var after = TemplateTicks(s, n);
            Assert.True(after.Count >= 1, $"VM{n} never ticked: {s.Text}");
            Assert.Equal(before[^1].Tick + (cut ? 2 : 1), after[0].Tick);
            double gap = after[0].Uptime - before[^1].Uptime;
            Assert.True(gap > 0 && gap < 5, $"VM{n}'s uptime went from {before[^1].Uptime} to {after[0].Uptime}");
            Assert.DoesNotContain(s.Output, l => l.StartsWith($"VM{n}|GUEST-INIT", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void TemplateClonesEachWriteTheirOwnFileToTheirOwnDisk()
    {
        var s = Template();
        var files = Clones.Select(c => s.GuestMarker($"HOST-TMPL-FILE {c}") ?? "").ToList();
        for (int i = 0; i < Clones.Length; i++) Assert.Matches($@"^{Clones[i]} \d+\.\d+$", files[i]);
        Assert.Equal(3, files.Distinct().Count());
    }

    /// <summary>Each clone maps the snapshot's memory file privately, so the guest pages it has only read since the
    /// restore are the page cache's, shared by the three, and counted a third in each one's Pss; its own pages are
    /// the VMM's (about 3.5 MiB, see bench/memory.sh) and the guest pages written since the restore. Two bounds:
    /// <list type="bullet">
    /// <item>the three clones' Pss is under 0.6 of their Rss: with S shared and P own KiB each, that is
    /// (S + 3P) / (3S + 3P) &lt; 0.6, i.e. P &lt; 2/3 S, a clone's own pages fewer than the snapshot pages it reads
    /// (no sharing at all would give 1.0);</item>
    /// <item>the three clones together take under half the Rss of the one cold-booted VM they were cloned from
    /// (three cold-booted VMs would take three times it): a clone maps only the pages its guest touches after the
    /// restore, and shares them.</item>
    /// </list></summary>
    [Fact]
    public void TemplateClonesShareTheSnapshotsPages()
    {
        var s = Template();
        long templateRss = Kib(s, "HOST-TMPL-TEMPLATE", "rss");
        long pss = Clones.Sum(c => Kib(s, $"HOST-TMPL-CLONE {c}", "pss"));
        long rss = Clones.Sum(c => Kib(s, $"HOST-TMPL-CLONE {c}", "rss"));
        output.WriteLine($"template rss {templateRss} KiB; clones: rss {rss} KiB, pss {pss} KiB in all");
        foreach (var c in Clones)
        {
            long shared = Kib(s, $"HOST-TMPL-CLONE {c}", "shared"), own = Kib(s, $"HOST-TMPL-CLONE {c}", "private");
            Assert.True(shared > own, $"{c}: {s.GuestMarker($"HOST-TMPL-CLONE {c}")}");
        }
        Assert.True(pss * 10 < rss * 6, $"the clones' pss {pss} KiB is not under 0.6 of their rss {rss} KiB");
        Assert.True(pss * 2 < templateRss, $"the clones' pss {pss} KiB is not under half the template's rss {templateRss} KiB");
    }

    [Fact]
    public void TheHostAnswersPingBeforeAndAfterTheRestore()
    {
        var s = Run();
        Assert.Contains(s.Output, l => l == "BEFORE|GUEST-SNAP-PING-BEFORE ok");
        Assert.Contains(s.Output, l => l == "AFTER|GUEST-SNAP-PING-AFTER ok");
    }
}
