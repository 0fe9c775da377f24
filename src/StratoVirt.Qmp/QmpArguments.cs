using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace StratoVirt.Qmp;

/// <summary>
/// Strict QMP arguments with QEMU's error texts. Every command's <c>arguments</c> object is checked against the
/// source-generated metadata of its argument class before it is deserialised: a member the class lacks is
/// "Parameter 'x' is unexpected", a value of the wrong JSON kind "Invalid parameter type for 'x', expected:
/// &lt;type&gt;", an integer out of the member's range "Parameter 'x' expects &lt;type&gt;", and an absent
/// <c>[JsonRequired]</c> member "Parameter 'x' is missing". Nested objects are checked the same way and named
/// with dots ('file.filename'). The check reads only metadata, never exception texts, so it holds under NativeAOT
/// with resource keys stripped.
/// </summary>
public static class QmpArguments
{
    private static readonly JsonElement EmptyObject = JsonDocument.Parse("{}").RootElement.Clone();

    /// <summary>Checks and deserialises <paramref name="arguments"/> (default: the request had none, which counts
    /// as <c>{}</c>); false with QEMU's message in <paramref name="error"/>.</summary>
    public static bool TryParse<T>(JsonElement arguments, JsonTypeInfo<T> info, [MaybeNullWhen(false)] out T value,
        [NotNullWhen(false)] out string? error)
    {
        value = default;
        if (arguments.ValueKind == JsonValueKind.Undefined) arguments = EmptyObject;
        error = CheckObject(arguments, info, "");
        if (error is not null) return false;
        try
        {
            value = arguments.Deserialize(info);
        }
        catch (JsonException e)
        {
            // The checks above cover what the metadata describes; this is a converter's own refusal (an enum
            // name, say), reported with the JSON path the serializer gives.
            error = $"Invalid parameter '{e.Path?.TrimStart('$', '.') ?? "arguments"}'";
            return false;
        }
        if (value is null)
        {
            error = "QMP input member 'arguments' must be an object";
            return false;
        }
        return true;
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

    private static string? CheckObject(JsonElement value, JsonTypeInfo info, string prefix)
    {
        if (value.ValueKind != JsonValueKind.Object)
            return prefix.Length == 0 ? "QMP input member 'arguments' must be an object" : WrongType(prefix.TrimEnd('.'), "object");
        foreach (var property in info.Properties)
        {
            string path = prefix + property.Name;
            if (!value.TryGetProperty(property.Name, out var member))
            {
                if (property.IsRequired) return $"Parameter '{path}' is missing";
                continue;
            }
            if (CheckValue(member, property.PropertyType, info.Options, path) is { } error) return error;
        }
        foreach (var member in value.EnumerateObject())
        {
            if (!HasProperty(info, member.Name)) return Unexpected(prefix + member.Name);
        }
        return null;
    }

    private static bool HasProperty(JsonTypeInfo info, string name)
    {
        foreach (var property in info.Properties)
            if (property.Name == name) return true;
        return false;
    }

    private static string? CheckValue(JsonElement value, Type type, JsonSerializerOptions options, string path)
    {
        if (Nullable.GetUnderlyingType(type) is { } underlying)
        {
            if (value.ValueKind == JsonValueKind.Null) return null;
            type = underlying;
        }
        if (type == typeof(JsonElement)) return null; // free-form by design
        if (type == typeof(string))
            return value.ValueKind == JsonValueKind.String ? null : WrongType(path, "string");
        if (type == typeof(bool))
            return value.ValueKind is JsonValueKind.True or JsonValueKind.False ? null : WrongType(path, "boolean");
        if (type == typeof(double) || type == typeof(float))
            return value.ValueKind == JsonValueKind.Number ? null : WrongType(path, "number");
        if (IntegerRange(type) is var (name, min, max))
        {
            if (value.ValueKind != JsonValueKind.Number) return WrongType(path, "integer");
            if (value.TryGetInt64(out long signed))
                return signed >= 0 ? ((ulong)signed <= max ? null : $"Parameter '{path}' expects {name}")
                    : (signed >= min ? null : $"Parameter '{path}' expects {name}");
            if (value.TryGetUInt64(out ulong unsigned))
                return unsigned <= max ? null : $"Parameter '{path}' expects {name}";
            return WrongType(path, "integer");
        }
        if (!options.TryGetTypeInfo(type, out var info)) return null; // the serializer will judge it
        return info.Kind switch
        {
            JsonTypeInfoKind.Object => CheckObject(value, info, path + "."),
            JsonTypeInfoKind.Enumerable => value.ValueKind == JsonValueKind.Array ? CheckItems(value, info, options, path)
                : WrongType(path, "array"),
            JsonTypeInfoKind.Dictionary => value.ValueKind == JsonValueKind.Object ? null : WrongType(path, "object"),
            _ => null,
        };
    }

    private static string? CheckItems(JsonElement array, JsonTypeInfo info, JsonSerializerOptions options, string path)
    {
        if (info.ElementType is not { } element) return null;
        int i = 0;
        foreach (var item in array.EnumerateArray())
        {
            if (CheckValue(item, element, options, $"{path}[{i++}]") is { } error) return error;
        }
        return null;
    }

    /// <summary>QEMU's name and the bounds of an integer member type; null for other types.</summary>
    private static (string Name, long Min, ulong Max)? IntegerRange(Type type) =>
        type == typeof(ulong) ? ("uint64", 0, ulong.MaxValue)
        : type == typeof(long) ? ("int64", long.MinValue, long.MaxValue)
        : type == typeof(uint) ? ("uint32", 0, uint.MaxValue)
        : type == typeof(int) ? ("int32", int.MinValue, int.MaxValue)
        : type == typeof(ushort) ? ("uint16", 0, ushort.MaxValue)
        : type == typeof(short) ? ("int16", short.MinValue, (ulong)short.MaxValue)
        : type == typeof(byte) ? ("uint8", 0, byte.MaxValue)
        : type == typeof(sbyte) ? ("int8", sbyte.MinValue, (ulong)sbyte.MaxValue)
        : null;
}
