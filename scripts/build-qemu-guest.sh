#!/bin/sh
# Builds the amd64 QEMU test guest: Debian's linux-image-amd64 kernel and an initramfs of
# busybox-static plus the e1000 and virtio-net drivers (/init loads the list its `nic=` word
# names, e1000 by default); /init (scripts/guest/init.sh) runs udhcpc and ping. virtio-net is
# there for bench/qemu-path.ts, which compares both NIC models.
# Usage: scripts/build-qemu-guest.sh [OUTDIR]   (default .cache/qemu-guest)
set -eu
cd "$(dirname "$0")/.."
. scripts/guest/common.sh
build_guest amd64 amd64 "${1:-.cache/qemu-guest}" e1000=e1000 virtio=virtio_pci,virtio_net
