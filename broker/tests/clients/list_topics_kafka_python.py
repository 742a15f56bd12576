#!/usr/bin/env python3
"""Prints the topics and partitions kafka-python sees, as one JSON document:

    {"brokers": [{"node_id": 1, "host": "127.0.0.1", "port": 9092}],
     "cluster_id": ..., "controller_id": ...,
     "topics": [{"name": ..., "topic_id": ..., "error_code": 0, "is_internal": false,
                 "partitions": [{"partition": 0, "leader": 1, "leader_epoch": 0,
                                 "replicas": [1], "isr": [1], "error_code": 0}]}]}

--api metadata (default): KafkaAdminClient.describe_topics (a Metadata request);
--api consumer: KafkaConsumer.topics() and partitions_for_topic() (names and indexes only);
--api describe-topic-partitions: KafkaAdminClient.describe_topic_partitions (KIP-966).
"""

import json
import sys
import uuid

import _driver

import kafka
from kafka import KafkaAdminClient, KafkaConsumer


def partition_entry(p):
    return {
        "partition": p.get("partition_index", p.get("partition")),
        "leader": p.get("leader_id", p.get("leader")),
        "leader_epoch": p.get("leader_epoch"),
        "replicas": list(p.get("replica_nodes", p.get("replicas")) or []),
        "isr": list(p.get("isr_nodes", p.get("isr")) or []),
        "error_code": p.get("error_code", 0),
    }


def topic_entry(t):
    topic_id = t.get("topic_id")
    return {
        "name": t.get("name", t.get("topic")),
        "topic_id": str(topic_id) if isinstance(topic_id, uuid.UUID) else topic_id,
        "error_code": t.get("error_code", 0),
        "is_internal": t.get("is_internal", False),
        "partitions": sorted((partition_entry(p) for p in t.get("partitions", [])),
                             key=lambda p: p["partition"]),
    }


def main():
    p = _driver.parser(__doc__)
    p.add_argument("--api", default="metadata",
                   choices=["metadata", "consumer", "describe-topic-partitions"])
    p.add_argument("--topic", action="append", default=None,
                   help="topics to describe (repeatable; default all, or required for "
                        "describe-topic-partitions)")
    args = p.parse_args()
    _driver.start_watchdog(args.timeout)
    timeout_ms = int(min(args.timeout, 15) * 1000)
    common = dict(bootstrap_servers=args.bootstrap, client_id=args.client_id,
                  request_timeout_ms=timeout_ms, bootstrap_timeout_ms=timeout_ms)
    out = {}
    try:
        if args.api == "consumer":
            consumer = KafkaConsumer(**common, group_id=None, enable_auto_commit=False)
            names = sorted(args.topic or consumer.topics())
            out["topics"] = [
                {"name": name,
                 "partitions": [{"partition": i}
                                for i in sorted(consumer.partitions_for_topic(name) or [])]}
                for name in names
            ]
            consumer.close()
        else:
            admin = KafkaAdminClient(**common)
            if args.api == "metadata":
                topics = admin.describe_topics(args.topic)
                # The brokers and cluster id of the same Metadata request.
                metadata = admin._manager.run(admin._get_cluster_metadata, [])
                out["cluster_id"] = metadata.get("cluster_id")
                out["controller_id"] = metadata.get("controller_id")
                out["brokers"] = sorted(
                    ({"node_id": b["node_id"], "host": b["host"], "port": b["port"]}
                     for b in metadata.get("brokers", [])), key=lambda b: b["node_id"])
            else:
                if not args.topic:
                    _driver.fail("--api describe-topic-partitions needs --topic")
                topics = admin.describe_topic_partitions(args.topic)["topics"]
            out["topics"] = sorted((topic_entry(t) for t in topics), key=lambda t: t["name"])
            admin.close()
    except Exception as e:  # noqa: BLE001 - any failure ends the run
        _driver.fail(f"{args.api} failed: {type(e).__name__}: {e}")
    print(json.dumps(out, default=str))
    print(f"kafka-python {kafka.__version__}: {len(out['topics'])} topics", file=sys.stderr)


if __name__ == "__main__":
    main()
