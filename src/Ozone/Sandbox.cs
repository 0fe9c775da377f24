using System.Text;
using StratoVirt.Sys;

namespace Ozone;

/// <summary>
/// The second stage: ozone started again as pid 1 of the new PID namespace. It joins the cgroups, enters new
/// UTS, IPC and mount namespaces (and the -netns one), pivots into the chroot, makes /dev, sheds capabilities
/// and ids, and execs the binary, which so becomes pid 1 itself. A failure goes back to the first stage as one
/// line on fd 3 (closed on a successful exec), which then rolls back and reports it.
/// </summary>
public static class Sandbox
{
    /// <summary>argv[1] of the second stage; upstream's parser refuses "--name" without "=", so no user option looks like it.</summary>
    public const string StageArgument = "--sandbox-init";
    public const int StatusFd = 3;
    public const string HostName = "Ozone";

    /// <summary>A device node the sandbox may get: path, numbers, mode, and whether the host must have it first.</summary>
    private sealed record DeviceNode(string Path, uint Major, uint Minor, uint Mode, bool OnlyIfHostHasIt);

    private static readonly DeviceNode[] Devices =
    [
        new("/dev/kvm", 10, 232, 0x1b0 /* 0660 */, false),
        new("/dev/net/tun", 10, 200, 0x1b6 /* 0666 */, false),
        new("/dev/urandom", 1, 9, 0x1b6, false),
        new("/dev/null", 1, 3, 0x1b6, false),
        new("/dev/vhost-net", 10, 238, 0x180 /* 0600 */, true),
        new("/dev/vhost-vsock", 10, 241, 0x180, true),
    ];

    /// <summary>The second stage's argv: the stage marker, the cgroup folders to join, then the user's arguments.</summary>
    public static List<string> StageArgs(IReadOnlyList<string> cgroupDirs, IReadOnlyList<string> userArgs) =>
        ["ozone", StageArgument, cgroupDirs.Count.ToString(), .. cgroupDirs, .. userArgs];

    /// <summary>Runs the second stage from its arguments (after argv[0] and the marker); returns only on failure.</summary>
    public static int Run(string[] args)
    {
        try
        {
            if (args.Length < 2 || !int.TryParse(args[1], out int count) || count < 0 || count > args.Length - 2)
                throw new OzoneException($"{StageArgument} is ozone's own second stage, not an option");
            var dirs = args[2..(2 + count)];
            var options = OzoneOptions.Parse(args[(2 + count)..]);
            Enter(options, dirs);
            return 0;
        }
        catch (VmmException e)
        {
            Log.WriteAll(StatusFd, Encoding.UTF8.GetBytes(e.Message));
            return 1;
        }
    }

    private static void Enter(OzoneOptions o, IReadOnlyList<string> cgroupDirs)
    {
        CgroupLimits.Join(cgroupDirs);

        SysException.Check(Libc.Unshare(Libc.CLONE_NEWUTS | Libc.CLONE_NEWIPC), "unshare(CLONE_NEWUTS|CLONE_NEWIPC)");
        Confinement.SetHostName(HostName);
        if (o.NetNs is { } netns)
        {
            using var ns = FileDescriptor.Open(netns, Libc.O_RDONLY);
            SysException.Check(Libc.SetNs(ns.Fd, Libc.CLONE_NEWNET), $"setns {netns}");
        }
        var devices = Array.FindAll(Devices, d => !d.OnlyIfHostHasIt || File.Exists(d.Path));

        EnterRoot(new ChrootDir(o).Path);
        MakeDev(devices, o.Uid, o.Gid);
        DropPrivileges(o);
        SysException.Check(Libc.Prctl(Libc.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)");
        // Set after the id change, which clears it: the sandbox dies with the first stage.
        SysException.Check(Libc.Prctl(Libc.PR_SET_PDEATHSIG, Libc.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)");
        SandboxCalls.CloseInheritedFds();
        Confinement.Exec("/" + o.ExecName, [o.ExecName, .. o.ExecArgs], SandboxCalls.Environment());
    }

    /// <summary>A new mount namespace whose root is the chroot folder; the host's tree is detached from it.</summary>
    private static void EnterRoot(string root)
    {
        SysException.Check(Libc.Unshare(Libc.CLONE_NEWNS), "unshare(CLONE_NEWNS)");
        // Slave: mount events of the host still reach this namespace, none of this namespace's reach the host.
        SysException.Check(Libc.Mount(null, "/", null, Libc.MS_SLAVE | Libc.MS_REC, 0), "make / a recursive slave mount");
        // pivot_root needs the new root to be a mount point.
        SysException.Check(Libc.Mount(root, root, null, Libc.MS_BIND | Libc.MS_REC, 0), $"bind-mount {root} on itself");
        SysException.Check(Libc.Chdir(root), $"chdir {root}");
        try
        {
            Confinement.PivotRootHere();
            SysException.Check(Libc.Umount2(".", Libc.MNT_DETACH), "detach the old root");
        }
        catch (SysException e) when (e.Errno == Libc.EINVAL)
        {
            // The host runs from its initramfs (rootfs), which pivot_root cannot take away: move the chroot onto /
            // and chroot into it, as switch_root does. The old tree stays below, out of reach of a process without
            // CAP_SYS_CHROOT (the bounding set is emptied before exec unless -capability keeps it).
            SysException.Check(Libc.Mount(".", "/", null, Libc.MS_MOVE, 0), "move the chroot onto /");
            SysException.Check(Libc.Chroot("."), "chroot");
        }
        SysException.Check(Libc.Chdir("/"), "chdir /");
    }

    private static void MakeDev(DeviceNode[] devices, uint uid, uint gid)
    {
        foreach (var dir in (string[])["/", "/dev", "/dev/net"])
        {
            if (dir != "/" && Libc.Mkdir(dir, 0x1c0) != 0) throw SysException.Last($"mkdir {dir}");
            SysException.Check(Libc.Chmod(dir, 0x1c0 /* 0700 */), $"chmod {dir}");
            SysException.Check(Libc.Chown(dir, uid, gid), $"chown {dir}");
        }
        foreach (var d in devices)
        {
            SysException.Check(Libc.Mknod(d.Path, Libc.S_IFCHR | 0x180, Libc.MakeDev(d.Major, d.Minor)), $"mknod {d.Path}");
            SysException.Check(Libc.Chmod(d.Path, d.Mode), $"chmod {d.Path}");
            SysException.Check(Libc.Chown(d.Path, uid, gid), $"chown {d.Path}");
        }
    }

    /// <summary>Bounding set down to -capability, no supplementary groups, gid and uid, and the kept capabilities
    /// made effective: for a non-root uid through the ambient set, which is how they survive the exec.</summary>
    private static void DropPrivileges(OzoneOptions o)
    {
        ulong keep = CapabilitySet.Mask(o.Capabilities);
        CapabilitySet.DropBounding(keep);
        Confinement.ClearSupplementaryGroups();
        SysException.Check(Libc.SetResGid(o.Gid, o.Gid, o.Gid), $"setresgid {o.Gid}");
        if (keep != 0) SysException.Check(Libc.Prctl(Libc.PR_SET_KEEPCAPS, 1, 0, 0, 0), "prctl(PR_SET_KEEPCAPS)");
        SysException.Check(Libc.SetResUid(o.Uid, o.Uid, o.Uid), $"setresuid {o.Uid}");
        Confinement.SetCapabilities(keep);
        if (o.Uid != 0) CapabilitySet.RaiseAmbient(keep);
    }
}
