namespace StratoVirt.Devices.Pci;

/// <summary>
/// A function's MSI capability (PCI 3.0, section 6.8.1) for a single vector: a 64-bit message address, 16 bits of
/// message data, no per-vector masking. The guest programs it in configuration space; the function reads it back
/// when it interrupts.
/// </summary>
public sealed class MsiCapability
{
    public const byte CapabilityId = 0x05;
    public const int CapabilityLength = 14;

    private const ushort ControlEnable = 1, ControlMultipleEnable = 0x70, Control64Bit = 1 << 7;

    private int _at;

    /// <summary>Appends the capability to <paramref name="config"/>, disabled.</summary>
    public void AddCapability(PciConfigSpace config)
    {
        _at = config.AddCapability(CapabilityId, CapabilityLength);
        config.SetU16(_at + 2, Control64Bit);
        // Multiple Message Enable is writable but this function sends one vector whatever it says.
        config.SetWritableU16(_at + 2, ControlEnable | ControlMultipleEnable);
        config.SetWritableU32(_at + 4, 0xFFFF_FFFC);
        config.SetWritableU32(_at + 8, 0xFFFF_FFFF);
        config.SetWritableU16(_at + 12, 0xFFFF);
    }

    /// <summary>The capability's offset in configuration space.</summary>
    public int Offset => _at;

    /// <summary>Whether the guest turned MSI on (the function's INTx pin is then unused).</summary>
    public bool Enabled(PciConfigSpace config) => (config.GetU16(_at + 2) & ControlEnable) != 0;

    /// <summary>The message the guest programmed.</summary>
    public MsiMessage Message(PciConfigSpace config) =>
        new(config.GetU32(_at + 4) | ((ulong)config.GetU32(_at + 8) << 32), config.GetU16(_at + 12));
}
