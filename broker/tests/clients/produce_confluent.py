#!/usr/bin/env python3
"""Produces records 0..count-1 of _records.py to a topic with confluent-kafka's Producer
(librdkafka; acks=all by default; keys spread over the partitions by its default
partitioner), flushes, and prints one line per acknowledged record, in index order:

    <i> <partition> <offset>

Exit status 0 when every record was acknowledged; 1 otherwise (the first errors on
stderr, the acknowledged ones still printed). A summary goes to stderr.
"""

import sys
import time

import _driver
import _records

import confluent_kafka
from confluent_kafka import Producer


def main():
    p = _driver.parser(__doc__)
    p.add_argument("--topic", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--tag", required=True, help="distinguishes the records of a run")
    p.add_argument("--base-ts", type=int, required=True, help="timestamp of record 0 (ms)")
    p.add_argument("--acks", default="all", choices=["all", "1", "0"])
    p.add_argument("--compression", default="none",
                   help="none, gzip, snappy, lz4 or zstd (default: none)")
    p.add_argument("--idempotence", action="store_true",
                   help="enable.idempotence (needs InitProducerId); off by default")
    p.add_argument("--max-in-flight", type=int, default=5)
    p.add_argument("--linger-ms", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=256 * 1024,
                   help="batch.size (small values make many small batches)")
    p.add_argument("--debug", default=None, help="librdkafka debug contexts (to stderr)")
    args = p.parse_args()
    deadline = _driver.start_watchdog(args.timeout)

    client_errors = []

    def on_error(err):
        client_errors.append(str(err))
        print(f"librdkafka error: {err}", file=sys.stderr, flush=True)

    conf = {
        "bootstrap.servers": args.bootstrap,
        "client.id": args.client_id,
        "acks": args.acks,
        "enable.idempotence": args.idempotence,
        "compression.type": args.compression,
        "linger.ms": args.linger_ms,
        "batch.size": args.batch_size,
        "message.max.bytes": 4 * 1024 * 1024,
        "max.in.flight.requests.per.connection": args.max_in_flight,
        "socket.timeout.ms": 30000,
        "message.timeout.ms": int(args.timeout * 1000),
        "queue.buffering.max.messages": 20000,
        "error_cb": on_error,
    }
    if args.debug:
        conf["debug"] = args.debug
    producer = Producer(conf)

    acked = [None] * args.count
    errors = []

    def delivered(i):
        def callback(err, msg):
            if err is not None:
                errors.append(f"record {i}: {err}")
            else:
                acked[i] = (msg.partition(), msg.offset())
        return callback

    started = time.monotonic()
    for i in range(args.count):
        while True:
            if time.monotonic() > deadline:
                _driver.fail(f"timed out sending record {i}")
            try:
                producer.produce(
                    args.topic,
                    key=_records.key(i, args.tag),
                    value=_records.value(i, args.tag),
                    headers=_records.headers(i, args.tag),
                    timestamp=args.base_ts + i,
                    on_delivery=delivered(i),
                )
                break
            except BufferError:
                producer.poll(0.05)
        if i % 1000 == 0:
            producer.poll(0)

    sent = time.monotonic()
    remaining = producer.flush(max(1.0, deadline - time.monotonic()))
    flushed = time.monotonic()

    out = sys.stdout
    count = 0
    for i, ack in enumerate(acked):
        if ack is not None:
            out.write(f"{i} {ack[0]} {ack[1]}\n")
            count += 1
    out.flush()
    print(f"confluent-kafka {confluent_kafka.__version__} (librdkafka "
          f"{confluent_kafka.libversion()[0]}): {count}/{args.count} records acknowledged; "
          f"sent in {sent - started:.2f}s, flushed after {flushed - started:.2f}s; "
          f"{remaining} still queued; {len(errors)} delivery errors; "
          f"client errors {client_errors[-3:]}", file=sys.stderr)
    if errors or count != args.count:
        _driver.fail("delivery failed: " + "; ".join(errors[:5]))


if __name__ == "__main__":
    main()
