using StratoVirt.Devices.State;

namespace StratoVirt.Virtio.Transport;

/// <summary>The core's saved state: device status, negotiated features, the selects, interrupt status,
/// configuration generation, and each queue's configuration and ring positions.</summary>
public sealed partial class VirtioCore : IStateful
{
    public string StateName => "virtio-core";

    public int StateVersion => 1;

    public void SaveState(StateWriter writer)
    {
        lock (_device.Gate)
        {
            writer.WriteUInt32(_status);
            writer.WriteBool(_failed);
            writer.WriteUInt64(_driverFeatures);
            writer.WriteUInt32(_deviceFeaturesSelect);
            writer.WriteUInt32(_driverFeaturesSelect);
            writer.WriteUInt32(_queueSelect);
            writer.WriteUInt32(InterruptStatus);
            writer.WriteUInt32(ConfigGeneration);
            writer.WriteUInt16((ushort)_queues.Length);
            foreach (var q in _queues)
            {
                writer.WriteUInt16(q.Size);
                writer.WriteBool(q.Ready);
                writer.WriteUInt64(q.DescTable);
                writer.WriteUInt64(q.AvailRing);
                writer.WriteUInt64(q.UsedRing);
                var (nextAvail, nextUsed, signalledUsed) = q.Positions;
                writer.WriteUInt16(nextAvail);
                writer.WriteUInt16(nextUsed);
                writer.WriteUInt16(signalledUsed);
            }
        }
    }

    private readonly record struct QueueState(ushort Size, bool Ready, ulong Desc, ulong Avail, ulong Used,
        ushort NextAvail, ushort NextUsed, ushort SignalledUsed);

    /// <summary>
    /// Puts the core back as it was saved, into a core whose device is not live, the device's own record having
    /// been restored first. A device that was live (DRIVER_OK after FEATURES_OK, neither side gave up) is activated again on its saved queues, which
    /// continue from their saved positions, and looks at every queue once.
    /// </summary>
    public void RestoreState(StateReader reader)
    {
        uint status = reader.ReadUInt32();
        bool failed = reader.ReadBool();
        ulong driverFeatures = reader.ReadUInt64();
        uint deviceSelect = reader.ReadUInt32(), driverSelect = reader.ReadUInt32(), queueSelect = reader.ReadUInt32();
        uint interruptStatus = reader.ReadUInt32(), configGeneration = reader.ReadUInt32();
        int count = reader.ReadUInt16();
        if (count != _queues.Length)
            throw new StateException($"{reader.Name} state of virtio {_device.Id} has {count} queues; the device has {_queues.Length}");
        var queues = new QueueState[count];
        for (int i = 0; i < count; i++)
        {
            queues[i] = new QueueState(reader.ReadUInt16(), reader.ReadBool(), reader.ReadUInt64(), reader.ReadUInt64(),
                reader.ReadUInt64(), reader.ReadUInt16(), reader.ReadUInt16(), reader.ReadUInt16());
            if (queues[i].Size > _queues[i].MaxSize)
                throw new StateException($"{reader.Name} state of virtio {_device.Id}: queue {i} has {queues[i].Size} entries, more than {_queues[i].MaxSize}");
        }

        lock (_device.Gate)
        {
            _device.EnsureNotLive();
            ResetLocked();
            _status = status;
            _failed = failed;
            _driverFeatures = driverFeatures;
            (_deviceFeaturesSelect, _driverFeaturesSelect, _queueSelect) = (deviceSelect, driverSelect, queueSelect);
            Volatile.Write(ref _interruptStatus, (int)interruptStatus);
            Volatile.Write(ref _configGeneration, configGeneration);
            for (int i = 0; i < count; i++)
            {
                var (q, s) = (_queues[i], queues[i]);
                (q.Size, q.Ready, q.DescTable, q.AvailRing, q.UsedRing) = (s.Size, s.Ready, s.Desc, s.Avail, s.Used);
            }
            bool live = (status & (VirtioStatus.DriverOk | VirtioStatus.FeaturesOk)) == (VirtioStatus.DriverOk | VirtioStatus.FeaturesOk)
                && (status & VirtioStatus.Failed) == 0 && !failed;
            if (live) ActivateLocked(i => _queues[i].RestorePositions(queues[i].NextAvail, queues[i].NextUsed, queues[i].SignalledUsed));
        }
    }
}
