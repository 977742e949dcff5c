#!/usr/bin/env bash
# Installs the system packages the demo, the benchmark and the namespace tests need.
# Idempotent and quiet: apt runs only when something is missing.
set -euo pipefail

PACKAGES=(
    keepalived      # the baseline the lab compares vipd against
    iproute2        # ip netns / ip link / bridge / tc
    bind9-dnsutils  # dig
    knot-dnsutils   # kdig
    knot            # authoritative upstream for DNS forwarding tests
    dnsperf         # DNS load figures
    iputils-ping    # the client-side outage prober
    arping          # gratuitous ARP checks
    tcpdump         # debugging captures
    ndisc6          # IPv6 neighbour discovery checks
    procps          # ps / pgrep for RSS figures
    nftables        # packet loss in the lab switch (this kernel has no sch_netem)
    podman          # deployment forms: the OCI image and the static pod (scripts/image.sh, lab-deploy)
    runc            # podman's runtime here (crun refuses this host's cgroups; packaging/podman/containers.conf)
    catatonit       # podman builds its pause image from it locally: kube play pulls nothing
    systemd-container  # systemd-nspawn: the unit under a booted systemd (lab-deploy systemd)
    mmdebstrap      # the Debian root that nspawn boots (packaging/nspawn/rootfs.sh)
    prometheus      # promtool check metrics (lab-deploy metrics)
    curl            # HTTP checks from the lab client
    binutils        # objcopy --strip-debug for the image
    frr             # bfdd: a BFD peer of another implementation for the interop scenarios
)

if [[ $(id -u) -ne 0 ]]; then
    echo "setup.sh: must run as root (apt-get and network namespaces need it); try: sudo $0" >&2
    exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
    if [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) != "install ok installed" ]]; then
        missing+=("$p")
    fi
done

if ((${#missing[@]} == 0)); then
    exit 0
fi

echo "setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# apt and debconf chatter goes to a log that is shown only when something fails.
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup.sh: apt-get failed installing: ${missing[*]}" >&2
    exit 1
fi
# The Debian packages enable their services; the lab runs its own instances inside namespaces, so the
# host-wide ones must not grab port 53 or send VRRP on the host's real interfaces.
for svc in keepalived knot frr; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
        systemctl disable --now "$svc" >/dev/null 2>&1 || true
    fi
done
echo "setup.sh: done"
