using StratoVirt.Sys;
using StratoVirt.Sys.Seccomp;

namespace StratoVirt.Machine;

/// <summary>
/// Seccomp confinement. Each vCPU and iothread names itself and applies its own allow-list as the first thing it
/// does; the main thread waits for them, has the runtime's finalizer thread apply its list (unless it did already,
/// see <see cref="VirtualMachine.PrepareProcessThreads"/>), checks that no other
/// thread exists, and applies its own list last. The vCPUs wait, parked, until then: the guest never runs next
/// to an unconfined thread.
/// </summary>
public sealed partial class VirtualMachine
{
    private readonly CountdownEvent _threadsConfined;
    private string? _confineError;
    private bool _irqfdAndIoeventfd = true;

    /// <summary>Whether KVM signals the devices' queues and interrupts through eventfds (set by the builder): without
    /// them a vCPU serves device queues itself and needs more calls in its list.</summary>
    internal bool IrqfdAndIoeventfd
    {
        set => _irqfdAndIoeventfd = value;
    }

    /// <summary>How long the main thread waits for the other threads to confine themselves. A thread only has to
    /// be scheduled and install its filter, but on a crowded host (hundreds of VMMs starting together in the lab)
    /// that took 22 s: the wait is long, and says every <see cref="ConfineReport"/> that it is still waiting.</summary>
    private static readonly TimeSpan ConfineTimeout = TimeSpan.FromMinutes(5);

    private static readonly TimeSpan ConfineReport = TimeSpan.FromSeconds(10);

    /// <summary>Runs first on each vCPU and iothread.</summary>
    private void PrepareThread(ThreadKind kind, string name)
    {
        ThreadName.SetCurrent(name);
        if (!_config.Seccomp) return;
        try
        {
            Seccomp.Apply(SeccompPrograms.For(kind, _irqfdAndIoeventfd));
        }
        catch (SysException e)
        {
            Interlocked.CompareExchange(ref _confineError, $"thread {name}: {e.Message}", null);
            throw;
        }
        finally
        {
            _threadsConfined.Signal();
        }
    }

    /// <summary>Whether the runtime's finalizer thread applied its list (it keeps it for the life of the process).</summary>
    private static volatile bool s_finalizerConfined;

    /// <summary>
    /// Blocks the termination signals in every thread (see <see cref="TerminationSignals"/>) and, with
    /// <paramref name="seccomp"/>, confines the runtime's finalizer thread in the same visit to it: each visit costs
    /// a forced collection and two thread switches before the guest's first instruction. Call it before the machine
    /// is built and any thread is created. The finalizer thread only runs finalizers, whose calls its list covers,
    /// so it can take its list this early.
    /// </summary>
    public static void PrepareProcessThreads(bool seccomp)
    {
        string? applyError = null;
        if (seccomp) Seccomp.ReportBlockedCalls(Log.Fd);
        TerminationSignals.BlockInEveryThread(seccomp ? () => applyError = ConfineFinalizer() : null);
        if (applyError is not null) throw new SeccompException($"finalizer thread: {applyError}");
    }

    /// <summary>Runs on the finalizer thread: names it and applies its list; the error, or null.</summary>
    private static string? ConfineFinalizer()
    {
        ThreadName.SetCurrent("finalizer");
        try
        {
            Seccomp.Apply(SeccompPrograms.For(ThreadKind.Runtime, irqfdAndIoeventfd: true));
        }
        catch (SysException e)
        {
            return e.Message;
        }
        s_finalizerConfined = true;
        return null;
    }

    /// <summary>
    /// STRATOVIRT_SECCOMP_PROBE=main, vcpu or iothread: the first thread of that kind, once confined and about to
    /// serve, makes one system call that no list allows (uname), so that seccomp's report of it, and the VM's stop
    /// with status 159, can be seen on that kind of thread: how the tests reach each thread's filter in a static
    /// binary, which takes no LD_PRELOAD shim, and how an operator can check a host's kernel. Unset, nothing happens;
    /// with -disable-seccomp the call is harmless.
    /// </summary>
    private static readonly ThreadKind? s_probe = Environment.GetEnvironmentVariable("STRATOVIRT_SECCOMP_PROBE") switch
    {
        "main" => ThreadKind.Main,
        "vcpu" => ThreadKind.Vcpu,
        "iothread" => ThreadKind.IoThread,
        _ => null,
    };

    internal static void Probe(ThreadKind kind)
    {
        if (s_probe == kind) Libc.Syscall(Libc.SYS_uname, 0, 0, 0);
    }

    /// <summary>Confines the rest of the process once the vCPU and iothreads have confined themselves.</summary>
    private void ConfineProcess()
    {
        if (!_config.Seccomp)
        {
            Log.Info("seccomp is off (-disable-seccomp)");
            return;
        }
        if (!WaitPatiently(_threadsConfined, ConfineReport, ConfineTimeout, waited =>
                Log.Warn($"seccomp: {_threadsConfined.CurrentCount} thread(s) not started after {waited.TotalSeconds:0} s; waiting on")))
            throw new SysException($"seccomp: {_threadsConfined.CurrentCount} thread(s) did not start within {ConfineTimeout.TotalSeconds} s", Libc.EAGAIN);
        if (_confineError is { } error) throw new SeccompException(error);

        if (!s_finalizerConfined)
        {
            string? applyError = null;
            if (!FinalizerThread.Run(() => applyError = ConfineFinalizer(), out var finalizerError) || applyError is not null)
                throw new SeccompException($"finalizer thread: {finalizerError ?? applyError}");
        }
        int threads = _vcpus.Count + _ioThreads.Count + 2; // + main and the finalizer thread
        if (CountThreads() is not { } counted)
            Log.Info("seccomp: no /proc (as under ozone), so the thread count is not checked");
        else if (counted != threads)
            throw new SeccompException($"the process has {counted} threads, {threads} were expected; " +
                                       "a thread the VMM does not know of would run unconfined");
        Seccomp.Apply(SeccompPrograms.For(ThreadKind.Main, _irqfdAndIoeventfd));
        if (Log.IsEnabled(LogLevel.Info))
            Log.Info($"seccomp: {threads} threads confined; allowed system calls: {SeccompPrograms.Counts(_irqfdAndIoeventfd)}" +
                     $", {SeccompPrograms.ProcessWide(_irqfdAndIoeventfd)} distinct in the process");
    }

    /// <summary>Waits for <paramref name="countdown"/> up to <paramref name="limit"/>, calling
    /// <paramref name="slow"/> with the time waited so far after each <paramref name="report"/> without it.</summary>
    internal static bool WaitPatiently(CountdownEvent countdown, TimeSpan report, TimeSpan limit, Action<TimeSpan> slow)
    {
        var waited = TimeSpan.Zero;
        while (true)
        {
            var step = limit - waited < report ? limit - waited : report;
            if (countdown.Wait(step)) return true;
            waited += step;
            if (waited >= limit) return false;
            slow(waited);
        }
    }

    /// <summary>The Threads: line of /proc/self/status; null without /proc.</summary>
    private static int? CountThreads()
    {
        HostFile status;
        try { status = HostFile.OpenRead("/proc/self/status"); }
        catch (SysException) { return null; }
        var buffer = new byte[8192];
        int length;
        using (status) length = status.ReadUpTo(buffer, 0);
        foreach (var line in System.Text.Encoding.ASCII.GetString(buffer, 0, length).Split('\n'))
            if (line.StartsWith("Threads:", StringComparison.Ordinal) && int.TryParse(line.AsSpan(8).Trim(), out int count))
                return count;
        throw new SeccompException("cannot read the thread count from /proc/self/status");
    }
}

/// <summary>Seccomp could not be set up; the VM does not start.</summary>
public sealed class SeccompException(string message)
    : VmmException($"{message} (-disable-seccomp runs the VM without system call filters)");
