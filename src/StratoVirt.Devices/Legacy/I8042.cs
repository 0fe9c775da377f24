using StratoVirt.Memory;

namespace StratoVirt.Devices.Legacy;

/// <summary>
/// The PC keyboard controller (ports 0x60 data, 0x64 status/command) with a minimal AT keyboard behind it and no
/// mouse port. Its job in a microVM is the reset line (<c>reboot=k</c>) and letting Linux's i8042 and atkbd
/// probes finish without timeouts.
/// </summary>
/// <remarks>
/// Register the object itself at 0x60 with <see cref="Length"/> 5 (offset 0 data, offset 4 command/status;
/// offsets 1..3 read 0xFF and ignore writes), or register <see cref="DataPort"/> at 0x60 and
/// <see cref="CommandPort"/> at 0x64 with length 1 each so port 0x61 (PIT gate, NMI status) stays free.
/// Threading: any vCPU thread may access it; one lock guards the state, and the reset callback and the interrupt
/// line are called after it is released.
/// </remarks>
public sealed partial class I8042 : IBusDevice
{
    /// <summary>Ports decoded when the object is registered at 0x60 as one range (0x60..0x64).</summary>
    public const ulong Length = 5;

    private const ulong DataOffset = 0, CommandOffset = 4;

    private const byte StatusOutputFull = 0x01, StatusSystemFlag = 0x04, StatusLastWasCommand = 0x08;
    private const byte StatusNotInhibited = 0x10; // keylock switch open; Linux warns "Keylock active" otherwise

    // Controller configuration byte (internal RAM byte 0).
    private const byte ConfigKbdInterrupt = 0x01, ConfigSystemFlag = 0x04, ConfigKbdDisabled = 0x10;
    private const byte ConfigAuxDisabled = 0x20, ConfigTranslate = 0x40;
    private const byte DefaultConfig = ConfigKbdInterrupt | ConfigSystemFlag | ConfigTranslate;

    private const byte KbdAck = 0xFA;

    private readonly Lock _gate = new();
    private readonly Action _onReset;
    private readonly IInterruptLine? _kbdIrq;
    private readonly byte[] _ram = new byte[32]; // [0] is the configuration byte
    private readonly byte[] _output = new byte[8];
    private int _outHead;
    private int _outCount;
    private byte _lastRead;
    private byte _outputPort = 0x03;  // bit 0: reset line high (inactive), bit 1: A20 enabled
    private byte _awaitingData;       // controller command whose data byte comes next on port 0x60, or 0
    private byte _awaitingKbdParam;   // keyboard command whose parameter byte comes next, or 0
    private bool _lastWasCommand;
    private bool _irqLevel;

    /// <summary>
    /// Creates the controller; <paramref name="onReset"/> runs when the guest pulses the reset line and
    /// <paramref name="kbdIrq"/> (IRQ 1, optional) signals keyboard bytes. Without it atkbd's probe times out.
    /// </summary>
    public I8042(Action onReset, IInterruptLine? kbdIrq = null)
    {
        ArgumentNullException.ThrowIfNull(onReset);
        _onReset = onReset;
        _kbdIrq = kbdIrq;
        _ram[0] = DefaultConfig;
        DataPort = new Port(this, DataOffset);
        CommandPort = new Port(this, CommandOffset);
    }

    /// <summary>The power-on state (a machine reset): the default configuration byte, the rest of the RAM and the
    /// output buffer cleared, no command half-way, the reset line inactive and A20 on.</summary>
    public void Reset()
    {
        lock (_gate)
        {
            Array.Clear(_ram);
            _ram[0] = DefaultConfig;
            (_outHead, _outCount, _lastRead, _outputPort) = (0, 0, 0, 0x03);
            (_awaitingData, _awaitingKbdParam, _lastWasCommand, _irqLevel) = (0, 0, false, false);
        }
    }

    /// <summary>Port 0x60 alone, for registering as a 1-port range.</summary>
    public IBusDevice DataPort { get; }

    /// <summary>Port 0x64 alone, for registering as a 1-port range.</summary>
    public IBusDevice CommandPort { get; }

    /// <inheritdoc />
    public void Read(ulong offset, Span<byte> data)
    {
        bool raise;
        lock (_gate)
        {
            for (int i = 0; i < data.Length; i++) data[i] = ReadPort(offset + (ulong)i);
            raise = SampleIrq();
        }
        if (raise) _kbdIrq!.Pulse();
    }

    /// <inheritdoc />
    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        bool raise, reset = false;
        lock (_gate)
        {
            for (int i = 0; i < data.Length; i++)
            {
                ulong port = offset + (ulong)i;
                if (port == DataOffset) WriteData(data[i], ref reset);
                else if (port == CommandOffset) WriteCommand(data[i], ref reset);
            }
            raise = SampleIrq();
        }
        if (raise) _kbdIrq!.Pulse();
        if (reset) _onReset();
    }

    private byte Config
    {
        get => _ram[0];
        set => _ram[0] = value;
    }

    private byte ReadPort(ulong port)
    {
        if (port == CommandOffset)
        {
            byte status = StatusNotInhibited;
            if (_outCount > 0) status |= StatusOutputFull;
            if ((Config & ConfigSystemFlag) != 0) status |= StatusSystemFlag;
            if (_lastWasCommand) status |= StatusLastWasCommand;
            return status; // never 0xFF, which Linux reads as "no controller"
        }
        if (port != DataOffset) return 0xFF;
        if (_outCount > 0)
        {
            _lastRead = _output[_outHead];
            _outHead = (_outHead + 1) % _output.Length;
            _outCount--;
            _irqLevel = false; // the next queued byte, if any, is a new interrupt
        }
        return _lastRead; // an empty buffer repeats the last byte, as the hardware latch does
    }

    private void WriteCommand(byte command, ref bool reset)
    {
        _lastWasCommand = true;
        _awaitingData = 0;
        switch (command)
        {
            case >= 0x20 and <= 0x3F: // read internal RAM; 0x20 is the configuration byte
                Reply(_ram[command - 0x20]);
                break;
            case >= 0x60 and <= 0x7F: // write internal RAM, data byte follows
            case 0xD1:                // write output port
            case 0xD2:                // write keyboard output buffer
            case 0xD3:                // write aux output buffer
            case 0xD4:                // write to aux device
                _awaitingData = command;
                break;
            case 0xA7: Config |= ConfigAuxDisabled; break;
            case 0xA8: Config &= unchecked((byte)~ConfigAuxDisabled); break;
            case 0xA9: Reply(0x01); break; // aux interface test: there is no aux port, "clock line stuck low"
            case 0xAA: // controller self-test passed
                Config |= ConfigSystemFlag;
                Reply(0x55);
                break;
            case 0xAB: Reply(0x00); break; // keyboard interface test passed
            case 0xAD: Config |= ConfigKbdDisabled; break;
            case 0xAE: Config &= unchecked((byte)~ConfigKbdDisabled); break;
            case 0xC0: Reply(0x00); break; // input port
            case 0xD0: Reply(_outputPort); break;
            case >= 0xF0: // pulse the output lines whose bit is 0 in the low nibble; bit 0 is CPU reset
                if ((command & 0x01) == 0) reset = true;
                break;
            default:
                break; // unimplemented commands are ignored
        }
    }

    private void WriteData(byte value, ref bool reset)
    {
        _lastWasCommand = false;
        byte command = _awaitingData;
        _awaitingData = 0;
        switch (command)
        {
            case >= 0x60 and <= 0x7F:
                _ram[command - 0x60] = value;
                break;
            case 0xD1:
                _outputPort = value;
                if ((value & 0x01) == 0) reset = true;
                break;
            // There is no aux port, so an aux loop byte also comes back as keyboard data: Linux's aux loop test
            // then fails at once instead of timing out, and its follow-up aux test (0xA9) reports no port.
            case 0xD2:
            case 0xD3:
                Reply(value);
                break;
            case 0xD4:
                break; // nothing is attached to the aux port
            default:
                KeyboardWrite(value);
                break;
        }
    }

    // A minimal AT keyboard: acknowledges everything and answers identify, echo, reset and get-scan-set.
    private void KeyboardWrite(byte value)
    {
        byte pending = _awaitingKbdParam;
        _awaitingKbdParam = 0;
        if (pending != 0)
        {
            Push(KbdAck);
            if (pending == 0xF0 && value == 0) Push(0x02); // current scan code set
            return;
        }
        switch (value)
        {
            case 0xED: // set LEDs
            case 0xF3: // set typematic rate
            case 0xF0: // get/set scan code set
                Push(KbdAck);
                _awaitingKbdParam = value;
                break;
            case 0xEE: Push(0xEE); break; // echo
            case 0xF2: // identify: MF2 keyboard
                Push(KbdAck);
                Push(0xAB);
                Push(0x83);
                break;
            case 0xFF: // reset and self-test passed
                Push(KbdAck);
                Push(0xAA);
                break;
            default:
                Push(KbdAck);
                break;
        }
    }

    // A controller reply replaces anything unread, as the single output register does.
    private void Reply(byte value)
    {
        _outHead = 0;
        _outCount = 0;
        Push(value);
    }

    private void Push(byte value)
    {
        if (_outCount == _output.Length) return; // the host is not reading; drop
        _output[(_outHead + _outCount) % _output.Length] = value;
        _outCount++;
    }

    private bool SampleIrq()
    {
        bool level = _kbdIrq is not null && _outCount > 0 && (Config & ConfigKbdInterrupt) != 0;
        bool rising = level && !_irqLevel;
        _irqLevel = level;
        return rising;
    }

    // One port of the controller seen as its own 1-port range.
    private sealed class Port(I8042 owner, ulong offset) : IBusDevice
    {
        public void Read(ulong portOffset, Span<byte> data) => owner.Read(offset + portOffset, data);

        public void Write(ulong portOffset, ReadOnlySpan<byte> data) => owner.Write(offset + portOffset, data);
    }
}
