#!/usr/bin/env bash
# The effect of a running log cleaner on produce latency (issue 10), against the release
# `gregor`: the same load twice, once with log.cleaner.enable=true and once false.
#
#   - a compacted topic `table` (1 MiB segments, min.cleanable.dirty.ratio 0.01) receives
#     keyed updates from kcat all the time (BENCH_KEYED_RATE records/s of 100 B over 10,000
#     keys), so with the cleaner on it cleans a new segment about every second;
#   - meanwhile `gregorctl perf produce` sends BENCH_RATE records/s of 100 B to a topic
#     with the delete policy for BENCH_SECONDS, acks=-1; its p50/p99 latency is printed.
#
# Environment: BENCH_SECONDS [20], BENCH_RATE [20000], BENCH_KEYED_RATE [20000],
#              BENCH_DIR [$TMPDIR or /tmp]. Needs kcat and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_SECONDS=${BENCH_SECONDS:-20}
BENCH_RATE=${BENCH_RATE:-20000}
BENCH_KEYED_RATE=${BENCH_KEYED_RATE:-20000}
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}}
KCAT=${GREGOR_KCAT:-kcat}

cargo build --release -q -p gregor-broker -p gregor-cli
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
GREGOR="$target_dir/release/gregor"
CTL="$target_dir/release/gregorctl"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Keyed updates at a fixed rate, on stdout as key:value lines (kcat -K:).
keyed_updates() {
    python3 - "$BENCH_KEYED_RATE" <<'PY'
import sys, time
rate = int(sys.argv[1]); value = "v" * 100; i = 0; start = time.monotonic()
out = sys.stdout
try:
    while True:
        for _ in range(rate // 100):
            out.write(f"key-{i % 10000:05d}:{value}\n"); i += 1
        out.flush()
        time.sleep(max(0.0, start + i / rate - time.monotonic()))
except BrokenPipeError:
    pass
PY
}

run() {
    local cleaner=$1 dir port cport pid feeder
    dir=$(mktemp -d "$BENCH_DIR/gregor-cleaner-bench.XXXXXX")
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
log.cleaner.enable=$cleaner
log.cleaner.backoff.ms=200
PROPS
    RUST_LOG=info "$GREGOR" "$dir/server.properties" >"$dir/broker.log" 2>&1 &
    pid=$!
    local ctl=("$CTL" --bootstrap-server "127.0.0.1:$port")
    for _ in $(seq 300); do "${ctl[@]}" api-versions >/dev/null 2>&1 && break; sleep 0.1; done
    "${ctl[@]}" topics create --topic table --partitions 1 --config cleanup.policy=compact \
        --config segment.bytes=1048576 --config min.cleanable.dirty.ratio=0.01 >/dev/null
    "${ctl[@]}" topics create --topic lat --partitions 1 >/dev/null
    keyed_updates | "$KCAT" -P -q -b "127.0.0.1:$port" -t table -K: -X linger.ms=5 2>/dev/null &
    feeder=$!
    sleep 3
    "${ctl[@]}" perf produce --topic lat --json --throughput "$BENCH_RATE" \
        --duration "$BENCH_SECONDS" --acks -1 >"$dir/perf.json"
    kill "$feeder" 2>/dev/null || true
    pkill -f "kcat -P -q -b 127.0.0.1:$port" 2>/dev/null || true
    local cleaned
    cleaned=$(grep -c 'cleaned a log' "$dir/broker.log" || true)
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    python3 - "$dir/perf.json" "$cleaner" "$cleaned" <<'PY'
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
s = json.loads(lines[-1])
lat = s["latency_ms"]
print(f"| {sys.argv[2]} | {sys.argv[3]} | {s['records_per_sec']:,.0f} | {lat['p50']:.3f} | "
      f"{lat['p99']:.3f} | {lat.get('max', float('nan')):.3f} |")
PY
    rm -rf "$dir"
}

echo "| log.cleaner.enable | cleanings | records/s | p50 ms | p99 ms | max ms |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
run true
run false
