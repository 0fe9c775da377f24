namespace StratoVirt.Tests.Native;

/// <summary>
/// One run of stratovirt that needs a working /dev/kvm. Arguments may name payloads as "{payload:hello.bin}";
/// they resolve to the host's build of the payloads, or to /lab/ inside the nested lab. <see cref="SeccompProbe"/>
/// names the kind of thread that makes a system call no seccomp list allows (STRATOVIRT_SECCOMP_PROBE).
/// </summary>
public sealed record VmmCase(string Name, string[] Args, int TimeoutSeconds = 30, bool WithInfoLog = false,
    Func<string, string>? Wrap = null, string? SeccompProbe = null);

/// <summary>Every KVM-backed payload run the tests assert on; the lab runs them all in one boot.</summary>
public static class KvmCases
{
    private static string[] Boot(string payload, params string[] extra) =>
        ["-machine", "microvm", "-kernel", $"{{payload:{payload}}}", "-serial", "stdio", .. extra];

    /// <summary>The counter payload with its serial port in a file and a QMP socket, both in the working directory
    /// that <see cref="WithQmp"/> makes.</summary>
    private static string[] CounterWithQmp(params string[] extra) =>
        ["-machine", "microvm", "-kernel", "{payload:counter.bin}", "-serial", "file,path=serial.out",
            "-qmp", "unix:qmp.sock,server,nowait", .. extra];

    /// <summary>
    /// Wraps the VMM command in a shell script for the QMP lifecycle cases: a fresh working directory, $q for the
    /// QMP client (scripts/lab/qmp-send.c; $QMP_SEND or qmp-send on PATH), waitfor '&lt;test&gt;' (polls up to 30 s),
    /// and at the end the VMM's exit code as the case's, after a line saying whether the QMP socket was removed.
    /// The body starts the VMM itself (<c>{vmm}</c> stands for its command).
    /// </summary>
    private static Func<string, string> WithQmp(string body) => vmm =>
        "d=$(mktemp -d) && cd \"$d\" || exit 2\n" +
        "q=${QMP_SEND:-qmp-send}\n" +
        "waitfor() { n=0; until eval \"$1\" || [ $n -ge 300 ]; do sleep 0.1; n=$((n + 1)); done; }\n" +
        body.Replace("{vmm}", vmm) + "\n" +
        "[ -e qmp.sock ] && echo 'QMP-SOCKET left' || echo 'QMP-SOCKET removed'\n" +
        "cd / && rm -rf \"$d\"\n" +
        "exit $rc\n";

    /// <summary>Starts the VMM in the background and waits for its socket and first output.</summary>
    private const string StartVmm = "{vmm} &\npid=$!\nwaitfor '[ -S qmp.sock ] && [ -s serial.out ]'\n";

    /// <summary>Ends the VM with one QMP command and prints every line up to the SHUTDOWN event.</summary>
    private static string EndWith(string command) =>
        StartVmm + $"$q qmp.sock '{{\"execute\":\"{command}\"}}' --wait-event SHUTDOWN\nwait $pid; rc=$?";

    /// <summary>Seeds and steps per seed of the hostile guest: 24 VMM runs that take about two minutes in the lab.</summary>
    public const int HostileSeeds = 24, HostileIterations = 2000;

    /// <summary>
    /// The hostile payload (tests/payloads/hostile/) against every device type at once: two drives (one on an
    /// iothread, one read-only), a tap, a console on a file, rng, a balloon with free page reporting, vsock, and a
    /// QMP socket so that the hotplug slots exist too (all 10 windows hold a device). The VMM runs under seccomp.
    /// </summary>
    private static readonly string[] HostileArgs = Boot("hostile.bin", "-m", "512", "-qmp", "unix:qmp.sock,server,nowait",
        "-object", "iothread,id=io0",
        "-drive", "id=disk0,file=disk.img,direct=off", "-device", "virtio-blk-device,drive=disk0,id=blk0,serial=HOSTILE,iothread=io0",
        "-drive", "id=disk1,file=ro.img,readonly=on", "-device", "virtio-blk-device,drive=disk1,id=blk1",
        "-netdev", "tap,id=net0,ifname=hostile0", "-device", "virtio-net-device,netdev=net0,id=net1,mac=52:54:00:12:34:56",
        "-chardev", "file,id=con0,path=hvc.out", "-device", "virtio-serial-device", "-device", "virtconsole,chardev=con0,id=con1",
        "-object", "rng-random,id=rng0,filename=/dev/urandom", "-device", "virtio-rng-device,rng=rng0,id=rng1",
        "-device", "virtio-balloon-device,id=balloon0,deflate-on-oom=on,free-page-reporting=on",
        "-device", "vhost-vsock-device,id=vsock0,guest-cid=3,uds-path=v.sock");

    /// <summary>
    /// Runs the hostile guest once per seed with fresh images in a temporary directory, each run in a network
    /// namespace of its own (the VMM creates the tap there; pings to an address on it make ARP requests arrive), with
    /// a vsock listener on host port 6000 when vsock-echo is on PATH (the lab has it); a run is killed after 60 s.
    /// Per seed it prints "HOSTILE-RUN seed=&lt;n&gt; rc=&lt;exit&gt; ms=&lt;wall&gt; dots=&lt;progress dots, one per 256
    /// steps&gt;" and the guest's HOSTILE- lines on stdout, and the VMM's stderr prefixed "seed=&lt;n&gt;: " on stderr.
    /// </summary>
    private static string HostileRuns(string vmm) => $$"""
        d=$(mktemp -d) && cd "$d" || exit 2
        cat >seed.sh <<'SEED'
        ip link set lo up
        (
            n=0
            until ip link show hostile0 >/dev/null 2>&1 || [ $n -ge 100 ]; do sleep 0.1; n=$((n + 1)); done
            ip addr add 10.0.9.1/24 dev hostile0 && ip link set hostile0 up
            exec ping -q -w 120 10.0.9.2
        ) >/dev/null 2>&1 &
        traffic=$!
        listener=
        if command -v vsock-echo >/dev/null; then vsock-echo uds-listen v.sock_6000 >/dev/null 2>&1 & listener=$!; fi
        timeout 60 {{vmm}} -append "seed=$1 iterations=$2" >serial.out 2>vmm.err
        rc=$?
        kill $traffic $listener 2>/dev/null
        wait
        exit $rc
        SEED
        if [ "$(id -u)" = 0 ]; then netns='unshare -n'; else netns='unshare -rn'; fi
        failed=0
        for seed in $(seq 1 {{HostileSeeds}}); do
            rm -f disk.img ro.img hvc.out serial.out vmm.err v.sock*
            truncate -s 1M disk.img
            printf 'HOSTILE-RO-DISK' >ro.img && truncate -s 64K ro.img
            read -r t0 _ </proc/uptime
            $netns sh seed.sh $seed {{HostileIterations}}
            rc=$?
            # The nested lab now and then triple-faults a guest on its own (see LinuxScenarios.Preamble): such a
            # run is reported and the seed runs once more.
            if [ $rc -eq 1 ] && grep -q 'guest triple fault' vmm.err; then
                echo "HOSTILE-RETRY seed=$seed after a triple fault"
                sed "s/^/retry seed=$seed: /" vmm.err >&2
                rm -f disk.img ro.img hvc.out serial.out vmm.err v.sock*
                truncate -s 1M disk.img
                printf 'HOSTILE-RO-DISK' >ro.img && truncate -s 64K ro.img
                read -r t0 _ </proc/uptime
                $netns sh seed.sh $seed {{HostileIterations}}
                rc=$?
            fi
            read -r t1 _ </proc/uptime
            [ $rc -eq 0 ] || failed=$((failed + 1))
            ms=$(awk -v a=$t0 -v b=$t1 'BEGIN { printf "%d", (b - a) * 1000 }')
            echo "HOSTILE-RUN seed=$seed rc=$rc ms=$ms dots=$(($(tr -cd . <serial.out | wc -c)))"
            tr -d '\r' <serial.out | grep '^HOSTILE-'
            sed "s/^/seed=$seed: /" vmm.err >&2
        done
        cd / && rm -rf "$d"
        [ $failed -eq 0 ]
        """;

    /// <summary>Frames and valid command cycles of the hostile QMP client (tests/qmp/qmp-fuzz.c).</summary>
    public const int QmpFuzzFrames = 3000, QmpFuzzCycles = 40;

    /// <summary>
    /// The hostile QMP client against an idle payload VM under seccomp, in a network namespace of its own (its
    /// netdev_add makes taps): generated frames first, a liveness check every 64, then every command with valid
    /// arguments (hotplug included) <see cref="QmpFuzzCycles"/> times, then quit. Prints "FUZZ-EXIT n".
    /// </summary>
    private static string QmpFuzzRun(string vmm) => $$"""
        d=$(mktemp -d) && cd "$d" || exit 2
        if [ "$(id -u)" = 0 ]; then netns='unshare -n'; else netns='unshare -rn'; fi
        $netns env {{vmm}} &
        pid=$!
        ${QMP_FUZZ:-qmp-fuzz} qmp.sock 20261204 {{QmpFuzzFrames}} "$d" --cycles {{QmpFuzzCycles}}
        echo "FUZZ-EXIT $?"
        wait $pid; rc=$?
        cd / && rm -rf "$d"
        exit $rc
        """;

    /// <summary>
    /// The idle payload VM as a user runs it (256 MiB, a QMP socket, seccomp on, the GC's own settings rather than
    /// <see cref="KvmRunner.GcStress"/>): 1 s after its boot-timer line, prints "OVERHEAD-KB n", the Rss of every
    /// mapping smaller than 128 MiB (the rule of smaps_summary in bench/lib.sh, repeated here because the case also
    /// runs in the lab's initramfs, where the bench scripts are not), and "ZERO-FILL-KB size rss" for the anonymous
    /// mapping right after the binary's own (its .bss and .hydrated sections), then asks query-status and quits.
    /// </summary>
    private static string IdleFootprint(string vmm) => $$"""
        d=$(mktemp -d) && cd "$d" || exit 2
        waitfor() { n=0; until eval "$1" || [ $n -ge 300 ]; do sleep 0.1; n=$((n + 1)); done; }
        env -u DOTNET_GCgen0size -u DOTNET_GCGen1MaxBudget -u DOTNET_GCHighMemPercent {{vmm}} 2>vmm.err &
        pid=$!
        waitfor 'grep -q "start-up done" vmm.err'
        sleep 1
        echo "OVERHEAD-KB $(awk '/^Size:/ { size = $2 } /^Rss:/ { if (size < 131072) kb += $2 } END { print kb }' /proc/$pid/smaps)"
        awk '/^[0-9a-f]+-[0-9a-f]+ / { split($1, r, "-"); zf = bin && $6 == "" && r[1] == end; bin = $6 ~ /\/stratovirt$/; end = r[2]; next }
             zf && /^Size:/ { size = $2 } zf && /^Rss:/ { print "ZERO-FILL-KB " size " " $2; zf = 0 }' /proc/$pid/smaps
        ${QMP_SEND:-qmp-send} qmp.sock '{"execute":"query-status"}' '{"execute":"quit"}' --wait-event SHUTDOWN
        wait $pid; rc=$?
        cat vmm.err >&2
        cd / && rm -rf "$d"
        exit $rc
        """;

    /// <summary>
    /// The pci-probe payload as a q35's direct-boot kernel (<paramref name="payload"/>: its flat .bin or bzImage)
    /// with a root port at 00:02.0, virtio-blk-pci at 00:03.0, virtio-rng-pci at 00:04.0 and a second
    /// virtio-blk-pci behind the port; -no-reboot turns the payload's closing reset into exit 0.
    /// </summary>
    private static VmmCase PciProbe(string name, string payload) => new(name,
        ["-machine", "q35", "-no-reboot", "-kernel", $"{{payload:{payload}}}", "-serial", "stdio",
            "-device", "pcie-root-port,id=pcie.1,port=0x1,chassis=1,bus=pcie.0,addr=0x2",
            "-drive", "id=d0,file=d0.img", "-device", "virtio-blk-pci,drive=d0,id=blk0,bus=pcie.0,addr=0x3",
            "-object", "rng-random,id=rng0,filename=/dev/urandom", "-device", "virtio-rng-pci,rng=rng0,id=rng1,bus=pcie.0,addr=0x4",
            "-drive", "id=d1,file=d1.img", "-device", "virtio-blk-pci,drive=d1,id=blk1,bus=pcie.1,addr=0x0"],
        Wrap: vmm => $"d=$(mktemp -d) && cd \"$d\" && truncate -s 1M d0.img d1.img && {vmm}; rc=$?; cd / && rm -rf \"$d\"; exit $rc");

    public static readonly VmmCase[] All =
    [
        new("hello-bin", Boot("hello.bin", "-m", "256", "-D"), WithInfoLog: true),
        new("hello-bzimage", Boot("hello.bzImage", "-D"), WithInfoLog: true),
        new("hello-elf", Boot("hello.elf")),
        new("rtc", Boot("rtc.bin")),
        new("smp2", Boot("smp.bin", "-smp", "2")),
        new("smp-1", Boot("hello.bin", "-smp", "1")),
        new("smp-4", Boot("hello.bin", "-smp", "4")),
        new("smp-topology", Boot("hello.bin", "-smp", "cpus=4,maxcpus=8,sockets=2,cores=2,threads=2")),
        new("smp-254", Boot("hello.bin", "-smp", "254", "-m", "512"), TimeoutSeconds: 60),
        new("fault", Boot("fault.bin")),
        new("mmio-probe", Boot("mmio-probe.bin")),
        new("large-memory", Boot("hello.bin", "-m", "4G")),
        // A q35 guest enumerates PCI through 0xCF8/0xCFC and ECAM, sizes a BAR and follows a root port.
        PciProbe("q35-pci-probe-bin", "pci-probe.bin"),
        PciProbe("q35-pci-probe-bzimage", "pci-probe.bzImage"),
        // A system call outside every seccomp list, made by one kind of thread at a time once it is confined
        // (STRATOVIRT_SECCOMP_PROBE): the handler's report must come out on each and stop the VM; without seccomp
        // the same call changes nothing.
        new("seccomp-blocked-main", Boot("idle.bin", "-D"), WithInfoLog: true, SeccompProbe: "main"),
        new("seccomp-blocked-vcpu", Boot("idle.bin", "-D", "-smp", "2"), WithInfoLog: true, SeccompProbe: "vcpu"),
        new("seccomp-blocked-iothread", Boot("idle.bin", "-D", "-object", "iothread,id=io0", "-drive", "id=d0,file=disk.img",
                "-device", "virtio-blk-device,drive=d0,id=blk0,iothread=io0"), WithInfoLog: true, SeccompProbe: "iothread",
            Wrap: vmm => $"d=$(mktemp -d) && cd \"$d\" && truncate -s 1M disk.img && {vmm}; rc=$?; cd / && rm -rf \"$d\"; exit $rc"),
        new("seccomp-disabled", Boot("hello.bin", "-disable-seccomp"), SeccompProbe: "main"),
        new("no-permission", ["-machine", "microvm", "-kernel", "{payload:hello.bin}"], Wrap: KvmRunner.WithoutKvmPermission),
        // The idle payload never stops by itself; SIGTERM must end the VMM cleanly with exit 0.
        new("sigterm", Boot("idle.bin", "-D"), WithInfoLog: true,
            Wrap: vmm => $"{vmm} & pid=$!; sleep 3; kill -TERM $pid; wait $pid"),
        // QMP lifecycle on the counter payload: stop holds the output still, cont resumes it, quit ends the VM.
        new("qmp-stop-cont-quit", CounterWithQmp(), Wrap: WithQmp(StartVmm + """
            $q qmp.sock '{"execute":"stop"}' '{"execute":"query-status"}'
            a=$(wc -c <serial.out); sleep 1; b=$(wc -c <serial.out)
            echo "PAUSED-GROWTH $((b - a))"
            $q qmp.sock '{"execute":"cont"}' '{"execute":"query-status"}'
            waitfor '[ $(wc -c <serial.out) -gt $b ]'
            echo "RESUMED-GROWTH $(($(wc -c <serial.out) - b))"
            $q qmp.sock '{"execute":"quit"}' --wait-event SHUTDOWN
            wait $pid; rc=$?
            """)),
        // Snapshot and restore of a guest counting in a register and in memory: migrate refused while running and
        // failing into a missing directory (the VM stays usable); stop, migrate, SIGKILL; restored twice from the
        // one snapshot (mapped, then read in), each continuing the count; a restore with another -m or from a
        // missing directory refused in one line.
        new("snapshot-restore", ["-machine", "microvm", "-kernel", "{payload:snapcount.bin}", "-serial", "file,path=serial.out",
            "-qmp", "unix:qmp.sock,server,nowait"], TimeoutSeconds: 180, Wrap: WithQmp("""
            {vmm} &
            pid=$!
            waitfor '[ -S qmp.sock ] && grep -q "^count 00000005" serial.out'
            mkdir snap
            echo "RUNNING-MIGRATE $($q qmp.sock '{"execute":"migrate","arguments":{"uri":"file:snap"}}')"
            $q qmp.sock '{"execute":"stop"}'
            echo "MISSING-DIR-MIGRATE $($q qmp.sock '{"execute":"migrate","arguments":{"uri":"file:nowhere"}}' '{"execute":"query-migrate"}' '{"execute":"query-status"}')"
            echo "MIGRATE $($q qmp.sock '{"execute":"migrate","arguments":{"uri":"file:snap"}}' '{"execute":"query-migrate"}' '{"execute":"query-status"}')"
            echo "FILES $(ls snap | tr '\n' ' ') MEMORY-SIZE $(stat -c %s snap/memory) MEMORY-BLOCKS $(stat -c %b snap/memory)"
            kill -KILL $pid; wait $pid
            mv serial.out serial1.out
            {vmm} -incoming file:snap &
            pid=$!
            waitfor '[ -S qmp.sock ] && [ $(grep -c "^count" serial.out) -ge 5 ]'
            echo "RESTORED-STATUS $($q qmp.sock '{"execute":"query-status"}' '{"execute":"quit"}')"
            wait $pid; echo "RESTORED-EXIT $?"
            mv serial.out serial2.out
            {vmm} -incoming file:snap,mapped=false &
            pid=$!
            waitfor '[ -S qmp.sock ] && [ $(grep -c "^count" serial.out) -ge 5 ]'
            $q qmp.sock '{"execute":"quit"}' --wait-event SHUTDOWN >/dev/null
            wait $pid; rc=$?
            mv serial.out serial3.out
            printf 'STREAM-MAPPED-BEGIN\n'; cat serial1.out serial2.out; printf '\nSTREAM-MAPPED-END\n'
            printf 'STREAM-READ-BEGIN\n'; cat serial1.out serial3.out; printf '\nSTREAM-READ-END\n'
            {vmm} -m 512 -incoming file:snap 2>err.out; echo "MISMATCH-EXIT $? $(cat err.out)"
            {vmm} -incoming file:nowhere 2>err.out; echo "NO-DIR-EXIT $? $(cat err.out)"
            """)),
        new("qmp-system-reset", CounterWithQmp(), Wrap: WithQmp(EndWith("system_reset"))),
        new("qmp-system-powerdown", CounterWithQmp(), Wrap: WithQmp(EndWith("system_powerdown"))),
        // A client that is connected when SIGTERM arrives gets SHUTDOWN host-signal before the VMM exits.
        new("qmp-sigterm", CounterWithQmp(), Wrap: WithQmp(StartVmm + """
            $q qmp.sock '{"execute":"query-status"}' --wait-event SHUTDOWN >events.out &
            client=$!
            waitfor 'grep -q return events.out'
            kill -TERM $pid
            wait $pid; rc=$?
            wait $client; echo "CLIENT-EXIT $?"
            cat events.out
            """)),
        // -daemonize returns once the VM is ready: the pid file names the live daemon and the socket listens;
        // after quit both are gone.
        new("daemonize", CounterWithQmp("-daemonize", "-pidfile", "vm.pid"), Wrap: WithQmp("""
            {vmm}
            echo "PARENT-EXIT $?"
            [ -S qmp.sock ] && echo "READY-SOCKET yes" || echo "READY-SOCKET no"
            daemon=$(cat vm.pid)
            kill -0 "$daemon" && echo "DAEMON-ALIVE yes" || echo "DAEMON-ALIVE no"
            [ "$(cut -d' ' -f6 /proc/$daemon/stat)" = "$daemon" ] && echo "DAEMON-SESSION own" || echo "DAEMON-SESSION inherited"
            $q qmp.sock '{"execute":"quit"}' --wait-event SHUTDOWN
            waitfor '! kill -0 $daemon 2>/dev/null'
            kill -0 "$daemon" 2>/dev/null && echo "DAEMON-GONE no" || echo "DAEMON-GONE yes"
            [ -e vm.pid ] && echo "PIDFILE left" || echo "PIDFILE removed"
            rc=0
            """)),
        // A guest that attacks every virtio device with random register writes and descriptor chains, many seeds:
        // the VMM must survive every one of them.
        new("hostile-guest", HostileArgs, TimeoutSeconds: 660, Wrap: HostileRuns),
        new("qmp-fuzz", ["-machine", "microvm", "-kernel", "{payload:idle.bin}", "-serial", "file,path=serial.out",
            "-qmp", "unix:qmp.sock,server,nowait", "-D"], TimeoutSeconds: 600, WithInfoLog: true, Wrap: QmpFuzzRun),
        new("idle-footprint", ["-machine", "microvm", "-kernel", "{payload:idle.bin}", "-m", "256", "-serial", "file,path=serial.out",
            "-qmp", "unix:qmp.sock,server,nowait", "-D"], TimeoutSeconds: 60, WithInfoLog: true, Wrap: IdleFootprint),
    ];

    public static VmmCase Get(string name) => All.Single(c => c.Name == name);
}
