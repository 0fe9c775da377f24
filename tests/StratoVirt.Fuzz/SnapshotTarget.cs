using System.Buffers.Binary;
using StratoVirt.Devices.Legacy;
using StratoVirt.Devices.State;
using StratoVirt.Machine;
using StratoVirt.Machine.Snapshot;
using StratoVirt.Memory;
using StratoVirt.Sys;
using StratoVirt.Tests;
using StratoVirt.Tests.Devices;
using StratoVirt.Virtio.Devices.Block;
using StratoVirt.Virtio.Devices.Net;
using StratoVirt.Virtio.Transport.Mmio;

namespace StratoVirt.Fuzz;

/// <summary>
/// What <c>-incoming file:&lt;dir&gt;</c> reads: the state file decoded (<see cref="SnapshotState.Decode"/>) and
/// checked against a command line (<see cref="SnapshotState.CheckMatches"/>: its facts and memory description),
/// every record given to a machine's parts in order as the restore does (the legacy devices' and two virtio-mmio
/// slots' records restored into real ones, the KVM VM's and the vCPU's decoded, since their Apply needs KVM), then
/// the memory file read into guest RAM (<see cref="MemoryImage.Load"/>). Every refusal must be a
/// <see cref="VmmException"/> (SnapshotException, StateException, RamBackingException) with a one-line message; no
/// hang, no allocation a length field asks for beyond the file.
/// </summary>
/// <remarks>Input: mode u8 (bit 0: the rest is the state file's payload, which the target frames with the magic,
/// version, length and checksum, so mutations reach the decoder; else the rest is the whole file; bit 1: a memory
/// file follows), then with bit 1 its size in pages past the RAM's i8 and its data pages: count u8, then per page
/// its number u8 and fill byte u8; then the state file or payload.</remarks>
public sealed class SnapshotTarget : IFuzzTarget, IDisposable
{
    private const int PageSize = 4096;

    /// <summary>The command line the snapshot must match: the RAM of the fuzz guest, one vCPU, the two devices
    /// whose slots the parts hold.</summary>
    public static readonly MachineConfig Config = new()
    {
        KernelPath = "/vmlinux",
        MemorySize = FuzzDevices.MemorySize,
        Devices = [new BlockDeviceConfig("rootfs", "/rootfs.img", false, false, "fuzz"), new NetDeviceConfig("net0", "tap0", null, null)],
    };

    private readonly FuzzDevices _devices = new();
    private readonly TempDir _dir = new();
    private readonly IReadOnlyList<(ulong, ulong)> _layout = StratoVirt.Boot.Layout.RamRegions(FuzzDevices.MemorySize);

    private string MemoryPath => MemoryImage.PathIn(_dir.Path);

    /// <summary>A part whose record is decoded but not applied (its Apply needs KVM).</summary>
    private sealed class DecodedPart(string name, Action<StateReader> read) : IStateful
    {
        public string StateName => name;
        public int StateVersion => 1;
        public void SaveState(StateWriter writer) => throw new NotSupportedException("the fuzz target only restores");
        public void RestoreState(StateReader reader)
        {
            read(reader);
            reader.ExpectEnd();
        }
    }

    private static readonly DecodedPart VmPart = new("kvm-vm", r => X86VmState.Read(r));

    private static readonly DecodedPart VcpuPart = new("vcpu", r =>
    {
        uint id = r.ReadUInt32();
        if (id != 0) throw new StateException($"a record of vCPU {id} cannot restore vCPU 0");
        X86VcpuState.Read(r);
    });

    public void Run(ReadOnlySpan<byte> input)
    {
        var r = new FuzzReader(input);
        byte mode = r.U8();
        bool withMemory = (mode & 2) != 0;
        sbyte extraPages = withMemory ? (sbyte)r.U8() : (sbyte)0;
        var pages = withMemory ? r.Bytes(2 * r.U8()) : default;
        var rest = r.Bytes(r.Remaining);
        byte[] file = (mode & 1) != 0 ? Frame(rest) : rest.ToArray();

        var memory = new GuestMemory([(0UL, FuzzDevices.MemorySize)], RamBacking.Default);
        var blk = _devices.Create(FuzzDevices.Kind.Blk, 0, out _);
        var net = _devices.Create(FuzzDevices.Kind.Net, 0, out _);
        var loop = new EventLoop("fuzz");
        blk.Loop = net.Loop = loop;
        var slots = new[] { new VirtioMmioTransport(blk, memory, new CountingInterruptLine()),
            new VirtioMmioTransport(net, memory, new CountingInterruptLine()) };
        try
        {
            foreach (var slot in slots) slot.Attach();
            IStateful[] parts =
            [
                VmPart,
                new Serial16550(new CountingInterruptLine(), new CountingSerialOutput()),
                new I8042(() => { }, new CountingInterruptLine()),
                new CmosRtc(() => new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc)),
                new VirtioSlotStateful(0, slots[0]),
                new VirtioSlotStateful(1, slots[1]),
                VcpuPart,
            ];
            Restore(file, parts);
            for (int i = 0; i < 8; i++) loop.RunOnce(0);
            if (withMemory)
            {
                WriteMemoryFile(extraPages, pages);
                Refused(() => MemoryImage.Load(memory, MemoryPath));
            }
        }
        finally
        {
            foreach (var slot in slots) slot.Dispose();
            memory.Dispose();
            loop.Dispose();
            _devices.EndRun();
        }
    }

    /// <summary>Decodes, checks and restores as the microVM's builder and VirtualMachine.Restore do.</summary>
    private void Restore(byte[] file, IStateful[] parts) => Refused(() =>
    {
        var state = SnapshotState.Decode(file, "state");
        state.CheckMatches(Config, _layout);
        if (state.Records.Count != parts.Length)
            throw new SnapshotException($"state holds {state.Records.Count} state records; this machine has {parts.Length} parts");
        for (int i = 0; i < parts.Length; i++) state.Records[i].Restore(parts[i]);
    });

    /// <summary>Runs <paramref name="action"/>; a documented refusal in one line is fine (a bad file, a record a
    /// part refuses, which the machine reports as a SnapshotException, or a memory file of the wrong size), anything
    /// else escapes.</summary>
    private static void Refused(Action action)
    {
        try
        {
            action();
        }
        catch (VmmException e) when (e is SnapshotException or StateException or RamBackingException && !e.Message.Contains('\n'))
        {
        }
    }

    /// <summary>The state file around <paramref name="payload"/>: magic, version, length, payload, CRC-32.</summary>
    public static byte[] Frame(ReadOnlySpan<byte> payload)
    {
        var file = new byte[16 + payload.Length + 4];
        "SVSNAPST"u8.CopyTo(file);
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(8), SnapshotState.FormatVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(12), (uint)payload.Length);
        payload.CopyTo(file.AsSpan(16));
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(16 + payload.Length), Crc32.Compute(payload));
        return file;
    }

    /// <summary>A sparse memory file of the RAM's size plus <paramref name="extraPages"/> pages, with the given
    /// pages filled and the rest holes.</summary>
    private void WriteMemoryFile(sbyte extraPages, ReadOnlySpan<byte> pages)
    {
        long size = Math.Max(0, (long)FuzzDevices.MemorySize + extraPages * (long)PageSize);
        File.Delete(MemoryPath);
        using var handle = File.OpenHandle(MemoryPath, FileMode.CreateNew, FileAccess.Write);
        RandomAccess.SetLength(handle, size);
        Span<byte> page = stackalloc byte[PageSize];
        for (int i = 0; i + 1 < pages.Length; i += 2)
        {
            long at = (long)pages[i] * PageSize;
            if (at + PageSize > size) continue;
            page.Fill(pages[i + 1]);
            RandomAccess.Write(handle, page, at);
        }
    }

    public void Dispose()
    {
        _devices.Dispose();
        _dir.Dispose();
    }
}
