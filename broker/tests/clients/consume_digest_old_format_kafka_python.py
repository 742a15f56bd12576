#!/usr/bin/env python3
"""Reads a topic from offset 0 with kafka-python's KafkaConsumer pinned to an old broker
version (`--api-version 0.10` fetches with Fetch v2 and reads magic 1 message sets,
`0.10.1` Fetch v3, `0.9` Fetch v1 and `0.8.2` Fetch v0, both magic 0, whose missing
timestamps are printed as -1), manual assignment, no group, and prints
one digest line per record (_records.digest_line) until `--count` records were read.

No ListOffsets: the versions before 0.10.1 have no end_offsets, so the caller says how
many records there are. Exit status 0 when all were read, 1 otherwise (the reason on
stderr). A summary goes to stderr.
"""

import sys
import time

import _driver
import _records

import kafka
from kafka import KafkaConsumer, TopicPartition


def main():
    p = _driver.parser(__doc__)
    p.add_argument("--topic", required=True)
    p.add_argument("--partitions", type=int, required=True, help="number of partitions")
    p.add_argument("--count", type=int, required=True, help="records in the topic")
    p.add_argument("--api-version", required=True, help="e.g. 0.10")
    p.add_argument("--max-partition-fetch-bytes", type=int, default=1024 * 1024)
    args = p.parse_args()
    deadline = _driver.start_watchdog(args.timeout)
    budget_ms = int(min(args.timeout, 30) * 1000)
    api_version = tuple(int(part) for part in args.api_version.split("."))
    try:
        consumer = KafkaConsumer(
            bootstrap_servers=args.bootstrap,
            client_id=args.client_id,
            api_version=api_version,
            group_id=None,
            enable_auto_commit=False,
            request_timeout_ms=budget_ms,
            reconnect_backoff_max_ms=1000,
            fetch_max_wait_ms=200,
            max_partition_fetch_bytes=args.max_partition_fetch_bytes,
        )
    except Exception as e:  # noqa: BLE001 - any failure ends the run
        _driver.fail(f"cannot create the consumer: {type(e).__name__}: {e}")

    tps = [TopicPartition(args.topic, p) for p in range(args.partitions)]
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, 0)

    out = sys.stdout
    count = 0
    last = {tp: None for tp in tps}
    started = time.monotonic()
    while count < args.count:
        if time.monotonic() > deadline:
            state = {tp.partition: consumer.position(tp) for tp in tps}
            _driver.fail(f"timed out after {args.timeout}s with {count} records read: {state}")
        batches = consumer.poll(timeout_ms=500)
        for tp, messages in sorted(batches.items()):
            for m in messages:
                if last[tp] is not None and m.offset <= last[tp]:
                    _driver.fail(f"offset {m.offset} after {last[tp]} in partition {tp.partition}")
                last[tp] = m.offset
                # Magic 0 has no timestamps: kafka-python says None, printed as -1.
                timestamp = -1 if m.timestamp is None else m.timestamp
                out.write(_records.digest_line(m.partition, m.offset, timestamp, m.key,
                                               m.value, m.headers))
                out.write("\n")
                count += 1
    out.flush()
    summary = {tp.partition: consumer.position(tp) for tp in tps}
    consumer.close()
    print(f"kafka-python {kafka.__version__} as {args.api_version}: {count} records in "
          f"{time.monotonic() - started:.2f}s; positions {summary}", file=sys.stderr)


if __name__ == "__main__":
    main()
