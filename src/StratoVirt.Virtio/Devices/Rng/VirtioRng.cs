using StratoVirt.Devices.State;

namespace StratoVirt.Virtio.Devices.Rng;

/// <summary>
/// virtio-rng (virtio 1.2, section 5.4): one request queue whose device-writable buffers are filled from a host
/// entropy source (an -object rng-random file, normally /dev/urandom).
/// </summary>
public sealed class VirtioRng : VirtioDevice
{
    /// <summary>Bytes read from the source per request at most; a guest asking for more gets a short fill.</summary>
    private const int MaxRequest = 64 * 1024;

    private readonly EntropySource _source;
    private readonly DescriptorChain _chain = new();
    private readonly byte[] _buffer = new byte[4096];

    public VirtioRng(string sourcePath) : base(VirtioDeviceId.Rng, 1)
    {
        _source = new EntropySource(sourcePath);
    }

    public string SourcePath => _source.Path;

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
                int n = _source.Read(_buffer.AsSpan(0, (int)Math.Min((ulong)_buffer.Length, want - written)));
                if (n <= 0) break;
                written += (uint)_chain.Write(written, _buffer.AsSpan(0, n));
            }
            queue.AddUsed(_chain.Head, written);
        }
        SignalUsed(queue);
    }

    public override string StateName => RngState.Name;
    public override int StateVersion => RngState.Version;

    protected override void SaveDeviceState(StateWriter writer) => new RngState(Features, SourcePath).Write(writer);

    protected override void RestoreDeviceState(StateReader reader)
    {
        var state = RngState.Read(reader);
        if (state.SourcePath != SourcePath) throw StateMismatch("entropy source", state.SourcePath, SourcePath);
        RestoreFeatures(state.Features);
    }

    public override void Dispose()
    {
        _source.Dispose();
        base.Dispose();
    }
}
