# Counts for the stop/cont scenario: a line every half second, with the guest's uptime.
i=0
while [ $i -lt 60 ]; do
    read -r up _ </proc/uptime
    echo "GUEST-TICK $i $up"
    i=$((i + 1))
    sleep 0.5
done
