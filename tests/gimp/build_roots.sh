#!/bin/sh
# Build (or reuse) the cached Debian chroots with a real headless GIMP 3 for the
# end-to-end tests in tests/gimp/:
#   trixie -> GIMP 3.0.x (gimp-console-3.0)
#   forky  -> GIMP 3.2.x
# Roots live OUTSIDE the repository, in $DRIP_GIMP_ROOTS
# (default /var/cache/drip-matting/gimp-roots/<suite>). A root counts as built
# only when its stamp file exists; a partial root is removed and rebuilt.
#
# Usage: tests/gimp/build_roots.sh [trixie] [forky]     (default: both, in parallel)
# Needs: root, debootstrap (installed with apt-get if missing), a Debian mirror
# (taken from the host's apt sources; override with DRIP_GIMP_MIRROR).
set -eu

ROOTS=${DRIP_GIMP_ROOTS:-/var/cache/drip-matting/gimp-roots}
STAMP=.drip-gimp-root-complete
PKGS="gimp python3-gi gir1.2-gimp-3.0 gir1.2-gegl-0.4 gir1.2-babl-0.1 dbus ca-certificates"

if [ "$(id -u)" != 0 ]; then
    echo "build_roots.sh: must run as root (debootstrap, chroot)" >&2
    exit 2
fi

mirror() {
    if [ -n "${DRIP_GIMP_MIRROR:-}" ]; then echo "$DRIP_GIMP_MIRROR"; return; fi
    m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n 's/^URIs:[[:space:]]*\(http[^ ]*debian\/*\)[[:space:]]*$/\1/p' | grep -v security | head -n1 || true)
    if [ -z "$m" ]; then
        m=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' | grep -v security | head -n1 || true)
    fi
    echo "${m:-http://deb.debian.org/debian}"
}

ensure_debootstrap() {
    if ! command -v debootstrap >/dev/null 2>&1; then
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap
    fi
}

in_root() { # DIR CMD...
    dir=$1; shift
    chroot "$dir" env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

# Xvfb + xdotool + ImageMagick: for the GUI test (one Ctrl+Z undoes a run) and the
# README screenshots. Optional: a failure here does not fail the build.
GUI_PKGS="xvfb xdotool x11-apps imagemagick xauth"
install_gui_extras() {
    d=$1
    m=0
    mountpoint -q "$d/proc" || { mount -t proc proc "$d/proc" && m=1; }
    in_root "$d" apt-get install -y -q --no-install-recommends $GUI_PKGS >/dev/null 2>&1 ||
        { in_root "$d" apt-get update -q >/dev/null 2>&1 &&
          in_root "$d" apt-get install -y -q --no-install-recommends $GUI_PKGS >/dev/null 2>&1; } ||
        echo "[gui extras] could not install $GUI_PKGS in $d (GUI test and screenshots will skip)"
    in_root "$d" apt-get clean >/dev/null 2>&1 || true
    [ $m = 1 ] && umount "$d/proc" 2>/dev/null || true
}

# Remove a root, but never through a mount (the tests bind host folders into roots):
# unmount everything below it first and refuse if anything stays mounted.
remove_root() {
    d=$(cd "$1" && pwd -P)
    for m in $(awk -v d="$d/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r); do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
    if awk -v d="$d/" 'index($2, d) == 1 {found=1} END {exit !found}' /proc/mounts; then
        echo "refusing to remove $d: something is still mounted below it" >&2
        return 1
    fi
    rm -rf --one-file-system "$d"
}

build_one() {
    suite=$1
    dir=$ROOTS/$suite
    if [ -f "$dir/$STAMP" ]; then
        echo "[$suite] cached: $dir ($(cat "$dir/$STAMP"))"
        if [ ! -x "$dir/usr/bin/xdotool" ] || [ ! -x "$dir/usr/bin/Xvfb" ]; then
            install_gui_extras "$dir"
        fi
        return 0
    fi
    if [ -e "$dir" ]; then
        echo "[$suite] removing partial root $dir"
        remove_root "$dir" || return 1
    fi
    mkdir -p "$ROOTS"
    m=$(mirror)
    echo "[$suite] debootstrap from $m into $dir"
    case $suite in
        trixie) debootstrap --variant=minbase trixie "$dir" "$m" ;;
        forky)  debootstrap --variant=minbase forky "$dir" "$m" /usr/share/debootstrap/scripts/sid ;;
        *) echo "unknown suite $suite" >&2; return 2 ;;
    esac
    echo 'Acquire::Check-Valid-Until "false";' > "$dir/etc/apt/apt.conf.d/99no-valid-until"
    echo 'APT::Install-Recommends "false";' > "$dir/etc/apt/apt.conf.d/99no-recommends"
    cp /etc/resolv.conf "$dir/etc/resolv.conf" 2>/dev/null || true
    mountpoint -q "$dir/proc" || mount -t proc proc "$dir/proc"
    rc=0
    { in_root "$dir" apt-get update -q &&
      in_root "$dir" apt-get install -y -q --no-install-recommends $PKGS; } || rc=$?
    umount "$dir/proc" 2>/dev/null || true
    if [ $rc = 0 ]; then
        install_gui_extras "$dir"
    fi
    if [ $rc != 0 ]; then
        echo "[$suite] FAILED (apt rc=$rc); removing $dir" >&2
        remove_root "$dir"
        return $rc
    fi
    ver=$(chroot "$dir" dpkg-query -W -f='${Version}' gimp 2>/dev/null || echo '?')
    echo "gimp $ver built $(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$dir/$STAMP"
    echo "[$suite] done: gimp $ver"
}

ensure_debootstrap
suites=${*:-trixie forky}
pids=""
for s in $suites; do
    build_one "$s" > "/tmp/drip-gimp-root-$s.log" 2>&1 &
    pids="$pids $!:$s"
done
status=0
for p in $pids; do
    pid=${p%%:*}; s=${p#*:}
    if wait "$pid"; then tail -n1 "/tmp/drip-gimp-root-$s.log"
    else echo "[$s] build failed, see /tmp/drip-gimp-root-$s.log" >&2; tail -n 20 "/tmp/drip-gimp-root-$s.log" >&2; status=1; fi
done
exit $status
