#!/bin/bash
# Make (once) and print the path of a runnable Austin, the sampling
# profiler the benchmark compares against.  Bookworm's Austin (1.0) cannot
# read Python 3.11; sid's (3.x) can but wants a newer glibc, so it runs
# with the sid chroot's loader and libraries.  Idempotent; the packages
# are kept in the cache.
#
#   tests/setup/austin.sh                -> prints the austin command
#   ASYNCPROBE_CACHE=/somewhere ...      -> where to keep it (default below)
set -euo pipefail
CACHE=${ASYNCPROBE_CACHE:-/var/cache/asyncprobe}
DIR=$CACHE/austin
PKGS="austin libsframe3 libunwind8"
STAMP=$DIR/.asyncprobe-complete

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$PKGS" ] && [ -x "$DIR/austin" ]; then
	echo "$DIR/austin"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "austin: need root to set up the sid chroot" >&2
	exit 1
fi
ROOT=$("$(dirname "$0")/sid-chroot.sh")

rm -rf "$DIR"
mkdir -p "$DIR/debs" "$DIR/root"
# download with the chroot's apt (sid's package lists), keep the files
chroot "$ROOT" sh -c "mkdir -p /tmp/austin-debs && cd /tmp/austin-debs &&
	apt-get -qq -o Acquire::Check-Valid-Until=false update &&
	apt-get -qq -o Acquire::Check-Valid-Until=false -o APT::Sandbox::User=root download $PKGS" >&2 || {
	echo "austin: apt-get download $PKGS in the sid chroot failed" >&2
	exit 1
}
mv "$ROOT"/tmp/austin-debs/*.deb "$DIR/debs/"
rmdir "$ROOT/tmp/austin-debs"
for deb in "$DIR"/debs/*.deb; do
	dpkg-deb -x "$deb" "$DIR/root"
done
[ -x "$DIR/root/usr/bin/austin" ] || {
	echo "austin: the austin package has no usr/bin/austin" >&2
	exit 1
}
libs=$DIR/root/usr/lib/x86_64-linux-gnu:$ROOT/usr/lib/x86_64-linux-gnu:$ROOT/lib/x86_64-linux-gnu
cat >"$DIR/austin" <<EOF
#!/bin/sh
exec "$ROOT/lib64/ld-linux-x86-64.so.2" --library-path "$libs" \\
	"$DIR/root/usr/bin/austin" "\$@"
EOF
chmod +x "$DIR/austin"
"$DIR/austin" --version >/dev/null 2>&1 || {
	echo "austin: $DIR/austin does not run" >&2
	exit 1
}
echo "$PKGS" >"$STAMP"
echo "$DIR/austin"
