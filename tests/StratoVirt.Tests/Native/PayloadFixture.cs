using System.Diagnostics;

namespace StratoVirt.Tests.Native;

/// <summary>Assembles the payload guests in tests/payloads once per test run (scripts/build-payloads.sh).</summary>
public sealed class PayloadFixture : IDisposable
{
    private readonly TempDir _dir = new();

    public PayloadFixture()
    {
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(VmmProcess.RepoRoot, "scripts", "build-payloads.sh"));
        psi.ArgumentList.Add(_dir.Path);
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"build-payloads.sh failed:\n{output}");
    }

    public string Dir => _dir.Path;

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
