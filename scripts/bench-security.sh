#!/usr/bin/env bash
# TLS and SASL next to PLAINTEXT (issue 13): rewrites the section of BENCHMARKS.md between
# <!-- bench-security:begin --> and <!-- bench-security:end -->.
#
#   1. builds `gregor` and `gregorctl` (release) and makes a CA and a server certificate
#      with the openssl CLI;
#   2. one broker with four listeners: PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL (both
#      SASL listeners with SCRAM-SHA-512, the user bootstrapped by `gregor.bootstrap.scram`
#      at 4096 iterations, Kafka's default);
#   3. BENCH_RUNS rounds; in each, for each listener in turn (the order rotates per round):
#        - `gregorctl perf produce`, one producer, one partition, acks=-1: BENCH_RECORDS
#          records of 100 B, then BENCH_LARGE records of 10 KiB, each to a fresh topic;
#        - `gregorctl perf consume` of the 10 KiB topic from the start (one connection);
#        - `gregorctl perf connections`: BENCH_CONNECTIONS connections set up one after
#          another (TCP, TLS handshake, SCRAM exchange, ApiVersions), each then closed;
#      with the broker's CPU (utime + stime) over each;
#   4. writes the medians, ranges and the ratios to PLAINTEXT taken within each round.
#
# Environment (defaults in brackets):
#   BENCH_RUNS [3]  BENCH_RECORDS [2000000]  BENCH_LARGE [100000]  BENCH_CONNECTIONS [500]
#   BENCH_DIR [$TMPDIR or /tmp]  BENCH_OUTPUT [BENCHMARKS.md]
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_RECORDS=${BENCH_RECORDS:-2000000}
BENCH_LARGE=${BENCH_LARGE:-100000}
BENCH_CONNECTIONS=${BENCH_CONNECTIONS:-500}
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}}
BENCH_OUTPUT=${BENCH_OUTPUT:-BENCHMARKS.md}
PY=${BENCH_PYTHON:-python3}
started_at=$(date +%s)
command -v openssl >/dev/null || { echo "bench-security.sh: needs the openssl CLI" >&2; exit 1; }

echo "==> build (release)"
cargo build --release -p gregor-broker -p gregor-cli
target_dir=$(cargo metadata --format-version 1 --no-deps |
    "$PY" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
GREGOR="$target_dir/release/gregor"
CTL="$target_dir/release/gregorctl"

WORK=$(mktemp -d "$BENCH_DIR/gregor-security.XXXXXX")
RESULTS="$WORK/results.jsonl"
PID=""
cleanup() {
    local status=$?
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "==> certificates"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=bench CA" \
    -keyout "$WORK/ca-key.pem" -out "$WORK/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$WORK/server-key.pem" -out "$WORK/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$WORK/san.ext"
openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca-key.pem" \
    -CAcreateserial -days 2 -extfile "$WORK/san.ext" -out "$WORK/server-cert.pem" 2>/dev/null
cat "$WORK/server-cert.pem" "$WORK/server-key.pem" >"$WORK/server.pem"

ports=$("$PY" -c '
import socket
s = [socket.socket() for _ in range(5)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')
read -r P_PLAIN P_SSL P_SASL P_SASL_SSL P_CONTROLLER <<<"$ports"
cat >"$WORK/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$P_CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$P_PLAIN,SSL://127.0.0.1:$P_SSL,SASL_PLAINTEXT://127.0.0.1:$P_SASL,SASL_SSL://127.0.0.1:$P_SASL_SSL,CONTROLLER://127.0.0.1:$P_CONTROLLER
advertised.listeners=PLAINTEXT://127.0.0.1:$P_PLAIN,SSL://127.0.0.1:$P_SSL,SASL_PLAINTEXT://127.0.0.1:$P_SASL,SASL_SSL://127.0.0.1:$P_SASL_SSL
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
ssl.keystore.type=PEM
ssl.keystore.location=$WORK/server.pem
sasl.enabled.mechanisms=SCRAM-SHA-512
gregor.bootstrap.scram=SCRAM-SHA-512=[name=bench,password="bench-secret",iterations=4096]
log.dirs=$WORK/data
num.partitions=1
PROPS
for name in PLAINTEXT SSL SASL_PLAINTEXT SASL_SSL; do
    {
        echo "security.protocol=$name"
        case $name in *SSL*) echo "ssl.truststore.location=$WORK/ca.pem" ;; esac
        case $name in SASL*)
            echo "sasl.mechanism=SCRAM-SHA-512"
            echo "sasl.username=bench"
            echo "sasl.password=bench-secret"
            ;;
        esac
    } >"$WORK/$name.properties"
done
port_of() {
    case $1 in
    PLAINTEXT) echo "$P_PLAIN" ;; SSL) echo "$P_SSL" ;;
    SASL_PLAINTEXT) echo "$P_SASL" ;; SASL_SSL) echo "$P_SASL_SSL" ;;
    esac
}

"$GREGOR" "$WORK/server.properties" >"$WORK/broker.log" 2>&1 &
PID=$!
until (exec 3<>"/dev/tcp/127.0.0.1/$P_PLAIN") 2>/dev/null; do
    kill -0 "$PID" 2>/dev/null || { tail -20 "$WORK/broker.log" >&2; exit 1; }
    sleep 0.05
done
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
ticks_per_s=$(getconf CLK_TCK)

# measure ROUND LISTENER CASE COMMAND...: runs gregorctl, records its JSON summary line
# with the broker's CPU seconds during it.
measure() {
    local round=$1 listener=$2 case=$3 before after line
    shift 3
    before=$(cpu_ticks)
    line=$("$CTL" --bootstrap-server "127.0.0.1:$(port_of "$listener")" \
        --command-config "$WORK/$listener.properties" "$@" | tail -1)
    after=$(cpu_ticks)
    "$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(round=int(sys.argv[2]), listener=sys.argv[3], case=sys.argv[4], broker_cpu_s=(int(sys.argv[6])-int(sys.argv[5]))/int(sys.argv[7])); print(json.dumps(d))' \
        "$line" "$round" "$listener" "$case" "$before" "$after" "$ticks_per_s" >>"$RESULTS"
}

listeners=(PLAINTEXT SSL SASL_PLAINTEXT SASL_SSL)
for round in $(seq "$BENCH_RUNS"); do
    echo "==> round $round"
    for i in 0 1 2 3; do
        listener=${listeners[$(((i + round - 1) % 4))]}
        small="small-$round-$listener" large="large-$round-$listener"
        "$CTL" --bootstrap-server "127.0.0.1:$P_PLAIN" topics create --topic "$small" --partitions 1 >/dev/null
        "$CTL" --bootstrap-server "127.0.0.1:$P_PLAIN" topics create --topic "$large" --partitions 1 >/dev/null
        measure "$round" "$listener" produce-100 perf produce --topic "$small" \
            --num-records "$BENCH_RECORDS" --record-size 100 --acks -1
        measure "$round" "$listener" produce-10k perf produce --topic "$large" \
            --num-records "$BENCH_LARGE" --record-size 10240 --acks -1
        measure "$round" "$listener" consume-10k perf consume --topic "$large" \
            --num-records "$BENCH_LARGE" --timeout-ms 5000
        measure "$round" "$listener" connections perf connections \
            --num-connections "$BENCH_CONNECTIONS"
    done
done

PYTHONPATH="$PWD/scripts/bench" "$PY" - "$RESULTS" "$BENCH_OUTPUT" "$BENCH_RUNS" "$BENCH_RECORDS" "$BENCH_LARGE" \
    "$BENCH_CONNECTIONS" "$(git rev-parse --short HEAD)" "$(($(date +%s) - started_at))" <<'PY'
from section import replace_section
import json, statistics, sys, time
results, output, runs, records, large, conns, commit, total = sys.argv[1:]
rows = [json.loads(l) for l in open(results)]
by = {}
for r in rows:
    by.setdefault((r["case"], r["listener"]), []).append(r)
def rate(r):
    if r["case"] == "connections":
        return r["connections_per_sec"]
    return r.get("mb_per_sec") or r.get("MB_per_sec") or 0.0
def med(values):
    return statistics.median(values) if values else float("nan")
cases = [
    ("produce-100", f"produce {int(records):,} x 100 B, acks=-1", "MB/s"),
    ("produce-10k", f"produce {int(large):,} x 10 KiB, acks=-1", "MB/s"),
    ("consume-10k", f"consume {int(large):,} x 10 KiB", "MB/s"),
    ("connections", f"{int(conns):,} connections set up one by one", "connections/s"),
]
listeners = ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
load = " ".join(open("/proc/loadavg").read().split()[:3])
out = [
    f"Generated by `scripts/bench-security.sh` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
    f"commit `{commit}`, release build, BENCH_RUNS={runs}, total {total} s, load average {load} at the end. "
    "One broker, four listeners; SCRAM-SHA-512 at 4096 iterations on both SASL listeners; TLS 1.3 "
    "(rustls, ring) with an RSA-2048 server certificate; clients are `gregorctl perf` (rustls too). "
    "Medians over the rounds; the ratio to PLAINTEXT is taken within each round before the median.",
    "",
    "| case | listener | rate | runs | of PLAINTEXT | p50 ms (ack, fetch or set-up) | p99 ms | broker CPU s |",
    "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: |",
]
for case, label, unit in cases:
    base = {r["round"]: rate(r) for r in by.get((case, "PLAINTEXT"), [])}
    for listener in listeners:
        rs = by.get((case, listener), [])
        if not rs:
            continue
        rates = [rate(r) for r in rs]
        ratios = [rate(r) / base[r["round"]] for r in rs if base.get(r["round"])]
        lat = [r.get("latency_ms") or r.get("setup_ms") or r.get("fetch_latency_ms") or {} for r in rs]
        p50 = med([l.get("p50", float("nan")) for l in lat])
        p99 = med([l.get("p99", float("nan")) for l in lat])
        cpu = med([r["broker_cpu_s"] for r in rs])
        ratio = "" if listener == "PLAINTEXT" else f"**{med(ratios):.2f}** [{min(ratios):.2f}–{max(ratios):.2f}]"
        out.append(
            f"| {label} | {listener} | **{med(rates):,.1f}** {unit} | {min(rates):,.1f}–{max(rates):,.1f} "
            f"| {ratio} | {p50:.2f} | {p99:.2f} | {cpu:.2f} |"
        )
replace_section(output, "bench-security", "TLS and SASL (issue 13)", out)
print("\n".join(out))
PY
