#!/bin/bash
# `make demo`: start a misbehaving aiohttp service, send it some requests,
# and let asyncprobe name the lines that stall its event loop.
set -u
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
PORT=${DEMO_PORT:-18080}
SECONDS_TO_WATCH=${DEMO_SECONDS:-6}

if [ "$(id -u)" -ne 0 ]; then
	echo "make demo: asyncprobe needs root (BPF); run: sudo make demo" >&2
	exit 1
fi

$PY tests/workloads/demo_service.py "$PORT" &
svc=$!
client=
cleanup() {
	[ -n "$client" ] && kill "$client" 2>/dev/null
	kill "$svc" 2>/dev/null
	wait 2>/dev/null
}
trap cleanup EXIT

for _ in $(seq 50); do
	$PY -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$PORT/', timeout=1)" 2>/dev/null && break
	sleep 0.1
done

echo "demo service: PID $svc on http://127.0.0.1:$PORT (/report /nap /rows are the culprits)"
echo "running: ./asyncprobe -p $svc -d $SECONDS_TO_WATCH"
echo

# traffic, starting once asyncprobe is attached
$PY - "$PORT" <<'PYEOF' &
import sys, time, urllib.request
port = sys.argv[1]
time.sleep(1.0)
for path in ["/", "/report", "/", "/nap", "/rows", "/", "/report", "/nap", "/rows"]:
    try:
        urllib.request.urlopen("http://127.0.0.1:%s%s" % (port, path), timeout=5).read()
    except OSError as exc:
        print("request %s failed: %s" % (path, exc), file=sys.stderr)
    time.sleep(0.2)
PYEOF
client=$!

./asyncprobe -p "$svc" -d "$SECONDS_TO_WATCH"
