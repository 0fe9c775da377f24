using StratoVirt.Machine;
using StratoVirt.Qmp;

namespace StratoVirt.Tests.Unit;

/// <summary>Every way a VM ends, mapped to its exit code, its ending events and the cause a QMP client is told.</summary>
[Trait("Level", "Unit")]
public sealed class MachineExitTests
{
    public static TheoryData<string, int, bool, string, string?> Endings() => new()
    {
        { "guest-poweroff", 0, true, "guest-shutdown", null },
        { "guest-reset", 0, true, "guest-reset", "RESET" },
        { "guest-panic", 1, true, "guest-panic", null },
        { "host-error", 1, false, "host-error", null },
        { "signal", 0, false, "host-signal", null },
        { "quit", 0, false, "host-qmp-quit", null },
        { "system_reset", 0, false, "host-qmp-system-reset", "RESET" },
        { "system_powerdown", 0, false, "host-qmp-quit", "POWERDOWN" },
    };

    private static MachineExit Make(string kind) => kind switch
    {
        "guest-poweroff" => MachineExit.GuestPowerOff("guest powered off (ACPI S5)"),
        "guest-reset" => MachineExit.GuestReset("guest requested a reset (i8042)"),
        "guest-panic" => MachineExit.GuestPanic("vCPU 0: guest triple fault (KVM_EXIT_SHUTDOWN)"),
        "host-error" => MachineExit.HostError("vCPU 0: KVM internal error 3"),
        "signal" => MachineExit.Signal("SIGTERM"),
        "quit" => MachineExit.QmpQuit,
        "system_reset" => MachineExit.QmpSystemReset,
        "system_powerdown" => MachineExit.QmpSystemPowerdown,
        _ => throw new ArgumentException(kind),
    };

    [Theory]
    [MemberData(nameof(Endings))]
    public void EachEndingHasItsCodeAndEvents(string kind, int code, bool guest, string reason, string? preceding)
    {
        var exit = Make(kind);
        Assert.Equal(code, exit.Code);
        Assert.Equal(code != 0, exit.IsError);
        Assert.Equal(guest, exit.ByGuest);
        var events = exit.EndingEvents().ToList();
        var shutdown = Assert.IsType<MachineEvent.Shutdown>(events[^1]);
        Assert.Equal((guest, exit.Cause), (shutdown.Guest, shutdown.Cause));
        Assert.Equal(reason, QmpServer.ShutdownCause(exit.Cause));
        Assert.Equal(preceding, events.Count == 1 ? null : events[0] switch
        {
            MachineEvent.Reset r when r.Guest == guest && r.Cause == exit.Cause => "RESET",
            MachineEvent.Powerdown => "POWERDOWN",
            var other => other.ToString(),
        });
    }

    [Fact]
    public void SignalNamesTheSignal() =>
        Assert.Equal("terminated by signal SIGTERM", MachineExit.Signal("SIGTERM").Reason);
}
