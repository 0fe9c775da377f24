using System.Runtime.InteropServices;

namespace StratoVirt.Sys;

/// <summary>Calls on an open block device (a raw disk behind a -drive).</summary>
public static class BlockDevice
{
    /// <summary>The device's size in bytes (BLKGETSIZE64): 0, or the errno.</summary>
    public static unsafe int GetSize(int fd, out ulong bytes)
    {
        ulong size = 0;
        // size is a local of this frame; the kernel writes its 8 bytes.
        int result = Libc.Ioctl(fd, Libc.BLKGETSIZE64, &size);
        bytes = size;
        return result < 0 ? Marshal.GetLastPInvokeError() : 0;
    }
}
