using System.Runtime.InteropServices;
using System.Text;
using StratoVirt.Sys;

namespace Ozone;

/// <summary>
/// The first stage, run on the host: checks the input, builds the chroot folder and the cgroups, starts the
/// second stage (<see cref="Sandbox"/>) as pid 1 of a new PID namespace, waits for it and returns its status.
/// Whatever fails, what was built so far is removed before the error is reported.
/// </summary>
public static class Launcher
{
    public static int Run(OzoneOptions o, string[] userArgs)
    {
        if (Libc.GetEUid() != 0) throw new OzoneException($"must be run as root (euid is {Libc.GetEUid()})");
        SandboxCalls.CloseInheritedFds();
        var chroot = new ChrootDir(o);
        if (o.CleanResource && !o.HasCommand) return CleanEarlierRun(o, chroot);

        string execFile = RealFile(o.ExecFile, "-exec-file");
        var sources = new List<string>(o.Sources.Count);
        foreach (string s in o.Sources) sources.Add(RealPath(s, "-source"));
        var names = new HashSet<string> { o.ExecName, "dev" };
        foreach (var s in sources)
            if (!names.Add(Path.GetFileName(s)))
                throw new OzoneException($"-source {s}: the chroot already has an entry named '{Path.GetFileName(s)}'");
        if (o.NetNs is { } netns && !File.Exists(netns)) throw new OzoneException($"-netns {netns} does not exist");
        foreach (var cap in o.Capabilities)
            if (CapabilitySet.IsRisky(cap))
                Log.WriteRaw(2, $"ozone: warning: {cap} lets the sandboxed process do much more; it may help it escape\n");

        var cgroups = CgroupLimits.Plan(o, MountTable.Read());
        chroot.Create(execFile, sources);
        int pid;
        try
        {
            cgroups.Create();
            pid = StartSandbox(Sandbox.StageArgs(cgroups.Directories, userArgs));
        }
        catch (Exception e)
        {
            throw new OzoneException(e.Message + RollBack(chroot, cgroups));
        }

        int status = WaitForwardingSignals(pid);
        if (o.CleanResource)
        {
            cgroups.Remove();
            chroot.Remove();
        }
        return status;
    }

    /// <summary>Upstream's separate clean-up call: ozone ... -clean-resource, after the binary has exited.</summary>
    private static int CleanEarlierRun(OzoneOptions o, ChrootDir chroot)
    {
        var cgroups = CgroupLimits.Existing(o, MountTable.Read());
        if (!chroot.Exists && cgroups.Directories.Count == 0)
            throw new OzoneException($"nothing to clean: {chroot.Path} and its cgroups do not exist");
        cgroups.Remove();
        chroot.Remove();
        return 0;
    }

    /// <summary>Removes the cgroups and the chroot; returns "" or the text of what could not be removed.</summary>
    private static string RollBack(ChrootDir chroot, CgroupLimits cgroups)
    {
        var failures = new StringBuilder();
        foreach (Action step in (Action[])[cgroups.Remove, chroot.Remove])
        {
            try { step(); }
            catch (VmmException e)
            {
                failures.Append($" (and rolling back failed: {e.Message})");
            }
        }
        return failures.ToString();
    }

    /// <summary>Starts the second stage as pid 1 of a new PID namespace and waits until it has exec'd the binary.</summary>
    private static int StartSandbox(List<string> argv)
    {
        var (read, write) = ChildProcess.Pipe();
        using (read)
        {
            int pid;
            using (write)
            {
                // CLONE_NEWPID puts the children of this thread, not the thread itself, in the new namespace:
                // the second stage is its first process, so pid 1. While it is set, this thread cannot start
                // threads (the kernel refuses CLONE_THREAD across PID namespaces), and the runtime will want
                // some, so the thread's own namespace for children is set back right after the spawn.
                using var own = FileDescriptor.Open("/proc/self/ns/pid", Libc.O_RDONLY);
                SysException.Check(Libc.Unshare(Libc.CLONE_NEWPID), "unshare(CLONE_NEWPID)");
                try
                {
                    pid = ChildProcess.Spawn("/proc/self/exe", argv, SandboxCalls.Environment(), write.Fd, Sandbox.StatusFd);
                }
                finally
                {
                    SysException.Check(Libc.SetNs(own.Fd, Libc.CLONE_NEWPID), "setns back to the host PID namespace");
                }
            }
            // The second stage writes its error here, or exec closes the pipe (close-on-exec) and we read EOF.
            var message = new byte[4096];
            int n = 0, got;
            while (n < message.Length && (got = ChildProcess.Read(read, message.AsSpan(n))) > 0) n += got;
            if (n == 0) return pid;
            ChildProcess.WaitForExit(pid);
            throw new OzoneException(Encoding.UTF8.GetString(message, 0, n));
        }
    }

    /// <summary>Waits for the sandbox, passing on SIGTERM, SIGINT, SIGHUP and SIGQUIT sent to ozone.</summary>
    private static int WaitForwardingSignals(int pid)
    {
        var registrations = new List<PosixSignalRegistration>();
        foreach (var signal in (PosixSignal[])[PosixSignal.SIGTERM, PosixSignal.SIGINT, PosixSignal.SIGHUP, PosixSignal.SIGQUIT])
        {
            registrations.Add(PosixSignalRegistration.Create(signal, ctx =>
            {
                Libc.Kill(pid, SignalNumber(ctx.Signal));
                ctx.Cancel = true;
            }));
        }
        try { return ChildProcess.WaitForExit(pid); }
        finally { foreach (var r in registrations) r.Dispose(); }
    }

    private static int SignalNumber(PosixSignal s) => s switch
    {
        PosixSignal.SIGTERM => Libc.SIGTERM,
        PosixSignal.SIGINT => Libc.SIGINT,
        PosixSignal.SIGHUP => Libc.SIGHUP,
        _ => Libc.SIGQUIT,
    };

    private static string RealPath(string path, string what)
    {
        var info = new FileInfo(path);
        if (!info.Exists && !Directory.Exists(path)) throw new OzoneException($"{what} {path} does not exist");
        FileSystemInfo? target = null;
        OzoneException.FileStep(() => target = info.ResolveLinkTarget(returnFinalTarget: true));
        return Path.GetFullPath(target?.FullName ?? info.FullName);
    }

    private static string RealFile(string path, string what)
    {
        string real = RealPath(path, what);
        if (!File.Exists(real)) throw new OzoneException($"{what} {path} is not a file");
        return real;
    }
}
