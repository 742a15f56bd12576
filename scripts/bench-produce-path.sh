#!/usr/bin/env bash
# The produce path (issue 14), measured against a baseline broker binary in the same run:
# rewrites the section of BENCHMARKS.md between <!-- bench-produce-path:begin --> and
# <!-- bench-produce-path:end -->.
#
#   1. builds `gregor` and `gregorctl` (release) and librdkafka's `rdkafka_performance`
#      (examples/rdkafka_performance.c of the librdkafka version the system library has,
#      from a librdkafka source tree: BENCH_RDKAFKA_SRC, else the mirror the `fetch` tool
#      brings to /work/.mirror/confluentinc+librdkafka/repo, else `apt-get source
#      librdkafka`; compiled against the installed librdkafka.so.1, the headers taken from
#      that source). Without a source tree or a C compiler its rows are skipped with a
#      message;
#   2. BENCH_RUNS rounds; in each, for each broker (BENCH_BASELINE first when given, then
#      this tree's; the other way round in even rounds), a fresh broker per case on a
#      temporary data directory:
#        - `gregorctl perf produce`, 100 B records, acks=-1, BENCH_RECORDS records, with 1
#          and with 8 producers (partitions);
#        - `rdkafka_performance -P`, the same records, one producer, one partition;
#        - with log.flush.interval.messages=1 (fsync before the acknowledgement):
#          `gregorctl perf produce` for BENCH_FSYNC_SECONDS, 1 producer on 1 partition,
#          8 producers on 1 partition
#          and 8 producers on 8 partitions;
#      and, just before each broker's fsync rows, their disk ceiling: dd of 16 KiB (one
#      full default batch) and 256 KiB writes with oflag=dsync (write + fdatasync each), in
#      the data directory;
#   3. writes the medians, ranges and ratios (this tree / baseline, per round).
#
# Environment (defaults in brackets):
#   BENCH_BASELINE []           another `gregor` binary to compare with (e.g. a build of the
#                               previous commit); without it only this tree is measured
#   BENCH_RUNS [3]              rounds (medians over them)
#   BENCH_RECORDS [10000000]    records per page-cache run (10M x 100 B)
#   BENCH_FSYNC_SECONDS [10]    duration of each flush.messages=1 run
#   BENCH_DD_COUNT [2000]       16 KiB dsync writes of the disk ceiling (as many bytes at 256 KiB)
#   BENCH_RDKAFKA_SRC []        a librdkafka source tree (with src/ and examples/)
#   BENCH_DIR [$TMPDIR or /tmp] where the temporary data directories go
#   BENCH_OUTPUT [BENCHMARKS.md]
#   BENCH_KEEP [0]              1 keeps the temporary directory
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

BENCH_BASELINE=${BENCH_BASELINE:-}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_RECORDS=${BENCH_RECORDS:-10000000}
BENCH_FSYNC_SECONDS=${BENCH_FSYNC_SECONDS:-10}
BENCH_DD_COUNT=${BENCH_DD_COUNT:-2000}
BENCH_RDKAFKA_SRC=${BENCH_RDKAFKA_SRC:-}
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}}
BENCH_OUTPUT=${BENCH_OUTPUT:-BENCHMARKS.md}
BENCH_KEEP=${BENCH_KEEP:-0}
PY=${BENCH_PYTHON:-python3}
HELPER="$ROOT/scripts/bench/bench.py"
REPORT="$ROOT/scripts/bench/produce_path.py"
started_at=$(date +%s)

step() { printf '\n==> %s\n' "$*"; }
die() {
    echo "bench-produce-path.sh: $*" >&2
    exit 1
}

step "build (release)"
cargo build --release -p gregor-broker -p gregor-cli
target_dir=$(cargo metadata --format-version 1 --no-deps |
    "$PY" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
CURRENT="$target_dir/release/gregor"
CTL="$target_dir/release/gregorctl"
[ -x "$CURRENT" ] && [ -x "$CTL" ] || die "release binaries not found in $target_dir/release"
if [ -n "$BENCH_BASELINE" ]; then
    [ -x "$BENCH_BASELINE" ] || die "BENCH_BASELINE=$BENCH_BASELINE is not an executable"
fi

WORK=$(mktemp -d "$BENCH_DIR/gregor-produce-path.XXXXXX")
RESULTS="$WORK/results.jsonl"
BROKER_PID=""
cleanup() {
    local status=$?
    stop_broker
    if [ "$BENCH_KEEP" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# rdkafka_performance: from a librdkafka source tree at the installed library's version.
RDKAFKA=""
rdkafka_note=""
build_rdkafka() {
    local lib src="" version
    lib=$(ldconfig -p 2>/dev/null | awk '/librdkafka\.so\.1 / {print $NF; exit}')
    if [ -z "$lib" ]; then
        rdkafka_note="librdkafka.so.1 is not installed (apt-get install librdkafka1)"
        return
    fi
    command -v cc >/dev/null || { rdkafka_note="no C compiler"; return; }
    version=$(dpkg-query -W -f '${Version}' librdkafka1 2>/dev/null | sed 's/-.*//' || true)
    mirror=/work/.mirror/confluentinc+librdkafka/repo
    if [ -n "$BENCH_RDKAFKA_SRC" ]; then
        src=$BENCH_RDKAFKA_SRC
    elif [ -d "$mirror" ] && [ -n "$version" ] && git -C "$mirror" rev-parse -q --verify "v$version" >/dev/null; then
        src="$WORK/librdkafka-src"
        mkdir -p "$src"
        git -C "$mirror" archive "v$version" src examples win32 | tar -x -C "$src"
    elif command -v apt-get >/dev/null && (cd "$WORK" && apt-get source -qq librdkafka >/dev/null 2>&1); then
        src=$(ls -d "$WORK"/librdkafka-*/ | head -1)
    else
        rdkafka_note="no librdkafka source tree: set BENCH_RDKAFKA_SRC to one (git clone https://github.com/confluentinc/librdkafka, checkout v$version), or enable deb-src for apt-get source"
        return
    fi
    touch "$src/config.h"
    if cc -O2 -I "$src/src" -o "$WORK/rdkafka_performance" "$src/examples/rdkafka_performance.c" \
        "$lib" -lpthread -lm 2>"$WORK/rdkafka-build.log"; then
        RDKAFKA="$WORK/rdkafka_performance"
        rdkafka_note="librdkafka $version"
    else
        rdkafka_note="rdkafka_performance did not compile (see the build log)"
    fi
}
build_rdkafka
[ -n "$RDKAFKA" ] || echo "bench-produce-path.sh: rdkafka_performance skipped: $rdkafka_note" >&2

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_broker BINARY EXTRA-PROPERTIES: a fresh broker on a fresh data directory.
start_broker() {
    local binary=$1 extra=$2 port controller
    port=$(free_port)
    controller=$(free_port)
    BOOT="127.0.0.1:$port"
    rm -rf "$WORK/data"
    cat >"$WORK/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$WORK/data
num.partitions=1
auto.create.topics.enable=false
$extra
PROPS
    env RUST_LOG=warn "$binary" "$WORK/server.properties" >>"$WORK/broker.log" 2>&1 &
    BROKER_PID=$!
    local _
    for _ in $(seq 1 300); do
        "$CTL" --bootstrap-server "$BOOT" api-versions >/dev/null 2>&1 && return 0
        kill -0 "$BROKER_PID" 2>/dev/null || die "the broker exited; see $WORK/broker.log"
        sleep 0.1
    done
    die "the broker did not answer within 30 s"
}

stop_broker() {
    if [ -n "$BROKER_PID" ] && kill -0 "$BROKER_PID" 2>/dev/null; then
        kill -TERM "$BROKER_PID" 2>/dev/null || true
        local _
        for _ in $(seq 1 100); do
            kill -0 "$BROKER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
    fi
    BROKER_PID=""
}

ctl() { "$CTL" --bootstrap-server "$BOOT" "$@"; }

# context_switches: the broker's threads' voluntary and involuntary context switches so far
# (threads that exited are not counted: a lower bound).
context_switches() {
    cat /proc/"$BROKER_PID"/task/*/status 2>/dev/null |
        awk '/^(voluntary|nonvoluntary)_ctxt_switches/ {s += $2} END {print s + 0}'
}

# record_switches NAME KEY ROUND BEFORE: appends the switches since BEFORE to the results.
record_switches() {
    "$PY" "$REPORT" switches "$RESULTS" --bench "$1" --key "$2" --round "$3" \
        --count "$(($(context_switches) - $4))"
}

# case BROKER-NAME BINARY ROUND KEY PARTITIONS EXTRA-PROPS TOOL-ARGS...
run_case() {
    local name=$1 binary=$2 round=$3 key=$4 partitions=$5 extra=$6
    shift 6
    start_broker "$binary" "$extra"
    ctl topics create --topic bench --partitions "$partitions" --replication-factor 1 >/dev/null
    local switches
    switches=$(context_switches)
    "$PY" "$HELPER" run "$RESULTS" --bench "$name" --key "$key" --round "$round" \
        --broker-pid "$BROKER_PID" -- "${@//BOOT_PLACEHOLDER/$BOOT}"
    record_switches "$name" "$key" "$round" "$switches"
    stop_broker
}

run_rdkafka() {
    local name=$1 binary=$2 round=$3
    start_broker "$binary" ""
    ctl topics create --topic bench --partitions 1 --replication-factor 1 >/dev/null
    local switches
    switches=$(context_switches)
    "$PY" "$REPORT" rdkafka "$RESULTS" --bench "$name" --key "rdkafka/100/-1/1" --round "$round" \
        --records "$BENCH_RECORDS" --broker-pid "$BROKER_PID" -- \
        "$RDKAFKA" -P -t bench -p 0 -b "$BOOT" -s 100 -c "$BENCH_RECORDS" -a -1 \
        -X linger.ms=5 -X batch.size=16384 -X max.in.flight=5 -X enable.idempotence=false -q
    record_switches "$name" "rdkafka/100/-1/1" "$round" "$switches"
    stop_broker
}

# measure_dd ROUND: the disk ceiling of the fsync rows, in the data directory's file system:
# sequential 16 KiB and 256 KiB writes, each followed by its fdatasync (oflag=dsync).
measure_dd() {
    local round=$1 out size count
    for size in 16 256; do
        count=$((BENCH_DD_COUNT * 16 / size))
        [ "$count" -ge 50 ] || count=50
        out=$(LC_ALL=C dd if=/dev/zero of="$WORK/dd.bin" bs="${size}K" count="$count" oflag=dsync 2>&1) ||
            die "dd failed: $out"
        rm -f "$WORK/dd.bin"
        "$PY" "$REPORT" dd "$RESULTS" --round "$round" --dd-output "$out" --count "$count" \
            --name "dsync${size}k"
    done
}

brokers=()
[ -n "$BENCH_BASELINE" ] && brokers+=("baseline=$BENCH_BASELINE")
brokers+=("current=$CURRENT")
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq 1 "$BENCH_RUNS"); do
    step "round $round of $BENCH_RUNS (load $(cut -d' ' -f1-3 /proc/loadavg))"
    # The load of a shared machine drifts: even rounds run this tree's broker first.
    order=("${brokers[@]}")
    if [ $((round % 2)) -eq 0 ] && [ "${#brokers[@]}" -eq 2 ]; then order=("${brokers[1]}" "${brokers[0]}"); fi
    for entry in "${order[@]}"; do
        name=${entry%%=*}
        binary=${entry#*=}
        for producers in 1 8; do
            run_case "$name" "$binary" "$round" "perf/100/-1/$producers" "$producers" "" \
                "$CTL" --bootstrap-server BOOT_PLACEHOLDER perf produce --topic bench \
                --record-size 100 --acks -1 --connections "$producers" --num-records "$BENCH_RECORDS"
        done
        if [ -n "$RDKAFKA" ]; then run_rdkafka "$name" "$binary" "$round"; fi
        # The disk is shared: its ceiling is taken next to each broker's fsync rows.
        measure_dd "$round"
        # One producer: its five requests in flight share syncs only if the connection
        # pipelines them (issue 14, phase 2).
        run_case "$name" "$binary" "$round" "fsync/100/-1/1x1" 1 "log.flush.interval.messages=1" \
            "$CTL" --bootstrap-server BOOT_PLACEHOLDER perf produce --topic bench \
            --record-size 100 --acks -1 --connections 1 --duration "$BENCH_FSYNC_SECONDS"
        run_case "$name" "$binary" "$round" "fsync/100/-1/8x1" 1 "log.flush.interval.messages=1" \
            "$CTL" --bootstrap-server BOOT_PLACEHOLDER perf produce --topic bench \
            --record-size 100 --acks -1 --connections 8 --duration "$BENCH_FSYNC_SECONDS"
        run_case "$name" "$binary" "$round" "fsync/100/-1/8x8" 8 "log.flush.interval.messages=1" \
            "$CTL" --bootstrap-server BOOT_PLACEHOLDER perf produce --topic bench \
            --record-size 100 --acks -1 --connections 8 --duration "$BENCH_FSYNC_SECONDS"
    done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

step "report"
"$PY" "$REPORT" report "$RESULTS" --output "$BENCH_OUTPUT" \
    --commit "$(git rev-parse --short HEAD)" --baseline "${BENCH_BASELINE:-}" \
    --rdkafka-note "$rdkafka_note" --load "$load_start / $load_end" \
    --settings "BENCH_RUNS=$BENCH_RUNS, BENCH_RECORDS=$BENCH_RECORDS, BENCH_FSYNC_SECONDS=$BENCH_FSYNC_SECONDS, total $(($(date +%s) - started_at)) s"
