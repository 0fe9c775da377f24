using StratoVirt.Sys;

namespace StratoVirt.Cli;

/// <summary>A command-line mistake; the message names the option and value.</summary>
public sealed class UsageException(string message) : VmmException(message);

/// <summary>How many values an option takes.</summary>
public enum Arity { Flag, Value, OptionalValue }

/// <summary>One option the command line accepts.</summary>
public sealed record OptionSpec(string Name, Arity Arity, bool Repeatable = false, string? Unsupported = null, bool Ignored = false);

/// <summary>Splits upstream StratoVirt's single-dash command line into options and values.</summary>
public static class ArgParser
{
    public static Dictionary<string, List<string>> Parse(IReadOnlyList<string> args, IReadOnlyList<OptionSpec> specs)
    {
        var byName = specs.ToDictionary(s => s.Name);
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

/// <summary>Parses "key=value,key=value" option values, where the first item may omit its key.</summary>
public sealed class OptionValue
{
    private readonly Dictionary<string, string> _items = new(StringComparer.Ordinal);
    private readonly string _option;

    public OptionValue(string option, string text, string? defaultKey, IReadOnlyCollection<string> allowedKeys)
    {
        _option = option;
        if (text.Length == 0) throw new UsageException($"option {option} needs a value");
        var parts = text.Split(',');
        for (int i = 0; i < parts.Length; i++)
        {
            string part = parts[i];
            int eq = part.IndexOf('=');
            string key, value;
            if (eq < 0)
            {
                if (i == 0 && defaultKey is not null) (key, value) = (defaultKey, part);
                else if (allowedKeys.Contains(part)) (key, value) = (part, "on"); // bare flags such as "server"
                else throw new UsageException($"option {option}: '{part}' is not key=value");
            }
            else (key, value) = (part[..eq], part[(eq + 1)..]);
            if (!allowedKeys.Contains(key))
                throw new UsageException($"option {option}: unknown parameter '{key}' (accepted: {string.Join(", ", allowedKeys)})");
            if (!_items.TryAdd(key, value)) throw new UsageException($"option {option}: parameter '{key}' is given twice");
        }
    }

    public string? Get(string key) => _items.GetValueOrDefault(key);

    public bool Has(string key) => _items.ContainsKey(key);

    public bool GetBool(string key, bool defaultValue)
    {
        string? v = Get(key);
        return v switch
        {
            null => defaultValue,
            "on" or "true" or "yes" => true,
            "off" or "false" or "no" => false,
            _ => throw new UsageException($"option {_option}: {key}={v} must be on or off"),
        };
    }

    public int? GetInt(string key, int min, int max)
    {
        string? v = Get(key);
        if (v is null) return null;
        if (!int.TryParse(v, System.Globalization.NumberStyles.None, null, out int n))
            throw new UsageException($"option {_option}: {key}={v} is not a number");
        if (n < min || n > max) throw new UsageException($"option {_option}: {key}={v} is out of range {min}-{max}");
        return n;
    }
}
