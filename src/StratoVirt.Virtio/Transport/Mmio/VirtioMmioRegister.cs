namespace StratoVirt.Virtio.Transport.Mmio;

/// <summary>Register offsets of the virtio-mmio version 2 transport (virtio 1.2, section 4.2.2).</summary>
public static class VirtioMmioRegister
{
    public const uint MagicValue = 0x000, Version = 0x004, DeviceId = 0x008, VendorId = 0x00C;
    public const uint DeviceFeatures = 0x010, DeviceFeaturesSel = 0x014;
    public const uint DriverFeatures = 0x020, DriverFeaturesSel = 0x024;
    public const uint QueueSel = 0x030, QueueNumMax = 0x034, QueueNum = 0x038, QueueReady = 0x044;
    public const uint QueueNotify = 0x050, InterruptStatus = 0x060, InterruptAck = 0x064, Status = 0x070;
    public const uint QueueDescLow = 0x080, QueueDescHigh = 0x084, QueueDriverLow = 0x090, QueueDriverHigh = 0x094;
    public const uint QueueDeviceLow = 0x0A0, QueueDeviceHigh = 0x0A4, ConfigGeneration = 0x0FC, Config = 0x100;

    /// <summary>Shared memory regions (SHMSel, then length and base of the selected one): no device here has one,
    /// and a region that does not exist reads a length and base of -1 (virtio 1.2, 4.2.2). virtio-fs probes
    /// region 0 (DAX) and fails its probe on a length of 0.</summary>
    public const uint ShmSel = 0x0AC, ShmLenLow = 0x0B0, ShmLenHigh = 0x0B4, ShmBaseLow = 0x0B8, ShmBaseHigh = 0x0BC;

    /// <summary>"virt" in little-endian.</summary>
    public const uint Magic = 0x74726976;

    /// <summary>Bytes of MMIO space each device window takes.</summary>
    public const ulong WindowSize = 0x200;

    /// <summary>InterruptStatus bits.</summary>
    public const uint UsedBufferInterrupt = VirtioInterruptStatus.UsedBuffer, ConfigChangeInterrupt = VirtioInterruptStatus.ConfigChange;
}
