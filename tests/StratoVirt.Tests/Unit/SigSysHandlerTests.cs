using StratoVirt.Sys.Seccomp;

namespace StratoVirt.Tests.Unit;

/// <summary>
/// The native SIGSYS handlers: their bytes are the assembled sources; the x86_64 one, run by the kernel for a real
/// trapped call (tests/seccomp/sigsys-harness.c installs it under a seccomp filter; no KVM needed), and the aarch64
/// one under qemu-user print the one line on stderr and on the log fd and exit 159.
/// </summary>
[Trait("Level", "Unit")]
public sealed class SigSysHandlerTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string Source(string relative) => Path.Combine(VmmProcess.RepoRoot, relative);

    private string Run(string command, params string[] args)
    {
        var r = VmmProcess.RunCommand(command, args, TimeSpan.FromMinutes(1));
        Assert.True(r.ExitCode == 0, $"{command} failed: {r}");
        return r.Stdout;
    }

    [Theory]
    [InlineData("x86_64", "", "sigsys-x86_64.S")]
    [InlineData("aarch64", "aarch64-linux-gnu-", "sigsys-aarch64.S")]
    public void TheEmbeddedCodeIsTheAssembledSource(string abi, string tools, string source)
    {
        string obj = Path.Combine(_dir.Path, "sigsys.o"), bin = Path.Combine(_dir.Path, "sigsys.bin");
        Run(tools + "gcc", "-c", "-o", obj, Source("src/StratoVirt.Sys/Seccomp/" + source));
        Run(tools + "objcopy", "-O", "binary", "-j", ".text", obj, bin);
        Assert.Equal(File.ReadAllBytes(bin), SigSysHandler.Code(abi == "aarch64" ? SyscallAbi.Aarch64 : SyscallAbi.X86_64).ToArray());
    }

    [Theory]
    [InlineData(63, "uname")]
    [InlineData(0, "read")]
    [InlineData(334, "rseq")]
    [InlineData(1000, "?")] // past the table
    public void ABlockedCallIsNamedOnStderrAndTheLogAndEndsWith159(int nr, string name)
    {
        string harness = Path.Combine(_dir.Path, "harness");
        Run("gcc", "-O2", "-Wall", "-o", harness, Source("tests/seccomp/sigsys-harness.c"));
        AssertReportedAndStopped(SyscallAbi.X86_64, [harness], nr, name);
    }

    /// <summary>Runs the harness (<paramref name="command"/> + image, number, log) with <paramref name="abi"/>'s handler
    /// and checks the one line on stderr and on the log fd, and the exit status.</summary>
    private void AssertReportedAndStopped(SyscallAbi abi, string[] command, int nr, string name)
    {
        string image = _dir.Write("image", SigSysHandler.Image(logFd: 3, abi));
        string log = Path.Combine(_dir.Path, "log");

        var r = VmmProcess.RunCommand(command[0], [.. command[1..], image, nr.ToString(), log], TimeSpan.FromMinutes(1));

        string line = $"stratovirt: seccomp blocked system call {name} ({nr}); stopping the VM\n";
        Assert.True(r.ExitCode == Seccomp.BlockedExitCode, r.ToString());
        Assert.Equal(line, r.Stderr);
        Assert.Equal(line, File.ReadAllText(log));
    }

    [Fact]
    public void WithoutALogFdTheLineGoesToStderrOnly()
    {
        string harness = Path.Combine(_dir.Path, "harness");
        Run("gcc", "-O2", "-Wall", "-o", harness, Source("tests/seccomp/sigsys-harness.c"));
        string image = _dir.Write("image", SigSysHandler.Image(logFd: 2, SyscallAbi.X86_64));

        var r = VmmProcess.RunCommand(harness, [image, "63"], TimeSpan.FromMinutes(1));

        Assert.True(r.ExitCode == 159, r.ToString());
        Assert.Equal("stratovirt: seccomp blocked system call uname (63); stopping the VM\n", r.Stderr);
    }

    /// <summary>The aarch64 handler, run by qemu-user (which has no seccomp) on the harness's direct call: the same
    /// line, from aarch64's own table, on stderr and the log, and exit 159.</summary>
    [Theory]
    [InlineData(160, "uname")]
    [InlineData(63, "read")]
    [InlineData(0, "io_setup")]
    [InlineData(22, "epoll_pwait")]
    [InlineData(1000, "?")] // past the table
    public void TheAarch64HandlerNamesTheCallFromItsOwnTable(int nr, string name)
    {
        string harness = Path.Combine(_dir.Path, "harness-arm64");
        Run("aarch64-linux-gnu-gcc", "-static", "-O2", "-Wall", "-o", harness, Source("tests/seccomp/sigsys-harness.c"));
        AssertReportedAndStopped(SyscallAbi.Aarch64, ["env", "SIGSYS_HARNESS_DIRECT=1", "qemu-aarch64-static", harness], nr, name);
    }
}
