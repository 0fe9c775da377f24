using System.Buffers.Binary;
using System.Net.Sockets;
using StratoVirt.Devices.Chardev;
using StratoVirt.Tests;
using StratoVirt.Tests.Virtio;
using StratoVirt.Virtio;
using StratoVirt.Virtio.Devices.Balloon;
using StratoVirt.Virtio.Devices.Block;
using StratoVirt.Virtio.Devices.Console;
using StratoVirt.Virtio.Devices.Net;
using StratoVirt.Virtio.Devices.Rng;
using StratoVirt.Virtio.Devices.Vsock;
using StratoVirt.Virtio.Transport.Mmio;

namespace StratoVirt.Fuzz;

/// <summary>The virtio devices the targets drive, each on host resources of its own kind (an image file, a
/// packet socket pair, a vsock listener, a console file), fresh for every run.</summary>
public sealed class FuzzDevices : IDisposable
{
    public enum Kind { Blk, Net, Vsock, Balloon, Console, Rng }

    /// <summary>Guest RAM of every virtio target's guest.</summary>
    public const ulong MemorySize = 1 << 20;

    /// <summary>The host port a guest reaches over vsock (a listener the harness serves).</summary>
    public const uint VsockPort = 1024;

    private readonly TempDir _dir = new();
    private readonly byte[] _image = new byte[64 << 10];
    private Socket? _vsockPeer;
    private readonly List<Socket> _accepted = [];

    private string VsockPath => Path.Combine(_dir.Path, "v.sock");

    /// <summary>The current run's image: a new file each run, so that a lock that outlives a run's close (a test
    /// host forking a child at that moment shares the open file description) cannot refuse the next run's image.</summary>
    private string ImagePath => Path.Combine(_dir.Path, $"disk{_runs}.img");
    private long _runs;

    /// <summary>A new device of <paramref name="kind"/>; <paramref name="options"/> picks the device's own choices
    /// (a read-only drive, balloon features).</summary>
    public VirtioDevice Create(Kind kind, byte options, out PacketPair? pair)
    {
        pair = null;
        switch (kind)
        {
            case Kind.Blk:
                string image = ImagePath;
                File.WriteAllBytes(image, _image);
                return new VirtioBlock(image, readOnly: (options & 1) != 0, direct: false, serial: "fuzz");
            case Kind.Net:
                pair = new PacketPair();
                return new VirtioNet(pair); // the device owns its backend
            case Kind.Vsock:
                if (_vsockPeer is null)
                {
                    _vsockPeer = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    _vsockPeer.Bind(new UnixDomainSocketEndPoint($"{VsockPath}_{VsockPort}"));
                    _vsockPeer.Listen(64);
                }
                return new VirtioVsock(3, VsockPath);
            case Kind.Balloon:
                return new VirtioBalloon(MemorySize, deflateOnOom: (options & 1) != 0, freePageReporting: (options & 2) != 0);
            case Kind.Console:
                return new VirtioConsole(new FileChardev("con0", "/dev/null"));
            default:
                return new VirtioRng("/dev/urandom");
        }
    }

    /// <summary>The host's side of the connections a guest opened to <see cref="VsockPort"/>: each is accepted
    /// and sends <paramref name="data"/> towards the guest.</summary>
    public void ServeVsock(ReadOnlySpan<byte> data)
    {
        while (_vsockPeer is not null && _vsockPeer.Poll(0, SelectMode.SelectRead))
        {
            var s = _vsockPeer.Accept();
            _accepted.Add(s);
            if (!data.IsEmpty) s.Send(data, SocketFlags.None, out _); // the guest may have closed it already
        }
    }

    /// <summary>Closes what a run left open (host connections, the vsock device's socket file).</summary>
    public void EndRun()
    {
        foreach (var s in _accepted) s.Dispose();
        _accepted.Clear();
        File.Delete(VsockPath);
        File.Delete(ImagePath);
        _runs++;
    }

    public void Dispose()
    {
        EndRun();
        _vsockPeer?.Dispose();
        _dir.Dispose();
    }
}

/// <summary>
/// One virtio device's request handling, driven through its virtio-mmio transport as a guest would: the features
/// and queue size from the header, every queue's rings at fixed places in guest memory that the input fills (so
/// the descriptors, the available ring and the buffers are all fuzz data), the notifications in the header's
/// order, then the host's side (a frame towards the guest for net, a connection's data for vsock) and a reset.
/// A device that meets a bad request must serve it or stop itself (NEEDS_RESET); nothing may escape.
/// </summary>
/// <remarks>Input: features u64 (those the device offers are accepted), queue size log2 u8 (up to 16 entries),
/// device options u8, host bytes u8 (in 8s, taken from the start of guest memory), five queue notifications u8
/// (0xFF ends them), then guest memory from address 0. Queue q's descriptor table is at q * 0x200, its available
/// ring at + 0x100, its used ring at + 0x140.</remarks>
public sealed class VirtioDeviceTarget(FuzzDevices.Kind kind) : IFuzzTarget, IDisposable
{
    public const ulong QueueStride = 0x200, AvailOffset = 0x100, UsedOffset = 0x140;
    private readonly FuzzDevices _devices = new();

    public void Run(ReadOnlySpan<byte> input)
    {
        var r = new FuzzReader(input);
        ulong features = r.U64();
        ushort size = (ushort)(1 << (r.U8() % 5));
        byte options = r.U8(), hostBytes = r.U8();
        Span<byte> notifies = stackalloc byte[5];
        r.Bytes(notifies.Length).CopyTo(notifies);
        var memory = r.Bytes((int)FuzzDevices.MemorySize);

        var device = _devices.Create(kind, options, out var pair);
        try
        {
            using var driver = new TestDriver(device, FuzzDevices.MemorySize);
            memory.CopyTo(driver.Memory.GetSpan(0, (ulong)memory.Length));
            if (driver.Negotiate(features & driver.DeviceFeatures()))
            {
                for (int q = 0; q < device.QueueCount; q++)
                {
                    ulong at = (ulong)q * QueueStride;
                    driver.SetupQueue(q, at, at + AvailOffset, at + UsedOffset, size);
                }
                driver.DriverOk();
                foreach (byte q in notifies)
                {
                    if (q == 0xFF) break;
                    driver.Notify(q % device.QueueCount);
                }
                var host = memory[..Math.Min(memory.Length, hostBytes * 8)];
                if (pair is not null && !host.IsEmpty) pair.Send(host.ToArray());
                if (kind == FuzzDevices.Kind.Vsock) _devices.ServeVsock(host);
                driver.Pump();
            }
            driver.WriteReg(VirtioMmioRegister.Status, 0);
            driver.Pump();
        }
        finally
        {
            device.Dispose();
            _devices.EndRun();
        }
    }

    public void Dispose() => _devices.Dispose();
}

/// <summary>
/// The virtio-mmio register map: register reads and writes of every width and alignment, in the input's order, on
/// a device the input picks, with guest memory from the input behind it (so queues it enables may point at real
/// rings). Unknown registers and wrong widths must be ignored, bad configurations refused; nothing may escape.
/// </summary>
/// <remarks>Input: device u8, operation count u8, then per operation: kind u8 (bit 0 write; bits 1-2 the width
/// 1, 2, 4 or 8; bits 3-4 added to the offset), offset u8 (times 2), value u32; then guest memory from address 0.</remarks>
public sealed class VirtioMmioTarget : IFuzzTarget, IDisposable
{
    private readonly FuzzDevices _devices = new();

    public void Run(ReadOnlySpan<byte> input)
    {
        var r = new FuzzReader(input);
        var kind = (FuzzDevices.Kind)(r.U8() % 6);
        int count = r.U8();
        var ops = r.Bytes(6 * count);
        var memory = r.Bytes((int)FuzzDevices.MemorySize);

        var device = _devices.Create(kind, options: 0, out _);
        try
        {
            using var driver = new TestDriver(device, FuzzDevices.MemorySize);
            memory.CopyTo(driver.Memory.GetSpan(0, (ulong)memory.Length));
            Span<byte> data = stackalloc byte[8];
            var o = new FuzzReader(ops);
            while (o.Remaining > 0)
            {
                byte op = o.U8();
                uint offset = o.U8() * 2u + (uint)((op >> 3) & 3);
                uint value = o.U32();
                int width = 1 << ((op >> 1) & 3);
                if (offset + (uint)width > VirtioMmioRegister.WindowSize) continue; // the bus routes only whole accesses in the window
                var access = data[..width];
                if ((op & 1) == 0)
                {
                    driver.Transport.Read(offset, access);
                    continue;
                }
                BinaryPrimitives.WriteUInt32LittleEndian(data, value);
                BinaryPrimitives.WriteUInt32LittleEndian(data[4..], ~value);
                driver.Transport.Write(offset, access);
                driver.Pump(1);
            }
            driver.Pump();
        }
        finally
        {
            device.Dispose();
            _devices.EndRun();
        }
    }

    public void Dispose() => _devices.Dispose();
}
