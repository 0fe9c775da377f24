using System.Runtime.InteropServices;
using System.Text;
using StratoVirt.Sys;

namespace Ozone;

/// <summary>The system calls ozone needs beyond plain declarations: each turns errno into a SysException naming the step.</summary>
public static unsafe class SandboxCalls
{
    /// <summary>Writes <paramref name="text"/> to a (cgroup or proc) file in one write(2), as those files want it.</summary>
    public static void WriteText(string path, string text)
    {
        using var fd = FileDescriptor.Open(path, Libc.O_WRONLY);
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        fixed (byte* p = bytes)
            if (Libc.Write(fd.Fd, p, (nuint)bytes.Length) < 0) throw SysException.Last($"write '{text}' to {path}");
    }

    /// <summary>Reads a small text file, naming it in the error.</summary>
    public static string ReadText(string path)
    {
        try { return File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new OzoneException($"read {path}: {e.Message}");
        }
    }

    /// <summary>Marks every fd above 2 close-on-exec, so nothing the caller inherited reaches the sandboxed binary.</summary>
    /// <remarks>Closing them outright would also close descriptors the .NET runtime itself may hold; close-on-exec
    /// gives the binary the same view (only 0, 1 and 2) without pulling anything from under the runtime.</remarks>
    public static void CloseInheritedFds() =>
        SysException.Check((int)Libc.Syscall(Libc.SYS_close_range, 3, unchecked((nint)uint.MaxValue), (nint)Libc.CLOSE_RANGE_CLOEXEC),
            "close_range (mark inherited fds close-on-exec)");

    public static void SetHostName(string name)
    {
        byte[] bytes = Encoding.ASCII.GetBytes(name);
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

    /// <summary>A NULL-terminated array of C strings in unmanaged memory, for execve and posix_spawn.</summary>
    public sealed class CStringArray : IDisposable
    {
        private readonly nint[] _strings;
        public byte** Pointer { get; }

        public CStringArray(IReadOnlyList<string> items)
        {
            _strings = new nint[items.Count];
            Pointer = (byte**)NativeMemory.AllocZeroed((nuint)(items.Count + 1), (nuint)sizeof(nint));
            for (int i = 0; i < items.Count; i++)
                Pointer[i] = (byte*)(_strings[i] = Marshal.StringToCoTaskMemUTF8(items[i]));
        }

        public void Dispose()
        {
            foreach (var s in _strings) Marshal.FreeCoTaskMem(s);
            NativeMemory.Free(Pointer);
        }
    }

    /// <summary>The current environment as NAME=value strings.</summary>
    public static List<string> Environment()
    {
        var env = new List<string>();
        foreach (System.Collections.DictionaryEntry e in System.Environment.GetEnvironmentVariables())
            env.Add($"{e.Key}={e.Value}");
        return env;
    }

    /// <summary>execve(2); returns only by throwing.</summary>
    public static void Exec(string path, IReadOnlyList<string> argv, IReadOnlyList<string> envp)
    {
        using var args = new CStringArray(argv);
        using var env = new CStringArray(envp);
        using var file = new CStringArray([path]);
        Libc.Execve(file.Pointer[0], args.Pointer, env.Pointer);
        throw SysException.Last($"execve {path}");
    }
}
