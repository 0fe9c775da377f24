using StratoVirt.Sys;

namespace StratoVirt.Devices.Chardev;

/// <summary>
/// -chardev pty,id=X: a new pseudo-terminal; the VMM keeps the master side (raw mode, non-blocking) and a user
/// attaches to <see cref="PtyPath"/> (the machine prints it: "char device redirected to /dev/pts/N (label X)").
/// </summary>
/// <remarks>
/// The chardev holds the slave side open itself, so the master never reports a hang-up while no user is attached
/// (which would wake the event loop forever). The cost: output written while nobody is attached waits in the
/// terminal's buffer (a few KiB) for the next user; past that, writes hit the stall policy and are dropped.
/// </remarks>
public sealed class PtyChardev : Chardev
{
    private readonly FileDescriptor _master;
    private readonly FileDescriptor _slave;

    /// <exception cref="ChardevException">No pseudo-terminal could be allocated.</exception>
    public PtyChardev(string id) : base(id)
    {
        try { (_master, PtyPath) = PseudoTerminal.Open(); }
        catch (SysException e) { throw Fail(id, e); }
        try { _slave = FileDescriptor.Open(PtyPath, Libc.O_RDWR | Libc.O_NOCTTY | Libc.O_NONBLOCK); }
        catch (SysException e)
        {
            _master.Dispose();
            throw Fail(id, e);
        }
    }

    private static ChardevException Fail(string id, SysException e) =>
        new($"chardev '{id}': cannot set up a pseudo-terminal: {e.Message}");

    /// <summary>The slave device a user opens, e.g. /dev/pts/3.</summary>
    public string PtyPath { get; }

    public override int InputFd => _master.Fd;

    public override int Read(Span<byte> buffer)
    {
        lock (Sync) return Math.Max(0, ReadFd(_master.Fd, buffer, blockingFd: false, out _));
    }

    public override void Write(ReadOnlySpan<byte> data)
    {
        lock (Sync) WriteFd(_master.Fd, data);
    }

    protected override void Close()
    {
        _slave.Dispose();
        _master.Dispose();
    }
}
