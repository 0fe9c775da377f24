using StratoVirt.Memory;

namespace StratoVirt.Boot.Arm64;

/// <summary>Where the aarch64 boot puts things: the vCPU starts at <see cref="KernelAddress"/> with x0 =
/// <see cref="DeviceTree"/>. The initrd range is empty (0, 0) without an initrd.</summary>
public readonly record struct ArmBootPlan(ulong KernelAddress, ulong KernelEnd, ulong InitrdStart, ulong InitrdEnd)
{
    public ulong DeviceTree => ArmLayout.DeviceTree;

    public bool HasInitrd => InitrdEnd > InitrdStart;
}

/// <summary>
/// Direct arm64 Linux boot (booting.rst): the device tree at the start of RAM, the Image from 2 MiB on (plus its
/// text_offset), the initrd at the end of RAM, page-aligned.
/// </summary>
public static class ArmBootLoader
{
    private const ulong PageMask = 0xFFF;

    /// <summary>Places a kernel and an initrd of <paramref name="initrdSize"/> bytes (0: none) in RAM of
    /// <paramref name="ramSize"/> bytes from <see cref="ArmLayout.RamBase"/>.</summary>
    public static ArmBootPlan Plan(ArmKernelImage kernel, ulong ramSize, ulong initrdSize, string? initrdPath = null)
    {
        ulong ramEnd = ArmLayout.RamBase + ramSize;
        ulong kernelEnd = kernel.LoadAddress + kernel.ImageSize;
        if (kernel.ImageSize > ramSize || kernelEnd > ramEnd)
            throw new BootException(
                $"kernel {kernel.Path} needs guest memory up to 0x{kernelEnd:x} ({(kernelEnd - ArmLayout.RamBase) >> 20} MiB of RAM) but -m gives {ramSize >> 20} MiB");
        if (initrdSize == 0) return new ArmBootPlan(kernel.LoadAddress, kernelEnd, 0, 0);
        ulong floor = (kernelEnd + PageMask) & ~PageMask;
        if (initrdSize > ramEnd - floor || initrdSize > int.MaxValue)
            throw new BootException(
                $"initrd {initrdPath} ({initrdSize >> 20} MiB) does not fit in guest memory: {(ramEnd - floor) >> 20} MiB free after the kernel; raise -m");
        ulong start = (ramEnd - initrdSize) & ~PageMask;
        return new ArmBootPlan(kernel.LoadAddress, kernelEnd, start, start + initrdSize);
    }

    /// <summary>Copies the kernel and initrd into <paramref name="memory"/>, then the device tree that
    /// <paramref name="deviceTree"/> makes for the plan (it needs the initrd range).</summary>
    public static ArmBootPlan Load(GuestMemory memory, ArmKernelImage kernel, string? initrdPath,
        Func<ArmBootPlan, byte[]> deviceTree)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(deviceTree);
        if (memory.Regions.Count == 0 || memory.Regions[0].GuestAddress != ArmLayout.RamBase)
            throw new ArgumentException("aarch64 guest RAM must start at 0x40000000", nameof(memory));
        ulong ramSize = memory.Regions[0].Size;
        using var initrd = initrdPath is null ? null : KernelImage.OpenHostFile(initrdPath, "initrd");
        if (initrd is { Length: 0 }) throw new BootException($"initrd {initrdPath} is empty");
        var plan = Plan(kernel, ramSize, (ulong)(initrd?.Length ?? 0), initrdPath);

        using (var file = KernelImage.OpenHostFile(kernel.Path, "kernel"))
        {
            if (file.Length != kernel.FileLength) throw new BootException($"kernel {kernel.Path} changed while it was being loaded");
            BootLoader.ReadExactly(file, memory.GetSpan(plan.KernelAddress, (ulong)kernel.FileLength), 0, kernel.Path);
        }
        if (initrd is not null)
            BootLoader.ReadExactly(initrd, memory.GetSpan(plan.InitrdStart, plan.InitrdEnd - plan.InitrdStart), 0, initrdPath!);

        byte[] blob = deviceTree(plan);
        if ((ulong)blob.Length > ArmLayout.DeviceTreeMaxSize)
            throw new BootException($"the device tree is {blob.Length} bytes; the boot protocol allows at most 2 MiB");
        memory.Write(plan.DeviceTree, blob);
        return plan;
    }
}
