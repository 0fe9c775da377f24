namespace StratoVirt.Virtio;

/// <summary>Device type ids (virtio 1.2, section 5).</summary>
public static class VirtioDeviceId
{
    public const uint Net = 1, Block = 2, Console = 3, Rng = 4, Balloon = 5, Vsock = 19;
}

/// <summary>Feature bits shared by every device type (virtio 1.2, section 6).</summary>
public static class VirtioFeature
{
    public const ulong RingIndirectDesc = 1UL << 28;
    public const ulong RingEventIdx = 1UL << 29;
    public const ulong Version1 = 1UL << 32;
}

/// <summary>Device status bits (virtio 1.2, section 2.1).</summary>
public static class VirtioStatus
{
    public const uint Acknowledge = 1, Driver = 2, DriverOk = 4, FeaturesOk = 8, NeedsReset = 0x40, Failed = 0x80;
}

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

    /// <summary>"virt" in little-endian.</summary>
    public const uint Magic = 0x74726976;

    /// <summary>Bytes of MMIO space each device window takes.</summary>
    public const ulong WindowSize = 0x200;

    /// <summary>InterruptStatus bits.</summary>
    public const uint UsedBufferInterrupt = 1, ConfigChangeInterrupt = 2;
}
