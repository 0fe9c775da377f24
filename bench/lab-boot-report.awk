# The table of bench/lab-boot.sh, from a lab console log (CRs removed) of bench/lab-boot-scenarios.sh.
# Scenario names are <ours|qemu>-smp<N>-r<repeat>; per VMM and vCPU count it averages:
#   the outer wall ms from starting the VMM to the GUEST-INIT line (@@INIT),
#   the guest's uptime in that line, the kernel's timestamp of "Run /init as init process",
#   and our VMM's "Guest-boot-time = <us> us" log line.
# Then the idle VMs' "BENCH-MEM <ours|qemu> <overhead> <big-other> <guest> <total>" lines (kB) and their ratio. The
# note "bench: machine <type>" names the machine; on q35 it checks issue 15's targets (MAX_INIT_RATIO, MAX_MEM_KB).
# The note "bench: qemu machine <options>" (the Arm lab: our microvm against QEMU's virt) names QEMU's machine; then
# it checks issue 17's target, the same MAX_INIT_RATIO.

BEGIN { machine = "microvm"; MAX_INIT_RATIO = 0.6; MAX_MEM_KB = 6 * 1024 }

function mean(sum, n) { return n ? sum / n : -1 }
function plural(n) { return n > 1 ? "s" : "" }

/^@@BEGIN / {
    vmm = ""
    if ($2 ~ /^(ours|qemu)-smp[0-9]+-r[0-9]+$/) {
        split($2, part, "-")
        vmm = part[1]
        key = vmm " " substr(part[2], 4)
        seen[key] = 1
        uptime = ""; kinit = ""; boot = ""; last = ""
    }
    next
}
/^@@NOTE bench: machine / { machine = $4; next }
/^@@NOTE bench: qemu machine / { qmachine = $5; next }
/^@@NOTE / { notes = notes "  " substr($0, 8) "\n"; next }
/^BENCH-MEM (ours|qemu) / {
    if ($3 == "fail") { memfail[$2] = substr($0, index($0, " fail ") + 6) } else { mem[$2] = $3 + 0; memrow[$2] = $0 }
    next
}
vmm == "" { next }
/GUEST-INIT uptime=/ && uptime == "" { t = $0; sub(/.*GUEST-INIT uptime=/, "", t); uptime = t + 0 }
/\] Run \/init as init process/ && kinit == "" { t = $0; sub(/^[^[]*\[ */, "", t); kinit = t + 0 }
/Guest-boot-time = [0-9]+ us/ && boot == "" { t = $0; sub(/.*Guest-boot-time = /, "", t); boot = t + 0 }
/^@@INIT / {
    ms = substr($3, 4)
    inits[key] = inits[key] " " ms; initsum[key] += ms; initn[key]++
    next
}
/^@@END / {
    rc = substr($3, 4)
    rcs[key] = rcs[key] " " rc
    if (uptime != "") { upsum[key] += uptime; upn[key]++ }
    if (kinit != "") { kinitsum[key] += kinit; kinitn[key]++ }
    if (boot != "") { bootsum[key] += boot; bootn[key]++ }
    if (rc != 0 && last != "") why[key] = last
    vmm = ""
    next
}
/^@@/ { next }
$0 != "" { last = $0 }

END {
    printf "machine: %s%s\n", machine, (qmachine != "") ? ", QEMU's: " qmachine : ""
    peer = "QEMU " ((qmachine != "") ? substr(qmachine, 1, index(qmachine "," , ",") - 1) : machine)
    fmt = "%-5s %5s  %-23s %8s  %14s  %11s  %13s  %s\n"
    printf fmt, "VMM", "vCPUs", "to GUEST-INIT ms (runs)", "mean ms", "guest uptime s", "Run /init s",
        "boot timer ms", "exit codes"
    for (smp = 1; smp <= 2; smp++) {
        for (v = 1; v <= 2; v++) {
            vm = (v == 1) ? "ours" : "qemu"
            k = vm " " smp
            if (!(k in seen)) { printf "%-5s %5d  (not run)\n", vm, smp; continue }
            printf fmt, vm, smp,
                initn[k] ? substr(inits[k], 2) : "none",
                initn[k] ? sprintf("%.0f", mean(initsum[k], initn[k])) : "-",
                upn[k] ? sprintf("%.2f", mean(upsum[k], upn[k])) : "-",
                kinitn[k] ? sprintf("%.2f", mean(kinitsum[k], kinitn[k])) : "-",
                bootn[k] ? sprintf("%.0f", mean(bootsum[k], bootn[k]) / 1000) : "-",
                substr(rcs[k], 2)
            if (k in why) printf "      %s, last line before a failure: %s\n", vm, why[k]
        }
    }
    print ""
    for (smp = 1; smp <= 2; smp++) {
        o = "ours " smp; q = "qemu " smp
        if (initn[o] && initn[q] && upn[o] && upn[q]) {
            printf "ratio ours/QEMU, %d vCPU%s: to GUEST-INIT %.2fx, guest uptime at init %.2fx", smp, plural(smp),
                mean(initsum[o], initn[o]) / mean(initsum[q], initn[q]), mean(upsum[o], upn[o]) / mean(upsum[q], upn[q])
            if (kinitn[o] && kinitn[q])
                printf ", Run /init %.2fx", mean(kinitsum[o], kinitn[o]) / mean(kinitsum[q], kinitn[q])
            print ""
        } else if (kinitn[o] && kinitn[q]) {
            printf "ratio ours/QEMU, %d vCPU%s: Run /init %.2fx (no GUEST-INIT line under %s)\n", smp, plural(smp),
                mean(kinitsum[o], kinitn[o]) / mean(kinitsum[q], kinitn[q]), (initn[o] ? "QEMU" : "our VMM")
        } else {
            if (!(o in seen)) reason = "our VMM did not run"
            else reason = initn[o] ? "no QEMU result" : "no GUEST-INIT line under our VMM"
            printf "ratio ours/QEMU, %d vCPU%s: n/a (%s)\n", smp, plural(smp), reason
        }
    }
    print ""
    printf "%-5s  %-12s %12s %10s %10s %10s\n", "VMM", "idle overhead", "MiB", "big-other", "guest kB", "total kB"
    for (v = 1; v <= 2; v++) {
        vm = (v == 1) ? "ours" : "qemu"
        if (vm in mem) {
            split(memrow[vm], f, " ")
            printf "%-5s  %10d kB %12.2f %10d %10d %10d\n", vm, f[3], f[3] / 1024, f[4], f[5], f[6]
        } else printf "%-5s  %s\n", vm, (vm in memfail) ? "FAILED: " memfail[vm] : "(not measured)"
    }
    if (("ours" in mem) && ("qemu" in mem) && mem["qemu"] > 0)
        printf "ratio ours/QEMU, idle overhead: %.2fx (QEMU minus ours: %d kB)\n", mem["ours"] / mem["qemu"],
            mem["qemu"] - mem["ours"]
    if (machine == "q35" || qmachine != "") {
        print ""
        for (smp = 1; smp <= 2; smp++) {
            o = "ours " smp; q = "qemu " smp
            if (initn[o] && initn[q] && initsum[q] > 0) {
                r = mean(initsum[o], initn[o]) / mean(initsum[q], initn[q])
                printf "target: to GUEST-INIT ours/%s, %d vCPU%s = %.2fx, <= %.1fx: %s\n", peer, smp, plural(smp), r,
                    MAX_INIT_RATIO, (r <= MAX_INIT_RATIO) ? "PASS" : "FAIL"
            } else printf "target: to GUEST-INIT ours/%s, %d vCPU%s: FAIL (no figure for both)\n", peer, smp, plural(smp)
        }
    }
    if (machine == "q35") {
        if ("ours" in mem)
            printf "target: ours idle q35 overhead = %d kB, <= %d kB (6 MiB): %s\n", mem["ours"], MAX_MEM_KB,
                (mem["ours"] <= MAX_MEM_KB) ? "PASS" : "FAIL"
        else print "target: ours idle q35 overhead: FAIL (not measured)"
    }
    if (notes != "") printf "\nnotes:\n%s", notes
}
