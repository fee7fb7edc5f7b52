#!/bin/bash
# An edge daemon's RSS as shipped (issue 10: <= 120 MB under transfer): real `bin/shoal.js`
# daemons run as executables (so with the node flags of its first line), a gateway seeding a
# bundle of --size-mb (default 256) random MiB on loopback, an edge that bootstraps from it and
# runs `shoal pull`. Prints, per run: the edge's RSS idle and connected (5 s after start), its
# peak (VmHWM) over the pull, the gateway's peak, the pull's wall time and the edge's CPU.
#
#   scripts/bench-edge-rss.sh [--size-mb 256] [--runs 3]
#
# Needs a build (`npm run build`). The peak follows the pull's speed (bytes in flight, chunks
# waiting for the disk): on a shared machine give the load next to the figures.
set -euo pipefail
SIZE_MB=256
RUNS=3
while [ $# -gt 0 ]; do
  case $1 in
    --size-mb) SIZE_MB=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
BIN=$(cd "$(dirname "$0")/.." && pwd)/bin/shoal.js
WORK=$(mktemp -d /tmp/shoal-edge-rss-XXXX)
PIDS=()
cleanup () {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
mb () { awk -v f="$1:" '$1 == f { printf "%.1f", $2 / 1024 }' "/proc/$2/status"; }
started () { for _ in $(seq 300); do grep -q '"daemon started"' "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "no daemon start in $1" >&2; exit 1; }

mkdir -p "$WORK/tree"
for i in 0 1 2 3; do head -c $((SIZE_MB * 1024 * 1024 / 4)) /dev/urandom > "$WORK/tree/layer-$i.bin"; done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
for run in $(seq "$RUNS"); do
  G=$WORK/g$run; E=$WORK/e$run
  ID=$("$BIN" --data "$G" push "$WORK/tree" 2>/dev/null | tail -1)
  "$BIN" --data "$G" --json daemon --gateway --registry 127.0.0.1:0 --listen /ip4/127.0.0.1/tcp/0 --no-mdns > "$G.log" 2>&1 &
  GP=$!; PIDS+=("$GP")
  started "$G.log"
  GADDR=$(grep '"daemon started"' "$G.log" | grep -o '/ip4/127.0.0.1/tcp/[0-9]*/p2p/[A-Za-z0-9]*' | head -1)
  "$BIN" --data "$E" --json daemon --registry 127.0.0.1:0 --listen /ip4/127.0.0.1/tcp/0 --no-mdns --bootstrap "$GADDR" --trust "${GADDR##*/}" > "$E.log" 2>&1 &
  EP=$!; PIDS+=("$EP")
  started "$E.log"
  sleep 5
  IDLE=$(mb VmRSS "$EP")
  T0=$(date +%s.%N)
  "$BIN" --data "$E" pull "$ID" > "$E.pull" 2>&1
  T1=$(date +%s.%N)
  CPU=$(awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$EP/stat")
  echo "run $run: edge idle $IDLE MB, peak $(mb VmHWM "$EP") MB; gateway peak $(mb VmHWM "$GP") MB; pull $(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.1f", b - a }') s; edge CPU since start $CPU s"
  kill "$EP" "$GP"; wait "$EP" "$GP" 2>/dev/null || true
  PIDS=()
  rm -rf "$G" "$E"
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
