#!/usr/bin/env bash
# Failover benchmark, keepalived vs vipd in the same run: unplanned failover (link cut right after
# an advert) at 1 s and 100 ms adverts, planned handover (SIGTERM), priorities 70/40. Prints
# markdown tables for docs/benchmarks.md: client-seen outage, the same in unanswered probes, and
# the Backup's takeover from a capture on the Backup; median (min-max) of N runs (default 5),
# runs alternating between the daemons. About 6 minutes with the default 5 runs.
# Memory and CPU are measured by scripts/bench-resources.sh.
#
#   scripts/bench-failover.sh [--bfd] [--runs N] [--only keepalived|vipd]
#
# --bfd: the 1 s cut without and with BFD 50 ms x 3 (vipd: BFD drives Master_Down; keepalived:
# track_bfd), same run.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
    echo "bench-failover.sh: must run as root (it creates network namespaces); try: sudo $0" >&2
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
target/release/bench-failover "$@" &
bench_pid=$!
wait "$bench_pid"
