using StratoVirt.Cli;
using StratoVirt.Devices.Options;

namespace StratoVirt.Tests.Unit;

/// <summary>-daemonize and -pidfile where no KVM is needed: the pid file itself, the argument rules, and a daemon
/// that fails while starting (its error reaches the parent's stderr; nothing is left behind).</summary>
[Trait("Level", "Unit")]
public sealed class DaemonTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private string PathOf(string name) => Path.Combine(_dir.Path, name);

    [Fact]
    public void PidFileHoldsThePidPrivatelyAndGoesAwayOnDispose()
    {
        string path = PathOf("vm.pid");
        using (var pid = PidFile.Create(path, 4242))
        {
            Assert.Equal("4242", File.ReadAllText(path));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        }
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void ExistingPidFileIsAnErrorAndIsLeftAlone()
    {
        string path = PathOf("taken.pid");
        File.WriteAllText(path, "1");
        var e = Assert.Throws<UsageException>(() => PidFile.Create(path, 4242));
        Assert.Equal($"option -pidfile: {path} already exists (another VM's, or left behind)", e.Message);
        Assert.Equal("1", File.ReadAllText(path));
    }

    [Fact]
    public void PidFileInAMissingDirectoryNamesThePath()
    {
        string path = PathOf("no/such/dir.pid");
        var e = Assert.Throws<StratoVirt.Sys.SysException>(() => PidFile.Create(path, 1));
        Assert.StartsWith($"create pid file {path}: No such file or directory", e.Message);
    }

    [Fact]
    public void PidFileWithoutDaemonizeIsRefused()
    {
        var r = VmmProcess.Run(["-machine", "microvm", "-kernel", PathOf("k"), "-pidfile", PathOf("vm.pid")]);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("stratovirt: option -pidfile must be used together with -daemonize", r.Stderr.Trim());
        Assert.False(File.Exists(PathOf("vm.pid")));
    }

    [Fact]
    public void DaemonizeTwiceAndAnEmptyPidFileAreUsageErrors()
    {
        var twice = VmmProcess.Run(["-machine", "microvm", "-kernel", PathOf("k"), "-daemonize", "-daemonize"]);
        Assert.Equal(1, twice.ExitCode);
        Assert.Equal("stratovirt: option -daemonize is given more than once", twice.Stderr.Trim());
        var empty = VmmProcess.Run(["-machine", "microvm", "-kernel", PathOf("k"), "-daemonize", "-pidfile", ""]);
        Assert.Equal(1, empty.ExitCode);
        Assert.Equal("stratovirt: option -pidfile: the path is empty", empty.Stderr.Trim());
    }

    [Fact]
    public void DaemonThatFailsToStartReportsOnTheParentsStderrAndLeavesNothing()
    {
        string kernel = PathOf("missing-kernel"), pid = PathOf("vm.pid"), qmp = PathOf("qmp.sock");
        var r = VmmProcess.Run(["-machine", "microvm", "-kernel", kernel, "-daemonize", "-pidfile", pid,
            "-qmp", $"unix:{qmp},server,nowait"], TimeSpan.FromSeconds(20));
        Assert.False(r.TimedOut, r.ToString());
        Assert.Equal(1, r.ExitCode);
        Assert.Equal($"stratovirt: kernel file {kernel} does not exist", r.Stderr.Trim());
        Assert.Equal("", r.Stdout);
        Assert.Empty(Directory.GetFileSystemEntries(_dir.Path));
    }

    [Fact]
    public void DaemonLogLinesBeforeTheFailureReachTheParent()
    {
        string kernel = PathOf("text-kernel");
        File.WriteAllText(kernel, "not a kernel\n");
        var r = VmmProcess.Run(["-machine", "microvm", "-kernel", kernel, "-daemonize", "-D"], TimeSpan.FromSeconds(20),
            new Dictionary<string, string> { ["STRATOVIRT_LOG_LEVEL"] = "info" });
        Assert.Equal(1, r.ExitCode);
        var lines = r.Stderr.TrimEnd().Split('\n');
        Assert.Matches(@"^\S+ ERROR kernel .* is a text file, not a kernel image$", lines[0]);
        Assert.Equal($"stratovirt: kernel {kernel} is a text file, not a kernel image", lines[^1]);
    }

    [Fact]
    public void DaemonizeWithAnExistingPidFileFailsBeforeStarting()
    {
        string pid = PathOf("vm.pid");
        File.WriteAllText(pid, "77");
        var r = VmmProcess.Run(["-machine", "microvm", "-kernel", PathOf("k"), "-daemonize", "-pidfile", pid]);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal($"stratovirt: option -pidfile: {pid} already exists (another VM's, or left behind)", r.Stderr.Trim());
        Assert.Equal("77", File.ReadAllText(pid));
    }
}
