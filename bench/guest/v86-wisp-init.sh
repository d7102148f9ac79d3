#!/bin/busybox sh
# /init of bench/v86-wisp.ts's v86 guest (appended to scripts/build-v86-guest.sh's initramfs, so
# it replaces the built /init). Kernel command-line words reach it as variables: nic= (the
# module list to load), url= (what to download; an address, not a name: v86's wisp adapter
# resolves names over DNS-over-HTTPS, which this benchmark must not reach). It takes a lease,
# applies the lease's MTU (DHCP option 26) to eth0, and downloads url once, printing TSLIRP-*
# markers on the serial console: TSLIRP-MTU (eth0's MTU after the lease), TSLIRP-MARK dl-start /
# dl-end around the download (the runner prints its counters at each) and TSLIRP-DL with the
# sha256 and the guest's uptime at both ends.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
echo "TSLIRP-INIT up=$(cut -d' ' -f1 /proc/uptime)"
while read -r m; do insmod "/lib/modules/$m" || echo "TSLIRP-INSMOD-FAILED $m"; done < "/lib/modules/${nic:-virtio}.list"
i=0; while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
[ -e /sys/class/net/eth0 ] || { echo "TSLIRP-NO-ETH0"; echo "TSLIRP-DONE"; poweroff -f; }
ip link set lo up; ip link set eth0 up
cat > /udhcpc.sh <<'S'
#!/bin/sh
if [ "$1" = bound ]; then
  echo "TSLIRP-LEASE ip=$ip subnet=$subnet router=$router mtu=$mtu"
  [ -n "$mtu" ] && { ip link set dev "$interface" mtu "$mtu" || echo "TSLIRP-MTU-REFUSED $mtu"; }
  ip addr add "$ip/$subnet" dev "$interface"; ip route add default via $router
fi
exit 0
S
chmod +x /udhcpc.sh
if udhcpc -s /udhcpc.sh -i eth0 -f -q -n -t 5 -T 2 -O mtu; then echo "TSLIRP-DHCP-OK"; else echo "TSLIRP-DHCP-FAIL"; fi
echo "TSLIRP-MTU $(cat /sys/class/net/eth0/mtu)"
mark() { echo "TSLIRP-MARK $1 $(cut -d' ' -f1 /proc/uptime) $(sed -n 's/^ *eth0: *//p' /proc/net/dev)"; }
mark dl-start
t0=$(cut -d' ' -f1 /proc/uptime)
sum=$(wget -q -O - "$url" | sha256sum | cut -d' ' -f1)
echo "TSLIRP-DL $sum $t0 $(cut -d' ' -f1 /proc/uptime)"
mark dl-end
echo "TSLIRP-DONE"
poweroff -f
