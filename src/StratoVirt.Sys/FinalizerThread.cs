using System.Runtime.CompilerServices;

namespace StratoVirt.Sys;

/// <summary>
/// Runs code on the .NET runtime's finalizer thread, the one thread the VMM does not create: per-thread settings
/// (the signal mask, a seccomp filter) have to be made there too.
/// </summary>
public static class FinalizerThread
{
    /// <summary>Runs <paramref name="action"/> on the finalizer thread and waits for it; false with the exception's
    /// message when it threw.</summary>
    public static bool Run(Action action, out string? error)
    {
        var outcome = new Outcome();
        Abandon(action, outcome);
        // The carrier is new, so a collection of generation 0 alone finds it, at less cost than a full one; a
        // collection another thread caused while the carrier was still being made may have promoted it, and then
        // only a full one does.
        GC.Collect(0, GCCollectionMode.Forced, blocking: true);
        GC.WaitForPendingFinalizers();
        if (!outcome.Ran)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        error = outcome.Ran ? outcome.Error : "the finalizer did not run";
        return outcome.Ran && outcome.Error is null;
    }

    private sealed class Outcome
    {
        public volatile bool Ran;
        public string? Error;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Abandon(Action action, Outcome outcome) => _ = new Carrier(action, outcome);

    /// <summary>Unreachable as soon as it is made: the next collection queues its finalizer.</summary>
    private sealed class Carrier(Action action, Outcome outcome)
    {
        ~Carrier()
        {
            try { action(); }
            catch (Exception e) { outcome.Error = e.Message; }
            outcome.Ran = true;
        }
    }
}
