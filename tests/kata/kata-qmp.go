// kata-qmp drives a StratoVirt microVM over QMP the way Kata Containers' runtime does
// (src/runtime/virtcontainers/stratovirt.go), through Kata's own QMP client library, govmm
// (github.com/kata-containers/govmm/qemu, as Debian packages it). Each step prints one "KATA-<STEP> <result>"
// line; the lab's kata scenario asserts them. The guest's hvc0 console (the -chardev socket Kata calls
// console.socket) is copied to stdout line by line, and the guest's markers there pace the hotplug steps.
//
//	kata-qmp -qmp <vmPath>/qmp.socket -pid <VMM pid> [-console <vmPath>/console.socket]
//	         [-image <raw image> -drive-id <id> -vdev vda [-read-only]] [-ready-marker <text>]
//	         [-plugged-marker <text>] [-unplugged-marker <text>] [-timeout <s>] [-guest-timeout <s>]
//
// Steps, in Kata's order: waitVM (QMPStart every 50 ms until -timeout; govmm refuses a QMP version below 5;
// qmp_capabilities; disconnect), the console, qmpSetup (a second connection, with events), query-cpus (each
// thread_id must be a thread of -pid), wait for -ready-marker on the console, then with -image Kata's
// hotplugBlk: blockdev-add and device_add driver virtio-blk-mmio at the slot of -vdev, wait for -plugged-marker
// on the console, device_del (govmm waits for DEVICE_DELETED), wait for -unplugged-marker; last Kata's
// stopSandbox: SIGKILL to -pid, and QMP must then disconnect. The exit status is 0 only when every step worked;
// the VMM is killed in any case.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	govmm "github.com/kata-containers/govmm/qemu"
)

var (
	outMu  sync.Mutex
	failed bool
)

// report prints one step's marker line; a failed step makes the exit status 1.
func report(step string, ok bool, format string, args ...interface{}) {
	outMu.Lock()
	defer outMu.Unlock()
	if !ok {
		failed = true
	}
	fmt.Printf("KATA-%s %s\n", step, fmt.Sprintf(format, args...))
}

// console copies the guest console to stdout and tells waiters which lines it has seen.
type console struct {
	mu    sync.Mutex
	lines []string
	seen  chan struct{} // closed and replaced on every new line
}

func openConsole(path string, deadline time.Time) (*console, error) {
	var conn net.Conn
	var err error
	for {
		if conn, err = net.Dial("unix", path); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return nil, err
	}
	c := &console{seen: make(chan struct{})}
	go func() {
		scanner := bufio.NewScanner(conn)
		for scanner.Scan() {
			line := strings.TrimRight(scanner.Text(), "\r")
			outMu.Lock()
			fmt.Println(line)
			outMu.Unlock()
			c.mu.Lock()
			c.lines = append(c.lines, line)
			close(c.seen)
			c.seen = make(chan struct{})
			c.mu.Unlock()
		}
	}()
	return c, nil
}

// waitFor returns the first console line holding marker, or "" when the timeout passes first.
func (c *console) waitFor(marker string, timeout time.Duration) string {
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		for _, line := range c.lines {
			if strings.Contains(line, marker) {
				c.mu.Unlock()
				return line
			}
		}
		seen := c.seen
		c.mu.Unlock()
		select {
		case <-seen:
		case <-deadline:
			return ""
		}
	}
}

// waitVM is Kata's waitVM: QMPStart every 50 ms until the timeout, qmp_capabilities, then this first
// connection is closed again.
func waitVM(ctx context.Context, socket string, timeout time.Duration) bool {
	start := time.Now()
	for attempts := 1; ; attempts++ {
		disconnected := make(chan struct{})
		q, ver, err := govmm.QMPStart(ctx, socket, govmm.QMPConfig{}, disconnected)
		if err == nil {
			report("CONNECT", true, "ok attempts=%d", attempts)
			report("QMP-VERSION", true, "%d.%d.%d capabilities=[%s]", ver.Major, ver.Minor, ver.Micro,
				strings.Join(ver.Capabilities, ","))
			err = q.ExecuteQMPCapabilities(ctx)
			report("CAPABILITIES", err == nil, "%s", errorOr(err, "ok"))
			q.Shutdown()
			<-disconnected
			return err == nil
		}
		if time.Since(start) > timeout {
			report("CONNECT", false, "error after %d attempts: %v", attempts, err)
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// qmpSetup is Kata's qmpSetup: the connection every later operation uses, with an event channel.
func qmpSetup(ctx context.Context, socket string) (*govmm.QMP, chan struct{}) {
	events := make(chan govmm.QMPEvent)
	go func() { // govmm hands over each event here and waits until it is taken; it closes the channel
		for e := range events {
			report("EVENT", true, "%s %v", e.Name, e.Data)
		}
	}()
	disconnected := make(chan struct{})
	q, _, err := govmm.QMPStart(ctx, socket, govmm.QMPConfig{EventCh: events}, disconnected)
	if err != nil {
		report("SETUP", false, "error %v", err)
		return nil, nil
	}
	if err := q.ExecuteQMPCapabilities(ctx); err != nil {
		report("SETUP", false, "error %v", err)
		q.Shutdown()
		<-disconnected
		return nil, nil
	}
	report("SETUP", true, "ok")
	return q, disconnected
}

func errorOr(err error, ok string) string {
	if err != nil {
		return "error " + err.Error()
	}
	return ok
}

// checkCpus runs query-cpus (Kata reads CPU and thread_id for its vCPU thread ids) and checks each id is a
// thread of the VMM.
func checkCpus(ctx context.Context, q *govmm.QMP, pid int) {
	cpus, err := q.ExecQueryCpus(ctx)
	if err != nil {
		report("CPUS", false, "error %v", err)
		return
	}
	report("CPUS", len(cpus) > 0, "%d", len(cpus))
	for _, cpu := range cpus {
		_, statErr := os.Stat(fmt.Sprintf("/proc/%d/task/%d", pid, cpu.ThreadID))
		ok := statErr == nil && cpu.ThreadID != pid
		verdict := "vmm-thread"
		if !ok {
			verdict = "not-a-vmm-thread"
		}
		report("CPU", ok, "%d thread_id=%d %s", cpu.CPU, cpu.ThreadID, verdict)
	}
}

// mmioSlot is Kata's setupMmioSlot: the drive name's letter after "vd" is the virtio-mmio block slot.
func mmioSlot(vdev string) (int, error) {
	if !strings.HasPrefix(vdev, "vd") || len(vdev) < 3 || vdev[2] < 'a' || vdev[2] > 'd' {
		return 0, fmt.Errorf("-vdev %q is not vda..vdd (Kata tracks 4 mmio block slots)", vdev)
	}
	return int(vdev[2] - 'a'), nil
}

// hotplugBlock adds the image as Kata's hotplugBlk does and removes it again once the guest has read it.
func hotplugBlock(ctx context.Context, q *govmm.QMP, con *console, image, id, vdev string, readOnly bool,
	plugged, unplugged string, guestTimeout time.Duration) {
	slot, err := mmioSlot(vdev)
	if err != nil {
		report("BLOCKDEV-ADD", false, "error %v", err)
		return
	}
	// Kata's newer govmm sends file.driver "file" (for a regular file) and file.aio "native" with no cache
	// member; Debian's govmm has no aio field, so this is its nearest call: the same driver and file driver,
	// with the cache settings the absent member means (direct on, flushes honoured).
	if err := q.ExecuteBlockdevAddWithDriverCache(ctx, "file", image, id, true, false, readOnly); err != nil {
		report("BLOCKDEV-ADD", false, "error %v", err)
		return
	}
	report("BLOCKDEV-ADD", true, "ok node-name=%s", id)
	// Kata: ExecutePCIDeviceAdd(drive.ID, drive.ID, "virtio-blk-mmio", "<slot>", "", "", 0, false, false, ...).
	if err := q.ExecutePCIDeviceAdd(ctx, id, id, "virtio-blk-mmio", fmt.Sprintf("%d", slot), "", "", 0, false, false); err != nil {
		report("DEVICE-ADD", false, "error %v", err)
		q.ExecuteBlockdevDel(ctx, id) // Kata's clean-up after a failed add
		return
	}
	report("DEVICE-ADD", true, "ok slot=%d", slot)
	if con != nil && plugged != "" {
		line := con.waitFor(plugged, guestTimeout)
		report("GUEST-PLUGGED", line != "", "%s", orTimeout(line))
	}
	// govmm's ExecuteDeviceDel returns only after a DEVICE_DELETED event naming the device.
	delCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := q.ExecuteDeviceDel(delCtx, id); err != nil {
		report("DEVICE-DEL", false, "error %v", err)
		return
	}
	report("DEVICE-DEL", true, "ok DEVICE_DELETED device=%s", id)
	if con != nil && unplugged != "" {
		line := con.waitFor(unplugged, guestTimeout)
		report("GUEST-UNPLUGGED", line != "", "%s", orTimeout(line))
	}
}

func orTimeout(line string) string {
	if line == "" {
		return "timeout"
	}
	return line
}

func main() {
	socket := flag.String("qmp", "", "QMP socket (Kata: <vmPath>/qmp.socket)")
	pid := flag.Int("pid", 0, "pid of the VMM")
	consolePath := flag.String("console", "", "debug console socket (Kata: <vmPath>/console.socket)")
	image := flag.String("image", "", "raw image to hotplug")
	driveID := flag.String("drive-id", "drive-kata0", "node-name and device id of the hotplugged drive")
	vdev := flag.String("vdev", "vda", "guest drive name; its letter is the mmio slot")
	readOnly := flag.Bool("read-only", false, "hotplug the drive read-only")
	ready := flag.String("ready-marker", "", "console text that says the guest is up (Kata hotplugs once its agent is)")
	plugged := flag.String("plugged-marker", "", "console text that says the guest has read the hotplugged disk")
	unplugged := flag.String("unplugged-marker", "", "console text that says the guest has seen the disk go")
	timeout := flag.Int("timeout", 30, "seconds to wait for the QMP socket")
	guestTimeout := flag.Int("guest-timeout", 180, "seconds to wait for each guest marker")
	flag.Parse()
	if *socket == "" || *pid <= 0 || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "kata-qmp: -qmp <socket> and -pid <VMM pid> are required, and nothing else (see -help)")
		os.Exit(2)
	}

	ctx := context.Background()
	limit := time.Duration(*timeout) * time.Second
	var q *govmm.QMP
	var disconnected chan struct{}
	if waitVM(ctx, *socket, limit) {
		var con *console
		if *consolePath != "" {
			var err error
			con, err = openConsole(*consolePath, time.Now().Add(limit))
			report("CONSOLE", err == nil, "%s", errorOr(err, "connected"))
		}
		if q, disconnected = qmpSetup(ctx, *socket); q != nil {
			checkCpus(ctx, q, *pid)
			if con != nil && *ready != "" {
				line := con.waitFor(*ready, time.Duration(*guestTimeout)*time.Second)
				report("GUEST-READY", line != "", "%s", orTimeout(line))
			}
			if *image != "" {
				hotplugBlock(ctx, q, con, *image, *driveID, *vdev, *readOnly, *plugged, *unplugged,
					time.Duration(*guestTimeout)*time.Second)
			}
		}
	}

	// Kata's stopSandbox: SIGKILL to the VMM, no QMP quit.
	if err := syscall.Kill(*pid, syscall.SIGKILL); err != nil {
		report("KILL", false, "error %v", err)
	} else {
		report("KILL", true, "ok")
	}
	if disconnected != nil {
		select {
		case <-disconnected:
			report("QMP-DISCONNECTED", true, "ok")
		case <-time.After(10 * time.Second):
			report("QMP-DISCONNECTED", false, "timeout")
		}
	}
	outMu.Lock()
	defer outMu.Unlock()
	if failed {
		os.Exit(1)
	}
}
