using StratoVirt.Qmp;
using StratoVirt.Tests.Unit;

namespace StratoVirt.Fuzz;

/// <summary>
/// QMP frames and arguments on the server's request path without sockets: the input, cut into reads of the size its
/// first byte gives, goes through the connection's framer, and every text it frames through the dispatcher (every
/// command, hotplug included, against a machine double), as the server does for one client. Every request must get
/// a reply; nothing may escape.
/// </summary>
public sealed class QmpRequestTarget : IFuzzTarget
{
    private readonly RecordingMachine _machine = new();
    private readonly List<byte[]> _messages = [];

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty) return;
        int read = 1 + input[0] % 64;
        input = input[1..];
        var dispatcher = new QmpDispatcher(_machine, _machine, new QmpFdStore());
        var session = new QmpSession(new LeakBucket(0, TimeProvider.System), canPassFds: true);
        var framer = new QmpFramer(QmpServer.MaxRequestBytes);
        _machine.Calls.Clear();
        while (!input.IsEmpty)
        {
            var chunk = input[..Math.Min(read, input.Length)];
            input = input[chunk.Length..];
            _messages.Clear();
            framer.Push(chunk, _messages);
            foreach (var message in _messages)
            {
                byte[] reply = dispatcher.Handle(message, session, out var after);
                if (reply.Length == 0 || reply[^1] != (byte)'\n')
                    throw new InvalidOperationException("a QMP reply is not one newline-terminated line");
                after?.Invoke();
            }
        }
    }
}
