using System.Text;
using StratoVirt.Sys;

namespace Ozone;

/// <summary>
/// What a dynamically linked binary needs in the chroot: its ELF interpreter and the libraries the interpreter
/// resolves for it (asked with "ld.so --list", as ldd does). Upstream requires a static binary, and stratovirt is
/// one; a dynamically linked -exec-file still runs, with these copied in at the same paths.
/// </summary>
public static class SharedLibraries
{
    private const uint PT_INTERP = 3;

    /// <summary>The PT_INTERP path of an ELF64 file, or null for a static binary (or no ELF64 at all).</summary>
    public static string? Interpreter(string path)
    {
        using var f = File.OpenRead(path);
        using var r = new BinaryReader(f);
        if (f.Length < 64 || r.ReadUInt32() != 0x464c457f || r.ReadByte() != 2) return null; // "\x7fELF", ELFCLASS64
        f.Position = 0x20;
        long phoff = r.ReadInt64();
        f.Position = 0x36;
        int phentsize = r.ReadUInt16(), phnum = r.ReadUInt16();
        for (int i = 0; i < phnum; i++)
        {
            f.Position = phoff + (long)i * phentsize;
            if (r.ReadUInt32() != PT_INTERP) continue;
            f.Position = phoff + (long)i * phentsize + 8;
            long offset = r.ReadInt64();
            f.Position = phoff + (long)i * phentsize + 32;
            long size = r.ReadInt64();
            f.Position = offset;
            return Encoding.ASCII.GetString(r.ReadBytes((int)size)).TrimEnd('\0');
        }
        return null;
    }

    /// <summary>The interpreter and every library it would load for <paramref name="binary"/>; empty for a static one.</summary>
    public static List<string> Of(string binary)
    {
        if (Interpreter(binary) is not { } interpreter) return [];
        if (!File.Exists(interpreter)) throw new OzoneException($"-exec-file {binary} needs {interpreter}, which does not exist");
        var (read, write) = ChildProcess.Pipe();
        int pid;
        using (write) pid = ChildProcess.Spawn(interpreter, [interpreter, "--list", binary], SandboxCalls.Environment(), write.Fd, 1);
        var output = new MemoryStream();
        using (read)
        {
            var buffer = new byte[4096];
            int n;
            while ((n = ChildProcess.Read(read, buffer)) > 0) output.Write(buffer, 0, n);
        }
        if (ChildProcess.WaitForExit(pid) != 0) throw new OzoneException($"{interpreter} --list {binary} failed");

        // Lines are "name => /path (0x...)", "/path (0x...)" for the interpreter, or "linux-vdso.so.1 (0x...)".
        var libraries = new List<string> { interpreter };
        foreach (var line in Encoding.UTF8.GetString(output.ToArray()).Split('\n', StringSplitOptions.TrimEntries))
        {
            int arrow = line.IndexOf("=> ", StringComparison.Ordinal);
            string path = (arrow >= 0 ? line[(arrow + 3)..] : line).Split(' ')[0];
            if (path.StartsWith('/') && !libraries.Contains(path)) libraries.Add(path);
            else if (arrow >= 0 && !path.StartsWith('/')) throw new OzoneException($"-exec-file {binary}: library {line} not found");
        }
        return libraries;
    }
}
