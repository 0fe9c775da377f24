using System.Runtime.InteropServices;
using StratoVirt.Sys;

namespace StratoVirt.Memory;

/// <summary>
/// -mem-prealloc: faults in every page of guest RAM before the guest starts, so the guest never waits for the host
/// to find a page (and a host short of memory says so at start). The work is split over min(4, cores) threads,
/// each populating its own stretch with madvise(MADV_POPULATE_WRITE); on a kernel without it (before 5.14) each
/// page is written instead. The threads end before the VM is built further, so the seccomp set-up never meets them.
/// </summary>
internal static unsafe class RamPrealloc
{
    private const int MaxThreads = 4;

    public static void Populate(IReadOnlyList<GuestRegion> regions, ulong pageSize)
    {
        ulong total = GuestMemory.SizeOf(regions);
        int threads = (int)Math.Min((ulong)Math.Min(MaxThreads, Environment.ProcessorCount), Math.Max(1, total / pageSize));
        // Each thread's share, whole pages.
        ulong share = (total / pageSize + (ulong)threads - 1) / (ulong)threads * pageSize;
        var stretches = new List<(nint Host, ulong Length)>();
        foreach (var r in regions)
        {
            for (ulong at = 0; at < r.Size; at += share)
                stretches.Add((r.HostAddress + (nint)at, Math.Min(share, r.Size - at)));
        }
        int errno = 0;
        var workers = new List<Thread>(stretches.Count);
        foreach (var s in stretches)
        {
            workers.Add(new Thread(() =>
            {
                int e = Populate(s.Host, s.Length, pageSize);
                if (e != 0) Interlocked.CompareExchange(ref errno, e, 0);
            }) { Name = "mem-prealloc", IsBackground = true });
        }
        foreach (var w in workers) w.Start();
        foreach (var w in workers) w.Join();
        if (errno != 0) throw new SysException($"preallocating {total >> 20} MiB of guest RAM", errno);
    }

    /// <summary>Returns 0 or the errno.</summary>
    private static int Populate(nint host, ulong length, ulong pageSize)
    {
        // [host, host+length) is a stretch of a live guest RAM mapping, which outlives this call.
        if (Libc.Madvise((void*)host, (nuint)length, Libc.MADV_POPULATE_WRITE) == 0) return 0;
        int errno = Marshal.GetLastPInvokeError();
        if (errno != Libc.EINVAL) return errno;
        byte* p = (byte*)host;
        // Writing back the byte read keeps what a named file already holds.
        for (ulong at = 0; at < length; at += pageSize) Volatile.Write(ref p[at], Volatile.Read(ref p[at]));
        return 0;
    }
}
