namespace StratoVirt.Sys.Seccomp;

/// <summary>One allowed system call, optionally only for some values of one argument: with <see cref="Arg"/> set,
/// the call passes when the argument's upper 32 bits are zero and (its lower 32 bits &amp; <see cref="Mask"/>)
/// equals one of <see cref="Values"/>.</summary>
public sealed record SyscallRule(string Name, int Arg = -1, uint Mask = uint.MaxValue, IReadOnlyList<uint>? Values = null)
{
    public static SyscallRule Allow(string name) => new(name);

    /// <summary>Allows <paramref name="name"/> only when argument <paramref name="arg"/> is one of <paramref name="values"/>.</summary>
    public static SyscallRule AllowIf(string name, int arg, params uint[] values) => new(name, arg, uint.MaxValue, values);

    /// <summary>Allows <paramref name="name"/> only when (argument <paramref name="arg"/> &amp; <paramref name="mask"/>)
    /// is one of <paramref name="values"/>.</summary>
    public static SyscallRule AllowMasked(string name, int arg, uint mask, params uint[] values) => new(name, arg, mask, values);
}

/// <summary>A classic-BPF instruction (struct sock_filter).</summary>
public readonly record struct BpfInstruction(ushort Code, byte JumpTrue, byte JumpFalse, uint K);

/// <summary>
/// An allow-list seccomp filter for one ABI (x86_64 or aarch64), compiled to classic BPF by hand: check the
/// architecture, refuse x86_64's x32 numbers, then one block per allowed call — a match either returns ALLOW or,
/// when its argument check fails, the default action; a call no block matches gets the default action.
/// </summary>
public sealed class SeccompFilter
{
    public const uint RetKillProcess = 0x80000000, RetTrap = 0x00030000, RetAllow = 0x7fff0000;

    // Instruction classes and modes (linux/bpf_common.h).
    public const ushort LdWAbs = 0x20, JmpJeqK = 0x15, JmpJgeK = 0x35, AluAndK = 0x54, RetK = 0x06;

    // struct seccomp_data offsets.
    public const uint NrOffset = 0, ArchOffset = 4, ArgsOffset = 16;

    private const uint X32SyscallBit = 0x40000000;

    public IReadOnlyList<SyscallRule> Rules { get; }

    /// <summary>The ABI whose numbers the program checks.</summary>
    public SyscallAbi Abi { get; }

    private readonly int[] _numbers;

    /// <summary>A filter for <paramref name="abi"/> (default: this process's).</summary>
    public SeccompFilter(IEnumerable<SyscallRule> rules, SyscallAbi? abi = null)
    {
        Rules = [.. rules];
        Abi = abi ?? SyscallAbi.Host;
        _numbers = new int[Rules.Count];
        var numbers = new HashSet<int>();
        for (int i = 0; i < Rules.Count; i++)
        {
            var r = Rules[i];
            int nr = _numbers[i] = Abi.Number(r.Name);
            if (!numbers.Add(nr)) throw new ArgumentException($"system call {r.Name} has more than one rule");
            if (r.Arg is < -1 or > 5) throw new ArgumentException($"{r.Name}: argument index {r.Arg} is not 0-5");
            if (r.Arg >= 0 && r.Values is not { Count: > 0 })
                throw new ArgumentException($"{r.Name}: an argument check needs at least one value");
        }
    }

    /// <summary>The distinct system calls this filter lets through (in any form).</summary>
    public IReadOnlyList<string> AllowedNames
    {
        get
        {
            var names = new string[Rules.Count];
            for (int i = 0; i < names.Length; i++) names[i] = Rules[i].Name;
            return names;
        }
    }

    private BpfInstruction[]? _trapProgram;

    /// <summary>The program whose default action is SIGSYS, compiled once.</summary>
    public BpfInstruction[] TrapProgram => _trapProgram ??= Compile(RetTrap);

    /// <summary>The BPF program; calls outside the list get <paramref name="defaultAction"/>.</summary>
    public BpfInstruction[] Compile(uint defaultAction)
    {
        var program = new List<BpfInstruction>
        {
            new(LdWAbs, 0, 0, ArchOffset),
            new(JmpJeqK, 1, 0, Abi.AuditArch),
            new(RetK, 0, 0, RetKillProcess),
            new(LdWAbs, 0, 0, NrOffset),
        };
        if (Abi.HasX32)
        {
            program.Add(new(JmpJgeK, 0, 1, X32SyscallBit));
            program.Add(new(RetK, 0, 0, RetKillProcess));
        }
        for (int i = 0; i < Rules.Count; i++)
        {
            var rule = Rules[i];
            var block = Block(rule, defaultAction);
            if (block.Count > byte.MaxValue)
                throw new ArgumentException($"{rule.Name}: too many values for one BPF block");
            program.Add(new(JmpJeqK, 0, (byte)block.Count, (uint)_numbers[i]));
            program.AddRange(block);
        }
        program.Add(new(RetK, 0, 0, defaultAction));
        if (program.Count > 4096) throw new ArgumentException($"the filter needs {program.Count} BPF instructions; the kernel takes 4096");
        return [.. program];
    }

    /// <summary>What runs once the call number matched (A still holds the number).</summary>
    private static List<BpfInstruction> Block(SyscallRule rule, uint defaultAction)
    {
        if (rule.Arg < 0) return [new(RetK, 0, 0, RetAllow)];
        uint low = ArgsOffset + 8 * (uint)rule.Arg, high = low + 4;
        var values = rule.Values!;
        var block = new List<BpfInstruction>
        {
            new(LdWAbs, 0, 0, high),
            // Upper half non-zero: jump over the low-half checks to the default return.
            new(JmpJeqK, 0, (byte)(values.Count + 1 + (rule.Mask == uint.MaxValue ? 0 : 1)), 0),
            new(LdWAbs, 0, 0, low),
        };
        if (rule.Mask != uint.MaxValue) block.Add(new(AluAndK, 0, 0, rule.Mask));
        for (int i = 0; i < values.Count; i++)
            block.Add(new(JmpJeqK, (byte)(values.Count - i), 0, values[i])); // a match jumps to the ALLOW at the end
        block.Add(new(RetK, 0, 0, defaultAction));
        block.Add(new(RetK, 0, 0, RetAllow));
        return block;
    }
}
