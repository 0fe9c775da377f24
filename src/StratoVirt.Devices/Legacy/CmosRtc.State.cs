using StratoVirt.Devices.State;

namespace StratoVirt.Devices.Legacy;

/// <summary>The RTC's saved state: the CMOS RAM, the index, and the guest's offset from the host's clock, so the
/// restored clock still runs with the host's time plus the offset the guest set.</summary>
public sealed partial class CmosRtc : IStateful
{
    public string StateName => "cmos-rtc";
    public int StateVersion => 1;

    public void SaveState(StateWriter writer)
    {
        lock (_gate)
        {
            writer.WriteBytes(_ram);
            writer.WriteByte(_index);
            writer.WriteBool(_nmiDisabled);
            writer.WriteInt64(_offset.Ticks);
            writer.WriteInt64(_lastUpdateSecond);
        }
    }

    public void RestoreState(StateReader reader)
    {
        byte[] ram = reader.ReadBytes();
        if (ram.Length != _ram.Length)
            throw new StateException($"{StateName} state: {ram.Length} bytes of CMOS RAM, the device has {_ram.Length}");
        byte index = reader.ReadByte();
        bool nmiDisabled = reader.ReadBool();
        long offset = reader.ReadInt64(), lastUpdate = reader.ReadInt64();
        if (index >= _ram.Length) throw new StateException($"{StateName} state: index {index} is outside the CMOS RAM");
        lock (_gate)
        {
            ram.CopyTo(_ram, 0);
            (_index, _nmiDisabled, _offset, _lastUpdateSecond) = (index, nmiDisabled, TimeSpan.FromTicks(offset), lastUpdate);
        }
    }
}
