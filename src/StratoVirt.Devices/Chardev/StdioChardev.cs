using StratoVirt.Sys;

namespace StratoVirt.Devices.Chardev;

/// <summary>
/// -chardev stdio,id=X: guest output to the VMM's stdout, input from its stdin. A terminal on stdin is put into raw
/// mode (keystrokes such as Ctrl-C go to the guest) until <see cref="Chardev.Dispose"/>, which the machine must call
/// on every exit path. stdin and stdout are shared with the parent, so they stay blocking: the chardev polls before
/// each read and each small write instead of setting O_NONBLOCK on them. Input ends at end of file, or at once when
/// stdin cannot be watched (a regular file or /dev/null).
/// </summary>
public sealed class StdioChardev : Chardev
{
    private readonly int _in, _out;
    private readonly RawTerminal? _terminal;
    private bool _inputOpen = true;

    /// <summary>Uses fds 0 and 1; <paramref name="rawTerminal"/> switches a terminal on stdin to raw mode.</summary>
    public StdioChardev(string id, bool rawTerminal = true) : this(id, 0, 1, rawTerminal) { }

    /// <summary>For tests: other fds than 0 and 1 (not owned, not closed).</summary>
    internal StdioChardev(string id, int inputFd, int outputFd, bool rawTerminal) : base(id)
    {
        _in = inputFd;
        _out = outputFd;
        if (rawTerminal) _terminal = RawTerminal.TryEnter(inputFd);
    }

    /// <summary>Whether stdin is a terminal this chardev put into raw mode.</summary>
    public bool RawMode => _terminal is not null;

    public override int InputFd => _inputOpen ? _in : -1;

    public override int Read(Span<byte> buffer)
    {
        lock (Sync)
        {
            if (!_inputOpen) return 0;
            int n = ReadFd(_in, buffer, blockingFd: true, out int errno);
            if (n > 0) return n;
            if (n == 0 || errno != 0)
            {
                _inputOpen = false; // end of input (or a broken stdin): the guest keeps running without it
                UpdateInputWatch();
            }
            return 0;
        }
    }

    public override void Write(ReadOnlySpan<byte> data)
    {
        lock (Sync) WriteFd(_out, data, blockingFd: true);
    }

    protected override void OnInputUnwatchable() => _inputOpen = false;

    protected override void Close() => _terminal?.Dispose();
}
