#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ (protocol decoders) and fuzz/broker/ (the broker's
# SASL exchanges) for a bounded time and fails if any finds a crash.
#
#   FUZZ_SECONDS=10     seconds per target (default 10)
#   FUZZ_TARGETS="a b"  only these targets (default: all, from `cargo fuzz list` of both dirs)
#   FUZZ_BROKER=0       skip fuzz/broker/ (its build compiles the broker crate under ASan)
#   FUZZ_SANITIZER=address|none
#                       default: none. Every target and the crates they test are safe Rust
#                       (unsafe_code = "forbid"), so a short run looks for panics, hangs
#                       and runaway allocations, which need no ASan; the ASan build of
#                       fuzz/ alone took ~3 of CI's minutes. The long form:
#                       FUZZ_SANITIZER=address FUZZ_BROKER_SANITIZER=address \
#                       FUZZ_BROKER_PROFILE=release FUZZ_SECONDS=600 .ci/fuzz.sh
#   FUZZ_BROKER_SANITIZER=address|none
#                       for fuzz/broker/ only; default: none (the broker crate's ASan
#                       build alone took ~8 of CI's minutes)
#   FUZZ_BROKER_PROFILE=dev|release
#                       fuzz/broker/'s build; default: dev (unoptimized, debug assertions:
#                       the broker crate's optimized build alone took ~4 of CI's minutes,
#                       and a short run of a SASL exchange needs no speed)
#   FUZZ_SEEDS=0        skip writing seed inputs (fuzz/examples/seeds.rs) into fuzz/corpus/
#   FUZZ_ARTIFACTS_DIR  also copy crash inputs there (e.g. /tmp/fuzz-crashes)
#   FUZZ_TIMEOUT=25     seconds one input may take before libFuzzer reports a timeout
#   FUZZ_JOBS=2         targets fuzzed at the same time (libFuzzer uses one core each)
#
#   .ci/fuzz.sh build   only installs cargo-fuzz, builds the targets and writes the seeds
#                       (scripts/test.sh runs this in the background during the tests;
#                       the run that follows then finds everything built)
#
# Only stable Rust is available: cargo-fuzz's nightly flags (-Zsanitizer, sancov passes)
# are accepted by stable rustc with RUSTC_BOOTSTRAP=1, and the ASan runtime ships with the
# stable x86_64-unknown-linux-gnu standard library. fuzz/'s builds are optimized (-O,
# cargo fuzz's default), all with debug assertions and overflow checks on (-a). Corpora
# (fuzz/corpus/) and crash inputs (fuzz/artifacts/, fuzz/broker/artifacts/) are gitignored.
# Both fuzz dirs build into fuzz/target, so what they share at one profile is compiled once.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-10}"
FUZZ_TIMEOUT="${FUZZ_TIMEOUT:-25}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

fuzz_dirs=(fuzz)
if [[ "${FUZZ_BROKER:-1}" != 0 ]]; then
    fuzz_dirs+=(fuzz/broker)
fi
# `cargo fuzz` in one fuzz dir, every dir building into fuzz/target.
in_dir() {
    local dir="$1" command="$2"
    shift 2
    cargo fuzz "$command" --fuzz-dir "$dir" "$@"
}
only_build=0
[[ "${1:-}" == build ]] && only_build=1
sanitizer="${FUZZ_SANITIZER:-none}"
broker_sanitizer="${FUZZ_BROKER_SANITIZER:-none}"
# The sanitizer of one fuzz dir.
sanitizer_of() {
    if [[ "$1" == fuzz/broker && -n "$broker_sanitizer" ]]; then
        echo "$broker_sanitizer"
    else
        echo "$sanitizer"
    fi
}
# The build profile flag of one fuzz dir (see FUZZ_BROKER_PROFILE).
profile_of() {
    if [[ "$1" == fuzz/broker && "${FUZZ_BROKER_PROFILE:-dev}" == dev ]]; then
        echo "--dev"
    else
        echo "-O"
    fi
}
build() {
    local dir
    for dir in "${fuzz_dirs[@]}"; do
        in_dir "$dir" build "$(profile_of "$dir")" -a --sanitizer "$(sanitizer_of "$dir")" --target-dir fuzz/target || return 1
    done
}
echo "fuzz: building the targets (sanitizer: $sanitizer; fuzz/broker: $broker_sanitizer)"
build

if [[ "${FUZZ_SEEDS:-1}" != 0 ]]; then
    echo "fuzz: writing seed inputs"
    # An unoptimized build: the seeds are a few small files.
    (cd fuzz && cargo run --quiet --example seeds) || echo "fuzz: seeds failed (continuing without)" >&2
fi
if ((only_build)); then
    exit 0
fi

# "dir:target" for every target of every fuzz dir.
all_targets=()
for dir in "${fuzz_dirs[@]}"; do
    while read -r name; do
        all_targets+=("$dir:$name")
    done < <(in_dir "$dir" list)
done
targets=()
if [[ -n "${FUZZ_TARGETS:-}" ]]; then
    read -r -a wanted <<<"$FUZZ_TARGETS"
    for entry in "${all_targets[@]}"; do
        for name in "${wanted[@]}"; do
            [[ "${entry#*:}" == "$name" ]] && targets+=("$entry")
        done
    done
else
    targets=("${all_targets[@]}")
fi

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
# Fuzzes one "dir:target" entry; its report goes to $logs/<target>.report, and
# $logs/<target>.failed exists if it failed.
fuzz_one() {
    local entry="$1" dir target status input report
    dir="${entry%%:*}"
    target="${entry#*:}"
    report="$logs/$target.report"
    mkdir -p "$dir/artifacts/$target" "$dir/corpus/$target"
    touch "$logs/$target.start"
    sleep 1 # artifacts written from now on are newer than the marker
    status=0
    in_dir "$dir" run "$(profile_of "$dir")" -a --sanitizer "$(sanitizer_of "$dir")" --target-dir fuzz/target "$target" -- \
        -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -timeout="$FUZZ_TIMEOUT" \
        -print_final_stats=1 >"$logs/$target.log" 2>&1 || status=$?
    {
        echo "fuzz: $target ran for ${FUZZ_SECONDS}s"
        grep -E '^(Done|stat::number_of_executed_units|#[0-9]+ +DONE)' "$logs/$target.log" | tail -2 | sed "s/^/fuzz: $target: /" || true
    } >"$report"
    local found
    mapfile -t found < <(find "$dir/artifacts/$target" -type f -newer "$logs/$target.start")
    if [[ "$status" != 0 || "${#found[@]}" != 0 ]]; then
        touch "$logs/$target.failed"
        {
            echo "fuzz: $target FAILED (exit $status):"
            # The panic message or sanitizer report, its stack trace, and the input.
            if grep -qE 'panicked at|==ERROR|ERROR: libFuzzer' "$logs/$target.log"; then
                sed -nE '/panicked at|==ERROR|ERROR: libFuzzer/,$p' "$logs/$target.log" | head -n 150
                grep -E '^(0x[0-9a-f]+,|Base64: )' "$logs/$target.log" | tail -n 2 || true
            else
                tail -n 80 "$logs/$target.log"
            fi
            for input in "${found[@]}"; do
                echo "fuzz: $target crash input: $PWD/$input"
                echo "fuzz:   reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir $dir $(profile_of "$dir") -a --sanitizer $(sanitizer_of "$dir") $target $input"
                if [[ -n "${FUZZ_ARTIFACTS_DIR:-}" ]]; then
                    mkdir -p "$FUZZ_ARTIFACTS_DIR/$target"
                    cp "$input" "$FUZZ_ARTIFACTS_DIR/$target/"
                fi
            done
        } >>"$report"
    fi
}

# FUZZ_JOBS targets at a time; the reports are printed in target order once all ended.
jobs="${FUZZ_JOBS:-2}"
echo "fuzz: ${#targets[@]} targets for ${FUZZ_SECONDS}s each, $jobs at a time"
running=0
for entry in "${targets[@]}"; do
    if ((running >= jobs)); then
        wait -n || true
        running=$((running - 1))
    fi
    fuzz_one "$entry" &
    running=$((running + 1))
done
wait
failed=()
for entry in "${targets[@]}"; do
    target="${entry#*:}"
    if [[ -f "$logs/$target.failed" ]]; then
        failed+=("$target")
        cat "$logs/$target.report" >&2
    else
        cat "$logs/$target.report"
    fi
done

if ((${#failed[@]})); then
    echo "fuzz: ${#failed[@]} of ${#targets[@]} targets failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${FUZZ_SECONDS}s without a crash"
