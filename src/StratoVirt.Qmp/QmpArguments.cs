using System.Diagnostics.CodeAnalysis;
using System.Text.Json;

namespace StratoVirt.Qmp;

/// <summary>What an argument member may hold, with QEMU's name for it in error texts.</summary>
public sealed class QmpType
{
    internal enum Shape { String, Boolean, Integer, Object, Any }

    internal Shape Kind { get; }
    internal string Name { get; }
    internal long Min { get; }
    internal ulong Max { get; }

    /// <summary>An object's members, in the order they are checked.</summary>
    internal QmpMember[] Members { get; }

    private QmpType(Shape kind, string name, long min = 0, ulong max = 0, QmpMember[]? members = null)
    {
        Kind = kind;
        Name = name;
        Min = min;
        Max = max;
        Members = members ?? [];
    }

    public static readonly QmpType String = new(Shape.String, "string");
    public static readonly QmpType Boolean = new(Shape.Boolean, "boolean");
    public static readonly QmpType UInt64 = new(Shape.Integer, "uint64", 0, ulong.MaxValue);
    public static readonly QmpType Int32 = new(Shape.Integer, "int32", int.MinValue, int.MaxValue);
    public static readonly QmpType UInt16 = new(Shape.Integer, "uint16", 0, ushort.MaxValue);

    /// <summary>Any value at all: members kept only for QEMU compatibility, accepted and ignored.</summary>
    public static readonly QmpType Any = new(Shape.Any, "any");

    /// <summary>An object with exactly these members (any other is refused).</summary>
    public static QmpType Object(params QmpMember[] members) => new(Shape.Object, "object", members: members);
}

/// <summary>A member of an arguments object. An optional boolean or integer may also be null, which counts as
/// absent.</summary>
public readonly record struct QmpMember(string Name, QmpType Type, bool Required)
{
    public static QmpMember Req(string name, QmpType type) => new(name, type, true);

    public static QmpMember Opt(string name, QmpType type) => new(name, type, false);
}

/// <summary>An arguments object that <see cref="QmpArguments.TryParse"/> checked against its type: each read
/// relies on that check, so a read of a member of another type than the one declared throws.</summary>
public readonly struct QmpArgs(JsonElement value)
{
    public string String(string name) => value.GetProperty(name).GetString()!;

    public string? OptionalString(string name) => Find(name, out var v) ? v.GetString() : null;

    public bool Boolean(string name) => value.GetProperty(name).GetBoolean();

    public bool? OptionalBoolean(string name) => Find(name, out var v) ? v.GetBoolean() : null;

    public ulong UInt64(string name) => value.GetProperty(name).GetUInt64();

    public int? OptionalInt32(string name) => Find(name, out var v) ? v.GetInt32() : null;

    public ushort? OptionalUInt16(string name) => Find(name, out var v) ? v.GetUInt16() : null;

    public QmpArgs Object(string name) => new(value.GetProperty(name));

    public QmpArgs? OptionalObject(string name) => Find(name, out var v) ? new QmpArgs(v) : null;

    private bool Find(string name, out JsonElement member) =>
        value.TryGetProperty(name, out member) && member.ValueKind != JsonValueKind.Null;
}

/// <summary>
/// Strict QMP arguments with QEMU's error texts. Every command's <c>arguments</c> object is checked against the
/// command's <see cref="QmpType"/>: a member the type lacks is "Parameter 'x' is unexpected", a value of the wrong
/// JSON kind "Invalid parameter type for 'x', expected: &lt;type&gt;", an integer out of the member's range
/// "Parameter 'x' expects &lt;type&gt;", and an absent required member "Parameter 'x' is missing". Nested objects
/// are checked the same way and named with dots ('file.filename').
/// </summary>
public static class QmpArguments
{
    private static readonly JsonElement EmptyObject = JsonDocument.Parse("{}").RootElement.Clone();

    /// <summary>Checks <paramref name="arguments"/> (default: the request had none, which counts as <c>{}</c>)
    /// against <paramref name="type"/>; false with QEMU's message in <paramref name="error"/>.</summary>
    public static bool TryParse(JsonElement arguments, QmpType type, out QmpArgs value, [NotNullWhen(false)] out string? error)
    {
        if (arguments.ValueKind == JsonValueKind.Undefined) arguments = EmptyObject;
        value = new QmpArgs(arguments);
        error = CheckObject(arguments, type, "");
        return error is null;
    }

    /// <summary>For commands that take no arguments: null when there are none (or <c>{}</c>), else the
    /// message naming the first unexpected one.</summary>
    public static string? CheckNone(JsonElement arguments)
    {
        if (arguments.ValueKind != JsonValueKind.Object) return null;
        foreach (var member in arguments.EnumerateObject()) return Unexpected(member.Name);
        return null;
    }

    private static string Unexpected(string path) => $"Parameter '{path}' is unexpected";

    private static string WrongType(string path, string expected) =>
        $"Invalid parameter type for '{path}', expected: {expected}";

    private static string? CheckObject(JsonElement value, QmpType type, string prefix)
    {
        if (value.ValueKind != JsonValueKind.Object)
            return prefix.Length == 0 ? "QMP input member 'arguments' must be an object" : WrongType(prefix.TrimEnd('.'), "object");
        foreach (var member in type.Members)
        {
            string path = prefix + member.Name;
            if (!value.TryGetProperty(member.Name, out var element))
            {
                if (member.Required) return $"Parameter '{path}' is missing";
                continue;
            }
            if (CheckValue(element, member, path) is { } error) return error;
        }
        foreach (var element in value.EnumerateObject())
        {
            if (!Declares(type, element.Name)) return Unexpected(prefix + element.Name);
        }
        return null;
    }

    private static bool Declares(QmpType type, string name)
    {
        foreach (var member in type.Members)
            if (member.Name == name) return true;
        return false;
    }

    private static string? CheckValue(JsonElement value, QmpMember member, string path)
    {
        var type = member.Type;
        if (value.ValueKind == JsonValueKind.Null && !member.Required && type.Kind is QmpType.Shape.Boolean or QmpType.Shape.Integer)
            return null;
        switch (type.Kind)
        {
            case QmpType.Shape.Any:
                return null;
            case QmpType.Shape.String:
                return value.ValueKind == JsonValueKind.String ? null : WrongType(path, type.Name);
            case QmpType.Shape.Boolean:
                return value.ValueKind is JsonValueKind.True or JsonValueKind.False ? null : WrongType(path, type.Name);
            case QmpType.Shape.Object:
                return CheckObject(value, type, path + ".");
            default:
                if (value.ValueKind != JsonValueKind.Number) return WrongType(path, "integer");
                if (value.TryGetInt64(out long signed))
                    return (signed >= 0 ? (ulong)signed <= type.Max : signed >= type.Min) ? null : $"Parameter '{path}' expects {type.Name}";
                if (value.TryGetUInt64(out ulong unsigned))
                    return unsigned <= type.Max ? null : $"Parameter '{path}' expects {type.Name}";
                return WrongType(path, "integer");
        }
    }
}
