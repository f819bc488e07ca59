#!/bin/bash
# Make (once) and print the path of a Debian sid chroot with CPython 3.13,
# 3.14 and 3.15, aiohttp and uvloop: the "container" targets of the tests.
# Idempotent: an existing complete chroot is reused; downloaded packages
# are kept in a cache for the next build.
#
#   tests/setup/sid-chroot.sh            -> prints the chroot directory
#   ASYNCPROBE_CACHE=/somewhere ...      -> where to keep it (default below)
set -euo pipefail
CACHE=${ASYNCPROBE_CACHE:-/var/cache/asyncprobe}
DIR=$CACHE/sid-chroot
PKGS=python3.13,python3.14,python3.15,python3-aiohttp,python3-uvloop
STAMP=$DIR/.asyncprobe-complete

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$PKGS" ]; then
	echo "$DIR"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "sid-chroot: need root to debootstrap" >&2
	exit 1
fi
command -v debootstrap >/dev/null || {
	echo "sid-chroot: debootstrap is not installed (make deps)" >&2
	exit 1
}

# the Debian mirror this machine's apt already uses
mirror=$({ grep -rhoE '(URIs:|^deb)[^#]*https?://[^ ]+/debian/?( |$)' \
	/etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null || true; } |
	grep -oE 'https?://[^ ]+/debian/?' | head -n 1 || true)
if [ -z "$mirror" ]; then
	echo "sid-chroot: no Debian mirror found in the apt sources" >&2
	exit 1
fi

mkdir -p "$CACHE/debs"
rm -rf "$DIR"
echo "sid-chroot: debootstrap sid into $DIR from $mirror (about 30 s)" >&2
debootstrap --variant=minbase --include="$PKGS" --cache-dir="$CACHE/debs" \
	sid "$DIR" "$mirror" >"$CACHE/debootstrap.log" 2>&1 || {
	echo "sid-chroot: debootstrap failed; see $CACHE/debootstrap.log" >&2
	tail -n 20 "$CACHE/debootstrap.log" >&2
	exit 1
}
for v in 3.13 3.14 3.15; do
	[ -x "$DIR/usr/bin/python$v" ] || {
		echo "sid-chroot: python$v missing from the chroot" >&2
		exit 1
	}
done
echo "$PKGS" >"$STAMP"
echo "$DIR"
