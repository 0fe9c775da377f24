using StratoVirt.Sys;

namespace Ozone;

/// <summary>
/// The sandbox's cgroup: &lt;hierarchy&gt;/&lt;exec name&gt;/&lt;name&gt; in each hierarchy that holds a controller ozone was
/// asked to limit. cgroup v1 (one hierarchy per controller) and v2 (one unified tree) are both handled; a controller
/// is looked up first among the v1 mounts, then in the v2 tree's cgroup.controllers.
/// </summary>
public sealed class CgroupLimits
{
    /// <summary>One limit: the controller, its file name in v1 and v2, and the value to write.</summary>
    private sealed record Setting(string Controller, string V1File, string V2File, string Value);

    /// <summary>One cgroup directory ozone creates, in one hierarchy.</summary>
    private sealed record Leaf(string Mount, bool IsV2, string Base, string Dir, List<Setting> Settings);

    private readonly List<Leaf> _leaves;
    /// <summary>The leaves this object may remove: those it created, or all found by <see cref="Existing"/>.</summary>
    private readonly List<Leaf> _owned;

    private CgroupLimits(List<Leaf> leaves, bool owned)
    {
        _leaves = leaves;
        _owned = owned ? new List<Leaf>(leaves) : [];
    }

    /// <summary>The cgroup directories the sandboxed process joins.</summary>
    public IReadOnlyList<string> Directories => _leaves.ConvertAll(l => l.Dir);

    /// <summary>Plans the cgroup for these options; no cgroup at all when none of -cgroup or -numa is given.</summary>
    public static CgroupLimits Plan(OzoneOptions o, string mountInfo)
    {
        var settings = new List<Setting>();
        if (o.CpusetCpus is { } cpus) settings.Add(new("cpuset", "cpuset.cpus", "cpuset.cpus", cpus));
        if (o.Numa is { } numa) settings.Add(new("cpuset", "cpuset.mems", "cpuset.mems", numa));
        if (o.MemoryLimit is { } mem)
            settings.Add(new("memory", "memory.limit_in_bytes", "memory.max", mem));

        var hierarchies = Hierarchies(mountInfo);
        var leaves = new List<Leaf>();
        foreach (var s in settings)
        {
            var (mount, isV2) = Find(hierarchies, s.Controller);
            var leaf = leaves.Find(l => l.Mount == mount);
            if (leaf is null)
            {
                string @base = Path.Combine(mount, o.ExecName);
                leaves.Add(leaf = new Leaf(mount, isV2, @base, Path.Combine(@base, o.Name), []));
            }
            leaf.Settings.Add(isV2 && s.Value == "-1" ? s with { Value = "max" } : s);
        }
        return new CgroupLimits(leaves, owned: false);
    }

    /// <summary>The cgroup directories an earlier run with this exec name and name may have left, in any hierarchy.</summary>
    public static CgroupLimits Existing(OzoneOptions o, string mountInfo)
    {
        var leaves = new List<Leaf>();
        foreach (var (mount, isV2, _) in Hierarchies(mountInfo))
        {
            string @base = Path.Combine(mount, o.ExecName);
            string dir = Path.Combine(@base, o.Name);
            if (Directory.Exists(dir)) leaves.Add(new Leaf(mount, isV2, @base, dir, []));
        }
        return new CgroupLimits(leaves, owned: true);
    }

    private static List<(string Mount, bool IsV2, string[] Controllers)> Hierarchies(string mountInfo)
    {
        var list = new List<(string, bool, string[])>();
        foreach (var m in MountTable.Parse(mountInfo))
        {
            if (m.FsType == "cgroup")
                list.Add((m.MountPoint, false, m.SuperOptions.Split(',')));
            else if (m.FsType == "cgroup2")
            {
                string file = Path.Combine(m.MountPoint, "cgroup.controllers");
                string[] controllers = File.Exists(file)
                    ? SandboxCalls.ReadText(file).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                    : [];
                list.Add((m.MountPoint, true, controllers));
            }
        }
        return list;
    }

    private static (string Mount, bool IsV2) Find(List<(string Mount, bool IsV2, string[] Controllers)> hierarchies, string controller)
    {
        foreach (var h in hierarchies)
            if (!h.IsV2 && h.Controllers.Contains(controller)) return (h.Mount, false);
        foreach (var h in hierarchies)
            if (h.IsV2 && h.Controllers.Contains(controller)) return (h.Mount, true);
        throw new OzoneException($"cgroup controller '{controller}' is not available (no cgroup v1 hierarchy or cgroup v2 tree offers it)");
    }

    /// <summary>Creates the directories and writes the limits; on failure removes what it created and throws.</summary>
    public void Create()
    {
        try
        {
            foreach (var leaf in _leaves) CreateLeaf(leaf);
        }
        catch
        {
            Remove();
            throw;
        }
    }

    private void CreateLeaf(Leaf leaf)
    {
        if (Directory.Exists(leaf.Dir)) throw new OzoneException($"name in use: cgroup {leaf.Dir} already exists");
        MakeDir(leaf.Base, mayExist: true);
        if (leaf.IsV2)
        {
            // v2: a child gets a controller's files only when its parent lists the controller in
            // cgroup.subtree_control, all the way down from the tree's root.
            var enabled = new List<string>();
            foreach (var s in leaf.Settings)
            {
                string controller = s.Controller;
                if (enabled.Contains(controller)) continue;
                enabled.Add(controller);
                SandboxCalls.WriteText(Path.Combine(leaf.Mount, "cgroup.subtree_control"), "+" + controller);
                SandboxCalls.WriteText(Path.Combine(leaf.Base, "cgroup.subtree_control"), "+" + controller);
            }
        }
        MakeDir(leaf.Dir, mayExist: false);
        _owned.Add(leaf);
        if (!leaf.IsV2 && leaf.Settings.Exists(s => s.Controller == "cpuset"))
        {
            // v1 cpuset: a cgroup takes tasks only once cpus and mems are set, and a new cgroup starts empty;
            // fill the base from the root where it is still empty, and the leaf from the base unless given.
            foreach (var file in (string[])["cpuset.cpus", "cpuset.mems"])
            {
                string baseFile = Path.Combine(leaf.Base, file);
                if (SandboxCalls.ReadText(baseFile).Trim().Length == 0)
                    SandboxCalls.WriteText(baseFile, SandboxCalls.ReadText(Path.Combine(leaf.Mount, file)).Trim());
                if (!leaf.Settings.Exists(s => s.V1File == file))
                    SandboxCalls.WriteText(Path.Combine(leaf.Dir, file), SandboxCalls.ReadText(baseFile).Trim());
            }
        }
        foreach (var s in leaf.Settings)
            SandboxCalls.WriteText(Path.Combine(leaf.Dir, leaf.IsV2 ? s.V2File : s.V1File), s.Value);
    }

    private static void MakeDir(string dir, bool mayExist)
    {
        if (Libc.Mkdir(dir, 0x1ed /* 0755 */) == 0) return;
        var e = SysException.Last($"create cgroup {dir}");
        if (!(mayExist && e.Errno == Libc.EEXIST)) throw e;
    }

    /// <summary>Moves the calling process (all its threads) into every leaf; run by the sandboxed process itself.</summary>
    public static void Join(IEnumerable<string> dirs)
    {
        foreach (var dir in dirs) SandboxCalls.WriteText(Path.Combine(dir, "cgroup.procs"), "0");
    }

    /// <summary>Removes the leaves, and each base folder that no other sandbox of the same binary still uses.</summary>
    public void Remove()
    {
        var errors = new List<string>();
        foreach (var leaf in _owned)
        {
            if (Libc.Rmdir(leaf.Dir) != 0)
            {
                var e = SysException.Last($"remove cgroup {leaf.Dir}");
                if (e.Errno != Libc.ENOENT) errors.Add(e.Message);
            }
            // Another sandbox of the same binary keeps the base busy (EBUSY, ENOTEMPTY): then it stays.
            Libc.Rmdir(leaf.Base);
        }
        _owned.Clear();
        if (errors.Count > 0) throw new OzoneException(string.Join("; ", errors));
    }
}
