#!/usr/bin/env bash
# Regenerates the broker section of BENCHMARKS.md (between <!-- bench.sh:begin --> and
# <!-- bench.sh:end -->) in one go, against the real release binaries:
#
#   1. builds `gregor` and `gregorctl` (release) and the copy counter (scripts/bench/copycount.c);
#   2. starts the broker on a temporary data directory and free 127.0.0.1 ports;
#   3. prepares two fetch logs of BENCH_FETCH_MIB MiB each (100 B and 10 KiB records);
#   4. BENCH_RUNS rounds, each measuring in turn:
#        - the ceilings: loopback TCP bandwidth (iperf3, or a Python socket blaster when
#          iperf3 is missing), sequential disk write on the data directory's file system
#          (dd O_DIRECT, and dd through the page cache + fdatasync), and a page-cache read
#          of the fetch logs;
#        - produce: 100 B and 10 KiB records, acks=1 and acks=-1, 1 and 8 producers;
#        - request rates: ApiVersions and Metadata over 1, 8 and 64 pipelined connections;
#        - fetch: each prepared log read from the start to the end;
#   5. restarts the broker under the copy counter and measures the user-space copies of a
#      fetch of each log (and of a produce run, as the control);
#   6. writes the medians, the ceilings and the fractions into BENCHMARKS.md.
#
# Environment (defaults in brackets):
#   BENCH_SECONDS [5]      duration of each produce and request-rate run
#   BENCH_RUNS [3]         rounds (every figure is the median over them)
#   BENCH_FETCH_MIB [1024] size of each prepared fetch log
#   BENCH_DD_MIB [2048]    size of each dd write
#   BENCH_IN_FLIGHT [16]   requests in flight per connection in the request-rate runs
#   BENCH_DIR [$TMPDIR or /tmp]  where the temporary data directory is made (the disk
#                          ceiling is measured there too)
#   BENCH_OUTPUT [BENCHMARKS.md]  the file whose section is rewritten
#   BENCH_KEEP [0]         1 keeps the temporary directory (results.jsonl, broker logs)
#   BENCH_INSTALL [1]      1 lets the script `apt-get install iperf3` when it is missing
#                          and it runs as root
#
# With the defaults it takes about 6 minutes after the build on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

BENCH_SECONDS=${BENCH_SECONDS:-5}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_FETCH_MIB=${BENCH_FETCH_MIB:-1024}
BENCH_DD_MIB=${BENCH_DD_MIB:-2048}
BENCH_IN_FLIGHT=${BENCH_IN_FLIGHT:-16}
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}}
BENCH_OUTPUT=${BENCH_OUTPUT:-BENCHMARKS.md}
BENCH_KEEP=${BENCH_KEEP:-0}
BENCH_INSTALL=${BENCH_INSTALL:-1}

PY=${BENCH_PYTHON:-python3}
HELPER="$ROOT/scripts/bench/bench.py"
started_at=$(date +%s)

step() { printf '\n==> %s\n' "$*"; }
die() {
    echo "bench.sh: $*" >&2
    exit 1
}

command -v "$PY" >/dev/null || die "python3 is needed (the measurement and report helper)"
command -v dd >/dev/null || die "dd is needed"

step "build (release)"
cargo build --release -p gregor-broker -p gregor-cli
target_dir=$(cargo metadata --format-version 1 --no-deps |
    "$PY" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
GREGOR="$target_dir/release/gregor"
CTL="$target_dir/release/gregorctl"
if [ ! -x "$GREGOR" ] || [ ! -x "$CTL" ]; then
    die "release binaries not found in $target_dir/release"
fi

WORK=$(mktemp -d "$BENCH_DIR/gregor-bench.XXXXXX")
DATA="$WORK/data"
RESULTS="$WORK/results.jsonl"
SNAPSHOTS="$WORK/copies.snapshots"
BROKER_PID=""
IPERF_PID=""

cleanup() {
    local status=$?
    if [ -n "$IPERF_PID" ] && kill -0 "$IPERF_PID" 2>/dev/null; then
        kill "$IPERF_PID" 2>/dev/null || true
    fi
    stop_broker
    if [ "$BENCH_KEEP" = 1 ]; then
        echo "bench.sh: kept $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

COPYCOUNT=""
if command -v cc >/dev/null 2>&1; then
    if cc -O2 -fno-builtin -shared -fPIC -o "$WORK/copycount.so" "$ROOT/scripts/bench/copycount.c"; then
        COPYCOUNT="$WORK/copycount.so"
    fi
fi
[ -n "$COPYCOUNT" ] || echo "bench.sh: no C compiler: the zero-copy measurement is skipped" >&2

if ! command -v iperf3 >/dev/null 2>&1 && [ "$BENCH_INSTALL" = 1 ] && [ "$(id -u)" = 0 ] &&
    command -v apt-get >/dev/null 2>&1; then
    step "install iperf3 (loopback ceiling)"
    apt-get install -y -qq iperf3 >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq iperf3 >/dev/null 2>&1; } ||
        echo "bench.sh: iperf3 could not be installed: using the Python blaster" >&2
fi

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

PORT=$(free_port)
CONTROLLER_PORT=$(free_port)
BOOT="127.0.0.1:$PORT"
cat >"$WORK/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA
num.partitions=1
auto.create.topics.enable=false
EOF

ctl() { "$CTL" --bootstrap-server "$BOOT" "$@"; }

# start_broker [ENV=VALUE...]: starts the broker (in the background) and waits for it.
start_broker() {
    env RUST_LOG=warn "$@" "$GREGOR" "$WORK/server.properties" >>"$WORK/broker.log" 2>&1 &
    BROKER_PID=$!
    local _
    for _ in $(seq 1 300); do
        if ctl api-versions >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$BROKER_PID" 2>/dev/null || die "the broker exited; see $WORK/broker.log"
        sleep 0.1
    done
    die "the broker did not answer within 30 s; see $WORK/broker.log"
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

# run BENCH KEY ROUND gregorctl-args...: one measured run, appended to results.jsonl.
run() {
    local bench=$1 key=$2 round=$3
    shift 3
    "$PY" "$HELPER" run "$RESULTS" --bench "$bench" --key "$key" --round "$round" \
        --broker-pid "$BROKER_PID" -- "$CTL" --bootstrap-server "$BOOT" "$@"
}

ceiling() {
    "$PY" "$HELPER" ceiling "$RESULTS" --name "$1" --round "$2" --mib-per-sec "$3" --method "$4"
}

# mib_per_sec BYTES SECONDS
mib_per_sec() { "$PY" -c "print($1 / 1048576 / max($2, 1e-9))"; }

now() { date +%s.%N; }

measure_loopback() {
    local round=$1 mib
    if command -v iperf3 >/dev/null 2>&1; then
        local port iperf_seconds=${BENCH_SECONDS%.*}
        [ "${iperf_seconds:-0}" -ge 1 ] || iperf_seconds=1
        port=$(free_port)
        iperf3 -s -1 -B 127.0.0.1 -p "$port" >/dev/null 2>&1 &
        IPERF_PID=$!
        sleep 0.3
        mib=$(iperf3 -c 127.0.0.1 -p "$port" -t "$iperf_seconds" -J |
            "$PY" -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 8 / 1048576)')
        wait "$IPERF_PID" 2>/dev/null || true
        IPERF_PID=""
        ceiling loopback "$round" "$mib" "iperf3 $(iperf3 --version | head -1 | awk '{print $2}'), 1 stream, 128 KiB writes, $iperf_seconds s"
    else
        mib=$("$PY" "$HELPER" loopback "$BENCH_SECONDS")
        ceiling loopback "$round" "$mib" "Python socket blaster (bench.py loopback), 128 KiB sends, $BENCH_SECONDS s"
    fi
}

# dd_rate DD-OUTPUT: MiB/s from dd's last line (bytes and seconds).
dd_rate() { awk '/bytes/ {print $1 / 1048576 / $(NF-3); exit}' <<<"$1" | tail -1; }

measure_disk() {
    local round=$1 out
    out=$(LC_ALL=C dd if=/dev/zero of="$WORK/dd.bin" bs=1M count="$BENCH_DD_MIB" oflag=direct 2>&1) ||
        die "dd failed: $out"
    rm -f "$WORK/dd.bin"
    ceiling disk_direct "$round" "$(dd_rate "$out")" "dd bs=1M count=$BENCH_DD_MIB oflag=direct"
    out=$(LC_ALL=C dd if=/dev/zero of="$WORK/dd.bin" bs=1M count="$BENCH_DD_MIB" conv=fdatasync 2>&1) ||
        die "dd failed: $out"
    rm -f "$WORK/dd.bin"
    ceiling disk_fdatasync "$round" "$(dd_rate "$out")" "dd bs=1M count=$BENCH_DD_MIB conv=fdatasync"
}

measure_cache_read() {
    local round=$1 files bytes t0 t1
    files=$(ls "$DATA"/fetch-100b-0/*.log "$DATA"/fetch-10k-0/*.log)
    # shellcheck disable=SC2086
    bytes=$(cat $files | wc -c)
    t0=$(now)
    # shellcheck disable=SC2086
    cat $files >/dev/null
    t1=$(now)
    ceiling cache_read "$round" "$(mib_per_sec "$bytes" "$t1 - $t0")" "cat of the two fetch logs to /dev/null ($((bytes / 1048576)) MiB)"
}

produce_runs() {
    local round=$1 size acks producers topic
    for size in 100 10240; do
        for acks in 1 -1; do
            for producers in 1 8; do
                topic="produce-$size-acks${acks/-1/all}-$producers-$round"
                ctl topics create --topic "$topic" --partitions "$producers" --replication-factor 1 >/dev/null
                run produce "$size/$acks/$producers" "$round" perf produce --topic "$topic" \
                    --record-size "$size" --acks "$acks" --connections "$producers" \
                    --duration "$BENCH_SECONDS"
                ctl topics delete --topic "$topic" >/dev/null
            done
        done
    done
}

request_runs() {
    local round=$1 api connections
    for api in api-versions metadata; do
        for connections in 1 8 64; do
            run requests "$api/$connections" "$round" perf requests --api "$api" \
                --connections "$connections" --in-flight "$BENCH_IN_FLIGHT" --duration "$BENCH_SECONDS"
        done
    done
}

fetch_runs() {
    local round=$1
    run fetch 100 "$round" perf consume --topic fetch-100b
    run fetch 10240 "$round" perf consume --topic fetch-10k
}

# snapshot: the copy counter's totals and the broker's /proc io, as one line of SNAPSHOTS;
# prints "SNAPSHOTS:LINE".
snapshot() {
    local before after _
    before=$(wc -l 2>/dev/null <"$WORK/copycount.out" || echo 0)
    kill -USR2 "$BROKER_PID"
    for _ in $(seq 1 50); do
        after=$(wc -l 2>/dev/null <"$WORK/copycount.out" || echo 0)
        [ "$after" -gt "$before" ] && break
        sleep 0.05
    done
    [ "$after" -gt "$before" ] || die "the copy counter did not answer"
    {
        tail -1 "$WORK/copycount.out" | tr -d '\n'
        awk '{sub(":", "", $1); printf " %s=%s", $1, $2} END {print ""}' "/proc/$BROKER_PID/io"
    } >>"$SNAPSHOTS"
    echo "$SNAPSHOTS:$(wc -l <"$SNAPSHOTS")"
}

# copies_fetch PHASE TOPIC
copies_fetch() {
    local phase=$1 topic=$2 before after summary
    before=$(snapshot)
    summary=$(ctl perf consume --topic "$topic" | tail -1)
    sleep 0.2
    after=$(snapshot)
    "$PY" "$HELPER" copies "$RESULTS" --phase "$phase" --before "$before" --after "$after" \
        --served-bytes "$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["batch_bytes"])' "$summary")" \
        --mib-per-sec "$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["batch_mb_per_sec"])' "$summary")"
}

copies_produce() {
    local before after summary
    ctl topics create --topic copies-produce --partitions 1 --replication-factor 1 >/dev/null
    before=$(snapshot)
    summary=$(ctl perf produce --topic copies-produce --record-size 10240 --acks 1 --duration "$BENCH_SECONDS" | tail -1)
    sleep 0.2
    after=$(snapshot)
    "$PY" "$HELPER" copies "$RESULTS" --phase "produce 10 KiB records, acks=1 (control; values received)" \
        --before "$before" --after "$after" \
        --served-bytes "$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["bytes"])' "$summary")" \
        --mib-per-sec "$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["mb_per_sec"])' "$summary")"
    ctl topics delete --topic copies-produce >/dev/null
}

step "broker on $BOOT, data in $DATA"
start_broker
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

step "prepare the fetch logs: $BENCH_FETCH_MIB MiB of 100 B and of 10 KiB records"
ctl topics create --topic fetch-100b --partitions 1 --replication-factor 1 >/dev/null
ctl topics create --topic fetch-10k --partitions 1 --replication-factor 1 >/dev/null
ctl perf produce --topic fetch-100b --record-size 100 --acks 1 \
    --num-records $((BENCH_FETCH_MIB * 1048576 / 100)) | tail -1
ctl perf produce --topic fetch-10k --record-size 10240 --acks 1 \
    --num-records $((BENCH_FETCH_MIB * 1048576 / 10240)) | tail -1
# Warm the page cache (and check both logs read back whole).
ctl perf consume --topic fetch-100b | tail -1
ctl perf consume --topic fetch-10k | tail -1

for round in $(seq 1 "$BENCH_RUNS"); do
    step "round $round of $BENCH_RUNS (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    measure_loopback "$round"
    measure_disk "$round"
    measure_cache_read "$round"
    produce_runs "$round"
    request_runs "$round"
    fetch_runs "$round"
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

if [ -n "$COPYCOUNT" ]; then
    step "zero copy: the broker under the copy counter"
    stop_broker
    start_broker COPYCOUNT_OUT="$WORK/copycount.out" LD_PRELOAD="$COPYCOUNT"
    copies_fetch "fetch $BENCH_FETCH_MIB MiB log, 10 KiB records" fetch-10k
    copies_fetch "fetch $BENCH_FETCH_MIB MiB log, 100 B records" fetch-100b
    copies_produce
fi
stop_broker

step "report"
elapsed=$(($(date +%s) - started_at))
"$PY" - "$WORK/machine.json" <<EOF
import json, os, platform, subprocess, sys
def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception:
        return "?"
cpu = "?"
with open("/proc/cpuinfo") as f:
    for line in f:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
mem_kib = 0
with open("/proc/meminfo") as f:
    for line in f:
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
commit = sh("git rev-parse --short HEAD")
if sh("git status --porcelain --untracked-files=no"):
    commit += " (with uncommitted changes)"
machine = {
    "date": sh("date -u '+%Y-%m-%d %H:%M UTC'"),
    "commit": commit,
    "cpu": cpu,
    "cores": os.cpu_count(),
    "memory": f"{mem_kib / 1048576:.0f} GiB",
    "kernel": platform.release(),
    "rustc": sh("rustc --version"),
    "filesystem": sh("df -PT '$WORK' | awk 'NR==2 {print \$2 \" on \" \$1}'"),
    "load_start": "$load_start",
    "load_end": "$load_end",
    "seconds": "$BENCH_SECONDS",
    "runs": $BENCH_RUNS,
    "in_flight": $BENCH_IN_FLIGHT,
    "fetch_mib": $BENCH_FETCH_MIB,
    "elapsed": "$((elapsed / 60)) min $((elapsed % 60)) s",
}
json.dump(machine, open(sys.argv[1], "w"), indent=1)
EOF
"$PY" "$HELPER" report "$RESULTS" "$WORK/machine.json" "$BENCH_OUTPUT"
mkdir -p "$target_dir/bench"
cp "$RESULTS" "$WORK/machine.json" "$target_dir/bench/"
echo "raw results: $target_dir/bench/results.jsonl"
