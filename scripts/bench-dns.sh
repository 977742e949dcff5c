#!/usr/bin/env bash
# Local-answer throughput and latency of vipd's DNS server against Knot DNS, side by side on
# loopback with dnsperf (Debian packages dnsperf and knot). Both serve the same cluster names with
# the same number of UDP threads, in the same run, alternating rounds; only the ratios mean
# anything on a shared machine.
#
# Usage: scripts/bench-dns.sh            (env: ROUNDS=3 DURATION=10 WORKERS=1 LATENCY_QPS=20000)
# Prints Markdown tables for docs/benchmarks.md: local answers, then names vipd forwards (to Knot,
# configured as its upstream) against Knot asked directly.
#
# Throughput runs are open-loop with 256 queries outstanding. dnsperf reports only the average
# latency, so p99 comes from a separate run per round at a fixed LATENCY_QPS with per-query
# reporting (-v), where both servers are far from saturation.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WORKERS=${WORKERS:-1}
LATENCY_QPS=${LATENCY_QPS:-20000}
VIPD_PORT=${VIPD_PORT:-5300}
KNOT_PORT=${KNOT_PORT:-5301}
# With one server thread, servers run on CPU 0 and dnsperf on CPU 1, so both servers get the same
# placement. CPU 0 because knotd pins its UDP worker N to CPU N itself, whatever taskset says: with
# the servers on CPU 1, Knot's worker would share CPU 0 with dnsperf (cheaper wake-ups, 5x lower
# p99 measured) while vipd's stayed on the other CPU. PIN=0 turns pinning off.
PIN=${PIN:-1}
server_cpu=()
client_cpu=()
if [ "$PIN" = 1 ] && [ "$WORKERS" = 1 ] && [ "$(nproc)" -ge 2 ]; then
    server_cpu=(taskset -c 0)
    client_cpu=(taskset -c 1)
fi

for tool in dnsperf knotd dig cargo; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install dnsperf knot bind9-dnsutils)" >&2; exit 1; }
done

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/bench-dns.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

(cd "$root" && cargo build --quiet --release -p vipd-dns --example serve)

cd_name=ostest.test.metalkube.org
# The query mix: API and ingress hits, a NODATA (AAAA at a v4-only wildcard), node and PTR names.
cat >"$work/queries" <<EOF
api.$cd_name A
api-int.$cd_name A
console-openshift-console.apps.$cd_name A
oauth-openshift.apps.$cd_name A
console-openshift-console.apps.$cd_name AAAA
master-0.$cd_name A
master-1.$cd_name A
10.2.0.192.in-addr.arpa PTR
EOF
# Names vipd does not own but Knot serves: vipd forwards them to Knot (its upstream here), so after
# the first round they come from the forwarder's cache.
cat >"$work/forwarded" <<EOF
vipd.$cd_name A
$cd_name SOA
$cd_name NS
12.2.0.192.in-addr.arpa PTR
EOF

cat >"$work/cluster.zone" <<EOF
\$ORIGIN $cd_name.
\$TTL 30
@        SOA vipd hostmaster 1 3600 600 86400 30
@        NS  vipd
vipd     A   192.0.2.5
api      A   192.0.2.5
api-int  A   192.0.2.5
*.apps   A   192.0.2.6
master-0 A   192.0.2.10
master-1 A   192.0.2.11
master-2 A   192.0.2.12
EOF
cat >"$work/reverse.zone" <<EOF
\$ORIGIN 2.0.192.in-addr.arpa.
\$TTL 30
@  SOA vipd.$cd_name. hostmaster.$cd_name. 1 3600 600 86400 30
@  NS  vipd.$cd_name.
10 PTR master-0.$cd_name.
11 PTR master-1.$cd_name.
12 PTR master-2.$cd_name.
EOF
cat >"$work/knot.conf" <<EOF
server:
    listen: 127.0.0.1@$KNOT_PORT
    udp-workers: $WORKERS
    tcp-workers: 1
    background-workers: 1
    rundir: $work
log:
  - target: stderr
    any: error
database:
    storage: $work
template:
  - id: default
    storage: $work
    journal-content: none
    zonefile-sync: -1
zone:
  - domain: $cd_name
    file: $work/cluster.zone
  - domain: 2.0.192.in-addr.arpa
    file: $work/reverse.zone
EOF

"${server_cpu[@]}" "$root/target/release/examples/serve" "127.0.0.1:$VIPD_PORT" "$WORKERS" "127.0.0.1:$KNOT_PORT" 2>"$work/vipd.log" &
vipd_pid=$!
pids+=("$vipd_pid")
"${server_cpu[@]}" knotd -c "$work/knot.conf" 2>"$work/knot.log" &
knot_pid=$!
pids+=("$knot_pid")

for port in "$VIPD_PORT" "$KNOT_PORT"; do
    for _ in $(seq 50); do
        dig @127.0.0.1 -p "$port" +time=1 +tries=1 "api.$cd_name" A 2>/dev/null | grep -q 192.0.2.5 && break
        sleep 0.1
    done
    dig @127.0.0.1 -p "$port" +time=1 +tries=1 +short "api.$cd_name" A | grep -q 192.0.2.5 \
        || { echo "server on port $port does not answer; logs in $work" >&2; cat "$work"/*.log >&2; exit 1; }
done

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
vipd_rss_rest=$(rss_kib "$vipd_pid")
knot_rss_rest=$(rss_kib "$knot_pid")

# throughput PORT [QUERY_FILE] -> "qps avg_us lost"
throughput() {
    "${client_cpu[@]}" dnsperf -s 127.0.0.1 -p "$1" -d "${2:-$work/queries}" -l "$DURATION" -c 4 -T 1 -q 256 2>&1 | awk '
        /Queries per second/ {qps=$4}
        /Queries lost/ {lost=$3}
        /Average Latency/ {avg=$4*1e6}
        END {printf "%.0f %.0f %s\n", qps, avg, lost}'
}
# p99 PORT -> p99 latency in microseconds at LATENCY_QPS
p99() {
    "${client_cpu[@]}" dnsperf -s 127.0.0.1 -p "$1" -d "$work/queries" -l 5 -c 4 -T 1 -Q "$LATENCY_QPS" -v 2>/dev/null \
        | awk '/^> / {print $NF*1e6}' | sort -n | awk '{v[NR]=$1} END {i=int(NR*0.99); if (i<1) i=1; printf "%.0f\n", v[i]}'
}

declare -A qps avg lat lost
for round in $(seq "$ROUNDS"); do
    for server in vipd knot; do
        port=$VIPD_PORT
        [ "$server" = knot ] && port=$KNOT_PORT
        read -r q a l < <(throughput "$port")
        qps[$server,$round]=$q
        avg[$server,$round]=$a
        lost[$server,$round]=$l
        lat[$server,$round]=$(p99 "$port")
        echo "round $round $server: $q qps, avg ${a} us, p99 ${lat[$server,$round]} us at $LATENCY_QPS qps, lost $l" >&2
    done
    # Forwarded through vipd to Knot (warm cache after the first seconds) vs Knot directly.
    for server in vipd knot; do
        port=$VIPD_PORT
        [ "$server" = knot ] && port=$KNOT_PORT
        read -r q a l < <(throughput "$port" "$work/forwarded")
        qps[fwd-$server,$round]=$q
        avg[fwd-$server,$round]=$a
        lost[fwd-$server,$round]=$l
        echo "round $round forwarded names, $server: $q qps, avg ${a} us, lost $l" >&2
    done
done
vipd_rss_load=$(rss_kib "$vipd_pid")
knot_rss_load=$(rss_kib "$knot_pid")

echo
echo "dnsperf $(dnsperf -h 2>&1 | awk '/^Version/ {print $2}'), knotd $(knotd --version | awk '{print $NF}'), $(nproc) CPUs, $WORKERS UDP thread(s) each, ${DURATION} s per run, 256 outstanding, pinned: ${server_cpu[*]:-no}, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| round | vipd qps | Knot qps | qps ratio | vipd avg (us) | Knot avg (us) | vipd p99 (us) @${LATENCY_QPS} | Knot p99 (us) @${LATENCY_QPS} | lost vipd/Knot |"
echo "|---|---|---|---|---|---|---|---|---|"
for round in $(seq "$ROUNDS"); do
    ratio=$(awk -v a="${qps[vipd,$round]}" -v b="${qps[knot,$round]}" 'BEGIN {printf "%.2f", a/b}')
    echo "| $round | ${qps[vipd,$round]} | ${qps[knot,$round]} | $ratio | ${avg[vipd,$round]} | ${avg[knot,$round]} | ${lat[vipd,$round]} | ${lat[knot,$round]} | ${lost[vipd,$round]}/${lost[knot,$round]} |"
done
echo
echo "Names vipd forwards (to Knot, its upstream here; from the forwarder's cache once warm) vs the same names asked of Knot directly:"
echo
echo "| round | via vipd qps | Knot direct qps | ratio | via vipd avg (us) | Knot avg (us) | lost via vipd/Knot |"
echo "|---|---|---|---|---|---|---|"
for round in $(seq "$ROUNDS"); do
    ratio=$(awk -v a="${qps[fwd-vipd,$round]}" -v b="${qps[fwd-knot,$round]}" 'BEGIN {printf "%.2f", a/b}')
    echo "| $round | ${qps[fwd-vipd,$round]} | ${qps[fwd-knot,$round]} | $ratio | ${avg[fwd-vipd,$round]} | ${avg[fwd-knot,$round]} | ${lost[fwd-vipd,$round]}/${lost[fwd-knot,$round]} |"
done
echo
echo "RSS (KiB): vipd $vipd_rss_rest at rest, $vipd_rss_load after load; Knot $knot_rss_rest at rest, $knot_rss_load after load"
