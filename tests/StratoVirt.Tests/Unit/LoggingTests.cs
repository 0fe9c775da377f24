namespace StratoVirt.Tests.Unit;

/// <summary>-D [logfile] with STRATOVIRT_LOG_LEVEL, checked on start-up errors (no KVM needed): the log line goes to
/// the file or to stderr, and the one-line "stratovirt:" error always goes to stderr.</summary>
[Trait("Level", "Unit")]
public sealed class LoggingTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private VmmResult Run(string? level, params string[] extra)
    {
        string kernel = Path.Combine(_dir.Path, "text-kernel");
        File.WriteAllText(kernel, "not a kernel\n");
        var env = level is null ? null : new Dictionary<string, string> { ["STRATOVIRT_LOG_LEVEL"] = level };
        return VmmProcess.Run(["-machine", "microvm", "-kernel", kernel, .. extra], env: env);
    }

    private const string LogLine = @"^\S+Z ERROR kernel \S+ is a text file, not a kernel image$";

    [Fact]
    public void LogFileGetsTheLogAndStderrOnlyTheError()
    {
        string log = Path.Combine(_dir.Path, "vm.log");
        var r = Run("info", "-D", log);
        Assert.Equal(1, r.ExitCode);
        Assert.Matches(@"^stratovirt: kernel \S+ is a text file, not a kernel image$", r.Stderr.Trim());
        Assert.Matches(LogLine, File.ReadAllText(log).Trim());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(log));
    }

    [Fact]
    public void DashDWithoutAFileLogsToStderrAtTheDefaultErrorLevel()
    {
        var r = Run(null, "-D");
        var lines = r.Stderr.Trim().Split('\n');
        Assert.Equal(2, lines.Length);
        Assert.Matches(LogLine, lines[0]);
        Assert.StartsWith("stratovirt: ", lines[1]);
    }

    [Fact]
    public void WithoutDashDThereIsNoLog()
    {
        var r = Run("trace");
        Assert.Matches(@"^stratovirt: kernel \S+ is a text file, not a kernel image$", r.Stderr.Trim());
    }

    [Fact]
    public void AnUnknownLevelIsOneClearLine()
    {
        var r = Run("loud", "-D");
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("stratovirt: STRATOVIRT_LOG_LEVEL=loud is not one of trace, debug, info, warn, error", r.Stderr.Trim());
    }
}
