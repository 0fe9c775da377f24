using StratoVirt.Tests.Virtio;

namespace StratoVirt.Tests.Native;

/// <summary>Bad kernels, sizes, flags and a missing /dev/kvm: one line on stderr, non-zero exit, nothing left behind.</summary>
[Trait("Level", "Native")]
[Collection("payloads")]
public sealed class BadInputTests(PayloadFixture payloads) : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static void AssertOneLineError(VmmResult r, string expected)
    {
        Assert.False(r.TimedOut, r.ToString());
        Assert.NotEqual(0, r.ExitCode);
        var lines = r.Stderr.Trim().Split('\n');
        Assert.True(lines.Length == 1, r.ToString());
        Assert.StartsWith("stratovirt: ", lines[0]);
        Assert.Contains(expected, lines[0]);
    }

    private VmmResult RunKernel(string kernel, params string[] extra) =>
        VmmProcess.Run(["-machine", "microvm", "-kernel", kernel, "-serial", "stdio", .. extra]);

    [Fact]
    public void MissingKernel()
    {
        string path = Path.Combine(_dir.Path, "missing-kernel");
        AssertOneLineError(RunKernel(path), path);
    }

    [Fact]
    public void EmptyKernel() => AssertOneLineError(RunKernel(_dir.Write("empty", [])), "is empty");

    [Fact]
    public void TruncatedBzImage()
    {
        var bytes = File.ReadAllBytes(payloads.Get("hello", "bzImage"));
        AssertOneLineError(RunKernel(_dir.Write("trunc", bytes[..700])), "truncated");
    }

    [Fact]
    public void TextFileAsKernel() => AssertOneLineError(RunKernel(_dir.Write("notes.txt", "just some text\n"u8.ToArray())), "not a kernel image");

    [Fact]
    public void InitrdTooLargeForMemory()
    {
        string initrd = Path.Combine(_dir.Path, "huge.cpio");
        using (var f = File.Create(initrd)) f.SetLength(300L << 20);
        AssertOneLineError(RunKernel(payloads.Get("hello", "bzImage"), "-m", "128", "-initrd", initrd), "does not fit");
    }

    [Theory]
    [InlineData("-m", "0", "-m")]
    [InlineData("-m", "1T", "1T")]
    [InlineData("-smp", "0", "cpus=0")]
    [InlineData("-smp", "255", "cpus=255")]
    [InlineData("-frobnicate", "1", "-frobnicate")]
    public void BadFlags(string option, string value, string expected) =>
        AssertOneLineError(RunKernel(payloads.Get("hello"), option, value), expected);

    [Fact]
    public void VhostUserSocketNobodyListensOn()
    {
        string socket = Path.Combine(_dir.Path, "virtiofsd.sock");
        var r = VmmProcess.Run(["-machine", "microvm,mem-share=on", "-kernel", payloads.Get("hello"), "-serial", "stdio",
            "-chardev", $"socket,id=fs,path={socket},server,nowait", "-device", "vhost-user-fs-device,chardev=fs,tag=t,id=fs0"]);
        AssertOneLineError(r, $"device 'fs0': vhost-user socket {socket}: nobody listens on it (start the backend first)");
        Assert.Equal(1, r.ExitCode);
        Assert.Empty(Directory.GetFileSystemEntries(_dir.Path)); // the VMM connects; it never creates the socket
    }

    [Theory]
    [InlineData("vhost-user-fs-device,chardev=b,tag=t,id=d0", "vhost-user-fs-device")]
    [InlineData("vhost-user-blk-device,chardev=b,id=d0", "vhost-user-blk-device")]
    public void VhostUserWithoutSharedGuestRam(string device, string driver)
    {
        using var backend = new FakeVhostUserBackend(Path.Combine(_dir.Path, "backend.sock"));
        var r = RunKernel(payloads.Get("hello"), "-chardev", $"socket,id=b,path={backend.Path},server,nowait", "-device", device);
        AssertOneLineError(r, $"device 'd0': {driver} needs guest RAM shared with its backend: add mem-share=on to -machine");
        Assert.Equal(1, r.ExitCode);
        Assert.False(backend.Connected);
    }

    [Fact]
    public void MissingDriveImage()
    {
        string image = Path.Combine(_dir.Path, "missing.img");
        AssertOneLineError(RunKernel(payloads.Get("hello"), "-drive", $"id=d0,file={image}",
            "-device", "virtio-blk-device,drive=d0,id=vda"), image);
    }

    [Fact]
    public void DriveImageInUseByAnotherDrive()
    {
        string image = _dir.Write("shared.img", new byte[1 << 20]);
        AssertOneLineError(RunKernel(payloads.Get("hello"), "-drive", $"id=a,file={image}", "-drive", $"id=b,file={image}",
            "-device", "virtio-blk-device,drive=a,id=vda", "-device", "virtio-blk-device,drive=b,id=vdb"), "in use");
    }

    [Theory]
    [InlineData("a-name-longer-than-15", "longer than 15")]
    [InlineData("bad/name", "'/'")]
    public void TapThatCannotBeOpened(string ifname, string expected) =>
        AssertOneLineError(RunKernel(payloads.Get("hello"), "-netdev", $"tap,id=n0,ifname={ifname}",
            "-device", "virtio-net-device,netdev=n0,id=eth0"), expected);

    [Fact]
    public void MoreDevicesThanSlots()
    {
        var args = new List<string>();
        for (int i = 0; i < 11; i++) args.AddRange(["-object", $"rng-random,id=r{i},filename=/dev/urandom", "-device", $"virtio-rng-device,rng=r{i},id=rng{i}"]);
        AssertOneLineError(RunKernel(payloads.Get("hello"), [.. args]), "10 slots");
    }

    [Fact]
    public void UnknownDriveReferenceAndDuplicateIds()
    {
        AssertOneLineError(RunKernel(payloads.Get("hello"), "-device", "virtio-blk-device,drive=nope"), "no -drive with id 'nope'");
        AssertOneLineError(RunKernel(payloads.Get("hello"), "-drive", "id=d,file=/a", "-drive", "id=d,file=/b"), "id 'd' is used twice");
    }

    [Fact]
    public void NetDeviceWithoutAMacGetsARandomOneWithoutNeedingLibssl()
    {
        // A tap in a private network namespace; the VMM then either boots the payload (host KVM) or stops at
        // /dev/kvm. What it must not do is abort while choosing the MAC (the crypto generator loads libssl).
        var r = VmmProcess.RunCommand("unshare", ["-n", VmmProcess.Binary, "-machine", "microvm", "-kernel",
            payloads.Get("hello"), "-netdev", "tap,id=n0,ifname=svtest0", "-device", "virtio-net-device,netdev=n0,id=eth0"]);
        Assert.False(r.TimedOut, r.ToString());
        Assert.DoesNotContain("libssl", r.Stderr);
        Assert.True(r.ExitCode == 0 || r.Stderr.Contains("/dev/kvm"), r.ToString());
    }

    [Fact]
    public void VsockWithoutABackend() =>
        AssertOneLineError(RunKernel(payloads.Get("hello"), "-device", "vhost-vsock-device,id=v,guest-cid=3"), "uds-path=");

    [Fact]
    public void MissingDevKvm()
    {
        // A private mount namespace with an empty /dev: the binary cannot find /dev/kvm.
        var r = VmmProcess.RunCommand("unshare", ["-m", "sh", "-c",
            $"mount -t tmpfs none /dev && exec {VmmProcess.Binary} -machine microvm -kernel {payloads.Get("hello")}"]);
        AssertOneLineError(r, "/dev/kvm does not exist");
    }

    [Fact]
    public void FailedRunsLeaveNoFilesBehind()
    {
        string tmp = Path.GetTempPath();
        var before = Directory.GetFileSystemEntries(tmp).ToHashSet();
        RunKernel(_dir.Write("empty2", []));
        RunKernel(payloads.Get("hello"), "-m", "0");
        var after = Directory.GetFileSystemEntries(tmp).Where(e => !before.Contains(e) && !e.StartsWith(_dir.Path)).ToList();
        Assert.DoesNotContain(after, e => e.Contains("stratovirt", StringComparison.OrdinalIgnoreCase) && !e.Contains("stratovirt-test-"));
    }
}
