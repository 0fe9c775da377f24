using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using StratoVirt.Sys;
using StratoVirt.Virtio;
using StratoVirt.Virtio.Devices.Net;
using StratoVirt.Virtio.Vhost;

namespace StratoVirt.Tests.Unit;

/// <summary>The vhost-kernel ABI (linux/vhost.h, vhost_types.h) and the checks on a vhost device fd.</summary>
[Trait("Level", "Unit")]
public sealed unsafe class VhostLayoutTests
{
    [Fact]
    public void IoctlNumbersAreTheKernelsEncodings()
    {
        // _IOC(dir, 0xAF, nr, size): dir 1 = write, 2 = read, 3 = both, in bits 30-31; size in bits 16-29.
        Assert.Equal(Libc.VHOST_GET_FEATURES, Ioc(2, 0x00, 8));
        Assert.Equal(Libc.VHOST_SET_FEATURES, Ioc(1, 0x00, 8));
        Assert.Equal(Libc.VHOST_SET_OWNER, Ioc(0, 0x01, 0));
        Assert.Equal(Libc.VHOST_SET_MEM_TABLE, Ioc(1, 0x03, sizeof(VhostMemoryHeader)));
        Assert.Equal(Libc.VHOST_SET_VRING_NUM, Ioc(1, 0x10, sizeof(VhostVringState)));
        Assert.Equal(Libc.VHOST_SET_VRING_ADDR, Ioc(1, 0x11, sizeof(VhostVringAddr)));
        Assert.Equal(Libc.VHOST_SET_VRING_BASE, Ioc(1, 0x12, sizeof(VhostVringState)));
        Assert.Equal(Libc.VHOST_GET_VRING_BASE, Ioc(3, 0x12, sizeof(VhostVringState)));
        Assert.Equal(Libc.VHOST_SET_VRING_KICK, Ioc(1, 0x20, sizeof(VhostVringFile)));
        Assert.Equal(Libc.VHOST_SET_VRING_CALL, Ioc(1, 0x21, sizeof(VhostVringFile)));
        Assert.Equal(Libc.VHOST_SET_VRING_ERR, Ioc(1, 0x22, sizeof(VhostVringFile)));
        Assert.Equal(Libc.VHOST_NET_SET_BACKEND, Ioc(1, 0x30, sizeof(VhostVringFile)));
        Assert.Equal(Libc.VHOST_VSOCK_SET_GUEST_CID, Ioc(1, 0x60, 8));
        Assert.Equal(Libc.VHOST_VSOCK_SET_RUNNING, Ioc(1, 0x61, 4));
        // Spot checks against the values linux/vhost.h gives on x86_64.
        Assert.Equal(Libc.VHOST_SET_VRING_ADDR, 0x4028AF11UL);
        Assert.Equal(Libc.VHOST_GET_VRING_BASE, 0xC008AF12UL);
    }

    private static ulong Ioc(uint dir, uint nr, int size) => ((ulong)dir << 30) | ((ulong)size << 16) | (0xAFUL << 8) | nr;

    [Fact]
    public void StructLayoutsMatchTheKernelAbi()
    {
        Assert.Equal(8, Unsafe.SizeOf<VhostVringState>());
        Assert.Equal(8, Unsafe.SizeOf<VhostVringFile>());
        Assert.Equal(4, (int)Marshal.OffsetOf<VhostVringFile>(nameof(VhostVringFile.Fd)));
        Assert.Equal(40, Unsafe.SizeOf<VhostVringAddr>());
        // The kernel's order: descriptors, used, available, log.
        Assert.Equal(8, (int)Marshal.OffsetOf<VhostVringAddr>(nameof(VhostVringAddr.DescUserAddr)));
        Assert.Equal(16, (int)Marshal.OffsetOf<VhostVringAddr>(nameof(VhostVringAddr.UsedUserAddr)));
        Assert.Equal(24, (int)Marshal.OffsetOf<VhostVringAddr>(nameof(VhostVringAddr.AvailUserAddr)));
        Assert.Equal(32, (int)Marshal.OffsetOf<VhostVringAddr>(nameof(VhostVringAddr.LogGuestAddr)));
        Assert.Equal(8, Unsafe.SizeOf<VhostMemoryHeader>());
        Assert.Equal(32, Unsafe.SizeOf<VhostMemoryRegion>());
        Assert.Equal(16, (int)Marshal.OffsetOf<VhostMemoryRegion>(nameof(VhostMemoryRegion.UserspaceAddr)));
    }

    [Fact]
    public void AnInheritedFdThatIsNotAVhostDeviceIsOneLineNamingIt()
    {
        using var devNull = FileDescriptor.Open("/dev/null", Libc.O_RDWR);
        Assert.Equal($"vhostfd {devNull.Fd} is not a vhost device (VHOST_GET_FEATURES: {Libc.ErrorText(Libc.ENOTTY)})",
            Assert.Throws<VhostException>(() => VhostDevice.Adopt(devNull.Fd)).Message);

        int* fds = stackalloc int[2];
        Assert.Equal(0, Libc.Pipe2(fds, Libc.O_CLOEXEC));
        using var read = new FileDescriptor(fds[0]);
        using var write = new FileDescriptor(fds[1]);
        Assert.Equal($"vhostfd {read.Fd} is not a vhost device (not a character device)",
            Assert.Throws<VhostException>(() => VhostDevice.Adopt(read.Fd)).Message);

        using var file = FileDescriptor.Open("/proc/self/status", Libc.O_RDONLY);
        Assert.Equal($"vhostfd {file.Fd} is not a vhost device (not a character device)",
            Assert.Throws<VhostException>(() => VhostDevice.Adopt(file.Fd)).Message);

        Assert.Equal("vhostfd 100000 is not a vhost device (not an open file descriptor)",
            Assert.Throws<VhostException>(() => VhostDevice.Adopt(100000)).Message);

        // The refused fd stays open and usable: the caller still owns it.
        byte b = 1;
        Assert.Equal(1, Libc.Write(devNull.Fd, &b, 1));
    }

    [Fact]
    public void AMissingOrWrongDevicePathIsOneLineNamingIt()
    {
        Assert.Equal("/nonexistent/vhost-vsock does not exist (is its vhost module loaded?)",
            Assert.Throws<VhostException>(() => VhostDevice.Open("/nonexistent/vhost-vsock")).Message);
        Assert.Equal($"/dev/null is not a vhost device (VHOST_GET_FEATURES: {Libc.ErrorText(Libc.ENOTTY)})",
            Assert.Throws<VhostException>(() => VhostDevice.Open("/dev/null")).Message);
    }

    [Fact]
    public void OfferedFeaturesDropOnlyTheKernelImplementedBitsTheKernelLacks()
    {
        ulong device = VirtioNet.TapFeatures | VirtioFeature.Version1 | VirtioFeature.RingIndirectDesc | VirtioFeature.RingEventIdx;
        // A vhost-net without EVENT_IDX and mergeable buffers: those go; the tap's offloads, MAC and status stay.
        ulong kernel = VirtioFeature.Version1 | VirtioFeature.RingIndirectDesc;
        ulong offered = VhostKernelRings.Offer(device, VhostNet.KernelBits, kernel);
        Assert.Equal(device & ~(VirtioFeature.RingEventIdx | VirtioNet.FeatureMrgRxbuf), offered);
        // vsock: the kernel implements every bit, so the offer is the intersection.
        Assert.Equal(VirtioFeature.Version1, VhostKernelRings.Offer(VirtioFeature.Version1 | VirtioFeature.RingEventIdx, ulong.MaxValue,
            VirtioFeature.Version1 | (1UL << 26)));
    }
}
