using StratoVirt.Fuzz;

namespace StratoVirt.Tests.Fuzz;

/// <summary>
/// Every fuzz target over its seed corpus (tests/fuzz/corpus/&lt;target&gt;/) and the crashing inputs kept once
/// fixed (tests/fuzz/crashes/&lt;target&gt;/), in-process and without AFL: a target throws only for a finding, so
/// each input must run through; and each target must have seeds, or the fuzzer would start blind.
/// </summary>
[Trait("Level", "Unit")]
public sealed class FuzzCorpusTests
{
    private static string Folder(string kind, string target) => Path.Combine(VmmProcess.RepoRoot, "tests", "fuzz", kind, target);

    public static TheoryData<string> Targets => [.. FuzzTargets.Names];

    [Theory]
    [MemberData(nameof(Targets))]
    public void TargetRunsItsCorpusAndKeptCrashes(string name)
    {
        string corpus = Folder("corpus", name), crashes = Folder("crashes", name);
        string[] seeds = Directory.Exists(corpus) ? Directory.GetFiles(corpus) : [];
        Assert.NotEmpty(seeds);
        string[] kept = Directory.Exists(crashes) ? Directory.GetFiles(crashes) : [];
        Assert.True(FuzzTargets.TryGet(name, out var target));
        try
        {
            foreach (string input in seeds.Concat(kept).Order(StringComparer.Ordinal))
            {
                var e = Record.Exception(() => target.Run(File.ReadAllBytes(input)));
                Assert.True(e is null, $"{name} on {Path.GetRelativePath(VmmProcess.RepoRoot, input)}: {e}");
            }
        }
        finally
        {
            (target as IDisposable)?.Dispose();
        }
    }

    [Fact]
    public void EveryCorpusFolderNamesATarget()
    {
        foreach (string kind in new[] { "corpus", "crashes" })
        {
            string root = Path.Combine(VmmProcess.RepoRoot, "tests", "fuzz", kind);
            if (!Directory.Exists(root)) continue;
            foreach (string folder in Directory.GetDirectories(root))
                Assert.Contains(Path.GetFileName(folder), FuzzTargets.Names);
        }
    }
}
