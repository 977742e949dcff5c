#!/usr/bin/env bash
# Resource benchmark, keepalived vs vipd in the same run: memory (RSS, PSS, USS from
# /proc/PID/smaps_rollup) of a Master and a Backup running two instances at 1 s adverts, 30 s
# after the election, and CPU (run time from schedstat over 30 s) with 1 s and 10 ms adverts, one and two
# instances. Prints markdown tables for docs/benchmarks.md; median (min-max) of N rounds
# (default 3). About 6 minutes with the defaults.
#
# --instructions instead counts user-space instructions per advert (valgrind's callgrind, one
# instance at 10 ms adverts, Master and Backup, keepalived and vipd): a figure that does not
# depend on the machine's load. Each daemon runs twice under callgrind, a short run and one
# --seconds longer, each to its exit; per advert = (difference in instructions) / (difference
# in adverts), so start-up and shutdown cancel out. (Dumping from a live process with
# callgrind_control froze vipd's threads for ~100 ms, long enough for the peer to take over.)
# KEEP_CALLGRIND=1 keeps the callgrind files (target dirs vipd-callgrind-<daemon>-<node>-<N>s)
# for callgrind_annotate. About 2 minutes per round with --seconds 10.
#
# --growth instead runs 1, 10 and 50 instances at 100 ms adverts and prints what one more
# instance costs (CPU, PSS, anonymous memory), for both daemons.
#
#   scripts/bench-resources.sh [--rounds N] [--seconds S] [--only keepalived|vipd]
#   scripts/bench-resources.sh --instructions [--rounds N] [--seconds S]
#   scripts/bench-resources.sh --growth [--rounds N] [--seconds S]
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
    echo "bench-resources.sh: must run as root (it creates network namespaces); try: sudo $0" >&2
    exit 1
fi

bash scripts/setup.sh
if [[ " $* " == *" --instructions "* ]] && ! command -v valgrind >/dev/null; then
    echo "bench-resources.sh: installing valgrind (callgrind counts the instructions)" >&2
    apt-get install -y -qq --no-install-recommends valgrind >/dev/null
fi
cargo build --release --quiet -p vipd -p vipd-integration --bins
export VIPD_BIN=$PWD/target/release/vipd

bench_pid=
cleanup() {
    if [[ -n $bench_pid ]]; then
        kill "$bench_pid" 2>/dev/null || true
        wait "$bench_pid" 2>/dev/null || true
        # Only this run's labs: their namespace names carry the benchmark's pid.
        for ns in $(ip netns list | awk '{print $1}' | grep "^vl${bench_pid}_" || true); do
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
            ip netns del "$ns" 2>/dev/null || true
        done
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC'); machine: $(nproc) CPUs, kernel $(uname -r);" \
    "$(keepalived --version 2>&1 | head -1); vipd binary $(stat -c %s "$VIPD_BIN") bytes;" \
    "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
target/release/bench-resources "$@" &
bench_pid=$!
wait "$bench_pid"
