using StratoVirt.Sys;

namespace StratoVirt.Virtio.Devices;

/// <summary>
/// virtio-rng (virtio 1.2, section 5.4): one request queue whose device-writable buffers are filled from a host
/// entropy source (an -object rng-random file, normally /dev/urandom).
/// </summary>
public sealed class VirtioRng : VirtioDevice
{
    /// <summary>Bytes read from the source per request at most; a guest asking for more gets a short fill.</summary>
    private const int MaxRequest = 64 * 1024;

    private readonly FileDescriptor _source;
    private readonly DescriptorChain _chain = new();
    private readonly byte[] _buffer = new byte[4096];

    public VirtioRng(string sourcePath) : base(VirtioDeviceId.Rng, 1)
    {
        SourcePath = sourcePath;
        _source = FileDescriptor.Open(sourcePath, Libc.O_RDONLY | Libc.O_NONBLOCK);
    }

    public string SourcePath { get; }

    protected override ulong DeviceFeatures => 0;

    public override void ProcessQueue(int index)
    {
        var queue = Queue(0);
        while (queue.Pop(_chain))
        {
            ulong want = Math.Min(_chain.WritableLength, MaxRequest);
            uint written = 0;
            while (written < want)
            {
                int n = Fill(_buffer.AsSpan(0, (int)Math.Min((ulong)_buffer.Length, want - written)));
                if (n <= 0) break;
                written += (uint)_chain.Write(written, _buffer.AsSpan(0, n));
            }
            queue.AddUsed(_chain.Head, written);
        }
        SignalUsed(queue);
    }

    private unsafe int Fill(Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            // Reads into a pinned managed buffer of the given length.
            return (int)Libc.Read(_source.Fd, p, (nuint)buffer.Length);
        }
    }

    public override void Dispose()
    {
        _source.Dispose();
        base.Dispose();
    }
}
