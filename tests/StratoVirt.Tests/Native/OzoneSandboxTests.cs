using Ozone;

namespace StratoVirt.Tests.Native;

/// <summary>
/// ozone as root on this host (no KVM needed): the probe runs in the sandbox and reports what it sees, the test
/// checks its cgroup from the host meanwhile, and after each run nothing may be left: no chroot, mount or cgroup.
/// </summary>
[Trait("Level", "Native")]
[Trait("Area", "Ozone")]
public sealed class OzoneSandboxTests(OzoneFixture fx) : IClassFixture<OzoneFixture>
{
    private const string NoCaps = "0000000000000000";

    private string[] Base(string name, uint uid = 1234, uint gid = 2345) =>
        ["-name", name, "-exec-file", fx.Probe, "-uid", uid.ToString(), "-gid", gid.ToString()];

    /// <summary>The cgroup folders of a sandbox name, in every mounted hierarchy, whether or not they exist.</summary>
    private static List<string> CgroupDirs(string name, string exec = "probe") =>
        MountTable.Parse(File.ReadAllText(MountTable.Path)).Where(m => m.FsType is "cgroup" or "cgroup2")
            .Select(m => Path.Combine(m.MountPoint, exec, name)).ToList();

    private static void AssertNothingLeft(string name, string exec = "probe")
    {
        string chroot = OzoneFixture.ChrootOf(name, exec);
        Assert.False(Directory.Exists(chroot), $"{chroot} is left behind");
        Assert.DoesNotContain(chroot, File.ReadAllText(MountTable.Path));
        Assert.DoesNotContain(CgroupDirs(name, exec), Directory.Exists);
    }

    private static void AssertOneLineError(VmmResult r, string expected)
    {
        Assert.Equal(1, r.ExitCode);
        var lines = r.Stderr.Trim().Split('\n');
        Assert.True(lines.Length == 1, r.ToString());
        Assert.StartsWith("ozone: ", lines[0]);
        Assert.Contains(expected, lines[0]);
    }

    private string Source(string fileName, string text)
    {
        string path = Path.Combine(fx.Dir, fileName);
        File.WriteAllText(path, text);
        return path;
    }

    private VmmResult Ozone(params string[] args) => VmmProcess.RunCommand(fx.Ozone, args);

    [Fact]
    public void ProbeSeesOnlyItsSandboxAndCleanResourceRemovesIt()
    {
        string name = OzoneFixture.NewName();
        string source = Source($"{name}.img", "disk image bytes");
        // fd 7 is open without close-on-exec when ozone starts: the probe must not get it.
        using var run = new ProbeRun("bash", ["-c", "exec 7</dev/null; exec \"$0\" \"$@\"", fx.Ozone, .. Base(name),
            "-source", source, "-numa", "0", "-cgroup", "cpuset.cpus=0", "memory.limit_in_bytes=67108864", "-clean-resource",
            "--", $"/{name}.img", "/etc/hostname"]);
        var r = run.Report;
        Assert.Equal("1", r["pid"]);
        Assert.Equal("1234,1234,1234", r["uid"]);
        Assert.Equal("2345,2345,2345", r["gid"]);
        Assert.Equal("", r["groups"]);
        foreach (var set in (string[])["cap_eff", "cap_prm", "cap_inh", "cap_bnd", "cap_amb"]) Assert.Equal(NoCaps, r[set]);
        Assert.Equal("1", r["no_new_privs"]);
        Assert.Equal("Ozone", r["hostname"]);
        Assert.Equal("/", r["cwd"]);
        Assert.Equal(string.Join(",", new[] { "dev", "probe", $"{name}.img" }.Order(StringComparer.Ordinal)), r["root"]);
        var dev = new List<string> { "kvm", "net", "null", "urandom" };
        if (File.Exists("/dev/vhost-net")) dev.Add("vhost-net");
        if (File.Exists("/dev/vhost-vsock")) dev.Add("vhost-vsock");
        Assert.Equal(string.Join(",", dev.Order(StringComparer.Ordinal)), r["dev"]);
        Assert.Equal("tun", r["dev_net"]);
        Assert.Equal("", r["fds"]);
        Assert.Equal([$"/{name}.img ok 16", "/etc/hostname error No such file or directory"], run.Reads);

        // From the host: the chroot with the source mounted, and the cgroup holding the probe with the limits.
        Assert.Contains(OzoneFixture.ChrootOf(name) + $"/{name}.img", File.ReadAllText(MountTable.Path));
        var dirs = CgroupDirs(name).Where(Directory.Exists).ToList();
        Assert.NotEmpty(dirs);
        string Value(string file) => File.ReadAllText(dirs.Select(d => Path.Combine(d, file)).First(File.Exists)).Trim();
        Assert.Equal("0", Value("cpuset.cpus"));
        Assert.Equal("0", Value("cpuset.mems"));
        Assert.Equal("67108864", dirs.Any(d => File.Exists(Path.Combine(d, "memory.max"))) ? Value("memory.max") : Value("memory.limit_in_bytes"));
        foreach (var dir in dirs)
        {
            var pids = File.ReadAllText(Path.Combine(dir, "cgroup.procs")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            string pid = Assert.Single(pids);
            var status = File.ReadAllLines($"/proc/{pid}/status");
            Assert.Equal("probe", status.First(l => l.StartsWith("Name:")).Split('\t')[1]);
            Assert.EndsWith("\t1", status.First(l => l.StartsWith("NSpid:")));
        }

        var (exit, stderr) = run.Finish(7);
        Assert.Equal(7, exit);
        Assert.Equal("", stderr);
        AssertNothingLeft(name);
        Assert.Equal("disk image bytes", File.ReadAllText(source));
    }

    [Fact]
    public void KeptCapabilitiesReachANonRootUidAndRiskyOnesWarn()
    {
        string name = OzoneFixture.NewName();
        using var run = new ProbeRun(fx.Ozone, [.. Base(name), "-capability", "CAP_NET_BIND_SERVICE,cap_sys_admin", "-clean-resource", "--"]);
        const string mask = "0000000000200400"; // bits 10 and 21
        foreach (var set in (string[])["cap_eff", "cap_prm", "cap_inh", "cap_bnd", "cap_amb"]) Assert.Equal(mask, run.Report[set]);
        Assert.Equal("1234,1234,1234", run.Report["uid"]);
        var (exit, stderr) = run.Finish(0);
        Assert.Equal(0, exit);
        Assert.Equal("ozone: warning: CAP_SYS_ADMIN lets the sandboxed process do much more; it may help it escape", stderr.Trim());
        AssertNothingLeft(name);
    }

    [Fact]
    public void RootUidGetsNoCapabilitiesByDefault()
    {
        string name = OzoneFixture.NewName();
        using var run = new ProbeRun(fx.Ozone, [.. Base(name, 0, 0), "-clean-resource", "--"]);
        Assert.Equal("0,0,0", run.Report["uid"]);
        foreach (var set in (string[])["cap_eff", "cap_prm", "cap_inh", "cap_bnd", "cap_amb"]) Assert.Equal(NoCaps, run.Report[set]);
        Assert.Equal(0, run.Finish(0).ExitCode);
        AssertNothingLeft(name);
    }

    [Fact]
    public void JoinsTheGivenNetworkNamespace()
    {
        string name = OzoneFixture.NewName(), netns = "oz" + name[1..9];
        Assert.Equal(0, VmmProcess.RunCommand("ip", ["netns", "add", netns]).ExitCode);
        try
        {
            using var run = new ProbeRun(fx.Ozone, [.. Base(name), "-netns", $"/var/run/netns/{netns}", "-clean-resource", "--"]);
            Assert.Equal("lo", run.Report["ifaces"]);
            Assert.Equal(0, run.Finish(0).ExitCode);
        }
        finally
        {
            VmmProcess.RunCommand("ip", ["netns", "del", netns]);
        }
        AssertNothingLeft(name);
    }

    [Fact]
    public void NameInUseThenUpstreamStyleCleanUp()
    {
        string name = OzoneFixture.NewName();
        string source = Source($"{name}.bin", "kernel");
        string[] args = [.. Base(name), "-source", source, "-cgroup", "memory.limit_in_bytes=64M"];
        using (var run = new ProbeRun(fx.Ozone, [.. args, "--"]))
            Assert.Equal(3, run.Finish(3).ExitCode);
        string chroot = OzoneFixture.ChrootOf(name);
        Assert.True(File.Exists(Path.Combine(chroot, "probe")), "without -clean-resource the chroot stays");
        Assert.Contains(chroot, File.ReadAllText(MountTable.Path));
        Assert.Contains(CgroupDirs(name), Directory.Exists);

        AssertOneLineError(Ozone([.. args, "--"]), $"name in use: {chroot} already exists");
        Assert.True(File.Exists(Path.Combine(chroot, "probe")), "a refused second run must not touch the first one's chroot");

        var clean = Ozone([.. args, "-clean-resource"]);
        Assert.True(clean.ExitCode == 0, clean.ToString());
        AssertNothingLeft(name);
        Assert.Equal("kernel", File.ReadAllText(source));
        AssertOneLineError(Ozone([.. args, "-clean-resource"]), "nothing to clean");
    }

    [Fact]
    public void BadInputIsOneLineAndCreatesNothing()
    {
        string name = OzoneFixture.NewName();
        AssertOneLineError(Ozone(["-name", name, "-exec-file", fx.Probe, "-uid", "1"]), "option '-gid' is required");
        AssertOneLineError(Ozone([.. Base(name), "-source", "/nonexistent/disk.img", "--"]), "-source /nonexistent/disk.img does not exist");
        AssertOneLineError(Ozone([.. Base(name), "-cgroup", "cpu.weight=5", "--"]), "-cgroup key 'cpu.weight' is not supported");
        AssertOneLineError(Ozone([.. Base(name), "-exec-file", "/nonexistent/stratovirt", "--"]), "option '-exec-file' is given more than once");
        AssertOneLineError(Ozone(["-name", name, "-exec-file", "/nonexistent/sv", "-uid", "1", "-gid", "1", "--"]), "-exec-file /nonexistent/sv does not exist");
        AssertOneLineError(Ozone([.. Base(name), "-source", Source($"{name}-empty", ""), "--"]), "is an empty file");
        AssertNothingLeft(name);
    }

    [Fact]
    public void NotRootIsRefused()
    {
        string name = OzoneFixture.NewName();
        var r = VmmProcess.RunCommand("setpriv", ["--reuid", "65534", "--regid", "65534", "--clear-groups", fx.Ozone, .. Base(name), "--"]);
        AssertOneLineError(r, "must be run as root (euid is 65534)");
        AssertNothingLeft(name);
    }

    [Fact]
    public void AFailingSandboxStepRollsEverythingBack()
    {
        string name = OzoneFixture.NewName();
        // A regular file is no network namespace: setns fails inside the sandbox, after the chroot, the bind
        // mount and the cgroup exist.
        string notNetns = Source($"{name}.netns", "x");
        var r = Ozone([.. Base(name), "-netns", notNetns, "-source", Source($"{name}.img", "data"),
            "-cgroup", "memory.limit_in_bytes=64M", "--"]);
        AssertOneLineError(r, $"setns {notNetns}: Invalid argument (errno 22)");
        AssertNothingLeft(name);
    }

    [Fact]
    public void StratovirtRunsInTheSandbox()
    {
        // out/stratovirt is static: the chroot needs nothing beside it. With no /dev/kvm on this host, the VMM shows
        // it runs by reading the -source file and refusing it as a kernel.
        string name = OzoneFixture.NewName();
        string text = Source($"{name}.txt", "not a kernel");
        string[] args = ["-name", name, "-exec-file", VmmProcess.Binary, "-uid", "1234", "-gid", "1234", "-source", text,
            "-cgroup", "memory.limit_in_bytes=256M", "-clean-resource", "--"];
        var version = Ozone([.. args, "-version"]);
        Assert.True(version.ExitCode == 0, version.ToString());
        Assert.StartsWith("StratoVirt ", version.Stdout);
        AssertNothingLeft(name, "stratovirt");
        var refused = Ozone([.. args, "-machine", "microvm", "-kernel", $"/{name}.txt", "-m", "128"]);
        Assert.Equal(1, refused.ExitCode);
        Assert.Equal($"stratovirt: kernel /{name}.txt is a text file, not a kernel image", refused.Stderr.Trim());
        AssertNothingLeft(name, "stratovirt");
    }

    [Fact]
    public void ADynamicallyLinkedExecFileRunsWithItsLibrariesCopiedIn()
    {
        string name = OzoneFixture.NewName();
        var r = Ozone(["-name", name, "-exec-file", "/bin/true", "-uid", "1234", "-gid", "1234", "-clean-resource", "--"]);
        Assert.True(r.ExitCode == 0, r.ToString());
        AssertNothingLeft(name, "true");
    }

    [Fact]
    public void SharedLibrariesOfStaticAndDynamicBinaries()
    {
        Assert.Null(SharedLibraries.Interpreter(fx.Probe));
        Assert.Empty(SharedLibraries.Of(fx.Probe));
        Assert.Null(SharedLibraries.Interpreter(VmmProcess.Binary));
        Assert.Empty(SharedLibraries.Of(VmmProcess.Binary));
        // A dynamically linked binary: its loader first, then what the loader resolves.
        const string dynamic = "/bin/true";
        var libs = SharedLibraries.Of(dynamic);
        Assert.Equal(SharedLibraries.Interpreter(dynamic), libs[0]);
        Assert.Contains(libs, l => Path.GetFileName(l) == "libc.so.6");
        Assert.All(libs, l => Assert.True(File.Exists(l), l));
    }

    [Fact]
    public void HelpIsPrinted()
    {
        var r = Ozone("-h");
        Assert.Equal(0, r.ExitCode);
        Assert.StartsWith("ozone: a sandbox launcher", r.Stdout);
        Assert.Contains("-clean-resource", r.Stdout);
    }
}
