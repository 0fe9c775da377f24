using StratoVirt.Sys;

namespace StratoVirt.Machine;

/// <summary>Timestamps relative to the start of the VMM, for the boot-time log.</summary>
public static class ProcessClock
{
    /// <summary>CLOCK_MONOTONIC at the first line of Main (set by the executable).</summary>
    public static long StartNs { get; private set; } = Libc.MonotonicNanoseconds();

    public static void MarkStart() => StartNs = Libc.MonotonicNanoseconds();

    /// <summary>Firecracker's boot-time line, plus the raw monotonic time so benchmarks can use their own start.</summary>
    public static string BootTimeLine()
    {
        long now = Libc.MonotonicNanoseconds();
        long us = (now - StartNs) / 1000, cpuUs = Libc.ProcessCpuNanoseconds() / 1000;
        return $"Guest-boot-time = {us} us {us / 1000} ms, {cpuUs} CPU us {cpuUs / 1000} CPU ms (monotonic {now} ns)";
    }
}
