using Xunit.Abstractions;
using StratoVirt.Machine;

namespace StratoVirt.Tests.Lab;

/// <summary>The seccomp-strace scenario (<see cref="SeccompScenarios"/>): a Debian guest using blk, net, console
/// and rng under seccomp, with strace watching every thread of the running VMM.</summary>
[Trait("Level", "Lab")]
public sealed class SeccompLabTests(ITestOutputHelper output)
{
    /// <summary>What strace saw: thread name, system call, how often.</summary>
    public sealed record Seen(string Thread, string Call, int Count);

    private LabScenario Scenario() => LabSession.Instance.Ended(SeccompScenarios.Name, output);

    /// <summary>Parses "SECCOMP-SEEN &lt;thread name&gt;|&lt;call&gt; &lt;count&gt;" lines.</summary>
    public static List<Seen> SeenCalls(IEnumerable<string> output) =>
    [
        .. output.Where(l => l.StartsWith("SECCOMP-SEEN ", StringComparison.Ordinal))
            .Select(l => l["SECCOMP-SEEN ".Length..])
            .Select(l => (Bar: l.LastIndexOf('|'), Space: l.LastIndexOf(' '), Line: l))
            .Where(p => p.Bar > 0 && p.Space > p.Bar)
            .Select(p => new Seen(p.Line[..p.Bar], p.Line[(p.Bar + 1)..p.Space], int.Parse(p.Line[(p.Space + 1)..]))),
    ];

    /// <summary>The kind of a thread, from the name the VMM gives it.</summary>
    public static ThreadKind KindOf(string thread) => thread switch
    {
        "stratovirt" => ThreadKind.Main,
        "finalizer" => ThreadKind.Runtime,
        _ when thread.StartsWith("CPU ", StringComparison.Ordinal) => ThreadKind.Vcpu,
        _ when thread.StartsWith("iothread ", StringComparison.Ordinal) => ThreadKind.IoThread,
        _ => throw new InvalidOperationException($"unknown thread name '{thread}'"),
    };

    [Fact]
    public void TheGuestUsesEveryDeviceUnderSeccomp()
    {
        var s = Scenario();
        string text = s.Text;
        Assert.True(s.ExitCode == 0, text);
        Assert.Contains("seccomp: 5 threads confined", text); // main, finalizer, 2 vCPUs, 1 iothread
        Assert.Matches(@"GUEST-SYSCALLS-BLK [0-9a-f]{16}", text);
        Assert.Contains("GUEST-SYSCALLS-VDB STRATOVIRT-RO-DISK", text);
        Assert.Contains("GUEST-SYSCALLS-RNG 256", text);
        Assert.Contains("GUEST-SYSCALLS-PING ok", text);
        Assert.Contains("SECCOMP-HVC0 1", text);
        Assert.DoesNotContain("seccomp blocked", text);
    }

    [Fact]
    public void EveryCallAThreadMadeWhileRunningIsOnItsList()
    {
        var seen = SeenCalls(Scenario().Output);
        // The trace covered every kind of thread, and each did its work.
        Assert.Contains(seen, c => c.Thread.StartsWith("CPU ", StringComparison.Ordinal) && c.Call == "ioctl");
        Assert.Contains(seen, c => c.Thread.StartsWith("iothread ", StringComparison.Ordinal) && c.Call == "pwritev2");
        Assert.Contains(seen, c => c.Thread == "stratovirt" && c.Call == "epoll_wait");
        foreach (var c in seen)
        {
            var allowed = SeccompProfile.For(KindOf(c.Thread)).AllowedNames;
            Assert.True(allowed.Contains(c.Call), $"thread '{c.Thread}' called {c.Call} ({c.Count}x), which its list lacks");
        }
    }
}
