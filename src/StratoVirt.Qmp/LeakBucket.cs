namespace StratoVirt.Qmp;

/// <summary>
/// Upstream's QMP flow control: a leaky bucket that each request fills by one unit and that drains at
/// <c>perSecond</c> units a second. A request that finds the bucket above its capacity is refused (the
/// client gets OperationThrottled), so a burst of <c>perSecond + 1</c> passes and then one request per
/// 1/<c>perSecond</c> s. The level is brought up to date when a request arrives; no timer runs.
/// </summary>
internal sealed class LeakBucket(int perSecond, TimeProvider clock)
{
    /// <summary>Sub-units per request, so the drain keeps fractions of a request (as upstream does).</summary>
    private const long Scale = 1000;

    private readonly long _capacity = perSecond * Scale;
    private long _level;
    private long _last = clock.GetTimestamp();

    public int PerSecond => perSecond;

    /// <summary>True when the request may run (and is counted); false when it must be refused.</summary>
    public bool TryAdmit()
    {
        if (_capacity == 0) return true; // 0: no limit
        long now = clock.GetTimestamp();
        Int128 drained = (Int128)(now - _last) * _capacity / clock.TimestampFrequency;
        _last = now;
        _level = drained >= _level ? 0 : _level - (long)drained;
        if (_level > _capacity) return false;
        _level += Scale;
        return true;
    }
}
