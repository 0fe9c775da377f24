namespace StratoVirt.Boot.Acpi;

/// <summary>The 36-byte header every ACPI system description table starts with, and its checksum.</summary>
internal static class AcpiHeader
{
    public const int Size = 36;
    public const int LengthOffset = 4;
    public const int ChecksumOffset = 9;

    public const string OemId = "STRVRT";
    public const uint OemRevision = 1;
    public const string CreatorId = "STRV";
    public const uint CreatorRevision = 1;

    /// <summary>Writes the header of <paramref name="table"/>, whose length is the span's, and seals the checksum.</summary>
    /// <remarks>Call after the body is written: the checksum covers the whole table.</remarks>
    public static void WriteAndSeal(Span<byte> table, string signature, byte revision, string oemTableId)
    {
        var w = new ByteWriter(table);
        w.Ascii(signature, 4);
        w.U32((uint)table.Length);
        w.U8(revision);
        w.U8(0);
        w.Ascii(OemId, 6);
        w.Ascii(oemTableId, 8);
        w.U32(OemRevision);
        w.Ascii(CreatorId, 4);
        w.U32(CreatorRevision);
        ByteChecksum.Seal(table, ChecksumOffset);
    }
}
