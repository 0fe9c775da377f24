using System.Runtime.InteropServices;
using StratoVirt.Sys;

namespace StratoVirt.Memory;

/// <summary>
/// The file behind file-backed guest RAM: a memfd, a named file, or an unlinked file made in a folder (on hugetlbfs:
/// huge pages). The RAM regions are consecutive ranges of it, from offset 0. A memfd is sealed against shrinking and
/// growing, so a process it is shared with cannot cut the VMM's mappings short (which would raise SIGBUS in the
/// VMM on the next access).
/// </summary>
public sealed unsafe class RamFile : IDisposable
{
    private const int NameAttempts = 100;
    private readonly FileDescriptor _fd;

    private RamFile(FileDescriptor fd, string description, ulong pageSize, bool hugePages)
    {
        _fd = fd;
        Description = description;
        PageSize = pageSize;
        HugePages = hugePages;
    }

    public int Fd => _fd.Fd;

    /// <summary>"memfd", or the path given, for messages.</summary>
    public string Description { get; }

    /// <summary>The size of the file's pages: the host's page size, or the huge page size on hugetlbfs.</summary>
    public ulong PageSize { get; }

    public bool HugePages { get; }

    /// <summary>Creates or opens the file for <paramref name="size"/> bytes of RAM as <paramref name="backing"/>
    /// says (a memfd or a file); on failure nothing is left (a file this call created is removed).</summary>
    public static RamFile Create(RamBacking backing, ulong size) => backing.Kind switch
    {
        RamBackingKind.Memfd => CreateMemfd(size),
        RamBackingKind.File => OpenFile(backing.Path ?? throw new ArgumentException("a file backing needs a path"), size),
        RamBackingKind.Snapshot => OpenSnapshot(backing.Path ?? throw new ArgumentException("a snapshot backing needs a path"), size),
        _ => throw new ArgumentException($"{backing.Kind} guest RAM has no file"),
    };

    private static RamFile CreateMemfd(ulong size)
    {
        int fd = Libc.MemfdCreate("stratovirt-ram", Libc.MFD_CLOEXEC | Libc.MFD_ALLOW_SEALING);
        if (fd < 0) throw SysException.Last("memfd_create for guest RAM");
        var file = new RamFile(new FileDescriptor(fd), "memfd", (ulong)Environment.SystemPageSize, hugePages: false);
        try
        {
            file.Resize(size);
            if (Libc.FcntlInt(fd, Libc.F_ADD_SEALS, Libc.F_SEAL_SHRINK | Libc.F_SEAL_GROW) != 0)
                throw SysException.Last("sealing the guest RAM memfd");
            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>A folder gets an unlinked file of its own (so nothing is left whatever happens); a path that is not
    /// a folder is the file itself, created when missing and left in place afterwards.</summary>
    private static RamFile OpenFile(string path, ulong size)
    {
        bool folder = Directory.Exists(path);
        var (fd, created) = folder ? CreateUnlinked(path) : OpenNamed(path);
        RamFile? file = null;
        try
        {
            var (pageSize, huge) = PageSizeOf(fd.Fd, path);
            file = new RamFile(fd, path, pageSize, huge);
            if (size % pageSize != 0)
                throw new RamBackingException(
                    $"{path}: guest RAM of {size >> 10} KiB is not a multiple of the {pageSize >> 10} KiB huge page size");
            if (FileStatus.Get(fd.Fd, out var status) != 0) throw SysException.Last($"fstat {path}");
            if ((ulong)status.Size < size) file.Resize(size);
            return file;
        }
        catch
        {
            if (file is not null) file.Dispose();
            else fd.Dispose();
            if (created) Libc.Unlink(path);
            throw;
        }
    }

    /// <summary>A snapshot's memory file, read-only: its private mappings take the guest's writes.</summary>
    private static RamFile OpenSnapshot(string path, ulong size)
    {
        var fd = FileDescriptor.Open(path, Libc.O_RDONLY);
        try
        {
            if (FileStatus.Get(fd.Fd, out var status) != 0) throw SysException.Last($"fstat {path}");
            CheckSnapshotSize(path, status.Size, size);
            return new RamFile(fd, path, (ulong)Environment.SystemPageSize, hugePages: false);
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    /// <summary>A snapshot's memory file holds the guest's RAM, no more and no less.</summary>
    public static void CheckSnapshotSize(string path, long length, ulong size)
    {
        if ((ulong)length != size)
            throw new RamBackingException($"{path} holds {length} bytes; the guest's memory is {size} bytes");
    }

    private static (FileDescriptor Fd, bool Created) CreateUnlinked(string folder)
    {
        for (int attempt = 0; attempt < NameAttempts; attempt++)
        {
            string name = Path.Combine(folder, $"stratovirt-ram.{Environment.ProcessId}.{Random.Shared.Next():x8}");
            int fd = Libc.Open(name, Libc.O_RDWR | Libc.O_CREAT | Libc.O_EXCL | Libc.O_CLOEXEC, 0x180);
            if (fd < 0)
            {
                if (Marshal.GetLastPInvokeError() == Libc.EEXIST) continue;
                throw SysException.Last($"creating a guest RAM file in {folder}");
            }
            Libc.Unlink(name);
            return (new FileDescriptor(fd), false);
        }
        throw new RamBackingException($"{folder}: no free name for a guest RAM file after {NameAttempts} attempts");
    }

    private static (FileDescriptor Fd, bool Created) OpenNamed(string path)
    {
        int fd = Libc.Open(path, Libc.O_RDWR | Libc.O_CREAT | Libc.O_EXCL | Libc.O_CLOEXEC, 0x180);
        if (fd >= 0) return (new FileDescriptor(fd), true);
        if (Marshal.GetLastPInvokeError() != Libc.EEXIST) throw SysException.Last($"creating the guest RAM file {path}");
        return (FileDescriptor.Open(path, Libc.O_RDWR), false);
    }

    /// <summary>hugetlbfs's block size is its huge page size; any other file system has the host's pages.</summary>
    private static (ulong PageSize, bool HugePages) PageSizeOf(int fd, string path)
    {
        StatFs fs;
        // fs is a local of this frame that fstatfs fills.
        if (Libc.FStatFs(fd, &fs) != 0) throw SysException.Last($"fstatfs {path}");
        return fs.Type == Libc.HUGETLBFS_MAGIC ? ((ulong)fs.BlockSize, true) : ((ulong)Environment.SystemPageSize, false);
    }

    private void Resize(ulong size)
    {
        if (Libc.Ftruncate(Fd, (long)size) != 0) throw SysException.Last($"growing the guest RAM file ({Description}) to {size >> 20} MiB");
    }

    /// <summary>Maps [offset, offset+size) of the file. Huge pages are reserved by the mmap itself (no
    /// MAP_NORESERVE), so a host without enough free ones refuses here, with a clear error, rather than with SIGBUS
    /// when the guest touches a page.</summary>
    public void* Map(ulong offset, ulong size, bool shared)
    {
        int flags = (shared ? Libc.MAP_SHARED : Libc.MAP_PRIVATE) | (HugePages ? 0 : Libc.MAP_NORESERVE);
        void* p = Libc.Mmap(null, (nuint)size, Libc.PROT_READ | Libc.PROT_WRITE, flags, Fd, (long)offset);
        if (p != (void*)-1) return p;
        int errno = Marshal.GetLastPInvokeError();
        if (HugePages && errno == Libc.ENOMEM) throw new RamBackingException(HugePageShortage(size));
        throw new SysException($"mmap of {size >> 20} MiB guest RAM from {Description}", errno);
    }

    private string HugePageShortage(ulong size)
    {
        ulong needed = size / PageSize;
        string pool = $"/sys/kernel/mm/hugepages/hugepages-{PageSize >> 10}kB/";
        string available = ReadCount(pool + "free_hugepages") is { } free && ReadCount(pool + "resv_hugepages") is { } reserved
            ? $"{(free > reserved ? free - reserved : 0)} free"
            : "fewer free";
        return $"{Description}: not enough free {PageSize >> 10} kB huge pages for {size >> 20} MiB of guest RAM: " +
               $"{needed} needed, {available} (raise /proc/sys/vm/nr_hugepages)";

        static ulong? ReadCount(string file)
        {
            try { return ulong.TryParse(File.ReadAllText(file).Trim(), out ulong n) ? n : null; }
            catch (IOException) { return null; }
            catch (UnauthorizedAccessException) { return null; }
        }
    }

    /// <summary>Frees the file's blocks behind [offset, offset+length) (FALLOC_FL_PUNCH_HOLE): every mapping of that
    /// range, shared ones in other processes too, reads zeros afterwards. Returns 0 or the errno.</summary>
    public int PunchHole(ulong offset, ulong length) =>
        Libc.Fallocate(Fd, Libc.FALLOC_FL_PUNCH_HOLE | Libc.FALLOC_FL_KEEP_SIZE, (long)offset, (long)length) == 0
            ? 0
            : Marshal.GetLastPInvokeError();

    public void Dispose() => _fd.Dispose();
}
