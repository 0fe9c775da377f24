using StratoVirt.Sys;

namespace StratoVirt.Devices.Chardev;

/// <summary>
/// -chardev file,id=X,path=P: guest output goes to a host file, created if missing and truncated (or appended to);
/// there is no input. Regular files never refuse a write, so output is only lost if the file system fails.
/// </summary>
public sealed class FileChardev : Chardev
{
    private readonly FileDescriptor _fd;

    /// <summary>Opens <paramref name="path"/> for output (mode 0644 when created).</summary>
    /// <exception cref="ChardevException">The file cannot be created or opened for writing.</exception>
    public FileChardev(string id, string path, bool append = false) : base(id)
    {
        Path = path;
        int flags = Libc.O_WRONLY | Libc.O_CREAT | Libc.O_NONBLOCK | (append ? Libc.O_APPEND : Libc.O_TRUNC);
        try { _fd = FileDescriptor.Open(path, flags, 420 /* 0644 */); }
        catch (SysException e) { throw new ChardevException($"chardev '{id}': cannot create output file: {e.Message}"); }
    }

    public string Path { get; }

    public override int InputFd => -1;

    public override int Read(Span<byte> buffer) => 0;

    public override void Write(ReadOnlySpan<byte> data)
    {
        lock (Sync) WriteFd(_fd.Fd, data);
    }

    protected override void Close() => _fd.Dispose();
}
