using StratoVirt.Devices.Options;
using StratoVirt.Sys;

namespace StratoVirt;

/// <summary>The -pidfile: the daemon's pid in decimal (no newline, as upstream writes it), mode 0600, created
/// before the VM is built and removed when the process ends. An existing file is an error, never overwritten.</summary>
public sealed class PidFile : IDisposable
{
    private readonly string _path;
    private bool _removed;

    private PidFile(string path) => _path = path;

    public static PidFile Create(string path, int pid)
    {
        int fd = Libc.Open(path, Libc.O_WRONLY | Libc.O_CREAT | Libc.O_EXCL | Libc.O_CLOEXEC, 0x180 /* 0600 */);
        if (fd < 0)
        {
            var e = SysException.Last($"create pid file {path}");
            throw e.Errno == Libc.EEXIST
                ? new UsageException($"option -pidfile: {path} already exists (another VM's, or left behind)")
                : e;
        }
        var file = new PidFile(path);
        try
        {
            using var handle = new FileDescriptor(fd);
            Log.WriteRaw(handle.Fd, pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public string Path => _path;

    public void Dispose()
    {
        if (_removed) return;
        _removed = true;
        Libc.Unlink(_path);
    }
}
