# Shared by build-qemu-guest.sh and build-v86-guest.sh (sourced, POSIX sh).
# build_guest ARCH KFLAVOUR OUT NIC=MOD[,MOD...] ...
#   ARCH      Debian architecture of the guest (amd64, i386)
#   KFLAVOUR  kernel flavour; the meta package linux-image-KFLAVOUR names the versioned package
#   OUT       output directory: bzImage, initrd.gz, kernel-version
#   NIC=MODS  for each NIC, the top-level driver modules; dependencies are resolved with modinfo
# Packages come from Debian through a private apt state (no change to the system's apt config).
build_guest() {
  arch=$1; flavour=$2; out=$(realpath -m "$3"); shift 3
  here=$(cd "$(dirname "$0")" && pwd)
  work="$out/work"
  rm -rf "$work"; mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/deb" "$out"
  A="-o Dir::State::Lists=$work/apt/lists -o Dir::Cache=$work/apt/cache -o APT::Architectures::=$arch -o APT::Architecture=$arch -o APT::Sandbox::User=root"
  # The i386 security index has been seen to fail mid-sync; the packages come from the main suite anyway.
  apt-get $A -qq update >/dev/null 2>&1 || echo "build-guest: apt-get update reported errors (continuing)" >&2
  kpkg=$(apt-cache $A depends "linux-image-$flavour" | sed -n "s/.*Depends: \(linux-image-[0-9][0-9a-z.+-]*-$flavour\)\$/\1/p" | head -1)
  [ -n "$kpkg" ] || { echo "build-guest: cannot resolve linux-image-$flavour" >&2; return 1; }
  echo "build-guest: $arch kernel package $kpkg"
  (cd "$work/deb" && apt-get $A -qq download "$kpkg" busybox-static)
  mkdir -p "$work/kx" "$work/bbx"
  dpkg-deb -x "$work"/deb/linux-image-*.deb "$work/kx"
  dpkg-deb -x "$work"/deb/busybox-static_*.deb "$work/bbx"
  root="$work/root"
  mkdir -p "$root/bin" "$root/lib/modules" "$root/proc" "$root/sys" "$root/dev" "$root/usr/share/udhcpc"
  cp "$work"/kx/boot/vmlinuz-* "$out/bzImage"
  cp "$work/bbx/bin/busybox" "$root/bin/busybox"
  kver=$(basename "$(ls -d "$work"/kx/lib/modules/*)")
  echo "$kpkg $kver" > "$out/kernel-version"
  kdir="$work/kx/lib/modules/$kver"
  for spec in "$@"; do
    nic=${spec%%=*}; mods=$(echo "${spec#*=}" | tr ',' ' ')
    : > "$root/lib/modules/$nic.list"
    for m in $mods; do add_module "$kdir" "$root" "$nic" "$m"; done
    echo "build-guest: $nic modules: $(tr '\n' ' ' < "$root/lib/modules/$nic.list")"
  done
  cp "$here/guest/init.sh" "$root/init"; chmod +x "$root/init"
  (cd "$root" && find . | cpio -o -H newc --quiet | gzip -9) > "$out/initrd.gz"
  rm -rf "$work"
  echo "build-guest: wrote $out/bzImage $out/initrd.gz ($kver)"
}

# add_module KDIR ROOT NIC NAME: copy NAME.ko (decompressed) and, first, its dependencies.
add_module() {
  local kdir root nic name f base plain deps d
  kdir=$1; root=$2; nic=$3; name=$4
    f=$(find "$kdir/kernel" \( -name "$name.ko" -o -name "$name.ko.xz" -o -name "$name.ko.zst" -o -name "$name.ko.gz" \
        -o -name "$(echo "$name" | tr _ -).ko" -o -name "$(echo "$name" | tr _ -).ko.xz" -o -name "$(echo "$name" | tr _ -).ko.zst" \) | head -1)
  if [ -z "$f" ]; then
    if grep -Eq "/($name|$(echo "$name" | tr _ -))\.ko" "$kdir/modules.builtin" 2>/dev/null; then return 0; fi
    echo "build-guest: module $name not found in $kdir" >&2; return 1
  fi
  base=$(basename "$f"); plain=${base%.xz}; plain=${plain%.zst}; plain=${plain%.gz}
  # Resolve the dependency list before writing this module (modinfo reads compressed modules).
  deps=$(modinfo -F depends "$f" | tr ',' ' ')
  for d in $deps; do add_module "$kdir" "$root" "$nic" "$d"; done
  case "$base" in
    *.xz) xz -dc "$f" > "$root/lib/modules/$plain" ;;
    *.zst) zstd -qdc "$f" > "$root/lib/modules/$plain" ;;
    *.gz) gzip -dc "$f" > "$root/lib/modules/$plain" ;;
    *) cp "$f" "$root/lib/modules/$plain" ;;
  esac
  grep -qx "$plain" "$root/lib/modules/$nic.list" || echo "$plain" >> "$root/lib/modules/$nic.list"
}
