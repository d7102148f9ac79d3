#!/bin/sh
# Builds the i386 v86 guest for the e1000 model test (test/integration/e1000-v86.int.test.ts):
# Debian's linux-image-686 kernel and an initramfs of busybox-static:i386 plus Linux's e1000
# driver (v86 has no e1000 of its own: the TypeScript model is plugged into v86's PCI bus).
# Usage: scripts/e1000-v86-guest.sh [OUTDIR]   (default .cache/e1000-v86-guest)
set -eu
cd "$(dirname "$0")/.."
. scripts/guest/common.sh
build_guest i386 686 "${1:-.cache/e1000-v86-guest}" e1000=e1000
