#!/usr/bin/env python3
"""Drives kafka-python's KafkaAdminClient through the admin APIs on --topic and prints one
JSON document (error codes are Kafka's, 0 for success):

    {"created": {"<topic>": 0}, "create_again": {"<topic>": 36},
     "configs": {"retention.ms": "3600000", "cleanup.policy": "delete"},
     "altered": 0, "configs_after": {"retention.ms": "7200000", ...},
     "partitions": 0, "partition_count": 3,
     "cluster": {"cluster_id": ..., "controller_id": 1, "brokers": 1},
     "low_watermark": 5, "deleted": {"<topic>": 0}, "delete_again": {"<topic>": 3}}

Steps: create_topics (CreateTopics, with retention.ms=3600000), the same again,
describe_configs (DescribeConfigs), alter_configs (IncrementalAlterConfigs, retention.ms to
7200000) and describe again, create_partitions to 3 (CreatePartitions), describe_cluster
(DescribeCluster), a producer writes 10 records to partition 0 and delete_records below 5
(DeleteRecords), delete_topics (DeleteTopics) twice.
"""

import json
import sys

import _driver

import kafka
from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType


def codes(result, key):
    return {t["name"]: t["error_code"] for t in result[key]}


def main():
    p = _driver.parser(__doc__)
    p.add_argument("--topic", required=True)
    args = p.parse_args()
    _driver.start_watchdog(args.timeout)
    timeout_ms = int(min(args.timeout, 15) * 1000)
    common = dict(bootstrap_servers=args.bootstrap, client_id=args.client_id,
                  request_timeout_ms=timeout_ms)
    topic = args.topic
    out = {}
    step = "connect"
    try:
        admin = KafkaAdminClient(**common)
        step = "create_topics"
        new = {topic: {"num_partitions": 1, "replication_factor": 1,
                       "configs": {"retention.ms": "3600000"}}}
        out["created"] = codes(admin.create_topics(new), "topics")
        out["create_again"] = codes(admin.create_topics(new, raise_errors=False), "topics")

        step = "describe_configs"
        resource = ConfigResource(ConfigResourceType.TOPIC, topic)
        described = admin.describe_configs([resource], config_filter="all")
        configs = described["topic"][topic]
        out["configs"] = {k: v["value"] for k, v in configs.items()}

        step = "alter_configs"
        altered = admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic,
                            configs={"retention.ms": "7200000"})])
        result = altered["topic"][topic]
        out["altered"] = 0 if not isinstance(result, Exception) else getattr(result, "errno", -1)
        described = admin.describe_configs([resource], config_filter="all")
        out["configs_after"] = {k: v["value"] for k, v in described["topic"][topic].items()}

        step = "create_partitions"
        response = admin.create_partitions({topic: 3})
        out["partitions"] = response.results[0].error_code
        out["partition_count"] = len(admin.describe_topics([topic])[0]["partitions"])

        step = "describe_cluster"
        cluster = admin.describe_cluster()
        out["cluster"] = {"cluster_id": cluster.get("cluster_id"),
                          "controller_id": cluster.get("controller_id"),
                          "brokers": len(cluster.get("brokers", []))}

        step = "produce"
        producer = KafkaProducer(**common)
        for i in range(10):
            producer.send(topic, value=b"v%d" % i, partition=0)
        producer.flush(timeout=args.timeout)
        producer.close()

        step = "delete_records"
        deleted = admin.delete_records({TopicPartition(topic, 0): 5})
        out["low_watermark"] = deleted[TopicPartition(topic, 0)]["low_watermark"]

        step = "delete_topics"
        out["deleted"] = codes(admin.delete_topics([topic]), "topics")
        out["delete_again"] = codes(admin.delete_topics([topic], raise_errors=False), "topics")
        admin.close()
    except Exception as e:  # noqa: BLE001 - any failure ends the run
        _driver.fail(f"{step} failed: {type(e).__name__}: {e} (so far: {json.dumps(out)})")
    print(json.dumps(out, default=str))
    print(f"kafka-python {kafka.__version__}: done", file=sys.stderr)


if __name__ == "__main__":
    main()
