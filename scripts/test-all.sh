#!/usr/bin/env bash
# The whole test suite, from a fresh clone (`npm run test:all`, as root; .ci/run calls it):
# installs the Debian packages the real-peer tests and benchmarks use, installs npm packages,
# builds the test guests from Debian's packages, builds, type-checks, lints, and runs every
# test with `npm test` (extra arguments go to vitest). Each phase is timed and capped; every
# phase runs even after a failure; the exit status is non-zero when any phase failed.
set -uo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
export NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false NPM_CONFIG_UPDATE_NOTIFIER=false

T0=$(date +%s)
declare -a SUMMARY=()
FAILED=0

# phase NAME LIMIT_SECONDS CMD...: runs CMD with a time limit, records status and duration.
phase() {
  local name=$1 limit=$2; shift 2
  local start rc
  start=$(date +%s)
  echo
  echo "=== [$(date -u +%H:%M:%S)] phase: $name (limit ${limit}s)"
  timeout --kill-after=30 "$limit" "$@"
  rc=$?
  local took=$(( $(date +%s) - start ))
  if [ "$rc" -eq 0 ]; then
    SUMMARY+=("$(printf '%-10s ok      %4ds' "$name" "$took")")
  else
    [ "$rc" -eq 124 ] && echo "=== phase $name timed out after ${limit}s"
    SUMMARY+=("$(printf '%-10s FAILED  %4ds  (exit %d)' "$name" "$took" "$rc")")
    FAILED=1
  fi
  echo "=== phase: $name exit $rc in ${took}s"
  return 0
}

# Debian packages of the real peers (guests, bridges, packet oracles, DNS, benchmarks).
PACKAGES=(
  qemu-system-x86 ipxe-qemu seabios socat tcpdump tshark busybox-static iproute2
  iputils-arping iputils-ping cpio kmod xz-utils zstd gzip procps coreutils ca-certificates prometheus systemd
  dnsmasq-base bind9-dnsutils curl iperf3 slirp4netns chromium openssl python3 python3-scapy hping3 natpmpc coturn
  isc-dhcp-client dhcpcd-base tftp-hpa atftp nginx ndisc6 nftables passt
)

install_packages() {
  set -e
  local packages missing=()
  read -r -a packages <<<"$PACKAGES_LIST"
  for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ "${#missing[@]}" -eq 0 ]; then echo "all ${#packages[@]} packages present"; return 0; fi
  if [ "$(id -u)" -ne 0 ]; then echo "missing packages (${missing[*]}): run as root to install them"; return 1; fi
  # tshark asks whether non-root users may capture; answer no without a prompt.
  echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections
  apt-get update -q || echo "apt-get update reported errors; trying the install anyway"
  apt-get install -y -q --no-install-recommends "${missing[@]}"
}

build_guests() {
  set -e
  sh scripts/build-qemu-guest.sh .cache/qemu-guest
  sh scripts/build-v86-guest.sh .cache/v86-guest
  sh scripts/e1000-v86-guest.sh .cache/e1000-v86-guest
}

export -f install_packages build_guests
export PACKAGES_LIST="${PACKAGES[*]}"
phase apt       900 bash -c install_packages
phase npm-ci    600 npm ci --no-audit --no-fund
phase guests    600 bash -c build_guests
phase build     300 npm run build
phase typecheck 300 npm run typecheck
phase lint      600 npm run lint
phase test     2100 npm test -- "$@"

# Clean up anything a killed test may have left behind (our namespaces start with tslns).
for ns in $(ip netns list 2>/dev/null | awk '/^tslns/ {print $1}'); do ip netns del "$ns" 2>/dev/null || true; done

echo
echo "=== summary (total $(( $(date +%s) - T0 ))s)"
for line in "${SUMMARY[@]}"; do echo "  $line"; done
exit "$FAILED"
