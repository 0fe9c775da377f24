using StratoVirt.Sys;

namespace StratoVirt.Tests;

/// <summary>Runs an event loop on the test's thread, for devices and chardevs fed by host fds.</summary>
public static class EventLoopPump
{
    /// <summary>Runs <paramref name="loop"/> until <paramref name="done"/> or the timeout; false on timeout.</summary>
    public static bool RunUntil(this EventLoop loop, Func<bool> done, int timeoutMs = 5000)
    {
        long until = Environment.TickCount64 + timeoutMs;
        while (!done())
        {
            if (Environment.TickCount64 > until) return false;
            loop.RunOnce(10);
        }
        return true;
    }
}
