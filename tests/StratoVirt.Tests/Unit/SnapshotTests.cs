using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using StratoVirt.Devices.Legacy;
using StratoVirt.Devices.State;
using StratoVirt.Kvm;
using StratoVirt.Machine;
using StratoVirt.Machine.Snapshot;
using StratoVirt.Memory;
using StratoVirt.Sys;
using StratoVirt.Tests.Devices;
using StratoVirt.Virtio.Devices;
using StratoVirt.Virtio.Devices.Block;
using StratoVirt.Virtio.Devices.Net;

namespace StratoVirt.Tests.Unit;

/// <summary>Snapshot pieces without KVM: the state structs against the UAPI, every record's round trip, the state
/// file's refusals, the command-line checks, and the sparse memory file.</summary>
[Trait("Level", "Unit")]
public sealed class SnapshotTests
{
    [Fact]
    public void StateStructsAndTheirIoctlsMatchTheKernelAbi()
    {
        Assert.Equal(392, Unsafe.SizeOf<KvmXcrs>());
        Assert.Equal(64, Unsafe.SizeOf<KvmVcpuEvents>());
        Assert.Equal(128, Unsafe.SizeOf<KvmDebugRegs>());
        Assert.Equal(4, Unsafe.SizeOf<KvmMpState>());
        Assert.Equal(520, Unsafe.SizeOf<KvmIrqchip>());
        Assert.Equal(112, Unsafe.SizeOf<KvmPitState2>());
        Assert.Equal(48, Unsafe.SizeOf<KvmClockData>());
        Assert.Equal(16, Unsafe.SizeOf<KvmMsrEntry>());
        // _IOC encodes the argument's size in bits 16-29: each request must name its struct's size.
        static int Size(ulong request) => (int)((request >> 16) & 0x3FFF);
        Assert.Equal(Unsafe.SizeOf<KvmXcrs>(), Size(KvmIoctls.GetXcrs));
        Assert.Equal(Unsafe.SizeOf<KvmXcrs>(), Size(KvmIoctls.SetXcrs));
        Assert.Equal(Unsafe.SizeOf<KvmVcpuEvents>(), Size(KvmIoctls.GetVcpuEvents));
        Assert.Equal(Unsafe.SizeOf<KvmVcpuEvents>(), Size(KvmIoctls.SetVcpuEvents));
        Assert.Equal(Unsafe.SizeOf<KvmDebugRegs>(), Size(KvmIoctls.GetDebugRegs));
        Assert.Equal(Unsafe.SizeOf<KvmDebugRegs>(), Size(KvmIoctls.SetDebugRegs));
        Assert.Equal(Unsafe.SizeOf<KvmMpState>(), Size(KvmIoctls.SetMpState));
        Assert.Equal(Unsafe.SizeOf<KvmIrqchip>(), Size(KvmIoctls.GetIrqchip));
        Assert.Equal(Unsafe.SizeOf<KvmIrqchip>(), Size(KvmIoctls.SetIrqchip));
        Assert.Equal(Unsafe.SizeOf<KvmPitState2>(), Size(KvmIoctls.GetPit2));
        Assert.Equal(Unsafe.SizeOf<KvmPitState2>(), Size(KvmIoctls.SetPit2));
        Assert.Equal(Unsafe.SizeOf<KvmFpu>(), Size(KvmIoctls.GetFpu));
        Assert.Equal(KvmVcpu.XsaveMinimum, Size(KvmIoctls.GetXsave));
        Assert.Equal(KvmVcpu.XsaveMinimum, Size(KvmIoctls.SetXsave));
        Assert.Equal(KvmVcpu.XsaveMinimum, Size(KvmIoctls.GetXsave2));
        Assert.Equal(8, Size(KvmIoctls.GetMsrs)); // struct kvm_msrs' header
        Assert.Equal(4, Size(KvmIoctls.GetMsrIndexList)); // struct kvm_msr_list's header
    }

    private static X86VcpuState SampleVcpu(bool optional)
    {
        var state = new X86VcpuState
        {
            Regs = new KvmRegs { Rax = 0x1234, Rip = 0x100_0000, Rflags = 0x202 },
            Sregs = new KvmSregs { Cr0 = 0x8000_0011, Cr3 = 0x9000, Efer = 0x500, ApicBase = 0xFEE0_0900 },
            Fpu = new KvmFpu { Fcw = 0x37F, Mxcsr = 0x1F80 },
            Msrs = [new KvmMsrEntry { Index = 0x10, Data = 123_456_789 }, new KvmMsrEntry { Index = 0xC000_0082, Data = 0xFFFF_FFFF_8100_0000 }],
            MpState = new KvmMpState { State = 3 },
        };
        state.Lapic.SetRegister(0x350, 0x700);
        if (optional)
        {
            state.Xsave = new byte[KvmVcpu.XsaveMinimum];
            state.Xsave[4095] = 0x5A;
            state.Xcrs = new KvmXcrs { Count = 1 };
            state.Events = new KvmVcpuEvents();
            state.DebugRegs = new KvmDebugRegs { Dr6 = 0xFFFF0FF0, Dr7 = 0x400 };
        }
        return state;
    }

    private static X86VcpuState RoundTrip(X86VcpuState state)
    {
        var writer = new StateWriter();
        state.Write(writer);
        var reader = new StateReader(writer.ToArray(), "vcpu");
        var copy = X86VcpuState.Read(reader);
        reader.ExpectEnd();
        return copy;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AVcpuRecordRoundTripsWithAndWithoutTheOptionalParts(bool optional)
    {
        var copy = RoundTrip(SampleVcpu(optional));
        Assert.Equal((0x1234UL, 0x100_0000UL, 0x202UL), (copy.Regs.Rax, copy.Regs.Rip, copy.Regs.Rflags));
        Assert.Equal((0x8000_0011UL, 0x9000UL, 0x500UL, 0xFEE0_0900UL), (copy.Sregs.Cr0, copy.Sregs.Cr3, copy.Sregs.Efer, copy.Sregs.ApicBase));
        Assert.Equal((0x37F, 0x1F80u), (copy.Fpu.Fcw, copy.Fpu.Mxcsr));
        Assert.Equal([(0x10u, 123_456_789UL), (0xC000_0082u, 0xFFFF_FFFF_8100_0000UL)], copy.Msrs.Select(m => (m.Index, m.Data)));
        Assert.Equal(3u, copy.MpState.State);
        Assert.Equal(0x700u, copy.Lapic.GetRegister(0x350));
        Assert.Equal(optional, copy.Xcrs.HasValue);
        Assert.Equal(optional, copy.Events.HasValue);
        Assert.Equal(optional ? 0x400UL : 0, copy.DebugRegs?.Dr7 ?? 0);
        Assert.Equal(optional ? KvmVcpu.XsaveMinimum : 0, copy.Xsave.Length);
        if (optional) Assert.Equal(0x5A, copy.Xsave[4095]);
    }

    [Fact]
    public void AVcpuRecordWithAStructOfAnotherSizeOrTooManyMsrsIsRefused()
    {
        var writer = new StateWriter();
        writer.WriteBytes(new byte[3]); // an MP state of 3 bytes
        var e = Assert.Throws<StateException>(() => X86VcpuState.Read(new StateReader(writer.ToArray(), "vcpu")));
        Assert.Equal("vcpu state: the MP state is 3 bytes, this build's is 4", e.Message);

        var good = new StateWriter();
        SampleVcpu(false).Write(good);
        byte[] bytes = good.ToArray();
        // The MSR count sits after MP state, regs, sregs, FPU (each led by its length), the empty XSAVE and the XCRs flag.
        int countAt = 4 + 4 + 4 + 0x90 + 4 + 0x138 + 4 + 416 + 4 + 1;
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(countAt), 0x1000_0000);
        e = Assert.Throws<StateException>(() => X86VcpuState.Read(new StateReader(bytes, "vcpu")));
        Assert.StartsWith("vcpu state: 268435456 MSRs cannot fit", e.Message);
    }

    [Fact]
    public void TheVmRecordRoundTripsAndKeepsTheChipsInOrder()
    {
        var state = new X86VmState
        {
            PicMaster = new KvmIrqchip { ChipId = KvmIrqchip.PicMaster },
            PicSlave = new KvmIrqchip { ChipId = KvmIrqchip.PicSlave },
            Ioapic = new KvmIrqchip { ChipId = KvmIrqchip.Ioapic },
            Pit = new KvmPitState2 { Flags = 1 },
            ClockNanoseconds = 5_000_000_123,
        };
        var writer = new StateWriter();
        state.Write(writer);
        var copy = X86VmState.Read(new StateReader(writer.ToArray(), "kvm-vm"));
        Assert.Equal((KvmIrqchip.Ioapic, 1u, 5_000_000_123UL), (copy.Ioapic.ChipId, copy.Pit.Flags, copy.ClockNanoseconds));

        (state.PicMaster, state.Ioapic) = (state.Ioapic, state.PicMaster);
        writer = new StateWriter();
        state.Write(writer);
        var e = Assert.Throws<StateException>(() => X86VmState.Read(new StateReader(writer.ToArray(), "kvm-vm")));
        Assert.Equal("kvm-vm state: the interrupt controllers are out of order", e.Message);
    }

    [Fact]
    public void TheUartKeepsItsRegistersAndTheBytesWaitingInItsFifo()
    {
        var irq = new CountingInterruptLine();
        var uart = new Serial16550(irq, new CountingSerialOutput());
        uart.Out(3, 0x03); // LCR: 8N1
        uart.Out(7, 0xA5); // scratch
        uart.Out(1, 0x01); // IER: receive interrupts
        Assert.Equal(3, uart.EnqueueInput("abc"u8));
        var record = StateRecord.Capture(uart);

        var restoredIrq = new CountingInterruptLine();
        var restored = new Serial16550(restoredIrq, new CountingSerialOutput());
        record.Restore(restored);
        Assert.Equal(1, restoredIrq.Count); // data waits and receive interrupts are on: the line is raised again
        Assert.Equal((0x03, 0xA5, 0x01), (restored.In(3), restored.In(7), restored.In(1)));
        Assert.Equal("abc", string.Concat(Enumerable.Range(0, 3).Select(_ => (char)restored.In(0))));
        Assert.Equal(0, restored.In(5) & 0x01); // FIFO empty now
    }

    [Fact]
    public void TheRtcKeepsItsRamAndTheI8042ItsOutputBuffer()
    {
        var rtc = new CmosRtc(() => new DateTime(2026, 12, 5, 8, 0, 0, DateTimeKind.Utc));
        rtc.Out(0, 0x40);
        rtc.Out(1, 0x77);
        var restoredRtc = new CmosRtc(() => new DateTime(2026, 12, 5, 8, 0, 0, DateTimeKind.Utc));
        StateRecord.Capture(rtc).Restore(restoredRtc);
        Assert.Equal(0x77, restoredRtc.In(1)); // the index (0x40) came back too

        var kbc = new I8042(() => { }, new CountingInterruptLine());
        kbc.Out(4, 0xAA); // self-test: 0x55 waits in the output buffer
        var kbcIrq = new CountingInterruptLine();
        var restoredKbc = new I8042(() => { }, kbcIrq);
        StateRecord.Capture(kbc).Restore(restoredKbc);
        Assert.Equal(0x55, restoredKbc.In(0));
    }

    private static MachineConfig Config(ulong memory = 256UL << 20, int cpus = 1, string disk = "/images/a.raw",
        string? serial = "s1", byte[]? mac = null, bool readOnly = false, string tap = "tap0") => new()
    {
        KernelPath = "/vmlinux",
        MemorySize = memory,
        Cpus = CpuTopology.Single(cpus),
        Devices = [new BlockDeviceConfig("rootfs", disk, readOnly, true, serial), new NetDeviceConfig("net0", tap, null, mac ?? [2, 0, 0, 0, 0, 1])],
    };

    private static SnapshotState Snapshot(MachineConfig config, string arch = SnapshotState.ThisArchitecture) =>
        new(arch, "microvm", config.Cpus.Count, Layout(config), SnapshotState.FactsOf(config),
            [new StateRecord("kvm-vm", 1, [1, 2, 3]), new StateRecord("vcpu", 1, [])]);

    private static List<(ulong, ulong)> Layout(MachineConfig config) => [.. StratoVirt.Boot.Layout.RamRegions(config.MemorySize)];

    [Fact]
    public void TheStateFileRoundTrips()
    {
        var state = SnapshotState.Decode(Snapshot(Config()).Encode(), "state");
        Assert.Equal(("x86_64", "microvm", 1), (state.Architecture, state.MachineType, state.Cpus));
        Assert.Equal(["kvm-vm", "vcpu"], state.Records.Select(r => r.Name));
        Assert.Equal([1, 2, 3], state.Records[0].Data);
        state.CheckMatches(Config(), Layout(Config()));
    }

    [Fact]
    public void ATruncatedCorruptForeignOrOtherVersionStateFileIsOneLine()
    {
        byte[] good = Snapshot(Config()).Encode();
        string Refusal(byte[] file) => Assert.Throws<SnapshotException>(() => SnapshotState.Decode(file, "/snap/state")).Message;

        Assert.Equal("/snap/state is not a snapshot state file", Refusal("garbage, not a snapshot"u8.ToArray()));
        Assert.Equal("/snap/state is not a snapshot state file", Refusal([]));
        Assert.StartsWith("/snap/state is truncated or has trailing bytes", Refusal(good[..^1]));
        Assert.StartsWith("/snap/state is truncated or has trailing bytes", Refusal(good[..20]));
        var corrupt = (byte[])good.Clone();
        corrupt[40] ^= 0x01;
        Assert.Equal("/snap/state is corrupt: its checksum does not match its contents", Refusal(corrupt));
        var version = (byte[])good.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(version.AsSpan(8), 9);
        Assert.Equal("/snap/state has snapshot format version 9; this build reads version 2", Refusal(version));
        Assert.Equal("/snap/state was taken on aarch64; this host is x86_64", Refusal(Snapshot(Config(), "aarch64").Encode()));
    }

    [Fact]
    public void AMangledPayloadWithAValidChecksumIsRefusedInOneLineNeverCrashes()
    {
        byte[] good = Snapshot(Config()).Encode();
        var random = new Random(14);
        for (int i = 0; i < 2000; i++)
        {
            var file = (byte[])good.Clone();
            for (int k = random.Next(1, 4); k > 0; k--) file[random.Next(16, file.Length - 4)] = (byte)random.Next(256);
            var body = file.AsSpan(16, file.Length - 20);
            BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(file.Length - 4), Crc32.Compute(body));
            try
            {
                SnapshotState.Decode(file, "state");
            }
            catch (SnapshotException e)
            {
                Assert.DoesNotContain('\n', e.Message);
            }
        }
    }

    [Theory]
    [InlineData("memory", "the snapshot does not match the command line: -m was 256M, now 512M")]
    [InlineData("cpus", "the snapshot does not match the command line: -smp was 1, now 2")]
    [InlineData("readonly", "the snapshot does not match the command line: readonly of rootfs was off, now on")]
    [InlineData("serial", "the snapshot does not match the command line: serial of rootfs was s1, now s2")]
    [InlineData("mac", "the snapshot does not match the command line: mac of net0 was 020000000001, now 020000000002")]
    public void ARestoreOfAnotherCommandLineNamesTheDifference(string change, string message)
    {
        var saved = Snapshot(Config());
        var now = change switch
        {
            "memory" => Config(memory: 512UL << 20),
            "cpus" => Config(cpus: 2),
            "readonly" => Config(readOnly: true),
            "serial" => Config(serial: "s2"),
            _ => Config(mac: [2, 0, 0, 0, 0, 2]),
        };
        Assert.Equal(message, Assert.Throws<SnapshotException>(() => saved.CheckMatches(now, Layout(now))).Message);
    }

    [Fact]
    public void ATemplateCloneMayGiveItsOwnImageFileAndTap()
    {
        var saved = Snapshot(Config());
        var clone = Config(disk: "/clones/1/a.raw", tap: "tap1");
        saved.CheckMatches(clone, Layout(clone));
    }

    [Fact]
    public void AnotherDeviceSetIsRefused()
    {
        var saved = Snapshot(Config());
        var now = Config() with { Devices = [Config().Devices[0]] };
        var e = Assert.Throws<SnapshotException>(() => saved.CheckMatches(now, Layout(now)));
        Assert.Equal("the snapshot does not match the command line: devices was virtio-blk:rootfs virtio-net:net0, now virtio-blk:rootfs", e.Message);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void TheMemoryFileIsSparseAndComesBackMappedOrReadIn(bool mapped)
    {
        using var dir = new TempDir();
        string path = System.IO.Path.Combine(dir.Path, "memory");
        ulong size = 64UL << 20;
        using (var memory = new GuestMemory([(0, size)]))
        {
            memory.WriteUInt64(0x1000, 0xDEAD_BEEF);
            memory.Write(0x20_0000, Enumerable.Repeat((byte)0x33, 3 * 4096).ToArray());
            memory.WriteByte(size - 1, 0x7F);
            using var file = FileDescriptor.Open(path, Libc.O_WRONLY | Libc.O_CREAT | Libc.O_EXCL, 0x180);
            Assert.Equal(5UL * 4096, MemoryImage.Write(memory, file.Fd)); // 1 + 3 pages, and the last one
        }
        Assert.Equal((long)size, new FileInfo(path).Length);
        Assert.True(AllocatedBytes(path) < 1 << 20, $"the memory file holds {AllocatedBytes(path)} bytes on disk");

        using var restored = mapped
            ? new GuestMemory([(0, size)], new RamBacking { Kind = RamBackingKind.Snapshot, Path = path })
            : new GuestMemory([(0, size)]);
        if (!mapped)
        {
            restored.WriteByte(0x5000, 0x11); // read in: the file's zero pages are not written
            MemoryImage.Load(restored, path);
        }
        Assert.Equal(0xDEAD_BEEFUL, restored.ReadUInt64(0x1000));
        Assert.Equal(0x33, restored.ReadByte(0x20_0000 + 3 * 4096 - 1));
        Assert.Equal(0x7F, restored.ReadByte(size - 1));
        Assert.Equal(mapped ? 0 : 0x11, restored.ReadByte(0x5000));
        restored.WriteByte(0x1000, 0x01); // a private mapping: the file does not change
        Assert.Equal(0x01, restored.ReadByte(0x1000));
        Assert.Equal(0xEF, File.ReadAllBytes(path)[0x1000]);
        if (mapped)
        {
            Assert.NotNull(restored.Regions[0].File);
            Assert.False(restored.Regions[0].Shared);
        }

        string expected = $"{path} holds {size} bytes; the guest's memory is {32UL << 20} bytes";
        var e = Assert.Throws<RamBackingException>(() =>
        {
            using var small = mapped
                ? new GuestMemory([(0, 32UL << 20)], new RamBacking { Kind = RamBackingKind.Snapshot, Path = path })
                : new GuestMemory([(0, 32UL << 20)]);
            if (!mapped) MemoryImage.Load(small, path);
        });
        Assert.Equal(expected, e.Message);
    }

    private static long AllocatedBytes(string path)
    {
        var stat = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%b %B", path]) { RedirectStandardOutput = true })!;
        var parts = stat.StandardOutput.ReadToEnd().Split(' ');
        stat.WaitForExit();
        return long.Parse(parts[0]) * long.Parse(parts[1]);
    }
}
