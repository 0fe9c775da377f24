using StratoVirt.Devices.State;

namespace StratoVirt.Devices.Legacy;

/// <summary>The i8042's saved state: its RAM (the configuration byte first), the output buffer, the output port
/// and the command or parameter it waits for.</summary>
public sealed partial class I8042 : IStateful
{
    public string StateName => "i8042";
    public int StateVersion => 1;

    public void SaveState(StateWriter writer)
    {
        lock (_gate)
        {
            writer.WriteBytes(_ram);
            var output = new byte[_outCount];
            for (int i = 0; i < _outCount; i++) output[i] = _output[(_outHead + i) % _output.Length];
            writer.WriteBytes(output);
            writer.WriteByte(_lastRead);
            writer.WriteByte(_outputPort);
            writer.WriteByte(_awaitingData);
            writer.WriteByte(_awaitingKbdParam);
            writer.WriteBool(_lastWasCommand);
        }
    }

    public void RestoreState(StateReader reader)
    {
        byte[] ram = reader.ReadBytes(), output = reader.ReadBytes();
        if (ram.Length != _ram.Length)
            throw new StateException($"{StateName} state: {ram.Length} bytes of RAM, the controller has {_ram.Length}");
        if (output.Length > _output.Length)
            throw new StateException($"{StateName} state: {output.Length} bytes in an output buffer of {_output.Length}");
        byte lastRead = reader.ReadByte(), outputPort = reader.ReadByte(), awaitingData = reader.ReadByte(), awaitingParam = reader.ReadByte();
        bool lastWasCommand = reader.ReadBool();
        bool raise;
        lock (_gate)
        {
            ram.CopyTo(_ram, 0);
            output.CopyTo(_output, 0);
            (_outHead, _outCount) = (0, output.Length);
            (_lastRead, _outputPort, _awaitingData, _awaitingKbdParam, _lastWasCommand) =
                (lastRead, outputPort, awaitingData, awaitingParam, lastWasCommand);
            _irqLevel = false;
            raise = SampleIrq();
        }
        if (raise) _kbdIrq?.Pulse();
    }
}
