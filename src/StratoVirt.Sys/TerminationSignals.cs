namespace StratoVirt.Sys;

/// <summary>
/// SIGTERM, SIGINT and SIGHUP as a readable fd (signalfd) for the main loop. The signals are blocked in every
/// thread, so the kernel leaves them pending for the fd: no handler runs, and no thread is started to run managed
/// code for them (.NET's PosixSignalRegistration starts one, and more through the thread pool).
/// </summary>
public sealed unsafe class TerminationSignals : IDisposable
{
    private const int SFD_NONBLOCK = 0x800, SFD_CLOEXEC = 0x80000;
    /// <summary>sizeof(struct signalfd_siginfo); ssi_signo is its first field.</summary>
    private const int SigInfoSize = 128;
    private const int SigSetWords = 16;

    private static readonly ulong Mask = Bit(Libc.SIGTERM) | Bit(Libc.SIGINT) | Bit(Libc.SIGHUP);
    private readonly FileDescriptor _fd;

    private static ulong Bit(int signal) => 1UL << (signal - 1);

    /// <summary>Blocks the signals in the calling thread, which every thread it creates inherits, and in the
    /// runtime's finalizer thread, which exists before Main. Call it before creating any thread.
    /// <paramref name="alsoOnFinalizer"/> runs on the finalizer thread in the same visit: each visit costs a forced
    /// collection and two thread switches.</summary>
    public static void BlockInEveryThread(Action? alsoOnFinalizer = null)
    {
        BlockInCurrentThread();
        if (!FinalizerThread.Run(() =>
            {
                BlockInCurrentThread();
                alsoOnFinalizer?.Invoke();
            }, out string? error))
            throw new SysException($"blocking termination signals in the finalizer thread: {error}", Libc.EINVAL);
    }

    private static void BlockInCurrentThread()
    {
        // A whole sigset_t (glibc's is 128 bytes) on this frame; only the first word has bits.
        ulong* mask = stackalloc ulong[SigSetWords];
        mask[0] = Mask;
        int r = Libc.PthreadSigmask(Libc.SIG_BLOCK, mask, null);
        if (r != 0) throw new SysException("pthread_sigmask(SIG_BLOCK)", r);
    }

    /// <summary>The fd that becomes readable when one of the signals is pending.</summary>
    public TerminationSignals()
    {
        // A whole sigset_t on this frame, which signalfd copies.
        ulong* mask = stackalloc ulong[SigSetWords];
        mask[0] = Mask;
        _fd = new FileDescriptor(SysException.Check(Libc.SignalFd(-1, mask, SFD_NONBLOCK | SFD_CLOEXEC), "signalfd"));
    }

    public int Fd => _fd.Fd;

    /// <summary>Takes one pending signal; false when none is left.</summary>
    public bool TryTake(out int signal)
    {
        byte* info = stackalloc byte[SigInfoSize];
        // The buffer is sized for one signalfd_siginfo.
        signal = Libc.Read(_fd.Fd, info, SigInfoSize) == SigInfoSize ? *(int*)info : 0;
        return signal != 0;
    }

    public static string Name(int signal) => signal switch
    {
        Libc.SIGTERM => "SIGTERM",
        Libc.SIGINT => "SIGINT",
        Libc.SIGHUP => "SIGHUP",
        _ => $"signal {signal}",
    };

    public void Dispose() => _fd.Dispose();
}
