namespace StratoVirt.Tests.Lab;

/// <summary>
/// The VMM started with the command line Kata Containers' runtime builds (virtcontainers/stratovirt.go,
/// createParams, debug mode, initrd guest) and driven by Kata's own QMP client library (tests/kata/kata-qmp, on
/// govmm): QMP greeting and capabilities, query-cpus, block hotplug and unplug into mmio slot 0, and the stop by
/// SIGKILL. The guest runs scripts/lab/guest/tests/kata.sh on its only console, hvc0. With Kata's default shared
/// filesystem, virtio-fs: Kata starts virtiofsd on the sandbox's shared directory first, then passes mem-share=on and
/// a vhost-user-fs-device on a chardev it writes as server,nowait (the VMM connects to virtiofsd all the same); the
/// guest mounts the tag, reads the host's file and writes one the host reads afterwards.
/// </summary>
public static class KataScenarios
{
    public const string SandboxId = "5a7b0c1d2e3f";
    public const string Uuid = "0f3c9a52-7d1e-4b6a-9c85-2e4f61a0b7d3";
    public const string DiskHead = "KATA-HOTPLUG-DISK";
    public const string FsTag = "kataShared";

    /// <summary>Kata's kernel parameters for a microVM in debug mode: the user's (here the lab's test selection),
    /// then reboot=k panic=1 net.ifnames=0 ramdom.trust_cpu=on (Kata's spelling), pci=off iommu=off, debug
    /// console=hvc0. Kata also passes acpi=off, which is left out: the lab's Debian kernel has no
    /// VIRTIO_MMIO_CMDLINE_DEVICES and finds virtio-mmio devices only through the ACPI DSDT, so acpi=off would
    /// hide every device (Kata's own guest kernel is built with that option).</summary>
    public const string KernelParams =
        "lab.action=test lab.test=kata reboot=k panic=1 net.ifnames=0 ramdom.trust_cpu=on pci=off iommu=off debug console=hvc0";

    /// <summary>The host side: Kata's sandbox directory, a raw disk to hotplug, the VMM in the background with
    /// Kata's argv (STRATOVIRT_LOG_LEVEL=info as Kata sets it in debug mode; -D logs to stderr), the client, and
    /// afterwards what the SIGKILL left behind before Kata's cleanupVM removes the directory.</summary>
    private const string KataHost = $$"""
        cat >/tmp/lab-kata-host.sh <<'KATAHOST'
        vm=/run/vc/vm/{{SandboxId}}
        rm -rf "$vm"
        mkdir -p "$vm"
        shared=/run/kata-containers/shared/sandboxes/{{SandboxId}}/shared
        rm -rf "$shared"
        mkdir -p "$shared"
        echo "from-the-kata-host" >"$shared/host.txt"
        /usr/lib/qemu/virtiofsd --socket-path="$vm/vhost-fs.sock" -o source="$shared" -o sandbox=chroot >/tmp/kata-virtiofsd.log 2>&1 &
        n=0
        until [ -S "$vm/vhost-fs.sock" ] || [ $n -ge 100 ]; do sleep 0.1; n=$((n + 1)); done
        printf '{{DiskHead}}' >/tmp/kata-disk.img
        truncate -s 4M /tmp/kata-disk.img
        before=$(sha256sum /tmp/kata-disk.img | cut -d' ' -f1)
        STRATOVIRT_LOG_LEVEL=info "$VMM" -name sandbox-{{SandboxId}} -uuid {{Uuid}} -smp 1 -m 256 \
            -kernel "$KERNEL" -append "{{KernelParams}}" \
            -qmp "unix:$vm/qmp.socket,server,nowait" -D -disable-seccomp -machine type=microvm,dump-guest-core=off,mem-share=on \
            -initrd "$INITRD" \
            -object rng-random,id=objrng0,filename=/dev/urandom -device virtio-rng-device,rng=objrng0,id=virtio-rng0 \
            -device virtio-serial-device,id=virtio-serial0 \
            -chardev "socket,id=charconsole0,path=$vm/console.socket,server,nowait" \
            -device virtconsole,chardev=charconsole0,id=virtio-console0,nr=0 \
            -chardev "socket,id=virtio_fs,path=$vm/vhost-fs.sock,server,nowait" \
            -device vhost-user-fs-device,chardev=virtio_fs,tag={{FsTag}},id=virtio-fs0 2>/tmp/kata-vmm.err &
        vmm=$!
        kata-qmp -qmp "$vm/qmp.socket" -pid $vmm -console "$vm/console.socket" -image /tmp/kata-disk.img \
            -drive-id drive-kata0 -vdev vda -ready-marker GUEST-KATA-CMDLINE -plugged-marker GUEST-KATA-VDA-HEAD -unplugged-marker GUEST-KATA-VDA-GONE
        client=$?
        echo "HOST-KATA-CLIENT-RC $client"
        wait $vmm
        echo "HOST-KATA-VMM-RC $?"
        [ -d "/proc/$vmm" ] && echo "HOST-KATA-VMM-PROCESS left" || echo "HOST-KATA-VMM-PROCESS gone"
        echo "HOST-KATA-LEFT $(ls "$vm" | tr '\n' ' ')"
        [ "$(sha256sum /tmp/kata-disk.img | cut -d' ' -f1)" = "$before" ] && echo "HOST-KATA-DISK unchanged" \
            || echo "HOST-KATA-DISK changed"
        echo "HOST-KATA-FS-FROM-GUEST $(cat "$shared/guest.txt" 2>/dev/null)"
        sed 's/^/HOST-KATA-VMM-LOG /' /tmp/kata-vmm.err
        rm -rf "$vm" "$shared" /tmp/kata-disk.img /tmp/kata-vmm.err /tmp/kata-virtiofsd.log
        exit $client
        KATAHOST
        """;

    public static readonly string[] Lines = [KataHost, "scenario kata 360 sh /tmp/lab-kata-host.sh"];
}
