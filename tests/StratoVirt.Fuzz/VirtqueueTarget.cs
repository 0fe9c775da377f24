using StratoVirt.Memory;
using StratoVirt.Virtio;

namespace StratoVirt.Fuzz;

/// <summary>
/// The split virtqueue and descriptor-chain walker on their own, the guest's memory built from the input: a queue
/// configured from the header (size, ring addresses, EVENT_IDX, INDIRECT_DESC) is activated, and its chains are
/// popped, read, written and returned the way a device does, for a few rounds. A VirtqueueException is the
/// documented rejection (the device would stop with NEEDS_RESET).
/// </summary>
/// <remarks>Input: flags (bit 0 EVENT_IDX, bit 1 INDIRECT_DESC), size u16, descriptor table, available and used
/// ring offsets u16 each, read offset u16, rounds u8; then guest memory from address 0.</remarks>
public sealed class VirtqueueTarget : IFuzzTarget, IDisposable
{
    private const ulong MemorySize = 64 << 10;
    private readonly GuestMemory _memory = new([(0UL, MemorySize)]);
    private readonly DescriptorChain _chain = new();
    private readonly byte[] _scratch = new byte[4096];

    public void Run(ReadOnlySpan<byte> input)
    {
        var r = new FuzzReader(input);
        byte flags = r.U8();
        var queue = new Virtqueue(0, 256)
        {
            Size = r.U16(),
            DescTable = r.U16(),
            AvailRing = r.U16(),
            UsedRing = r.U16(),
            Ready = true,
        };
        ulong readOffset = r.U16();
        int rounds = 1 + r.U8() % 4;
        var ram = _memory.GetSpan(0, MemorySize);
        ram.Clear();
        r.Bytes((int)MemorySize).CopyTo(ram);

        ulong features = VirtioFeature.Version1
            | ((flags & 1) != 0 ? VirtioFeature.RingEventIdx : 0)
            | ((flags & 2) != 0 ? VirtioFeature.RingIndirectDesc : 0);
        try
        {
            queue.Activate(_memory, features);
            for (int round = 0; round < rounds; round++)
            {
                for (int popped = 0; popped < 2 * queue.Size && queue.Pop(_chain); popped++)
                {
                    int read = _chain.Read(readOffset, _scratch);
                    for (int i = 0; i < _chain.Count; i++) _ = _chain.Buffer(i).Length;
                    int written = _chain.Write(readOffset, _scratch.AsSpan(0, read));
                    queue.AddUsed(_chain.Head, (uint)written);
                }
                queue.NeedsInterrupt();
            }
        }
        catch (VirtqueueException)
        {
        }
    }

    public void Dispose() => _memory.Dispose();
}
