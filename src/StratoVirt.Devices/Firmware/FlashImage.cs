using StratoVirt.Memory;
using StratoVirt.Sys;

namespace StratoVirt.Devices.Firmware;

/// <summary>A firmware file that cannot be used as a flash unit; the message names the file and the problem.</summary>
public sealed class FlashException(string message) : VmmException(message);

/// <summary>
/// The contents of a flash unit (-drive if=pflash): the file's bytes in a page-aligned host mapping at the
/// guest address the unit decodes (so KVM can map it as a read-only memory slot), kept open to write programmed
/// and erased ranges back at once. The file's size must be a whole number of erase blocks; it is locked as a
/// drive image is (shared when read-only, else exclusive), so two VMs cannot share one variables file.
/// </summary>
public sealed class FlashImage : IDisposable
{
    /// <summary>The erase block of the PC's flash (QEMU's pc_sysfw sector size).</summary>
    public const uint DefaultBlockSize = 4096;

    private readonly HostFile _file;
    private readonly GuestMemory _memory;
    private int _writeErrors;

    private FlashImage(string path, HostFile file, GuestMemory memory, bool readOnly, uint blockSize)
    {
        Path = path;
        _file = file;
        _memory = memory;
        ReadOnly = readOnly;
        BlockSize = blockSize;
    }

    public string Path { get; }
    public bool ReadOnly { get; }
    public uint BlockSize { get; }
    public ulong Size => _memory.Regions[0].Size;
    public ulong GuestAddress => _memory.Regions[0].GuestAddress;
    /// <summary>The mapping behind the contents, for a memory slot.</summary>
    public GuestRegion Region => _memory.Regions[0];
    public Span<byte> Contents => _memory.GetSpan(GuestAddress, Size);

    /// <summary>Opens <paramref name="path"/> as the unit that ends at guest address <paramref name="end"/>;
    /// <paramref name="what"/> names the unit in errors. At most <paramref name="maxSize"/> bytes.</summary>
    public static FlashImage Open(string path, bool readOnly, ulong end, ulong maxSize, string what,
        uint blockSize = DefaultBlockSize)
    {
        HostFile file;
        try { file = readOnly ? HostFile.OpenRead(path) : HostFile.OpenReadWrite(path); }
        catch (SysException e)
        {
            throw new FlashException(e.Errno == Libc.ENOENT
                ? $"{what} file {path} does not exist"
                : $"cannot open {what} {path}{(readOnly ? "" : " for writing")}: {Libc.ErrorText(e.Errno)}");
        }
        try
        {
            if (file.IsDirectory) throw new FlashException($"{what} {path} is a directory");
            long size = file.Length;
            if (size == 0 || size % blockSize != 0)
                throw new FlashException($"{what} {path} is {size} bytes: not a whole number of {blockSize}-byte flash blocks");
            if ((ulong)size > maxSize)
                throw new FlashException($"{what} {path} is {size} bytes; at most {maxSize} fit below 0x{end:x}");
            try { ByteRangeLock.LockImage(file.Fd, $"{what} {path}", readOnly); }
            catch (SysException e) { throw new FlashException(e.Message); }
            var memory = new GuestMemory([(end - (ulong)size, (ulong)size)]);
            var image = new FlashImage(path, file, memory, readOnly, blockSize);
            try
            {
                bool complete;
                try { complete = file.ReadExactly(image.Contents, 0); }
                catch (SysException e) { throw new FlashException($"cannot read {what} {path}: {e.Message}"); }
                if (!complete) throw new FlashException($"{what} {path} shrank while it was read");
                return image;
            }
            catch
            {
                memory.Dispose();
                throw;
            }
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Stores <paramref name="data"/> at <paramref name="offset"/> and in the file.</summary>
    public void Store(int offset, ReadOnlySpan<byte> data)
    {
        data.CopyTo(Contents[offset..]);
        Persist(offset, data.Length);
    }

    /// <summary>Sets [offset, offset+length) to the erased state (all ones) and writes it to the file.</summary>
    public void Erase(int offset, int length)
    {
        Contents.Slice(offset, length).Fill(0xFF);
        Persist(offset, length);
    }

    private void Persist(int offset, int length)
    {
        int result = _file.WriteAll(Contents.Slice(offset, length), offset);
        // The guest keeps what it wrote in the chip; the file missing it is the host's problem to hear about.
        if (result < 0 && _writeErrors++ < 10)
            Log.Warn($"flash {Path}: writing {length} bytes at {offset} failed: {Libc.ErrorText(-result)}");
    }

    public void Dispose()
    {
        _memory.Dispose();
        _file.Dispose();
    }
}
