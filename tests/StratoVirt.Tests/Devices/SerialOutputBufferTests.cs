using StratoVirt.Devices.Legacy;

namespace StratoVirt.Tests.Devices;

[Trait("Level", "Unit")]
public sealed class SerialOutputBufferTests
{
    /// <summary>Records each sink call separately, and which thread made it.</summary>
    private sealed class BatchSink : ISerialOutput
    {
        public readonly List<byte[]> Calls = [];
        public readonly List<int> Threads = [];

        public void Write(ReadOnlySpan<byte> data)
        {
            lock (Calls)
            {
                Calls.Add(data.ToArray());
                Threads.Add(Environment.CurrentManagedThreadId);
            }
        }

        public byte[] All
        {
            get
            {
                lock (Calls) return [.. Calls.SelectMany(c => c)];
            }
        }
    }

    private readonly BatchSink _sink = new();
    private long _now = 1000;
    private int _wakes;
    private readonly SerialOutputBuffer _output;

    public SerialOutputBufferTests() => _output = new SerialOutputBuffer(_sink, () => _now);

    private void Transmit(string text)
    {
        foreach (char c in text) _output.Write([(byte)c]);
    }

    [Fact]
    public void BeforeStartEveryByteGoesStraightToTheSink()
    {
        Transmit("ab");
        Assert.Equal(2, _sink.Calls.Count);
        Assert.Equal(-1, _output.TimeoutMs);
    }

    [Fact]
    public void ABatchWakesTheLoopOnceAndReachesTheSinkInOneCallAtItsDeadline()
    {
        _output.Start(() => _wakes++);
        Transmit("Linux version");
        Assert.Equal(1, _wakes);
        Assert.Empty(_sink.Calls);
        Assert.Equal(SerialOutputBuffer.FlushDelayMs, _output.TimeoutMs);

        _now += SerialOutputBuffer.FlushDelayMs - 1;
        Assert.Equal(1, _output.TimeoutMs);
        _output.FlushIfDue();
        Assert.Empty(_sink.Calls);

        _now += 1;
        Assert.Equal(0, _output.TimeoutMs);
        _output.FlushIfDue();
        Assert.Equal("Linux version"u8.ToArray(), Assert.Single(_sink.Calls));
        Assert.Equal(-1, _output.TimeoutMs);

        // The next byte starts a new batch with its own deadline and wake-up.
        Transmit("!");
        Assert.Equal(2, _wakes);
        Assert.Equal(SerialOutputBuffer.FlushDelayMs, _output.TimeoutMs);
    }

    [Fact]
    public void FlushEmptiesTheBufferBeforeTheDeadlineAndAnEmptyFlushWritesNothing()
    {
        _output.Start(() => _wakes++);
        Transmit("panic");
        _output.Flush();
        _output.Flush();
        Assert.Equal("panic"u8.ToArray(), Assert.Single(_sink.Calls));
    }

    [Fact]
    public void ATransmitThatDoesNotFitFollowsTheBufferedBytesFromTheTransmittingThread()
    {
        _output.Start(() => _wakes++);
        var fill = new byte[SerialOutputBuffer.Capacity - 1];
        Array.Fill(fill, (byte)'x');
        _output.Write(fill);
        _output.Write("yz"u8);

        Assert.Equal(2, _sink.Calls.Count);
        Assert.Equal(fill, _sink.Calls[0]);
        Assert.Equal("yz"u8.ToArray(), _sink.Calls[1]);
        Assert.All(_sink.Threads, t => Assert.Equal(Environment.CurrentManagedThreadId, t));
        Assert.Equal(-1, _output.TimeoutMs);
        Assert.Equal(1, _wakes);
    }

    [Fact]
    public void BytesKeepTheirOrderWhileAnotherThreadFlushes()
    {
        _output.Start(() => { });
        var expected = new byte[200_000];
        for (int i = 0; i < expected.Length; i++) expected[i] = (byte)(i * 7 + i / 251);
        var writer = new Thread(() =>
        {
            // Mostly single bytes, as a console writes, with a few that overflow the buffer.
            for (int i = 0; i < expected.Length;)
            {
                int n = i % 9973 == 0 ? Math.Min(SerialOutputBuffer.Capacity, expected.Length - i) : 1;
                _output.Write(expected.AsSpan(i, n));
                i += n;
            }
        });
        writer.Start();
        while (writer.IsAlive) _output.Flush();
        _output.Flush();

        Assert.Equal(expected, _sink.All);
    }
}
