#!/usr/bin/env bash
# o7s demo: a whole system in a temporary run directory, no root needed.
# Starts an IRMd, bootstraps a local layer, binds an oping server to a name,
# pings it, prints the output, and cleans everything up.
set -euo pipefail
cd "$(dirname "$0")"
echo "== building o7s (release)"
cargo build --release --workspace --bins --quiet
bin="$PWD/target/release"
export PATH="$bin:$PATH"
export O7S_RUNDIR="$(mktemp -d /tmp/o7s-demo.XXXXXX)"
irmd_pid=""
cleanup() {
    [ -n "$irmd_pid" ] && kill "$irmd_pid" 2>/dev/null && wait "$irmd_pid" 2>/dev/null
    rm -rf "$O7S_RUNDIR"
}
trap cleanup EXIT
echo "== irmd --stdout   (run directory $O7S_RUNDIR)"
irmd --stdout > "$O7S_RUNDIR/irmd.log" 2>&1 &
irmd_pid=$!
for _ in $(seq 200); do [ -S "$O7S_RUNDIR/irmd.sock" ] && break; sleep 0.02; done
run() { echo "\$ $*"; "$@"; }
run irm ipcp bootstrap type local name lo layer lo
run irm name reg oping.server layer lo
run irm bind program oping name oping.server auto -- -l
run irm ipcp list
run oping -n oping.server -c 10 -i 100ms
run oping -n oping.server -c 100000 -i 0 -q
echo "== irmd log"
cat "$O7S_RUNDIR/irmd.log"
