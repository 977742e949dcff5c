#!/usr/bin/env bash
# Builds the vipd OCI image offline: the release binary plus exactly the shared libraries `ldd`
# names (and the loader) in a FROM-scratch image (packaging/Containerfile). Nothing is pulled.
#
#   scripts/image.sh                      # cargo build --release -p vipd, then the image
#   scripts/image.sh --binary PATH        # use an already built vipd (glibc, dynamically linked)
#   scripts/image.sh --tag NAME           # default localhost/vipd:latest
#   scripts/image.sh --save FILE.tar      # also write the image as an OCI archive
#
# Uses podman if installed, else buildah; fails when neither is. As root on a host whose crun
# cannot run containers, point CONTAINERS_CONF at packaging/podman/containers.conf (runc).
set -euo pipefail
cd "$(dirname "$0")/.."

BINARY=
TAG=localhost/vipd:latest
SAVE=
while (($#)); do
    case $1 in
        --binary) BINARY=$2; shift 2 ;;
        --tag) TAG=$2; shift 2 ;;
        --save) SAVE=$2; shift 2 ;;
        *) echo "image.sh: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
    esac
done

if command -v podman >/dev/null 2>&1; then
    ENGINE=(podman build)
elif command -v buildah >/dev/null 2>&1; then
    ENGINE=(buildah bud)
else
    echo "image.sh: FAILED: neither podman nor buildah is installed (apt-get install podman)" >&2
    exit 1
fi
for tool in ldd objcopy; do
    command -v "$tool" >/dev/null 2>&1 || { echo "image.sh: FAILED: $tool not found (apt-get install binutils libc-bin)" >&2; exit 1; }
done

if [[ -z $BINARY ]]; then
    echo "image.sh: cargo build --release -p vipd"
    cargo build --release --locked --quiet -p vipd
    BINARY=target/release/vipd
fi
[[ -x $BINARY ]] || { echo "image.sh: FAILED: $BINARY is not an executable" >&2; exit 1; }

CTX=target/image/context
rm -rf "$CTX"
mkdir -p "$CTX/rootfs/usr/local/bin" "$CTX/rootfs/etc/vipd" "$CTX/rootfs/run/vipd"
# Debug info stays on the build machine; the image carries the code only.
objcopy --strip-debug "$BINARY" "$CTX/rootfs/usr/local/bin/vipd"
# Every library ldd resolves, at the path the loader will look for it, plus the loader itself.
# A library ldd cannot find is an error, not something to discover at the first start.
if ldd "$BINARY" | grep -q 'not found'; then
    echo "image.sh: FAILED: ldd $BINARY: $(ldd "$BINARY" | grep 'not found')" >&2
    exit 1
fi
while read -r lib; do
    mkdir -p "$CTX/rootfs$(dirname "$lib")"
    cp -L "$lib" "$CTX/rootfs$lib"
done < <(ldd "$BINARY" | grep -oE '(/[^ ]+)' | sort -u)
# The control socket's directory, writable by the image's user (65534).
chown 65534:65534 "$CTX/rootfs/run/vipd"
chmod 0755 "$CTX/rootfs/run/vipd"
cp packaging/Containerfile "$CTX/Containerfile"

echo "image.sh: ${ENGINE[*]} -t $TAG (context: $(find "$CTX/rootfs" -type f | sed "s|^$CTX/rootfs||" | tr '\n' ' '))"
"${ENGINE[@]}" --quiet -f "$CTX/Containerfile" -t "$TAG" "$CTX" >/dev/null
if [[ ${ENGINE[0]} == podman ]]; then
    size=$(podman image inspect --format '{{.Size}}' "$TAG")
    echo "image.sh: built $TAG, $((size / 1024)) KiB ($(du -sk "$CTX/rootfs" | cut -f1) KiB of files)"
fi
if [[ -n $SAVE ]]; then
    rm -f "$SAVE"
    podman save --format oci-archive -o "$SAVE" "$TAG"
    echo "image.sh: saved $SAVE"
fi
