using System.Buffers.Binary;
using StratoVirt.Boot;
using StratoVirt.Devices;
using StratoVirt.Devices.Legacy;
using StratoVirt.Devices.Pci;
using StratoVirt.Memory;
using StratoVirt.Sys;
using StratoVirt.Tests.Devices;
using StratoVirt.Virtio.Transport.Pci;

namespace StratoVirt.Fuzz;

/// <summary>
/// The q35 machine's PCI side as its builder lays it out: pcie.0 with the MCH at 00:00.0, the ICH9 LPC bridge at
/// 00:1f.0 (and its ACPI registers), a virtio-pci function at 00:01.0 over a device the input picks, the
/// configuration ports at 0xCF8 and the ECAM window, with guest memory from the input behind the queues. Each
/// operation is a configuration access (through ECAM or 0xCF8/0xCFC, every width and offset, so the capability
/// list, BAR sizing and moves and the command register are all reached) or an access of the function's memory BAR
/// (common configuration, notifications, ISR, device configuration, MSI-X table and PBA), through the MMIO bus where
/// the guest mapped it or straight at an offset. <c>virtio-pci</c> aims its configuration accesses at the virtio
/// function; <c>pci-config</c> at every function and at the ports' address register and reset control.
/// Unknown registers and wrong widths must be ignored, bad BAR addresses left unmapped; nothing may escape.
/// </summary>
/// <remarks>Input: device u8, device options u8, operation count u8, then per operation: kind u8 (bit 0 write;
/// bits 1-2 the width 1, 2, 4 or 8; bits 3-4 the route: ECAM, 0xCF8 ports, the mapped BAR, the BAR directly),
/// where u16, value u32; then guest memory from address 0.</remarks>
public sealed class PciTarget(PciTarget.Kind kind) : IFuzzTarget, IDisposable
{
    public enum Kind { VirtioPci, PciConfig }

    /// <summary>Where the virtio function sits (slot 1, function 0).</summary>
    public const int VirtioDevfn = 1 << 3;

    /// <summary>The pci-config target's ECAM accesses go to these functions (by bits 12-13 of where); the last
    /// entry is an empty function.</summary>
    private static readonly int[] ConfigTargets = [0, Ich9LpcBridge.Slot << 3, VirtioDevfn, 2 << 3];

    private readonly FuzzDevices _devices = new();
    private readonly NoMsi _msi = new();

    private sealed class NoMsi : IMsiController
    {
        public void Send(MsiMessage message) { }
    }

    public void Run(ReadOnlySpan<byte> input)
    {
        var r = new FuzzReader(input);
        var deviceKind = (FuzzDevices.Kind)(r.U8() % 6);
        byte options = r.U8();
        int count = r.U8();
        var ops = r.Bytes(7 * count);
        var guest = r.Bytes((int)FuzzDevices.MemorySize);

        var device = _devices.Create(deviceKind, options, out _);
        var loop = new EventLoop("fuzz");
        var memory = new GuestMemory([(0UL, FuzzDevices.MemorySize)], RamBacking.Default);
        VirtioPciFunction? function = null;
        try
        {
            device.Loop = loop;
            guest.CopyTo(memory.GetSpan(0, (ulong)guest.Length));
            var pio = new IoBus("pio");
            var mmio = new IoBus("mmio");
            var bus = new PciBus("pcie.0", pio, mmio);
            bus.Attach(0, 0, new Q35HostBridge(Q35Layout.EcamBase));
            bus.Attach(Ich9LpcBridge.Slot, 0, new Ich9LpcBridge(Ich9PowerManagement.DefaultBase));
            pio.Register(PciConfigPorts.Base, PciConfigPorts.Length, new PciConfigPorts(bus, () => { }));
            mmio.Register(Q35Layout.EcamBase, PciEcam.Size, new PciEcam(bus));
            pio.Register(Ich9PowerManagement.DefaultBase, Ich9PowerManagement.Length, new Ich9PowerManagement(() => { }));
            function = new VirtioPciFunction(device, memory, new CountingInterruptLine(), _msi, doorbells: null);
            bus.Attach(VirtioDevfn >> 3, 0, function);
            function.Attach();

            Span<byte> data = stackalloc byte[8];
            var o = new FuzzReader(ops);
            while (o.Remaining > 0)
            {
                byte op = o.U8();
                ushort where = o.U16();
                uint value = o.U32();
                var access = data[..(1 << ((op >> 1) & 3))];
                bool write = (op & 1) != 0;
                if (write)
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(data, value);
                    BinaryPrimitives.WriteUInt32LittleEndian(data[4..], ~value);
                }
                switch ((op >> 3) & 3)
                {
                    case 0: // ECAM: the function's 4 KiB of configuration space
                        int devfn = kind == Kind.PciConfig ? ConfigTargets[(where >> 12) & 3] : VirtioDevfn;
                        Access(mmio, Q35Layout.EcamBase + ((ulong)devfn << 12) + (where & 0xFFFu), access, write);
                        break;
                    case 1: // mechanism #1: the address register, reset control and the data window
                        ulong port = PciConfigPorts.Base + (where & 7u);
                        if (kind == Kind.VirtioPci && write && port == PciConfigPorts.Base && access.Length == 4)
                            BinaryPrimitives.WriteUInt32LittleEndian(data, 0x8000_0000u | (uint)VirtioDevfn << 8 | (value & 0xFC));
                        Access(pio, port, access, write);
                        break;
                    case 2: // the BAR where the guest mapped it (unmapped: nobody answers)
                        ulong bar = bus.MappedAddress(function, VirtioPciRegister.Bar) ?? Q35Layout.Mmio32Base;
                        Access(mmio, bar + where, access, write);
                        break;
                    default: // the BAR's registers whether or not the guest mapped it
                        ulong offset = where % function.BarSize;
                        if (offset + (ulong)access.Length > function.BarSize) continue; // the bus routes only whole accesses
                        if (write) function.Write(offset, access);
                        else function.Read(offset, access);
                        break;
                }
                if (write) loop.RunOnce(0);
            }
            for (int i = 0; i < 8; i++) loop.RunOnce(0);
        }
        finally
        {
            if (function is not null) function.Dispose();
            else device.Dispose();
            memory.Dispose();
            loop.Dispose();
            _devices.EndRun();
        }
    }

    private static void Access(IoBus bus, ulong address, Span<byte> data, bool write)
    {
        if (write) bus.Write(address, data);
        else bus.Read(address, data);
    }

    public void Dispose() => _devices.Dispose();
}
