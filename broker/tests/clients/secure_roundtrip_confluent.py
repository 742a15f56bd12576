#!/usr/bin/env python3
"""Over a secured listener (see _security.py) with confluent-kafka: produces --count
records `<tag>-<i>` to --topic, then consumes them as a member of --group (subscribe,
earliest), commits and closes. Prints one JSON line:

    {"produced": n, "consumed": ["<tag>-0", ...], "committed": {"<partition>": offset}}

With --metadata-only it only asks for the topic list and prints {"topics": [...]}.
Any client error (authentication failed, say) ends the run with exit status 1 and
{"error": "..."} on stdout.
"""

import json
import sys
import time

import _driver
import _security

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient


def main():
    p = _security.add_options(_driver.parser(__doc__))
    p.add_argument("--topic", default=None)
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--tag", default="secure")
    p.add_argument("--group", default="secure-group")
    p.add_argument("--metadata-only", action="store_true")
    args = p.parse_args()
    deadline = _driver.start_watchdog(args.timeout)
    errors = []

    def on_error(err):
        errors.append(str(err))
        print(f"librdkafka error: {err}", file=sys.stderr, flush=True)

    def stop(message):
        print(json.dumps({"error": message}), flush=True)
        sys.exit(1)

    base = dict(_security.librdkafka(args))
    base.update({"bootstrap.servers": args.bootstrap, "client.id": args.client_id,
                 "error_cb": on_error, "socket.timeout.ms": 20000})
    if args.metadata_only:
        admin = AdminClient(base)
        try:
            md = admin.list_topics(timeout=min(20.0, args.timeout))
        except KafkaException as e:
            stop(f"{e}; client errors: {errors}")
        if errors:
            stop(f"client errors: {errors}")
        print(json.dumps({"topics": sorted(md.topics)}), flush=True)
        return

    producer = Producer(dict(base, **{"acks": "all", "linger.ms": 5,
                                      "message.timeout.ms": int(args.timeout * 1000)}))
    failures = []
    for i in range(args.count):
        producer.produce(args.topic, value=f"{args.tag}-{i}".encode(),
                         on_delivery=lambda err, msg: err and failures.append(str(err)))
    left = producer.flush(max(1.0, deadline - time.monotonic()))
    if failures or left:
        stop(f"produce failed: {failures[:3]} ({left} queued); client errors: {errors[-3:]}")

    consumer = Consumer(dict(base, **{"group.id": args.group, "auto.offset.reset": "earliest",
                                      "enable.auto.commit": False}))
    consumer.subscribe([args.topic])
    consumed = []
    while len(consumed) < args.count:
        if time.monotonic() > deadline:
            stop(f"timed out with {len(consumed)} records; client errors: {errors[-3:]}")
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            stop(f"consume failed: {msg.error()}")
        value = msg.value().decode()
        if value.startswith(args.tag + "-"):
            consumed.append(value)
    consumer.commit(asynchronous=False)
    parts = consumer.committed([TopicPartition(args.topic, 0)], timeout=20)
    consumer.close()
    print(json.dumps({"produced": args.count, "consumed": consumed,
                      "committed": {str(tp.partition): tp.offset for tp in parts}}), flush=True)


if __name__ == "__main__":
    main()
