using StratoVirt.Memory;
using StratoVirt.Virtio;

namespace StratoVirt.Tests.Virtio;

/// <summary>
/// When the split virtqueue asks the driver for notifications under EVENT_IDX (avail_event, virtio 1.2 2.7.10):
/// only on finding the ring empty, so buffers the driver adds while the device is still popping cost no exit.
/// </summary>
[Trait("Level", "Unit")]
public sealed class VirtqueueNotificationTests : IDisposable
{
    private const ushort Size = 8;
    private const ulong Desc = 0x0, Avail = 0x1000, Used = 0x2000, Buffer = 0x10000;
    private readonly GuestMemory _memory = new([(0UL, 0x20000UL)]);
    private readonly Virtqueue _queue = new(0, 256) { Size = Size, DescTable = Desc, AvailRing = Avail, UsedRing = Used, Ready = true };
    private readonly DescriptorChain _chain = new();
    private ushort _availIdx;

    public VirtqueueNotificationTests()
    {
        for (ushort i = 0; i < Size; i++)
        {
            _memory.WriteUInt64(Desc + 16UL * i, Buffer + 0x100UL * i);
            _memory.WriteUInt32(Desc + 16UL * i + 8, 16);
            _memory.WriteUInt16(Desc + 16UL * i + 12, 2); // device-writable, no next
        }
        _memory.WriteUInt16(AvailEventAddress, 0xFFFF); // a value the device never writes here
        _queue.Activate(_memory, VirtioFeature.Version1 | VirtioFeature.RingEventIdx);
    }

    public void Dispose() => _memory.Dispose();

    private static ulong AvailEventAddress => Used + 4 + 8UL * Size;
    private ushort AvailEvent => _memory.ReadUInt16(AvailEventAddress);

    private void Publish(int count)
    {
        for (int i = 0; i < count; i++, _availIdx++)
            _memory.WriteUInt16(Avail + 4 + 2UL * (ushort)(_availIdx % Size), (ushort)(_availIdx % Size));
        _memory.WriteUInt16(Avail + 2, _availIdx);
    }

    /// <summary>The driver's test before notifying (Linux's vring_need_event).</summary>
    private bool DriverWouldNotify(ushort oldIdx, ushort newIdx) => (ushort)(newIdx - AvailEvent - 1) < (ushort)(newIdx - oldIdx);

    [Fact]
    public void PoppingFromANonEmptyRingLeavesAvailEventAlone()
    {
        Publish(3);
        Assert.True(_queue.Pop(_chain));
        Assert.True(_queue.Pop(_chain));
        Assert.Equal(0xFFFF, AvailEvent);
    }

    [Fact]
    public void FindingTheRingEmptyAsksForTheNextBuffer()
    {
        Publish(2);
        while (_queue.Pop(_chain)) _queue.AddUsed(_chain.Head, 0);
        Assert.Equal(2, AvailEvent);
        Publish(1);
        Assert.True(DriverWouldNotify(2, 3));
    }

    [Fact]
    public void BuffersAddedWhileTheDeviceIsPoppingNeedNoNotification()
    {
        Publish(1);
        Assert.True(_queue.Pop(_chain));
        Assert.False(_queue.Pop(_chain)); // empty: avail_event = 1
        Publish(1); // the notification for this one wakes the device
        Assert.True(DriverWouldNotify(1, 2));
        Assert.True(_queue.Pop(_chain));
        Publish(1); // added while the device is still serving: it will reach it without a notification
        Assert.False(DriverWouldNotify(2, 3));
        Assert.True(_queue.Pop(_chain));
        Assert.Equal(2, _chain.Head);
        Assert.False(_queue.Pop(_chain));
        Assert.Equal(3, AvailEvent);
    }
}
