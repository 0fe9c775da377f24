using System.Text.RegularExpressions;

namespace StratoVirt.Tests.Native;

/// <summary>Snapshot and restore of a payload guest that counts in a register and in memory (case
/// "snapshot-restore", here or in the nested lab).</summary>
[Trait("Level", "Native")]
[Collection("payloads")]
public sealed class SnapshotPayloadTests(PayloadFixture payloads)
{
    private readonly Lazy<VmmResult> _run = new(() => KvmRunner.Run("snapshot-restore", payloads));

    private VmmResult R => _run.Value;

    /// <summary>What follows "<paramref name="marker"/> " up to the next marker line: QMP replies come one a line.</summary>
    private string Line(string marker)
    {
        var m = Regex.Match(R.Stdout, $@"^{marker} (.*?)(?=\n[A-Z][A-Z-]*(?: |\n)|\z)", RegexOptions.Multiline | RegexOptions.Singleline);
        Assert.True(m.Success, $"no {marker} line\n{R}");
        return m.Groups[1].Value;
    }

    /// <summary>The counts printed between the markers: one stream of the first VM's output and a restored one's.</summary>
    private List<(uint Register, uint Memory)> Counts(string stream)
    {
        var m = Regex.Match(R.Stdout, $"{stream}-BEGIN\n(.*)\n{stream}-END", RegexOptions.Singleline);
        Assert.True(m.Success, $"no {stream} output\n{R}");
        Assert.DoesNotContain("MISMATCH", m.Groups[1].Value);
        return [.. Regex.Matches(m.Groups[1].Value, @"^count ([0-9a-f]{8}) ([0-9a-f]{8})$", RegexOptions.Multiline)
            .Select(x => (Convert.ToUInt32(x.Groups[1].Value, 16), Convert.ToUInt32(x.Groups[2].Value, 16)))];
    }

    [Fact]
    public void TheRestoredGuestContinuesBothCountsFromTheSnapshotMappedAndReadIn()
    {
        Assert.False(R.TimedOut, R.ToString());
        Assert.True(R.ExitCode == 0, R.ToString());
        Assert.Contains("QMP-SOCKET removed", R.Stdout);
        Assert.Contains("""{"return":{}}""", Line("MIGRATE"));
        Assert.Contains("""{"return":{"status":"completed"}}""", Line("MIGRATE"));
        Assert.Contains("\"status\":\"paused\"", Line("MIGRATE")); // the VM stays paused after the snapshot
        Assert.StartsWith("memory state ", Line("FILES"));
        var sizes = Regex.Match(Line("FILES"), @"MEMORY-SIZE (\d+) MEMORY-BLOCKS (\d+)");
        Assert.Equal(256L << 20, long.Parse(sizes.Groups[1].Value));
        Assert.True(long.Parse(sizes.Groups[2].Value) * 512 < 16L << 20, $"the memory file is not sparse: {Line("FILES")}");
        // A restored VM runs at once (as upstream's, unless -S), and quits.
        Assert.Contains("\"status\":\"running\"", Line("RESTORED-STATUS"));
        Assert.Equal("0", Line("RESTORED-EXIT"));

        foreach (string stream in new[] { "STREAM-MAPPED", "STREAM-READ" })
        {
            var counts = Counts(stream);
            Assert.True(counts.Count >= 10, $"{stream}: only {counts.Count} counts\n{R}");
            for (int i = 0; i < counts.Count; i++)
            {
                // One unbroken count from 0: the restored guest went on from where the first one was stopped.
                Assert.Equal(((uint)i, (uint)i), counts[i]);
            }
        }
    }

    [Fact]
    public void MigrateWhileRunningOrIntoAMissingDirectoryFailsAndTheVmStaysUsable()
    {
        Assert.Equal("""{"error":{"class":"GenericError","desc":"the VM is running: pause it with stop before migrate"}}""",
            Line("RUNNING-MIGRATE").Split('\n')[0]);
        string missing = Line("MISSING-DIR-MIGRATE");
        Assert.Contains("""{"error":{"class":"GenericError","desc":"snapshot to nowhere failed: open nowhere/memory: No such file or directory""", missing);
        Assert.Contains("""{"return":{"status":"failed","error-desc":"snapshot to nowhere failed: open nowhere/memory""", missing);
        Assert.Contains("\"status\":\"paused\"", missing);
    }

    [Fact]
    public void ARestoreWithAnotherMemorySizeOrAMissingDirectoryIsOneLineAndExitOne()
    {
        Assert.Equal("1 stratovirt: the snapshot does not match the command line: -m was 256M, now 512M", Line("MISMATCH-EXIT"));
        Assert.Equal("1 stratovirt: -incoming: open nowhere/state: No such file or directory (errno 2)", Line("NO-DIR-EXIT"));
    }
}
