#!/usr/bin/env python3
"""Reads partitions of a topic from the start to the end with kafka-python's KafkaConsumer
(manual assignment, no group) and prints every record as a JSON line (see _driver.py).

Exit status 0 when every partition was read to its end offset, 1 otherwise (the reason on
stderr). A summary goes to stderr.
"""

import sys
import time

import _driver

from kafka import KafkaConsumer, TopicPartition
import kafka


def main():
    p = _driver.consumer_parser(__doc__)
    args = p.parse_args()
    until = args.until or "end-offsets"
    if until not in ("end-offsets", "highwater"):
        _driver.fail(f"--until must be end-offsets or highwater for kafka-python, not {until}")
    deadline = _driver.start_watchdog(args.timeout)
    budget_ms = int(args.timeout * 1000)

    configs = dict(
        bootstrap_servers=args.bootstrap,
        client_id=args.client_id,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=min(15000, budget_ms),
        bootstrap_timeout_ms=min(15000, budget_ms),
        reconnect_backoff_max_ms=1000,
        fetch_max_wait_ms=200,
    )
    if args.max_partition_fetch_bytes:
        configs["max_partition_fetch_bytes"] = args.max_partition_fetch_bytes
    if args.fetch_max_bytes:
        configs["fetch_max_bytes"] = args.fetch_max_bytes
    try:
        consumer = KafkaConsumer(**configs)
    except Exception as e:  # noqa: BLE001 - any failure ends the run
        _driver.fail(f"cannot create the consumer: {type(e).__name__}: {e}")

    partitions = _driver.partition_list(args.partitions)
    while partitions is None:
        found = consumer.partitions_for_topic(args.topic)
        if found:
            partitions = sorted(found)
        elif time.monotonic() > deadline:
            _driver.fail(f"topic {args.topic!r} not in the metadata")
        else:
            time.sleep(0.2)
    tps = [TopicPartition(args.topic, p) for p in partitions]
    consumer.assign(tps)
    if args.start == "beginning":
        consumer.seek_to_beginning(*tps)
    else:
        for tp in tps:
            consumer.seek(tp, int(args.start))

    ends = None
    if until == "end-offsets":
        try:
            ends = consumer.end_offsets(tps, timeout_ms=min(15000, budget_ms))
        except Exception as e:  # noqa: BLE001
            _driver.fail(f"end_offsets (ListOffsets) failed: {type(e).__name__}: {e}")

    def end_of(tp):
        return ends[tp] if ends is not None else consumer.highwater(tp)

    def position_of(tp):
        return consumer.position(tp, timeout_ms=min(15000, budget_ms))

    count = 0
    last = {tp: None for tp in tps}
    started = time.monotonic()
    while True:
        done = True
        for tp in tps:
            end = end_of(tp)
            if end is None or position_of(tp) < end:
                done = False
                break
        if done:
            break
        if time.monotonic() > deadline:
            state = {tp.partition: {"position": position_of(tp), "end": end_of(tp)} for tp in tps}
            _driver.fail(f"timed out after {args.timeout}s with {count} records read: {state}")
        batches = consumer.poll(timeout_ms=500)
        for tp, messages in sorted(batches.items()):
            for m in messages:
                if last[tp] is not None and m.offset <= last[tp]:
                    _driver.fail(f"offset {m.offset} after {last[tp]} in partition {tp.partition}")
                last[tp] = m.offset
                print(_driver.record_line(m.partition, m.offset, m.timestamp, m.key, m.value,
                                          m.headers))
                count += 1
    summary = {tp.partition: {"position": position_of(tp), "end": end_of(tp)} for tp in tps}
    consumer.close()
    print(f"kafka-python {kafka.__version__}: {count} records in "
          f"{time.monotonic() - started:.2f}s; {summary}", file=sys.stderr)


if __name__ == "__main__":
    main()
