#!/usr/bin/env python3
"""Drives confluent-kafka's AdminClient (librdkafka) through the legacy alter_configs and
incremental_alter_configs on a topic and on broker --broker-id (the client refuses the
cluster default's empty name), then produces, printing one JSON document of
{name: [value, source]} pairs and outcomes (error names):

    {"topic_altered": "ok", "topic": {...}, "legacy_broker": "ok",
     "incremental_broker": "ok", "broker": {...},
     "topic_limit": {"max.message.bytes": ["4000", "DYNAMIC_BROKER_CONFIG"]},
     "small": "ok", "large": "MSG_SIZE_TOO_LARGE",
     "validate_only": "ok", "read_only": "INVALID_REQUEST", "read_only_message": "...",
     "append_not_list": "INVALID_CONFIG"}

With --check-only: just describe and produce (after a restart), with the same keys.
"""

import json
import sys

import _driver

import confluent_kafka
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   NewTopic)


def outcome(future, timeout, out=None, key=None):
    try:
        future.result(timeout=timeout)
        return "ok"
    except KafkaException as e:
        if out is not None:
            out[key + "_message"] = e.args[0].str()
        return e.args[0].name()


def described(admin, resource, keys, wait):
    configs = admin.describe_configs([resource])[resource].result(timeout=wait)
    return {k: [configs[k].value, confluent_kafka.admin.ConfigSource(configs[k].source).name]
            for k in keys if k in configs}


def produce(conf, topic, size, wait):
    producer = Producer({**conf, "acks": "all", "retries": 0})
    result = []
    producer.produce(topic, value=b"x" * size, partition=0,
                     on_delivery=lambda err, msg: result.append(err.name() if err else "ok"))
    producer.flush(wait)
    return result[0] if result else "undelivered"


def main():
    p = _driver.parser(__doc__)
    p.add_argument("--topic", required=True)
    p.add_argument("--broker-id", default="1")
    p.add_argument("--check-only", action="store_true")
    args = p.parse_args()
    _driver.start_watchdog(args.timeout)
    wait = min(args.timeout, 30)
    topic = args.topic
    conf = {"bootstrap.servers": args.bootstrap, "client.id": args.client_id}
    broker = ConfigResource("broker", args.broker_id)
    topic_res = ConfigResource("topic", topic)
    out = {}
    step = "connect"
    try:
        admin = AdminClient(conf)
        if not args.check_only:
            step = "create_topics"
            new = NewTopic(topic, num_partitions=1, replication_factor=1,
                           config={"retention.ms": "3600000"})
            admin.create_topics([new])[topic].result(timeout=wait)

            step = "legacy alter topic"
            change = ConfigResource("topic", topic, set_config={"segment.bytes": "2000000"})
            out["topic_altered"] = outcome(admin.alter_configs([change])[change], wait)
            out["topic"] = described(admin, topic_res, ["segment.bytes", "retention.ms"], wait)

            step = "legacy alter broker"
            change = ConfigResource("broker", args.broker_id, set_config={
                "log.retention.ms": "5555000", "message.max.bytes": "9999"})
            out["legacy_broker"] = outcome(admin.alter_configs([change])[change], wait)

            step = "incremental alter broker"
            change = ConfigResource("broker", args.broker_id, incremental_configs=[
                ConfigEntry("message.max.bytes", "4000",
                            incremental_operation=AlterConfigOpType.SET)])
            out["incremental_broker"] = outcome(
                admin.incremental_alter_configs([change])[change], wait)

            step = "validate only"
            change = ConfigResource("broker", args.broker_id, set_config={"log.retention.ms": "1"})
            out["validate_only"] = outcome(
                admin.alter_configs([change], validate_only=True)[change], wait)

            step = "read-only"
            change = ConfigResource("broker", args.broker_id, incremental_configs=[
                ConfigEntry("log.dirs", "/elsewhere",
                            incremental_operation=AlterConfigOpType.SET)])
            out["read_only"] = outcome(admin.incremental_alter_configs([change])[change],
                                       wait, out, "read_only")

            step = "append to a non-list"
            change = ConfigResource("broker", args.broker_id, incremental_configs=[
                ConfigEntry("message.max.bytes", "5",
                            incremental_operation=AlterConfigOpType.APPEND)])
            out["append_not_list"] = outcome(
                admin.incremental_alter_configs([change])[change], wait)

        step = "describe"
        out["broker"] = described(admin, broker, ["message.max.bytes", "log.retention.ms"], wait)
        out["topic_limit"] = described(admin, topic_res,
                                       ["max.message.bytes", "retention.ms", "segment.bytes"],
                                       wait)
        step = "produce"
        out["small"] = produce(conf, topic, 100, wait)
        out["large"] = produce(conf, topic, 6000, wait)
    except Exception as e:  # noqa: BLE001 - any failure ends the run
        _driver.fail(f"{step} failed: {type(e).__name__}: {e} (so far: {json.dumps(out)})")
    print(json.dumps(out))
    print(f"confluent-kafka {confluent_kafka.__version__}: done", file=sys.stderr)


if __name__ == "__main__":
    main()
