namespace StratoVirt.Sys.Seccomp;

/// <summary>x86_64 system call names and numbers (the table comes from the kernel headers).</summary>
public static partial class SyscallNames
{
    private static readonly string[] Names = Table.Split(' ');
    private static readonly Dictionary<string, int> Numbers =
        Names.Select((n, i) => (n, i)).Where(p => p.n != "-").ToDictionary(p => p.n, p => p.i, StringComparer.Ordinal);

    /// <summary>The number of <paramref name="name"/>; throws for a name this table lacks.</summary>
    public static int Number(string name) =>
        Numbers.TryGetValue(name, out int nr) ? nr : throw new ArgumentException($"unknown x86_64 system call '{name}'");

    /// <summary>The name of syscall <paramref name="nr"/>, or null when the number is unused or out of range.</summary>
    public static string? Name(int nr) => nr >= 0 && nr < Names.Length && Names[nr] != "-" ? Names[nr] : null;

    /// <summary>One past the highest number the table names.</summary>
    public static int Count => Names.Length;
}
