namespace StratoVirt.Devices.Options;

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
                else if (Allows(allowedKeys, part)) (key, value) = (part, "on"); // bare flags such as "server"
                else throw new UsageException($"option {option}: '{part}' is not key=value");
            }
            else (key, value) = (part[..eq], part[(eq + 1)..]);
            if (!Allows(allowedKeys, key))
                throw new UsageException($"option {option}: unknown parameter '{key}' (accepted: {string.Join(", ", allowedKeys)})");
            if (!_items.TryAdd(key, value)) throw new UsageException($"option {option}: parameter '{key}' is given twice");
        }
    }

    private static bool Allows(IReadOnlyCollection<string> keys, string key)
    {
        foreach (string k in keys)
            if (k == key) return true;
        return false;
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
