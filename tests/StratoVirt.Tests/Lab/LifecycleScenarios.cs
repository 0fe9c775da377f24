namespace StratoVirt.Tests.Lab;

/// <summary>How a real Linux guest's VM ends, seen by a connected QMP client: system_powerdown from the host, and
/// the guest's own poweroff and reboot (each a microVM ending with its SHUTDOWN event).</summary>
public static class LifecycleScenarios
{
    /// <summary>The host side: starts the VMM, connects a QMP client once the socket is there and prints what it
    /// receives up to SHUTDOWN (as HOST-QMP lines), then the VMM's exit code and whether the socket was removed.
    /// In "powerdown" mode the client waits for the guest's first tick (its init has run) and sends
    /// system_powerdown; otherwise it only waits for the guest to end the VM itself.</summary>
    private const string EndHost = """
        cat >/tmp/lab-qmp-end-host.sh <<'ENDHOST'
        mode=$1
        shift
        rm -f /tmp/qmp-end.sock /tmp/qmp-end.out
        "$VMM" "$@" >/tmp/qmp-end.out 2>&1 &
        vmm=$!
        n=0
        until [ -S /tmp/qmp-end.sock ] || ! kill -0 $vmm 2>/dev/null || [ $n -ge 100 ]; do sleep 0.1; n=$((n + 1)); done
        if [ "$mode" = powerdown ]; then
            n=0
            until grep -q GUEST-TICK /tmp/qmp-end.out || ! kill -0 $vmm 2>/dev/null || [ $n -ge 600 ]; do
                sleep 0.2
                n=$((n + 1))
            done
            qmp-send /tmp/qmp-end.sock '{"execute":"system_powerdown"}' --wait-event SHUTDOWN >/tmp/qmp-end.ev
        else
            qmp-send /tmp/qmp-end.sock '{"execute":"query-status"}' --wait-event SHUTDOWN >/tmp/qmp-end.ev
        fi
        echo "HOST-QMP-CLIENT rc=$?"
        sed 's/^/HOST-QMP /' /tmp/qmp-end.ev
        wait $vmm
        rc=$?
        echo "HOST-VMM-EXIT $rc"
        [ -e /tmp/qmp-end.sock ] && echo "HOST-QMP-SOCKET left" || echo "HOST-QMP-SOCKET removed"
        grep -E "GUEST-(INIT|TICK|ACTION|TEST)|stratovirt:" /tmp/qmp-end.out
        [ "$rc" = 0 ] || tail -n 30 /tmp/qmp-end.out
        exit $rc
        ENDHOST
        """;

    private static string Boot(string name, string mode, string action) =>
        $"scenario {name} 240 env STRATOVIRT_LOG_LEVEL=info sh /tmp/lab-qmp-end-host.sh {mode} -machine microvm " +
        "-kernel \"$KERNEL\" -initrd \"$INITRD\" " +
        $"-append \"console=ttyS0 reboot=k panic=1 {action}\" -m 256 -smp 2 -serial stdio -name {name} -D " +
        "-qmp unix:/tmp/qmp-end.sock,server,nowait";

    public static readonly string[] Lines =
    [
        EndHost,
        Boot("qmp-powerdown", "powerdown", "lab.action=test lab.test=count"),
        Boot("qmp-guest-poweroff", "guest", "lab.action=poweroff"),
        Boot("qmp-guest-reboot", "guest", "lab.action=reboot"),
    ];
}
