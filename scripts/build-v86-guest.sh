#!/bin/sh
# Builds the i386 v86 test guest (see shared reference v86.md): Debian's linux-image-686 kernel
# and an initramfs of busybox-static:i386 plus the ne2k-pci and virtio-net drivers.
# Usage: scripts/build-v86-guest.sh [OUTDIR]   (default .cache/v86-guest)
set -eu
cd "$(dirname "$0")/.."
. scripts/guest/common.sh
build_guest i386 686 "${1:-.cache/v86-guest}" ne2k=8390,ne2k-pci virtio=virtio_pci,virtio_net
