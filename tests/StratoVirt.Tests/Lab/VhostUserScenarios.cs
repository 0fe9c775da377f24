namespace StratoVirt.Tests.Lab;

/// <summary>
/// vhost-user devices against the real daemons of Debian's qemu-system-common 7.2 in the lab's outer VM: virtio-fs
/// with virtiofsd (its namespace sandbox cannot pivot_root from the initramfs root, so -o sandbox=chroot), and
/// vhost-user-blk with qemu-storage-daemon's export; then virtiofsd killed under a running guest, and the bad
/// input a user can give. Guest RAM is a memfd (-machine mem-share=on) the daemons map.
/// </summary>
public static class VhostUserScenarios
{
    public const string Tag = "labfs";

    private static string Guest(string name, string test, string devices, string host, int memoryMiB = 256, int timeout = 300) =>
        $"scenario {name} {timeout} env STRATOVIRT_LOG_LEVEL=info sh {host} -machine microvm,mem-share=on -kernel \"$KERNEL\" " +
        $"-initrd \"$INITRD\" -append \"console=ttyS0 reboot=k panic=1 lab.action=test lab.test={test}\" " +
        $"-m {memoryMiB} -smp 2 -serial stdio -name {name} -D {devices}";

    private const string FsDevice =
        $"-chardev socket,id=vfs,path=/tmp/vufs.sock,server,nowait -device vhost-user-fs-device,chardev=vfs,tag={Tag},id=fs0";

    /// <summary>Shared by the virtio-fs host scripts: a fresh share with a text and 1 MiB from the host, and
    /// virtiofsd serving it on /tmp/vufs.sock (its pid in $vfsd).</summary>
    private const string StartVirtiofsd = """
        rm -rf /tmp/fsshare /tmp/vufs.sock
        mkdir -p /tmp/fsshare
        echo "written-by-the-host" >/tmp/fsshare/from-host.txt
        dd if=/dev/urandom of=/tmp/fsshare/host.bin bs=64k count=16 2>/dev/null
        /usr/lib/qemu/virtiofsd --socket-path=/tmp/vufs.sock -o source=/tmp/fsshare -o sandbox=chroot >/tmp/virtiofsd.log 2>&1 &
        vfsd=$!
        n=0
        until [ -S /tmp/vufs.sock ] || [ $n -ge 100 ]; do sleep 0.1; n=$((n + 1)); done
        """;

    /// <summary>The host side of vhost-user-fs: the share and virtiofsd, the VM, then what the guest wrote.</summary>
    private const string FsHost = $$"""
        cat >/tmp/lab-vufs-host.sh <<'VUFSHOST'
        {{StartVirtiofsd}}
        echo "HOST-FS-HOST-BIN $(sha256sum /tmp/fsshare/host.bin | cut -d' ' -f1)"
        "$VMM" "$@"
        rc=$?
        echo "HOST-FS-GUEST-TEXT $(cat /tmp/fsshare/from-guest.txt 2>/dev/null)"
        echo "HOST-FS-GUEST-BIN $(sha256sum /tmp/fsshare/from-guest.bin 2>/dev/null | cut -d' ' -f1)"
        kill $vfsd 2>/dev/null
        wait $vfsd
        sed 's/^/HOST-FS-VIRTIOFSD /' /tmp/virtiofsd.log | tail -n 5
        rm -rf /tmp/fsshare /tmp/vufs.sock
        exit $rc
        VUFSHOST
        """;

    /// <summary>The host side of the backend's loss: once the guest has mounted the share, a QMP client waits
    /// for DEVICE_BACKEND_DISCONNECTED while virtiofsd is killed (SIGKILL); then the VMM must still answer QMP and
    /// end cleanly on quit.</summary>
    private const string FsKillHost = $$"""
        cat >/tmp/lab-vufs-kill-host.sh <<'VUFSKILL'
        {{StartVirtiofsd}}
        rm -f /tmp/qmp-vufs.sock /tmp/vufs-kill.out
        "$VMM" "$@" -qmp unix:/tmp/qmp-vufs.sock,server,nowait >/tmp/vufs-kill.out 2>&1 &
        vmm=$!
        n=0
        until grep -q GUEST-FS-HOLDING /tmp/vufs-kill.out || [ $n -ge 1800 ]; do sleep 0.1; n=$((n + 1)); done
        qmp-send /tmp/qmp-vufs.sock '{"execute":"query-status"}' --wait-event DEVICE_BACKEND_DISCONNECTED >/tmp/vufs-event.out 2>&1 &
        waiter=$!
        sleep 2
        kill -9 $vfsd
        wait $vfsd
        wait $waiter
        echo "HOST-FSKILL-WAITER-RC $?"
        grep DEVICE_BACKEND_DISCONNECTED /tmp/vufs-event.out | sed 's/^/HOST-FSKILL-EVENT /'
        [ -d "/proc/$vmm" ] && echo "HOST-FSKILL-VMM running" || echo "HOST-FSKILL-VMM gone"
        qmp-send /tmp/qmp-vufs.sock '{"execute":"query-status"}' | grep '"return"' | sed 's/^/HOST-FSKILL-STATUS /'
        qmp-send /tmp/qmp-vufs.sock '{"execute":"quit"}' >/dev/null
        wait $vmm
        echo "HOST-FSKILL-VMM-RC $?"
        grep -E "GUEST-FS-|vhost-user|needs a reset|device stopped" /tmp/vufs-kill.out
        rm -rf /tmp/fsshare /tmp/vufs.sock /tmp/vufs-kill.out /tmp/vufs-event.out
        VUFSKILL
        """;

    /// <summary>Shared by the vhost-user-blk host scripts: qemu-storage-daemon exporting /tmp/vublk.img (the
    /// caller makes it) writable on /tmp/vublk.sock, its pid in $qsd and its output in /tmp/qsd.log.</summary>
    internal const string StartStorageDaemon = """
        rm -f /tmp/vublk.sock
        qemu-storage-daemon --blockdev driver=file,node-name=disk0,filename=/tmp/vublk.img \
            --export type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path=/tmp/vublk.sock,writable=on \
            >/tmp/qsd.log 2>&1 &
        qsd=$!
        n=0
        until [ -S /tmp/vublk.sock ] || [ $n -ge 100 ]; do sleep 0.1; n=$((n + 1)); done
        """;

    /// <summary>Ends <see cref="StartStorageDaemon"/>'s daemon and prints the end of its output as HOST-VUBLK-QSD
    /// lines.</summary>
    internal const string StopStorageDaemon = """
        kill $qsd 2>/dev/null
        wait $qsd
        sed 's/^/HOST-VUBLK-QSD /' /tmp/qsd.log | tail -n 5
        """;

    /// <summary>The host side of vhost-user-blk: an 80 MiB raw image exported by qemu-storage-daemon, the VM, then
    /// the hash of the image's first 64 MiB.</summary>
    private const string BlkHost = $$"""
        cat >/tmp/lab-vublk-host.sh <<'VUBLKHOST'
        rm -f /tmp/vublk.img
        truncate -s 80M /tmp/vublk.img
        {{StartStorageDaemon}}
        "$VMM" "$@"
        rc=$?
        echo "HOST-VUBLK-IMAGE $(dd if=/tmp/vublk.img bs=1M count=64 2>/dev/null | sha256sum | cut -d' ' -f1)"
        {{StopStorageDaemon}}
        rm -f /tmp/vublk.sock /tmp/vublk.img /tmp/qsd.log
        exit $rc
        VUBLKHOST
        """;

    /// <summary>Bad input with the real daemon at hand: a socket nobody listens on, and a running virtiofsd with
    /// guest RAM that is not shared. Each: exit 1, one line, nothing left in the folder.</summary>
    private const string BadInput = $$"""
        cat >/tmp/lab-vu-bad.sh <<'VUBAD'
        rm -rf /tmp/vubad
        mkdir -p /tmp/vubad
        bad() {  # bad <name> <VMM args...>
            name=$1
            shift
            "$VMM" -machine "$MACHINE" -kernel "$KERNEL" -m 256 "$@" >/tmp/vubad.out 2>/tmp/vubad.err </dev/null
            echo "HOST-VUBAD-$name rc=$? lines=$(wc -l </tmp/vubad.err) left=$(ls /tmp/vubad | tr '\n' ' ')"
            sed "s/^/HOST-VUBAD-$name-MSG /" /tmp/vubad.err
        }
        MACHINE=microvm,mem-share=on bad NOLISTEN -chardev socket,id=c,path=/tmp/vubad/none.sock,server,nowait \
            -device vhost-user-fs-device,chardev=c,tag=t,id=fs0
        {{StartVirtiofsd}}
        MACHINE=microvm bad UNSHARED -chardev socket,id=c,path=/tmp/vufs.sock,server,nowait \
            -device vhost-user-fs-device,chardev=c,tag=t,id=fs0
        [ -d "/proc/$vfsd" ] && echo "HOST-VUBAD-VIRTIOFSD still-waiting" || echo "HOST-VUBAD-VIRTIOFSD gone"
        kill $vfsd 2>/dev/null
        wait $vfsd
        rm -rf /tmp/vubad /tmp/vubad.out /tmp/vubad.err /tmp/fsshare /tmp/vufs.sock
        VUBAD
        """;

    public static readonly string[] Lines =
    [
        FsHost,
        Guest("vhost-user-fs", "virtiofs", FsDevice, "/tmp/lab-vufs-host.sh"),
        FsKillHost,
        Guest("vhost-user-fs-kill", "virtiofs-hold", FsDevice, "/tmp/lab-vufs-kill-host.sh"),
        BlkHost,
        Guest("vhost-user-blk", "vublk", "-chardev socket,id=vub,path=/tmp/vublk.sock,server,nowait " +
            "-device vhost-user-blk-device,chardev=vub,id=vub0", "/tmp/lab-vublk-host.sh", memoryMiB: 512),
        BadInput,
        "scenario vhost-user-bad-input 120 sh /tmp/lab-vu-bad.sh",
    ];
}
