using StratoVirt.Tests.Unit;

namespace StratoVirt.Tests.Native;

/// <summary>Assembles the payload guests of tests/payloads (scripts/build-payloads.sh) and an ELF wrapping of one.</summary>
public static class PayloadBuilder
{
    /// <summary>Builds every payload into <paramref name="dir"/>; returns the files made.</summary>
    public static IReadOnlyList<string> Build(string dir)
    {
        var r = VmmProcess.RunCommand("bash", [Path.Combine(VmmProcess.RepoRoot, "scripts", "build-payloads.sh"), dir],
            TimeSpan.FromMinutes(5));
        if (r.ExitCode != 0) throw new InvalidOperationException($"build-payloads.sh failed:\n{r}");
        byte[] hello = File.ReadAllBytes(Path.Combine(dir, "hello.bin"));
        File.WriteAllBytes(Path.Combine(dir, "hello.elf"), BootImageTests.MakeElf(0x1000000, 0x1000000, hello));
        return Directory.GetFiles(dir).Where(f => f.EndsWith(".bin") || f.EndsWith(".bzImage") || f.EndsWith(".elf") || f.EndsWith(".so"))
            .Order().ToList();
    }
}

/// <summary>The payloads, built once per test run for the tests that run them on this host.</summary>
public sealed class PayloadFixture : IDisposable
{
    private readonly TempDir _dir = new();

    public PayloadFixture() => PayloadBuilder.Build(_dir.Path);

    public string Dir => _dir.Path;

    private string? _qmpSend, _qmpFuzz;

    /// <summary>scripts/lab/qmp-send.c built for this host (the lab's outer VM has its own), for the QMP cases.</summary>
    public string QmpSend => _qmpSend ??= BuildTool("qmp-send", "scripts/lab/qmp-send.c");

    /// <summary>tests/qmp/qmp-fuzz.c built for this host, for the hostile QMP case.</summary>
    public string QmpFuzz => _qmpFuzz ??= BuildTool("qmp-fuzz", "tests/qmp/qmp-fuzz.c");

    private string BuildTool(string name, string source)
    {
        string exe = Path.Combine(_dir.Path, name);
        var r = VmmProcess.RunCommand("gcc", ["-O2", "-o", exe, Path.Combine(VmmProcess.RepoRoot, source)], TimeSpan.FromMinutes(2));
        if (r.ExitCode != 0) throw new InvalidOperationException($"building {name} failed:\n{r}");
        return exe;
    }

    /// <summary>Path of a built payload, e.g. Get("hello", "bin") or Get("hello", "bzImage").</summary>
    public string Get(string name, string kind = "bin")
    {
        string p = Path.Combine(_dir.Path, $"{name}.{kind}");
        if (!File.Exists(p)) throw new FileNotFoundException($"payload {name}.{kind} was not built", p);
        return p;
    }

    public void Dispose() => _dir.Dispose();
}

[CollectionDefinition("payloads")]
public sealed class PayloadCollection : ICollectionFixture<PayloadFixture>;
