using System.Buffers.Binary;
using StratoVirt.Devices.State;
using StratoVirt.Sys;
using StratoVirt.Virtio.Devices.Block;
using StratoVirt.Virtio.Devices.Net;

namespace StratoVirt.Machine.Snapshot;

/// <summary>A snapshot that cannot be taken or restored; the message says why in one line.</summary>
public sealed class SnapshotException(string message) : VmmException(message);

/// <summary>
/// The snapshot's <c>state</c> file: what the machine was (architecture, machine type, vCPUs, memory layout and
/// the command-line facts a restore must repeat) and every component's state record, in the machine's order.
/// <para>Layout: the magic <c>SVSNAPST</c>, the format version (u32), the payload's length (u32), the payload (a
/// <see cref="StateWriter"/> record: architecture, machine type, vCPU count, memory regions as address and size,
/// the facts as name and value, then the component records) and the CRC-32 of the payload (u32); little-endian.</para>
/// </summary>
public sealed record SnapshotState(string Architecture, string MachineType, int Cpus,
    IReadOnlyList<(ulong Address, ulong Size)> Memory, IReadOnlyList<(string Name, string Value)> Facts,
    IReadOnlyList<StateRecord> Records)
{
    public const int FormatVersion = 2;
    public const string ThisArchitecture = "x86_64";
    private const int HeaderSize = 16, TrailerSize = 4;

    /// <summary>A state file larger than this is not one of ours (a vCPU's record is a few KiB).</summary>
    public const int MaxFileSize = 64 << 20;

    private static ReadOnlySpan<byte> Magic => "SVSNAPST"u8;

    /// <summary>What a restore's command line must repeat: memory size, vCPU count, and each device's kind and id,
    /// with a drive's read-only flag and serial and a NIC's configured MAC. Not a drive's image path, a tap's name
    /// or fd, or the QMP socket: VMs restored from one snapshot (templates) each give their own. The image's size
    /// is checked by the device's record.</summary>
    public static IReadOnlyList<(string Name, string Value)> FactsOf(MachineConfig config)
    {
        var facts = new List<(string, string)> { ("-m", $"{config.MemorySize >> 20}M"), ("-smp", $"{config.Cpus.Count}") };
        var devices = new string[config.Devices.Count];
        for (int i = 0; i < devices.Length; i++) devices[i] = $"{config.Devices[i].DeviceType.Name}:{config.Devices[i].Id}";
        facts.Add(("devices", string.Join(" ", devices)));
        foreach (var device in config.Devices)
        {
            switch (device)
            {
                case BlockDeviceConfig b:
                    facts.Add(($"readonly of {b.Id}", b.ReadOnly ? "on" : "off"));
                    facts.Add(($"serial of {b.Id}", b.Serial ?? "(none)"));
                    break;
                case NetDeviceConfig n:
                    facts.Add(($"mac of {n.Id}", n.Mac is null ? "(random)" : Convert.ToHexString(n.Mac)));
                    break;
            }
        }
        return facts;
    }

    public byte[] Encode()
    {
        var payload = new StateWriter();
        payload.WriteString(Architecture);
        payload.WriteString(MachineType);
        payload.WriteUInt32((uint)Cpus);
        payload.WriteUInt32((uint)Memory.Count);
        foreach (var (address, size) in Memory)
        {
            payload.WriteUInt64(address);
            payload.WriteUInt64(size);
        }
        payload.WriteUInt32((uint)Facts.Count);
        foreach (var (name, value) in Facts)
        {
            payload.WriteString(name);
            payload.WriteString(value);
        }
        payload.WriteUInt32((uint)Records.Count);
        foreach (var record in Records) record.WriteTo(payload);

        var body = payload.Written;
        var file = new byte[HeaderSize + body.Length + TrailerSize];
        Magic.CopyTo(file);
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(8), FormatVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(12), (uint)body.Length);
        body.CopyTo(file.AsSpan(HeaderSize));
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(HeaderSize + body.Length), Crc32.Compute(body));
        return file;
    }

    /// <summary>Decodes a state file; anything that is not a whole, intact state file of this format and
    /// architecture is a <see cref="SnapshotException"/> naming <paramref name="path"/> and the problem.</summary>
    public static SnapshotState Decode(ReadOnlySpan<byte> file, string path)
    {
        if (file.Length < HeaderSize || !file[..8].SequenceEqual(Magic))
            throw new SnapshotException($"{path} is not a snapshot state file");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(file[8..]);
        if (version != FormatVersion)
            throw new SnapshotException($"{path} has snapshot format version {version}; this build reads version {FormatVersion}");
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(file[12..]);
        if ((ulong)file.Length != HeaderSize + (ulong)length + TrailerSize)
            throw new SnapshotException($"{path} is truncated or has trailing bytes: {file.Length} bytes, the header announces {HeaderSize + (ulong)length + TrailerSize}");
        var body = file.Slice(HeaderSize, (int)length);
        if (Crc32.Compute(body) != BinaryPrimitives.ReadUInt32LittleEndian(file[(HeaderSize + (int)length)..]))
            throw new SnapshotException($"{path} is corrupt: its checksum does not match its contents");
        try
        {
            return DecodePayload(new StateReader(body.ToArray(), "snapshot"), path);
        }
        catch (StateException e)
        {
            throw new SnapshotException($"{path}: {e.Message}");
        }
    }

    private static SnapshotState DecodePayload(StateReader reader, string path)
    {
        string arch = Text(reader);
        if (arch != ThisArchitecture)
            throw new SnapshotException($"{path} was taken on {arch}; this host is {ThisArchitecture}");
        string machine = Text(reader);
        int cpus = (int)reader.ReadUInt32();
        var memory = new List<(ulong, ulong)>();
        for (uint i = 0, n = Count(reader, 16); i < n; i++) memory.Add((reader.ReadUInt64(), reader.ReadUInt64()));
        var facts = new List<(string, string)>();
        for (uint i = 0, n = Count(reader, 8); i < n; i++) facts.Add((Text(reader), Text(reader)));
        var records = new List<StateRecord>();
        for (uint i = 0, n = Count(reader, 12); i < n; i++) records.Add(StateRecord.ReadFrom(reader));
        reader.ExpectEnd();
        return new SnapshotState(arch, machine, cpus, memory, facts, records);
    }

    /// <summary>A string of the file, which goes into messages: control characters are refused.</summary>
    private static string Text(StateReader reader) => reader.ReadText("a name or value") ?? "";

    /// <summary>A count of items of at least <paramref name="itemSize"/> bytes that must fit in what is left.</summary>
    private static uint Count(StateReader reader, int itemSize)
    {
        uint n = reader.ReadUInt32();
        if (n > (uint)reader.Remaining / (uint)itemSize)
            throw new StateException($"{reader.Name} state: {n} items cannot fit in the {reader.Remaining} bytes left");
        return n;
    }

    /// <summary>Throws, naming the first difference, unless the snapshot was taken of a machine like
    /// <paramref name="config"/> describes.</summary>
    public void CheckMatches(MachineConfig config, IReadOnlyList<(ulong Address, ulong Size)> memory)
    {
        if (MachineType != "microvm")
            throw new SnapshotException($"the snapshot is of a {MachineType} machine; this one is a microvm");
        var facts = FactsOf(config);
        var saved = new Dictionary<string, string>(Facts.Count, StringComparer.Ordinal);
        foreach (var (name, value) in Facts) saved.Add(name, value);
        foreach (var (name, value) in facts)
        {
            if (!saved.TryGetValue(name, out var was))
                throw new SnapshotException($"the snapshot does not match the command line: it has no {name} (this command line: {value})");
            if (was != value)
                throw new SnapshotException($"the snapshot does not match the command line: {name} was {was}, now {value}");
        }
        if (Facts.Count != facts.Count)
            throw new SnapshotException($"the snapshot does not match the command line: it has {Facts.Count} facts, this command line {facts.Count}");
        if (Cpus != config.Cpus.Count || !SameLayout(Memory, memory))
            throw new SnapshotException("the snapshot does not match the command line: its vCPUs or memory layout differ");
    }

    /// <summary>Whether the two layouts hold the same regions in the same order.</summary>
    private static bool SameLayout(IReadOnlyList<(ulong Address, ulong Size)> a, IReadOnlyList<(ulong Address, ulong Size)> b)
    {
        if (a.Count != b.Count) return false;
        for (int i = 0; i < a.Count; i++)
            if (a[i] != b[i]) return false;
        return true;
    }
}
