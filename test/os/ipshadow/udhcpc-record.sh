#!/bin/sh
# udhcpc event script of the ipshadow tests: the guest namespace plays the VM's DHCP client only
# (its address is served by whichever host holds the VM active, in address mode), so the lease is
# logged to $UDHCPC_LOG and never configured here.
[ -n "$UDHCPC_LOG" ] && echo "$1 ${ip:-} dns=${dns:-}" >> "$UDHCPC_LOG"
exit 0
