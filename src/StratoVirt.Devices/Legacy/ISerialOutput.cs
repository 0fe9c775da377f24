namespace StratoVirt.Devices.Legacy;

/// <summary>Where the bytes a guest transmits on a serial port go (a console, a pty, a log file).</summary>
public interface ISerialOutput
{
    /// <summary>
    /// Takes bytes the guest transmitted. Called on the vCPU thread that wrote them, never concurrently for the
    /// same port; the span is only valid during the call.
    /// </summary>
    void Write(ReadOnlySpan<byte> data);
}
