namespace StratoVirt.Virtio.Devices.Vsock;

/// <summary>
/// A fixed-capacity byte FIFO: the bytes a vsock connection could not yet write to its host socket. Allocated once
/// per connection, the first time a write comes up short.
/// </summary>
internal sealed class VsockByteRing(int capacity)
{
    private readonly byte[] _data = new byte[capacity];
    private int _start;

    public int Count { get; private set; }
    public int Free => _data.Length - Count;

    /// <summary>Appends all of <paramref name="bytes"/>; false (nothing appended) if they do not fit.</summary>
    public bool Append(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length > Free) return false;
        int end = (_start + Count) % _data.Length;
        int first = Math.Min(bytes.Length, _data.Length - end);
        bytes[..first].CopyTo(_data.AsSpan(end));
        bytes[first..].CopyTo(_data);
        Count += bytes.Length;
        return true;
    }

    /// <summary>The oldest bytes that are contiguous in the buffer (all of them unless they wrap around).</summary>
    public ReadOnlySpan<byte> Front => _data.AsSpan(_start, Math.Min(Count, _data.Length - _start));

    /// <summary>Drops the <paramref name="n"/> oldest bytes.</summary>
    public void Consume(int n)
    {
        Count -= n;
        _start = Count == 0 ? 0 : (_start + n) % _data.Length;
    }
}
