#!/usr/bin/env bash
# Builds (once) a minimal Debian bookworm with systemd as a directory tree, the root that
# `lab-deploy systemd` boots with `systemd-nspawn -b` to run packaging/systemd/vipd.service
# under a real systemd. The tree is cached under target/nspawn/, keyed on this script's content:
# edit the script and the next run builds a new one.
#
#   packaging/nspawn/rootfs.sh            # prints the path of the (cached) root
set -euo pipefail
cd "$(dirname "$0")/../.."

command -v mmdebstrap >/dev/null 2>&1 || { echo "rootfs.sh: FAILED: mmdebstrap is not installed (apt-get install mmdebstrap)" >&2; exit 1; }

key=$(sha256sum "$0" | cut -c1-12)
root=$PWD/target/nspawn/rootfs-$key
if [[ -f $root/.complete ]]; then
    echo "$root"
    exit 0
fi
rm -rf "$PWD"/target/nspawn/rootfs-* 
mkdir -p "$PWD/target/nspawn"
log=$PWD/target/nspawn/mmdebstrap.log
# minbase + systemd: PID 1, journald, systemctl, systemd-analyze, and logind with polkit (as
# on a real node) so vipd's shutdown delay lock and `systemctl poweroff` go through logind. No
# network configuration inside (the lab gives eth0 its address from outside) and no getty.
if ! mmdebstrap --variant=minbase --mode=root \
        --include=systemd,systemd-sysv,dbus,libpam-systemd,polkitd \
        --customize-hook='chroot "$1" systemctl mask systemd-networkd.service systemd-resolved.service systemd-timesyncd.service getty@tty1.service console-getty.service' \
        --customize-hook='echo vipd-lab > "$1/etc/hostname"' \
        --customize-hook='rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*' \
        bookworm "$root.tmp" http://deb.debian.org/debian >"$log" 2>&1; then
    tail -20 "$log" >&2
    echo "rootfs.sh: FAILED: mmdebstrap (full log: $log)" >&2
    rm -rf "$root.tmp"
    exit 1
fi
mv "$root.tmp" "$root"
touch "$root/.complete"
echo "$root"
