#!/usr/bin/env python3
"""Drives kafka-python's KafkaAdminClient through the legacy AlterConfigs (incremental=False)
on a topic and on broker resources, printing one JSON document:

    {"topic_altered": "OK", "topic": {"segment.bytes": ["2000000", "DYNAMIC_TOPIC_CONFIG"],
     "retention.ms": ["604800000", "DEFAULT_CONFIG"]},
     "broker_altered": "OK", "broker": {"log.retention.ms": ["7777000", "DYNAMIC_BROKER_CONFIG"]},
     "topic_follows": {"retention.ms": [...], "segment.bytes": [...]},
     "read_only": "<error text>"}

Steps: create --topic with retention.ms=3600000, replace its configs with only
segment.bytes=2000000 (retention.ms goes back to the broker's), set log.retention.ms on
broker --broker-id (the client refuses the cluster default's empty name), describe both,
then try the read-only log.dirs on the broker.
"""

import json
import sys

import _driver

import kafka
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType


def described(admin, kind, name, keys):
    res = ConfigResource(kind, name)
    result = admin.describe_configs([res], config_filter="all")
    configs = result[kind.name.lower()][name]
    return {k: [configs[k]["value"], configs[k].get("config_source")] for k in keys if k in configs}


def main():
    p = _driver.parser(__doc__)
    p.add_argument("--topic", required=True)
    p.add_argument("--broker-id", default="1")
    args = p.parse_args()
    _driver.start_watchdog(args.timeout)
    timeout_ms = int(min(args.timeout, 15) * 1000)
    common = dict(bootstrap_servers=args.bootstrap, client_id=args.client_id,
                  request_timeout_ms=timeout_ms)
    topic = args.topic
    legacy = dict(incremental=False, raise_on_unknown=False)
    out = {}
    step = "connect"
    try:
        admin = KafkaAdminClient(**common)
        step = "create_topics"
        admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1,
                                     "configs": {"retention.ms": "3600000"}}})

        step = "alter topic"
        # The client adds the resource's other dynamic configs unless they are named; naming
        # retention.ms with the broker's value is not what we want, so send the request as is.
        res = ConfigResource(ConfigResourceType.TOPIC, topic, configs={"segment.bytes": "2000000"})
        request = admin._alter_configs_request([res], False, incremental=False)
        response = admin._manager.run(admin._manager.send, request)
        r = response.responses[0]
        out["topic_altered"] = "OK" if r.error_code == 0 else r.error_code
        out["topic"] = described(admin, ConfigResourceType.TOPIC, topic,
                                 ["segment.bytes", "retention.ms"])

        step = "alter broker"
        res = ConfigResource(ConfigResourceType.BROKER, args.broker_id,
                             configs={"log.retention.ms": "7777000"})
        out["broker_altered"] = admin.alter_configs([res], **legacy)["broker"][args.broker_id]
        out["broker"] = described(admin, ConfigResourceType.BROKER, args.broker_id,
                                  ["log.retention.ms"])

        out["topic_follows"] = described(admin, ConfigResourceType.TOPIC, topic,
                                         ["retention.ms", "segment.bytes"])

        step = "read-only"
        res = ConfigResource(ConfigResourceType.BROKER, args.broker_id,
                             configs={"log.dirs": "/elsewhere", "log.retention.ms": "7777000"})
        out["read_only"] = admin.alter_configs([res], **legacy)["broker"][args.broker_id]
        admin.close()
    except Exception as e:  # noqa: BLE001 - any failure ends the run
        _driver.fail(f"{step} failed: {type(e).__name__}: {e} (so far: {json.dumps(out)})")
    print(json.dumps(out, default=str))
    print(f"kafka-python {kafka.__version__}: done", file=sys.stderr)


if __name__ == "__main__":
    main()
