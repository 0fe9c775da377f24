using System.Diagnostics;

namespace StratoVirt.Tests.Native;

/// <summary>The ozone binary under test and the static probe (tests/ozone/probe.c) it runs as -exec-file.</summary>
public sealed class OzoneFixture : IDisposable
{
    private readonly TempDir _dir = new();

    /// <summary>$OZONE_BINARY, or out/ozone from scripts/build.sh.</summary>
    public string Ozone { get; } = Environment.GetEnvironmentVariable("OZONE_BINARY") is { Length: > 0 } b
        ? b : Path.Combine(VmmProcess.RepoRoot, "out", "ozone");

    public string Probe { get; }

    /// <summary>A folder for test files that uid 65534 and the sandbox's uids can reach.</summary>
    public string Dir => _dir.Path;

    public OzoneFixture()
    {
        File.SetUnixFileMode(_dir.Path, (UnixFileMode)0x1ed);
        Probe = Path.Combine(_dir.Path, "probe");
        var r = VmmProcess.RunCommand("gcc", ["-static", "-O2", "-Wall", "-o", Probe,
            Path.Combine(VmmProcess.RepoRoot, "tests", "ozone", "probe.c")], TimeSpan.FromSeconds(60));
        if (r.ExitCode != 0) throw new InvalidOperationException($"building the probe failed: {r}");
    }

    /// <summary>A name no other test uses, so tests can run side by side.</summary>
    public static string NewName() => "t" + Guid.NewGuid().ToString("N")[..12];

    public static string ChrootOf(string name, string exec = "probe") => $"/srv/ozone/{exec}/{name}";

    public void Dispose() => _dir.Dispose();
}

/// <summary>One ozone run of the probe: its "key=value" report, then an exit code chosen by the test.</summary>
public sealed class ProbeRun : IDisposable
{
    private readonly Process _process;
    private readonly Task<string> _stderr;
    public Dictionary<string, string> Report { get; } = [];
    public List<string> Reads { get; } = [];

    public ProbeRun(string file, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        _process = Process.Start(psi)!;
        _stderr = _process.StandardError.ReadToEndAsync();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            var line = _process.StandardOutput.ReadLineAsync();
            if (!line.Wait(deadline - DateTime.UtcNow)) throw new TimeoutException("the probe did not report in 20 s");
            if (line.Result is null) throw new InvalidOperationException($"the probe ended without reporting: {Stderr()}");
            if (line.Result == "ready") break;
            int eq = line.Result.IndexOf('=');
            if (line.Result.StartsWith("read=")) Reads.Add(line.Result[5..]);
            else if (eq > 0) Report[line.Result[..eq]] = line.Result[(eq + 1)..];
        }
    }

    private string Stderr() => _process.WaitForExit(5000) ? _stderr.Result : "(still running)";

    /// <summary>Lets the probe exit with <paramref name="code"/>; returns ozone's exit status and stderr.</summary>
    public (int ExitCode, string Stderr) Finish(int code)
    {
        _process.StandardInput.WriteLine($"exit {code}");
        _process.StandardInput.Close();
        if (!_process.WaitForExit(20_000)) throw new TimeoutException("ozone did not exit 20 s after the probe was told to");
        return (_process.ExitCode, _stderr.Result);
    }

    /// <summary>After a failed assertion: end of input lets the probe exit, so ozone still cleans up; kill only if stuck.</summary>
    public void Dispose()
    {
        if (!_process.HasExited)
        {
            try { _process.StandardInput.Close(); }
            catch (IOException) { }
            if (!_process.WaitForExit(10_000)) _process.Kill(entireProcessTree: true);
        }
        _process.Dispose();
    }
}
