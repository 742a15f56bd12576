#!/usr/bin/env bash
# Fetch cost with and without fetch sessions (KIP-227, issue 11), in one run of the release
# `gregor`: a topic of BENCH_PARTITIONS partitions, and for BENCH_RUNS rounds the four
# phases
#
#   idle/none           gregorctl perf fetch-sessions --session none
#   idle/incremental    gregorctl perf fetch-sessions --session incremental
#   trickle/none        ... --session none        --trickle-partitions BENCH_TRICKLE
#   trickle/incremental ... --session incremental --trickle-partitions BENCH_TRICKLE
#
# of BENCH_FETCHES fetches each, reading the broker's CPU time (utime + stime from
# /proc/PID/stat) before and after every phase. Bytes per fetch come from gregorctl (the
# request and response frames it sent and received). The table gives the median over the
# rounds, and the ratios incremental / sessionless taken within each round. In the trickle
# phases the broker's CPU includes the one Produce (BENCH_TRICKLE records) before each
# fetch, the same in both modes.
#
# Environment: BENCH_RUNS [3], BENCH_FETCHES [2000], BENCH_PARTITIONS [1000],
#              BENCH_TRICKLE [5], BENCH_DIR [$TMPDIR or /tmp], BENCH_WRITE [1] (0: print
#              the section only, do not rewrite BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_FETCHES=${BENCH_FETCHES:-2000}
BENCH_PARTITIONS=${BENCH_PARTITIONS:-1000}
BENCH_TRICKLE=${BENCH_TRICKLE:-5}
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}}
BENCH_WRITE=${BENCH_WRITE:-1}

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

dir=$(mktemp -d "$BENCH_DIR/gregor-sessions-bench.XXXXXX")
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
PROPS
RUST_LOG=warn "$GREGOR" "$dir/server.properties" >"$dir/broker.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
ctl=("$CTL" --bootstrap-server "127.0.0.1:$port")
for _ in $(seq 300); do "${ctl[@]}" api-versions >/dev/null 2>&1 && break; sleep 0.1; done
"${ctl[@]}" topics create --topic sessions --partitions "$BENCH_PARTITIONS" >/dev/null

started=$(date -u '+%Y-%m-%d %H:%M UTC')
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
results="$dir/results.jsonl"
: >"$results"
# phase CASE SESSION TRICKLE ROUND
phase() {
    local case=$1 session=$2 trickle=$3 round=$4 before after out
    before=$(cpu_seconds "$pid")
    out=$("${ctl[@]}" perf fetch-sessions --topic sessions --fetches "$BENCH_FETCHES" \
        --session "$session" --trickle-partitions "$trickle" | tail -1)
    after=$(cpu_seconds "$pid")
    python3 - "$case" "$session" "$round" "$before" "$after" "$out" >>"$results" <<'PY'
import json, sys
case, session, rnd, before, after, out = sys.argv[1:7]
print(json.dumps({"case": case, "session": session, "round": int(rnd),
                  "cpu_s": float(after) - float(before), "summary": json.loads(out)}))
PY
    echo "round $round $case/$session: $(tail -1 "$results" | cut -c1-160)" >&2
}

for round in $(seq "$BENCH_RUNS"); do
    phase idle none 0 "$round"
    phase idle incremental 0 "$round"
    phase trickle none "$BENCH_TRICKLE" "$round"
    phase trickle incremental "$BENCH_TRICKLE" "$round"
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

section=$(python3 - "$results" "$started" "$(git rev-parse --short HEAD)" "$load_start" "$load_end" \
    "$BENCH_RUNS" "$BENCH_FETCHES" "$BENCH_PARTITIONS" "$BENCH_TRICKLE" <<'PY'
import json, statistics, sys
path, started, commit, load_start, load_end, runs, fetches, partitions, trickle = sys.argv[1:10]
rows = [json.loads(l) for l in open(path) if l.strip()]
by = {(r["case"], r["session"], r["round"]): r for r in rows}
rounds = sorted({r["round"] for r in rows})
med = statistics.median
n = int(fetches)

def per_fetch(r):
    s = r["summary"]
    return {
        "req": s["request_bytes_per_fetch"],
        "resp": s["response_bytes_per_fetch"],
        "later": s["later_response_bytes_per_fetch"],
        "cpu": r["cpu_s"] / s["fetches"] * 1e6,
        "rate": s["fetches_per_sec"],
        "p50": s["fetch_latency_ms"]["p50"],
        "parts": s["response_partitions_per_fetch"],
    }

out = []
out.append(f"Generated by `scripts/bench-fetch-sessions.sh` on {started} (commit `{commit}`, "
           f"release profile, the shared 2-core machine; load average {load_start} at the start, "
           f"{load_end} at the end). {int(runs)} rounds of {n:,} fetches per phase on a topic of "
           f"{int(partitions):,} partitions; every figure is the **median over the rounds**, "
           f"ratios (incremental / sessionless) are taken within each round before the median. "
           f"Trickle: {int(trickle)} partitions get one 100 B record before every fetch; its CPU "
           f"includes that Produce, the same in both modes.")
out.append("")
out.append("| case | fetch | request B/fetch | response B/fetch | partitions answered/fetch | "
           "bytes on the wire vs sessionless | broker CPU µs/fetch | CPU vs sessionless | fetches/s | p50 ms |")
out.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for case in ["idle", "trickle"]:
    for session in ["none", "incremental"]:
        rs = [per_fetch(by[(case, session, k)]) for k in rounds if (case, session, k) in by]
        if not rs:
            continue
        bytes_ratio, cpu_ratio = [], []
        for k in rounds:
            a, b = by.get((case, session, k)), by.get((case, "none", k))
            if a and b:
                fa, fb = per_fetch(a), per_fetch(b)
                bytes_ratio.append((fa["req"] + fa["resp"]) / (fb["req"] + fb["resp"]))
                if fb["cpu"] > 0:
                    cpu_ratio.append(fa["cpu"] / fb["cpu"])
        label = "sessionless" if session == "none" else "incremental session"
        out.append(f"| {case} | {label} | {med([r['req'] for r in rs]):,.0f} | "
                   f"{med([r['resp'] for r in rs]):,.0f} | {med([r['parts'] for r in rs]):,.1f} | "
                   f"**{med(bytes_ratio):.4f}** | {med([r['cpu'] for r in rs]):,.1f} | "
                   f"**{med(cpu_ratio):.2f}** | {med([r['rate'] for r in rs]):,.0f} | "
                   f"{med([r['p50'] for r in rs]):.3f} |")
out.append("")
out.append("Per-fetch bytes include the first fetch of each phase, a full one in both modes "
           "(the incremental averages are that one full answer spread over the phase).")
print("\n".join(out))
PY
)
echo "$section"
if [ "$BENCH_WRITE" = 1 ]; then
    python3 - BENCHMARKS.md "$section" <<'PY'
import sys
path, section = sys.argv[1:3]
text = open(path).read()
begin, end = "<!-- bench-fetch-sessions:begin -->", "<!-- bench-fetch-sessions:end -->"
if begin in text and end in text:
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    text = f"{head}{begin}\n\n{section}\n\n{end}{tail}"
else:
    text = text.rstrip("\n") + f"\n\n{begin}\n\n{section}\n\n{end}\n"
open(path, "w").write(text)
PY
fi
