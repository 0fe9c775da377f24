namespace StratoVirt.Virtio.Devices.Block;

/// <summary>
/// A guest request that the host's image failed (not one the driver got wrong): the device <paramref name="Device"/>,
/// whether it wrote (writes, flushes, discards and write-zeroes) or read, and the errno. The guest got IOERR for it
/// and the device goes on serving: upstream StratoVirt has no werror/rerror policy, so the one action is "report".
/// </summary>
public sealed record BlockIoError(string Device, bool Write, int Errno);
