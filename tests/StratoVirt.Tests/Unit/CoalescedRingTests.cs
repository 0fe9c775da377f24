using System.Runtime.InteropServices;
using StratoVirt.Kvm;
using StratoVirt.Sys;
using Xunit;

namespace StratoVirt.Tests.Unit;

/// <summary>A page laid out as KVM's coalesced ring, which the test fills the way KVM appends to it.</summary>
internal sealed unsafe class RingPage : IDisposable
{
    private const int PageSize = 4096;
    private readonly byte* _page = (byte*)NativeMemory.AlignedAlloc(PageSize, PageSize);

    public RingPage()
    {
        NativeMemory.Clear(_page, PageSize);
        Ring = new CoalescedRing((nint)_page, PageSize, owned: false);
    }

    public CoalescedRing Ring { get; }

    public uint First { get => *(uint*)_page; set => *(uint*)_page = value; }
    public uint Last { get => *(uint*)(_page + 4); set => *(uint*)(_page + 4) = value; }

    /// <summary>Appends an entry at <c>last</c> and moves it on, as KVM's coalesced_mmio_write does.</summary>
    public void Append(ulong address, ReadOnlySpan<byte> data, bool pio = true, uint? length = null)
    {
        byte* entry = _page + 8 + Last * 24;
        *(ulong*)entry = address;
        *(uint*)(entry + 8) = length ?? (uint)data.Length;
        *(uint*)(entry + 12) = pio ? 1u : 0u;
        data.CopyTo(new Span<byte>(entry + 16, Math.Min(data.Length, 8)));
        Last = (Last + 1) % (uint)Ring.Capacity;
    }

    public void Dispose() => NativeMemory.AlignedFree(_page);
}

[Trait("Level", "Unit")]
public sealed class CoalescedRingTests
{
    private readonly List<string> _taken = [];

    private void Take(ulong address, bool pio, ReadOnlySpan<byte> data) =>
        _taken.Add($"{(pio ? "port" : "mmio")} 0x{address:x}:{Convert.ToHexString(data)}");

    [Fact]
    public void KvmsLayoutHolds170EntriesOfAtMostEightBytesOnA4KiBPage()
    {
        using var page = new RingPage();
        // KVM_COALESCED_MMIO_MAX: (PAGE_SIZE - 8) / sizeof(struct kvm_coalesced_mmio), 4088 / 24 on 4 KiB pages.
        Assert.Equal(170, page.Ring.Capacity);
        Assert.Equal(8, CoalescedRing.MaxDataLength);
        Assert.Throws<ArgumentException>(() => new CoalescedRing(1, 3000, owned: false));
    }

    [Fact]
    public void DrainHandsOverEveryWriteInOrderAndEmptiesTheRing()
    {
        using var page = new RingPage();
        Assert.True(page.Ring.IsEmpty);
        Assert.Equal(0, page.Ring.Drain(Take));
        page.Append(0x3F8, "h"u8);
        page.Append(0x3F8, "i"u8);
        page.Append(0xFEB0_0000, [1, 2, 3, 4], pio: false);
        Assert.False(page.Ring.IsEmpty);
        Assert.Equal(3, page.Ring.Drain(Take));
        Assert.Equal(["port 0x3f8:68", "port 0x3f8:69", "mmio 0xfeb00000:01020304"], _taken);
        Assert.True(page.Ring.IsEmpty);
        Assert.Equal(3u, page.First);
    }

    [Fact]
    public void DrainFollowsTheRingAroundItsEnd()
    {
        using var page = new RingPage();
        page.First = page.Last = (uint)page.Ring.Capacity - 2;
        for (int i = 0; i < 5; i++) page.Append(0x3F8, [(byte)('a' + i)]);
        Assert.Equal(3u, page.Last);
        Assert.Equal(5, page.Ring.Drain(Take));
        Assert.Equal(["port 0x3f8:61", "port 0x3f8:62", "port 0x3f8:63", "port 0x3f8:64", "port 0x3f8:65"], _taken);
        Assert.Equal(3u, page.First);
    }

    [Fact]
    public void AFullRingDrainsEntirely()
    {
        using var page = new RingPage();
        for (int i = 0; i < page.Ring.Capacity - 1; i++) page.Append(0x3F8, [(byte)i]); // one slot stays free
        Assert.Equal(page.Ring.Capacity - 1, page.Ring.Drain(Take));
        Assert.Equal("port 0x3f8:A8", _taken[^1]);
    }

    [Fact]
    public void WritesQueuedWhileDrainingAreTakenInTheSameDrain()
    {
        using var page = new RingPage();
        page.Append(0x3F8, "a"u8);
        int appended = 0;
        page.Ring.Drain((address, pio, data) =>
        {
            Take(address, pio, data);
            if (appended++ == 0) page.Append(0x3F8, "b"u8); // another vCPU's write lands meanwhile
        });
        Assert.Equal(["port 0x3f8:61", "port 0x3f8:62"], _taken);
        Assert.True(page.Ring.IsEmpty);
    }

    [Fact]
    public void IndicesOrLengthsKvmCannotHaveWrittenEmptyTheRingWithOneLine()
    {
        using var page = new RingPage();
        page.Last = 400;
        var e = Assert.Throws<SysException>(() => page.Ring.Drain(Take));
        Assert.Contains("indices 0 and 400 past its 170 entries", e.Message);
        Assert.Empty(_taken);
        Assert.Equal(0u, page.First);

        page.First = page.Last = 0;
        page.Append(0x3F8, "x"u8);
        page.Append(0x3F8, "12345678"u8, length: 4096);
        e = Assert.Throws<SysException>(() => page.Ring.Drain(Take));
        Assert.Contains("a write of 4096 bytes at 0x3f8", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Equal(["port 0x3f8:78"], _taken); // the good entry before it was served
        Assert.True(page.Ring.IsEmpty);
    }
}
