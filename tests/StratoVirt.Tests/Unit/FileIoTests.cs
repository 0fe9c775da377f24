using System.Runtime.InteropServices;
using StratoVirt.Sys;

namespace StratoVirt.Tests.Unit;

/// <summary>The errno boundary for plain fds (FileIo) and the native argv/envp arrays spawn and exec are given.</summary>
[Trait("Level", "Unit")]
public sealed unsafe class FileIoTests
{
    [Fact]
    public void ReadAndWriteReturnCountsEndOfInputAndNegativeErrno()
    {
        var (read, write) = ChildProcess.Pipe();
        using (read)
        {
            using (write)
            {
                Assert.Equal(3, FileIo.Write(write.Fd, "abc"u8));
                var buffer = new byte[8];
                Assert.Equal(3, FileIo.Read(read.Fd, buffer));
                Assert.Equal("abc"u8.ToArray(), buffer[..3]);
                Assert.Equal(-Libc.EBADF, FileIo.Read(write.Fd, buffer)); // the write end cannot be read
            }
            Assert.Equal(0, FileIo.Read(read.Fd, new byte[8])); // every writer closed: end of input
        }
        Assert.Equal(-Libc.EBADF, FileIo.Write(-1, "x"u8));
    }

    [Fact]
    public void NativeStringArrayIsNullTerminatedUtf8()
    {
        using var array = new NativeStringArray(["a=1", "ü"]);
        Assert.Equal("a=1", Marshal.PtrToStringUTF8((nint)array[0]));
        Assert.Equal("ü", Marshal.PtrToStringUTF8((nint)array.Pointer[1]));
        Assert.True(array.Pointer[2] == null);
        Assert.Throws<ArgumentOutOfRangeException>(() => { _ = (nint)array[2]; });
    }
}
