#!/usr/bin/env python3
"""Consumes a topic as a member of a consumer group with kafka-python's KafkaConsumer
(subscribe, the classic group protocol), prints every record as a JSON line, commits the
offsets after the last record consumed of each partition (unless --no-commit) and leaves
the group (close). See _group.py for when it stops and the summary line on stderr.
"""

import _driver
import _group

import kafka
from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata


class Listener(ConsumerRebalanceListener):
    def __init__(self, progress):
        self.progress = progress

    def on_partitions_revoked(self, revoked):
        pass

    def on_partitions_assigned(self, assigned):
        self.progress.on_assignment([tp.partition for tp in assigned])


def main():
    args = _group.parser(__doc__).parse_args()
    progress = _group.Progress(args)
    configs = dict(
        bootstrap_servers=args.bootstrap,
        client_id=args.client_id,
        group_id=args.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=1000,
        request_timeout_ms=30000,
        fetch_max_wait_ms=200,
        reconnect_backoff_max_ms=1000,
    )
    if args.group_instance_id:
        configs["group_instance_id"] = args.group_instance_id
    try:
        consumer = KafkaConsumer(**configs)
    except Exception as e:  # noqa: BLE001 - any failure ends the run
        _driver.fail(f"cannot create the consumer: {type(e).__name__}: {e}")
    consumer.subscribe([args.topic], listener=Listener(progress))
    while not progress.done():
        batches = _driver.kafka_python_group_poll(consumer, timeout_ms=200, max_records=100)
        for tp, messages in sorted(batches.items()):
            for m in messages:
                if args.max_records is not None and progress.count >= args.max_records:
                    break
                if not progress.on_record(m.partition, m.offset):
                    _driver.fail(f"offset {m.offset} of partition {m.partition} went back")
                print(_driver.record_line(m.partition, m.offset, m.timestamp, m.key, m.value,
                                          m.headers), flush=True)
    committed = {}
    if not args.no_commit and progress.next_offsets:
        offsets = {TopicPartition(args.topic, p): OffsetAndMetadata(o, "", -1)
                   for p, o in progress.next_offsets.items()}
        try:
            consumer.commit(offsets)
        except Exception as e:  # noqa: BLE001
            _driver.fail(f"commit failed: {type(e).__name__}: {e}")
        committed = dict(progress.next_offsets)
    consumer.close()
    progress.summary(committed, f"kafka-python {kafka.__version__}")


if __name__ == "__main__":
    main()
