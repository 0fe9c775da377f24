using Xunit.Abstractions;

namespace StratoVirt.Tests.Lab;

/// <summary>Debian's kernel with its serial console on a unix socket chardev (-serial chardev:&lt;id&gt;): a host
/// program types into the socket and reads the shell's answers from it.</summary>
[Trait("Level", "Lab")]
public sealed class SerialSocketLabTests(ITestOutputHelper output)
{
    [Fact]
    public void ShellOnASocketSerialPortRunsCommandsTypedIntoTheSocket()
    {
        var s = LabSession.Instance.Ended("serial-socket-shell", output);
        Assert.True(s.ExitCode == 0, s.Text);
        Assert.True(s.OutputContains("chardev 'ser0': client connected on /tmp/serial.sock"), s.Text);
        Assert.True(s.OutputContains("SERIAL-SOCKET GUEST-SHELL"), s.Text);
        Assert.Contains(s.Output, l => l.StartsWith("SERIAL-SOCKET Linux ", StringComparison.Ordinal) && l.Contains("x86_64"));
        Assert.True(s.OutputContains("SERIAL-SOCKET typed-42"), s.Text);
    }
}
