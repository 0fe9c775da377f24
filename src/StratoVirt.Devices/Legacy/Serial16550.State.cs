using StratoVirt.Devices.State;

namespace StratoVirt.Devices.Legacy;

/// <summary>The UART's saved state: its registers, latched line and modem bits, and the bytes waiting in the
/// receive FIFO. The interrupt line's level is sampled again after a restore.</summary>
public sealed partial class Serial16550 : IStateful
{
    public string StateName => "serial";
    public int StateVersion => 1;

    public void SaveState(StateWriter writer)
    {
        lock (_gate)
        {
            writer.WriteByte(_ier);
            writer.WriteByte(_lcr);
            writer.WriteByte(_mcr);
            writer.WriteByte(_scr);
            writer.WriteByte(_dll);
            writer.WriteByte(_dlm);
            writer.WriteByte(_lineErrors);
            writer.WriteByte(_modemDeltas);
            writer.WriteBool(_fifoEnabled);
            writer.WriteBool(_thrEmptyPending);
            var fifo = new byte[_rxCount];
            for (int i = 0; i < _rxCount; i++) fifo[i] = _rx[(_rxHead + i) % RxFifoCapacity];
            writer.WriteBytes(fifo);
        }
    }

    public void RestoreState(StateReader reader)
    {
        byte ier = reader.ReadByte(), lcr = reader.ReadByte(), mcr = reader.ReadByte(), scr = reader.ReadByte();
        byte dll = reader.ReadByte(), dlm = reader.ReadByte(), lineErrors = reader.ReadByte(), modemDeltas = reader.ReadByte();
        bool fifoEnabled = reader.ReadBool(), thrEmptyPending = reader.ReadBool();
        byte[] fifo = reader.ReadBytes();
        if (fifo.Length > RxFifoCapacity)
            throw new StateException($"{StateName} state: {fifo.Length} bytes in a receive FIFO of {RxFifoCapacity}");
        bool raise, queueingChanged;
        lock (_gate)
        {
            bool queueable = TransmitQueueable;
            (_ier, _lcr, _mcr, _scr) = ((byte)(ier & IerMask), lcr, (byte)(mcr & McrMask), scr);
            (_dll, _dlm, _lineErrors, _modemDeltas) = (dll, dlm, lineErrors, modemDeltas);
            (_fifoEnabled, _thrEmptyPending) = (fifoEnabled, thrEmptyPending);
            ClearRx();
            foreach (byte b in fifo) PushRx(b);
            _irqLevel = false;
            raise = SampleIrq();
            queueingChanged = queueable != TransmitQueueable;
        }
        if (raise) _irq.Pulse();
        if (queueingChanged) TransmitQueueingChanged?.Invoke();
    }
}
