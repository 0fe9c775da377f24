using StratoVirt.Devices.Options;
using StratoVirt.Sys;

namespace StratoVirt;

/// <summary>
/// -daemonize without fork(): the command re-runs this program (posix_spawn of /proc/self/exe, same arguments, a
/// marker in the environment) in a new session with stdin and stdout on /dev/null. Its stderr is a pipe to the
/// parent, which copies what arrives (start-up errors, early log lines) to its own stderr. Once the VM is built
/// and the QMP socket listens, the daemon writes one NUL byte and puts /dev/null on its stderr; the parent then
/// exits 0. If the daemon ends first, the parent exits with its exit code. So `stratovirt -daemonize ...` returns
/// when the VM is ready, as a forking daemon would.
/// </summary>
public static class Daemon
{
    /// <summary>Set only in the environment of the daemon this program starts; not an interface.</summary>
    private const string ChildMarker = "STRATOVIRT_DAEMON_CHILD";
    private const byte ReadyByte = 0;
    private const string ReadyText = "\0";

    /// <summary>True in the daemon started by <see cref="Start"/>. Reads and clears the marker: call once, first.</summary>
    public static bool TakeChildMarker()
    {
        if (Environment.GetEnvironmentVariable(ChildMarker) != "1") return false;
        Environment.SetEnvironmentVariable(ChildMarker, null);
        return true;
    }

    /// <summary>The parent's side: starts the daemon and waits until it is ready (0) or has failed (its exit code).</summary>
    public static int Start(string[] args, string? pidFile)
    {
        if (pidFile is not null && File.Exists(pidFile))
            throw new UsageException($"option -pidfile: {pidFile} already exists (another VM's, or left behind)");
        var environment = new List<string>();
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
            environment.Add($"{e.Key}={e.Value}");
        environment.Add($"{ChildMarker}=1");
        string argv0 = Environment.GetCommandLineArgs() is [var first, ..] ? first : "stratovirt";

        var (read, write) = ChildProcess.Pipe();
        int pid;
        using (read)
        {
            using (write) pid = ChildProcess.SpawnDetached("/proc/self/exe", [argv0, .. args], environment, write.Fd);
            var buffer = new byte[4096];
            int n;
            while ((n = ChildProcess.Read(read, buffer)) > 0)
            {
                int ready = Array.IndexOf(buffer, ReadyByte, 0, n);
                Log.WriteAll(2, buffer.AsSpan(0, ready < 0 ? n : ready));
                if (ready >= 0) return 0;
            }
        }
        // The daemon closed its stderr without saying it was ready: it has ended (or is ending).
        int code = ChildProcess.WaitForExit(pid);
        if (code == 0) Log.WriteRaw(2, "stratovirt: the daemon exited before the VM was ready\n");
        return code == 0 ? 1 : code;
    }

    /// <summary>The daemon's first step: stdin and stdout go to /dev/null (stderr still reaches the parent).</summary>
    public static void DetachStandardStreams()
    {
        ChildProcess.RedirectToDevNull(0);
        ChildProcess.RedirectToDevNull(1);
    }

    /// <summary>The daemon is set up: tell the parent, and detach stderr as well.</summary>
    public static void ReportReady()
    {
        Log.WriteRaw(2, ReadyText); // under the log's lock: never inside another thread's log line
        ChildProcess.RedirectToDevNull(2);
    }
}
