#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time and fails if any finds a crash.
#
#   FUZZ_SECONDS=20     seconds per target (default 20)
#   FUZZ_TARGETS="a b"  only these targets (default: all, from `cargo fuzz list`)
#   FUZZ_SANITIZER=address|none
#                       default: address, falling back to none if the ASan build fails
#   FUZZ_SEEDS=0        skip writing seed inputs (fuzz/examples/seeds.rs) into fuzz/corpus/
#   FUZZ_ARTIFACTS_DIR  also copy crash inputs there (e.g. /tmp/fuzz-crashes)
#   FUZZ_TIMEOUT=25     seconds one input may take before libFuzzer reports a timeout
#
# Only stable Rust is available: cargo-fuzz's nightly flags (-Zsanitizer, sancov passes)
# are accepted by stable rustc with RUSTC_BOOTSTRAP=1, and the ASan runtime ships with the
# stable x86_64-unknown-linux-gnu standard library. Builds are optimized (-O, cargo fuzz's
# default) with debug assertions and overflow checks on (-a). Corpora (fuzz/corpus/) and
# crash inputs (fuzz/artifacts/) are gitignored.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
FUZZ_TIMEOUT="${FUZZ_TIMEOUT:-25}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

sanitizer="${FUZZ_SANITIZER:-address}"
build() { cargo fuzz build -O -a --sanitizer "$sanitizer" "$@"; }
echo "fuzz: building the targets (sanitizer: $sanitizer)"
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
    (cd fuzz && cargo run --quiet --release --example seeds) || echo "fuzz: seeds failed (continuing without)" >&2
fi

if [[ -n "${FUZZ_TARGETS:-}" ]]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    mapfile -t targets < <(cargo fuzz list)
fi

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
failed=()
for target in "${targets[@]}"; do
    mkdir -p "fuzz/artifacts/$target" "fuzz/corpus/$target"
    touch "$logs/$target.start"
    sleep 1 # artifacts written from now on are newer than the marker
    echo "fuzz: $target for ${FUZZ_SECONDS}s"
    status=0
    cargo fuzz run -O -a --sanitizer "$sanitizer" "$target" -- \
        -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -timeout="$FUZZ_TIMEOUT" \
        -print_final_stats=1 >"$logs/$target.log" 2>&1 || status=$?
    grep -E '^(Done|stat::number_of_executed_units|#[0-9]+ +DONE)' "$logs/$target.log" | tail -2 | sed "s/^/fuzz: $target: /" || true
    mapfile -t found < <(find "fuzz/artifacts/$target" -type f -newer "$logs/$target.start")
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
            echo "fuzz:   reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run -O -a --sanitizer $sanitizer $target $input" >&2
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
