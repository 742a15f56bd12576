#!/usr/bin/env python3
"""Consumes a topic as a member of a consumer group with confluent-kafka's Consumer
(librdkafka; subscribe, the classic group protocol), prints every record as a JSON line,
commits the offsets after the last record consumed of each partition (unless
--no-commit) and leaves the group (close). See _group.py for when it stops and the
summary line on stderr.
"""

import _driver
import _group

import confluent_kafka
from confluent_kafka import Consumer, KafkaException, TopicPartition


def main():
    args = _group.parser(__doc__).parse_args()
    progress = _group.Progress(args)
    conf = {
        "bootstrap.servers": args.bootstrap,
        "client.id": args.client_id,
        "group.id": args.group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": args.session_timeout_ms,
        "heartbeat.interval.ms": 1000,
        "fetch.wait.max.ms": 200,
        "reconnect.backoff.max.ms": 1000,
    }
    if args.protocol == "consumer":
        # KIP-848: the broker owns session and heartbeat timing and the assignment.
        conf["group.protocol"] = "consumer"
        del conf["session.timeout.ms"]
        del conf["heartbeat.interval.ms"]
    if args.group_instance_id:
        conf["group.instance.id"] = args.group_instance_id
    errors = []
    conf["error_cb"] = lambda err: errors.append(str(err))
    consumer = Consumer(conf)

    def on_assign(consumer_, partitions):
        if args.protocol == "consumer":
            # Incremental: the callback names only the added partitions.
            consumer_.incremental_assign(partitions)
            held = consumer_.assignment()
            progress.on_assignment([tp.partition for tp in held])
        else:
            progress.on_assignment([tp.partition for tp in partitions])

    def on_revoke(consumer_, partitions):
        if args.protocol == "consumer":
            try:
                consumer_.incremental_unassign(partitions)
                held = consumer_.assignment()
            except KafkaException as e:
                # close() revokes everything while it destroys the handle: librdkafka
                # then answers _DESTROY, and there is nothing left to record.
                if e.args[0].code() == confluent_kafka.KafkaError._DESTROY:
                    return
                raise
            progress.on_assignment([tp.partition for tp in held])

    consumer.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke)
    while not progress.done():
        msg = consumer.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == confluent_kafka.KafkaError._PARTITION_EOF:
                continue
            _driver.fail(f"consumer error: {msg.error()}")
        if args.max_records is not None and progress.count >= args.max_records:
            continue
        if not progress.on_record(msg.partition(), msg.offset()):
            _driver.fail(f"offset {msg.offset()} of partition {msg.partition()} went back")
        _ts_type, ts = msg.timestamp()
        print(_driver.record_line(msg.partition(), msg.offset(), ts, msg.key(), msg.value(),
                                  msg.headers()), flush=True)
    committed = {}
    if not args.no_commit and progress.next_offsets:
        offsets = [TopicPartition(args.topic, p, o) for p, o in progress.next_offsets.items()]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as e:
            _driver.fail(f"commit failed: {e}")
        committed = dict(progress.next_offsets)
    consumer.close()
    progress.summary(committed, f"confluent-kafka {confluent_kafka.__version__} "
                                f"(librdkafka {confluent_kafka.libversion()[0]})")


if __name__ == "__main__":
    main()
