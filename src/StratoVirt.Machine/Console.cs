using StratoVirt.Devices.Legacy;
using StratoVirt.Sys;

namespace StratoVirt.Machine;

/// <summary>Serial output to a file descriptor (stdout or a -serial file).</summary>
public sealed class FdSerialOutput(int fd) : ISerialOutput
{
    public void Write(ReadOnlySpan<byte> data) => Log.WriteAll(fd, data);
}

/// <summary>Feeds bytes read from stdin into the UART's receive FIFO, holding back what the FIFO cannot take.</summary>
public sealed unsafe class StdinConsole
{
    private readonly Serial16550 _serial;
    private readonly byte[] _buffer = new byte[256];
    private int _start, _end;
    private ulong _token;
    private bool _ended;

    public StdinConsole(Serial16550 serial) => _serial = serial;

    /// <summary>Watches stdin on <paramref name="loop"/> until end of input; stdin that epoll cannot watch (a
    /// regular file, /dev/null) gives no input.</summary>
    public void Attach(EventLoop loop)
    {
        try
        {
            _token = loop.Add(0, Libc.EPOLLIN, _ =>
            {
                if (OnReadable()) return;
                loop.Remove(_token); // end of input: the guest keeps running
                _ended = true;
            });
        }
        catch (SysException)
        {
            _ended = true;
        }
    }

    public bool HasBacklog => !_ended && _start < _end;

    /// <summary>Reads what stdin has; returns false at end of input.</summary>
    public bool OnReadable()
    {
        if (HasBacklog) return true;
        fixed (byte* p = _buffer)
        {
            nint n = Libc.Read(0, p, (nuint)_buffer.Length);
            if (n < 0) return System.Runtime.InteropServices.Marshal.GetLastPInvokeError() is Libc.EINTR or Libc.EAGAIN;
            if (n == 0) return false;
            _start = 0;
            _end = (int)n;
        }
        Flush();
        return true;
    }

    /// <summary>Offers the held-back bytes to the UART again.</summary>
    public void Flush()
    {
        if (!HasBacklog) return;
        _start += _serial.EnqueueInput(_buffer.AsSpan(_start, _end - _start));
    }
}
