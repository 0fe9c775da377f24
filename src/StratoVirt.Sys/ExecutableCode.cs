namespace StratoVirt.Sys;

/// <summary>Native code the VMM carries as bytes (signal handlers), put in pages of its own that are read-only and
/// executable. Map it before the seccomp filters go on: PROT_EXEC is in no list.</summary>
public static unsafe class ExecutableCode
{
    /// <summary>Maps <paramref name="code"/> and returns its first byte's address; the pages stay for the life of
    /// the process. <paramref name="what"/> names it in an error.</summary>
    public static nint Map(ReadOnlySpan<byte> code, string what)
    {
        nuint size = (nuint)((code.Length + 4095) & ~4095);
        byte* page = (byte*)Libc.Mmap(null, size, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS, -1, 0);
        if (page == (byte*)-1) throw SysException.Last($"mmap ({what})");
        // The mapping is `size` >= code.Length bytes long and no one else knows of it until mprotect below.
        code.CopyTo(new Span<byte>(page, code.Length));
        if (Libc.Mprotect(page, size, Libc.PROT_READ | Libc.PROT_EXEC) != 0)
            throw SysException.Last($"mprotect ({what})");
        return (nint)page;
    }
}
