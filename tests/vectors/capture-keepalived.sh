#!/usr/bin/env bash
# Regenerates the keepalived-2.2.7-*.hex fixtures: runs the distribution's keepalived as Master of
# four virtual routers inside a private pair of network namespaces joined by a veth pair, captures
# its adverts with tcpdump on the peer side, and writes each first advert's VRRP payload (IP header
# stripped) as a fixture. Needs root, keepalived, tcpdump and python3. Touches no host interface:
# both veth ends are created directly inside the namespaces, and only 192.0.2.0/24, 2001:db8::/32
# and link-local addresses are used. Everything is torn down on exit, even on failure.
set -euo pipefail

out_dir=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/vipd-vrrp-capture.XXXXXX)
ns_a="vipd-cap-a-$$"
ns_b="vipd-cap-b-$$"
ka_pid=""

cleanup() {
    if [[ -n "$ka_pid" ]]; then kill "$ka_pid" 2>/dev/null || true; wait "$ka_pid" 2>/dev/null || true; fi
    ip netns del "$ns_a" 2>/dev/null || true
    ip netns del "$ns_b" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$ns_a"
ip netns add "$ns_b"
ip -n "$ns_a" link add veth-a type veth peer name veth-b netns "$ns_b"
ip -n "$ns_a" addr add 192.0.2.11/24 dev veth-a
ip -n "$ns_b" addr add 192.0.2.12/24 dev veth-b
ip -n "$ns_a" addr add 2001:db8::11/64 dev veth-a nodad
ip -n "$ns_b" addr add 2001:db8::12/64 dev veth-b nodad
# Fixed link-local addresses so the IPv6 pseudo-header (and so the checksum) is reproducible.
ip -n "$ns_a" link set veth-a addrgenmode none
ip -n "$ns_a" addr add fe80::11/64 dev veth-a nodad
ip -n "$ns_b" addr add fe80::12/64 dev veth-b nodad
ip -n "$ns_a" link set veth-a up
ip -n "$ns_b" link set veth-b up

cat > "$work/keepalived.conf" <<'CONF'
global_defs {
    router_id vipd-capture
    vrrp_garp_master_repeat 1
}
vrrp_instance V2_PASS {
    version 2
    interface veth-a
    state MASTER
    virtual_router_id 14
    priority 70
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass ostest_api_vip
    }
    virtual_ipaddress {
        192.0.2.5/32
    }
}
vrrp_instance V2_NOAUTH {
    version 2
    interface veth-a
    state MASTER
    virtual_router_id 20
    priority 254
    advert_int 3
    virtual_ipaddress {
        192.0.2.30/32
        192.0.2.31/32
    }
}
vrrp_instance V3_IPV4 {
    version 3
    interface veth-a
    state MASTER
    virtual_router_id 93
    priority 40
    advert_int 0.5
    virtual_ipaddress {
        192.0.2.10/32
        192.0.2.40/32
        192.0.2.41/32
    }
}
vrrp_instance V3_IPV6 {
    version 3
    interface veth-a
    state MASTER
    virtual_router_id 51
    priority 200
    advert_int 1
    virtual_ipaddress {
        2001:db8::100/128
        2001:db8::101/128
    }
}
CONF

ip netns exec "$ns_b" timeout 15 tcpdump -i veth-b -U -w "$work/cap.pcap" 'ip proto 112 or ip6 proto 112' \
    2>"$work/tcpdump.log" &
tcpdump_pid=$!
sleep 1
ip netns exec "$ns_a" timeout 12 keepalived --dont-fork --log-console --log-detail --vrrp \
    --use-file "$work/keepalived.conf" --pid "$work/ka.pid" --vrrp_pid "$work/vrrp.pid" \
    >"$work/keepalived.log" 2>&1 &
ka_pid=$!
wait "$tcpdump_pid" || true

python3 - "$work/cap.pcap" "$out_dir" <<'PY'
import ipaddress, struct, sys
pcap, out_dir = sys.argv[1], sys.argv[2]
data = open(pcap, "rb").read()
magic = struct.unpack("<I", data[:4])[0]
endian = "<" if magic in (0xa1b2c3d4, 0xa1b23c4d) else ">"
linktype = struct.unpack(endian + "I", data[20:24])[0]
assert linktype == 1, f"expected Ethernet captures, got link type {linktype}"
pos, seen = 24, {}
while pos + 16 <= len(data):
    _, _, caplen, _ = struct.unpack(endian + "IIII", data[pos:pos + 16])
    frame = data[pos + 16:pos + 16 + caplen]
    pos += 16 + caplen
    ethertype = struct.unpack("!H", frame[12:14])[0]
    ip = frame[14:]
    if ethertype == 0x0800:
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        ttl, src, dst = ip[8], ipaddress.ip_address(ip[12:16]), ipaddress.ip_address(ip[16:20])
        payload = ip[ihl:total]
        family = "ipv4"
    elif ethertype == 0x86DD:
        plen = struct.unpack("!H", ip[4:6])[0]
        ttl, src, dst = ip[7], ipaddress.ip_address(ip[8:24]), ipaddress.ip_address(ip[24:40])
        payload = ip[40:40 + plen]
        family = "ipv6"
    else:
        continue
    key = (payload[0] >> 4, family, payload[1])
    if key in seen or payload[2] == 0:
        continue
    seen[key] = (src, dst, ttl, payload)
names = {
    (2, "ipv4", 14): ("v2-ipv4-pass", "VRRPv2, VRID 14, priority 70, advert_int 1, auth PASS 'ostest_api_vip' (8 bytes sent), VIP 192.0.2.5"),
    (2, "ipv4", 20): ("v2-ipv4-noauth", "VRRPv2, VRID 20, priority 254, advert_int 3, no auth, VIPs 192.0.2.30 192.0.2.31"),
    (3, "ipv4", 93): ("v3-ipv4-50cs", "VRRPv3 over IPv4, VRID 93, priority 40, advert_int 0.5 (50 cs), VIPs 192.0.2.10 192.0.2.40 192.0.2.41; checksum includes the IPv4 pseudo-header (keepalived 2.2.7 always does)"),
    (3, "ipv6", 51): ("v3-ipv6-two-vips", "VRRPv3 over IPv6, VRID 51, priority 200, advert_int 1 (100 cs), VIPs 2001:db8::100 2001:db8::101; checksum includes the IPv6 pseudo-header"),
}
missing = set(names) - set(seen)
assert not missing, f"no advert captured for {missing}"
for key, (stem, what) in names.items():
    src, dst, ttl, payload = seen[key]
    with open(f"{out_dir}/keepalived-2.2.7-{stem}.hex", "w") as f:
        f.write("# Captured from the real keepalived 2.2.7 (Debian bookworm package) with tcpdump,\n")
        f.write("# by tests/vectors/capture-keepalived.sh in private network namespaces.\n")
        f.write(f"# {what}.\n")
        f.write(f"# IP TTL / hop limit as received: {ttl}. VRRP payload only (IP header stripped).\n")
        f.write(f"# src: {src}\n# dst: {dst}\n{payload.hex()}\n")
    print(stem, src, dst, ttl, payload.hex())
PY
