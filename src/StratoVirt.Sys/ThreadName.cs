namespace StratoVirt.Sys;

/// <summary>The kernel's name of the calling thread (/proc/self/task/*/comm, what ps, top and strace show).
/// NativeAOT does not pass Thread.Name on to the kernel.</summary>
public static unsafe class ThreadName
{
    /// <summary>Names the calling thread; the kernel keeps the first 15 bytes.</summary>
    public static void SetCurrent(string name)
    {
        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(name);
        Span<byte> utf8 = stackalloc byte[16];
        int n = Math.Min(bytes.Length, 15);
        bytes.AsSpan(0, n).CopyTo(utf8);
        utf8[n] = 0;
        // The kernel copies at most 16 bytes from this NUL-terminated stack buffer.
        fixed (byte* p = utf8) Libc.Prctl(Libc.PR_SET_NAME, (ulong)p, 0, 0, 0);
    }
}
