using System.Diagnostics;

namespace StratoVirt.Tests;

/// <summary>The output and exit status of one stratovirt run.</summary>
public sealed record VmmResult(int ExitCode, string Stdout, string Stderr, bool TimedOut)
{
    public override string ToString() => $"exit {ExitCode}{(TimedOut ? " (timed out)" : "")}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>Runs the NativeAOT stratovirt binary (or any command) and collects its output.</summary>
public static class VmmProcess
{
    public static string RepoRoot { get; } = FindRoot();

    /// <summary>The binary under test: $STRATOVIRT_BINARY, or out/stratovirt from scripts/build.sh.</summary>
    public static string Binary =>
        Environment.GetEnvironmentVariable("STRATOVIRT_BINARY") is { Length: > 0 } b ? b : Path.Combine(RepoRoot, "out", "stratovirt");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "StratoVirt.slnx"))) return dir.FullName;
        throw new InvalidOperationException("cannot find the repository root (StratoVirt.slnx)");
    }

    public static VmmResult Run(IEnumerable<string> args, TimeSpan? timeout = null, IDictionary<string, string>? env = null,
        string? stdin = null) => RunCommand(Binary, args, timeout, env, stdin);

    public static VmmResult RunCommand(string file, IEnumerable<string> args, TimeSpan? timeout = null,
        IDictionary<string, string>? env = null, string? stdin = null)
    {
        if (file.Contains('/') && !File.Exists(file))
            throw new FileNotFoundException($"{file} is missing: run scripts/build.sh first", file);
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (stdin is not null) p.StandardInput.Write(stdin);
        p.StandardInput.Close();
        bool exited = p.WaitForExit(timeout ?? TimeSpan.FromSeconds(20));
        if (!exited)
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
        }
        return new VmmResult(exited ? p.ExitCode : -1, stdout.Result, stderr.Result, !exited);
    }
}
