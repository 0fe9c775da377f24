using StratoVirt.Kvm;

namespace StratoVirt.Machine;

/// <summary>Turns KVM's supported CPUID into the table one vCPU sees: its APIC id and the VM's topology.</summary>
public static class CpuidBuilder
{
    private const uint HypervisorBit = 1u << 31;   // leaf 1 ECX
    private const uint TscDeadlineBit = 1u << 24;  // leaf 1 ECX
    private const uint HttBit = 1u << 28;          // leaf 1 EDX
    private const uint TopoExtBit = 1u << 22;      // leaf 0x80000001 ECX
    private const uint CmpLegacyBit = 1u << 1;     // leaf 0x80000001 ECX

    /// <summary>Bits needed to number <paramref name="count"/> items (ceil(log2)).</summary>
    public static int Bits(int count) => count <= 1 ? 0 : 32 - System.Numerics.BitOperations.LeadingZeroCount((uint)(count - 1));

    /// <param name="tscDeadlineTimer">KVM emulates the local APIC's TSC-deadline mode
    /// (KVM_CAP_TSC_DEADLINE_TIMER), which its supported CPUID does not list: the bit is set from the capability.
    /// With it Linux arms its timer with one MSR write and skips calibrating the APIC timer against the PIT
    /// (about 100 ms of guest time at boot).</param>
    public static KvmCpuidEntry2[] ForVcpu(ReadOnlySpan<KvmCpuidEntry2> supported, int apicId, CpuTopology topology,
        bool tscDeadlineTimer)
    {
        int threads = topology.Threads;
        int coresPerPackage = topology.Cores * topology.Dies * topology.Clusters;
        int logicalPerPackage = threads * coresPerPackage;
        int smtShift = Bits(threads);
        int packageShift = smtShift + Bits(coresPerPackage);

        var result = new List<KvmCpuidEntry2>(supported.Length);
        foreach (var source in supported)
        {
            var e = source;
            switch (e.Function)
            {
                case 1:
                    e.Ebx = (e.Ebx & 0x0000FFFF) | ((uint)Math.Min(logicalPerPackage, 255) << 16) | ((uint)apicId << 24);
                    e.Ecx |= HypervisorBit;
                    if (tscDeadlineTimer) e.Ecx |= TscDeadlineBit;
                    e.Edx = logicalPerPackage > 1 ? e.Edx | HttBit : e.Edx & ~HttBit;
                    break;
                case 4:
                    // Cores per package minus one in EAX[31:26]; caches are shared by the SMT siblings.
                    if ((e.Eax & 0x1F) != 0)
                        e.Eax = (e.Eax & 0x00003FFF) | ((uint)Math.Min(coresPerPackage - 1, 63) << 26)
                            | ((uint)Math.Max(threads - 1, 0) << 14);
                    break;
                case 0xB:
                case 0x1F:
                    SetExtendedTopology(ref e, apicId, threads, logicalPerPackage, smtShift, packageShift);
                    break;
                case 0x80000001:
                    e.Ecx &= ~TopoExtBit; // keep AMD guests on the legacy topology leaves we fill in
                    e.Ecx = logicalPerPackage > 1 ? e.Ecx | CmpLegacyBit : e.Ecx & ~CmpLegacyBit;
                    break;
                case 0x80000008:
                    e.Ecx = (e.Ecx & ~0xF0FFu) | ((uint)Bits(logicalPerPackage) << 12) | (uint)Math.Min(logicalPerPackage - 1, 255);
                    break;
            }
            result.Add(e);
        }
        return result.ToArray();
    }

    private static void SetExtendedTopology(ref KvmCpuidEntry2 e, int apicId, int threads, int logical, int smtShift, int packageShift)
    {
        e.Edx = (uint)apicId;
        switch (e.Index)
        {
            case 0: // SMT level
                e.Eax = (uint)smtShift;
                e.Ebx = (uint)threads;
                e.Ecx = (1u << 8) | 0;
                break;
            case 1: // core level, covering the whole package
                e.Eax = (uint)packageShift;
                e.Ebx = (uint)logical;
                e.Ecx = (2u << 8) | 1;
                break;
            default:
                e.Eax = 0;
                e.Ebx = 0;
                e.Ecx = e.Index;
                break;
        }
    }
}
