#!/usr/bin/env python3
"""Produces records 0..count-1 of _records.py to a topic with kafka-python's KafkaProducer
(acks=all by default; keys spread over the partitions by its murmur2 partitioner; no null
header values, which kafka-python refuses), flushes,
and prints one line per acknowledged record, in index order:

    <i> <partition> <offset>

Exit status 0 when every record was acknowledged; 1 otherwise (the first errors on
stderr, the acknowledged ones still printed). A summary goes to stderr.
"""

import sys
import time

import _driver
import _records

import kafka
from kafka import KafkaProducer


def main():
    p = _driver.parser(__doc__)
    p.add_argument("--topic", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--tag", required=True, help="distinguishes the records of a run")
    p.add_argument("--base-ts", type=int, required=True, help="timestamp of record 0 (ms)")
    p.add_argument("--acks", default="all", choices=["all", "1", "0"])
    p.add_argument("--compression", default=None,
                   help="none, gzip, snappy, lz4 or zstd (default: none)")
    p.add_argument("--idempotence", action="store_true",
                   help="enable_idempotence (needs InitProducerId); off by default")
    p.add_argument("--max-in-flight", type=int, default=5)
    p.add_argument("--linger-ms", type=int, default=5)
    args = p.parse_args()
    deadline = _driver.start_watchdog(args.timeout)
    acks = {"all": "all", "1": 1, "0": 0}[args.acks]
    try:
        producer = KafkaProducer(
            bootstrap_servers=args.bootstrap,
            client_id=args.client_id,
            acks=acks,
            enable_idempotence=args.idempotence,
            compression_type=None if args.compression in (None, "none") else args.compression,
            linger_ms=args.linger_ms,
            batch_size=64 * 1024,
            max_request_size=4 * 1024 * 1024,
            max_in_flight_requests_per_connection=args.max_in_flight,
            request_timeout_ms=30000,
            delivery_timeout_ms=int(args.timeout * 1000),
            bootstrap_timeout_ms=15000,
        )
    except Exception as e:  # noqa: BLE001 - any failure ends the run
        _driver.fail(f"cannot create the producer: {type(e).__name__}: {e}")

    acked = [None] * args.count
    errors = []

    def on_success(i):
        def callback(metadata):
            acked[i] = (metadata.partition, metadata.offset)
        return callback

    def on_error(i):
        def callback(exc):
            errors.append(f"record {i}: {type(exc).__name__}: {exc}")
        return callback

    started = time.monotonic()
    for i in range(args.count):
        if time.monotonic() > deadline:
            _driver.fail(f"timed out sending record {i}")
        try:
            future = producer.send(
                args.topic,
                key=_records.key(i, args.tag),
                value=_records.value(i, args.tag),
                headers=_records.headers(i, args.tag, with_null=False),
                timestamp_ms=args.base_ts + i,
            )
        except Exception as e:  # noqa: BLE001
            errors.append(f"send of record {i}: {type(e).__name__}: {e}")
            break
        future.add_callback(on_success(i))
        future.add_errback(on_error(i))
    sent = time.monotonic()
    try:
        producer.flush(timeout=max(1.0, deadline - time.monotonic()))
    except Exception as e:  # noqa: BLE001
        errors.append(f"flush: {type(e).__name__}: {e}")
    flushed = time.monotonic()
    producer.close(timeout=10)

    out = sys.stdout
    count = 0
    for i, ack in enumerate(acked):
        if ack is not None:
            out.write(f"{i} {ack[0]} {ack[1]}\n")
            count += 1
    out.flush()
    print(f"kafka-python {kafka.__version__}: {count}/{args.count} records acknowledged; "
          f"sent in {sent - started:.2f}s, flushed after {flushed - started:.2f}s; "
          f"{len(errors)} errors", file=sys.stderr)
    if errors or count != args.count:
        _driver.fail("delivery failed: " + "; ".join(errors[:5]))


if __name__ == "__main__":
    main()
