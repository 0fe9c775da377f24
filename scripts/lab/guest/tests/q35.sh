# The q35 standard VM as the guest sees it: its ACPI tables, the PCI functions on bus 0 (vendor:device and
# class), the CPUs the kernel brought online, and the CMOS RTC through the rtc class and hwclock.
tables=
for t in /sys/firmware/acpi/tables/*; do
    [ -f "$t" ] && tables="$tables $(basename "$t")"
done
echo "GUEST-Q35-ACPI-TABLES$tables"
for d in /sys/bus/pci/devices/*; do
    [ -e "$d" ] || continue
    echo "GUEST-Q35-PCI $(basename "$d") $(cat "$d/vendor"):$(cat "$d/device") class=$(cat "$d/class")"
done
echo "GUEST-Q35-PCI-COUNT $(ls /sys/bus/pci/devices 2>/dev/null | grep -c .)"
echo "GUEST-Q35-CPUS-ONLINE $(cat /sys/devices/system/cpu/online)"
echo "GUEST-Q35-RTC $(cat /sys/class/rtc/rtc0/name 2>/dev/null) since_epoch=$(cat /sys/class/rtc/rtc0/since_epoch 2>/dev/null)"
echo "GUEST-Q35-HWCLOCK $(hwclock -r -u 2>&1)"
echo "GUEST-Q35-SCI $(grep -m1 ' acpi' /proc/interrupts | tr -s ' ')"
echo "GUEST-Q35-CLOCKSOURCES $(cat /sys/devices/system/clocksource/clocksource0/available_clocksource)"
