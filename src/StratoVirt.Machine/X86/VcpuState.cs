using StratoVirt.Devices.State;
using StratoVirt.Kvm;
using StratoVirt.Sys;

namespace StratoVirt.Machine;

/// <summary>What this host's KVM can save of a vCPU, learned once per machine: the MSRs it lists, the XSAVE area's
/// size, and which of the optional state ioctls exist (a PVM host lacks some).</summary>
public sealed record VcpuStateSupport(uint[] Msrs, int XsaveSize, bool Xcrs, bool Events, bool DebugRegs)
{
    public static VcpuStateSupport Probe(KvmSystem kvm)
    {
        uint[] msrs;
        try { msrs = kvm.GetMsrIndexList(); }
        catch (SysException e)
        {
            Log.Warn($"{e.Message}; a snapshot saves only the MSRs the VMM sets at boot");
            msrs = [0x10, 0x174, 0x175, 0x176, 0xC0000081, 0xC0000082, 0xC0000083, 0xC0000084, 0xC0000102, 0x1A0, 0x2FF];
        }
        int xsave = kvm.CheckExtension(KvmCap.Xsave) > 0 ? Math.Max(KvmVcpu.XsaveMinimum, kvm.CheckExtension(KvmCap.Xsave2)) : 0;
        return new VcpuStateSupport(msrs, xsave, kvm.CheckExtension(KvmCap.Xcrs) > 0,
            kvm.CheckExtension(KvmCap.VcpuEvents) > 0, kvm.CheckExtension(KvmCap.DebugRegs) > 0);
    }
}

/// <summary>
/// An x86 vCPU's state as KVM keeps it: general and special registers, FPU (or the whole XSAVE area) and XCRs,
/// MSRs, local APIC, pending events, debug registers and the multiprocessing state. The optional parts are empty
/// where the host's KVM lacks them. CPUID is not saved: a restore sets it up again from the same command line.
/// </summary>
public sealed class X86VcpuState
{
    public KvmRegs Regs;
    public KvmSregs Sregs;
    public KvmFpu Fpu;
    public byte[] Xsave = [];
    public KvmXcrs? Xcrs;
    public KvmMsrEntry[] Msrs = [];
    public KvmLapicState Lapic;
    public KvmVcpuEvents? Events;
    public KvmDebugRegs? DebugRegs;
    public KvmMpState MpState;

    public static X86VcpuState Capture(KvmVcpu vcpu, VcpuStateSupport support)
    {
        var state = new X86VcpuState
        {
            MpState = vcpu.GetMpState(),
            Regs = vcpu.GetRegs(),
            Sregs = vcpu.GetSregs(),
            Lapic = vcpu.GetLapic(),
            Msrs = vcpu.GetMsrs(support.Msrs),
        };
        if (support.XsaveSize > 0)
        {
            state.Xsave = new byte[support.XsaveSize];
            vcpu.GetXsave(state.Xsave);
        }
        else
        {
            state.Fpu = vcpu.GetFpu();
        }
        if (support.Xcrs) state.Xcrs = vcpu.GetXcrs();
        if (support.Events) state.Events = vcpu.GetVcpuEvents();
        if (support.DebugRegs) state.DebugRegs = vcpu.GetDebugRegs();
        return state;
    }

    /// <summary>
    /// Puts the state into a vCPU whose CPUID is already set, in the order KVM needs: MP state and registers; the
    /// special registers before the local APIC (they carry the APIC base); the APIC before the MSRs (the TSC
    /// deadline timer lives in the APIC); pending events last, as they depend on everything else.
    /// </summary>
    public void Apply(KvmVcpu vcpu)
    {
        vcpu.SetMpState(MpState);
        vcpu.SetRegs(Regs);
        vcpu.SetSregs(Sregs);
        if (Xsave.Length > 0) vcpu.SetXsave(Xsave);
        else vcpu.SetFpu(Fpu);
        if (Xcrs is { } xcrs) vcpu.SetXcrs(xcrs);
        if (DebugRegs is { } debug) vcpu.SetDebugRegs(debug);
        vcpu.SetLapic(Lapic);
        var refused = vcpu.SetMsrs(Msrs);
        if (refused.Count > 0)
            Log.Warn($"vCPU {vcpu.Id}: KVM refused saved MSRs {string.Join(", ", refused.ConvertAll(i => $"0x{i:x}"))}");
        if (Events is { } events) vcpu.SetVcpuEvents(events);
    }

    public void Write(StateWriter writer)
    {
        writer.WriteStruct(MpState);
        writer.WriteStruct(Regs);
        writer.WriteStruct(Sregs);
        writer.WriteStruct(Fpu);
        writer.WriteBytes(Xsave);
        WriteOptional(writer, Xcrs);
        writer.WriteUInt32((uint)Msrs.Length);
        foreach (var msr in Msrs) writer.WriteStruct(msr);
        writer.WriteStruct(Lapic);
        WriteOptional(writer, Events);
        WriteOptional(writer, DebugRegs);
    }

    public static X86VcpuState Read(StateReader reader)
    {
        var state = new X86VcpuState
        {
            MpState = reader.ReadStruct<KvmMpState>("the MP state"),
            Regs = reader.ReadStruct<KvmRegs>("the registers"),
            Sregs = reader.ReadStruct<KvmSregs>("the special registers"),
            Fpu = reader.ReadStruct<KvmFpu>("the FPU"),
            Xsave = reader.ReadBytes(),
        };
        if (state.Xsave.Length is > 0 and < KvmVcpu.XsaveMinimum)
            throw new StateException($"{reader.Name} state: an XSAVE area of {state.Xsave.Length} bytes is too small");
        state.Xcrs = ReadOptional<KvmXcrs>(reader, "the XCRs");
        uint count = reader.ReadUInt32();
        if (count > (uint)reader.Remaining / 20)
            throw new StateException($"{reader.Name} state: {count} MSRs cannot fit in the {reader.Remaining} bytes left");
        state.Msrs = new KvmMsrEntry[count];
        for (int i = 0; i < count; i++) state.Msrs[i] = reader.ReadStruct<KvmMsrEntry>("an MSR");
        state.Lapic = reader.ReadStruct<KvmLapicState>("the local APIC");
        state.Events = ReadOptional<KvmVcpuEvents>(reader, "the vCPU events");
        state.DebugRegs = ReadOptional<KvmDebugRegs>(reader, "the debug registers");
        return state;
    }

    private static void WriteOptional<T>(StateWriter writer, T? value) where T : unmanaged
    {
        writer.WriteBool(value.HasValue);
        if (value is { } v) writer.WriteStruct(v);
    }

    private static T? ReadOptional<T>(StateReader reader, string what) where T : unmanaged =>
        reader.ReadBool() ? reader.ReadStruct<T>(what) : null;
}

/// <summary>One KVM vCPU as a saved-state record ("vcpu"), which names the vCPU it belongs to.</summary>
public sealed class KvmVcpuStateful(KvmVcpu vcpu, VcpuStateSupport support) : IStateful
{
    public string StateName => "vcpu";
    public int StateVersion => 1;

    public void SaveState(StateWriter writer)
    {
        writer.WriteUInt32((uint)vcpu.Id);
        X86VcpuState.Capture(vcpu, support).Write(writer);
    }

    public void RestoreState(StateReader reader)
    {
        uint id = reader.ReadUInt32();
        if (id != vcpu.Id) throw new StateException($"a record of vCPU {id} cannot restore vCPU {vcpu.Id}");
        var state = X86VcpuState.Read(reader);
        reader.ExpectEnd();
        if (state.Xsave.Length > Math.Max(support.XsaveSize, KvmVcpu.XsaveMinimum))
            throw new StateException($"vCPU {id}: the saved XSAVE area ({state.Xsave.Length} bytes) is larger than this host's ({support.XsaveSize})");
        try { state.Apply(vcpu); }
        catch (SysException e) { throw new StateException($"vCPU {id}: {e.Message}"); }
    }
}
