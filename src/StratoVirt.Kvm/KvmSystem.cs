using StratoVirt.Sys;

namespace StratoVirt.Kvm;

/// <summary>The /dev/kvm handle: API checks, capabilities and VM creation.</summary>
public sealed unsafe class KvmSystem : IDisposable
{
    public const int ExpectedApiVersion = 12;
    private readonly FileDescriptor _fd;

    private KvmSystem(FileDescriptor fd) => _fd = fd;

    /// <summary>Opens the KVM device, turning the usual failures into one clear sentence.</summary>
    public static KvmSystem Open(string path = "/dev/kvm")
    {
        int fd = Libc.Open(path, Libc.O_RDWR | Libc.O_CLOEXEC, 0);
        if (fd < 0)
        {
            int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            string why = errno switch
            {
                Libc.ENOENT => $"{path} does not exist (is the kvm module loaded?)",
                Libc.EACCES or Libc.EPERM => $"no permission to open {path} (add the user to the kvm group or run as root)",
                _ => $"cannot open {path}: {Libc.ErrorText(errno)} (errno {errno})",
            };
            throw new KvmUnavailableException(why);
        }
        var system = new KvmSystem(new FileDescriptor(fd));
        int version = Libc.Ioctl(fd, KvmIoctls.GetApiVersion, 0UL);
        if (version != ExpectedApiVersion)
        {
            system.Dispose();
            throw new KvmUnavailableException($"{path} reports KVM API version {version}, expected {ExpectedApiVersion}");
        }
        return system;
    }

    internal int Fd => _fd.Fd;

    /// <summary>KVM_CHECK_EXTENSION; 0 means absent.</summary>
    public int CheckExtension(KvmCap cap)
    {
        int r = Libc.Ioctl(_fd.Fd, KvmIoctls.CheckExtension, (ulong)cap);
        return r < 0 ? 0 : r;
    }

    public int VcpuMmapSize => SysException.Check(Libc.Ioctl(_fd.Fd, KvmIoctls.GetVcpuMmapSize, 0UL), "KVM_GET_VCPU_MMAP_SIZE");

    /// <summary>The CPUID leaves this host's KVM can expose to a guest.</summary>
    public KvmCpuidEntry2[] GetSupportedCpuid()
    {
        for (int capacity = 128; capacity <= 4096; capacity *= 2)
        {
            int bytes = 8 + capacity * sizeof(KvmCpuidEntry2);
            var managed = new byte[bytes];
            // The array is pinned for the ioctl; its header says it holds `capacity` entries, which bounds both
            // what KVM writes and what is read back (n <= capacity).
            fixed (byte* p = managed)
            {
                *(uint*)p = (uint)capacity;
                int r = Libc.Ioctl(_fd.Fd, KvmIoctls.GetSupportedCpuid, p);
                if (r < 0)
                {
                    var ex = SysException.Last("KVM_GET_SUPPORTED_CPUID");
                    if (ex.Errno == 7 /* E2BIG */) continue;
                    throw ex;
                }
                int n = (int)*(uint*)p;
                var entries = new KvmCpuidEntry2[n];
                for (int i = 0; i < n; i++)
                    entries[i] = ((KvmCpuidEntry2*)(p + 8))[i];
                return entries;
            }
        }
        throw new SysException("KVM_GET_SUPPORTED_CPUID", 7);
    }

    /// <summary>KVM_GET_MSR_INDEX_LIST: the MSRs this host's KVM can save and restore.</summary>
    public uint[] GetMsrIndexList()
    {
        for (int capacity = 256; capacity <= 16384; capacity *= 2)
        {
            var buffer = new uint[1 + capacity];
            // The array is pinned for the ioctl; its first word says how many indices it holds after it.
            fixed (uint* p = buffer)
            {
                *p = (uint)capacity;
                if (Libc.Ioctl(_fd.Fd, KvmIoctls.GetMsrIndexList, p) < 0)
                {
                    var ex = SysException.Last("KVM_GET_MSR_INDEX_LIST");
                    if (ex.Errno == 7 /* E2BIG */) continue;
                    throw ex;
                }
                return buffer.AsSpan(1, (int)Math.Min(*p, (uint)capacity)).ToArray();
            }
        }
        throw new SysException("KVM_GET_MSR_INDEX_LIST", 7);
    }

    public KvmVm CreateVm()
    {
        int fd = SysException.Check(Libc.Ioctl(_fd.Fd, KvmIoctls.CreateVm, 0UL), "KVM_CREATE_VM");
        return new KvmVm(this, new FileDescriptor(fd));
    }

    public void Dispose() => _fd.Dispose();
}

/// <summary>KVM cannot be used at all on this host; the message says why.</summary>
public sealed class KvmUnavailableException(string message) : VmmException(message);
