# virtio-net against a tap whose host end is 10.0.2.2 (the scenario's host script serves /blob over HTTP, then
# fetches this guest's /blob and /done). Ping, then 16 MiB each way over TCP, checksummed on both sides.
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
echo "GUEST-NET-MAC $(cat /sys/class/net/eth0/address)"
n=0
until ping -c 1 -W 1 10.0.2.2 >/dev/null 2>&1 || [ $n -ge 60 ]; do n=$((n + 1)); sleep 0.5; done
if ping -c 3 -W 2 10.0.2.2 >/dev/null 2>&1; then echo "GUEST-NET-PING ok"; else echo "GUEST-NET-PING failed"; fi
if wget -q -O /tmp/got http://10.0.2.2/blob; then
    echo "GUEST-NET-GOT $(wc -c </tmp/got) $(sha256sum /tmp/got | cut -d' ' -f1)"
else
    echo "GUEST-NET-GOT failed"
fi
mkdir -p /tmp/www
dd if=/dev/urandom of=/tmp/www/blob bs=1M count=16 2>/dev/null
echo "GUEST-NET-SERVING $(sha256sum /tmp/www/blob | cut -d' ' -f1)"
httpd -f -v -p 8080 -h /tmp/www 2>/tmp/httpd.log &
n=0
# The host fetches /blob, then asks for /done (a 404): only then is its transfer over.
until grep -q "response:404" /tmp/httpd.log 2>/dev/null || [ $n -ge 120 ]; do n=$((n + 1)); sleep 1; done
kill $! 2>/dev/null
echo "GUEST-NET-SERVED $(grep -c "response:200" /tmp/httpd.log)"
