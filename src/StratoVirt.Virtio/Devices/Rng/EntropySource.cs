using StratoVirt.Sys;

namespace StratoVirt.Virtio.Devices.Rng;

/// <summary>The host side of virtio-rng: the -object rng-random file (normally /dev/urandom), read without
/// blocking.</summary>
public sealed class EntropySource(string path) : IDisposable
{
    private readonly FileDescriptor _fd = FileDescriptor.Open(path, Libc.O_RDONLY | Libc.O_NONBLOCK);

    public string Path { get; } = path;

    /// <summary>Fills up to <paramref name="buffer"/>'s length: the count, or 0 or a negative errno when the source
    /// has nothing now.</summary>
    public int Read(Span<byte> buffer) => FileIo.Read(_fd.Fd, buffer);

    public void Dispose() => _fd.Dispose();
}
