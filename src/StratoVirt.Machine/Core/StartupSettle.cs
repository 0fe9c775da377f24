namespace StratoVirt.Machine;

/// <summary>
/// Decides when start-up is over, so that what only start-up needed can be given back: once the main loop has
/// served nothing for <see cref="QuietMs"/>, or <see cref="LatestMs"/> after the vCPUs started, whichever comes
/// first. The vCPUs' first exits and the main loop's first turns (the boot-time log line, QMP's greeting, device
/// activation) touch code of their own; given back as soon as the vCPUs started, those pages came straight back
/// (about 1.2 MB of the executable's code on a PVM host).
/// </summary>
internal sealed class StartupSettle
{
    /// <summary>How long the main loop must stay without work.</summary>
    public const int QuietMs = 200;

    /// <summary>The latest the settling waits for, however busy the main loop (a QMP client polling).</summary>
    public const int LatestMs = 2000;

    private readonly long _latest;
    private long _quietUntil;
    private bool _settled;

    /// <param name="startMs">When the vCPUs started, in the clock's milliseconds.</param>
    public StartupSettle(long startMs)
    {
        _quietUntil = startMs + QuietMs;
        _latest = startMs + LatestMs;
    }

    /// <summary>Whether start-up has been declared over (at most once).</summary>
    public bool Settled => _settled;

    /// <summary>How long the main loop may wait before <see cref="Observe"/> is due: -1 once settled.</summary>
    public int TimeoutMs(long nowMs) => _settled ? -1 : (int)Math.Clamp(Math.Min(_quietUntil, _latest) - nowMs, 0, LatestMs);

    /// <summary>Takes one turn of the main loop that served <paramref name="handled"/> events; returns true exactly
    /// once, on the turn that ends start-up.</summary>
    public bool Observe(int handled, long nowMs)
    {
        if (_settled) return false;
        if (handled > 0) _quietUntil = nowMs + QuietMs;
        if (nowMs < Math.Min(_quietUntil, _latest)) return false;
        _settled = true;
        return true;
    }

    /// <summary>The earlier of two main-loop timeouts, where -1 means none.</summary>
    public static int Sooner(int a, int b) => a < 0 ? b : b < 0 ? a : Math.Min(a, b);
}
