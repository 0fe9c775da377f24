using StratoVirt.Memory;

namespace StratoVirt.Devices.Legacy;

/// <summary>
/// The MC146818 CMOS clock and its 128 bytes of RAM at ports 0x70 (index, offset 0) and 0x71 (data, offset 1).
/// The time is the host's UTC clock plus an offset the guest changes by writing the time registers.
/// </summary>
/// <remarks>
/// No update cycle is modelled: UIP always reads clear and each read samples the clock, so Linux's "read until
/// the seconds are stable" loop finishes at once. While register B's SET bit is on, time registers read and write
/// a latched copy; clearing SET turns that copy into the new offset. A time register written with SET off
/// applies immediately. Day of week is derived from the date and writes to it are dropped; an invalid date is
/// ignored. The clock raises no interrupts, so register C only ever reports the update-ended flag.
/// Threading: any vCPU thread may access it; one lock guards the state.
/// </remarks>
public sealed partial class CmosRtc : IBusDevice
{
    /// <summary>Ports decoded (index and data).</summary>
    public const ulong Length = 2;

    private const ulong IndexOffset = 0, DataOffset = 1;

    private const int Seconds = 0x00, Minutes = 0x02, Hours = 0x04, DayOfWeek = 0x06, DayOfMonth = 0x07;
    private const int Month = 0x08, Year = 0x09, RegisterA = 0x0A, RegisterB = 0x0B, RegisterC = 0x0C;
    private const int RegisterD = 0x0D, Century = 0x32; // 0x32 is where ACPI's FADT usually points

    private const byte NmiDisable = 0x80;
    private const byte AUpdateInProgress = 0x80;
    private const byte BSet = 0x80, BBinary = 0x04, B24Hour = 0x02;
    private const byte BInterruptEnables = 0x78; // PIE, AIE, UIE, SQWE
    private const byte CUpdateEnded = 0x10;
    private const byte DValidRam = 0x80; // battery good

    private const byte DefaultA = 0x26; // 32.768 kHz time base, 1024 Hz periodic rate
    private const byte DefaultB = B24Hour; // BCD, 24-hour
    private const byte HourPm = 0x80;

    private readonly Lock _gate = new();
    private readonly Func<DateTime> _clock;
    private readonly byte[] _ram = new byte[128];
    private TimeSpan _offset;       // guest time minus host time
    private long _lastUpdateSecond; // guest second at the last register C read
    private byte _index;
    private bool _nmiDisabled;

    /// <summary>Creates the clock; <paramref name="utcClock"/> (default <see cref="DateTime.UtcNow"/>) is for tests.</summary>
    public CmosRtc(Func<DateTime>? utcClock = null)
    {
        _clock = utcClock ?? DefaultClock;
        _ram[RegisterA] = DefaultA;
        _ram[RegisterB] = DefaultB;
        _lastUpdateSecond = GuestNow().Ticks / TimeSpan.TicksPerSecond;
    }

    /// <summary>
    /// Stores the memory sizes a PC BIOS leaves in CMOS RAM and firmware (OVMF) reads: base memory (0x15-0x16,
    /// 640 KiB), extended memory above 1 MiB in KiB (0x17-0x18 and 0x30-0x31, at most 0xFFFF), RAM between
    /// 16 MiB and <paramref name="lowRamEnd"/> in 64 KiB units (0x34-0x35) and RAM above 4 GiB in 64 KiB units
    /// (0x5B-0x5D), all little-endian.
    /// </summary>
    public void SetMemorySize(ulong lowRamEnd, ulong highRam)
    {
        const ulong OneMiB = 1 << 20, SixteenMiB = 16 << 20;
        ulong extendedKiB = Math.Min(lowRamEnd > OneMiB ? (lowRamEnd - OneMiB) >> 10 : 0, 0xFFFF);
        ulong above16M = Math.Min(lowRamEnd > SixteenMiB ? (lowRamEnd - SixteenMiB) >> 16 : 0, 0xFFFF);
        ulong above4G = Math.Min(highRam >> 16, 0xFF_FFFF);
        lock (_gate)
        {
            Store(0x15, 640, 2);
            Store(0x17, extendedKiB, 2);
            Store(0x30, extendedKiB, 2);
            Store(0x34, above16M, 2);
            Store(0x5B, above4G, 3);
        }

        void Store(int index, ulong value, int bytes)
        {
            for (int i = 0; i < bytes; i++) _ram[index + i] = (byte)(value >> (8 * i));
        }
    }

    /// <summary>A machine reset (the chip's RESET pin): the index and the NMI mask go back to zero and register B's
    /// interrupt and square-wave enables clear. The time, the time base, the data mode and the CMOS RAM are
    /// battery-backed and stay.</summary>
    public void Reset()
    {
        lock (_gate)
        {
            (_index, _nmiDisabled) = (0, false);
            _ram[RegisterB] &= unchecked((byte)~BInterruptEnables);
        }
    }

    /// <summary>Whether the guest last wrote the index port with bit 7 set (NMI disabled). Informational only.</summary>
    public bool NmiDisabled
    {
        get
        {
            lock (_gate) return _nmiDisabled;
        }
    }

    /// <inheritdoc />
    public void Read(ulong offset, Span<byte> data)
    {
        lock (_gate)
        {
            for (int i = 0; i < data.Length; i++)
                data[i] = offset + (ulong)i == DataOffset ? ReadRegister(_index) : (byte)0xFF; // index is write-only
        }
    }

    /// <inheritdoc />
    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        lock (_gate)
        {
            for (int i = 0; i < data.Length; i++)
            {
                ulong port = offset + (ulong)i;
                if (port == IndexOffset)
                {
                    _index = (byte)(data[i] & ~NmiDisable);
                    _nmiDisabled = (data[i] & NmiDisable) != 0;
                }
                else if (port == DataOffset)
                {
                    WriteRegister(_index, data[i]);
                }
            }
        }
    }

    private bool Setting => (_ram[RegisterB] & BSet) != 0;

    private bool Binary => (_ram[RegisterB] & BBinary) != 0;

    private static DateTime DefaultClock() => DateTime.UtcNow;

    private static bool IsTimeRegister(int index) =>
        index is Seconds or Minutes or Hours or DayOfWeek or DayOfMonth or Month or Year or Century;

    private byte ReadRegister(int index)
    {
        switch (index)
        {
            case RegisterA:
                return (byte)(_ram[RegisterA] & ~AUpdateInProgress);
            case RegisterC:
                return ReadAndClearFlags();
            case RegisterD:
                return DValidRam;
        }
        if (IsTimeRegister(index) && !Setting) return EncodeField(index, GuestNow());
        return _ram[index];
    }

    private void WriteRegister(int index, byte value)
    {
        switch (index)
        {
            case RegisterA:
                _ram[RegisterA] = (byte)(value & ~AUpdateInProgress);
                return;
            case RegisterB:
                WriteB(value);
                return;
            case RegisterC:
            case RegisterD:
                return; // read-only
        }
        if (IsTimeRegister(index) && !Setting)
        {
            LatchTime(GuestNow());
            _ram[index] = value;
            ApplyLatchedTime();
            return;
        }
        _ram[index] = value; // plain RAM, or the latched time while SET is on
    }

    private void WriteB(byte value)
    {
        byte old = _ram[RegisterB];
        if ((old & BSet) != 0 && (value & BSet) == 0) ApplyLatchedTime(); // decoded in the format it was written in
        _ram[RegisterB] = value;
        if ((old & BSet) == 0 && (value & BSet) != 0) LatchTime(GuestNow());
    }

    // One update cycle ends every second; reading C reports whether one has since the previous read.
    private byte ReadAndClearFlags()
    {
        if (Setting) return 0; // SET stops updates
        long second = GuestNow().Ticks / TimeSpan.TicksPerSecond;
        byte flags = second != _lastUpdateSecond ? CUpdateEnded : (byte)0;
        _lastUpdateSecond = second;
        return flags;
    }

    private DateTime GuestNow()
    {
        long ticks = _clock().Ticks + _offset.Ticks;
        return new DateTime(Math.Clamp(ticks, DateTime.MinValue.Ticks, DateTime.MaxValue.Ticks), DateTimeKind.Utc);
    }

    private void LatchTime(DateTime t)
    {
        _ram[Seconds] = EncodeField(Seconds, t);
        _ram[Minutes] = EncodeField(Minutes, t);
        _ram[Hours] = EncodeField(Hours, t);
        _ram[DayOfWeek] = EncodeField(DayOfWeek, t);
        _ram[DayOfMonth] = EncodeField(DayOfMonth, t);
        _ram[Month] = EncodeField(Month, t);
        _ram[Year] = EncodeField(Year, t);
        _ram[Century] = EncodeField(Century, t);
    }

    private void ApplyLatchedTime()
    {
        int second = Decode(_ram[Seconds]), minute = Decode(_ram[Minutes]), hour = DecodeHour(_ram[Hours]);
        int day = Decode(_ram[DayOfMonth]), month = Decode(_ram[Month]);
        int year = Decode(_ram[Year]), century = Decode(_ram[Century]);
        if (second is < 0 or > 59 || minute is < 0 or > 59 || hour is < 0 or > 23) return;
        if (month is < 1 or > 12 || year is < 0 or > 99 || century is < 0 or > 99) return;
        int fullYear = century * 100 + year;
        if (fullYear < 1 || day < 1 || day > DateTime.DaysInMonth(fullYear, month)) return;
        var guest = new DateTime(fullYear, month, day, hour, minute, second, DateTimeKind.Utc);
        _offset = guest - _clock();
    }

    private byte EncodeField(int index, DateTime t)
    {
        if (index == Hours) return EncodeHour(t.Hour);
        int value = index switch
        {
            Seconds => t.Second,
            Minutes => t.Minute,
            DayOfWeek => (int)t.DayOfWeek + 1, // 1 is Sunday
            DayOfMonth => t.Day,
            Month => t.Month,
            Year => t.Year % 100,
            _ => t.Year / 100,
        };
        return Encode(value);
    }

    private byte EncodeHour(int hour)
    {
        if ((_ram[RegisterB] & B24Hour) != 0) return Encode(hour);
        int h12 = hour % 12 == 0 ? 12 : hour % 12;
        return (byte)(Encode(h12) | (hour >= 12 ? HourPm : 0));
    }

    private int DecodeHour(byte value)
    {
        if ((_ram[RegisterB] & B24Hour) != 0) return Decode(value);
        int h12 = Decode((byte)(value & ~HourPm));
        if (h12 is < 1 or > 12) return -1;
        return h12 % 12 + ((value & HourPm) != 0 ? 12 : 0);
    }

    private byte Encode(int value) => Binary ? (byte)value : (byte)(((value / 10) << 4) | (value % 10));

    // Returns -1 for a byte that is not valid BCD.
    private int Decode(byte value)
    {
        if (Binary) return value;
        int high = value >> 4, low = value & 0x0F;
        return high > 9 || low > 9 ? -1 : high * 10 + low;
    }
}
