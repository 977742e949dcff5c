#!/bin/bash
# Runs the release vipd as an unprivileged user holding only the unit's ambient capabilities
# (CAP_NET_ADMIN, CAP_NET_RAW, CAP_NET_BIND_SERVICE), in a network namespace this script
# creates and deletes, with 192.0.2.0/24 addresses only. Checks: it starts, takes the VIP,
# answers DNS on port 53, serves the control socket, and releases the VIP on SIGTERM.
# With [resolver] it also shows what writing a root-owned resolv.conf needs.
#
# Usage (root): packaging/check-capabilities.sh [path/to/vipd]   (default target/release/vipd)
set -euo pipefail

VIPD=$(realpath "${1:-target/release/vipd}")
NS=vipdcap$$
WORK=$(mktemp -d /tmp/vipd-capcheck.XXXXXX)
PID=
CAPS=+net_admin,+net_raw,+net_bind_service

cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

ip netns add "$NS"
in_ns() { ip netns exec "$NS" "$@"; }
in_ns ip link set lo up
in_ns ip link add veth0 type veth peer name veth1
in_ns ip addr add 192.0.2.11/24 dev veth0
in_ns ip addr add 192.0.2.12/24 dev veth1
in_ns ip link set veth0 up
in_ns ip link set veth1 up

mkdir -p "$WORK/run" "$WORK/etc"
chown nobody:nogroup "$WORK/run"      # what RuntimeDirectory=vipd provides
chmod 0755 "$WORK"
printf 'nameserver 198.51.100.1\n' > "$WORK/upstream.conf"
printf 'nameserver 198.51.100.1\n' > "$WORK/etc/resolv.conf"   # root-owned, in a root-owned dir

write_config() {
    cat > "$WORK/vipd.toml" <<TOML
cluster_name = "captest"
base_domain = "example.test"

[[instance]]
name = "api"
vips = ["192.0.2.5"]
interface = "veth0"
priority = 150

[dns]
listen = ["192.0.2.11:53"]
api_instances = ["api"]
ingress_vips = ["192.0.2.6"]
resolv_conf = "$WORK/upstream.conf"

[control]
socket = "$WORK/run/vipd.sock"
$1
TOML
}

run_vipd() { # $1 = ambient capability list
    # Not through in_ns: $! must be vipd itself (ip netns exec and setpriv exec into it).
    ip netns exec "$NS" setpriv --reuid=nobody --regid=nogroup --clear-groups \
        --inh-caps="$1" --ambient-caps="$1" --bounding-set="$1" \
        "$VIPD" run --config "$WORK/vipd.toml" >"$WORK/log" 2>&1 &
    PID=$!
}

wait_for() { # $1 = description, rest = command; at most 10 s
    local what=$1; shift
    for _ in $(seq 1 50); do
        if "$@" >/dev/null 2>&1; then echo "ok: $what"; return 0; fi
        sleep 0.2
    done
    echo "FAILED: $what"; cat "$WORK/log"; return 1
}

echo "== 1. three capabilities, no [resolver]"
write_config ""
run_vipd "$CAPS"
wait_for "VIP 192.0.2.5 added on veth0" sh -c "ip netns exec $NS ip -4 addr show dev veth0 | grep -q 'inet 192.0.2.5/32'"
wait_for "DNS answers api.captest.example.test on 192.0.2.11:53" \
    sh -c "ip netns exec $NS dig +short +time=1 +tries=1 @192.0.2.11 api.captest.example.test | grep -qx 192.0.2.5"
wait_for "control socket answers (vipd status)" in_ns "$VIPD" status --socket "$WORK/run/vipd.sock"
echo "process: $(grep -E '^(Uid|CapEff|CapAmb)' /proc/$PID/status | tr '\t\n' '  ')"
kill -TERM "$PID"; wait "$PID" || true; PID=
if in_ns ip -4 addr show dev veth0 | grep -q 'inet 192.0.2.5/'; then
    echo "FAILED: VIP still present after SIGTERM"; cat "$WORK/log"; exit 1
fi
echo "ok: VIP released on SIGTERM"

echo "== 2. [resolver] with the same three capabilities (root-owned resolv.conf)"
write_config "[resolver]
manage = true
target = \"$WORK/etc/resolv.conf\"
source = \"$WORK/upstream.conf\"
nameserver = \"192.0.2.11\""
run_vipd "$CAPS"
sleep 2
if kill -0 "$PID" 2>/dev/null; then echo "unexpected: vipd runs"; else
    wait "$PID" || true; PID=
    echo "expected refusal: $(grep -o 'resolver.*' "$WORK/log" | tail -1)"
fi

echo "== 3. [resolver] with +dac_override,+chown (the resolver drop-in)"
run_vipd "$CAPS,+dac_override,+chown"
wait_for "resolv.conf lists this node first" grep -qx 'nameserver 192.0.2.11' "$WORK/etc/resolv.conf"
echo "owner kept: $(stat -c '%U:%G %a' "$WORK/etc/resolv.conf")"
kill -TERM "$PID"; wait "$PID" || true; PID=
if [ "$(cat "$WORK/etc/resolv.conf")" = "nameserver 198.51.100.1" ]; then
    echo "ok: resolv.conf restored on SIGTERM"
else
    echo "FAILED: resolv.conf not restored:"; cat "$WORK/etc/resolv.conf"; exit 1
fi
echo "== 4. [resolver] after SIGKILL: the next start recognises its own file"
run_vipd "$CAPS,+dac_override,+chown"
wait_for "resolv.conf lists this node first" grep -qx 'nameserver 192.0.2.11' "$WORK/etc/resolv.conf"
kill -KILL "$PID"; wait "$PID" || true; PID=
head -1 "$WORK/etc/resolv.conf"
run_vipd "$CAPS,+dac_override,+chown"
wait_for "restarted vipd logged the recovery" grep -q 'did not stop cleanly' "$WORK/log"
kill -TERM "$PID"; wait "$PID" || true; PID=
if [ "$(cat "$WORK/etc/resolv.conf")" = "nameserver 198.51.100.1" ]; then
    echo "ok: the original (not vipd's own output) restored after SIGKILL + restart"
else
    echo "FAILED: after SIGKILL + restart:"; cat "$WORK/etc/resolv.conf"; exit 1
fi
echo "all checks passed"
