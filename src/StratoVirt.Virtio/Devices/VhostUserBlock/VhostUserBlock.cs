using System.Buffers.Binary;
using StratoVirt.Virtio.VhostUser;

namespace StratoVirt.Virtio.Devices.VhostUserBlock;

/// <summary>
/// virtio-blk (virtio 1.2, section 5.2) served by a vhost-user backend: the backend owns the image and offers the
/// block features it implements; the configuration space (capacity, limits, topology) is read from it once
/// (GET_CONFIG) when the device is created, with num_queues set to the queues this device has.
/// </summary>
public sealed class VhostUserBlock : VhostUserDevice
{
    /// <summary>virtio_blk_config up to write_zeroes_may_unmap and its padding: what every backend knows.</summary>
    public const int ConfigSize = 60;

    private const int NumQueuesOffset = 34;
    private const ulong MultiQueue = 1UL << 12;

    /// <summary>SIZE_MAX, SEG_MAX, GEOMETRY, RO, BLK_SIZE, FLUSH, TOPOLOGY, DISCARD, WRITE_ZEROES: offered to the
    /// guest when the backend offers them (CONFIG_WCE is not: writes to the configuration space are ignored).</summary>
    private const ulong BlockFeatures = (1UL << 1) | (1UL << 2) | (1UL << 4) | (1UL << 5) | (1UL << 6) | (1UL << 9)
        | (1UL << 10) | (1UL << 13) | (1UL << 14);

    private readonly byte[] _config = new byte[ConfigSize];

    public VhostUserBlock(int queues, ushort queueSize, VhostUserBackend backend)
        : base(VirtioDeviceId.Block, queues, queueSize, backend.Chardev, backend.Path)
    {
        try
        {
            if ((ProtocolFeatures & VhostUserProtocolFeature.Config) == 0)
                throw new VhostUserException($"vhost-user socket {backend.Path}: the backend does not share its configuration space (VHOST_USER_PROTOCOL_F_CONFIG)");
            if (queues > 1 && (BackendFeatures & MultiQueue) == 0)
                throw new VhostUserException($"vhost-user socket {backend.Path}: the backend offers one queue; num-queues={queues} needs VIRTIO_BLK_F_MQ");
            Frontend.GetConfig(0, _config);
            BinaryPrimitives.WriteUInt16LittleEndian(_config.AsSpan(NumQueuesOffset), (ushort)queues);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The disk's size in 512-byte sectors, as the backend reported it.</summary>
    public ulong Capacity => BinaryPrimitives.ReadUInt64LittleEndian(_config);

    protected override ulong DeviceFeatures =>
        BackendFeatures & (BlockFeatures | (QueueCount > 1 ? MultiQueue : 0));

    public override void ReadConfig(uint offset, Span<byte> data) => ReadFrom(_config, offset, data);
}
