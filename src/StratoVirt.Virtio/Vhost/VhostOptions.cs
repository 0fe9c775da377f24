using System.Globalization;
using StratoVirt.Devices.Options;

namespace StratoVirt.Virtio.Vhost;

/// <summary>The command-line values vhost-kernel devices share.</summary>
public static class VhostOptions
{
    /// <summary>An inherited vhost fd's number (3 or above); <paramref name="option"/> names it in the error.</summary>
    public static int ParseFd(string option, string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int fd) && fd >= 3 ? fd
            : throw new UsageException($"option {option}: vhostfd={text} is not an inherited file descriptor (3 or above)");
}
