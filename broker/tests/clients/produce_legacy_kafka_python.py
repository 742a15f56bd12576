#!/usr/bin/env python3
"""Produces records with kafka-python's KafkaProducer pinned to an old broker version
(--api-version 0.9: Produce v1 with magic 0 message sets; 0.10: Produce v2 with magic 1),
so the broker receives legacy message sets, then prints one line per acknowledged record,
in index order:

    <i> <partition> <offset>

Record i has key "k-<tag>-<i>" (null for every 5th record), value "v-<tag>-<i>-" plus i
repeated letters, and timestamp --base-ts + i (magic 0 carries no timestamp). Exit status 0
when every record was acknowledged; 1 otherwise (the first errors on stderr).
"""

import sys
import time

import _driver

import kafka
from kafka import KafkaProducer


def key(i, tag):
    return None if i % 5 == 4 else f"k-{tag}-{i}".encode()


def value(i, tag):
    return f"v-{tag}-{i}-".encode() + b"x" * (i % 37)


def main():
    p = _driver.parser(__doc__)
    p.add_argument("--topic", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--tag", required=True)
    p.add_argument("--base-ts", type=int, required=True)
    p.add_argument("--api-version", required=True, choices=["0.9", "0.10"])
    p.add_argument("--compression", default="none",
                   help="none, gzip, snappy or lz4")
    args = p.parse_args()
    deadline = _driver.start_watchdog(args.timeout)
    api_version = tuple(int(x) for x in args.api_version.split("."))
    try:
        producer = KafkaProducer(
            bootstrap_servers=args.bootstrap,
            client_id=args.client_id,
            api_version=api_version,
            acks="all",
            compression_type=None if args.compression == "none" else args.compression,
            linger_ms=20,
            batch_size=16 * 1024,
            request_timeout_ms=30000,
            delivery_timeout_ms=int(args.timeout * 1000),
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

    for i in range(args.count):
        if time.monotonic() > deadline:
            _driver.fail(f"timed out sending record {i}")
        future = producer.send(args.topic, key=key(i, args.tag), value=value(i, args.tag),
                               partition=0, timestamp_ms=args.base_ts + i)
        future.add_callback(on_success(i))
        future.add_errback(on_error(i))
    try:
        producer.flush(timeout=max(1.0, deadline - time.monotonic()))
    except Exception as e:  # noqa: BLE001
        errors.append(f"flush: {type(e).__name__}: {e}")
    producer.close(timeout=10)

    count = 0
    for i, ack in enumerate(acked):
        if ack is not None:
            sys.stdout.write(f"{i} {ack[0]} {ack[1]}\n")
            count += 1
    sys.stdout.flush()
    print(f"kafka-python {kafka.__version__} api_version={args.api_version} "
          f"compression={args.compression}: {count}/{args.count} acknowledged; "
          f"{len(errors)} errors", file=sys.stderr)
    if errors or count != args.count:
        _driver.fail("delivery failed: " + "; ".join(errors[:5]))


if __name__ == "__main__":
    main()
