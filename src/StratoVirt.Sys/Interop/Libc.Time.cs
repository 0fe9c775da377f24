using System.Runtime.InteropServices;

namespace StratoVirt.Sys;

/// <summary>Clocks.</summary>
public static unsafe partial class Libc
{
    public const int CLOCK_REALTIME = 0, CLOCK_MONOTONIC = 1;

    [LibraryImport(Lib, EntryPoint = "clock_gettime")]
    public static partial int ClockGetTime(int clock, TimeSpec* ts);

    public static long MonotonicNanoseconds()
    {
        TimeSpec ts;
        ClockGetTime(CLOCK_MONOTONIC, &ts);
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
