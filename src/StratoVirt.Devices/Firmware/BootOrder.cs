using System.Text;

namespace StratoVirt.Devices.Firmware;

/// <summary>
/// QEMU's fw_cfg <c>bootorder</c> file: OpenFirmware device paths of the -device options that carry bootindex=,
/// lowest index first, separated by newlines and ended by a NUL. Paths name devices on the q35's root bus behind
/// the 0xCF8 configuration ports, as QEMU writes them: a virtio disk at slot s, function f is
/// <c>/pci@i0cf8/scsi@s[,f]/disk@0,0</c> and a NIC <c>/pci@i0cf8/ethernet@s[,f]</c> (hex numbers, function only
/// when not 0).
/// </summary>
public static class BootOrder
{
    public const string FileName = "bootorder";

    /// <summary>What kind of device a boot entry is, which decides its path's node names.</summary>
    public enum DeviceKind { Disk, Network }

    /// <summary>The path of a device at <paramref name="slot"/>.<paramref name="function"/> of the root bus.</summary>
    public static string PciPath(DeviceKind kind, int slot, int function)
    {
        string unit = function == 0 ? $"{slot:x}" : $"{slot:x},{function:x}";
        return kind == DeviceKind.Disk ? $"/pci@i0cf8/scsi@{unit}/disk@0,0" : $"/pci@i0cf8/ethernet@{unit}";
    }

    /// <summary>The file for <paramref name="entries"/> (bootindex, path), ordered by bootindex (the command line
    /// refuses a bootindex given twice).</summary>
    public static byte[] Build(IEnumerable<(int Index, string Path)> entries)
    {
        var ordered = new List<(int Index, string Path)>(entries);
        ordered.Sort((a, b) => a.Index.CompareTo(b.Index));
        var paths = new string[ordered.Count];
        for (int i = 0; i < paths.Length; i++) paths[i] = ordered[i].Path;
        return Encoding.ASCII.GetBytes(string.Join('\n', paths) + "\0");
    }
}
