using System.Text;
using StratoVirt.Kvm;
using StratoVirt.Tests.Lab;

namespace StratoVirt.Tests.Native;

/// <summary>
/// Runs a KVM case on this host's /dev/kvm when it works, and otherwise takes the result of the same case from
/// the nested lab's single boot (machines of this project's kind may have no usable /dev/kvm).
/// </summary>
public static class KvmRunner
{
    private static readonly Lazy<bool> HostKvm = new(ProbeHostKvm);

    public static bool HostHasKvm => HostKvm.Value;

    /// <summary>
    /// The GC knobs every VMM in the native and lab runs gets, so that collections of every generation happen
    /// often and each one runs under the seccomp lists: a 64 KiB gen0 budget, a 4 KiB gen1 budget, and a "high
    /// memory load" threshold of 1 % so that the memory-load check turns collections into full ones. NativeAOT
    /// reads them as hex without 0x, and the names are case-sensitive.
    /// </summary>
    public static readonly IReadOnlyDictionary<string, string> GcStress = new Dictionary<string, string>
    {
        ["DOTNET_GCgen0size"] = "10000",
        ["DOTNET_GCGen1MaxBudget"] = "1000",
        ["DOTNET_GCHighMemPercent"] = "1",
    };

    private static bool ProbeHostKvm()
    {
        try
        {
            using var kvm = KvmSystem.Open();
            using var vm = kvm.CreateVm();
            return true;
        }
        catch (Exception e) when (e is KvmUnavailableException or StratoVirt.Sys.SysException)
        {
            return false;
        }
    }

    public static VmmResult Run(string name, PayloadFixture payloads)
    {
        var c = KvmCases.Get(name);
        return HostHasKvm ? RunLocally(c, payloads) : LabSession.Instance.KvmCase(c.Name);
    }

    private static VmmResult RunLocally(VmmCase c, PayloadFixture payloads)
    {
        var args = c.Args.Select(a => Resolve(a, payloads.Dir)).ToArray();
        var env = new Dictionary<string, string>(GcStress);
        if (c.WithInfoLog) env["STRATOVIRT_LOG_LEVEL"] = "info";
        if (c.SeccompProbe is { } probe) env["STRATOVIRT_SECCOMP_PROBE"] = probe;
        if (c.Wrap is null) return VmmProcess.Run(args, TimeSpan.FromSeconds(c.TimeoutSeconds), env);
        env["QMP_SEND"] = payloads.QmpSend;
        env["QMP_FUZZ"] = payloads.QmpFuzz;
        return VmmProcess.RunCommand("sh", ["-c", c.Wrap(Quote(VmmProcess.Binary, args))],
            TimeSpan.FromSeconds(c.TimeoutSeconds), env);
    }

    /// <summary>Replaces {payload:name} with the file's path under <paramref name="dir"/>.</summary>
    public static string Resolve(string arg, string dir) =>
        arg.StartsWith("{payload:", StringComparison.Ordinal) ? Path.Combine(dir, arg[9..^1]) : arg;

    /// <summary>
    /// A shell command that runs <paramref name="command"/> in a user namespace (as the overflow uid) with a
    /// private /dev/kvm node of mode 0000: without capabilities in the initial namespace even the owner gets EACCES.
    /// </summary>
    public static string WithoutKvmPermission(string command) =>
        "unshare -m sh -c 'mknod /tmp/kvm-noperm-$$ c 10 232 && chmod 000 /tmp/kvm-noperm-$$ && mount --bind /tmp/kvm-noperm-$$ /dev/kvm " +
        $"&& rm /tmp/kvm-noperm-$$ && unshare -U {command.Replace("'", "'\\''")}'";

    /// <summary>Single-quotes each word for sh.</summary>
    public static string Quote(string file, IEnumerable<string> args)
    {
        var sb = new StringBuilder(Word(file));
        foreach (var a in args) sb.Append(' ').Append(Word(a));
        return sb.ToString();
    }

    public static string Word(string s) => "'" + s.Replace("'", "'\\''") + "'";
}
