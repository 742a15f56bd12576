#!/usr/bin/env python3
"""Writes keyed updates to a compacted topic with confluent-kafka (rounds of every key,
pausing between rounds so that segment.ms rolls segments), tries a record without a key,
then reads the whole partition again and again until the log cleaner has compacted it:
every key's latest value, once. Prints one JSON document:

    {"null_key_error": "<librdkafka error name>", "null_key_code": <int>,
     "records": [[offset, key, value], ...], "polls": <reads needed>}
"""

import json
import sys
import time

import _driver

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition


def read_all(bootstrap, topic):
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "compacted-reader",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
    })
    consumer.assign([TopicPartition(topic, 0, 0)])
    rows = []
    while True:
        msg = consumer.poll(10)
        if msg is None:
            break
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                break
            _driver.fail(f"consume error: {msg.error()}")
        rows.append([msg.offset(), msg.key().decode(), msg.value().decode()])
    consumer.close()
    return rows


def main():
    p = _driver.parser(__doc__)
    p.add_argument("--topic", required=True)
    p.add_argument("--keys", type=int, default=10)
    p.add_argument("--rounds", type=int, default=6)
    args = p.parse_args()
    deadline = _driver.start_watchdog(args.timeout)

    producer = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 0})
    # Offset 0: a key written once, kept by every cleaning (the later rounds leave a gap).
    producer.produce(args.topic, key="first", value="first", partition=0)
    producer.flush(30)
    for round_ in range(args.rounds):
        for k in range(args.keys):
            producer.produce(args.topic, key=f"key-{k}", value=f"v{round_}-{k}", partition=0)
        if producer.flush(30) != 0:
            _driver.fail("records not acknowledged")
        time.sleep(0.3)

    outcome = {}

    def on_delivery(err, msg):
        outcome["error"] = err

    producer.produce(args.topic, key=None, value="no key", partition=0, on_delivery=on_delivery)
    producer.flush(30)
    err = outcome.get("error")
    # One last keyed record, after segment.ms, rolls the last round out of the active segment.
    time.sleep(0.3)
    producer.produce(args.topic, key="roll", value="roll", partition=0)
    producer.flush(30)

    polls = 0
    while True:
        polls += 1
        rows = read_all(args.bootstrap, args.topic)
        keys = [r[1] for r in rows if r[1] not in ("roll", "first")]
        if len(keys) == len(set(keys)) == args.keys:
            break
        if time.monotonic() > deadline:
            _driver.fail(f"not compacted in time: {len(rows)} records")
        time.sleep(0.5)
    print(json.dumps({
        "null_key_error": err.name() if err else None,
        "null_key_code": err.code() if err else None,
        "records": rows,
        "polls": polls,
    }))


if __name__ == "__main__":
    main()
