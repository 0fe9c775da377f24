using System.Runtime.InteropServices;
using System.Text;
using StratoVirt.Cli;
using StratoVirt.Devices.Options;
using StratoVirt.Machine;
using StratoVirt.Qmp;
using StratoVirt.Sys;
using StratoVirt.Virtio.Devices;

namespace StratoVirt;

/// <summary>The stratovirt executable: parse the upstream-style command line, build the microVM, run it.</summary>
public static class Program
{
    public static int Main(string[] args)
    {
        ProcessClock.MarkStart();
        bool daemon = Daemon.TakeChildMarker();
        try
        {
            if (daemon) Daemon.DetachStandardStreams();
            var parsed = ArgParser.Parse(args, Options.Specs);
            if (Options.WantsHelp(parsed)) { Log.WriteRaw(1, Usage); return 0; }
            if (Options.WantsVersion(parsed)) { Log.WriteRaw(1, $"StratoVirt {Product.Version} (C# implementation)\n"); return 0; }
            var options = Options.FromArgs(parsed, Libc.HostRamBytes());
            if (options.PidFile is not null && !options.Daemonize)
                throw new UsageException("option -pidfile must be used together with -daemonize");
            if (options.Daemonize && !daemon) return Daemon.Start(args, options.PidFile);
            SetUpLogging(options);
            return Run(options, daemon);
        }
        catch (VmmException e)
        {
            Log.Error(e.Message);
            Log.WriteRaw(2, $"stratovirt: {e.Message}\n");
            return 1;
        }
        catch (Exception e)
        {
            // A defect, not a user error: still one line, a failure status, and the VM's cleanup has run.
            Log.Error($"internal error: {e}");
            Log.WriteRaw(2, $"stratovirt: internal error: {e.GetType().Name}: {e.Message}\n");
            return 1;
        }
    }

    private static int Run(Options options, bool daemon)
    {
        var config = options.Machine;
        // The aarch64 build has the microVM only.
        if (RuntimeInformation.ProcessArchitecture == Architecture.Arm64 && config.Type == MachineType.Q35)
            throw new UsageException("-machine q35 is an x86_64 machine; the aarch64 build has the microVM only");
        // As upstream: the pid file exists from before the VM is built until the process ends.
        using var pidFile = options.PidFile is { } path ? PidFile.Create(path, Libc.GetPid()) : null;
        // Before any thread of the VM exists, so that every thread inherits the mask (see VirtualMachine.Run).
        VirtualMachine.PrepareProcessThreads(config.Seccomp);
        using var vm = config.Type == MachineType.Q35 ? Q35Builder.Build(config) : MicroVmBuilder.Build(config);
        using var qmp = options.Monitors.Count > 0 ? new QmpServer(options.Monitors, vm.MainLoop, vm, vm.Hotplug) : null;
        if (qmp is not null) vm.Events += qmp.Send;
        if (Log.IsEnabled(LogLevel.Info))
            Log.Info($"VM {config.Name}: {config.Cpus.Count} vCPU(s), {config.MemorySize >> 20} MiB, {(config.KernelPath is { } k ? $"kernel {k}" : "firmware " + config.Pflash[0].Path)}");
        if (daemon) Daemon.ReportReady();
        var exit = vm.Run();
        // The ending events are queued; a client that does not read them gets at most this long.
        qmp?.FlushOutput(QmpFlushBound);
        if (exit.IsError)
        {
            Log.Error(exit.Reason);
            Log.WriteRaw(2, $"stratovirt: {exit.Reason}\n");
        }
        else
        {
            Log.Info($"VM {config.Name} stopped: {exit.Reason}");
        }
        // How often the runtime collected (each collection runs under the seccomp lists; the tests force many).
        if (Log.IsEnabled(LogLevel.Info))
            Log.Info($"gc: {GC.CollectionCount(0)} gen0, {GC.CollectionCount(1)} gen1, {GC.CollectionCount(2)} gen2 collections");
        return exit.Code;
    }

    /// <summary>How long the last reply and events may take to reach a QMP client that does not read them.</summary>
    private static readonly TimeSpan QmpFlushBound = TimeSpan.FromMilliseconds(500);

    private static void SetUpLogging(Options options)
    {
        if (!options.LogEnabled) return;
        string? env = Environment.GetEnvironmentVariable("STRATOVIRT_LOG_LEVEL");
        var level = Log.ParseLevel(env ?? "error")
                    ?? throw new UsageException($"STRATOVIRT_LOG_LEVEL={env} is not one of trace, debug, info, warn, error");
        int fd = 2;
        if (options.LogFile is { } path)
        {
            fd = Libc.Open(path, Libc.O_WRONLY | Libc.O_CREAT | Libc.O_APPEND | Libc.O_CLOEXEC, 0x180 /* 0600 */);
            if (fd < 0) throw SysException.Last($"open log file {path}");
        }
        Log.Enable(fd, level);
    }

    /// <summary>-help: the machine's options, then each registered device type's, then the process's.</summary>
    private static string Usage => $"""
        Usage: stratovirt -machine microvm -kernel <file> [options]

        Machine:
          -machine [type=]microvm|q35[,dump-guest-core=on|off][,acpi=on|off]
          -name <name>               VM name
          -m [size=]<n>[K|M|G]       guest RAM (default 256 MiB; no unit means MiB)
          -smp [cpus=]<n>[,maxcpus=][,sockets=][,dies=][,clusters=][,cores=][,threads=]   1-254 vCPUs
          -accel kvm  -cpu host
        Boot:
          -kernel <bzImage|vmlinux.bin|vmlinux>
          -initrd <file>
          -append <kernel command line>
          -drive file=<OVMF_CODE.fd>,if=pflash,unit=0,readonly=true  -drive file=<OVMF_VARS.fd>,if=pflash,unit=1
                                     q35: UEFI firmware (then -kernel is optional; a -device's bootindex=<n> orders it)
        Devices:
          -serial chardev:<c>|stdio|pty|file,path=<f>|socket,path=<p>,server,nowait
                                     16550 UART at 0x3f8, IRQ 4 (one)
          -chardev stdio|pty|file,path=<f>|socket,path=<p>,server,nowait,id=<c>
        {DeviceUsage()}  -object iothread,id=<t>    an event-loop thread for the devices that name it
        Process:
          -D [logfile]               log to the file, or stderr (level from STRATOVIRT_LOG_LEVEL)
          -daemonize                 run in the background; returns once the VM is set up
          -pidfile <file>            with -daemonize: write the daemon's pid there (removed at exit)
          -disable-seccomp
          -no-reboot                 q35: a reset ends the VM (exit 0) instead of booting it again
          -version, -help

        """;

    /// <summary>The registered device types' -help lines, indented, one a line.</summary>
    private static string DeviceUsage()
    {
        var text = new StringBuilder();
        foreach (string line in VirtioDeviceRegistry.Default.Usage) text.Append("  ").Append(line).Append('\n');
        return text.ToString();
    }
}
