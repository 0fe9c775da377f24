using StratoVirt.Devices.Options;
using StratoVirt.Memory;

namespace StratoVirt.Cli;

/// <summary>An -object memory-backend-ram|memfd|file: guest RAM of <paramref name="Size"/> bytes backed as
/// <paramref name="Ram"/> says, bound to the machine by -machine memory-backend=&lt;id&gt;.</summary>
internal sealed record MemoryBackend(string Id, string Type, ulong Size, RamBacking Ram);

/// <summary>
/// Where guest RAM lives, from -machine mem-share= and memory-backend=, -object memory-backend-*, -mem-path,
/// -mem-prealloc and -m. As QEMU does with -machine memory-backend=, the backend's size is the RAM size: -m may be
/// left out, and when given it must agree.
/// </summary>
internal static class MemoryOptions
{
    /// <summary>The keys of a memory-backend object (mem-prealloc is upstream's spelling of QEMU's prealloc).</summary>
    public static readonly string[] Parameters =
        ["type", "id", "size", "host-nodes", "policy", "mem-path", "share", "prealloc", "mem-prealloc", "dump-guest-core"];

    /// <summary>Parses one memory-backend object. Its share= defaults as QEMU's: on for memfd, off otherwise.</summary>
    public static MemoryBackend ParseBackend(string text)
    {
        var v = new OptionValue("-object", text, "type", Parameters);
        string type = v.Get("type")!;
        string id = v.Get("id") is { Length: > 0 } i ? i : throw new UsageException($"option -object: {type} needs id=");
        string where = $"option -object: {type} '{id}'";
        string size = v.Get("size") ?? throw new UsageException($"{where}: size= is required");
        ulong bytes = Options.ParseSize(size, $"-object {type} size");
        if (v.Has("host-nodes") || v.Get("policy") is { } policy && policy != "default")
            throw new UsageException($"{where}: host-nodes= and policy= (NUMA placement) are not supported by this build");
        bool prealloc = v.GetBool("prealloc", false) || v.GetBool("mem-prealloc", false);
        bool dumpable = v.GetBool("dump-guest-core", true);
        string? path = v.Get("mem-path");
        if (path is not null && type != "memory-backend-file")
            throw new UsageException($"{where}: mem-path= belongs to memory-backend-file");
        bool share = v.GetBool("share", type == "memory-backend-memfd");
        var ram = type switch
        {
            "memory-backend-file" => new RamBacking
            {
                Kind = RamBackingKind.File,
                Path = path is { Length: > 0 } ? path : throw new UsageException($"{where}: mem-path= is required"),
                Shared = share,
            },
            "memory-backend-memfd" => new RamBacking { Kind = RamBackingKind.Memfd, Shared = share },
            // Shared anonymous RAM is only useful to hand to another process, which needs an fd: a memfd.
            "memory-backend-ram" => share ? new RamBacking { Kind = RamBackingKind.Memfd, Shared = true } : RamBacking.Default,
            _ => throw new UsageException($"option -object: unknown memory backend '{type}' (memory-backend-ram, -memfd or -file)"),
        };
        return new MemoryBackend(id, type, bytes, ram with { Prealloc = prealloc, Dumpable = dumpable });
    }

    /// <summary>The RAM size and its backing. <paramref name="memShare"/> is -machine mem-share= (null when not
    /// given), <paramref name="backendId"/> -machine memory-backend=.</summary>
    public static (ulong Size, RamBacking Ram) Resolve(bool? memShare, string? backendId,
        IReadOnlyDictionary<string, MemoryBackend> backends, string? memPath, bool memPrealloc, string? memory, ulong hostMemory)
    {
        if (memPath is { Length: 0 }) throw new UsageException("option -mem-path: the path is empty");
        if (backendId is null)
        {
            ulong size = memory is null ? 256UL << 20 : Options.ParseMemory(memory, hostMemory);
            var ram = memPath is not null
                ? new RamBacking { Kind = RamBackingKind.File, Path = memPath, Shared = memShare ?? false }
                : memShare == true ? new RamBacking { Kind = RamBackingKind.Memfd, Shared = true } : RamBacking.Default;
            return (size, memPrealloc ? ram with { Prealloc = true } : ram);
        }
        if (!backends.TryGetValue(backendId, out var backend))
            throw new UsageException($"option -machine: memory-backend={backendId}: no -object memory-backend-* with id '{backendId}'");
        if (memPath is not null)
            throw new UsageException($"option -mem-path: cannot be combined with -machine memory-backend={backendId} (give the backend mem-path=)");
        if (memShare == true && !backend.Ram.Shared)
            throw new UsageException($"option -machine: mem-share=on, but memory-backend '{backendId}' has share=off");
        Options.CheckMemorySize(backend.Size, $"-object {backend.Type} '{backendId}' size", hostMemory);
        if (memory is not null && Options.ParseMemory(memory, hostMemory) is var m && m != backend.Size)
            throw new UsageException(
                $"option -m: {m >> 20} MiB does not match the {backend.Size >> 20} MiB of memory-backend '{backendId}' (leave -m out, or give the same size)");
        return (backend.Size, memPrealloc ? backend.Ram with { Prealloc = true } : backend.Ram);
    }
}
