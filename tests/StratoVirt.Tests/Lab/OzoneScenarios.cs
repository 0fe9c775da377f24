namespace StratoVirt.Tests.Lab;

/// <summary>
/// A Debian guest booted through ozone in the outer VM, which mounts cgroup v2 for it: the kernel, initramfs and an
/// ext4 root image are passed with -source, the VMM runs as uid:gid 1000 in a memory and cpuset cgroup, under
/// seccomp, with no /proc. While it runs, the host side reads the cgroup's limits and the VMM's credentials, root
/// and capabilities; afterwards it checks that -clean-resource left nothing and that the guest's write reached
/// the image.
/// </summary>
public static class OzoneScenarios
{
    public const string Name = "ozone-linux";

    /// <summary>The host script /tmp/lab-ozone-host.sh: mounts cgroup v2, runs <paramref name="setup"/> (which puts
    /// the files to pass in /tmp/oz), watches the sandboxed VMM (its cgroup's limits, credentials, capabilities,
    /// seccomp mode, pid namespace and root) while ozone runs it with -source <paramref name="sources"/> and the
    /// scenario's arguments, then checks that -clean-resource left nothing and runs <paramref name="after"/>.</summary>
    internal static string HostScript(string setup, string sources, string after) => $$"""
        cat >/tmp/lab-ozone-host.sh <<'OZHOST'
        mkdir -p /sys/fs/cgroup
        grep -q ' /sys/fs/cgroup cgroup2 ' /proc/mounts || mount -t cgroup2 none /sys/fs/cgroup
        echo "HOST-OZONE-CGROUP-FS $(awk '$2 == "/sys/fs/cgroup" { print $3 }' /proc/mounts)"
        rm -rf /tmp/oz && mkdir -p /tmp/oz
        {{setup}}
        cg=/sys/fs/cgroup/stratovirt/ozlab
        (
            n=0
            # cgroup files have no size: read them.
            until [ -n "$(cat $cg/cgroup.procs 2>/dev/null)" ] || [ $n -ge 600 ]; do sleep 0.1; n=$((n + 1)); done
            pid=$(head -n 1 $cg/cgroup.procs)
            # The main thread confines itself last, once the machine is built: wait for that (30 s at most).
            n=0
            until [ "$(awk '/^Seccomp:/ { print $2 }' /proc/$pid/status)" = 2 ] || [ $n -ge 300 ]; do sleep 0.1; n=$((n + 1)); done
            echo "HOST-OZONE-MEMORY-MAX $(cat $cg/memory.max)"
            echo "HOST-OZONE-CPUSET $(cat $cg/cpuset.cpus)"
            echo "HOST-OZONE-VMM-COMM $(cat /proc/$pid/comm)"
            echo "HOST-OZONE-VMM-UID $(awk '/^Uid:/ { print $2 }' /proc/$pid/status)"
            echo "HOST-OZONE-VMM-GID $(awk '/^Gid:/ { print $2 }' /proc/$pid/status)"
            echo "HOST-OZONE-VMM-CAPEFF $(awk '/^CapEff:/ { print $2 }' /proc/$pid/status)"
            echo "HOST-OZONE-VMM-CAPBND $(awk '/^CapBnd:/ { print $2 }' /proc/$pid/status)"
            echo "HOST-OZONE-VMM-SECCOMP $(awk '/^Seccomp:/ { print $2 }' /proc/$pid/status)"
            echo "HOST-OZONE-VMM-NSPID $(awk '/^NSpid:/ { print $3 }' /proc/$pid/status)"
            echo "HOST-OZONE-VMM-ROOT $(ls /proc/$pid/root/ | tr '\n' ' ')"
        ) >/tmp/oz-watch.out 2>&1 &
        watcher=$!
        /lab/ozone -name ozlab -exec-file "$VMM" -uid 1000 -gid 1000 -source {{sources}} \
            -cgroup memory.limit_in_bytes=512M cpuset.cpus=0-1 -clean-resource -- "$@"
        rc=$?
        wait $watcher
        # Printed once the VM is gone: while it runs, its console shares this output and can split the lines.
        cat /tmp/oz-watch.out
        [ -e /srv/ozone/stratovirt/ozlab ] && echo "HOST-OZONE-CHROOT left" || echo "HOST-OZONE-CHROOT removed"
        [ -e $cg ] && echo "HOST-OZONE-CGROUP-DIR left" || echo "HOST-OZONE-CGROUP-DIR removed"
        {{after}}
        rm -rf /tmp/oz
        exit $rc
        OZHOST
        """;

    private static readonly string Host = HostScript("""
        cp /lab/rootfs.ext4 /tmp/oz/oz-root.img
        cp "$KERNEL" /tmp/oz/oz-kernel
        cp "$INITRD" /tmp/oz/oz-initrd
        before=$(sha256sum /tmp/oz/oz-root.img | cut -d' ' -f1)
        """, "/tmp/oz/oz-root.img /tmp/oz/oz-kernel /tmp/oz/oz-initrd", """
        [ "$(sha256sum /tmp/oz/oz-root.img | cut -d' ' -f1)" != "$before" ] && echo "HOST-OZONE-IMAGE written" ||
            echo "HOST-OZONE-IMAGE unchanged"
        """);

    public static readonly string[] Lines =
    [
        Host,
        $"scenario {Name} 300 env STRATOVIRT_LOG_LEVEL=info sh /tmp/lab-ozone-host.sh -machine microvm " +
        "-kernel /oz-kernel -initrd /oz-initrd " +
        "-append \"console=ttyS0 reboot=k panic=1 lab.action=test lab.test=ozone root=/dev/vda\" " +
        "-m 256 -smp 1 -serial stdio -name ozlab -D " +
        "-drive id=root,file=/oz-root.img -device virtio-blk-device,drive=root,id=vda",
    ];
}
