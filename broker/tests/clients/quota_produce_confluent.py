#!/usr/bin/env python3
"""Produces values of --size bytes to a topic with confluent-kafka's Producer as fast as
it lets us, for --seconds, and prints one JSON object:

    {"series": [[seconds, bytes acknowledged so far], ...],
     "throttle_events": <throttle_cb calls with a non-zero time>,
     "max_throttle_ms": <largest throttle time seen by throttle_cb or stats_cb>,
     "errors": [...]}

The series has a point about every 0.25 s, so the caller can measure the acknowledged rate
over any part of the run (a quota's rate settles once its window is full).
"""

import json
import sys
import time

import _driver

from confluent_kafka import Producer


def main():
    p = _driver.parser(__doc__)
    p.add_argument("--topic", required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--size", type=int, default=10000)
    args = p.parse_args()
    _driver.start_watchdog(args.timeout)

    state = {"acked": 0, "throttle_events": 0, "max_throttle_ms": 0, "done": False}
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            # What is purged at the end is not an error of the run.
            if not state["done"] and len(errors) < 10:
                errors.append(str(err))
        else:
            state["acked"] += len(msg.value())

    def on_throttle(event):
        if event.throttle_time > 0:
            state["throttle_events"] += 1
            ms = int(event.throttle_time * 1000)
            state["max_throttle_ms"] = max(state["max_throttle_ms"], ms)

    def on_stats(text):
        stats = json.loads(text)
        for broker in stats.get("brokers", {}).values():
            throttle = broker.get("throttle", {})
            state["max_throttle_ms"] = max(state["max_throttle_ms"], int(throttle.get("max", 0)))

    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "client.id": args.client_id,
        "acks": "all",
        "linger.ms": 5,
        "batch.size": 64 * 1024,
        "queue.buffering.max.kbytes": 4096,
        "message.timeout.ms": int(args.timeout * 1000),
        "statistics.interval.ms": 500,
        "throttle_cb": on_throttle,
        "stats_cb": on_stats,
        "error_cb": lambda err: errors.append(str(err)) if len(errors) < 10 else None,
    })
    value = b"q" * args.size
    start = time.monotonic()
    series = [[0.0, 0]]
    next_point = 0.25
    while True:
        now = time.monotonic() - start
        if now >= args.seconds:
            break
        try:
            producer.produce(args.topic, value=value, on_delivery=on_delivery)
        except BufferError:
            producer.poll(0.01)
        producer.poll(0)
        if now >= next_point:
            series.append([round(now, 3), state["acked"]])
            next_point += 0.25
    series.append([round(time.monotonic() - start, 3), state["acked"]])
    # What is still queued is not part of the measured run.
    state["done"] = True
    producer.purge()
    producer.flush(5)
    print(json.dumps({
        "series": series,
        "throttle_events": state["throttle_events"],
        "max_throttle_ms": state["max_throttle_ms"],
        "errors": errors,
    }), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
