# Crash durability (scripts/lab/durability-trials.sh): writes numbered records to the raw disk /dev/vda, each
# acknowledged on the console once fdatasync returned, until the host kills the VMM.
nonce=$(tr ' ' '\n' </proc/cmdline | sed -n 's/^lab\.nonce=//p')
exec durability-records write /dev/vda "${nonce:-1}"
