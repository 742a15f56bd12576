#!/usr/bin/env bash
# A 3-node cluster next to one node (issue 15): rewrites the section of BENCHMARKS.md
# between <!-- bench-cluster:begin --> and <!-- bench-cluster:end -->.
#
#   1. builds `gregor` and `gregorctl` (release);
#   2. a cluster of three combined nodes (process.roles=broker,controller, all three in
#      controller.quorum.voters, each formatted with `gregor format --cluster-id` of one
#      `gregor random-uuid`; the properties are those broker/tests/support/cluster.rs
#      writes: replication factor 3 for the internal topics, Kafka's session and lag
#      timeouts) and one single node of the same shape (its own quorum of one), all on
#      127.0.0.1;
#   3. BENCH_RUNS rounds; in each (the order of the produce cases rotates per round):
#        - `gregorctl perf produce`, one producer, one partition, acks=-1, BENCH_RECORDS
#          records of BENCH_RECORD_SIZE B, each to a fresh topic: replication factor 3
#          with min.insync.replicas=2 on the cluster; replication factor 1 on the cluster;
#          replication factor 1 on the single node;
#        - `gregorctl perf consume` of the RF 3 topic and of the single node's topic from
#          the start;
#      with the brokers' CPU (utime + stime from /proc/<pid>/stat, summed over the three
#      nodes for the cluster cases) over each;
#   4. BENCH_RUNS kills: on an RF 3 topic (min.insync.replicas=2) whose ISR is all three
#      (odd kills: one led by the active controller, even kills: one led by another node),
#      kill -9 the partition's leader, then poll a surviving node every 10 ms with
#      `gregorctl metadata` until it names another leader, then try a one-record acks=all
#      `gregorctl produce` (bootstrapping from the survivors) every 10 ms until one
#      succeeds; restart the killed node and wait for the ISR to be all three again;
#   5. writes the medians, ranges and the ratios taken within each round.
#
# Environment (defaults in brackets):
#   BENCH_RUNS [3]            rounds of the produce/consume cases, and kills
#   BENCH_RECORDS [1000000]    records per produce run
#   BENCH_RECORD_SIZE [100]   bytes per record value
#   BENCH_WAIT_S [120]        longest wait for an election, a produce or the ISR to return
#   BENCH_DIR [$TMPDIR or /tmp]  BENCH_OUTPUT [BENCHMARKS.md]
#   BENCH_KEEP [0]            1 keeps the temporary directory (node logs, results)
#
# With the defaults it takes about 1-2 minutes after the build on a 2-core machine (most of
# it the kills: the controller fences a killed broker after broker.session.timeout.ms, 9 s).
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_RECORDS=${BENCH_RECORDS:-1000000}
BENCH_RECORD_SIZE=${BENCH_RECORD_SIZE:-100}
BENCH_WAIT_S=${BENCH_WAIT_S:-120}
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}}
BENCH_OUTPUT=${BENCH_OUTPUT:-BENCHMARKS.md}
BENCH_KEEP=${BENCH_KEEP:-0}
PY=${BENCH_PYTHON:-python3}
started_at=$(date +%s)

echo "==> build (release)"
cargo build --release -p gregor-broker -p gregor-cli
target_dir=$(cargo metadata --format-version 1 --no-deps |
    "$PY" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
GREGOR="$target_dir/release/gregor"
CTL="$target_dir/release/gregorctl"

WORK=$(mktemp -d "$BENCH_DIR/gregor-cluster.XXXXXX")
RESULTS="$WORK/results.jsonl"
ELECTIONS="$WORK/elections.jsonl"
# PIDS[1..3]: the cluster's nodes; PIDS[0]: the single node.
PIDS=("" "" "" "")
cleanup() {
    local status=$?
    for pid in "${PIDS[@]}"; do
        if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    done
    if [ "$BENCH_KEEP" = 1 ] || [ "$status" != 0 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ports=$("$PY" -c '
import socket
s = [socket.socket() for _ in range(8)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')
read -r -a PORT_LIST <<<"$ports"
# PLAIN[i] / CONTROLLER[i]: node i's broker and controller ports (0: the single node).
PLAIN=("${PORT_LIST[0]}" "${PORT_LIST[1]}" "${PORT_LIST[2]}" "${PORT_LIST[3]}")
CONTROLLER=("${PORT_LIST[4]}" "${PORT_LIST[5]}" "${PORT_LIST[6]}" "${PORT_LIST[7]}")
VOTERS="1@127.0.0.1:${CONTROLLER[1]},2@127.0.0.1:${CONTROLLER[2]},3@127.0.0.1:${CONTROLLER[3]}"
CLUSTER_BOOT="127.0.0.1:${PLAIN[1]},127.0.0.1:${PLAIN[2]},127.0.0.1:${PLAIN[3]}"
SINGLE_BOOT="127.0.0.1:${PLAIN[0]}"

# properties I: node I's server.properties (0: the single node, id 1, a quorum of one),
# the keys broker/tests/support/cluster.rs writes.
properties() {
    local i=$1 id voters replication=3 min_isr=2
    if [ "$i" = 0 ]; then
        id=1 voters="1@127.0.0.1:${CONTROLLER[0]}" replication=1 min_isr=1
    else
        id=$i voters=$VOTERS
    fi
    cat <<PROPS
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:${PLAIN[$i]},CONTROLLER://127.0.0.1:${CONTROLLER[$i]}
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://127.0.0.1:${PLAIN[$i]}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
num.network.threads=3
num.io.threads=8
socket.request.max.bytes=104857600
log.dirs=$WORK/node$i
num.partitions=1
offsets.topic.replication.factor=$replication
transaction.state.log.replication.factor=$replication
transaction.state.log.min.isr=$min_isr
default.replication.factor=$replication
broker.session.timeout.ms=9000
broker.heartbeat.interval.ms=2000
replica.lag.time.max.ms=30000
log.retention.hours=168
log.segment.bytes=1073741824
PROPS
}

echo "==> format"
CLUSTER_ID=$("$GREGOR" random-uuid)
SINGLE_ID=$("$GREGOR" random-uuid)
for i in 0 1 2 3; do
    properties "$i" >"$WORK/node$i.properties"
    id=$CLUSTER_ID
    [ "$i" = 0 ] && id=$SINGLE_ID
    "$GREGOR" format --cluster-id "$id" --config "$WORK/node$i.properties" >/dev/null
done

logs_tail() {
    for i in 0 1 2 3; do
        echo "--- node$i.log (last 15 lines)" >&2
        tail -15 "$WORK/node$i.log" >&2 2>/dev/null || true
    done
}
start_node() {
    local i=$1
    RUST_LOG=${RUST_LOG:-info} "$GREGOR" "$WORK/node$i.properties" >>"$WORK/node$i.log" 2>&1 &
    PIDS[i]=$!
}
wait_port() {
    local i=$1
    until (exec 3<>"/dev/tcp/127.0.0.1/${PLAIN[$i]}") 2>/dev/null; do
        kill -0 "${PIDS[$i]}" 2>/dev/null || { echo "node $i exited" >&2; logs_tail; exit 1; }
        sleep 0.05
    done
}
# meta PORT [TOPIC]: "LEADER ISR_SIZE CONTROLLER BROKERS" from that node's Metadata, of
# TOPIC's partition 0 ("-1 0 CONTROLLER BROKERS" without a topic or before it is there).
meta() {
    local topic=()
    [ -n "${2:-}" ] && topic=(--topic "$2")
    "$CTL" --bootstrap-server "127.0.0.1:$1" --request-timeout-ms 5000 metadata "${topic[@]}" --json 2>/dev/null |
        "$PY" -c '
import json, sys
d = json.load(sys.stdin)
p = [p for t in d["topics"] if t["error_code"] == 0 for p in t["partitions"] if p["partition_index"] == 0]
p = p if len(d["topics"]) == 1 else []
if p and p[0]["error_code"] == 0:
    print(p[0]["leader_id"], len(p[0]["isr_nodes"]), d["controller_id"], len(d["brokers"]))
else:
    print(-1, 0, d["controller_id"], len(d["brokers"]))' 2>/dev/null || echo "-1 0 -1 0"
}
# wait_until DESCRIPTION COMMAND...: runs COMMAND every 100 ms until it succeeds.
wait_until() {
    local what=$1 deadline=$(($(date +%s) + BENCH_WAIT_S))
    shift
    until "$@"; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "bench-cluster.sh: gave up after ${BENCH_WAIT_S} s waiting for $what" >&2
            logs_tail
            exit 1
        fi
        sleep 0.1
    done
}
all_brokers_listed() {
    local i brokers
    for i in 1 2 3; do
        read -r _ _ _ brokers <<<"$(meta "${PLAIN[$i]}")"
        [ "$brokers" = 3 ] || return 1
    done
}
isr_full() {
    local leader isr
    read -r leader isr _ _ <<<"$(meta "${PLAIN[$1]}" "$2")"
    [ "$leader" -ge 1 ] && [ "$isr" = 3 ]
}

echo "==> start (3 combined nodes and a single node)"
for i in 0 1 2 3; do start_node "$i"; done
for i in 0 1 2 3; do wait_port "$i"; done
wait_until "every node to list the three brokers" all_brokers_listed

cpu_ticks() {
    local total=0 i t
    for i in "$@"; do
        t=$(awk '{print $14 + $15}' "/proc/${PIDS[$i]}/stat")
        total=$((total + t))
    done
    echo "$total"
}
ticks_per_s=$(getconf CLK_TCK)
create() {
    local boot=$1 topic=$2 rf=$3 min_isr=$4
    "$CTL" --bootstrap-server "$boot" topics create --topic "$topic" --partitions 1 \
        --replication-factor "$rf" --config "min.insync.replicas=$min_isr" >/dev/null
}
# measure ROUND CASE BOOT NODES COMMAND...: runs gregorctl, records its JSON summary line
# with the CPU seconds of NODES (indexes into PIDS, space separated) during it.
measure() {
    local round=$1 case=$2 boot=$3 nodes=$4 before after line
    shift 4
    # shellcheck disable=SC2086
    before=$(cpu_ticks $nodes)
    line=$("$CTL" --bootstrap-server "$boot" --json "$@" | tail -1)
    # shellcheck disable=SC2086
    after=$(cpu_ticks $nodes)
    "$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(round=int(sys.argv[2]), case=sys.argv[3], broker_cpu_s=(int(sys.argv[5])-int(sys.argv[4]))/int(sys.argv[6])); print(json.dumps(d))' \
        "$line" "$round" "$case" "$before" "$after" "$ticks_per_s" >>"$RESULTS"
}
produce_case() {
    local round=$1 case=$2 topic="$2-$1"
    case $case in
    rf3) create "$CLUSTER_BOOT" "$topic" 3 2 && boot=$CLUSTER_BOOT nodes="1 2 3" ;;
    rf1) create "$CLUSTER_BOOT" "$topic" 1 1 && boot=$CLUSTER_BOOT nodes="1 2 3" ;;
    single) create "$SINGLE_BOOT" "$topic" 1 1 && boot=$SINGLE_BOOT nodes="0" ;;
    esac
    if [ "$case" = rf3 ]; then wait_until "the ISR of $topic" isr_full 1 "$topic"; fi
    measure "$round" "produce-$case" "$boot" "$nodes" perf produce --topic "$topic" \
        --num-records "$BENCH_RECORDS" --record-size "$BENCH_RECORD_SIZE" --acks -1
}

cases=(rf3 rf1 single)
for round in $(seq "$BENCH_RUNS"); do
    echo "==> round $round"
    for k in 0 1 2; do
        produce_case "$round" "${cases[$(((k + round - 1) % 3))]}"
    done
    measure "$round" consume-rf3 "$CLUSTER_BOOT" "1 2 3" perf consume --topic "rf3-$round" \
        --num-records "$BENCH_RECORDS" --timeout-ms 10000
    measure "$round" consume-single "$SINGLE_BOOT" "0" perf consume --topic "single-$round" \
        --num-records "$BENCH_RECORDS" --timeout-ms 10000
done

# active_controller: the node that last logged becoming the active controller (the quorum
# leader; Metadata's controller_id names the answering broker, as Kafka's KRaft brokers do).
active_controller() {
    grep -h "became the active controller" "$WORK"/node[123].log | sort | tail -1 |
        sed -n 's/.*node=\([0-9]*\).*/\1/p'
}

echo "==> kill -9 the leader, $BENCH_RUNS times"
# Three RF 3 topics of one partition each, so that their leaders spread over the nodes: odd
# kills take the one led by the active controller (a controller failover first), even kills
# one led by another node, when there is one.
for t in 1 2 3; do create "$CLUSTER_BOOT" "elect-$t" 3 2; done
elect_isr_full() { isr_full 1 elect-1 && isr_full 1 elect-2 && isr_full 1 elect-3; }
for round in $(seq "$BENCH_RUNS"); do
    wait_until "the ISR of the elect-* topics to be all three" elect_isr_full
    controller=$(active_controller)
    controller=${controller:--1}
    topic="" leader=""
    for t in 1 2 3; do
        read -r l _ _ _ <<<"$(meta "${PLAIN[1]}" "elect-$t")"
        if { [ $((round % 2)) = 1 ] && [ "$l" = "$controller" ]; } ||
            { [ $((round % 2)) = 0 ] && [ "$l" != "$controller" ]; }; then
            topic="elect-$t" leader=$l
            break
        fi
    done
    [ -n "$topic" ] || { topic=elect-1 && read -r leader _ _ _ <<<"$(meta "${PLAIN[1]}" elect-1)"; }
    echo "    round $round: $topic, leader $leader, active controller $controller"
    "$CTL" --bootstrap-server "$CLUSTER_BOOT" perf produce --topic "$topic" --num-records 10000 \
        --acks -1 --json >/dev/null
    survivors=""
    for i in 1 2 3; do [ "$i" = "$leader" ] || survivors="$survivors${survivors:+,}127.0.0.1:${PLAIN[$i]}"; done
    # The kill and both polls in one process, so the clock starts at the kill.
    "$PY" - "$CTL" "${PIDS[$leader]}" "$leader" "$controller" "$survivors" "$round" "$BENCH_WAIT_S" "$topic" \
        >>"$ELECTIONS" <<'PY' || { logs_tail; exit 1; }
import json, os, signal, subprocess, sys, time
ctl, pid, leader, controller, survivors, round_, wait_s, topic = sys.argv[1:]
leader, wait_s = int(leader), float(wait_s)
first = survivors.split(",")[0]
def metadata_leader():
    out = subprocess.run([ctl, "--bootstrap-server", first, "--request-timeout-ms", "2000",
                          "metadata", "--topic", topic, "--json"], capture_output=True, text=True)
    if out.returncode != 0:
        return -1, 0
    parts = [p for t in json.loads(out.stdout)["topics"] for p in t["partitions"]]
    return (parts[0]["leader_id"], len(parts[0]["isr_nodes"])) if parts else (-1, 0)
def produce_ok():
    out = subprocess.run([ctl, "--bootstrap-server", survivors, "--request-timeout-ms", "2000",
                          "produce", topic, "--acks", "-1", "--linger-ms", "0"],
                         input="after the kill\n", capture_output=True, text=True)
    return out.returncode == 0
def poll(check, start):
    polls = 0
    while time.monotonic() - start < wait_s:
        polls += 1
        result = check()
        if result:
            return time.monotonic() - start, polls, result
        time.sleep(0.01)
    sys.exit(f"bench-cluster.sh: nothing after {wait_s} s ({check.__name__})")
start = time.monotonic()
os.kill(int(pid), signal.SIGKILL)
elect_s, elect_polls, (new_leader, isr) = poll(
    lambda: (lambda l: l if l[0] not in (leader, -1) else None)(metadata_leader()), start)
produce_s, produce_polls, _ = poll(produce_ok, start)
print(json.dumps(dict(round=int(round_), topic=topic, killed=leader, was_controller=leader == int(controller),
                      new_leader=new_leader, isr_after=isr, elect_ms=elect_s * 1000,
                      elect_polls=elect_polls, produce_ms=produce_s * 1000,
                      produce_polls=produce_polls)))
PY
    wait "${PIDS[$leader]}" 2>/dev/null || true
    tail -1 "$ELECTIONS"
    t0=$(date +%s%N)
    start_node "$leader"
    wait_port "$leader"
    wait_until "the ISR of $topic to return to three after node $leader restarted" isr_full 1 "$topic"
    t1=$(date +%s%N)
    "$PY" -c 'import json,sys; d=json.loads(open(sys.argv[1]).readlines()[-1]); d["rejoin_ms"]=int(sys.argv[2])/1e6; print(json.dumps(d))' \
        "$ELECTIONS" $((t1 - t0)) >>"$ELECTIONS.rejoin"
done

PYTHONPATH="$PWD/scripts/bench" "$PY" - "$RESULTS" "$ELECTIONS.rejoin" "$BENCH_OUTPUT" "$BENCH_RUNS" \
    "$BENCH_RECORDS" "$BENCH_RECORD_SIZE" "$(git rev-parse --short HEAD)" "$(($(date +%s) - started_at))" <<'PY'
from section import replace_section
import json, statistics, sys, time
results, elections, output, runs, records, size, commit, total = sys.argv[1:]
rows = [json.loads(l) for l in open(results)]
kills = [json.loads(l) for l in open(elections)]
by = {}
for r in rows:
    by.setdefault(r["case"], {})[r["round"]] = r
def med(values):
    return statistics.median(values) if values else float("nan")
def span(values, fmt):
    return f"**{fmt.format(med(values))}** [{fmt.format(min(values))}–{fmt.format(max(values))}]"
def cpu_per_million(r):
    return r["broker_cpu_s"] / r["records"] * 1e6 if r.get("records") else float("nan")
n = f"{int(records):,} x {size} B"
cases = [
    ("produce-rf3", f"produce {n}, acks=-1, RF 3, min.insync.replicas=2", "cluster (3 nodes)", "produce-single"),
    ("produce-rf1", f"produce {n}, acks=-1, RF 1", "cluster (3 nodes)", "produce-single"),
    ("produce-single", f"produce {n}, acks=-1, RF 1", "single node", None),
    ("consume-rf3", f"consume {n} from the RF 3 topic", "cluster (3 nodes)", "consume-single"),
    ("consume-single", f"consume {n}", "single node", None),
]
load = " ".join(open("/proc/loadavg").read().split()[:3])
out = [
    f"Generated by `scripts/bench-cluster.sh` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
    f"commit `{commit}`, release build, BENCH_RUNS={runs}, total {total} s, load average {load} at the end. "
    "Three combined nodes (broker and controller, one quorum of three) and one single node, all on "
    "127.0.0.1 of the same machine; one `gregorctl perf` client, one partition. Medians over the rounds "
    "[ranges]; ratios are taken within each round before the median. Broker CPU is utime + stime of "
    "the broker processes (the three nodes summed for the cluster rows) during the run, per million records.",
    "",
    "| case | where | MB/s | p50 / p99 ms (ack or fetch) | broker CPU s per 10⁶ records | of single node |",
    "| --- | --- | ---: | ---: | ---: | ---: |",
]
def latency(r):
    return r.get("latency_ms") or r.get("fetch_latency_ms") or {}
for case, label, where, base in cases:
    rs = list(by.get(case, {}).values())
    if not rs:
        continue
    rates = [r["mb_per_sec"] for r in rs]
    cpu = [cpu_per_million(r) for r in rs]
    p50 = med([latency(r).get("p50", float("nan")) for r in rs])
    p99 = med([latency(r).get("p99", float("nan")) for r in rs])
    ratio = ""
    if base:
        ratios = [r["mb_per_sec"] / by[base][r["round"]]["mb_per_sec"] for r in rs if r["round"] in by.get(base, {})]
        ratio = span(ratios, "{:.2f}") if ratios else ""
    out.append(f"| {label} | {where} | {span(rates, '{:,.1f}')} | {p50:.2f} / {p99:.2f} | {span(cpu, '{:.2f}')} | {ratio} |")
rf3, rf1 = by.get("produce-rf3", {}), by.get("produce-rf1", {})
within = [rf3[k]["mb_per_sec"] / rf1[k]["mb_per_sec"] for k in rf3 if k in rf1]
cpu_within = [cpu_per_million(rf3[k]) / cpu_per_million(rf1[k]) for k in rf3 if k in rf1]
if within:
    out += ["", f"Produce RF 3 / RF 1 on the cluster, within a round: throughput {span(within, '{:.2f}')}, "
            f"broker CPU per record {span(cpu_within, '{:.2f}')}."]
out += [
    "",
    "kill -9 of the leader of an RF 3 partition (min.insync.replicas=2, ISR of three before each kill). "
    "*New leader*: from the kill until a Metadata request to a surviving node names another leader; "
    "*acks=all again*: from the kill until a one-record acks=-1 produce to the survivors succeeds; "
    "both polled every 10 ms with `gregorctl` (each poll also spends its process start and one round "
    "trip, so the resolution is a few tens of ms). *ISR of 3 again*: from the restart of the killed "
    "node until the ISR is all three again.",
    "",
    "| kill | killed node | it was the active controller | new leader | new leader ms | acks=all again ms | ms per Metadata poll | ISR of 3 again ms |",
    "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
]
for k in kills:
    out.append(f"| {k['round']} | {k['killed']} | {'yes' if k['was_controller'] else 'no'} | {k['new_leader']} "
               f"| {k['elect_ms']:,.0f} | {k['produce_ms']:,.0f} | {k['elect_ms'] / k['elect_polls']:.0f} | {k['rejoin_ms']:,.0f} |")
for label, group in (("median", kills),
                     ("median, the leader was the active controller", [k for k in kills if k["was_controller"]]),
                     ("median, it was not", [k for k in kills if not k["was_controller"]])):
    if group:
        out.append(f"| {label} ({len(group)}) | | | | **{med([k['elect_ms'] for k in group]):,.0f}** "
                   f"| **{med([k['produce_ms'] for k in group]):,.0f}** | | **{med([k['rejoin_ms'] for k in group]):,.0f}** |")
replace_section(output, "bench-cluster", "Cluster (issue 15)", out)
print("\n".join(out))
PY
