namespace StratoVirt.Sys;

/// <summary>Puts a terminal into raw mode for a guest console and restores it on Dispose.</summary>
public sealed unsafe class RawTerminal : IDisposable
{
    private const uint ICRNL = 0x100, IXON = 0x400, BRKINT = 0x2, INPCK = 0x10, ISTRIP = 0x20;
    private const uint ICANON = 0x2, ECHO = 0x8, ISIG = 0x1, IEXTEN = 0x8000;
    private const int VMIN = 6, VTIME = 5, TCSANOW = 0;

    private readonly int _fd;
    private Termios _saved;
    private bool _active;

    private RawTerminal(int fd, Termios saved)
    {
        _fd = fd;
        _saved = saved;
        _active = true;
    }

    /// <summary>Switches <paramref name="fd"/> to raw mode if it is a terminal; null otherwise.</summary>
    public static RawTerminal? TryEnter(int fd)
    {
        if (Libc.IsATty(fd) != 1) return null;
        Termios t;
        // t is a local of this frame that tcgetattr fills and tcsetattr reads.
        if (Libc.TcGetAttr(fd, &t) != 0) return null;
        var saved = t;
        // Keystrokes such as Ctrl-C go to the guest, as with QEMU's and StratoVirt's stdio console.
        t.IFlag &= ~(ICRNL | IXON | BRKINT | INPCK | ISTRIP);
        t.LFlag &= ~(ICANON | ECHO | ISIG | IEXTEN);
        t.Cc[VMIN] = 1;
        t.Cc[VTIME] = 0;
        if (Libc.TcSetAttr(fd, TCSANOW, &t) != 0) return null;
        return new RawTerminal(fd, saved);
    }

    public void Dispose()
    {
        if (!_active) return;
        _active = false;
        // _saved is pinned for the call, which only reads it.
        fixed (Termios* p = &_saved) Libc.TcSetAttr(_fd, TCSANOW, p);
    }
}
