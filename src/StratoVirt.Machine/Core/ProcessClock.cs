using StratoVirt.Sys;

namespace StratoVirt.Machine;

/// <summary>Timestamps relative to the start of the VMM, for the boot-time log.</summary>
public static class ProcessClock
{
    /// <summary>CLOCK_MONOTONIC at the first line of Main (set by the executable).</summary>
    public static long StartNs { get; private set; } = Libc.MonotonicNanoseconds();

    public static void MarkStart() => StartNs = Libc.MonotonicNanoseconds();

    /// <summary>Firecracker's boot-time line, plus the raw monotonic time so benchmarks can use their own start.</summary>
    public static string BootTimeLine() => Since("Guest-boot-time");

    /// <summary>The same figures when vCPU 0 first enters KVM_RUN: the guest's first instruction of a boot, or of
    /// a restore its first after the snapshot.</summary>
    public static string FirstEntryLine() => Since("Guest-first-entry-time");

    private static string Since(string label)
    {
        long now = Libc.MonotonicNanoseconds();
        long us = (now - StartNs) / 1000, cpuUs = Libc.ProcessCpuNanoseconds() / 1000;
        return $"{label} = {us} us {us / 1000} ms, {cpuUs} CPU us {cpuUs / 1000} CPU ms (monotonic {now} ns)";
    }
}
