using System.Text;
using StratoVirt.Sys;

namespace Ozone;

/// <summary>Ozone's file and process steps beyond plain declarations: each turns errno into a SysException naming the step.</summary>
public static class SandboxCalls
{
    /// <summary>Writes <paramref name="text"/> to a (cgroup or proc) file in one write(2), as those files want it.</summary>
    public static void WriteText(string path, string text)
    {
        using var fd = FileDescriptor.Open(path, Libc.O_WRONLY);
        int n = FileIo.Write(fd.Fd, Encoding.UTF8.GetBytes(text));
        if (n < 0) throw new SysException($"write '{text}' to {path}", -n);
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

    /// <summary>The current environment as NAME=value strings.</summary>
    public static List<string> Environment()
    {
        var env = new List<string>();
        foreach (System.Collections.DictionaryEntry e in System.Environment.GetEnvironmentVariables())
            env.Add($"{e.Key}={e.Value}");
        return env;
    }
}
