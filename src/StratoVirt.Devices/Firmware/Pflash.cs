using StratoVirt.Memory;

namespace StratoVirt.Devices.Firmware;

/// <summary>
/// A CFI parallel flash chip with the Intel/Sharp command set, 8 bits wide, as QEMU's pflash_cfi01 that OVMF
/// drives: read array (0xFF), read status (0x70), clear status (0x50), read identifier (0x90), CFI query
/// (0x98), single byte program (0x10 or 0x40, then the data) and block erase (0x20, then 0xD0). The contents
/// are a <see cref="FlashImage"/>; a program or erase is written through to its file at once.
/// </summary>
/// <remarks>
/// The status register's bit 7 (ready) is set at power-on and after each program or erase; clear status clears
/// every bit, which is how OVMF tells flash from RAM and ROM. A read-only image refuses program and erase the
/// way a locked block does: the status reports the error (bit 4 or 5 with bit 1) and the contents stay.
/// A write that is neither a known command nor an expected second cycle returns to read array mode.
/// Threading: any vCPU thread may access it; one lock guards the mode, the status and the contents.
/// </remarks>
public sealed class Pflash : IBusDevice
{
    public const byte CmdReadArray = 0xFF, CmdReadStatus = 0x70, CmdClearStatus = 0x50, CmdReadId = 0x90;
    public const byte CmdCfiQuery = 0x98, CmdProgram = 0x10, CmdProgramAlt = 0x40, CmdErase = 0x20, CmdConfirm = 0xD0;
    public const byte StatusReady = 0x80, StatusEraseError = 0x20, StatusProgramError = 0x10, StatusLocked = 0x02;
    public const byte ManufacturerId = 0x89, DeviceId = 0x18; // Intel, as a 28F128 reports itself

    private enum Mode { ReadArray, ReadStatus, ReadId, CfiQuery, ProgramData, EraseConfirm }

    private readonly Lock _gate = new();
    private readonly FlashImage _image;
    private readonly byte[] _cfi;
    private Mode _mode;
    private byte _status = StatusReady;

    public Pflash(FlashImage image)
    {
        _image = image;
        _cfi = BuildQueryTable(image.Size, image.BlockSize);
    }

    public FlashImage Image => _image;

    /// <summary>A machine reset: back to read-array mode with a ready, error-free status (the file keeps its
    /// contents).</summary>
    public void Reset()
    {
        lock (_gate) (_mode, _status) = (Mode.ReadArray, StatusReady);
    }

    /// <inheritdoc />
    public void Read(ulong offset, Span<byte> data)
    {
        lock (_gate)
        {
            switch (_mode)
            {
                case Mode.ReadArray:
                    if (offset + (ulong)data.Length <= _image.Size) _image.Contents.Slice((int)offset, data.Length).CopyTo(data);
                    else data.Fill(0xFF);
                    return;
                case Mode.ReadId:
                    for (int i = 0; i < data.Length; i++)
                        data[i] = (offset + (ulong)i) switch { 0 => ManufacturerId, 1 => DeviceId, _ => 0 };
                    return;
                case Mode.CfiQuery:
                    for (int i = 0; i < data.Length; i++)
                        data[i] = offset + (ulong)i < (ulong)_cfi.Length ? _cfi[(int)offset + i] : (byte)0;
                    return;
                default: // read status, and status while a second cycle is pending
                    data.Fill(_status);
                    return;
            }
        }
    }

    /// <inheritdoc />
    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty || offset + (ulong)data.Length > _image.Size) return;
        lock (_gate)
        {
            switch (_mode)
            {
                case Mode.ProgramData:
                    Program(offset, data);
                    _mode = Mode.ReadStatus;
                    return;
                case Mode.EraseConfirm:
                    if (data[0] == CmdConfirm) Erase(offset);
                    else _status |= StatusEraseError | StatusProgramError; // command sequence error
                    _mode = Mode.ReadStatus;
                    return;
            }
            _mode = data[0] switch
            {
                CmdReadStatus => Mode.ReadStatus,
                CmdReadId => Mode.ReadId,
                CmdCfiQuery => Mode.CfiQuery,
                CmdProgram or CmdProgramAlt => Mode.ProgramData,
                CmdErase => Mode.EraseConfirm,
                _ => Mode.ReadArray, // 0xFF, clear status, and what this chip does not implement
            };
            if (data[0] == CmdClearStatus) _status = 0;
        }
    }

    private void Program(ulong offset, ReadOnlySpan<byte> data)
    {
        if (_image.ReadOnly)
        {
            _status |= StatusReady | StatusProgramError | StatusLocked;
            return;
        }
        _image.Store((int)offset, data);
        _status |= StatusReady;
    }

    private void Erase(ulong offset)
    {
        if (_image.ReadOnly)
        {
            _status |= StatusReady | StatusEraseError | StatusLocked;
            return;
        }
        int block = (int)(offset / _image.BlockSize * _image.BlockSize);
        _image.Erase(block, (int)_image.BlockSize);
        _status |= StatusReady;
    }

    /// <summary>The CFI query structure at byte addresses 0x10 on (an 8-bit device: one byte per address).</summary>
    private static byte[] BuildQueryTable(ulong size, uint blockSize)
    {
        var t = new byte[0x40];
        "QRY"u8.CopyTo(t.AsSpan(0x10));
        t[0x13] = 0x01; // primary command set: Intel/Sharp extended
        t[0x15] = 0x31; // its extended table is at 0x31
        t[0x1B] = 0x45; // Vcc 4.5-5.5 V
        t[0x1C] = 0x55;
        t[0x1F] = 0x07; // typical byte program 2^7 us
        t[0x21] = 0x0A; // typical block erase 2^10 ms
        t[0x23] = 0x04; // worst cases: 2^4 times the typical
        t[0x25] = 0x04;
        t[0x27] = (byte)Math.Ceiling(Math.Log2(size)); // device size 2^n bytes
        t[0x28] = 0x00; // x8 asynchronous interface
        t[0x2C] = 0x01; // one erase block region:
        uint blocks = (uint)(size / blockSize) - 1;
        t[0x2D] = (byte)blocks; // number of blocks - 1
        t[0x2E] = (byte)(blocks >> 8);
        t[0x2F] = (byte)(blockSize >> 8); // block size in 256-byte units
        t[0x30] = (byte)(blockSize >> 16);
        "PRI"u8.CopyTo(t.AsSpan(0x31));
        t[0x34] = (byte)'1';
        t[0x35] = (byte)'0';
        return t;
    }
}
