#!/usr/bin/env python3
"""Reads every partition of a topic from the beginning to its end offset (ListOffsets
latest, asked once before reading) with kafka-python's KafkaConsumer (manual assignment,
no group, nothing committed) and prints one digest line per record (_records.digest_line:
key and headers in hex, the value as length and CRC-32, so 100,000 records stay small).

Exit status 0 when every partition was read to its end, 1 otherwise (the reason on
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
    p.add_argument("--partitions", type=int, default=None,
                   help="number of partitions (default: from the metadata)")
    args = p.parse_args()
    deadline = _driver.start_watchdog(args.timeout)
    budget_ms = int(min(args.timeout, 30) * 1000)
    try:
        consumer = KafkaConsumer(
            bootstrap_servers=args.bootstrap,
            client_id=args.client_id,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            request_timeout_ms=budget_ms,
            bootstrap_timeout_ms=budget_ms,
            reconnect_backoff_max_ms=1000,
            fetch_max_wait_ms=200,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
    except Exception as e:  # noqa: BLE001 - any failure ends the run
        _driver.fail(f"cannot create the consumer: {type(e).__name__}: {e}")

    if args.partitions is not None:
        partitions = list(range(args.partitions))
    else:
        partitions = None
        while not partitions:
            partitions = sorted(consumer.partitions_for_topic(args.topic) or [])
            if not partitions:
                if time.monotonic() > deadline:
                    _driver.fail(f"topic {args.topic!r} not in the metadata")
                time.sleep(0.2)
    tps = [TopicPartition(args.topic, p) for p in partitions]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    try:
        ends = consumer.end_offsets(tps, timeout_ms=budget_ms)
    except Exception as e:  # noqa: BLE001
        _driver.fail(f"end_offsets (ListOffsets) failed: {type(e).__name__}: {e}")

    out = sys.stdout
    count = 0
    last = {tp: None for tp in tps}
    started = time.monotonic()
    while True:
        pending = [tp for tp in tps if consumer.position(tp, timeout_ms=budget_ms) < ends[tp]]
        if not pending:
            break
        if time.monotonic() > deadline:
            state = {tp.partition: {"position": consumer.position(tp), "end": ends[tp]}
                     for tp in tps}
            _driver.fail(f"timed out after {args.timeout}s with {count} records read: {state}")
        batches = consumer.poll(timeout_ms=500)
        for tp, messages in sorted(batches.items()):
            for m in messages:
                if last[tp] is not None and m.offset <= last[tp]:
                    _driver.fail(f"offset {m.offset} after {last[tp]} in partition {tp.partition}")
                last[tp] = m.offset
                out.write(_records.digest_line(m.partition, m.offset, m.timestamp, m.key,
                                               m.value, m.headers))
                out.write("\n")
                count += 1
    out.flush()
    summary = {tp.partition: {"position": consumer.position(tp), "end": ends[tp]} for tp in tps}
    consumer.close()
    print(f"kafka-python {kafka.__version__}: {count} records in "
          f"{time.monotonic() - started:.2f}s; {summary}", file=sys.stderr)


if __name__ == "__main__":
    main()
