#!/usr/bin/env python3
"""Turns a tcpdump capture of BFD control packets into tests/vectors/bfd/*.hex fixtures.

Usage: pcap-to-vectors.py CAPTURE.pcap OUT_DIR "bfdd version 8.4.4"

Writes the first packet of each kind (Down, Init, Up, Poll, Final, AdminDown, ...), per address family, as the UDP
payload in hex with header lines naming the IP addresses, ports, TTL / hop limit and decoded fields.
Ethernet link type only (what tcpdump writes for a veth).
"""
import ipaddress
import struct
import sys

STATES = ["admin-down", "down", "init", "up"]


def packets(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype != 1:
        sys.exit(f"link type {linktype} is not Ethernet")
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        ethertype = struct.unpack("!H", frame[12:14])[0]
        ip = frame[14:]
        if ethertype == 0x0800:
            ihl = (ip[0] & 0x0F) * 4
            total = struct.unpack("!H", ip[2:4])[0]
            ttl, proto = ip[8], ip[9]
            src, dst = ipaddress.ip_address(ip[12:16]), ipaddress.ip_address(ip[16:20])
            udp = ip[ihl:total]
            family = "ipv4"
        elif ethertype == 0x86DD:
            plen = struct.unpack("!H", ip[4:6])[0]
            proto, ttl = ip[6], ip[7]
            src, dst = ipaddress.ip_address(ip[8:24]), ipaddress.ip_address(ip[24:40])
            udp = ip[40:40 + plen]
            family = "ipv6"
        else:
            continue
        if proto != 17:
            continue
        sport, dport, ulen = struct.unpack("!HHH", udp[:6])
        yield family, src, dst, ttl, sport, dport, udp[8:ulen]


def kind(payload):
    """State, diagnostic if any, P or F, and for a Poll its Desired Min TX (a Poll is sent on
    going Up and again on every timer change, so each is its own vector)."""
    state = STATES[payload[1] >> 6]
    diag = payload[0] & 0x1F
    name = state if diag == 0 else f"{state}-diag{diag}"
    if payload[1] & 0x20:
        tx = struct.unpack("!I", payload[12:16])[0]
        return f"{name}-poll-tx{tx // 1000}ms"
    if payload[1] & 0x10:
        return f"{name}-final"
    return name


def main():
    pcap, out_dir, version = sys.argv[1], sys.argv[2], sys.argv[3]
    number = version.split()[-1]
    seen = set()
    for family, src, dst, ttl, sport, dport, payload in packets(pcap):
        k = kind(payload)
        print(f"{family} {src}:{sport} -> {dst}:{dport} ttl {ttl} {k} {payload.hex()}")
        if (family, k) in seen:
            continue
        seen.add((family, k))
        b1 = payload[1]
        my, your, tx, rx, echo = struct.unpack("!IIIII", payload[4:24])
        name = f"{out_dir}/frr-{number}-{family}-{k}.hex"
        with open(name, "w") as f:
            f.write(f"# Captured from FRR's bfdd ({version}, Debian bookworm package) with tcpdump,\n")
            f.write("# by tests/vectors/bfd/capture-frr.sh in private network namespaces.\n")
            f.write(
                f"# version {payload[0] >> 5}, diag {payload[0] & 0x1F}, state {STATES[b1 >> 6]}, "
                f"flags P={b1 >> 5 & 1} F={b1 >> 4 & 1} C={b1 >> 3 & 1} A={b1 >> 2 & 1} "
                f"D={b1 >> 1 & 1} M={b1 & 1}, detect mult {payload[2]}, length {payload[3]},\n"
            )
            f.write(
                f"# my discriminator {my:#010x}, your discriminator {your:#010x}, desired min tx {tx} us, "
                f"required min rx {rx} us, required min echo rx {echo} us.\n"
            )
            f.write("# UDP payload only (IP and UDP headers stripped).\n")
            f.write(f"# src: {src}\n# dst: {dst}\n# sport: {sport}\n# dport: {dport}\n# ttl: {ttl}\n")
            f.write(payload.hex() + "\n")


main()
