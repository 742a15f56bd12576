#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs what the tests need, then
# formatting, lints, unit/integration/property tests, the conformance build against Kafka's
# own definitions, and short fuzz runs. This is what CI runs (.ci/run).
#
# Environment: FUZZ_SECONDS (per fuzz target, default 10; 0 skips fuzzing),
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

step "cargo test (workspace)"
cargo test --workspace --no-fail-fast

schemas="${KAFKA_SCHEMAS:-../shared/kafka-schemas}"
if [ -d "$schemas" ]; then
    step "conformance: build and round-trip every upstream definition in $schemas"
    # A separate target directory, so switching schemas does not rebuild the main one.
    GREGOR_SCHEMAS="$(cd "$schemas" && pwd)" CARGO_TARGET_DIR=target/conformance \
        cargo test --test roundtrip --test wire_corpus -- --nocapture
else
    step "conformance skipped: $schemas not found"
fi

if [ "${FUZZ_SECONDS:-10}" != "0" ]; then
    step "fuzz: every target for ${FUZZ_SECONDS:-10}s"
    .ci/fuzz.sh
fi

step "all tests passed"
