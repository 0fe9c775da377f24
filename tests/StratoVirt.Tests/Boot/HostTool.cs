using System.ComponentModel;
using System.Diagnostics;

namespace StratoVirt.Tests.Boot;

/// <summary>Runs a Debian tool the unit tests cross-check with (iasl, dtc); a missing tool names its package.</summary>
internal static class HostTool
{
    public static (int ExitCode, string Output, string Errors) Run(string tool, string package, string workingDirectory,
        params string[] args)
    {
        var start = new ProcessStartInfo(tool)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string arg in args) start.ArgumentList.Add(arg);

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException($"{tool} did not start");
        }
        catch (Win32Exception e)
        {
            throw new InvalidOperationException($"{tool} not found: install the {package} package (scripts/deps.sh)", e);
        }
        using (process)
        {
            var stderr = process.StandardError.ReadToEndAsync();
            string output = process.StandardOutput.ReadToEnd();
            Assert.True(process.WaitForExit(60_000), $"{tool} timed out");
            return (process.ExitCode, output, stderr.Result);
        }
    }
}
