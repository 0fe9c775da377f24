using StratoVirt.Devices.Options;
using StratoVirt.Machine;

namespace StratoVirt.Cli;

/// <summary>
/// -drive file=&lt;firmware&gt;,if=pflash,unit=0|1[,readonly=on|off][,format=raw]: the q35 machine's flash units
/// (OVMF_CODE on unit 0, read-only; OVMF_VARS on unit 1). They have no id and no -device, so they are taken out
/// of the -drive list before the block devices' backends are parsed.
/// </summary>
internal static class FlashOptions
{
    public static IReadOnlyList<PflashDrive> Take(Dictionary<string, List<string>> o, MachineType machine)
    {
        if (!o.TryGetValue("-drive", out var drives)) return [];
        var flash = new List<PflashDrive>();
        foreach (string text in drives.FindAll(IsPflash))
        {
            if (machine != MachineType.Q35)
                throw new UsageException("option -drive: if=pflash needs the standard VM (-machine q35); the microvm boots without firmware");
            var v = new OptionValue("-drive", text, null, ["file", "if", "unit", "readonly", "format", "id"]);
            string file = v.Get("file") is { Length: > 0 } f ? f : throw new UsageException("option -drive: a pflash drive needs file=");
            if (v.Get("format") is { } format && format != "raw")
                throw new UsageException($"option -drive: pflash {file}: format={format} is not supported (raw only)");
            int unit = v.GetInt("unit", 0, 1) ?? flash.Count;
            if (unit > 1) throw new UsageException("option -drive: at most two pflash drives (unit=0 and unit=1)");
            if (flash.Exists(d => d.Unit == unit)) throw new UsageException($"option -drive: pflash unit {unit} is given twice");
            bool readOnly = v.GetBool("readonly", false);
            if (unit == 0 && !readOnly)
                throw new UsageException($"option -drive: pflash unit 0 ({file}) holds the firmware code and must be readonly=true");
            flash.Add(new PflashDrive(unit, file, readOnly));
            drives.Remove(text);
        }
        if (flash.Count > 0 && flash.TrueForAll(d => d.Unit != 0))
            throw new UsageException("option -drive: pflash unit 1 (the variables) needs unit 0 (the firmware code)");
        flash.Sort((a, b) => a.Unit.CompareTo(b.Unit));
        return flash;
    }

    private static bool IsPflash(string text) =>
        Array.IndexOf(text.Split(','), "if=pflash") >= 0;
}
