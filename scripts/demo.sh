#!/usr/bin/env bash
# A guided demo: three vipd nodes and a client in network namespaces. Shows who holds the VIP,
# pulls the Master's cable, shows the takeover and the outage the client measured, plugs it back
# in. Everything runs in throw-away namespaces (192.0.2.0/24); the host's interfaces are untouched.
#
#   scripts/demo.sh                 # vipd
#   scripts/demo.sh --keepalived    # the same demo with keepalived, for comparison
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
    echo "demo.sh: must run as root (it creates network namespaces); try: sudo $0" >&2
    exit 1
fi

bash scripts/setup.sh

echo "== Building vipd and the lab (release) ..."
cargo build --release --quiet -p vipd -p vipd-integration --bins

export VIPD_BIN=$PWD/target/release/vipd
demo_pid=
cleanup() {
    # The demo removes its own lab; this covers Ctrl-C, which kills it before it can.
    if [[ -n $demo_pid ]]; then
        kill "$demo_pid" 2>/dev/null || true
        wait "$demo_pid" 2>/dev/null || true
        for ns in $(ip netns list | awk '{print $1}' | grep "^vl${demo_pid}_" || true); do
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
            ip netns del "$ns" 2>/dev/null || true
        done
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

target/release/lab-demo "$@" &
demo_pid=$!
wait "$demo_pid"
