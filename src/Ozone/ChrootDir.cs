using StratoVirt.Sys;

namespace Ozone;

/// <summary>
/// The per-sandbox root folder /srv/ozone/&lt;exec name&gt;/&lt;name&gt;: a copy of the binary and a bind mount of each
/// -source file or folder, all at its top level, plus the binary's shared libraries at their own paths if it is
/// dynamically linked. It becomes "/" of the sandboxed process.
/// </summary>
public sealed class ChrootDir
{
    public const string BaseDir = "/srv/ozone";

    private readonly OzoneOptions _options;
    private bool _created;

    public ChrootDir(OzoneOptions options)
    {
        _options = options;
        Path = System.IO.Path.Combine(BaseDir, options.ExecName, options.Name);
    }

    public string Path { get; }

    private string ExecDir => System.IO.Path.GetDirectoryName(Path)!;

    /// <summary>Creates the folder (it must not exist), copies the binary and bind-mounts the sources; undoes it all on failure.</summary>
    public void Create(string execFile, IReadOnlyList<string> sources)
    {
        OzoneException.FileStep(() => Directory.CreateDirectory(ExecDir));
        if (Libc.Mkdir(Path, 0x1c0 /* 0700 */) != 0)
        {
            var e = SysException.Last($"create {Path}");
            throw e.Errno == Libc.EEXIST ? new OzoneException($"name in use: {Path} already exists") : e;
        }
        _created = true;
        try
        {
            OzoneException.FileStep(() => Fill(execFile, sources));
        }
        catch
        {
            Remove();
            throw;
        }
    }

    private void Fill(string execFile, IReadOnlyList<string> sources)
    {
        File.Copy(execFile, System.IO.Path.Combine(Path, _options.ExecName));
        foreach (var library in SharedLibraries.Of(execFile))
        {
            string target = Path + library;
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(target)!);
            File.Copy(library, target);
        }
        foreach (var source in sources) BindSource(source);
    }

    /// <summary>Bind-mounts a source at the chroot's top level and gives it to uid:gid, as upstream does
    /// (through the mount that changes the owner of the source itself, so the binary can open it).</summary>
    private void BindSource(string source)
    {
        string target = System.IO.Path.Combine(Path, System.IO.Path.GetFileName(source));
        bool isDir = Directory.Exists(source);
        if (isDir) Directory.CreateDirectory(target);
        else File.WriteAllBytes(target, []);
        SysException.Check(Libc.Mount(source, target, null, Libc.MS_BIND, 0), $"bind-mount {source} on {target}");
        if (!isDir && new FileInfo(target).Length == 0) throw new OzoneException($"-source {source} is an empty file");
        SysException.Check(Libc.Chown(target, _options.Uid, _options.Gid), $"chown {source} to {_options.Uid}:{_options.Gid}");
    }

    /// <summary>Unmounts everything mounted below the folder, deletes it, and deletes its parent if that is empty.</summary>
    public void Remove()
    {
        var mounts = MountTable.Below(MountTable.Read(), Path);
        for (int i = mounts.Count - 1; i >= 0; i--)
            SysException.Check(Libc.Umount2(mounts[i], Libc.MNT_DETACH), $"unmount {mounts[i]}");
        // Never delete through a mount point: that would delete the source's own files.
        if (MountTable.Below(MountTable.Read(), Path).Count > 0)
            throw new OzoneException($"{Path} still has mounts below it; not deleting it");
        if (Directory.Exists(Path)) OzoneException.FileStep(() => Directory.Delete(Path, recursive: true));
        _created = false;
        Libc.Rmdir(ExecDir); // fails with ENOTEMPTY while another sandbox of this binary exists: then it stays
    }

    public bool Exists => _created || Directory.Exists(Path);
}
