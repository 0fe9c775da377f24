using StratoVirt.Sys;

namespace Ozone;

/// <summary>Linux capability names and numbers, and the calls that shrink a process's capabilities.</summary>
public static class CapabilitySet
{
    /// <summary>Names in number order (linux/capability.h).</summary>
    public static readonly string[] Names =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
    ];

    /// <summary>The capabilities a container runtime grants by default; ozone warns about any other.</summary>
    private static readonly HashSet<string> Ordinary =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
        "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_MKNOD", "CAP_AUDIT_WRITE",
        "CAP_SETFCAP",
    ];

    /// <summary>Parses "-capability CAP_A,cap_b" (case-insensitive, the CAP_ prefix required as upstream).</summary>
    public static IReadOnlyList<string> ParseNames(string list)
    {
        var result = new List<string>();
        foreach (var raw in list.Split(','))
        {
            string name = raw.Trim().ToUpperInvariant();
            if (Array.IndexOf(Names, name) < 0) throw new OzoneException($"-capability '{raw}' is not a capability name");
            if (!result.Contains(name)) result.Add(name);
        }
        return result;
    }

    public static bool IsRisky(string name) => !Ordinary.Contains(name);

    public static ulong Mask(IEnumerable<string> names)
    {
        ulong mask = 0;
        foreach (var n in names) mask |= 1UL << Array.IndexOf(Names, n);
        return mask;
    }

    /// <summary>Drops every capability outside <paramref name="keep"/> from the bounding set (needs CAP_SETPCAP).</summary>
    public static void DropBounding(ulong keep)
    {
        // PR_CAPBSET_READ fails with EINVAL past the kernel's last capability: that is where the loop ends.
        for (int cap = 0; cap < 64 && Libc.Prctl(Libc.PR_CAPBSET_READ, (ulong)cap, 0, 0, 0) >= 0; cap++)
            if ((keep & (1UL << cap)) == 0)
                SysException.Check(Libc.Prctl(Libc.PR_CAPBSET_DROP, (ulong)cap, 0, 0, 0), $"drop capability {cap} from the bounding set");
    }

    /// <summary>Raises each capability of <paramref name="mask"/> in the ambient set, so it survives exec as a non-root user.</summary>
    public static void RaiseAmbient(ulong mask)
    {
        for (int cap = 0; cap < 64; cap++)
            if ((mask & (1UL << cap)) != 0)
                SysException.Check(Libc.Prctl(Libc.PR_CAP_AMBIENT, Libc.PR_CAP_AMBIENT_RAISE, (ulong)cap, 0, 0),
                    $"raise ambient capability {Names[cap]}");
    }
}
