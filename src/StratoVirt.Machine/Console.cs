using StratoVirt.Devices.Legacy;
using StratoVirt.Sys;

namespace StratoVirt.Machine;

/// <summary>Serial output to a file descriptor (stdout or a -serial file).</summary>
public sealed class FdSerialOutput(int fd) : ISerialOutput
{
    public void Write(ReadOnlySpan<byte> data) => Log.WriteAll(fd, data);
}

/// <summary>Feeds bytes read from stdin into the UART's receive FIFO, holding back what the FIFO cannot take.</summary>
public sealed class StdinConsole
{
    private readonly Serial16550 _serial;
    private readonly byte[] _buffer = new byte[256];
    private int _start, _end;

    public StdinConsole(Serial16550 serial) => _serial = serial;

    public bool HasBacklog => _start < _end;

    /// <summary>Reads what stdin has; returns false at end of input.</summary>
    public bool OnReadable()
    {
        if (HasBacklog) return true;
        int n = FileIo.Read(0, _buffer);
        if (n < 0) return n == -Libc.EAGAIN;
        if (n == 0) return false;
        _start = 0;
        _end = n;
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
