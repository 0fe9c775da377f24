namespace StratoVirt.Tests.Lab;

/// <summary>The host kernel's vhost-vsock and vhost-net serving our devices' queues (the lab's outer kernel loads
/// vhost, vhost_vsock and vhost_net), and vhost fds that are not vhost devices.</summary>
public static class VhostScenarios
{
    /// <summary>
    /// The host side of the vhost-vsock scenarios: <c>lab-vhost-vsock-host.sh open|fd &lt;cid&gt; &lt;vmm args&gt;</c>.
    /// With fd it opens /dev/vhost-vsock as fd 5 for the VMM to inherit (as Kata does) and closes its own copy once
    /// the VMM runs. An AF_VSOCK echo server on port 6000 for the guest; 1 MiB to the guest's port 5000 and, after
    /// the guest rebinds its driver, 64 KiB to port 5001, each retried until the guest listens and checksummed back.
    /// </summary>
    private const string VsockHost = """
        cat >/tmp/lab-vhost-vsock-host.sh <<'VHVSOCKHOST'
        mode=$1 cid=$2
        shift 2
        rm -f /tmp/hv.back /tmp/hv2.back
        vsock-echo listen 6000 1 &
        peer=$!
        [ "$mode" = fd ] && exec 5<>/dev/vhost-vsock
        "$VMM" "$@" &
        vmm=$!
        exec 5<&-
        # This script's lines go to a file until the VM is gone: the VM's console shares the output.
        exec 3>&1 >/tmp/vhost-vsock-host.out
        dd if=/dev/urandom of=/tmp/hv bs=64k count=16 2>/dev/null
        head -c 65536 /tmp/hv >/tmp/hv2
        send() {  # send <port> <file> <echo file>; gives up at once when the VMM has ended (a guest that faulted)
            n=0
            until vsock-echo connect "$cid" "$1" <"$2" >"$3" 2>/dev/null && [ -s "$3" ] || [ $n -ge 180 ] \
                || ! kill -0 $vmm 2>/dev/null; do
                sleep 1
                n=$((n + 1))
            done
        }
        send 5000 /tmp/hv /tmp/hv.back
        send 5001 /tmp/hv2 /tmp/hv2.back
        wait $vmm
        rc=$?
        kill $peer 2>/dev/null
        exec >&3 3>&-
        echo "HOST-VSOCK-SENT $(sha256sum </tmp/hv | cut -d' ' -f1)"
        echo "HOST-VSOCK-ECHOED $(sha256sum </tmp/hv.back | cut -d' ' -f1)"
        echo "HOST-VSOCK-SENT-AFTER-REBIND $(sha256sum </tmp/hv2 | cut -d' ' -f1)"
        echo "HOST-VSOCK-ECHOED-AFTER-REBIND $(sha256sum </tmp/hv2.back | cut -d' ' -f1)"
        rm -f /tmp/hv /tmp/hv2 /tmp/hv.back /tmp/hv2.back /tmp/vhost-vsock-host.out
        exit $rc
        VHVSOCKHOST
        """;

    /// <summary>
    /// Bad vhost fds: /dev/null as vsock's vhostfd, a pipe as vhost-net's (with a tap). Each must end with one line
    /// and exit 1, leaving no tap and no file behind.
    /// </summary>
    private const string BadFdHost = """
        cat >/tmp/lab-vhost-bad-host.sh <<'VHBADHOST'
        ip link set lo up
        try() {  # try <label> <vmm args>: the VMM's exit status, its stderr lines, whether tap vbad0 is left
            label=$1
            shift
            before=$(ls /tmp | sort | tr '\n' ' ')
            "$VMM" -machine microvm -kernel "$KERNEL" -m 128 "$@" 2>/tmp/vhost-bad.err >/dev/null
            echo "HOST-BAD-$label-RC $?"
            echo "HOST-BAD-$label-LINES $(wc -l </tmp/vhost-bad.err)"
            sed "s/^/HOST-BAD-$label-ERR /" /tmp/vhost-bad.err
            ip link show vbad0 >/dev/null 2>&1 && echo "HOST-BAD-$label-TAP left" || echo "HOST-BAD-$label-TAP gone"
            rm -f /tmp/vhost-bad.err
            [ "$(ls /tmp | sort | tr '\n' ' ')" = "$before" ] && echo "HOST-BAD-$label-FILES none" \
                || echo "HOST-BAD-$label-FILES $(ls /tmp | tr '\n' ' ')"
        }
        exec 5</dev/null
        try VSOCK -device vhost-vsock-device,id=vsock0,guest-cid=3,vhostfd=5
        exec 5<&-
        mkfifo /tmp/vhost-bad.fifo
        exec 6<>/tmp/vhost-bad.fifo
        rm -f /tmp/vhost-bad.fifo
        try NET -netdev tap,id=n0,ifname=vbad0,vhost=on,vhostfd=6 -device virtio-net-device,netdev=n0,id=eth0
        exec 6<&-
        VHBADHOST
        """;

    public static readonly string[] Lines =
    [
        VsockHost,
        VirtioScenarios.Guest("vhost-vsock", "vhost-vsock", "-device vhost-vsock-device,id=vsock0,guest-cid=3",
            vmm: "sh /tmp/lab-vhost-vsock-host.sh open 3", timeout: 300),
        VirtioScenarios.Guest("vhost-vsock-fd", "vhost-vsock", "-device vhost-vsock-device,id=vsock-id,guest-cid=5,vhostfd=5",
            vmm: "sh /tmp/lab-vhost-vsock-host.sh fd 5", timeout: 300),
        // The host side of virtio-net's scenario (VirtioScenarios writes /tmp/lab-net-host.sh first).
        VirtioScenarios.Guest("vhost-net", "net",
            "-netdev tap,id=net0,ifname=tap0,vhost=on -device virtio-net-device,netdev=net0,id=eth0,mac=52:54:00:12:34:57",
            vmm: "unshare -n sh /tmp/lab-net-host.sh"),
        BadFdHost,
        "scenario vhost-bad-fd 60 unshare -n sh /tmp/lab-vhost-bad-host.sh",
    ];
}
