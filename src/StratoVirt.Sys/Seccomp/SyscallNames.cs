using System.Text;

namespace StratoVirt.Sys.Seccomp;

/// <summary>x86_64 system call names and numbers (the table comes from the kernel headers).</summary>
public static partial class SyscallNames
{
    private static readonly string[] Names = Table.Split(' ');
    private static readonly Dictionary<string, int> Numbers =
        Names.Select((n, i) => (n, i)).Where(p => p.n != "-").ToDictionary(p => p.n, p => p.i, StringComparer.Ordinal);

    /// <summary>UTF-8 names, looked up without allocating (the SIGSYS handler runs in signal context).</summary>
    private static readonly byte[][] Utf8 = [.. Names.Select(n => Encoding.UTF8.GetBytes(n))];

    /// <summary>The number of <paramref name="name"/>; throws for a name this table lacks.</summary>
    public static int Number(string name) =>
        Numbers.TryGetValue(name, out int nr) ? nr : throw new ArgumentException($"unknown x86_64 system call '{name}'");

    /// <summary>The name of syscall <paramref name="nr"/>, or null when the number is unused or out of range.</summary>
    public static string? Name(int nr) => nr >= 0 && nr < Names.Length && Names[nr] != "-" ? Names[nr] : null;

    /// <summary>The UTF-8 name of <paramref name="nr"/>; empty when unknown. Allocates nothing.</summary>
    public static ReadOnlySpan<byte> Utf8Name(int nr) => nr >= 0 && nr < Utf8.Length && Names[nr] != "-" ? Utf8[nr] : default;
}
