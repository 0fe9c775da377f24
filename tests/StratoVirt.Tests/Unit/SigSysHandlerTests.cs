using StratoVirt.Sys.Seccomp;

namespace StratoVirt.Tests.Unit;

/// <summary>
/// The native SIGSYS handler: its bytes are the assembled source, and run by the kernel for a real trapped call
/// (tests/seccomp/sigsys-harness.c installs it under a seccomp filter; no KVM needed) it prints the one line on
/// stderr and on the log fd and exits 159.
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

    [Fact]
    public void TheEmbeddedCodeIsTheAssembledSource()
    {
        string obj = Path.Combine(_dir.Path, "sigsys.o"), bin = Path.Combine(_dir.Path, "sigsys.bin");
        Run("gcc", "-c", "-o", obj, Source("src/StratoVirt.Sys/Seccomp/sigsys-x86_64.S"));
        Run("objcopy", "-O", "binary", "-j", ".text", obj, bin);
        Assert.Equal(File.ReadAllBytes(bin), SigSysHandler.Code.ToArray());
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
        string image = _dir.Write("image", SigSysHandler.Image(logFd: 3));
        string log = Path.Combine(_dir.Path, "log");

        var r = VmmProcess.RunCommand(harness, [image, nr.ToString(), log], TimeSpan.FromMinutes(1));

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
        string image = _dir.Write("image", SigSysHandler.Image(logFd: 2));

        var r = VmmProcess.RunCommand(harness, [image, "63"], TimeSpan.FromMinutes(1));

        Assert.True(r.ExitCode == 159, r.ToString());
        Assert.Equal("stratovirt: seccomp blocked system call uname (63); stopping the VM\n", r.Stderr);
    }
}
