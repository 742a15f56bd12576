#!/usr/bin/env python3
"""Prints the cluster metadata as confluent-kafka's AdminClient.list_topics sees it (a
Metadata request from librdkafka), as one JSON document:

    {"cluster_id": ..., "controller_id": ..., "orig_broker_id": ...,
     "brokers": [{"id": 1, "host": "127.0.0.1", "port": 9092}],
     "topics": [{"name": ..., "error": null | "...",
                 "partitions": [{"id": 0, "leader": 1, "replicas": [1], "isrs": [1],
                                 "error": null}]}]}
"""

import json
import sys

import _driver

import confluent_kafka
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient


def main():
    p = _driver.parser(__doc__)
    p.add_argument("--topic", default=None, help="ask for this topic only")
    p.add_argument("--debug", default=None, help="librdkafka debug contexts (to stderr)")
    args = p.parse_args()
    _driver.start_watchdog(args.timeout)
    conf = {"bootstrap.servers": args.bootstrap, "client.id": args.client_id,
            "socket.timeout.ms": 10000}
    if args.debug:
        conf["debug"] = args.debug
    admin = AdminClient(conf)
    try:
        md = admin.list_topics(topic=args.topic, timeout=args.timeout)
    except KafkaException as e:
        _driver.fail(f"list_topics failed: {e}")
    out = {
        "cluster_id": md.cluster_id,
        "controller_id": md.controller_id,
        "orig_broker_id": md.orig_broker_id,
        "orig_broker_name": md.orig_broker_name,
        "brokers": [{"id": b.id, "host": b.host, "port": b.port}
                    for b in sorted(md.brokers.values(), key=lambda b: b.id)],
        "topics": [
            {
                "name": t.topic,
                "error": None if t.error is None else str(t.error),
                "partitions": [
                    {"id": q.id, "leader": q.leader, "replicas": list(q.replicas),
                     "isrs": list(q.isrs), "error": None if q.error is None else str(q.error)}
                    for q in sorted(t.partitions.values(), key=lambda q: q.id)
                ],
            }
            for t in sorted(md.topics.values(), key=lambda t: t.topic)
        ],
    }
    print(json.dumps(out))
    print(f"confluent-kafka {confluent_kafka.__version__} (librdkafka "
          f"{confluent_kafka.libversion()[0]}): {len(out['topics'])} topics", file=sys.stderr)


if __name__ == "__main__":
    main()
