using System.Buffers.Binary;

namespace StratoVirt.Boot;

/// <summary>Offsets and flags of the Linux x86 boot protocol setup header (Documentation/arch/x86/boot.rst).</summary>
public static class SetupHeader
{
    public const int Start = 0x1F1;
    public const int SetupSects = 0x1F1;
    public const int SysSize = 0x1F4;
    public const int BootFlag = 0x1FE;
    public const int Jump = 0x200;
    public const int Magic = 0x202;          // "HdrS"
    public const int Version = 0x206;
    public const int TypeOfLoader = 0x210;
    public const int LoadFlags = 0x211;
    public const int Code32Start = 0x214;
    public const int RamdiskImage = 0x218;
    public const int RamdiskSize = 0x21C;
    public const int HeapEndPtr = 0x224;
    public const int CmdLinePtr = 0x228;
    public const int InitrdAddrMax = 0x22C;
    public const int KernelAlignment = 0x230;
    public const int RelocatableKernel = 0x234;
    public const int XLoadFlags = 0x236;
    public const int CmdLineSize = 0x238;
    public const int PrefAddress = 0x258;
    public const int InitSize = 0x260;
    /// <summary>Bytes of a 2.15 header, the newest this loader copies.</summary>
    public const int MaxEnd = 0x270;

    public const uint HdrS = 0x53726448;
    public const byte LoadedHigh = 0x01;
    public const byte CanUseHeap = 0x80;
    public const ushort XlfKernel64 = 0x01;
    public const ushort XlfCanBeLoadedAbove4G = 0x02;

    public static bool HasMagic(ReadOnlySpan<byte> image) =>
        image.Length >= Magic + 4 && BinaryPrimitives.ReadUInt32LittleEndian(image[Magic..]) == HdrS;
}

/// <summary>Offsets of struct boot_params (the zero page) outside the setup header.</summary>
public static class ZeroPage
{
    public const int Size = 4096;
    public const int AcpiRsdpAddr = 0x070;
    public const int ExtRamdiskImage = 0x0C0;
    public const int ExtRamdiskSize = 0x0C4;
    public const int ExtCmdLinePtr = 0x0C8;
    public const int E820Entries = 0x1E8;
    public const int E820Table = 0x2D0;
}
