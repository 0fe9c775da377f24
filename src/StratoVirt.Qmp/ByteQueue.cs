namespace StratoVirt.Qmp;

/// <summary>A growable FIFO of bytes: appended at the back, consumed from the front.</summary>
internal sealed class ByteQueue
{
    private byte[] _buffer = new byte[1024];
    private int _head, _count;

    public int Count => _count;

    public ReadOnlySpan<byte> Pending => _buffer.AsSpan(_head, _count);

    public void Append(ReadOnlySpan<byte> data)
    {
        if (_head + _count + data.Length > _buffer.Length)
        {
            var target = _count + data.Length > _buffer.Length
                ? new byte[Math.Max(_buffer.Length * 2, _count + data.Length)]
                : _buffer;
            _buffer.AsSpan(_head, _count).CopyTo(target);
            _buffer = target;
            _head = 0;
        }
        data.CopyTo(_buffer.AsSpan(_head + _count));
        _count += data.Length;
    }

    public void Consume(int n)
    {
        _head += n;
        _count -= n;
        if (_count == 0) _head = 0;
    }
}
