#!/bin/sh
# Builds the amd64 QEMU test guest: Debian's linux-image-amd64 kernel and an initramfs of
# busybox-static plus the e1000 driver; /init (scripts/guest/init.sh) runs udhcpc and ping.
# Usage: scripts/build-qemu-guest.sh [OUTDIR]   (default .cache/qemu-guest)
set -eu
cd "$(dirname "$0")/.."
. scripts/guest/common.sh
build_guest amd64 amd64 "${1:-.cache/qemu-guest}" e1000=e1000
