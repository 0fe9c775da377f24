using System.Text;

namespace Ozone;

/// <summary>One line of /proc/self/mountinfo: where something is mounted, its file system type and its options.</summary>
public sealed record MountEntry(string MountPoint, string FsType, string SuperOptions);

/// <summary>Reads /proc/self/mountinfo (proc(5)): fields 5 (mount point), and after the "-" separator the type and super options.</summary>
public static class MountTable
{
    public const string Path = "/proc/self/mountinfo";

    public static string Read() => SandboxCalls.ReadText(Path);

    public static List<MountEntry> Parse(string text)
    {
        var list = new List<MountEntry>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var fields = line.Split(' ');
            int dash = fields.Length > 6 ? Array.IndexOf(fields, "-", 6) : -1;
            if (dash < 0 || dash + 3 >= fields.Length) continue;
            list.Add(new MountEntry(Unescape(fields[4]), fields[dash + 1], fields[dash + 3]));
        }
        return list;
    }

    /// <summary>The mount points at or below <paramref name="dir"/>, deepest (most recent) last.</summary>
    public static List<string> Below(string text, string dir)
    {
        var below = new List<string>();
        foreach (var m in Parse(text))
            if (m.MountPoint == dir || m.MountPoint.StartsWith(dir + "/", StringComparison.Ordinal)) below.Add(m.MountPoint);
        return below;
    }

    /// <summary>Undoes the kernel's octal escapes (\040 for a space, \011, \012, \134).</summary>
    private static string Unescape(string s)
    {
        if (!s.Contains('\\')) return s;
        var sb = new StringBuilder();
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == '\\' && IsOctal(s, i + 1))
            {
                sb.Append((char)Convert.ToInt32(s.Substring(i + 1, 3), 8));
                i += 3;
            }
            else sb.Append(s[i]);
        }
        return sb.ToString();
    }

    private static bool IsOctal(string s, int at) =>
        at + 3 <= s.Length && s[at] is >= '0' and <= '7' && s[at + 1] is >= '0' and <= '7' && s[at + 2] is >= '0' and <= '7';
}
