#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ (protocol decoders) and fuzz/broker/ (the broker's
# SASL exchanges) for a bounded time and fails if any finds a crash.
#
#   FUZZ_SECONDS=10     seconds per target (default 10)
#   FUZZ_TARGETS="a b"  only these targets (default: all, from `cargo fuzz list` of both dirs)
#   FUZZ_BROKER=0       skip fuzz/broker/ (its build compiles the broker crate under ASan)
#   FUZZ_SANITIZER=address|none
#                       default: address, falling back to none if the ASan build fails
#   FUZZ_BROKER_SANITIZER=address|none
#                       for fuzz/broker/ only; default: none (the SASL targets are safe
#                       Rust looking for panics and hangs, and the broker crate's ASan
#                       build alone took ~8 of CI's minutes). The long form:
#                       FUZZ_BROKER_SANITIZER=address FUZZ_BROKER_PROFILE=release \
#                       FUZZ_SECONDS=600 .ci/fuzz.sh
#   FUZZ_BROKER_PROFILE=dev|release
#                       fuzz/broker/'s build; default: dev (unoptimized, debug assertions:
#                       the broker crate's optimized build alone took ~4 of CI's minutes,
#                       and a short run of a SASL exchange needs no speed)
#   FUZZ_SEEDS=0        skip writing seed inputs (fuzz/examples/seeds.rs) into fuzz/corpus/
#   FUZZ_ARTIFACTS_DIR  also copy crash inputs there (e.g. /tmp/fuzz-crashes)
#   FUZZ_TIMEOUT=25     seconds one input may take before libFuzzer reports a timeout
#
# Only stable Rust is available: cargo-fuzz's nightly flags (-Zsanitizer, sancov passes)
# are accepted by stable rustc with RUSTC_BOOTSTRAP=1, and the ASan runtime ships with the
# stable x86_64-unknown-linux-gnu standard library. Builds are optimized (-O, cargo fuzz's
# default) with debug assertions and overflow checks on (-a). Corpora (fuzz/corpus/) and
# crash inputs (fuzz/artifacts/, fuzz/broker/artifacts/) are gitignored. Both fuzz dirs build
# into fuzz/target, so what they share is compiled once.
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
sanitizer="${FUZZ_SANITIZER:-address}"
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
if ! build; then
    if [[ "$sanitizer" == address && -z "${FUZZ_SANITIZER:-}" ]]; then
        echo "fuzz: the ASan build failed; building without a sanitizer" >&2
        sanitizer=none
        build
    else
        exit 1
    fi
fi

if [[ "${FUZZ_SEEDS:-1}" != 0 ]]; then
    echo "fuzz: writing seed inputs"
    # An unoptimized build: the seeds are a few small files.
    (cd fuzz && cargo run --quiet --example seeds) || echo "fuzz: seeds failed (continuing without)" >&2
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
failed=()
for entry in "${targets[@]}"; do
    dir="${entry%%:*}"
    target="${entry#*:}"
    mkdir -p "$dir/artifacts/$target" "$dir/corpus/$target"
    touch "$logs/$target.start"
    sleep 1 # artifacts written from now on are newer than the marker
    echo "fuzz: $target for ${FUZZ_SECONDS}s"
    status=0
    in_dir "$dir" run "$(profile_of "$dir")" -a --sanitizer "$(sanitizer_of "$dir")" --target-dir fuzz/target "$target" -- \
        -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -timeout="$FUZZ_TIMEOUT" \
        -print_final_stats=1 >"$logs/$target.log" 2>&1 || status=$?
    grep -E '^(Done|stat::number_of_executed_units|#[0-9]+ +DONE)' "$logs/$target.log" | tail -2 | sed "s/^/fuzz: $target: /" || true
    mapfile -t found < <(find "$dir/artifacts/$target" -type f -newer "$logs/$target.start")
    if [[ "$status" != 0 || "${#found[@]}" != 0 ]]; then
        failed+=("$target")
        echo "fuzz: $target FAILED (exit $status):" >&2
        # The panic message or sanitizer report, its stack trace, and the input.
        if grep -qE 'panicked at|==ERROR|ERROR: libFuzzer' "$logs/$target.log"; then
            sed -nE '/panicked at|==ERROR|ERROR: libFuzzer/,$p' "$logs/$target.log" | head -n 150 >&2
            grep -E '^(0x[0-9a-f]+,|Base64: )' "$logs/$target.log" | tail -n 2 >&2 || true
        else
            tail -n 80 "$logs/$target.log" >&2
        fi
        for input in "${found[@]}"; do
            echo "fuzz: $target crash input: $PWD/$input" >&2
            echo "fuzz:   reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir $dir $(profile_of "$dir") -a --sanitizer $(sanitizer_of "$dir") $target $input" >&2
            if [[ -n "${FUZZ_ARTIFACTS_DIR:-}" ]]; then
                mkdir -p "$FUZZ_ARTIFACTS_DIR/$target"
                cp "$input" "$FUZZ_ARTIFACTS_DIR/$target/"
            fi
        done
    fi
done

if ((${#failed[@]})); then
    echo "fuzz: ${#failed[@]} of ${#targets[@]} targets failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${FUZZ_SECONDS}s without a crash"
