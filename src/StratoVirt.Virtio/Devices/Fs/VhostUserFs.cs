using System.Buffers.Binary;
using System.Text;
using StratoVirt.Virtio.VhostUser;

namespace StratoVirt.Virtio.Devices.Fs;

/// <summary>
/// virtio-fs (virtio 1.2, section 5.11) served by a vhost-user backend (virtiofsd): a high-priority queue and
/// <c>num-request-queues</c> request queues go to the backend; the VMM keeps the configuration space, the tag the
/// guest mounts and the number of request queues.
/// </summary>
public sealed class VhostUserFs : VhostUserDevice
{
    /// <summary>The tag's bytes in the configuration space (no NUL needed when full).</summary>
    public const int TagCapacity = 36;

    private readonly byte[] _config = new byte[TagCapacity + 4];

    public VhostUserFs(string tag, int requestQueues, ushort queueSize, VhostUserBackend backend)
        : base(VirtioDeviceId.Fs, 1 + requestQueues, queueSize, backend.Chardev, backend.Path)
    {
        Tag = tag;
        Encoding.UTF8.GetBytes(tag, _config.AsSpan(0, TagCapacity));
        BinaryPrimitives.WriteUInt32LittleEndian(_config.AsSpan(TagCapacity), (uint)requestQueues);
    }

    public string Tag { get; }

    /// <summary>No device-specific features (the notification queue is not offered).</summary>
    protected override ulong DeviceFeatures => 0;

    public override void ReadConfig(uint offset, Span<byte> data) => ReadFrom(_config, offset, data);
}
