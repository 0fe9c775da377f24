# The lab scenario of scripts/quickstart.sh: boot the guest under our VMM with an interactive shell on the serial
# console, type two commands into it, and let the second one power the guest off. The commands are typed once
# the guest says GUEST-SHELL, or after 240 s without it (so that a VMM whose console output is broken still
# gets the poweroff).
# shellcheck shell=sh

# shellcheck disable=SC2034 # read by scenario_input (lib.sh)
LAB_INPUT_WAIT_MAX=240
scenario_input quickstart 480 'uname -a\npoweroff -f' \
    "$VMM" -machine microvm -kernel "$KERNEL" -append "console=ttyS0 reboot=k panic=1 lab.action=shell" \
    -initrd "$INITRD" -m 256 -smp 2 -serial stdio
