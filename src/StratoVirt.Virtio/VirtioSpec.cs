namespace StratoVirt.Virtio;

/// <summary>Device type ids (virtio 1.2, section 5).</summary>
public static class VirtioDeviceId
{
    public const uint Net = 1, Block = 2, Console = 3, Rng = 4, Balloon = 5, Vsock = 19, Fs = 26;
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

/// <summary>Interrupt status bits (the ISR of virtio-pci, InterruptStatus of virtio-mmio; virtio 1.2, 4.1.4.5).</summary>
public static class VirtioInterruptStatus
{
    public const uint UsedBuffer = 1, ConfigChange = 2;
}
