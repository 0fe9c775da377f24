using System.Runtime.InteropServices;

namespace StratoVirt.Sys;

/// <summary>
/// Starting and reaping a child program without fork(): fork in a running .NET process keeps only the calling
/// thread, so the runtime's other threads (GC, signal handling) would be missing in the child. posix_spawn
/// execs the new program straight away instead.
/// </summary>
public static unsafe class ChildProcess
{
    /// <summary>A pipe, both ends close-on-exec.</summary>
    public static (FileDescriptor Read, FileDescriptor Write) Pipe()
    {
        int* fds = stackalloc int[2];
        // pipe2 stores exactly two fds in this frame's buffer.
        SysException.Check(Libc.Pipe2(fds, Libc.O_CLOEXEC), "pipe2");
        return (new FileDescriptor(fds[0]), new FileDescriptor(fds[1]));
    }

    /// <summary>
    /// Starts <paramref name="path"/> with <paramref name="argv"/> and <paramref name="environment"/> ("NAME=value")
    /// in a new session, stdin and stdout on /dev/null and stderr on <paramref name="stderrFd"/>; returns its pid.
    /// </summary>
    public static int SpawnDetached(string path, IReadOnlyList<string> argv, IReadOnlyList<string> environment, int stderrFd) =>
        Start(path, argv, environment, stderrFd, 2, detached: true);

    /// <summary>Starts <paramref name="path"/> with the caller's stdio and session, and <paramref name="fdToPass"/>
    /// as the child's fd <paramref name="childFd"/>; returns its pid.</summary>
    /// <remarks>glibc spawns with clone(CLONE_VM|CLONE_VFORK) and execs at once: no managed code runs in the
    /// child, which also makes this how a .NET process starts the first process of a new PID namespace.</remarks>
    public static int Spawn(string path, IReadOnlyList<string> argv, IReadOnlyList<string> environment, int fdToPass, int childFd) =>
        Start(path, argv, environment, fdToPass, childFd, detached: false);

    private static int Start(string path, IReadOnlyList<string> argv, IReadOnlyList<string> environment, int fdToPass,
        int childFd, bool detached)
    {
        // Every native string and pointer array lives until posix_spawn has returned; the child execs a copy.
        using var nativeArgv = new NativeStringArray(argv);
        using var nativeEnv = new NativeStringArray(environment);
        using var paths = new NativeStringArray([path, "/dev/null"]);
        byte* actions = stackalloc byte[Libc.SpawnFileActionsSize];
        byte* attr = stackalloc byte[Libc.SpawnAttrSize];
        bool actionsReady = false, attrReady = false;
        try
        {
            // actions and attr are opaque glibc objects on this frame, initialised before use and destroyed below.
            Check(Libc.PosixSpawnFileActionsInit(actions), "posix_spawn_file_actions_init");
            actionsReady = true;
            Check(Libc.PosixSpawnAttrInit(attr), "posix_spawnattr_init");
            attrReady = true;
            if (detached)
            {
                byte* devNull = paths[1];
                Check(Libc.PosixSpawnFileActionsAddOpen(actions, 0, devNull, Libc.O_RDONLY, 0), "posix_spawn_file_actions_addopen");
                Check(Libc.PosixSpawnFileActionsAddOpen(actions, 1, devNull, Libc.O_WRONLY, 0), "posix_spawn_file_actions_addopen");
                Check(Libc.PosixSpawnAttrSetFlags(attr, Libc.POSIX_SPAWN_SETSID), "posix_spawnattr_setflags");
            }
            Check(Libc.PosixSpawnFileActionsAddDup2(actions, fdToPass, childFd), "posix_spawn_file_actions_adddup2");

            int pid;
            Check(Libc.PosixSpawn(&pid, paths[0], actions, attr, nativeArgv.Pointer, nativeEnv.Pointer), $"start {path}");
            return pid;
        }
        finally
        {
            if (actionsReady) Libc.PosixSpawnFileActionsDestroy(actions);
            if (attrReady) Libc.PosixSpawnAttrDestroy(attr);
        }

        static void Check(int errno, string what)
        {
            if (errno != 0) throw new SysException(what, errno);
        }
    }

    /// <summary>Waits for the child to end; returns its exit status, or 128 + the signal that killed it.</summary>
    public static int WaitForExit(int pid)
    {
        int status;
        // status is a local of this frame that waitpid fills.
        while (Libc.WaitPid(pid, &status, 0) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno != Libc.EINTR) throw new SysException($"waitpid {pid}", errno);
        }
        int signal = status & 0x7F;
        return signal == 0 ? (status >> 8) & 0xFF : 128 + signal;
    }

    /// <summary>Points <paramref name="fd"/> at /dev/null (a daemon's standard streams once it is detached).</summary>
    public static void RedirectToDevNull(int fd)
    {
        using var devNull = FileDescriptor.Open("/dev/null", Libc.O_RDWR);
        SysException.Check(Libc.Dup2(devNull.Fd, fd), $"dup2 /dev/null to fd {fd}");
    }

    /// <summary>Reads what is there (blocking): the byte count, 0 at end of file; throws on errors.</summary>
    public static int Read(FileDescriptor fd, Span<byte> buffer)
    {
        int n = FileIo.Read(fd.Fd, buffer);
        return n >= 0 ? n : throw new SysException("read", -n);
    }
}
