namespace StratoVirt.Sys;

/// <summary>A host file opened for loading into guest memory: open, fstat and pread, and its descriptor for
/// mapping it; opened read-write, also pwrite (a flash image's write-through).</summary>
public sealed unsafe class HostFile : IDisposable
{
    private readonly FileDescriptor _fd;

    private HostFile(FileDescriptor fd, long length, bool isDirectory)
    {
        _fd = fd;
        Length = length;
        IsDirectory = isDirectory;
    }

    public long Length { get; }

    public int Fd => _fd.Fd;
    public bool IsDirectory { get; }

    /// <summary>Opens <paramref name="path"/>; a SysException carries the errno (ENOENT, EACCES, ...).</summary>
    public static HostFile OpenRead(string path) => Open(path, Libc.O_RDONLY);

    /// <summary>Opens <paramref name="path"/> for reading and writing; a SysException carries the errno.</summary>
    public static HostFile OpenReadWrite(string path) => Open(path, Libc.O_RDWR);

    private static HostFile Open(string path, int flags)
    {
        var fd = FileDescriptor.Open(path, flags);
        Stat st;
        // st is a local of this frame that fstat fills.
        if (Libc.FStat(fd.Fd, &st) != 0)
        {
            var e = SysException.Last($"fstat {path}");
            fd.Dispose();
            throw e;
        }
        return new HostFile(fd, st.Size, (st.Mode & 0xF000) == 0x4000);
    }

    /// <summary>Reads at <paramref name="offset"/>; returns the bytes read, 0 at end of file. preadv2, the call the
    /// main loop's seccomp list already has for disks, so that a q35 reset can load the kernel and initrd again.</summary>
    public int Read(Span<byte> buffer, long offset)
    {
        // The span is pinned for the call and the one iovec names exactly it.
        fixed (byte* p = buffer)
        {
            nint n = VectoredIo.Read(_fd.Fd, [new Iovec { Base = (nint)p, Length = (nuint)buffer.Length }], offset);
            if (n < 0) throw new SysException("preadv2", (int)-n);
            return (int)n;
        }
    }

    /// <summary>Fills <paramref name="buffer"/> from <paramref name="offset"/>; false if the file ends first.</summary>
    public bool ReadExactly(Span<byte> buffer, long offset) => ReadUpTo(buffer, offset) == buffer.Length;

    /// <summary>Reads from <paramref name="offset"/> until <paramref name="buffer"/> is full or the file ends
    /// (/proc files report no size); returns the bytes read.</summary>
    public int ReadUpTo(Span<byte> buffer, long offset)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = Read(buffer[total..], offset + total);
            if (n == 0) break;
            total += n;
        }
        return total;
    }

    /// <summary>The start of the data at or after <paramref name="offset"/> and of the hole after it (SEEK_DATA,
    /// SEEK_HOLE), or null when only holes follow. A file system that does not track holes reports the whole file
    /// as data.</summary>
    public (long Start, long End)? NextData(long offset)
    {
        long start = Libc.LSeek(_fd.Fd, offset, Libc.SEEK_DATA);
        if (start < 0)
        {
            var e = SysException.Last("lseek SEEK_DATA");
            if (e.Errno == Libc.ENXIO) return null;
            throw e;
        }
        long end = Libc.LSeek(_fd.Fd, start, Libc.SEEK_HOLE);
        if (end < 0) throw SysException.Last("lseek SEEK_HOLE");
        return (start, end);
    }

    /// <summary>Writes all of <paramref name="data"/> at <paramref name="offset"/>: 0, or a negative errno.</summary>
    public int WriteAll(ReadOnlySpan<byte> data, long offset) => VectoredIo.WriteAll(_fd.Fd, data, offset);

    public void Dispose() => _fd.Dispose();
}
