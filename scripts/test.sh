#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs what the tests need, then
# formatting, lints, unit/integration/property tests, the conformance build against Kafka's
# own definitions, and short fuzz runs. This is what CI runs (.ci/run).
#
# Environment: TEST_JOBS (test binaries run at a time, default 2),
#              FUZZ_SECONDS (per fuzz target, default 10; 0 skips fuzzing),
#              KAFKA_SCHEMAS (default ../shared/kafka-schemas).
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step prints the seconds since the start, so a slow step shows in CI's log (the whole
# run must stay well under CI's limit).
started=$SECONDS
step() { printf '\n==> [%ds] %s\n' "$((SECONDS - started))" "$*"; }

step "toolchain"
cargo --version
rustup component list --installed 2>/dev/null | grep -qE '^(rustfmt|clippy)' || rustup component add rustfmt clippy

step "install the real Kafka clients the tests drive (kcat, kafka-python, confluent-kafka, Sarama)"
# Sets GREGOR_CLIENTS_VENV, GREGOR_KCAT, GREGOR_GO and GREGOR_SARAMA_GOPATH for the broker's
# client tests.
source scripts/install-test-clients.sh
export GREGOR_REQUIRE_CLIENTS=1

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test: build the workspace's test binaries"
cargo test --workspace --no-run --message-format=json-render-diagnostics >target/test-binaries.json

schemas="${KAFKA_SCHEMAS:-../shared/kafka-schemas}"
fuzz=0
[ "${FUZZ_SECONDS:-10}" != "0" ] && fuzz=1
# The test binaries that need the machine to themselves first (SERIAL in
# scripts/run-test-binaries.py), one at a time.
step "cargo test: the test binaries that run alone"
status=0
python3 scripts/run-test-binaries.py --group serial target/test-binaries.json || status=$?

# Then the conformance and fuzz builds happen in the background, niced, while the other
# test binaries run: those mostly wait (session timeouts, client start-ups), leaving the
# cores idle.
background_builds() {
    if [ -d "$schemas" ]; then
        echo "background: conformance build"
        GREGOR_SCHEMAS="$(cd "$schemas" && pwd)" CARGO_TARGET_DIR=target/conformance \
            cargo test --test roundtrip --test wire_corpus --no-run || return 1
    fi
    if ((fuzz)); then
        echo "background: fuzz build"
        .ci/fuzz.sh build || return 1
    fi
    echo "background: done"
}
background_log=target/ci-background-builds.log
nice -n 19 bash -c "$(declare -f background_builds); schemas='$schemas' fuzz=$fuzz background_builds" \
    >"$background_log" 2>&1 &
background=$!

step "cargo test: the other test binaries, ${TEST_JOBS:-2} at a time"
python3 scripts/run-test-binaries.py --group lanes target/test-binaries.json || status=$?

step "cargo test --doc"
cargo test --workspace --doc || status=$?

step "waiting for the background conformance and fuzz builds"
background_status=0
wait "$background" || background_status=$?
cat "$background_log"
if [ "$status" != 0 ]; then
    echo "cargo test: some tests failed (see above)" >&2
    exit "$status"
fi
if [ "$background_status" != 0 ]; then
    echo "the conformance or fuzz build failed (see above)" >&2
    exit "$background_status"
fi

if [ -d "$schemas" ]; then
    step "conformance: build and round-trip every upstream definition in $schemas"
    # A separate target directory, so switching schemas does not rebuild the main one.
    GREGOR_SCHEMAS="$(cd "$schemas" && pwd)" CARGO_TARGET_DIR=target/conformance \
        cargo test --test roundtrip --test wire_corpus -- --nocapture
else
    step "conformance skipped: $schemas not found"
fi

if ((fuzz)); then
    step "fuzz: every target for ${FUZZ_SECONDS:-10}s"
    .ci/fuzz.sh
fi

step "all tests passed"
