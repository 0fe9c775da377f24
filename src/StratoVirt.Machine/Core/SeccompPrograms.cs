using System.Runtime.InteropServices;
using StratoVirt.Sys.Seccomp;

namespace StratoVirt.Machine;

/// <summary>
/// The filters of <see cref="SeccompProfile"/> compiled ahead of time. Building them (parsing the system call table,
/// merging the lists, compiling four programs) cost about 0.8 ms of CPU at every start; the programs are now data in
/// the binary (SeccompPrograms.Data.g.cs), installed as they are. A unit test (SeccompProgramsTests) compiles the
/// profile and fails when the data differs from it; STRATOVIRT_REGENERATE=1 makes it write the data instead.
/// </summary>
internal static partial class SeccompPrograms
{
    /// <summary>The program for one kind of thread (<see cref="SeccompProfile.For"/>'s, with SIGSYS as its default
    /// action), for <paramref name="abi"/> (default: this process's).</summary>
    public static ReadOnlySpan<BpfInstruction> For(ThreadKind kind, bool irqfdAndIoeventfd, SyscallAbi? abi = null)
    {
        bool arm = IsAarch64(abi);
        var instructions = arm ? Aarch64Instructions : X86_64Instructions;
        var ranges = arm ? Aarch64Ranges : X86_64Ranges;
        int i = Index(kind, irqfdAndIoeventfd);
        // Each ulong is one sock_filter in the little-endian layout of BpfInstruction (both ABIs are little-endian).
        return MemoryMarshal.Cast<ulong, BpfInstruction>(instructions[ranges[2 * i]..ranges[2 * i + 1]]);
    }

    /// <summary>"Main 40, Vcpu 29, ...": how many calls each kind of thread may make, for the log.</summary>
    public static string Counts(bool irqfdAndIoeventfd, SyscallAbi? abi = null)
    {
        var counts = IsAarch64(abi) ? Aarch64RuleCounts : X86_64RuleCounts;
        var parts = new string[SeccompProfile.Kinds.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            var kind = SeccompProfile.Kinds[i];
            parts[i] = $"{Name(kind)} {counts[Index(kind, irqfdAndIoeventfd)]}";
        }
        return string.Join(", ", parts);
    }

    private static string Name(ThreadKind kind) => kind switch
    {
        ThreadKind.Main => "Main",
        ThreadKind.Vcpu => "Vcpu",
        ThreadKind.IoThread => "IoThread",
        _ => "Runtime",
    };

    /// <summary>The number of distinct calls any thread of the process may make.</summary>
    public static int ProcessWide(bool irqfdAndIoeventfd, SyscallAbi? abi = null) =>
        (IsAarch64(abi) ? Aarch64ProcessWide : X86_64ProcessWide)[irqfdAndIoeventfd ? 1 : 0];

    /// <summary>Programs are indexed kind by kind (<see cref="SeccompProfile.Kinds"/>' order), each without and then
    /// with irqfd and ioeventfd; two indices whose programs are the same share one copy of its instructions.</summary>
    internal static int Index(ThreadKind kind, bool irqfdAndIoeventfd) => (int)kind * 2 + (irqfdAndIoeventfd ? 1 : 0);

    private static bool IsAarch64(SyscallAbi? abi) => (abi ?? SyscallAbi.Host) == SyscallAbi.Aarch64;
}
