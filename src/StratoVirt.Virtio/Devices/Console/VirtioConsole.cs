using StratoVirt.Devices.Chardev;
using StratoVirt.Devices.State;

namespace StratoVirt.Virtio.Devices.Console;

/// <summary>
/// virtio-console (virtio 1.2, section 5.3) with one console port and no feature bits: queue 0 is port 0's
/// receiveq (host to guest), queue 1 its transmitq (guest to host). The guest sees it as /dev/hvc0.
/// </summary>
/// <remarks>
/// Transmit: every device-readable buffer goes to the chardev (which drops output only when its reader is stuck or
/// absent). Receive: when the chardev has input, each available receive chain takes as much as it can hold. While
/// the guest has posted no receive buffers, or the driver is not running, the chardev's input is not watched, so the
/// bytes wait in the host fd instead of being dropped; the guest posting buffers (a notify) resumes it.
/// The chardev is not disposed with the device: the machine owns chardevs.
/// </remarks>
public sealed class VirtioConsole : VirtioDevice
{
    private const int ReceiveQueue = 0, TransmitQueue = 1;

    private readonly Chardev _chardev;
    private readonly DescriptorChain _rxChain = new();
    private readonly DescriptorChain _txChain = new();
    private readonly byte[] _rxBuffer = new byte[4096];
    private readonly Action _onInput;
    private readonly Action<int> _fillReceive;
    private bool _attached;

    /// <summary>A console port on <paramref name="chardev"/> (-device virtconsole,chardev=X).</summary>
    /// <exception cref="ChardevException">Another device already uses the chardev.</exception>
    public VirtioConsole(Chardev chardev) : base(VirtioDeviceId.Console, 2)
    {
        ArgumentNullException.ThrowIfNull(chardev);
        chardev.Claim(this);
        _chardev = chardev;
        _fillReceive = _ => FillReceive();
        _onInput = () => RunGuarded(_fillReceive, 0);
    }

    public Chardev Chardev => _chardev;

    protected override ulong DeviceFeatures => 0;

    /// <summary>cols, rows, max_nr_ports, emerg_wr: none is valid without F_SIZE, F_MULTIPORT or F_EMERG_WRITE.</summary>
    public override void ReadConfig(uint offset, Span<byte> data) => data.Clear();

    protected override void OnActivate()
    {
        if (!_attached)
        {
            _chardev.Attach(Loop, _onInput);
            _attached = true;
        }
        _chardev.SetInputEnabled(true);
    }

    protected override void OnReset() => _chardev.SetInputEnabled(false);

    public override string StateName => ConsoleState.Name;
    public override int StateVersion => ConsoleState.Version;

    protected override void SaveDeviceState(StateWriter writer) => new ConsoleState(Features, _chardev.Id).Write(writer);

    protected override void RestoreDeviceState(StateReader reader)
    {
        var state = ConsoleState.Read(reader);
        if (state.ChardevId != _chardev.Id) throw StateMismatch("chardev", state.ChardevId, _chardev.Id);
        RestoreFeatures(state.Features);
    }

    public override void ProcessQueue(int index)
    {
        if (index == TransmitQueue) Transmit();
        else if (index == ReceiveQueue)
        {
            _chardev.SetInputEnabled(true); // the guest posted receive buffers
            FillReceive();
        }
    }

    private void Transmit()
    {
        var queue = Queue(TransmitQueue);
        while (queue.Pop(_txChain))
        {
            for (int i = 0; i < _txChain.ReadableCount; i++) _chardev.Write(_txChain.Buffer(i));
            queue.AddUsed(_txChain.Head, 0);
        }
        SignalUsed(queue);
    }

    /// <summary>Moves chardev input into receive chains until either runs out.</summary>
    private void FillReceive()
    {
        var queue = Queue(ReceiveQueue);
        bool used = false;
        while (true)
        {
            if (!queue.Pop(_rxChain))
            {
                _chardev.SetInputEnabled(false); // resumed by the next receive notify
                break;
            }
            if (_rxChain.WritableLength == 0)
                throw new VirtqueueException($"queue {ReceiveQueue}: a receive chain has no device-writable buffer");
            int n = _chardev.Read(_rxBuffer.AsSpan(0, (int)Math.Min(_rxChain.WritableLength, (ulong)_rxBuffer.Length)));
            if (n == 0)
            {
                queue.Unpop();
                break;
            }
            _rxChain.Write(0, _rxBuffer.AsSpan(0, n));
            queue.AddUsed(_rxChain.Head, (uint)n);
            used = true;
        }
        if (used) SignalUsed(queue);
    }
}
