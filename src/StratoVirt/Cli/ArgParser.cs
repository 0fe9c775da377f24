using StratoVirt.Devices.Options;

namespace StratoVirt.Cli;

/// <summary>How many values an option takes.</summary>
public enum Arity { Flag, Value, OptionalValue }

/// <summary>One option the command line accepts.</summary>
public sealed record OptionSpec(string Name, Arity Arity, bool Repeatable = false, string? Unsupported = null, bool Ignored = false);

/// <summary>Splits upstream StratoVirt's single-dash command line into options and values.</summary>
public static class ArgParser
{
    public static Dictionary<string, List<string>> Parse(IReadOnlyList<string> args, IReadOnlyList<OptionSpec> specs)
    {
        var byName = new Dictionary<string, OptionSpec>(specs.Count);
        foreach (var s in specs) byName.Add(s.Name, s);
        var result = new Dictionary<string, List<string>>();
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            if (arg == "--") throw new UsageException("unexpected '--': stratovirt takes no positional arguments");
            string name = arg.StartsWith("--", StringComparison.Ordinal) ? arg[1..] : arg;
            if (!name.StartsWith('-') || name.Length < 2)
                throw new UsageException($"unexpected argument '{arg}' (options start with '-')");
            if (!byName.TryGetValue(name, out var spec))
                throw new UsageException($"unknown option '{arg}' (see -help)");
            string value = "";
            switch (spec.Arity)
            {
                case Arity.Value:
                    if (i + 1 >= args.Count) throw new UsageException($"option {name} needs a value");
                    value = args[++i];
                    break;
                case Arity.OptionalValue:
                    if (i + 1 < args.Count && !args[i + 1].StartsWith('-')) value = args[++i];
                    break;
            }
            if (spec.Unsupported is not null) throw new UsageException($"option {name} {spec.Unsupported}");
            if (spec.Ignored) continue;
            if (!result.TryGetValue(name, out var values)) result[name] = values = [];
            else if (!spec.Repeatable) throw new UsageException($"option {name} is given more than once");
            values.Add(value);
        }
        return result;
    }
}
