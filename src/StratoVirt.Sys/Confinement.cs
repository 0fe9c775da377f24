using System.Text;

namespace StratoVirt.Sys;

/// <summary>
/// The calls that confine a process before it runs its program (ozone's second stage): hostname, root, groups,
/// capabilities, then execve. Each throws a <see cref="SysException"/> naming the step.
/// </summary>
public static unsafe class Confinement
{
    public static void SetHostName(string name)
    {
        byte[] bytes = Encoding.ASCII.GetBytes(name);
        // The array is pinned for the call and sethostname reads exactly its length.
        fixed (byte* p = bytes) SysException.Check(Libc.SetHostName(p, (nuint)bytes.Length), $"sethostname {name}");
    }

    /// <summary>pivot_root(".", ".") with the working directory at the new root: the old root ends up stacked on
    /// top of the new one and is detached next, so no put_old folder is needed.</summary>
    public static void PivotRootHere()
    {
        byte* dot = stackalloc byte[] { (byte)'.', 0 };
        // dot is a NUL-terminated string on this frame; pivot_root only reads it.
        if (Libc.Syscall(Libc.SYS_pivot_root, (nint)dot, (nint)dot, 0) < 0) throw SysException.Last("pivot_root");
    }

    /// <summary>Leaves the process with no supplementary groups.</summary>
    public static void ClearSupplementaryGroups() =>
        // An empty list: the kernel reads no entries, so the NULL list is never dereferenced.
        SysException.Check(Libc.SetGroups(0, null), "setgroups");

    /// <summary>Sets the effective, permitted and inheritable capability sets all to <paramref name="mask"/>.</summary>
    public static void SetCapabilities(ulong mask)
    {
        var header = new CapHeader { Version = Libc.CapabilityVersion3, Pid = 0 };
        var data = stackalloc CapData[2];
        data[0] = new CapData { Effective = (uint)mask, Permitted = (uint)mask, Inheritable = (uint)mask };
        data[1] = new CapData { Effective = (uint)(mask >> 32), Permitted = (uint)(mask >> 32), Inheritable = (uint)(mask >> 32) };
        // The header and the two data structs live on this stack frame for the whole call.
        SysException.Check(Libc.CapSet(&header, data), "capset");
    }

    /// <summary>execve(2); returns only by throwing.</summary>
    public static void Exec(string path, IReadOnlyList<string> argv, IReadOnlyList<string> envp)
    {
        using var args = new NativeStringArray(argv);
        using var env = new NativeStringArray(envp);
        using var file = new NativeStringArray([path]);
        // The three arrays stay allocated until execve has returned (it returns only on failure).
        Libc.Execve(file[0], args.Pointer, env.Pointer);
        throw SysException.Last($"execve {path}");
    }
}
