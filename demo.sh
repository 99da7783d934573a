#!/usr/bin/env bash
# o7s demo: build o7s, then `o7s-lab demo`: a 4-node network with a unicast layer, pinged
# and measured across, its status and picture, then removed. As root the nodes are network
# namespaces joined by Ethernet (veth) links; without root, IRMds on this host over UDP.
set -euo pipefail
cd "$(dirname "$0")"
echo "== building o7s (release)"
cargo build --release --workspace --bins --quiet
exec "${CARGO_TARGET_DIR:-$PWD/target}/release/o7s-lab" demo "$@"
