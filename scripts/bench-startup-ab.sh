#!/usr/bin/env bash
# Start-up time and memory, A/B (issue 14): rewrites the section of BENCHMARKS.md between
# <!-- bench-startup-ab:begin --> and <!-- bench-startup-ab:end -->.
#
#   1. builds the release `gregor` of BENCH_BASE (a `git archive` of it, sharing this
#      checkout's target directory for the dependencies) as A, and of this checkout as B;
#   2. fills a topic of BENCH_PARTITIONS partitions with BENCH_GB GiB of 10 KiB records
#      (B's `gregorctl perf produce`, acks=1);
#   3. BENCH_RUNS rounds; in each, A and B (the order alternating from round to round) each:
#        - clean: start after a clean shutdown, time to the first accepted connection;
#        - kill -9 idle: kill -9 once it accepts, start again;
#        - kill -9 after writes: BENCH_DIRTY_MB MiB more produced, kill -9 at once (what
#          is past the recovery points is recovered), start again;
#      then SIGTERM (a clean shutdown for the next binary). RSS is read 1 s after each start;
#   4. writes medians with ranges per binary, and B/A as the median of the ratios taken
#      within each round.
#
# Environment (defaults in brackets):
#   BENCH_BASE [main]          git revision built as A
#   BENCH_A / BENCH_B          prebuilt `gregor` binaries instead of the builds
#   BENCH_CTL                  a prebuilt `gregorctl` (with BENCH_B: no build at all)
#   BENCH_RUNS [5]             rounds
#   BENCH_PARTITIONS [1000]    partitions of the filled topic
#   BENCH_GB [2]               GiB of records in it
#   BENCH_DIRTY_MB [128]       MiB produced before the "kill -9 after writes" case
#   BENCH_DATA                 a data directory filled before (kept; grows by the dirty writes)
#   BENCH_DIR [$TMPDIR or /tmp]
#   BENCH_OUTPUT [BENCHMARKS.md]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

BENCH_BASE=${BENCH_BASE:-main}
BENCH_RUNS=${BENCH_RUNS:-5}
BENCH_PARTITIONS=${BENCH_PARTITIONS:-1000}
BENCH_GB=${BENCH_GB:-2}
BENCH_DIRTY_MB=${BENCH_DIRTY_MB:-128}
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}}
BENCH_OUTPUT=${BENCH_OUTPUT:-BENCHMARKS.md}
PY=${BENCH_PYTHON:-python3}
started_at=$(date +%s)

WORK=$(mktemp -d "$BENCH_DIR/gregor-startup-ab.XXXXXX")
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

target_dir=$(cargo metadata --format-version 1 --no-deps |
    "$PY" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
if [ -z "${BENCH_A:-}" ]; then
    echo "==> build A ($BENCH_BASE, release)"
    mkdir -p "$WORK/base" "$WORK/bin-a"
    git archive "$BENCH_BASE" | tar -x -C "$WORK/base"
    (cd "$WORK/base" && CARGO_TARGET_DIR="$target_dir" cargo build --release -p gregor-broker)
    cp "$target_dir/release/gregor" "$WORK/bin-a/gregor"
    BENCH_A="$WORK/bin-a/gregor"
fi
if [ -z "${BENCH_B:-}" ] || [ -z "${BENCH_CTL:-}" ]; then
    echo "==> build B (this checkout, release)"
    cargo build --release -p gregor-broker -p gregor-cli
fi
CTL=${BENCH_CTL:-"$target_dir/release/gregorctl"}
if [ -z "${BENCH_B:-}" ]; then
    mkdir -p "$WORK/bin-b"
    cp "$target_dir/release/gregor" "$WORK/bin-b/gregor"
    BENCH_B="$WORK/bin-b/gregor"
fi

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
log.dirs=${BENCH_DATA:-$WORK/data}
PROPS

# start BIN: starts the broker (PID) and sets US to the microseconds from exec to the first
# accepted connection.
US=0
start() {
    local t0 now
    t0=$(date +%s%N)
    "$1" "$WORK/server.properties" >>"$WORK/broker.log" 2>&1 &
    PID=$!
    until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do
        kill -0 "$PID" 2>/dev/null || { tail -20 "$WORK/broker.log" >&2; exit 1; }
        sleep 0.001
    done
    now=$(date +%s%N)
    US=$(((now - t0) / 1000))
}
# rss_kib: the broker's resident set once idle, and its anonymous part (heap and stacks;
# the rest is pages of the executable, whose count varies from build to build with the
# code layout).
rss_kib() {
    sleep 1
    awk '/^VmRSS/ {rss = $2} /^RssAnon/ {anon = $2} END {print rss "\t" anon}' "/proc/$PID/status"
}
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$RESULTS"; }
produce() {
    "$CTL" --bootstrap-server "$BOOT" perf produce --topic big --num-records "$1" \
        --record-size 10000 --acks 1 --json >/dev/null
}

if [ -n "${BENCH_DATA:-}" ]; then
    # A directory an earlier run filled (its topic `big` of BENCH_PARTITIONS partitions).
    rmdir "$WORK/data" 2>/dev/null || true
    ln -s "$BENCH_DATA" "$WORK/data"
else
    echo "==> filling $BENCH_PARTITIONS partitions with $BENCH_GB GiB"
    start "$BENCH_B"
    "$CTL" --bootstrap-server "$BOOT" topics create --topic big --partitions "$BENCH_PARTITIONS" >/dev/null
    produce $((BENCH_GB * 1024 * 1024 * 1024 / 10000))
    stop TERM
fi
data_bytes=$(du -sbL "$WORK/data" | cut -f1)

for round in $(seq "$BENCH_RUNS"); do
    if [ $((round % 2)) -eq 1 ]; then order="A B"; else order="B A"; fi
    echo "==> round $round ($order)"
    for which in $order; do
        if [ "$which" = A ]; then bin=$BENCH_A; else bin=$BENCH_B; fi
        start "$bin"
        record "$round" "$which" clean "$US" "$(rss_kib)"
        stop KILL
        start "$bin"
        record "$round" "$which" kill-idle "$US" "$(rss_kib)"
        produce $((BENCH_DIRTY_MB * 1024 * 1024 / 10000))
        stop KILL
        start "$bin"
        record "$round" "$which" kill-dirty "$US" "$(rss_kib)"
        stop TERM
    done
done

PYTHONPATH="$PWD/scripts/bench" "$PY" - "$RESULTS" "$BENCH_OUTPUT" "$data_bytes" "$BENCH_PARTITIONS" \
    "$BENCH_RUNS" "$BENCH_DIRTY_MB" "$BENCH_BASE" "$(git rev-parse --short "$BENCH_BASE")" \
    "$(git rev-parse --short HEAD)" "$(($(date +%s) - started_at))" <<'PY'
from section import replace_section
import statistics, sys, time
results, output, data_bytes, partitions, runs, dirty, base, base_commit, commit, total = sys.argv[1:]
rows = {}
for line in open(results):
    rnd, which, case, us, rss, anon = line.split()
    rows.setdefault((case, which), {})[int(rnd)] = (int(us) / 1000, int(rss) / 1024, int(anon) / 1024)
names = {
    "clean": f"{int(partitions):,} partitions, {int(data_bytes) / 2**30:.1f} GiB, after a clean shutdown",
    "kill-idle": "the same after kill -9 (nothing written since the last start)",
    "kill-dirty": f"the same after kill -9 right after {dirty} MiB more were produced",
}
def spread(values):
    return f"**{statistics.median(values):.1f}** ({min(values):.1f}–{max(values):.1f})"
load = open("/proc/loadavg").read().split()[:3]
out = [
    f"Generated by `scripts/bench-startup-ab.sh` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
    f"A = `{base}` (`{base_commit}`), B = `{commit}`, both release builds of this run, "
    f"BENCH_RUNS={runs} interleaved rounds (A first in odd rounds), total {total} s, load "
    f"average {' '.join(load)} at the end. Start-up: exec to the first accepted TCP connection "
    "on the broker listener; RSS read 1 s after it, and its anonymous part (heap, stacks: "
    "the rest is pages of the executable). Medians (ranges); B/A is the median of the ratios "
    "taken within each round.",
    "",
    "| case | A ms | B ms | B/A time | A RSS MiB | B RSS MiB | A anon MiB | B anon MiB | B/A anon |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
]
for case in ("clean", "kill-idle", "kill-dirty"):
    a, b = rows.get((case, "A"), {}), rows.get((case, "B"), {})
    both = sorted(set(a) & set(b))
    if not both:
        continue
    ratio_ms = statistics.median(b[r][0] / a[r][0] for r in both)
    ratio_anon = statistics.median(b[r][2] / a[r][2] for r in both)
    out.append(
        f"| {names[case]} | {spread([a[r][0] for r in both])} | {spread([b[r][0] for r in both])} "
        f"| {ratio_ms:.2f} | {spread([a[r][1] for r in both])} | {spread([b[r][1] for r in both])} "
        f"| {spread([a[r][2] for r in both])} | {spread([b[r][2] for r in both])} | {ratio_anon:.2f} |"
    )
replace_section(output, "bench-startup-ab", "Start-up A/B (issue 14)", out)
print("\n".join(out))
PY
