using System.Runtime.InteropServices;

namespace StratoVirt.Sys;

/// <summary>Clocks.</summary>
public static unsafe partial class Libc
{
    public const int CLOCK_REALTIME = 0, CLOCK_MONOTONIC = 1, CLOCK_PROCESS_CPUTIME_ID = 2;

    [LibraryImport(Lib, EntryPoint = "clock_gettime")]
    public static partial int ClockGetTime(int clock, TimeSpec* ts);

    public static long MonotonicNanoseconds() => Nanoseconds(CLOCK_MONOTONIC);

    /// <summary>CPU time used so far by every thread of the process.</summary>
    public static long ProcessCpuNanoseconds() => Nanoseconds(CLOCK_PROCESS_CPUTIME_ID);

    private static long Nanoseconds(int clock)
    {
        TimeSpec ts;
        // ts is a local of this frame that clock_gettime fills.
        ClockGetTime(clock, &ts);
        return ts.Seconds * 1_000_000_000L + ts.Nanoseconds;
    }
}

/// <summary>struct timespec.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct TimeSpec
{
    public long Seconds;
    public long Nanoseconds;
}
