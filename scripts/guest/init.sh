#!/bin/busybox sh
# /init of tslirp's test guests (QEMU e1000, v86 ne2k/virtio). Prints TSLIRP-* markers on the
# serial console; the integration tests parse them. Kernel command-line words `nic=`,
# `wait_go=`, `peer=` and `hold=` reach this script as environment variables; an initrd
# overlay may set them in /etc/tslirp-guest.env instead (a guest whose command line the test
# cannot change, v86's). `peer=ADDR` pings another guest of the network after the gateway and
# DNS; `hold=SECONDS` then keeps the guest up until a line arrives on the console or SECONDS pass.
# `apply_mtu=1` asks DHCP for option 26 and sets eth0's MTU to it (TSLIRP-MTU then prints it);
# `big_ping=BYTES` then pings the gateway with BYTES of payload (a jumbo MTU's frames, unfragmented).
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
[ -f /etc/tslirp-guest.env ] && . /etc/tslirp-guest.env
echo "TSLIRP-INIT up=$(cut -d' ' -f1 /proc/uptime) nic=${nic:-e1000}"
# Module load order was computed at build time from modinfo's depends field.
if [ -f "/lib/modules/${nic:-e1000}.list" ]; then
  while read -r m; do insmod "/lib/modules/$m" || echo "TSLIRP-INSMOD-FAILED $m"; done < "/lib/modules/${nic:-e1000}.list"
fi
i=0; while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
[ -e /sys/class/net/eth0 ] || { echo "TSLIRP-NO-ETH0"; echo "TSLIRP-DONE"; poweroff -f; }
ip link set lo up; ip link set eth0 up
mkdir -p /usr/share/udhcpc
cat > /usr/share/udhcpc/default.script <<'S'
#!/bin/sh
echo "TSLIRP-UDHCPC $1"
if [ "$1" = bound ] || [ "$1" = renew ]; then
  echo "TSLIRP-LEASE ip=$ip subnet=$subnet router=$router dns=$dns domain=$domain search=$search mtu=$mtu lease=$lease hostname=$hostname serverid=$serverid"
  if [ -n "${apply_mtu:-}" ] && [ -n "$mtu" ]; then ip link set dev "$interface" mtu "$mtu" || echo "TSLIRP-MTU-REFUSED $mtu"; fi
  ip addr add "$ip/$subnet" dev "$interface"
  [ -n "$router" ] && ip route add default via $router
fi
exit 0
S
chmod +x /usr/share/udhcpc/default.script
if [ -n "${wait_go:-}" ]; then echo "TSLIRP-READY"; read -r GO < /dev/ttyS0; fi
export apply_mtu
if udhcpc -s /usr/share/udhcpc/default.script -i eth0 -f -q -n -t 5 -T 2 ${apply_mtu:+-O mtu}; then echo "TSLIRP-DHCP-OK"; else echo "TSLIRP-DHCP-FAIL"; fi
if ping -c 3 -W 3 10.0.2.2; then echo "TSLIRP-PING-GW-OK"; else echo "TSLIRP-PING-GW-FAIL"; fi
if ping -c 2 -W 3 10.0.2.3; then echo "TSLIRP-PING-DNS-OK"; else echo "TSLIRP-PING-DNS-FAIL"; fi
if [ -n "${apply_mtu:-}" ]; then echo "TSLIRP-MTU $(cat /sys/class/net/eth0/mtu)"; fi
if [ -n "${big_ping:-}" ]; then
  if ping -c 3 -W 5 -s "$big_ping" 10.0.2.2; then echo "TSLIRP-BIG-PING-OK"; else echo "TSLIRP-BIG-PING-FAIL"; fi
fi
if [ -n "${peer:-}" ]; then
  if ping -c 3 -W 3 "$peer"; then echo "TSLIRP-PING-PEER-OK"; else echo "TSLIRP-PING-PEER-FAIL"; fi
fi
if [ -n "${hold:-}" ]; then echo "TSLIRP-HOLD"; read -r -t "$hold" GO < /dev/ttyS0; fi
echo "TSLIRP-DONE"
sync
poweroff -f
