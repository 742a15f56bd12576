#!/usr/bin/env python3
"""Drives confluent-kafka's AdminClient (librdkafka) through the admin APIs on --topic,
and an idempotent producer (InitProducerId), printing one JSON document:

    {"created": "ok", "create_again": "TOPIC_ALREADY_EXISTS",
     "configs": {"retention.ms": "3600000", ...}, "sources": {"retention.ms": "..."},
     "altered": "ok", "configs_after": {...}, "partitions": "ok",
     "cluster": {"cluster_id": ..., "controller": 1, "nodes": 1},
     "produced": 20, "deleted_records_low_watermark": 5, "broker_configs": <count>,
     "deleted": "ok"}

Steps: create_topics (CreateTopics, retention.ms=3600000, 2 partitions) twice,
describe_configs (DescribeConfigs), incremental_alter_configs (retention.ms to 7200000) and
describe again, create_partitions to 3 (CreatePartitions), describe_cluster
(DescribeCluster), an idempotent producer writes 20 records to partition 0,
delete_records below 5 (DeleteRecords), describe_configs of broker 1, delete_topics.
"""

import json
import sys

import _driver

import confluent_kafka
from confluent_kafka import KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   NewPartitions, NewTopic)


def outcome(future, timeout):
    try:
        future.result(timeout=timeout)
        return "ok"
    except KafkaException as e:
        return e.args[0].name()


def main():
    p = _driver.parser(__doc__)
    p.add_argument("--topic", required=True)
    args = p.parse_args()
    _driver.start_watchdog(args.timeout)
    wait = min(args.timeout, 30)
    topic = args.topic
    conf = {"bootstrap.servers": args.bootstrap, "client.id": args.client_id}
    out = {}
    step = "connect"
    try:
        admin = AdminClient(conf)
        step = "create_topics"
        new = NewTopic(topic, num_partitions=2, replication_factor=1,
                       config={"retention.ms": "3600000"})
        out["created"] = outcome(admin.create_topics([new])[topic], wait)
        out["create_again"] = outcome(admin.create_topics([new])[topic], wait)

        step = "describe_configs"
        resource = ConfigResource("topic", topic)
        configs = admin.describe_configs([resource])[resource].result(timeout=wait)
        out["configs"] = {k: v.value for k, v in configs.items()}
        out["sources"] = {k: confluent_kafka.admin.ConfigSource(v.source).name
                          for k, v in configs.items()}

        step = "incremental_alter_configs"
        change = ConfigResource("topic", topic, incremental_configs=[
            ConfigEntry("retention.ms", "7200000",
                        incremental_operation=AlterConfigOpType.SET)])
        out["altered"] = outcome(admin.incremental_alter_configs([change])[change], wait)
        configs = admin.describe_configs([resource])[resource].result(timeout=wait)
        out["configs_after"] = {k: v.value for k, v in configs.items()}

        step = "create_partitions"
        out["partitions"] = outcome(
            admin.create_partitions([NewPartitions(topic, 3)])[topic], wait)

        step = "describe_cluster"
        cluster = admin.describe_cluster().result(timeout=wait)
        out["cluster"] = {"cluster_id": cluster.cluster_id,
                          "controller": cluster.controller.id if cluster.controller else None,
                          "nodes": len(cluster.nodes)}

        step = "idempotent produce"
        producer = Producer({**conf, "enable.idempotence": True, "acks": "all"})
        delivered = []
        errors = []

        def report(err, msg):
            (errors if err else delivered).append(str(err) if err else msg.offset())

        for i in range(20):
            producer.produce(topic, value=b"v%d" % i, partition=0, on_delivery=report)
        remaining = producer.flush(wait)
        if errors or remaining:
            _driver.fail(f"produce: errors {errors[:3]}, {remaining} undelivered")
        out["produced"] = len(delivered)

        step = "delete_records"
        futures = admin.delete_records([TopicPartition(topic, 0, 5)])
        deleted = futures[TopicPartition(topic, 0)].result(timeout=wait)
        out["deleted_records_low_watermark"] = deleted.low_watermark

        step = "describe broker configs"
        broker = ConfigResource("broker", "1")
        configs = admin.describe_configs([broker])[broker].result(timeout=wait)
        out["broker_configs"] = len(configs)

        step = "delete_topics"
        out["deleted"] = outcome(admin.delete_topics([topic])[topic], wait)
    except Exception as e:  # noqa: BLE001 - any failure ends the run
        _driver.fail(f"{step} failed: {type(e).__name__}: {e} (so far: {json.dumps(out)})")
    print(json.dumps(out))
    print(f"confluent-kafka {confluent_kafka.__version__}: done", file=sys.stderr)


if __name__ == "__main__":
    main()
