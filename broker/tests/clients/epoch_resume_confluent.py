#!/usr/bin/env python3
"""A confluent-kafka (librdkafka) group consumer that positions itself with a leader
epoch, so that librdkafka validates the position with OffsetForLeaderEpoch (KIP-320)
before it fetches from there: librdkafka validates a seek() to an offset with an epoch
(and a leader epoch that grows in the metadata), not a plain resume.

Subscribes to --topic in --group and polls until the first record arrives (the fetch is
running). Then, with --seek-committed, seeks every assigned partition to its committed
offset and leader epoch (what a Java consumer does by itself when it resumes); with
--seek OFFSET:EPOCH, seeks partition 0 there. Records from before the seek are dropped.
Consumes at most --max-records records (all until idle for --idle-ms otherwise), prints
each as a JSON line, commits the next offset of each partition with the last record's
leader epoch (unless --no-commit), closes, and prints on stderr:

    SUMMARY {"first": {"<partition>": <first offset after the seek>}, "count": <records>,
             "seeked": {"<partition>": [<offset>, <leader epoch>]},
             "committed": {"<partition>": [<offset>, <leader epoch>]},
             "errors": ["<client error>", ...]}
"""

import json
import sys
import time

import _driver

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition


def main():
    p = _driver.parser(__doc__)
    p.add_argument("--topic", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--max-records", type=int, default=None)
    p.add_argument("--idle-ms", type=int, default=3000)
    p.add_argument("--no-commit", action="store_true")
    p.add_argument("--seek-committed", action="store_true")
    p.add_argument("--seek", default=None, help="OFFSET:EPOCH for partition 0")
    args = p.parse_args()
    deadline = _driver.start_watchdog(args.timeout)
    errors = []
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "client.id": args.client_id,
        "group.id": args.group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 1000,
        "fetch.wait.max.ms": 200,
        "reconnect.backoff.max.ms": 1000,
        "error_cb": lambda err: errors.append(str(err)),
    })
    consumer.subscribe([args.topic])

    def next_message():
        msg = consumer.poll(0.2)
        if msg is None:
            return None
        if msg.error():
            if msg.error().code() != KafkaError._PARTITION_EOF:
                errors.append(str(msg.error()))
            return None
        return msg

    seeked = {}
    if args.seek_committed or args.seek:
        while time.monotonic() < deadline and next_message() is None:
            pass
        if args.seek_committed:
            targets = consumer.committed(consumer.assignment(), timeout=30)
        else:
            offset, epoch = (int(x) for x in args.seek.split(":"))
            targets = [TopicPartition(args.topic, 0, offset, leader_epoch=epoch)]
        for tp in targets:
            consumer.seek(tp)
            seeked[tp.partition] = [tp.offset, tp.leader_epoch]

    first, last = {}, {}
    count = 0
    idle_since = None
    while time.monotonic() < deadline:
        if args.max_records is not None and count >= args.max_records:
            break
        msg = next_message()
        if msg is None:
            idle_since = idle_since or time.monotonic()
            if first and (time.monotonic() - idle_since) * 1000 >= args.idle_ms:
                break
            continue
        idle_since = None
        first.setdefault(msg.partition(), msg.offset())
        last[msg.partition()] = msg
        count += 1
        _ts_type, ts = msg.timestamp()
        print(_driver.record_line(msg.partition(), msg.offset(), ts, msg.key(), msg.value(),
                                  msg.headers()), flush=True)
    committed = {}
    if not args.no_commit and last:
        offsets = [TopicPartition(args.topic, partition, msg.offset() + 1,
                                  leader_epoch=msg.leader_epoch())
                   for partition, msg in last.items()]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as e:
            _driver.fail(f"commit failed: {e}")
        committed = {tp.partition: [tp.offset, tp.leader_epoch] for tp in offsets}
    consumer.close()
    summary = {"first": first, "count": count, "seeked": seeked, "committed": committed,
               "errors": errors}
    print("SUMMARY " + json.dumps(summary, sort_keys=True), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
