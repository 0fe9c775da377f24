using System.Buffers.Binary;
using StratoVirt.Sys;

namespace StratoVirt.Devices.Pci;

/// <summary>
/// A function's MSI-X capability, vector table and pending-bit array (PCI 3.0, section 6.8.2). The table and the
/// PBA live in one of the function's memory BARs, which forwards their accesses here; the capability's message
/// control (enable, function mask) is read back from the configuration space after each guest write. A vector
/// raised while it or the function is masked sets its pending bit and is sent when it is unmasked.
/// With <see cref="IIrqfdRoutes"/> each vector has an eventfd routed to its message in the hypervisor, set up and
/// retargeted on the vCPU whose table write made the vector deliverable or changed its message; a device loop
/// then raises the vector by signalling that eventfd (no KVM call on the loop). Without routes, or where the host
/// could not route a vector, the message goes to the <see cref="IMsiController"/>.
/// Threading: the table is written by vCPUs and vectors are raised from device loops; one lock covers both.
/// </summary>
public sealed class MsixTable : IDisposable
{
    public const byte CapabilityId = 0x11;
    public const int CapabilityLength = 12;
    public const int EntrySize = 16;
    /// <summary>The largest table a function may have (the table size field is 11 bits).</summary>
    public const int MaxVectors = 2048;

    private const ushort ControlEnable = 1 << 15, ControlFunctionMask = 1 << 14;
    private const uint VectorMasked = 1;

    private readonly uint[] _entries; // four dwords per vector: address low, address high, data, vector control
    private readonly ulong[] _pending;
    private readonly IMsiController _controller;
    private readonly IIrqfdRoutes? _routes;
    /// <summary>Per vector with routes: its eventfd (made up front, so a vCPU never creates one), the interrupt
    /// number once bound, and the message the route carries now (null: not bound, or the host refused).</summary>
    private readonly VectorRoute[] _vectorRoutes;
    private readonly Lock _gate = new();
    private int _capability;
    private bool _enabled, _functionMasked, _routeRefusalLogged, _disposed;

    private struct VectorRoute
    {
        public EventFd Fd;
        public uint? Gsi;
        public MsiMessage? Message;
    }

    public MsixTable(int vectors, IMsiController controller, IIrqfdRoutes? routes = null)
    {
        if (vectors is < 1 or > MaxVectors)
            throw new ArgumentOutOfRangeException(nameof(vectors), $"an MSI-X table has 1 to {MaxVectors} vectors");
        _controller = controller;
        _entries = new uint[vectors * 4];
        _pending = new ulong[(vectors + 63) / 64];
        for (int v = 0; v < vectors; v++) _entries[v * 4 + 3] = VectorMasked; // masked at reset
        _routes = routes;
        _vectorRoutes = new VectorRoute[routes is null ? 0 : vectors];
        try
        {
            for (int v = 0; v < _vectorRoutes.Length; v++) _vectorRoutes[v].Fd = new EventFd();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public int Vectors => _entries.Length / 4;

    /// <summary>Bytes of BAR space the table takes.</summary>
    public int TableSize => Vectors * EntrySize;

    /// <summary>Bytes of BAR space the pending-bit array takes (whole qwords).</summary>
    public int PbaSize => _pending.Length * 8;

    /// <summary>Whether the guest enabled MSI-X (the function's INTx pin is then unused).</summary>
    public bool Enabled
    {
        get { lock (_gate) return _enabled; }
    }

    /// <summary>Adds the capability to <paramref name="config"/>: the table at <paramref name="tableOffset"/> and
    /// the PBA at <paramref name="pbaOffset"/> of BAR <paramref name="bar"/> (offsets 8-byte aligned).</summary>
    public void AddCapability(PciConfigSpace config, int bar, uint tableOffset, uint pbaOffset)
    {
        if ((tableOffset | pbaOffset) % 8 != 0) throw new ArgumentException("MSI-X table and PBA offsets are 8-byte aligned");
        _capability = config.AddCapability(CapabilityId, CapabilityLength);
        config.SetU16(_capability + 2, (ushort)(Vectors - 1));
        config.SetWritableU16(_capability + 2, ControlEnable | ControlFunctionMask);
        config.SetU32(_capability + 4, tableOffset | (uint)bar);
        config.SetU32(_capability + 8, pbaOffset | (uint)bar);
    }

    /// <summary>Whether a configuration write at [offset, offset+length) reached the message control register.</summary>
    public bool ControlTouched(int offset, int length) =>
        _capability != 0 && offset < _capability + 4 && offset + length > _capability + 2;

    /// <summary>Takes the guest's new message control from <paramref name="config"/>; vectors pending behind a
    /// function mask it lifted are sent.</summary>
    public void ControlWritten(PciConfigSpace config)
    {
        ushort control = config.GetU16(_capability + 2);
        lock (_gate)
        {
            _enabled = (control & ControlEnable) != 0;
            _functionMasked = (control & ControlFunctionMask) != 0;
            for (int v = 0; v < Vectors; v++)
            {
                FollowLocked(v);
                SendIfPendingLocked(v);
            }
        }
    }

    /// <summary>Raises <paramref name="vector"/>: sent now, or left pending while masked. A vector past the table
    /// is ignored (the guest programmed it; the device cannot do better).</summary>
    public void Raise(int vector)
    {
        if ((uint)vector >= (uint)Vectors) return;
        lock (_gate)
        {
            if (!_enabled) return;
            if (_functionMasked || (_entries[vector * 4 + 3] & VectorMasked) != 0) _pending[vector / 64] |= 1UL << (vector % 64);
            else Send(vector);
        }
    }

    /// <summary>Whether <paramref name="vector"/> waits behind a mask.</summary>
    public bool IsPending(int vector)
    {
        lock (_gate) return (uint)vector < (uint)Vectors && (_pending[vector / 64] & (1UL << (vector % 64))) != 0;
    }

    /// <summary>The message <paramref name="vector"/> would send now: null while MSI-X is off, the function or the
    /// vector is masked, or the vector is past the table. A transport that binds an eventfd to the vector in the
    /// hypervisor (irqfd) keeps it bound only while this is non-null, and re-reads it after each table or message
    /// control write.</summary>
    public MsiMessage? Deliverable(int vector)
    {
        if ((uint)vector >= (uint)Vectors) return null;
        lock (_gate) return DeliverableLocked(vector);
    }

    private MsiMessage? DeliverableLocked(int vector)
    {
        int e = vector * 4;
        if (!_enabled || _functionMasked || (_entries[e + 3] & VectorMasked) != 0) return null;
        return new MsiMessage(_entries[e] | ((ulong)_entries[e + 1] << 32), _entries[e + 2]);
    }

    /// <summary>A guest read of the table: aligned dwords or qwords; anything else reads as zeros.</summary>
    public void ReadTable(ulong offset, Span<byte> data)
    {
        data.Clear();
        if (!Aligned(offset, data.Length) || offset + (ulong)data.Length > (ulong)TableSize) return;
        lock (_gate)
        {
            int first = (int)(offset / 4);
            for (int i = 0; i < data.Length / 4; i++)
                BinaryPrimitives.WriteUInt32LittleEndian(data[(i * 4)..], _entries[first + i]);
        }
    }

    /// <summary>A guest write of the table; only the mask bit of vector control is writable there, and a vector
    /// it unmasks is sent if pending.</summary>
    public void WriteTable(ulong offset, ReadOnlySpan<byte> data)
    {
        if (!Aligned(offset, data.Length) || offset + (ulong)data.Length > (ulong)TableSize) return;
        lock (_gate)
        {
            int first = (int)(offset / 4);
            for (int i = 0; i < data.Length / 4; i++)
            {
                int index = first + i;
                uint value = BinaryPrimitives.ReadUInt32LittleEndian(data[(i * 4)..]);
                _entries[index] = index % 4 == 3 ? value & VectorMasked : value;
                FollowLocked(index / 4);
                if (index % 4 == 3) SendIfPendingLocked(index / 4);
            }
        }
    }

    /// <summary>A guest read of the PBA (read-only; writes are dropped by the caller).</summary>
    public void ReadPba(ulong offset, Span<byte> data)
    {
        data.Clear();
        if (!Aligned(offset, data.Length) || offset + (ulong)data.Length > (ulong)PbaSize) return;
        Span<byte> bytes = stackalloc byte[8];
        lock (_gate)
        {
            for (int i = 0; i < data.Length; i += 4)
            {
                ulong at = offset + (ulong)i;
                BinaryPrimitives.WriteUInt64LittleEndian(bytes, _pending[at / 8]);
                bytes.Slice((int)(at % 8), 4).CopyTo(data[i..]);
            }
        }
    }

    /// <summary>The power-on state (a function reset): MSI-X off and not function-masked, every vector's message
    /// zero and masked, nothing pending. The capability's message control in the configuration space is the
    /// caller's to reset (<see cref="PciConfigSpace.Reset"/>).</summary>
    public void Reset()
    {
        lock (_gate)
        {
            (_enabled, _functionMasked) = (false, false);
            Array.Clear(_entries);
            for (int v = 0; v < Vectors; v++) _entries[v * 4 + 3] = VectorMasked;
            Array.Clear(_pending);
        }
    }

    private static bool Aligned(ulong offset, int length) => length is 4 or 8 && offset % (ulong)length == 0;

    private void SendIfPendingLocked(int vector)
    {
        ulong bit = 1UL << (vector % 64);
        if ((_pending[vector / 64] & bit) == 0 || !_enabled || _functionMasked || (_entries[vector * 4 + 3] & VectorMasked) != 0)
            return;
        _pending[vector / 64] &= ~bit;
        Send(vector);
    }

    private void Send(int vector)
    {
        int e = vector * 4;
        var message = new MsiMessage(_entries[e] | ((ulong)_entries[e + 1] << 32), _entries[e + 2]);
        if (vector < _vectorRoutes.Length && _vectorRoutes[vector].Message == message) _vectorRoutes[vector].Fd.Signal();
        else _controller.Send(message);
    }

    /// <summary>Points <paramref name="vector"/>'s route at its message once it is deliverable: bound on first use,
    /// retargeted when the guest changed the message. A masked vector keeps its route (nothing signals it while the
    /// table holds its raises pending). A host that refuses leaves the vector to the controller, logged once.</summary>
    private void FollowLocked(int vector)
    {
        if (vector >= _vectorRoutes.Length || _disposed || DeliverableLocked(vector) is not { } wanted) return;
        ref var route = ref _vectorRoutes[vector];
        if (route.Message == wanted) return;
        route.Message = null;
        try
        {
            if (route.Gsi is { } gsi) _routes!.Retarget(gsi, wanted);
            else route.Gsi = _routes!.Bind(route.Fd, wanted);
            route.Message = wanted;
        }
        catch (SysException e)
        {
            if (_routeRefusalLogged) return;
            _routeRefusalLogged = true;
            Log.Warn($"MSI-X vector {vector}: no interrupt route ({e.Message}); its messages are sent by the VMM instead");
        }
    }

    /// <summary>Unbinds and closes the vectors' eventfds (a function taken away or the machine ending). Raises after
    /// this go to the controller.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            for (int v = 0; v < _vectorRoutes.Length; v++)
            {
                ref var route = ref _vectorRoutes[v];
                route.Message = null;
                if (route.Gsi is { } gsi)
                {
                    try { _routes!.Unbind(route.Fd, gsi); }
                    catch (SysException e) { Log.Warn($"MSI-X vector {v}: removing its interrupt route: {e.Message}"); }
                }
                route.Fd?.Dispose();
            }
        }
    }
}
