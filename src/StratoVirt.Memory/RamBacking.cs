namespace StratoVirt.Memory;

/// <summary>What holds guest RAM on the host.</summary>
public enum RamBackingKind
{
    /// <summary>Private anonymous memory, the default: no other process can map it.</summary>
    Anonymous,
    /// <summary>A memfd (-machine mem-share=on, memory-backend-memfd): a file another process, such as a vhost-user
    /// backend, can map from the fd it is sent.</summary>
    Memfd,
    /// <summary>A file (-mem-path, memory-backend-file): a named one, or an unlinked one made in a folder; on
    /// hugetlbfs its pages are huge pages.</summary>
    File,
    /// <summary>A snapshot's memory file (-incoming file:&lt;dir&gt;), opened read-only and mapped private
    /// (copy-on-write): the guest starts with its pages, shared with every VM restored from it, and keeps its writes
    /// to itself.</summary>
    Snapshot,
}

/// <summary>How guest RAM is backed: by what, mapped shared or private, faulted in before the guest starts or as
/// it touches it, in the VMM's core dumps or not.</summary>
public sealed record RamBacking
{
    /// <summary>Private anonymous memory, committed as the guest touches it.</summary>
    public static readonly RamBacking Default = new();

    public RamBackingKind Kind { get; init; }
    /// <summary>For <see cref="RamBackingKind.File"/>: a file (created when missing, grown to the RAM size when
    /// shorter) or a folder, in which an unlinked file is created. For <see cref="RamBackingKind.Snapshot"/>: the
    /// memory file, which must hold exactly the RAM.</summary>
    public string? Path { get; init; }
    /// <summary>MAP_SHARED: the guest's writes reach the file, where other processes mapping it see them.
    /// Anonymous memory is always private.</summary>
    public bool Shared { get; init; }
    /// <summary>Fault in every page before the guest starts (-mem-prealloc), on several threads.</summary>
    public bool Prealloc { get; init; }
    /// <summary>false keeps guest RAM out of the VMM's core dumps (MADV_DONTDUMP), as dump-guest-core=off asks.</summary>
    public bool Dumpable { get; init; } = true;
}
