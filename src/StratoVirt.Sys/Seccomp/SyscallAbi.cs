using System.Runtime.InteropServices;
using System.Text;

namespace StratoVirt.Sys.Seccomp;

/// <summary>
/// One system call ABI: its calls' names and numbers (tables generated from the kernel headers), the audit
/// architecture a seccomp filter checks, and the SIGSYS handler's machine code. x86_64 and aarch64 number their calls
/// differently, and aarch64 (the kernel's generic table) lacks the old calls whose newer forms glibc uses there.
/// </summary>
public sealed class SyscallAbi
{
    /// <summary>AUDIT_ARCH_X86_64 and AUDIT_ARCH_AARCH64 (linux/audit.h).</summary>
    public const uint AuditArchX86_64 = 0xC000003E, AuditArchAarch64 = 0xC00000B7;

    public static SyscallAbi X86_64 { get; } = new("x86_64", AuditArchX86_64, hasX32: true);

    public static SyscallAbi Aarch64 { get; } = new("aarch64", AuditArchAarch64, hasX32: false);

    /// <summary>The ABI this process runs.</summary>
    public static SyscallAbi Host { get; } = RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? Aarch64 : X86_64;

    public string Name { get; }

    /// <summary>The value seccomp_data.arch holds for a call through this ABI.</summary>
    public uint AuditArch { get; }

    /// <summary>Whether the x32 ABI shares the audit architecture (numbers with bit 30 set), so a filter must
    /// refuse those numbers itself.</summary>
    public bool HasX32 { get; }

    /// <summary>The table, parsed on first use, so that taking an ABI (to compare it, as the VMM does at start-up)
    /// costs nothing: the VMM's filters and SIGSYS names are compiled ahead of time, and only the compiler and the
    /// tests read the tables. Two threads that race parse it twice into equal tables.</summary>
    private Parsed? _parsed;

    private Parsed Table => _parsed ??=
        new Parsed(Encoding.ASCII.GetString(AuditArch == AuditArchX86_64 ? SyscallTables.X86_64 : SyscallTables.Aarch64));

    private sealed class Parsed
    {
        public readonly string[] Names;
        public readonly Dictionary<string, int> Numbers;

        public Parsed(string table)
        {
            Names = table.Split(' ');
            Numbers = new Dictionary<string, int>(Names.Length, StringComparer.Ordinal);
            for (int nr = 0; nr < Names.Length; nr++)
                if (Names[nr] != "-") Numbers.Add(Names[nr], nr);
        }
    }

    private SyscallAbi(string name, uint auditArch, bool hasX32)
    {
        Name = name;
        AuditArch = auditArch;
        HasX32 = hasX32;
    }

    /// <summary>The number of <paramref name="name"/>; throws for a name this ABI lacks.</summary>
    public int Number(string name) =>
        Table.Numbers.TryGetValue(name, out int nr) ? nr : throw new ArgumentException($"unknown {Name} system call '{name}'");

    public bool Has(string name) => Table.Numbers.ContainsKey(name);

    /// <summary>The name of call <paramref name="nr"/>, or null when the number is unused or out of range.</summary>
    public string? CallName(int nr)
    {
        var names = Table.Names;
        return nr >= 0 && nr < names.Length && names[nr] != "-" ? names[nr] : null;
    }

    /// <summary>One past the highest number the table names.</summary>
    public int Count => Table.Names.Length;

    public override string ToString() => Name;
}
