#!/usr/bin/env bash
# DNS cost per unit of work of the daemon as shipped: `vipd run` with a real configuration
# ([dns] only, the default worker count) against Knot DNS for local answers and against dnsdist
# for forwarded names, all in one run, in a network namespace of their own (no traffic leaves it).
# Headline: CPU time per answered query at a fixed rate; also p50/p99 and lost queries at that
# rate, and saturation qps; every round and min/median/max of the ratios (scripts/bench_dns.py
# says how each figure is taken). The tables go to docs/benchmarks.md.
#
#   sudo scripts/bench-dns.sh [--rounds N] [--duration S] [--rate QPS] [--workers N]
#   defaults: 5 rounds, 8 s per run, 30000 qps, workers = CPUs; about 6 minutes.
#
#   sudo scripts/bench-dns.sh --scale [--sizes 10,1000,10000] [--rounds N] [--duration S] [--rate QPS]
#   cost growth with node records (issue 13 point 4): vipd alone, one process per size, CPU per
#   query, p50/p99, lost, RSS/PSS; no Knot or dnsdist (so dnsdist is not installed for it).
#
#   sudo scripts/bench-dns.sh --instructions [--duration S] [--rate QPS]
#   user-space instructions per query (callgrind; installs valgrind), local and forwarded
#   names, vipd alone: the deterministic figure for A/B comparisons of a change (default 8 s at
#   2000 qps per kind).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
    echo "bench-dns.sh: must run as root (it creates a network namespace); try: sudo $0" >&2
    exit 1
fi

bash scripts/setup.sh
no_dnsdist=0
for a in "$@"; do if [[ $a == --scale || $a == --instructions ]]; then no_dnsdist=1; fi; done
for a in "$@"; do
    if [[ $a == --instructions ]] && ! command -v valgrind >/dev/null; then
        echo "bench-dns.sh: installing valgrind (callgrind counts the instructions)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q valgrind >/dev/null
    fi
done
if [[ $no_dnsdist -eq 0 ]] && ! command -v dnsdist >/dev/null; then
    echo "bench-dns.sh: installing dnsdist (the forwarder vipd is compared with)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q dnsdist >/dev/null
    # The package starts a system dnsdist on port 53; this benchmark starts its own.
    systemctl disable --now dnsdist >/dev/null 2>&1 || true
fi
cargo build --release --quiet -p vipd
exec python3 scripts/bench_dns.py --vipd "$PWD/target/release/vipd" "$@"
