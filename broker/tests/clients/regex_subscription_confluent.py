#!/usr/bin/env python3
"""KIP-848 regular-expression subscription with confluent-kafka (group.protocol=consumer):
creates <prefix>a (2 partitions, 4 records), subscribes to ^<prefix>.*, and once those are
read creates <prefix>b (1 partition, 3 records), which the broker's resolution of the
regex must add to the member's assignment. Prints one JSON object: every record read as
[topic, partition, offset, value] and the partitions of each assignment callback.
"""

import json
import time

import _driver

import confluent_kafka
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic


def main():
    p = _driver.parser(__doc__)
    p.add_argument("--prefix", required=True)
    p.add_argument("--group", required=True)
    args = p.parse_args()
    deadline = time.time() + args.timeout
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    producer = Producer({"bootstrap.servers": args.bootstrap})
    first, later = args.prefix + "a", args.prefix + "b"

    def create(topic, partitions, count):
        for f in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
            f.result()
        for i in range(count):
            producer.produce(topic, f"{topic}-{i}".encode(), partition=i % partitions)
        producer.flush(30)

    create(first, 2, 4)
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "client.id": args.client_id,
        "group.id": args.group,
        "group.protocol": "consumer",
        "auto.offset.reset": "earliest",
        "topic.metadata.refresh.interval.ms": 1000,
    })
    assignments = []

    def on_assign(c, partitions):
        c.incremental_assign(partitions)
        assignments.append(sorted([tp.topic, tp.partition] for tp in partitions))

    def on_revoke(c, partitions):
        c.incremental_unassign(partitions)

    consumer.subscribe([f"^{args.prefix}.*"], on_assign=on_assign, on_revoke=on_revoke)
    records = []
    created = False
    while sum(1 for r in records if r[0] == later) < 3:
        if time.time() > deadline:
            _driver.fail(f"timed out: read {records}, assignments {assignments}")
        msg = consumer.poll(0.2)
        if msg is not None and not msg.error():
            records.append([msg.topic(), msg.partition(), msg.offset(), msg.value().decode()])
        if not created and len(records) >= 4:
            create(later, 1, 3)
            created = True
    consumer.close()
    print(json.dumps({"records": records, "assignments": assignments,
                      "client": confluent_kafka.version()[0]}), flush=True)


if __name__ == "__main__":
    main()
