using System.Globalization;

namespace StratoVirt.Tests.Lab;

/// <summary>One scenario of a lab run: what scripts/lab/outer/lib.sh printed between @@BEGIN and @@END.</summary>
/// <param name="Name">The scenario's name.</param>
/// <param name="ExitCode">The command's exit status (124: killed by the scenario's timeout); null when the log
/// ends before the scenario's @@END.</param>
/// <param name="WallMs">Wall time of the command in the outer VM, in ms; null without @@END.</param>
/// <param name="InitMs">Wall time from the command's start to its first GUEST-INIT line, in ms; null when none
/// appeared.</param>
/// <param name="Output">The command's output lines (without CRs; the lab's own markers left out).</param>
public sealed record LabScenario(string Name, int? ExitCode, long? WallMs, long? InitMs, IReadOnlyList<string> Output)
{
    /// <summary>Exit status the lab reports for a command its timeout killed.</summary>
    public const int TimeoutExitCode = 124;

    public bool Ended => ExitCode is not null;

    public bool TimedOut => ExitCode == TimeoutExitCode;

    /// <summary>Failed with a nested guest's triple fault in its output: the lab's emulated SVM faults guests at
    /// random (scripts/lab/outer/lib.sh retries these, and timeouts).</summary>
    public bool FailedWithTripleFault => ExitCode is not (null or 0) && OutputContains("guest triple fault");

    /// <summary>The guest's own uptime, in seconds, when its /init started (from "GUEST-INIT uptime=...").</summary>
    public double? GuestUptimeAtInit
    {
        get
        {
            string? value = GuestMarker("GUEST-INIT");
            const string Key = "uptime=";
            if (value is null || !value.StartsWith(Key, StringComparison.Ordinal))
            {
                return null;
            }
            return double.TryParse(value.AsSpan(Key.Length), NumberStyles.Float, CultureInfo.InvariantCulture,
                out double seconds) ? seconds : null;
        }
    }

    /// <summary>The rest of the first output line that holds <paramref name="marker"/> and a space (e.g. "GUEST-CPUS"
    /// gives "2"), or null. The marker may follow other text that is not part of a longer name: the guest's console
    /// and the host script share one output, so a host line can land after a guest line's text before its
    /// newline.</summary>
    public string? GuestMarker(string marker)
    {
        foreach (string line in Output)
        {
            int at = line.IndexOf(marker + " ", StringComparison.Ordinal);
            if (at < 0 || (at > 0 && (char.IsLetter(line[at - 1]) || line[at - 1] == '-'))) continue;
            return line[(at + marker.Length + 1)..].Trim();
        }
        return null;
    }

    /// <summary>The whole output, one line per line, for assertion messages.</summary>
    public string Text => string.Join('\n', Output);

    /// <summary>Asserts that <paramref name="marker"/>'s value (see <see cref="GuestMarker"/>) is
    /// <paramref name="expected"/>, showing the whole output when it is not.</summary>
    public void AssertMarker(string marker, string expected) =>
        Assert.True(GuestMarker(marker) == expected,
            $"{marker}: expected '{expected}', got '{GuestMarker(marker)}'\n{Text}");

    /// <summary>Asserts that the VMM's closing report says KVM queued more than <paramref name="atLeast"/> of the
    /// console's transmit writes (the serial port's coalesced zone), with the zone added at least once.</summary>
    public void AssertSerialWritesQueued(long atLeast)
    {
        var line = System.Text.RegularExpressions.Regex.Match(Text,
            @"serial port: (\d+) transmit writes queued by KVM instead of exiting \(zone added (\d+) times\)");
        Assert.True(line.Success, Text);
        Assert.True(long.Parse(line.Groups[1].Value) > atLeast && int.Parse(line.Groups[2].Value) >= 1, line.Value);
    }

    /// <summary>Whether some output line contains <paramref name="text"/>.</summary>
    public bool OutputContains(string text)
    {
        foreach (string line in Output)
        {
            if (line.Contains(text, StringComparison.Ordinal))
            {
                return true;
            }
        }
        return false;
    }
}

/// <summary>A parsed console log of scripts/lab/run.sh: the outer VM's markers and the scenario results.</summary>
public sealed class LabLog
{
    private readonly Dictionary<string, LabScenario> _byName = new(StringComparer.Ordinal);

    private LabLog(IReadOnlyList<string> lines)
    {
        Lines = lines;
    }

    /// <summary>Every console line, without its CRs.</summary>
    public IReadOnlyList<string> Lines { get; }

    /// <summary>Scenarios in the order they ran.</summary>
    public IReadOnlyList<LabScenario> Scenarios { get; private set; } = [];

    /// <summary>"@@LAB KVM-OK": the outer VM had /dev/kvm.</summary>
    public bool KvmOk { get; private set; }

    /// <summary>"@@LAB KVM-MISSING": the outer VM had no /dev/kvm.</summary>
    public bool KvmMissing { get; private set; }

    /// <summary>"@@LAB DONE": every scenario ran and the outer VM was about to power off.</summary>
    public bool Done { get; private set; }

    /// <summary>The outer VM's uptime, in seconds, when its /init started ("@@LAB INIT uptime=...").</summary>
    public double? OuterInitUptime { get; private set; }

    /// <summary>Modules the outer VM failed to load ("@@LAB INSMOD-FAILED ...").</summary>
    public IReadOnlyList<string> FailedModules { get; private set; } = [];

    /// <summary>"@@NOTE ..." lines, without the prefix.</summary>
    public IReadOnlyList<string> Notes { get; private set; } = [];

    /// <summary>How many times each scenario ran (more than once when the lab retried it after a timeout).</summary>
    private readonly Dictionary<string, int> _attempts = new(StringComparer.Ordinal);

    /// <summary>How many times the named scenario ran; 0 when it never did.</summary>
    public int AttemptsOf(string name) => _attempts.GetValueOrDefault(name);

    /// <summary>The scenario with this name (its last run, if it ran more than once).</summary>
    public LabScenario this[string name] =>
        _byName.TryGetValue(name, out LabScenario? s) ? s : throw new KeyNotFoundException(
            $"no scenario '{name}' in the lab log (have: {string.Join(", ", _byName.Keys)})");

    public bool TryGetScenario(string name, out LabScenario scenario) =>
        _byName.TryGetValue(name, out scenario!);

    public static LabLog Load(string path) => Parse(File.ReadAllText(path));

    public static LabLog Parse(string text)
    {
        string[] raw = text.Split('\n');
        var lines = new List<string>(raw.Length);
        foreach (string line in raw)
        {
            lines.Add(line.TrimEnd('\r'));
        }
        if (lines.Count > 0 && lines[^1].Length == 0)
        {
            lines.RemoveAt(lines.Count - 1);
        }

        var log = new LabLog(lines);
        var scenarios = new List<LabScenario>();
        var notes = new List<string>();
        var failedModules = new List<string>();
        string? current = null;
        List<string> output = [];
        long? initMs = null;

        void Close(int? rc, long? wallMs)
        {
            var scenario = new LabScenario(current!, rc, wallMs, initMs, output);
            scenarios.Add(scenario);
            log._byName[scenario.Name] = scenario;
            log._attempts[scenario.Name] = log.AttemptsOf(scenario.Name) + 1;
            current = null;
            output = [];
            initMs = null;
        }

        foreach (string line in lines)
        {
            string marker = StripLeadingEscapes(line);
            if (!marker.StartsWith("@@", StringComparison.Ordinal))
            {
                if (current is not null)
                {
                    output.Add(line);
                }
                continue;
            }
            string[] words = marker.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            switch (words[0])
            {
                case "@@BEGIN" when words.Length >= 2:
                    if (current is not null)
                    {
                        Close(null, null);
                    }
                    current = words[1];
                    break;
                case "@@INIT" when words.Length >= 2 && words[1] == current:
                    initMs = LongValue(words, "ms");
                    break;
                case "@@END" when words.Length >= 2 && words[1] == current:
                    long? rc = LongValue(words, "rc");
                    Close(rc is null ? null : (int)rc.Value, LongValue(words, "wall_ms"));
                    break;
                case "@@NOTE":
                    notes.Add(marker.Length > 7 ? marker[7..] : "");
                    break;
                case "@@LAB" when words.Length >= 2:
                    switch (words[1])
                    {
                        case "KVM-OK": log.KvmOk = true; break;
                        case "KVM-MISSING": log.KvmMissing = true; break;
                        case "DONE": log.Done = true; break;
                        case "INSMOD-FAILED" when words.Length >= 3: failedModules.Add(words[2]); break;
                        case "INIT":
                            string? uptime = Value(words, "uptime");
                            if (double.TryParse(uptime, NumberStyles.Float, CultureInfo.InvariantCulture, out double s))
                            {
                                log.OuterInitUptime = s;
                            }
                            break;
                    }
                    break;
                default:
                    // Not one of ours (or malformed): keep it as output.
                    if (current is not null)
                    {
                        output.Add(line);
                    }
                    break;
            }
        }
        if (current is not null)
        {
            Close(null, null);
        }

        log.Scenarios = scenarios;
        log.Notes = notes;
        log.FailedModules = failedModules;
        return log;
    }

    /// <summary>The log of a boot that ran what <paramref name="earlier"/>'s boot left unfinished, or ran again what
    /// it finished badly, read as one run: the earlier boot's finished scenarios, then everything the later boot ran.
    /// A scenario is read from its last attempt that ended (one the later boot did not finish leaves the earlier
    /// result standing); the outer VM's state (KVM, DONE, modules) is the later boot's.</summary>
    public static LabLog Resume(LabLog earlier, LabLog later)
    {
        var log = new LabLog([.. earlier.Lines, .. later.Lines]);
        var scenarios = earlier.Scenarios.Where(s => s.Ended).Concat(later.Scenarios).ToList();
        foreach (var s in scenarios)
        {
            if (s.Ended || !log._byName.ContainsKey(s.Name)) log._byName[s.Name] = s;
            log._attempts[s.Name] = log.AttemptsOf(s.Name) + 1;
        }
        log.Scenarios = scenarios;
        log.Notes = [.. earlier.Notes, .. later.Notes];
        log.FailedModules = later.FailedModules;
        log.KvmOk = later.KvmOk;
        log.KvmMissing = later.KvmMissing;
        log.Done = later.Done;
        log.OuterInitUptime = later.OuterInitUptime;
        return log;
    }

    /// <summary>A one-line summary per scenario, for test failure messages.</summary>
    public string Summary()
    {
        var parts = new List<string>
        {
            $"kvm={(KvmOk ? "ok" : KvmMissing ? "missing" : "?")} done={Done}",
        };
        foreach (LabScenario s in Scenarios)
        {
            parts.Add($"{s.Name}: rc={s.ExitCode?.ToString(CultureInfo.InvariantCulture) ?? "none"} " +
                $"wall_ms={s.WallMs?.ToString(CultureInfo.InvariantCulture) ?? "?"} " +
                $"init_ms={s.InitMs?.ToString(CultureInfo.InvariantCulture) ?? "none"} lines={s.Output.Count}");
        }
        return string.Join(Environment.NewLine, parts);
    }

    private static string? Value(string[] words, string key)
    {
        foreach (string word in words)
        {
            if (word.Length > key.Length && word[key.Length] == '=' && word.StartsWith(key, StringComparison.Ordinal))
            {
                return word[(key.Length + 1)..];
            }
        }
        return null;
    }

    private static long? LongValue(string[] words, string key) =>
        long.TryParse(Value(words, key), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long v)
            ? v : null;

    // Firmware leaves terminal resets and the like on the console ("\x1bc\x1b[?7l\x1b[2J@@LAB INIT ..."): drop
    // escape sequences and control characters at the start of a line so that markers are found.
    private static string StripLeadingEscapes(string line)
    {
        int i = 0;
        while (i < line.Length)
        {
            char c = line[i];
            if (c == '\x1b' && i + 1 < line.Length && line[i + 1] == '[')
            {
                // CSI: parameters and intermediates, then one final byte in @..~.
                i += 2;
                while (i < line.Length && (line[i] < '@' || line[i] > '~'))
                {
                    i++;
                }
                i++;
            }
            else if (c == '\x1b')
            {
                i += 2;
            }
            else if (c < ' ')
            {
                i++;
            }
            else
            {
                break;
            }
        }
        return i == 0 ? line : i >= line.Length ? "" : line[i..];
    }
}
