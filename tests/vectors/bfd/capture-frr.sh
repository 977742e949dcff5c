#!/usr/bin/env bash
# Regenerates the frr-*.hex BFD fixtures: runs the distribution's FRR bfdd twice, one per private
# network namespace joined by a veth pair, with single-hop sessions over IPv4 and IPv6, captures the
# BFD control packets (UDP 3784) with tcpdump, and writes one fixture per interesting packet
# (Down, Init, Up, Poll, Final, AdminDown, Down after detection timeout; both families). A timer
# change on one side (vtysh) triggers a Poll/Final exchange, `shutdown` AdminDown, and stopping one
# bfdd the detection timeout. Needs root, frr, tcpdump and python3. Touches no host interface: both veth
# ends are created inside the namespaces, and only 192.0.2.0/24 and 2001:db8::/32 are used.
# Everything is torn down on exit, even on failure.
set -euo pipefail

out_dir=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/vipd-bfd-capture.XXXXXX)
chmod 755 "$work"
ns_a="vipd-bfd-a-$$"
ns_b="vipd-bfd-b-$$"
pids=()

cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    for f in "$work"/a/bfdd.pid "$work"/b/bfdd.pid; do
        if [[ -s "$f" ]]; then kill "$(cat "$f")" 2>/dev/null || true; fi
    done
    ip netns del "$ns_a" 2>/dev/null || true
    ip netns del "$ns_b" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$ns_a"
ip netns add "$ns_b"
ip -n "$ns_a" link add veth-a type veth peer name veth-b netns "$ns_b"
ip -n "$ns_a" addr add 192.0.2.1/24 dev veth-a
ip -n "$ns_b" addr add 192.0.2.2/24 dev veth-b
ip -n "$ns_a" addr add 2001:db8::1/64 dev veth-a nodad
ip -n "$ns_b" addr add 2001:db8::2/64 dev veth-b nodad
ip -n "$ns_a" link set lo up
ip -n "$ns_b" link set lo up
ip -n "$ns_a" link set veth-a up
ip -n "$ns_b" link set veth-b up

# side NAME NS PEER4 LOCAL4 PEER6 LOCAL6: config, then bfdd in the foreground under its own paths.
start_bfdd() {
    local name=$1 ns=$2 peer4=$3 local4=$4 peer6=$5 local6=$6
    mkdir -p "$work/$name"
    chmod 777 "$work/$name"
    cat > "$work/$name/bfdd.conf" <<CONF
bfd
 peer $peer4 local-address $local4
 !
 peer $peer6 local-address $local6
 !
!
CONF
    ip netns exec "$ns" /usr/lib/frr/bfdd \
        -f "$work/$name/bfdd.conf" -i "$work/$name/bfdd.pid" \
        --vty_socket "$work/$name" --bfdctl "$work/$name/bfdd.sock" \
        -z "$work/$name/zserv.api" -P 0 --log "file:$work/$name/bfdd.log" \
        >"$work/$name/stdout" 2>&1 &
    pids+=($!)
}

ip netns exec "$ns_b" tcpdump -i veth-b -n -U -s 0 -w "$work/bfd.pcap" udp port 3784 \
    >"$work/tcpdump.log" 2>&1 &
pids+=($!)
sleep 1

# A alone: it sends Down with Your Discriminator 0 at the slow rate.
start_bfdd a "$ns_a" 192.0.2.2 192.0.2.1 2001:db8::2 2001:db8::1
sleep 3
# B joins: Down -> Init -> Up on both sides.
start_bfdd b "$ns_b" 192.0.2.1 192.0.2.2 2001:db8::1 2001:db8::2
sleep 4
# A timer change while Up: A polls (P), B answers with Final (F).
for peer in "192.0.2.2 local-address 192.0.2.1" "2001:db8::2 local-address 2001:db8::1"; do
    vtysh --vty_socket "$work/a" -c "configure terminal" -c "bfd" -c "peer $peer" \
        -c "transmit-interval 200" -c "receive-interval 250"
done
sleep 3
vtysh --vty_socket "$work/a" -c "show bfd peers" > "$work/peers.txt" || true
# A shuts its IPv4 session down: AdminDown (diag 7) from A, Down (diag 3, neighbor signalled) from B.
vtysh --vty_socket "$work/a" -c "configure terminal" -c "bfd" \
    -c "peer 192.0.2.2 local-address 192.0.2.1" -c "shutdown"
sleep 3
# B's bfdd stops: A's IPv6 session times out (Down, diag 1) after detect mult * interval.
kill "$(cat "$work/b/bfdd.pid")"
sleep 3
/usr/lib/frr/bfdd -v | head -1 > "$work/version.txt"
kill "${pids[0]}" 2>/dev/null || true
sleep 1

python3 "$out_dir/pcap-to-vectors.py" "$work/bfd.pcap" "$out_dir" "$(cat "$work/version.txt")"
cat "$work/peers.txt"
