#!/usr/bin/env bash
# Start-up time and memory (issue 14): rewrites the section of BENCHMARKS.md between
# <!-- bench-startup:begin --> and <!-- bench-startup:end -->.
#
#   1. builds `gregor` and `gregorctl` (release);
#   2. an empty broker: time from exec to the first accepted TCP connection, and its RSS
#      once idle (1 s after it accepts);
#   3. a topic of BENCH_PARTITIONS partitions filled with BENCH_GB GiB of 10 KiB records
#      (`gregorctl perf produce`, acks=1), then, BENCH_RUNS times each:
#        - clean: SIGTERM (clean shutdown, checkpoints written), start, time to accept;
#        - kill -9 idle: start, kill -9 once it accepts (nothing written since the last
#          checkpoint), start again, time to accept;
#        - kill -9 after writes: BENCH_DIRTY_MB MiB more produced, kill -9 at once (the
#          recovery points lag: what is past them is recovered), start, time to accept;
#      with the RSS once idle after each start;
#   4. writes the medians and ranges.
#
# Environment (defaults in brackets):
#   BENCH_RUNS [3]            rounds per case
#   BENCH_PARTITIONS [1000]   partitions of the filled topic
#   BENCH_GB [10]             GiB of records in it
#   BENCH_DIRTY_MB [512]      MiB produced just before the "kill -9 after writes" case
#   BENCH_DIR [$TMPDIR or /tmp]
#   BENCH_OUTPUT [BENCHMARKS.md]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_PARTITIONS=${BENCH_PARTITIONS:-1000}
BENCH_GB=${BENCH_GB:-10}
BENCH_DIRTY_MB=${BENCH_DIRTY_MB:-512}
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}}
BENCH_OUTPUT=${BENCH_OUTPUT:-BENCHMARKS.md}
PY=${BENCH_PYTHON:-python3}
started_at=$(date +%s)

echo "==> build (release)"
cargo build --release -p gregor-broker -p gregor-cli
target_dir=$(cargo metadata --format-version 1 --no-deps |
    "$PY" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
GREGOR="$target_dir/release/gregor"
CTL="$target_dir/release/gregorctl"

WORK=$(mktemp -d "$BENCH_DIR/gregor-startup.XXXXXX")
RESULTS="$WORK/results.tsv"
PID=""
stop() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill -"${1:-TERM}" "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    PID=""
}
cleanup() {
    local status=$?
    stop KILL
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
PORT=$(free_port)
CONTROLLER=$(free_port)
BOOT="127.0.0.1:$PORT"
cat >"$WORK/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$WORK/data
PROPS

# start: starts the broker (PID) and sets US to the microseconds from exec to the first
# accepted connection.
US=0
start() {
    local t0 now
    t0=$(date +%s%N)
    "$GREGOR" "$WORK/server.properties" >>"$WORK/broker.log" 2>&1 &
    PID=$!
    until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do
        kill -0 "$PID" 2>/dev/null || { tail -20 "$WORK/broker.log" >&2; exit 1; }
        sleep 0.001
    done
    now=$(date +%s%N)
    US=$(((now - t0) / 1000))
}
# rss_kib: the broker's resident set once idle.
rss_kib() {
    sleep 1
    awk '/^VmRSS/ {print $2}' "/proc/$PID/status"
}
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RESULTS"; }
produce() {
    "$CTL" --bootstrap-server "$BOOT" perf produce --topic big --num-records "$1" \
        --record-size 10000 --acks 1 --json >/dev/null
}

echo "==> empty broker"
for _ in $(seq "$BENCH_RUNS"); do
    rm -rf "$WORK/data"
    start
    record empty "$US" "$(rss_kib)"
    stop TERM
done

echo "==> filling $BENCH_PARTITIONS partitions with $BENCH_GB GiB"
rm -rf "$WORK/data"
start
"$CTL" --bootstrap-server "$BOOT" topics create --topic big --partitions "$BENCH_PARTITIONS" >/dev/null
produce $((BENCH_GB * 1024 * 1024 * 1024 / 10000))
stop TERM
data_bytes=$(du -sb "$WORK/data" | cut -f1)

for round in $(seq "$BENCH_RUNS"); do
    echo "==> round $round"
    start
    record clean "$US" "$(rss_kib)"
    stop KILL
    start
    record kill-idle "$US" "$(rss_kib)"
    produce $((BENCH_DIRTY_MB * 1024 * 1024 / 10000))
    stop KILL
    start
    record kill-dirty "$US" "$(rss_kib)"
    stop TERM
done

PYTHONPATH="$PWD/scripts/bench" "$PY" - "$RESULTS" "$BENCH_OUTPUT" "$data_bytes" "$BENCH_PARTITIONS" "$BENCH_RUNS" \
    "$BENCH_DIRTY_MB" "$(git rev-parse --short HEAD)" "$(($(date +%s) - started_at))" <<'PY'
from section import replace_section
import statistics, sys, time, os
results, output, data_bytes, partitions, runs, dirty, commit, total = sys.argv[1:]
rows = {}
for line in open(results):
    case, us, rss = line.split()
    rows.setdefault(case, []).append((int(us) / 1000, int(rss) / 1024))
names = {
    "empty": "empty data directory",
    "clean": f"{int(partitions):,} partitions, {int(data_bytes) / 2**30:.1f} GiB, after a clean shutdown",
    "kill-idle": f"the same after kill -9 (nothing written since the last checkpoint)",
    "kill-dirty": f"the same after kill -9 right after {dirty} MiB more were produced",
}
load = open("/proc/loadavg").read().split()[:3]
out = [
    f"Generated by `scripts/bench-startup.sh` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
    f"commit `{commit}`, release build, BENCH_RUNS={runs}, total {total} s, load average "
    f"{' '.join(load)} at the end. Start-up is the time from exec to the first accepted TCP "
    "connection on the broker listener (the process exec included); RSS is read 1 s after it.",
    "",
    "| case | start-up ms (median) | range | RSS MiB (median) |",
    "| --- | ---: | --- | ---: |",
]
for case in ("empty", "clean", "kill-idle", "kill-dirty"):
    values = rows.get(case, [])
    if not values:
        continue
    ms = [v[0] for v in values]
    rss = [v[1] for v in values]
    out.append(
        f"| {names[case]} | **{statistics.median(ms):.1f}** | {min(ms):.1f}–{max(ms):.1f} "
        f"| {statistics.median(rss):.1f} |"
    )
replace_section(output, "bench-startup", "Start-up and memory (issue 14)", out)
print("\n".join(out))
PY
