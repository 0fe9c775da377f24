# The q35 standard VM as the guest sees it: its ACPI tables, the PCI functions on bus 0 (vendor:device and
# class), the CPUs the kernel brought online, and the CMOS RTC through the rtc class and hwclock.
# The same VMM process boots this guest three times; the boot count lives in the first sector of /dev/vda, a raw
# disk the host made empty. Boot 1 runs the checks and reboots itself (reboot=acpi: the FADT's reset register,
# 0xCF9); boot 2 waits for the host's QMP system_reset; boot 3 waits for the ACPI power button (the host's QMP
# system_powerdown) and returns, and /init powers off through S5.
n=0
until [ -b /dev/vda ] || [ $n -ge 100 ]; do sleep 0.1; n=$((n + 1)); done
boot=$(dd if=/dev/vda bs=512 count=1 2>/dev/null | tr -dc 0-9)
boot=$((${boot:-0} + 1))
printf '%-512s' "$boot" | dd of=/dev/vda bs=512 count=1 conv=notrunc,fsync 2>/dev/null
echo "GUEST-Q35-BOOT $boot"

case "$boot" in
1)
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
    echo "GUEST-Q35-REBOOT"
    reboot -f
    sleep 30
    echo "GUEST-ERROR reboot -f returned"
    exit 1
    ;;
2)
    echo "GUEST-Q35-AWAIT-RESET"
    sleep 300
    echo "GUEST-ERROR no system_reset came"
    exit 1
    ;;
*)
    # The ACPI button driver (button.ko) turns the fixed power button into KEY_POWER on the input device it names
    # "Power Button"; nothing else in this guest handles it, so this reader stands in for a desktop's or acpid's.
    ev=
    for d in /sys/class/input/event*; do
        [ "$(cat "$d/device/name" 2>/dev/null)" = "Power Button" ] && ev=/dev/input/${d##*/}
    done
    if [ -z "$ev" ]; then
        echo "GUEST-Q35-NO-POWER-BUTTON"
        exit 1
    fi
    dd if="$ev" of=/tmp/power-event bs=24 count=1 2>/dev/null &
    reader=$!
    sleep 1
    echo "GUEST-Q35-AWAIT-POWERDOWN $ev"
    wait $reader
    echo "GUEST-Q35-POWER-BUTTON $(wc -c </tmp/power-event)"
    echo "GUEST-Q35-SCI-AFTER $(grep -m1 ' acpi' /proc/interrupts | tr -s ' ')"
    ;;
esac
