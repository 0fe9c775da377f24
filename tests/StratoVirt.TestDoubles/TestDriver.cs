using System.Buffers.Binary;
using StratoVirt.Memory;
using StratoVirt.Sys;
using StratoVirt.Tests.Devices;
using StratoVirt.Virtio;
using StratoVirt.Virtio.Transport.Mmio;

namespace StratoVirt.Tests.Virtio;

/// <summary>A buffer of a descriptor chain the test driver builds: data the device reads, or room it writes.</summary>
public readonly record struct TestBuffer(byte[]? Data, uint WritableLength)
{
    public static TestBuffer In(byte[] data) => new(data, 0);
    public static TestBuffer Out(uint length) => new(null, length);
    public bool Writable => Data is null;
}

/// <summary>A completed chain: its head, the length the device reported, and the writable buffers' contents.</summary>
public sealed record TestCompletion(ushort Head, uint Written, byte[] WrittenBytes);

/// <summary>
/// A small virtio driver in test code: it owns 16 MiB of guest memory, drives a device through its virtio-mmio
/// registers exactly as a guest would, lays out split rings, builds (direct or indirect) chains, notifies, and reads
/// the used ring. Queue processing runs on an EventLoop the test pumps, so no threads are involved.
/// </summary>
public sealed class TestDriver : IDisposable
{
    public const ulong RingBase = 0x10000, BufferBase = 0x100000;
    private const ushort DescNext = 1, DescWrite = 2, DescIndirect = 4;

    private readonly ulong _ringArea;
    private ulong _nextBuffer = BufferBase;
    private readonly Dictionary<int, QueueLayout> _queues = [];

    private sealed class QueueLayout
    {
        public ushort Size, NextDesc, AvailIdx, LastUsed;
        public ulong Desc, Avail, Used;
        public readonly Dictionary<ushort, List<(ulong Addr, uint Len, bool Write)>> Chains = [];
    }

    /// <param name="ram">What backs guest memory (default: private anonymous memory); a memfd shared for devices
    /// whose queues a backend process serves.</param>
    public TestDriver(VirtioDevice device, ulong memorySize = 16 << 20, RamBacking? ram = null)
    {
        Memory = new GuestMemory([(0UL, memorySize)], ram ?? RamBacking.Default);
        Loop = new EventLoop("test");
        device.Loop = Loop;
        Device = device;
        Irq = new CountingInterruptLine();
        Transport = new VirtioMmioTransport(device, Memory, Irq);
        Transport.Attach();
        _ringArea = RingBase;
    }

    public GuestMemory Memory { get; }
    public EventLoop Loop { get; }
    public VirtioDevice Device { get; }
    public VirtioMmioTransport Transport { get; }
    public CountingInterruptLine Irq { get; }

    public uint ReadReg(uint offset)
    {
        Span<byte> b = stackalloc byte[4];
        Transport.Read(offset, b);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    public void WriteReg(uint offset, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        Transport.Write(offset, b);
    }

    public byte[] ReadConfig(uint offset, int length)
    {
        var b = new byte[length];
        Transport.Read(VirtioMmioRegister.Config + offset, b);
        return b;
    }

    public ulong DeviceFeatures()
    {
        WriteReg(VirtioMmioRegister.DeviceFeaturesSel, 0);
        ulong low = ReadReg(VirtioMmioRegister.DeviceFeatures);
        WriteReg(VirtioMmioRegister.DeviceFeaturesSel, 1);
        return low | ((ulong)ReadReg(VirtioMmioRegister.DeviceFeatures) << 32);
    }

    /// <summary>The full initialisation sequence (virtio 1.2, 3.1.1); accepts <paramref name="features"/> (default:
    /// everything offered) and sets up <paramref name="queueCount"/> queues of <paramref name="queueSize"/>.
    /// Returns the final status.</summary>
    public uint Initialize(ulong? features = null, int queueCount = -1, ushort queueSize = 16)
    {
        if (!Negotiate(features)) return ReadReg(VirtioMmioRegister.Status);
        SetupQueues(queueCount, queueSize);
        return DriverOk();
    }

    /// <summary>Reset, ACKNOWLEDGE, DRIVER and the feature exchange up to FEATURES_OK (the first half of
    /// <see cref="Initialize"/>); false if the device refused the features.</summary>
    public bool Negotiate(ulong? features = null)
    {
        Assert.Equal(VirtioMmioRegister.Magic, ReadReg(VirtioMmioRegister.MagicValue));
        Assert.Equal(2u, ReadReg(VirtioMmioRegister.Version));
        WriteReg(VirtioMmioRegister.Status, 0);
        WriteReg(VirtioMmioRegister.Status, VirtioStatus.Acknowledge);
        WriteReg(VirtioMmioRegister.Status, VirtioStatus.Acknowledge | VirtioStatus.Driver);
        ulong accept = features ?? DeviceFeatures();
        WriteReg(VirtioMmioRegister.DriverFeaturesSel, 0);
        WriteReg(VirtioMmioRegister.DriverFeatures, (uint)accept);
        WriteReg(VirtioMmioRegister.DriverFeaturesSel, 1);
        WriteReg(VirtioMmioRegister.DriverFeatures, (uint)(accept >> 32));
        WriteReg(VirtioMmioRegister.Status, VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.FeaturesOk);
        return (ReadReg(VirtioMmioRegister.Status) & VirtioStatus.FeaturesOk) != 0;
    }

    /// <summary>Lays out and programs the first <paramref name="queueCount"/> queues (all when negative); with
    /// <paramref name="ready"/> false everything but QueueReady is written.</summary>
    public void SetupQueues(int queueCount = -1, ushort queueSize = 16, bool ready = true)
    {
        int count = queueCount < 0 ? Device.QueueCount : queueCount;
        ulong area = _ringArea;
        for (int q = 0; q < count; q++)
        {
            var l = new QueueLayout { Size = queueSize, Desc = area };
            l.Avail = l.Desc + 16UL * queueSize;
            l.Used = (l.Avail + 6 + 2UL * queueSize + 3) & ~3UL;
            area = (l.Used + 6 + 8UL * queueSize + 15) & ~15UL;
            Memory.GetSpan(l.Desc, area - l.Desc).Clear(); // a driver binding again starts from empty rings
            SetupQueue(q, l, ready);
            _queues[q] = l;
        }
    }

    /// <summary>Sets DRIVER_OK on top of the status so far, lets the device run, and returns the status.</summary>
    public uint DriverOk()
    {
        WriteReg(VirtioMmioRegister.Status, ReadReg(VirtioMmioRegister.Status) | VirtioStatus.DriverOk);
        Pump();
        return ReadReg(VirtioMmioRegister.Status);
    }

    /// <summary>Programs one queue's registers; tests of bad configurations call it with their own layout.</summary>
    public void SetupQueue(int q, ulong desc, ulong avail, ulong used, ushort size) =>
        SetupQueue(q, new QueueLayout { Size = size, Desc = desc, Avail = avail, Used = used });

    private void SetupQueue(int q, QueueLayout l, bool ready = true)
    {
        WriteReg(VirtioMmioRegister.QueueSel, (uint)q);
        WriteReg(VirtioMmioRegister.QueueNum, l.Size);
        WriteReg(VirtioMmioRegister.QueueDescLow, (uint)l.Desc);
        WriteReg(VirtioMmioRegister.QueueDescHigh, (uint)(l.Desc >> 32));
        WriteReg(VirtioMmioRegister.QueueDriverLow, (uint)l.Avail);
        WriteReg(VirtioMmioRegister.QueueDriverHigh, (uint)(l.Avail >> 32));
        WriteReg(VirtioMmioRegister.QueueDeviceLow, (uint)l.Used);
        WriteReg(VirtioMmioRegister.QueueDeviceHigh, (uint)(l.Used >> 32));
        if (ready) WriteReg(VirtioMmioRegister.QueueReady, 1);
    }

    /// <summary>Guest memory for a buffer (bump allocation, 16-byte aligned unless asked for more, never reused).</summary>
    public ulong Allocate(ulong length, ulong alignment = 16)
    {
        ulong a = (_nextBuffer + alignment - 1) & ~(alignment - 1);
        _nextBuffer = (a + Math.Max(length, 1) + 15) & ~15UL;
        if (_nextBuffer > Memory.TotalSize) throw new InvalidOperationException("test driver out of guest memory");
        return a;
    }

    /// <summary>Builds a chain from <paramref name="buffers"/> (through an indirect table if asked), makes it
    /// available and returns its head. Does not notify.</summary>
    public ushort Add(int q, IReadOnlyList<TestBuffer> buffers, bool indirect = false)
    {
        var l = _queues[q];
        var parts = new List<(ulong Addr, uint Len, bool Write)>();
        foreach (var b in buffers)
        {
            uint len = b.Writable ? b.WritableLength : (uint)b.Data!.Length;
            ulong addr = Allocate(len);
            if (!b.Writable) Memory.Write(addr, b.Data);
            else Memory.GetSpan(addr, len).Fill(0xEE);
            parts.Add((addr, len, b.Writable));
        }
        return AddChain(q, parts, indirect);
    }

    /// <summary>Makes a chain of buffers the caller placed itself available (through an indirect table if asked);
    /// returns its head. Does not notify.</summary>
    public ushort AddChain(int q, List<(ulong Addr, uint Len, bool Write)> parts, bool indirect = false)
    {
        var l = _queues[q];
        ushort head;
        if (indirect)
        {
            ulong table = Allocate(16UL * (ulong)parts.Count);
            for (int i = 0; i < parts.Count; i++)
                WriteDesc(table, (ushort)i, parts[i].Addr, parts[i].Len,
                    (ushort)((parts[i].Write ? DescWrite : 0) | (i + 1 < parts.Count ? DescNext : 0)), (ushort)(i + 1));
            head = TakeDesc(l);
            WriteDesc(l.Desc, head, table, (uint)(16 * parts.Count), DescIndirect, 0);
        }
        else
        {
            head = WriteDirectChain(l, parts);
        }
        l.Chains[head] = parts;
        Publish(q, head);
        return head;
    }

    /// <summary>Makes a chain of buffers at the given guest addresses available (the driver's own memory, not the
    /// test allocator's; contents untouched) and returns its head. Does not notify.</summary>
    public ushort AddAt(int q, IReadOnlyList<(ulong Addr, uint Len, bool Write)> parts)
    {
        var l = _queues[q];
        ushort head = WriteDirectChain(l, parts);
        l.Chains[head] = [.. parts];
        Publish(q, head);
        return head;
    }

    private ushort WriteDirectChain(QueueLayout l, IReadOnlyList<(ulong Addr, uint Len, bool Write)> parts)
    {
        var ids = parts.Select(_ => TakeDesc(l)).ToArray();
        for (int i = 0; i < parts.Count; i++)
            WriteDesc(l.Desc, ids[i], parts[i].Addr, parts[i].Len,
                (ushort)((parts[i].Write ? DescWrite : 0) | (i + 1 < parts.Count ? DescNext : 0)),
                i + 1 < parts.Count ? ids[i + 1] : (ushort)0);
        return ids[0];
    }

    /// <summary>Writes a raw descriptor into queue <paramref name="q"/>'s table (for malformed chains).</summary>
    public void WriteRawDescriptor(int q, ushort index, ulong addr, uint len, ushort flags, ushort next) =>
        WriteDesc(_queues[q].Desc, index, addr, len, flags, next);

    public void WriteDesc(ulong table, ushort i, ulong addr, uint len, ushort flags, ushort next)
    {
        var d = Memory.GetSpan(table + 16UL * i, 16);
        BinaryPrimitives.WriteUInt64LittleEndian(d, addr);
        BinaryPrimitives.WriteUInt32LittleEndian(d[8..], len);
        BinaryPrimitives.WriteUInt16LittleEndian(d[12..], flags);
        BinaryPrimitives.WriteUInt16LittleEndian(d[14..], next);
    }

    private static ushort TakeDesc(QueueLayout l)
    {
        ushort d = (ushort)(l.NextDesc % l.Size);
        l.NextDesc++;
        return d;
    }

    /// <summary>Puts <paramref name="head"/> into the available ring and bumps its index.</summary>
    public void Publish(int q, ushort head)
    {
        var l = _queues[q];
        Memory.WriteUInt16(l.Avail + 4 + 2UL * (ushort)(l.AvailIdx % l.Size), head);
        l.AvailIdx++;
        Memory.WriteUInt16(l.Avail + 2, l.AvailIdx);
    }

    /// <summary>Sets the available ring's index directly (for malformed rings).</summary>
    public void SetAvailIndex(int q, ushort idx) => Memory.WriteUInt16(_queues[q].Avail + 2, idx);

    /// <summary>Sets used_event (EVENT_IDX): interrupt when the used index passes it.</summary>
    public void SetUsedEvent(int q, ushort value) => Memory.WriteUInt16(_queues[q].Avail + 4 + 2UL * _queues[q].Size, value);

    public void Notify(int q)
    {
        WriteReg(VirtioMmioRegister.QueueNotify, (uint)q);
        Pump();
    }

    /// <summary>Runs whatever the device's loop has ready, until nothing is.</summary>
    public void Pump(int rounds = 8)
    {
        for (int i = 0; i < rounds; i++) Loop.RunOnce(0);
    }

    /// <summary>Runs the loop until <paramref name="done"/> or the timeout (for devices fed by host fds).</summary>
    public bool PumpUntil(Func<bool> done, int timeoutMs = 5000) => Loop.RunUntil(done, timeoutMs);

    public ushort UsedIndex(int q) => Memory.ReadUInt16(_queues[q].Used + 2);

    /// <summary>Completions the device published since the last call.</summary>
    public List<TestCompletion> TakeUsed(int q)
    {
        var l = _queues[q];
        var result = new List<TestCompletion>();
        ushort idx = UsedIndex(q);
        while (l.LastUsed != idx)
        {
            ulong e = l.Used + 4 + 8UL * (ushort)(l.LastUsed % l.Size);
            ushort head = (ushort)Memory.ReadUInt32(e);
            uint written = Memory.ReadUInt32(e + 4);
            l.LastUsed++;
            var bytes = new List<byte>();
            if (l.Chains.TryGetValue(head, out var parts))
            {
                uint left = written;
                foreach (var p in parts.Where(p => p.Write))
                {
                    uint n = Math.Min(left, p.Len);
                    // A hostile test's buffer outside guest RAM has nothing to show.
                    if (Memory.TryGetSpan(p.Addr, n, out var span)) bytes.AddRange(span.ToArray());
                    left -= n;
                }
            }
            result.Add(new TestCompletion(head, written, [.. bytes]));
        }
        return result;
    }

    /// <summary>Adds a chain, notifies, and returns its single completion.</summary>
    public TestCompletion Request(int q, params TestBuffer[] buffers)
    {
        ushort head = Add(q, buffers);
        Notify(q);
        var done = TakeUsed(q);
        var c = Assert.Single(done);
        Assert.Equal(head, c.Head);
        return c;
    }

    public bool NeedsReset => (ReadReg(VirtioMmioRegister.Status) & VirtioStatus.NeedsReset) != 0;

    public void Dispose()
    {
        Transport.Dispose();
        Loop.Dispose();
        Memory.Dispose();
    }
}
