#!/usr/bin/env bash
# Wrong take-overs under packet loss, with and without BFD: three 3-node clusters side by side
# (vipd with BFD 50 ms x 3, vipd without BFD, keepalived), 1 s adverts, nobody fails; about 10 %
# and about 30 % loss between every two nodes, N minutes each (default 10, so about 21 minutes).
# Prints a markdown table for docs/benchmarks.md: VIP moves, time with two holders, BFD
# take-overs and how many the live Master refuted.
#
#   scripts/bench-bfd-loss.sh [--minutes N]
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
    echo "bench-bfd-loss.sh: must run as root (it creates network namespaces); try: sudo $0" >&2
    exit 1
fi

bash scripts/setup.sh
cargo build --release --quiet -p vipd -p vipd-integration --bins
export VIPD_BIN=$PWD/target/release/vipd

bench_pid=
cleanup() {
    if [[ -n $bench_pid ]]; then
        kill "$bench_pid" 2>/dev/null || true
        wait "$bench_pid" 2>/dev/null || true
        for ns in $(ip netns list | awk '{print $1}' | grep "^vl${bench_pid}_" || true); do
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
            ip netns del "$ns" 2>/dev/null || true
        done
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC'); machine: $(nproc) CPUs, kernel $(uname -r);" \
    "$(keepalived --version 2>&1 | head -1); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
target/release/bench-bfd-loss "$@" &
bench_pid=$!
wait "$bench_pid"
