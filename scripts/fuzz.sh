#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ (docs/fuzzing.md).
#
#   scripts/fuzz.sh [seconds-per-target] [target...]   long runs (default 600 s per target)
#   scripts/fuzz.sh --ci [target...]                   CI: 15 s per target, about 5 min in all
#
# Installs cargo-fuzz if missing, builds all targets once (nightly, AddressSanitizer, debug
# assertions), then runs each one after the other with -max_total_time. The working corpus is
# fuzz/corpus/<target>/ (not committed; new inputs land there), seeded read-only from the
# committed fuzz/seeds/<target>/ and the crashes found before (fuzz/regressions/<target>/). Prints a table target | executions | corpus | result and exits
# non-zero if any target crashed, naming the artifact (fuzz/artifacts/<target>/) that reproduces
# it: fuzz/target/x86_64-unknown-linux-gnu/release/<target> <artifact>.
# FUZZ_FLAGS adds libFuzzer flags to every run (e.g. FUZZ_FLAGS=-runs=1000).
set -uo pipefail

cd "$(dirname "$0")/.."

seconds=600
if [[ ${1:-} == --ci ]]; then
    seconds=15
    shift
elif [[ ${1:-} =~ ^[0-9]+$ ]]; then
    seconds=$1
    shift
fi

toolchain=+nightly
if ! cargo $toolchain --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing the nightly toolchain (cargo-fuzz needs -Zsanitizer)" >&2
    rustup toolchain install nightly --profile minimal || {
        echo "fuzz.sh: FAILED: no nightly toolchain" >&2
        exit 1
    }
fi
if ! cargo $toolchain fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked || {
        echo "fuzz.sh: FAILED: cargo install cargo-fuzz" >&2
        exit 1
    }
fi

t0=$(date +%s)
echo "==> building the fuzz targets"
if ! cargo $toolchain fuzz build --codegen-units 16; then
    echo "fuzz.sh: FAILED: the fuzz targets do not build" >&2
    exit 1
fi
echo "built in $(($(date +%s) - t0))s"

if (($# > 0)); then
    targets=("$@")
else
    mapfile -t targets < <(cargo $toolchain fuzz list)
fi
if ((${#targets[@]} == 0)); then
    echo "fuzz.sh: FAILED: no fuzz targets found" >&2
    exit 1
fi

bin=fuzz/target/x86_64-unknown-linux-gnu/release
logs=fuzz/target/logs
mkdir -p "$logs"
rows=()
failed=0
for target in "${targets[@]}"; do
    corpus=fuzz/corpus/$target
    artifacts=fuzz/artifacts/$target
    seeds=fuzz/seeds/$target
    mkdir -p "$corpus" "$artifacts" "$seeds"
    log=$logs/$target.log
    echo "==> $target: ${seconds}s"
    # shellcheck disable=SC2086 # FUZZ_FLAGS is a list of flags
    # Every crash found so far (fuzz/regressions/<target>/) is read again on each run.
    regressions=()
    [[ -d fuzz/regressions/$target ]] && regressions=("fuzz/regressions/$target")
    "$bin/$target" "$corpus" "$seeds" "${regressions[@]}" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 ${FUZZ_FLAGS:-} >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    corp=$(grep -ao 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -n1 | sed 's/corp: //')
    if ((rc == 0)); then
        result=ok
    else
        failed=1
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n1)
        result="CRASH (exit $rc) ${artifact:-see $log}"
        grep -m1 -B2 -A25 -E '^==[0-9]+==|panicked at|ERROR: libFuzzer' "$log" | head -n 40
    fi
    rows+=("$(printf '%-20s | %12s | %-14s | %s' "$target" "${execs:-?}" "${corp:-?}" "$result")")
done

echo
echo "==================== fuzz.sh: ${seconds}s per target, $(date -u +%Y-%m-%d) ===================="
printf '%-20s | %12s | %-14s | %s\n' target executions corpus result
printf '%s\n' "${rows[@]}"
echo "total $(($(date +%s) - t0))s (logs: $logs/)"
if ((failed)); then
    echo "RESULT: a target crashed; reproduce with: $bin/<target> <artifact>"
    exit 1
fi
echo "RESULT: no crash"
