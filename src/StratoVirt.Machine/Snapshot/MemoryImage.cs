using StratoVirt.Memory;
using StratoVirt.Sys;

namespace StratoVirt.Machine.Snapshot;

/// <summary>
/// The snapshot's <c>memory</c> file: guest RAM's regions one after another, in address order. Pages that are all
/// zero (never touched, or cleared) are not written, so the file is sparse and a hole reads as zeros.
/// </summary>
public static class MemoryImage
{
    private const int PageSize = 4096;

    /// <summary>The longest single write or read: runs of non-zero pages go out and come back in pieces of at most this.</summary>
    private const int MaxWrite = 8 << 20;

    /// <summary>Writes guest RAM into <paramref name="fd"/> (an empty file) straight from guest memory; returns
    /// the bytes written (the file's size is the RAM's either way: its last page is always written).</summary>
    public static ulong Write(GuestMemory memory, int fd)
    {
        ulong fileOffset = 0, written = 0, total = memory.TotalSize;
        foreach (var region in memory.Regions)
        {
            ulong page = 0, pages = region.Size / PageSize;
            // A page goes out unless it is all zero; the RAM's last page always does, so the file ends where it ends.
            bool Keep(ulong p) => fileOffset + (p + 1) * PageSize == total || !IsZero(memory, region.GuestAddress + p * PageSize);
            while (page < pages)
            {
                if (!Keep(page))
                {
                    page++;
                    continue;
                }
                ulong start = page;
                while (page < pages && (page - start) * PageSize < MaxWrite && Keep(page)) page++;
                ulong length = (page - start) * PageSize;
                WriteAll(fd, memory, region.GuestAddress + start * PageSize, length, (long)(fileOffset + start * PageSize));
                written += length;
            }
            fileOffset += region.Size;
        }
        return written;
    }

    private static bool IsZero(GuestMemory memory, ulong address) =>
        !memory.GetSpan(address, PageSize).ContainsAnyExcept((byte)0);

    private static void WriteAll(int fd, GuestMemory memory, ulong address, ulong length, long offset)
    {
        while (length > 0)
        {
            memory.TryGetIovec(address, length, out var iovec);
            nint n = VectoredIo.Write(fd, [iovec], offset);
            if (n < 0) throw new SysException("write of the memory file", (int)-n);
            if (n == 0) throw new SysException("write of the memory file", Libc.ENOSPC);
            (address, length, offset) = (address + (ulong)n, length - (ulong)n, offset + n);
        }
    }

    /// <summary>The memory file in a snapshot's directory.</summary>
    public static string PathIn(string directory) => Path.Combine(directory, "memory");

    /// <summary>
    /// Reads the memory file into guest RAM (-incoming ...,mapped=false): only its data, straight into guest memory,
    /// so the file's holes (zero pages) are neither read nor touched. The default, a private mapping of the file, is
    /// a RAM backing of its own (<see cref="RamBackingKind.Snapshot"/>).
    /// </summary>
    public static void Load(GuestMemory memory, string path)
    {
        using var file = HostFile.OpenRead(path);
        RamFile.CheckSnapshotSize(path, file.Length, memory.TotalSize);
        long regionStart = 0;
        foreach (var region in memory.Regions)
        {
            long regionEnd = regionStart + (long)region.Size;
            long at = regionStart;
            while (at < regionEnd && file.NextData(at) is (long start, long dataEnd) && start < regionEnd)
            {
                at = Math.Min(dataEnd, regionEnd);
                for (long piece = start; piece < at; piece += MaxWrite)
                {
                    ulong length = (ulong)Math.Min(MaxWrite, at - piece);
                    if (!file.ReadExactly(memory.GetSpan(region.GuestAddress + (ulong)(piece - regionStart), length), piece))
                        throw new SnapshotException($"{path} ended early");
                }
            }
            regionStart = regionEnd;
        }
    }
}
