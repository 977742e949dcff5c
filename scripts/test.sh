#!/usr/bin/env bash
# The whole test suite: formatting, lints, build, unit + property tests, then the network-namespace
# scenario tests (keepalived baseline and vipd), which need root.
set -uo pipefail

cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
    echo "test.sh: FAILED before starting: must run as root; the scenario tests create network namespaces." >&2
    echo "test.sh: run: sudo $0" >&2
    exit 1
fi

bash scripts/setup.sh || { echo "test.sh: FAILED: scripts/setup.sh" >&2; exit 1; }

# A clean build every time (CI runs on a fresh clone): incremental state would only cost disk.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

start=$(date +%s)
results=()
failed=0

step() {
    local name=$1
    shift
    local t0 rc
    t0=$(date +%s)
    echo
    echo "==> $name: $*"
    "$@"
    rc=$?
    local dt=$(($(date +%s) - t0))
    # Free disk after each step: a full disk fails later steps in ways that hide the cause.
    local free
    free=$(df -h --output=avail . 2>/dev/null | tail -1 | tr -d ' ')
    if ((rc == 0)); then
        results+=("PASS  ${dt}s  $name  (disk free after: $free)")
    else
        results+=("FAIL  ${dt}s  $name (exit $rc)  (disk free after: $free)")
        failed=1
    fi
    return $rc
}

# Each step runs even if an earlier one failed (except where it cannot: no binary, no scenario tests),
# so one run reports every problem at once.
step fmt cargo fmt --all -- --check
step structure python3 scripts/check-structure.py --fail-on-circles
step clippy cargo clippy --workspace --all-targets -- -D warnings
if step build cargo build --workspace --all-targets; then
    # The scenario package runs below, serially; everything else (unit + property tests) runs here.
    step unit-tests cargo test --no-fail-fast --workspace --exclude vipd-integration
    # The vipd scenarios start this binary; the harness looks here unless VIPD_BIN is set.
    export VIPD_BIN=${VIPD_BIN:-$PWD/target/debug/vipd}
    # Serial: the scenarios measure failover timing on a shared 2-core machine.
    step scenario-tests cargo test --no-fail-fast -p vipd-integration -- --test-threads=1
    # The systemd unit's privileges: vipd as nobody with only its three ambient capabilities.
    step capabilities bash packaging/check-capabilities.sh "$VIPD_BIN"
    # Every fuzz target for a bounded 15 s (docs/fuzzing.md); a crash fails the step.
    step fuzz bash scripts/fuzz.sh --ci
    # The sanitizer build of every dependency is several GiB; the deployment steps below need
    # room for a release build and a Debian root. Keep it only where the disk is roomy.
    if (($(df --output=avail -k . | tail -1) < 12 * 1024 * 1024)); then
        echo "test.sh: less than 12 GiB free: removing the fuzz build (fuzz/target/*/release/deps)"
        rm -rf fuzz/target/*/release/deps fuzz/target/*/release/build fuzz/target/release
    fi
    # Deployment forms (docs/operations.md): the OCI image (release binary, FROM scratch), the
    # static pod under podman kube play, the unit in a booted systemd, promtool on /metrics.
    export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/packaging/podman/containers.conf}
    if step image bash scripts/image.sh; then
        step deploy-image target/debug/lab-deploy image
        step deploy-kube target/debug/lab-deploy kube
    else
        results+=("SKIP        deploy-image deploy-kube (image build failed)")
    fi
    step deploy-systemd target/debug/lab-deploy systemd
    step deploy-metrics target/debug/lab-deploy metrics
else
    results+=("SKIP        unit-tests (build failed)")
    results+=("SKIP        scenario-tests (build failed)")
    results+=("SKIP        capabilities (build failed)")
    results+=("SKIP        fuzz (build failed)")
    results+=("SKIP        image deploy-image deploy-kube deploy-systemd deploy-metrics (build failed)")
fi

echo
echo "==================== test.sh summary ===================="
printf '%s\n' "${results[@]}"
echo "total $(($(date +%s) - start))s"
if ((failed)); then
    echo "RESULT: FAILED (daemon logs of failing scenarios: target/lab-logs/)"
    exit 1
fi
echo "RESULT: all passed"
