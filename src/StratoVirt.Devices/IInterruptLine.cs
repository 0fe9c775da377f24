namespace StratoVirt.Devices;

/// <summary>An interrupt wire from a device to the interrupt controller.</summary>
public interface IInterruptLine
{
    /// <summary>Signals one edge-triggered interrupt.</summary>
    void Trigger();
}
