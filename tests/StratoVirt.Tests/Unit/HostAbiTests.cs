using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using StratoVirt.Sys;

namespace StratoVirt.Tests.Unit;

/// <summary>The values that differ between x86_64 and arm64 are this host's (x86_64): open flags, epoll_event's
/// layout, struct stat's mode, syscall numbers.</summary>
[Trait("Level", "Unit")]
public sealed class HostAbiTests
{
    [Fact]
    public void ArchitectureDependentValuesAreX86Ones()
    {
        Assert.Equal(Architecture.X64, RuntimeInformation.ProcessArchitecture);
        Assert.Equal(0x4000, Libc.O_DIRECT);
        Assert.Equal(0x20000, Libc.O_NOFOLLOW);
        Assert.Equal(12, Libc.EpollEventSize);
        Assert.Equal(4, Libc.EpollEventDataOffset);
        Assert.Equal(155, Libc.SYS_pivot_root);
        Assert.Equal(317, Libc.SYS_seccomp);
    }

    [Fact]
    public unsafe void StatModeIsReadWhereX86PutsIt()
    {
        Assert.Equal(144, Unsafe.SizeOf<Stat>());
        using var dir = FileDescriptor.Open("/proc/self", Libc.O_RDONLY);
        Stat st;
        // st is a local of this frame that fstat fills.
        Assert.Equal(0, Libc.FStat(dir.Fd, &st));
        Assert.True((st.Mode & Libc.S_IFMT) == Libc.S_IFDIR, $"mode 0x{st.Mode:x}");
    }
}
