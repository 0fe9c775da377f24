using System.Runtime.InteropServices;
using StratoVirt.Sys;

namespace StratoVirt.Virtio.Devices.Block;

/// <summary>
/// A raw disk image (a regular file or a block device) behind a -drive: positioned vectored I/O, flush,
/// discard and write-zeroes, all synchronous. Failures of guest I/O come back as errno values, not exceptions.
/// </summary>
/// <remarks>
/// <para>With direct I/O the image is opened twice: an O_DIRECT descriptor for requests whose file offset, buffer
/// addresses and lengths are all sector-aligned, and a buffered one for the rest. Guest buffers need not be
/// 512-byte aligned (a guest's own O_DIRECT, or a driver splitting a request at odd sizes), and O_DIRECT refuses
/// those with EINVAL; taking them through the page cache instead keeps them correct, and Linux keeps both paths
/// coherent (a direct read writes back dirty cached pages of its range first, a direct write drops them).
/// A device that refuses 512-byte-aligned direct I/O as well (4 KiB logical sectors) raises the alignment to
/// 4 KiB; one that refuses that too stops using O_DIRECT. A filesystem without O_DIRECT (tmpfs) uses buffered I/O
/// throughout, with a warning, where upstream refuses to start.</para>
/// <para>An open-file-description lock on the bytes upstream StratoVirt locks (101, 102 and 202, after QEMU's
/// scheme of one byte per permission) keeps two VMs off one image: exclusive for read-write, shared for read-only. It
/// conflicts with the record locks upstream StratoVirt and QEMU take, and between two drives of one process; it
/// goes away when the image is closed, or with the process.</para>
/// </remarks>
public sealed class RawImage : IDisposable
{
    private const int EIO = 5;
    private const int ZeroChunk = 64 * 1024, ZeroIovecs = 16, PageSize = 4096;

    private readonly FileDescriptor _fd;
    private FileDescriptor? _directFd;
    private int _directAlign = 512;
    private byte[]? _zeroBuffer;
    private nint _zeros;

    private RawImage(string path, bool readOnly, FileDescriptor fd, FileDescriptor? directFd, ulong size)
    {
        Path = path;
        ReadOnly = readOnly;
        _fd = fd;
        _directFd = directFd;
        Size = size;
    }

    public string Path { get; }
    public bool ReadOnly { get; }

    /// <summary>Bytes in the image when it was opened.</summary>
    public ulong Size { get; }

    /// <summary>Whether aligned requests currently go through O_DIRECT.</summary>
    public bool Direct => _directFd is not null;

    /// <summary>
    /// Opens and locks <paramref name="path"/>. Throws a SysException naming the path when the file is missing,
    /// unreadable, a directory, not writable for a read-write drive, or locked by another drive or VM.
    /// </summary>
    public static RawImage Open(string path, bool readOnly, bool direct)
    {
        int flags = readOnly ? Libc.O_RDONLY : Libc.O_RDWR;
        string how = readOnly ? "read-only" : "read-write";
        int fd = Libc.Open(path, flags | Libc.O_CLOEXEC, 0);
        if (fd < 0) throw SysException.Last($"cannot open drive image {path} {how}");
        var file = new FileDescriptor(fd);
        FileDescriptor? directFd = null;
        try
        {
            int errno = FileStatus.Get(fd, out var st);
            if (errno != 0) throw new SysException($"fstat drive image {path}", errno);
            if (st.IsDirectory) throw new SysException($"drive image {path}", Libc.EISDIR);
            if (!st.IsRegularFile && !st.IsBlockDevice)
                throw new SysException($"drive image {path} is neither a regular file nor a block device", Libc.EINVAL);
            ulong size = (ulong)st.Size;
            if (st.IsBlockDevice && (errno = BlockDevice.GetSize(fd, out size)) != 0)
                throw new SysException($"size of drive image {path}", errno);
            ByteRangeLock.LockImage(fd, $"drive image {path}", readOnly);
            if (direct) directFd = OpenDirect(path, flags, st);
            return new RawImage(path, readOnly, file, directFd, size);
        }
        catch
        {
            directFd?.Dispose();
            file.Dispose();
            throw;
        }
    }

    /// <summary>The O_DIRECT descriptor, or null where the filesystem has no direct I/O.</summary>
    private static FileDescriptor? OpenDirect(string path, int flags, FileStatus first)
    {
        int fd = Libc.Open(path, flags | Libc.O_DIRECT | Libc.O_CLOEXEC, 0);
        if (fd < 0)
        {
            var e = SysException.Last($"cannot open drive image {path} with O_DIRECT");
            if (e.Errno != Libc.EINVAL) throw e;
            Log.Warn($"drive image {path}: the filesystem has no O_DIRECT; using the page cache");
            return null;
        }
        var file = new FileDescriptor(fd);
        if (FileStatus.Get(fd, out var st) != 0 || st.Device != first.Device || st.Inode != first.Inode)
        {
            file.Dispose();
            throw new SysException($"drive image {path} was replaced while it was being opened", Libc.EAGAIN);
        }
        return file;
    }

    /// <summary>Reads into <paramref name="iov"/> (consumed as it goes) from <paramref name="offset"/>; returns 0 or
    /// an errno, and in <paramref name="done"/> the bytes read, from the first buffer on.</summary>
    public int Read(Span<Iovec> iov, long offset, out ulong done) => Transfer(false, iov, offset, out done);

    /// <summary>Writes <paramref name="iov"/> (consumed as it goes) at <paramref name="offset"/>; 0 or an
    /// errno.</summary>
    public int Write(Span<Iovec> iov, long offset, out ulong done) => Transfer(true, iov, offset, out done);

    private int Transfer(bool write, Span<Iovec> iov, long offset, out ulong done)
    {
        done = 0;
        while (true)
        {
            while (!iov.IsEmpty && iov[0].Length == 0) iov = iov[1..];
            if (iov.IsEmpty) return 0;
            bool direct = _directFd is not null && Aligned(iov, offset);
            int fd = direct ? _directFd!.Fd : _fd.Fd;
            // The iovecs point into guest RAM that the caller checked, or into this image's zero buffer.
            nint n = write ? VectoredIo.Write(fd, iov, offset) : VectoredIo.Read(fd, iov, offset);
            if (n < 0)
            {
                if (n == -Libc.EINVAL && direct)
                {
                    DirectRefused();
                    continue;
                }
                return (int)-n;
            }
            if (n == 0) return EIO; // the image ended before the request did: it shrank under us
            done += (ulong)n;
            offset += n;
            for (nuint left = (nuint)n; left > 0;)
            {
                ref var first = ref iov[0];
                nuint take = Math.Min(left, first.Length);
                first.Base += (nint)take;
                first.Length -= take;
                left -= take;
                if (first.Length == 0) iov = iov[1..];
            }
        }
    }

    private bool Aligned(ReadOnlySpan<Iovec> iov, long offset)
    {
        ulong mask = (ulong)_directAlign - 1, bits = (ulong)offset;
        foreach (var v in iov) bits |= (ulong)v.Base | v.Length;
        return (bits & mask) == 0;
    }

    /// <summary>O_DIRECT refused a request aligned to what we assumed: assume 4 KiB, then give direct I/O up.</summary>
    private void DirectRefused()
    {
        if (_directAlign < PageSize)
        {
            _directAlign = PageSize;
            return;
        }
        Log.Warn($"drive image {Path}: O_DIRECT refuses page-aligned I/O; using the page cache");
        _directFd!.Dispose();
        _directFd = null;
    }

    /// <summary>fdatasync: everything written so far reaches stable storage. 0 or an errno.</summary>
    public int Flush()
    {
        while (Libc.FDataSync(_fd.Fd) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno != Libc.EINTR) return errno;
        }
        return 0;
    }

    /// <summary>Deallocates a range (PUNCH_HOLE); a filesystem that cannot is not an error, discard being a
    /// hint.</summary>
    public int Discard(long offset, long length)
    {
        int errno = Fallocate(Libc.FALLOC_FL_PUNCH_HOLE | Libc.FALLOC_FL_KEEP_SIZE, offset, length);
        return Unsupported(errno) ? 0 : errno;
    }

    /// <summary>Makes a range read as zeros: a hole when <paramref name="unmap"/> allows one, else ZERO_RANGE, and
    /// written zeros where the filesystem supports neither.</summary>
    public int WriteZeroes(long offset, long length, bool unmap)
    {
        int errno = unmap
            ? Fallocate(Libc.FALLOC_FL_PUNCH_HOLE | Libc.FALLOC_FL_KEEP_SIZE, offset, length)
            : Libc.EOPNOTSUPP;
        if (Unsupported(errno)) errno = Fallocate(Libc.FALLOC_FL_ZERO_RANGE | Libc.FALLOC_FL_KEEP_SIZE, offset, length);
        return Unsupported(errno) ? WriteZeroBuffer(offset, length) : errno;
    }

    private int Fallocate(int mode, long offset, long length)
    {
        if (length == 0) return 0;
        while (Libc.Fallocate(_fd.Fd, mode, offset, length) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno != Libc.EINTR) return errno;
        }
        return 0;
    }

    // EINVAL too: a block device refuses ranges that are not aligned to its own sectors.
    private static bool Unsupported(int errno) => errno is Libc.EOPNOTSUPP or Libc.ENOSYS or Libc.EINVAL;

    private int WriteZeroBuffer(long offset, long length)
    {
        if (_zeroBuffer is null)
        {
            // Once per image, on the first write-zeroes the filesystem cannot do itself: a pinned array with a
            // page-aligned chunk inside it, for O_DIRECT.
            _zeroBuffer = GC.AllocateArray<byte>(ZeroChunk + PageSize, pinned: true);
            nint start = Marshal.UnsafeAddrOfPinnedArrayElement(_zeroBuffer, 0);
            _zeros = (start + PageSize - 1) & ~(nint)(PageSize - 1);
        }
        Span<Iovec> iov = stackalloc Iovec[ZeroIovecs];
        while (length > 0)
        {
            int count = 0;
            long batch = 0;
            while (count < ZeroIovecs && batch < length)
            {
                long n = Math.Min(ZeroChunk, length - batch);
                iov[count++] = new Iovec { Base = _zeros, Length = (nuint)n };
                batch += n;
            }
            int errno = Write(iov[..count], offset, out _);
            if (errno != 0) return errno;
            offset += batch;
            length -= batch;
        }
        return 0;
    }

    public void Dispose()
    {
        _directFd?.Dispose();
        _fd.Dispose();
    }
}
