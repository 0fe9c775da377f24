# Socket chardev peers that disappear (host side: scripts/lab/chardev-gone-host.sh). The serial console (ttyS0)
# and a virtconsole (hvc0) are Unix socket chardevs on the host. The guest writes a numbered tick to both every
# 0.2 s, all along (also while the host's peers are gone), and echoes each line it reads: from ttyS0 as
# GUEST-CG-SER-GOT <line> (to ttyS0), from hvc0 as GUEST-CG-HVC-GOT <line> (to hvc0). The line "stop" on hvc0
# ends the test (or 900 ticks).
n=0
until [ -c /dev/hvc0 ] || [ $n -ge 50 ]; do n=$((n + 1)); sleep 0.1; done
# No echo by the line discipline: a GOT line must come from the guest's reader.
stty -F /dev/ttyS0 -echo
stty -F /dev/hvc0 -echo
rm -f /tmp/cg-stop
(
    while read -r line; do
        echo "GUEST-CG-HVC-GOT $line" >/dev/hvc0
        [ "$line" = stop ] && : >/tmp/cg-stop
    done </dev/hvc0
) &
(while read -r line; do echo "GUEST-CG-SER-GOT $line"; done </dev/ttyS0) &
echo "GUEST-CG-READY"
echo "GUEST-CG-READY" >/dev/hvc0
i=0
while [ ! -e /tmp/cg-stop ] && [ $i -lt 900 ]; do
    i=$((i + 1))
    echo "GUEST-CG-TICK $i"
    echo "GUEST-CG-TICK $i" >/dev/hvc0
    sleep 0.2
done
echo "GUEST-CG-STOPPED ticks=$i"
