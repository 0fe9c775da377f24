namespace StratoVirt.Virtio.Transport.Pci;

/// <summary>
/// The virtio-pci modern transport's constants (virtio 1.2, section 4.1): the identity of a non-transitional
/// function, the vendor capability types, the common configuration structure's fields, and where this
/// implementation puts each structure in its one memory BAR.
/// </summary>
public static class VirtioPciRegister
{
    public const ushort VendorId = 0x1AF4, SubsystemVendorId = 0x1AF4, SubsystemId = 0x1100;
    /// <summary>Non-transitional device ids are 0x1040 plus the virtio device type.</summary>
    public const ushort DeviceIdBase = 0x1040;
    public const byte Revision = 1;

    /// <summary>The vendor-specific capability and its cfg_type values.</summary>
    public const byte VendorCapability = 0x09;
    public const byte CommonCfg = 1, NotifyCfg = 2, IsrCfg = 3, DeviceCfg = 4, PciCfg = 5;
    /// <summary>cap_vndr, cap_next, cap_len, cfg_type, bar, id, padding[2], offset, length; NOTIFY_CFG adds the
    /// notify_off_multiplier, PCI_CFG the 4-byte pci_cfg_data window.</summary>
    public const int CapabilityLength = 16, NotifyCapabilityLength = 20, PciCfgCapabilityLength = 20;

    /// <summary>Fields of the common configuration structure (virtio 1.2, 4.1.4.3).</summary>
    public const int DeviceFeatureSelect = 0x00, DeviceFeature = 0x04, DriverFeatureSelect = 0x08, DriverFeature = 0x0C;
    public const int ConfigMsixVector = 0x10, NumQueues = 0x12, DeviceStatus = 0x14, ConfigGeneration = 0x15;
    public const int QueueSelect = 0x16, QueueSize = 0x18, QueueMsixVector = 0x1A, QueueEnable = 0x1C;
    public const int QueueNotifyOff = 0x1E, QueueDesc = 0x20, QueueDriver = 0x28, QueueDevice = 0x30;
    public const int CommonCfgLength = 0x38;

    /// <summary>"No vector": the driver's way to say a queue or the configuration raises no MSI-X message.</summary>
    public const ushort NoVector = 0xFFFF;

    /// <summary>Bytes between two queues' notification addresses.</summary>
    public const uint NotifyOffMultiplier = 4;

    /// <summary>Each structure's offset in the BAR; each has its own 4 KiB page.</summary>
    public const uint CommonOffset = 0x0000, IsrOffset = 0x1000, DeviceOffset = 0x2000, NotifyOffset = 0x3000;
    public const uint MsixTableOffset = 0x4000, PageSize = 0x1000;

    /// <summary>The BAR (a 64-bit memory BAR, so it takes BARs 0 and 1).</summary>
    public const int Bar = 0;

    /// <summary>The PCI class of each device type, as guests expect them (base, sub, interface).</summary>
    public static uint ClassCode(uint deviceType) => deviceType switch
    {
        VirtioDeviceId.Block => 0x010000, // SCSI storage controller
        VirtioDeviceId.Net => 0x020000, // Ethernet controller
        VirtioDeviceId.Console or VirtioDeviceId.Vsock => 0x078000, // other communication controller
        VirtioDeviceId.Fs => 0x018000, // other mass storage controller
        _ => 0x00FF00, // unclassified
    };
}
