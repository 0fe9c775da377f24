namespace StratoVirt.Devices.Pci;

/// <summary>
/// A PCI Express root port (upstream's pcie-root-port, 1b36:000c): a PCI-to-PCI bridge function (type 1 header:
/// bus numbers, I/O, memory and prefetchable windows, bridge control) whose secondary bus is one hot-plug slot.
/// Its PCI Express capability says root port, slot implemented; the slot has an attention button, a power
/// controller, power and attention indicators and is hot-plug capable and surprise-capable, with the port number
/// as its physical slot number; the link reports Data Link Layer Link Active. Hot-plug events interrupt through
/// MSI when the guest enabled it, else on INTA# as a level.
/// <para>Native hotplug (PCIe 6.7.3): <see cref="Plug"/> sets Presence Detect State, Presence Detect Changed, Data
/// Link Layer State Changed and link active; <see cref="RequestUnplug"/> presses the attention button (with
/// fast unplug also Presence Detect Changed, so that Linux powers the slot off at once instead of after its 5 s
/// button delay). When the guest then turns the slot's power off (Power Controller Control) the port takes every
/// function off its secondary bus and hands them to its owner. Every write of Slot Control is a command that
/// completes at once (Command Completed).</para>
/// Threading: configuration accesses come from vCPUs under the parent bus's lock, hotplug requests from the main
/// loop; the port's own lock orders them (parent bus, then port, then secondary bus).
/// </summary>
public sealed class PcieRootPort : PciFunction
{
    public const ushort VendorRedHat = 0x1B36, DeviceIdValue = 0x000C;
    public const byte ExpressCapabilityId = 0x10;
    private const int ExpressCapabilityLength = 0x3C;

    // Offsets within the PCI Express capability.
    public const int ExpFlags = 0x02, DeviceCapabilities = 0x04, DeviceControl = 0x08, DeviceStatus = 0x0A;
    public const int LinkCapabilities = 0x0C, LinkControl = 0x10, LinkStatus = 0x12, SlotCapabilities = 0x14;
    public const int SlotControl = 0x18, SlotStatus = 0x1A, RootControl = 0x1C, LinkCapabilities2 = 0x2C, LinkControl2 = 0x30;

    // Slot Status events and state.
    public const ushort AttentionButtonPressed = 1 << 0, PowerFaultDetected = 1 << 1, PresenceDetectChanged = 1 << 3;
    public const ushort CommandCompleted = 1 << 4, PresenceDetectState = 1 << 6, LinkStateChanged = 1 << 8;
    private const ushort SlotEvents = AttentionButtonPressed | PowerFaultDetected | PresenceDetectChanged | CommandCompleted | LinkStateChanged;

    // Slot Control: an enable per event (Data Link Layer State Changed Enable is bit 12), the interrupt enable,
    // the indicators and the power controller.
    public const ushort AttentionButtonEnable = 1 << 0, PowerFaultEnable = 1 << 1, PresenceDetectEnable = 1 << 3;
    public const ushort CommandCompletedEnable = 1 << 4, HotplugInterruptEnable = 1 << 5, LinkStateChangedEnable = 1 << 12;
    public const ushort AttentionIndicator = 0b11 << 6, PowerIndicator = 0b11 << 8, PowerControllerOff = 1 << 10;
    private const ushort AttentionIndicatorOff = 0b11 << 6, PowerIndicatorOn = 0b01 << 8, PowerIndicatorOff = 0b11 << 8;
    /// <summary>Slot Control at power-on and after a reset: slot powered off, both indicators off.</summary>
    private const ushort SlotControlAtPowerOn = AttentionIndicatorOff | PowerIndicatorOff | PowerControllerOff;
    private const ushort LinkControl2AtPowerOn = 1; // target 2.5 GT/s
    private const ushort SlotControlWritable = AttentionButtonEnable | PowerFaultEnable | PresenceDetectEnable
        | CommandCompletedEnable | HotplugInterruptEnable | AttentionIndicator | PowerIndicator | PowerControllerOff | LinkStateChangedEnable;

    // Slot Capabilities: attention button, power controller, attention and power indicators, hot-plug surprise
    // and capable; the physical slot number from bit 19.
    private const uint SlotCapabilityBits = 1 << 0 | 1 << 1 | 1 << 3 | 1 << 4 | 1 << 5 | 1 << 6;
    private const int PhysicalSlotShift = 19;

    /// <summary>Link Status: 2.5 GT/s, x1, and Data Link Layer Link Active (bit 13).</summary>
    public const ushort LinkActive = 1 << 13;
    private const ushort LinkSpeedWidth = 0x1 | 0x1 << 4;
    /// <summary>Link Capabilities: 2.5 GT/s, x1, Data Link Layer Link Active Reporting Capable; port number in 31:24.</summary>
    private const uint LinkCapabilityBits = 0x1 | 0x1 << 4 | 1 << 20;

    private const ushort BridgeControlWritable = 0x7F; // parity, SERR, ISA, VGA, VGA 16-bit, master abort, bus reset

    private readonly string _id;
    private readonly MsiCapability _msi = new();
    private readonly IInterruptLine _intx;
    private readonly IMsiController _msiController;
    private readonly bool _fastUnplug;
    private readonly Action<IReadOnlyList<PciFunction>> _removed;
    private readonly Lock _gate = new();
    private readonly int _exp;
    private bool _interruptPending, _intxAsserted, _unplugRequested;

    /// <param name="id">The -device id, which names the secondary bus too.</param>
    /// <param name="port">The port number (Link Capabilities) and physical slot number.</param>
    /// <param name="secondary">The bus behind the port; the owner attaches the slot's functions to it.</param>
    /// <param name="fastUnplug">-global pcie-root-port.fast-unplug=1: an unplug request also says the card is
    /// gone, so that the guest does not wait for its attention-button delay.</param>
    /// <param name="removed">Receives the functions the port took off its secondary bus when the guest powered
    /// the slot off (on the vCPU that wrote Slot Control, under the port's lock: queue them, do not block).</param>
    public PcieRootPort(string id, byte port, bool multiFunction, PciBus secondary, IInterruptLine intx, IMsiController msi,
        bool fastUnplug, Action<IReadOnlyList<PciFunction>> removed)
        : base(new PciConfigSpace(PciConfigSpace.ExpressSize, VendorRedHat, DeviceIdValue, 0x060400, 0, multiFunction))
    {
        _id = id;
        Secondary = secondary;
        _intx = intx;
        _msiController = msi;
        _fastUnplug = fastUnplug;
        _removed = removed;
        var c = Config;
        c.SetU8(PciConfigSpace.HeaderType, (byte)(c.GetU8(PciConfigSpace.HeaderType) | PciConfigSpace.HeaderTypeBridge));
        for (int b = PciConfigSpace.PrimaryBus; b <= PciConfigSpace.SubordinateBus + 1; b++) c.SetWritableU8(b, 0xFF);
        c.SetWritableU8(PciConfigSpace.IoBase, 0xF0); // 16-bit I/O decode: the low nibble stays 0
        c.SetWritableU8(PciConfigSpace.IoLimit, 0xF0);
        c.SetClearOnWriteU16(PciConfigSpace.SecondaryStatus, PciConfigSpace.StatusErrors);
        c.SetWritableU16(PciConfigSpace.MemoryBase, 0xFFF0);
        c.SetWritableU16(PciConfigSpace.MemoryLimit, 0xFFF0);
        c.SetU16(PciConfigSpace.PrefetchBase, 1); // 64-bit prefetchable window
        c.SetU16(PciConfigSpace.PrefetchLimit, 1);
        c.SetWritableU16(PciConfigSpace.PrefetchBase, 0xFFF0);
        c.SetWritableU16(PciConfigSpace.PrefetchLimit, 0xFFF0);
        c.SetWritableU32(PciConfigSpace.PrefetchBaseUpper, 0xFFFF_FFFF);
        c.SetWritableU32(PciConfigSpace.PrefetchLimitUpper, 0xFFFF_FFFF);
        c.SetWritableU16(PciConfigSpace.BridgeControl, BridgeControlWritable);
        c.SetU8(PciConfigSpace.InterruptPin, 1); // INTA#

        _exp = c.AddCapability(ExpressCapabilityId, ExpressCapabilityLength);
        const ushort version2 = 2, rootPort = 4 << 4, slotImplemented = 1 << 8;
        c.SetU16(_exp + ExpFlags, version2 | rootPort | slotImplemented);
        c.SetU32(_exp + DeviceCapabilities, 1 << 15); // role-based error reporting
        c.SetWritableU16(_exp + DeviceControl, 0x7FFF);
        c.SetClearOnWriteU16(_exp + DeviceStatus, 0x000F);
        c.SetU32(_exp + LinkCapabilities, LinkCapabilityBits | (uint)port << 24);
        c.SetWritableU16(_exp + LinkControl, 0x00DB); // ASPM, RCB, link disable, common clock, extended sync
        c.SetU32(_exp + SlotCapabilities, SlotCapabilityBits | (uint)port << PhysicalSlotShift);
        c.SetU16(_exp + SlotControl, SlotControlAtPowerOn); // empty and off
        c.SetWritableU16(_exp + SlotControl, SlotControlWritable);
        c.SetClearOnWriteU16(_exp + SlotStatus, SlotEvents);
        c.SetWritableU16(_exp + RootControl, 0x000F);
        c.SetU32(_exp + LinkCapabilities2, 1 << 1); // supports 2.5 GT/s
        c.SetU16(_exp + LinkControl2, LinkControl2AtPowerOn);
        c.SetWritableU16(_exp + LinkControl2, 0x000F);
        _msi.AddCapability(c);
    }

    public override string Name => _id;

    public override string QdevId => _id;

    /// <summary>The bus behind the port (one slot, device 0).</summary>
    public PciBus Secondary { get; }

    /// <summary>The offset of the PCI Express capability.</summary>
    public int ExpressCapability => _exp;

    /// <summary>The offset of the MSI capability.</summary>
    public int MsiCapabilityOffset => _msi.Offset;

    /// <summary>Whether a card is in the slot (Presence Detect State).</summary>
    public bool Occupied
    {
        get { lock (_gate) return (SlotStatusValue & PresenceDetectState) != 0; }
    }

    /// <summary>Whether the slot has power (Power Controller Control is on).</summary>
    public bool Powered
    {
        get { lock (_gate) return (SlotControlValue & PowerControllerOff) == 0; }
    }

    /// <summary>Whether an unplug request waits for the guest to power the slot off.</summary>
    public bool UnplugPending
    {
        get { lock (_gate) return _unplugRequested; }
    }

    private ushort SlotStatusValue => Config.GetU16(_exp + SlotStatus);

    private ushort SlotControlValue => Config.GetU16(_exp + SlotControl);

    /// <summary>The slot's state at start, before the guest runs: a cold-plugged card is present, powered, its link
    /// up and its power indicator on, as firmware leaves it.</summary>
    public void ColdPlugged()
    {
        lock (_gate)
        {
            Config.SetU16(_exp + SlotStatus, PresenceDetectState);
            Config.SetU16(_exp + SlotControl, AttentionIndicatorOff | PowerIndicatorOn);
            Config.SetU16(_exp + LinkStatus, LinkSpeedWidth | LinkActive);
        }
    }

    /// <summary>A card was put into the slot (its functions are on <see cref="Secondary"/> already): presence and
    /// the link come up, and the guest is interrupted if it enabled the events.</summary>
    public void Plug()
    {
        lock (_gate)
        {
            if ((SlotStatusValue & PresenceDetectState) != 0) throw new PciException($"{_id}: the slot is occupied");
            _unplugRequested = false;
            SetStatus(PresenceDetectState | PresenceDetectChanged | LinkStateChanged, 0);
            Config.SetU16(_exp + LinkStatus, LinkSpeedWidth | LinkActive);
            UpdateInterrupt();
        }
    }

    /// <summary>Asks the guest to release the card (presses the attention button); the functions go when the guest
    /// powers the slot off. A slot that is powered off already is emptied at once: returns true then.</summary>
    public bool RequestUnplug()
    {
        lock (_gate)
        {
            if ((SlotStatusValue & PresenceDetectState) == 0) throw new PciException($"{_id}: the slot is empty");
            if ((SlotControlValue & PowerControllerOff) != 0)
            {
                RemoveCard();
                return true;
            }
            if (_unplugRequested) throw new PciException($"{_id}: an unplug is already in progress (waiting for the guest to power the slot off)");
            _unplugRequested = true;
            Config.SetU16(_exp + LinkStatus, LinkSpeedWidth);
            SetStatus((ushort)(AttentionButtonPressed | (_fastUnplug ? PresenceDetectChanged : 0)), 0);
            UpdateInterrupt();
            return false;
        }
    }

    public override void ReadConfig(int offset, Span<byte> data)
    {
        lock (_gate) base.ReadConfig(offset, data);
    }

    public override void WriteConfig(int offset, ReadOnlySpan<byte> data)
    {
        lock (_gate)
        {
            ushort oldControl = SlotControlValue;
            base.WriteConfig(offset, data);
            if (Touches(offset, data.Length, _exp + SlotControl, 2))
            {
                // A slot powered off with a card in it: the guest released the card, so it goes.
                if ((oldControl & PowerControllerOff) == 0 && (SlotControlValue & PowerControllerOff) != 0
                    && (SlotStatusValue & PresenceDetectState) != 0)
                    RemoveCard();
                UpdateInterrupt();
                // The command completed (at once): its own event, after any the command caused.
                SetStatus(CommandCompleted, 0);
            }
            UpdateInterrupt();
        }
    }

    /// <summary>The bus numbered <paramref name="number"/> if it is this port's secondary bus or below it; a slot
    /// without power has no link, so nothing answers behind it.</summary>
    public override PciBus? BusBehind(int number)
    {
        int secondary = Config.GetU8(PciConfigSpace.SecondaryBus), subordinate = Config.GetU8(PciConfigSpace.SubordinateBus);
        if (secondary == 0 || number < secondary || number > subordinate) return null;
        if (number != secondary) return Secondary.BusBehind(number);
        return (Config.GetU16(_exp + SlotControl) & PowerControllerOff) == 0 ? Secondary : null;
    }

    public override PciBridgeInfo DescribeBridge()
    {
        lock (_gate)
        {
            var c = Config;
            int secondary = c.GetU8(PciConfigSpace.SecondaryBus);
            ulong ioBase = (ulong)(c.GetU8(PciConfigSpace.IoBase) & 0xF0) << 8;
            ulong ioLimit = (ulong)(c.GetU8(PciConfigSpace.IoLimit) & 0xF0) << 8 | 0xFFF;
            ulong memBase = (ulong)(c.GetU16(PciConfigSpace.MemoryBase) & 0xFFF0) << 16;
            ulong memLimit = (ulong)(c.GetU16(PciConfigSpace.MemoryLimit) & 0xFFF0) << 16 | 0xF_FFFF;
            ulong prefBase = (ulong)(c.GetU16(PciConfigSpace.PrefetchBase) & 0xFFF0) << 16 | (ulong)c.GetU32(PciConfigSpace.PrefetchBaseUpper) << 32;
            ulong prefLimit = (ulong)(c.GetU16(PciConfigSpace.PrefetchLimit) & 0xFFF0) << 16 | 0xF_FFFF
                | (ulong)c.GetU32(PciConfigSpace.PrefetchLimitUpper) << 32;
            return new PciBridgeInfo(c.GetU8(PciConfigSpace.PrimaryBus), secondary, c.GetU8(PciConfigSpace.SubordinateBus),
                (ioBase, ioLimit), (memBase, memLimit), (prefBase, prefLimit), Secondary.Describe(secondary));
        }
    }

    /// <summary>A machine reset: a card the guest was asked to release goes (as if the guest had powered the slot
    /// off, so its DEVICE_DELETED follows), then the configuration space is as at power-on (slot powered off with
    /// its indicators off, link down, no event, no interrupt) with a remaining card still present, and the bus
    /// behind the port is reset; the machine then powers an occupied slot again as firmware does.</summary>
    public override void Reset()
    {
        lock (_gate)
        {
            if (_unplugRequested && (SlotStatusValue & PresenceDetectState) != 0) RemoveCard();
            bool present = (SlotStatusValue & PresenceDetectState) != 0;
            base.Reset();
            Config.SetU16(_exp + SlotControl, SlotControlAtPowerOn);
            Config.SetU16(_exp + SlotStatus, present ? PresenceDetectState : (ushort)0);
            Config.SetU16(_exp + LinkStatus, LinkSpeedWidth);
            Config.SetU16(_exp + LinkControl2, LinkControl2AtPowerOn);
            _interruptPending = false;
            if (_intxAsserted)
            {
                _intxAsserted = false;
                _intx.SetLevel(false);
            }
        }
        Secondary.Reset();
    }

    /// <summary>Takes the card's functions off the secondary bus: presence and the link go down, which the guest
    /// is told as events.</summary>
    private void RemoveCard()
    {
        _unplugRequested = false;
        var gone = Secondary.DetachAll();
        Config.SetU16(_exp + LinkStatus, LinkSpeedWidth);
        SetStatus(PresenceDetectChanged | LinkStateChanged, PresenceDetectState);
        UpdateInterrupt();
        _removed(gone);
    }

    private void SetStatus(ushort set, ushort clear) =>
        Config.SetU16(_exp + SlotStatus, (ushort)((SlotStatusValue | set) & ~clear));

    /// <summary>The hot-plug interrupt (PCIe 6.7.3.4): pending while the interrupt is enabled and an event is set
    /// whose enable is set. MSI sends a message when it becomes pending; INTA# is a level that follows it.</summary>
    private void UpdateInterrupt()
    {
        ushort status = SlotStatusValue, control = SlotControlValue;
        bool events = (status & control & (SlotEvents & ~LinkStateChanged)) != 0
                      || ((status & LinkStateChanged) != 0 && (control & LinkStateChangedEnable) != 0);
        bool pending = (control & HotplugInterruptEnable) != 0 && events;
        bool msi = _msi.Enabled(Config);
        if (msi && pending && !_interruptPending) _msiController.Send(_msi.Message(Config));
        _interruptPending = pending;
        bool assert = pending && !msi && (Config.CommandValue & PciConfigSpace.CommandInterruptDisable) == 0;
        if (assert == _intxAsserted) return;
        _intxAsserted = assert;
        ushort pciStatus = Config.GetU16(PciConfigSpace.Status);
        Config.SetU16(PciConfigSpace.Status, assert ? (ushort)(pciStatus | PciConfigSpace.StatusInterrupt)
            : (ushort)(pciStatus & ~PciConfigSpace.StatusInterrupt));
        _intx.SetLevel(assert);
    }

    private static bool Touches(int offset, int length, int register, int size) => offset < register + size && offset + length > register;
}

/// <summary>A bridge as QMP query-pci shows it: its bus numbers, the windows it forwards (base and limit) and the
/// functions on its secondary bus.</summary>
public sealed record PciBridgeInfo(int Primary, int Secondary, int Subordinate, (ulong Base, ulong Limit) Io,
    (ulong Base, ulong Limit) Memory, (ulong Base, ulong Limit) Prefetchable, IReadOnlyList<PciFunctionInfo> Devices);
