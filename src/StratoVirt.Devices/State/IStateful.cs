namespace StratoVirt.Devices.State;

/// <summary>
/// A component whose state can be captured as a named, versioned record and restored from one: a device, a
/// virtio transport core, a vCPU, the irqchip or the PIT. <see cref="StateRecord"/> checks the name and version
/// before <see cref="RestoreState"/> runs, and that it read the whole record.
/// </summary>
public interface IStateful
{
    /// <summary>What the record is called (e.g. "virtio-blk"); only a record of that name restores the component.</summary>
    string StateName { get; }

    /// <summary>The layout of the record this build writes and reads; a record of another version is refused.</summary>
    int StateVersion { get; }

    void SaveState(StateWriter writer);

    void RestoreState(StateReader reader);
}
