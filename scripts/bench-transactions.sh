#!/usr/bin/env bash
# Transactional produce against the idempotent producer (issue 9), in one run of the
# release `gregor`: for BENCH_RUNS rounds, each round runs, one after another on one
# broker,
#
#   idempotent   gregorctl perf produce --idempotent                      (acks=all)
#   txn-100      gregorctl perf produce --transactional-id ... --transaction-records 100
#   txn-10000    gregorctl perf produce --transactional-id ... --transaction-records 10000
#
# each BENCH_RECORDS records of BENCH_RECORD_SIZE bytes to a topic of one partition
# (Kafka's producer defaults otherwise: batch.size 16384, max.in.flight 5, no
# compression), and reads the broker's CPU time (utime + stime from /proc/PID/stat) before
# and after each phase. The table gives the median over the rounds of records/s,
# transactions/s, per-transaction latency, broker CPU per record and per transaction, the
# ratios against the idempotent phase of the same round, and the extra broker CPU per
# transaction: (CPU of the phase - CPU of the idempotent phase) / transactions.
#
# Environment: BENCH_RUNS [3], BENCH_RECORDS [1000000], BENCH_RECORD_SIZE [100],
#              BENCH_TXN_VERSION [2] (the transaction version the producer uses: 1 sends
#              AddPartitionsToTxn; 2, what the broker finalizes, adds partitions through
#              Produce v12+), BENCH_DIR [$TMPDIR or /tmp], BENCH_WRITE [1] (0: print the
#              section only, do not rewrite BENCHMARKS.md), BENCH_IDLE_SECONDS [20] (how
#              long the broker's idle CPU is measured before the rounds).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_RECORDS=${BENCH_RECORDS:-1000000}
BENCH_RECORD_SIZE=${BENCH_RECORD_SIZE:-100}
BENCH_TXN_VERSION=${BENCH_TXN_VERSION:-2}
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}}
BENCH_WRITE=${BENCH_WRITE:-1}
BENCH_IDLE_SECONDS=${BENCH_IDLE_SECONDS:-20}

cargo build --release -q -p gregor-broker -p gregor-cli
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
GREGOR="$target_dir/release/gregor"
CTL="$target_dir/release/gregorctl"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# CPU seconds (user + system) of process $1 so far.
cpu_seconds() {
    python3 - "$1" <<'PY'
import os, sys
stat = open(f"/proc/{sys.argv[1]}/stat").read()
fields = stat[stat.rindex(")") + 2:].split()
print((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
PY
}

dir=$(mktemp -d "$BENCH_DIR/gregor-txn-bench.XXXXXX")
port=$(free_port)
cport=$(free_port)
cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
auto.create.topics.enable=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
PROPS
RUST_LOG=warn "$GREGOR" "$dir/server.properties" >"$dir/broker.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
ctl=("$CTL" --bootstrap-server "127.0.0.1:$port")
for _ in $(seq 300); do "${ctl[@]}" api-versions >/dev/null 2>&1 && break; sleep 0.1; done

# The broker's own CPU while nothing is sent (timers, background threads), per second: the
# phases differ in length, so this is reported and subtracted from the extra CPU.
sleep 2
idle_before=$(cpu_seconds "$pid")
sleep "$BENCH_IDLE_SECONDS"
idle_cpu=$(python3 -c "print(($(cpu_seconds "$pid") - $idle_before) / $BENCH_IDLE_SECONDS)")
started=$(date -u '+%Y-%m-%d %H:%M UTC')
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
results="$dir/results.jsonl"
: >"$results"
# phase NAME ROUND ARGS...: runs gregorctl perf produce with ARGS, appends
# {"phase", "round", "cpu_s", "summary"} to the results.
phase() {
    local name=$1 round=$2 before after out
    shift 2
    before=$(cpu_seconds "$pid")
    out=$("${ctl[@]}" perf produce --num-records "$BENCH_RECORDS" \
        --record-size "$BENCH_RECORD_SIZE" --acks all "$@" 2>"$dir/stderr" | tail -1) || true
    after=$(cpu_seconds "$pid")
    python3 - "$name" "$round" "$before" "$after" "$out" "$(tail -1 "$dir/stderr")" >>"$results" <<'PY'
import json, sys
name, rnd, before, after, out, err = sys.argv[1:7]
try:
    summary = json.loads(out)
except ValueError:
    summary = {"first_error": err or "no summary"}
print(json.dumps({"phase": name, "round": int(rnd), "cpu_s": float(after) - float(before),
                  "summary": summary}))
PY
    echo "round $round $name: $(tail -1 "$results" | cut -c1-160)" >&2
}

for round in $(seq "$BENCH_RUNS"); do
    "${ctl[@]}" topics create --topic "idem-$round" --partitions 1 >/dev/null
    "${ctl[@]}" topics create --topic "txn100-$round" --partitions 1 >/dev/null
    "${ctl[@]}" topics create --topic "txn10k-$round" --partitions 1 >/dev/null
    phase idempotent "$round" --topic "idem-$round" --idempotent
    phase txn-100 "$round" --topic "txn100-$round" --transactional-id "bench-100-$round" \
        --transaction-records 100 --transaction-version "$BENCH_TXN_VERSION"
    phase txn-10000 "$round" --topic "txn10k-$round" --transactional-id "bench-10k-$round" \
        --transaction-records 10000 --transaction-version "$BENCH_TXN_VERSION"
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

section=$(python3 - "$results" "$started" "$(git rev-parse --short HEAD)" "$load_start" "$load_end" \
    "$BENCH_RUNS" "$BENCH_RECORDS" "$BENCH_RECORD_SIZE" "$BENCH_TXN_VERSION" "$idle_cpu" <<'PY'
import json, statistics, sys
path, started, commit, load_start, load_end, runs, records, size, tv, idle = sys.argv[1:11]
idle = float(idle)
rows = [json.loads(l) for l in open(path) if l.strip()]
phases = ["idempotent", "txn-100", "txn-10000"]
by = {(r["phase"], r["round"]): r for r in rows}
rounds = sorted({r["round"] for r in rows})
med = statistics.median

def fig(phase, key):
    return [by[(phase, n)] for n in rounds if (phase, n) in by]

out = []
out.append(f"Generated by `scripts/bench-transactions.sh` on {started} (commit `{commit}`, "
           f"release profile, the shared 2-core machine; load average {load_start} at the start, "
           f"{load_end} at the end). {int(runs)} rounds; every figure is the **median over the "
           f"rounds**, and every ratio is taken within a round (against that round's idempotent "
           f"phase, run minutes apart on the same broker) before the median. Each phase sends "
           f"{int(records):,} records of {int(size)} B (acks=all, batch.size 16384, "
           f"max.in.flight 5, no compression) to its own one-partition topic; transactions use "
           f"transaction version {tv}.")
out.append("")
out.append("| producer | records/s | of idempotent | transactions/s | txn p50 ms | txn p99 ms | "
           "broker CPU µs/record | broker CPU µs/txn | extra broker CPU µs/txn | of which not idle | coordinator retries/txn |")
out.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
failures = []
for phase in phases:
    rs = fig(phase, None)
    ok = [r for r in rs if r["summary"].get("records", 0) == int(records) and not r["summary"].get("first_error")]
    for r in rs:
        if r not in ok:
            failures.append(f"round {r['round']} {phase}: {r['summary'].get('first_error', 'incomplete')}")
    if not ok:
        out.append(f"| {phase} | failed | | | | | | | | | |")
        continue
    rps = med([r["summary"]["records_per_sec"] for r in ok])
    ratios = []
    extras = []
    for r in ok:
        base = by.get(("idempotent", r["round"]))
        if base and base["summary"].get("records") == int(records):
            ratios.append(r["summary"]["records_per_sec"] / base["summary"]["records_per_sec"])
            t = r["summary"].get("transactions", 0)
            if t:
                extra = r["cpu_s"] - base["cpu_s"]
                net = extra - idle * (r["summary"]["duration_s"] - base["summary"]["duration_s"])
                extras.append((extra / t * 1e6, net / t * 1e6))
    cpu_rec = med([r["cpu_s"] / int(records) * 1e6 for r in ok])
    if phase == "idempotent":
        out.append(f"| idempotent | **{rps:,.0f}** | 1.00 | | "
                   f"{med([r['summary']['latency_ms']['p50'] for r in ok]):.3f}\\* | "
                   f"{med([r['summary']['latency_ms']['p99'] for r in ok]):.3f}\\* | "
                   f"{cpu_rec:.3f} | | | | |")
        continue
    tps = med([r["summary"]["transactions_per_sec"] for r in ok])
    cpu_txn = med([r["cpu_s"] / r["summary"]["transactions"] * 1e6 for r in ok])
    retries = med([r["summary"].get("coordinator_retries", 0) / r["summary"]["transactions"] for r in ok])
    out.append(f"| {phase.replace('txn-', '')}-record transactions | **{rps:,.0f}** | "
               f"{med(ratios):.2f} | {tps:,.1f} | "
               f"{med([r['summary']['latency_ms']['p50'] for r in ok]):.3f} | "
               f"{med([r['summary']['latency_ms']['p99'] for r in ok]):.3f} | "
               f"{cpu_rec:.3f} | {cpu_txn:,.0f} | {med([e[0] for e in extras]):,.0f} | "
               f"{med([e[1] for e in extras]):,.0f} | {retries:.2f} |"
               if extras else f"| {phase} | {rps:,.0f} | | | | | | | | | |")
out.append("")
out.append("\\* The idempotent row's latency is per batch (send to acknowledgement), not per transaction.")
out.append("")
out.append(f"The idle broker used {idle * 1000:.1f} ms of CPU per second (measured before the rounds); "
           "\"of which not idle\" subtracts that rate over the phase's extra duration from the extra CPU.")
if failures:
    out.append("")
    out.append("Failed phases: " + "; ".join(failures))
print("\n".join(out))
PY
)
echo "$section"
if [ "$BENCH_WRITE" = 1 ]; then
    python3 - BENCHMARKS.md "$section" <<'PY'
import sys
path, section = sys.argv[1:3]
text = open(path).read()
begin, end = "<!-- bench-transactions:begin -->", "<!-- bench-transactions:end -->"
if begin in text and end in text:
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    text = f"{head}{begin}\n\n{section}\n\n{end}{tail}"
else:
    text = text.rstrip("\n") + f"\n\n{begin}\n\n{section}\n\n{end}\n"
open(path, "w").write(text)
PY
fi
