using System.Runtime.InteropServices;
using StratoVirt.Sys;

namespace StratoVirt.Tests.Unit;

/// <summary>The vCPU kick's signal: its handler is a mapped return instruction, and a thread blocked in a system call
/// that gets it returns from the call with EINTR and runs on.</summary>
[Trait("Level", "Unit")]
public sealed unsafe class InterruptSignalTests
{
    /// <summary>SIGRTMIN+2: the runtime has 34 and the VMM's kick 35.</summary>
    private const int Signal = 36;

    [Fact]
    public void ABlockedCallReturnsEintrAndTheThreadRunsOn()
    {
        InterruptSignal.Install(Signal);
        int tid = 0, result = 0, errno = 0;
        var sleeper = new Thread(() =>
        {
            Volatile.Write(ref tid, Libc.GetTid());
            result = Libc.Poll(null, 0, 20_000);
            errno = Marshal.GetLastPInvokeError();
        });
        sleeper.Start();
        // The signal may come before the thread enters poll (and is then lost on the way): send it until the
        // thread is out.
        for (int i = 0; i < 100 && !sleeper.Join(100); i++)
            if (Volatile.Read(ref tid) is var t && t != 0) Libc.TgKill(Libc.GetPid(), t, Signal);
        Assert.True(sleeper.Join(0), "the thread stayed in poll");
        Assert.Equal((-1, Libc.EINTR), (result, errno));
    }
}
