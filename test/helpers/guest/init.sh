#!/bin/busybox sh
# /init of the Umbra test guest: mounts, loads the virtio modules listed in /etc/modules-order,
# takes an address by DHCP on eth0 and hands PID 1 over to the umbra-guest workload.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
read -r up _ </proc/uptime
echo "umbra-init-start uptime=$up"
while read -r m; do insmod "/lib/modules/$m" || echo "umbra-init: insmod $m failed"; done </etc/modules-order
ip link set lo up
ip link set eth0 up || echo "umbra-init: no eth0"
# udhcpc goes to the background once bound and keeps renewing the lease.
udhcpc -i eth0 -s /etc/udhcpc.script -t 60 -T 1 -A 1 -S
exec /bin/umbra-guest
