#!/usr/bin/env python3
"""ACLs with confluent-kafka over a secured listener (see _security.py). One action per
run, one JSON line on stdout:

  --action create --acls JSON     AdminClient.create_acls; {"results": [null | "ERROR_NAME"]}
  --action describe --acls JSON   AdminClient.describe_acls of one filter;
                                  {"acls": [binding...]} or {"error": "ERROR_NAME"}
  --action delete --acls JSON     AdminClient.delete_acls of a list of filters;
                                  {"deleted": [[binding...] | "ERROR_NAME"]}
  --action produce --topic T      produces --count records; {"delivered": n, "errors": [...]}
  --action metadata               all-topics metadata; {"topics": [name...]} (sorted)
  --action consume --topic T --group G
                                  subscribes and polls until --count records or an error;
                                  {"consumed": n, "error": null | "ERROR_NAME"}

A binding (and a filter) is {"type": "TOPIC", "name": "t", "pattern": "LITERAL",
"principal": "User:alice", "host": "*", "operation": "WRITE", "permission": "ALLOW"};
filters may say "ANY" and null.
"""

import json
import sys
import time

import _driver
import _security

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation,
                                   AclPermissionType, AdminClient, ResourcePatternType,
                                   ResourceType)


def binding(spec, cls):
    return cls(ResourceType[spec["type"]], spec.get("name"),
               ResourcePatternType[spec.get("pattern", "LITERAL")], spec.get("principal"),
               spec.get("host"), AclOperation[spec["operation"]],
               AclPermissionType[spec["permission"]])


def as_json(b):
    return {"type": b.restype.name, "name": b.name, "pattern": b.resource_pattern_type.name,
            "principal": b.principal, "host": b.host, "operation": b.operation.name,
            "permission": b.permission_type.name}


def error_name(exc):
    err = exc.args[0] if exc.args else None
    if hasattr(err, "name"):
        return err.name()
    return str(exc)


def main():
    p = _security.add_options(_driver.parser(__doc__))
    p.add_argument("--action", required=True,
                   choices=["create", "describe", "delete", "produce", "consume", "metadata"])
    p.add_argument("--acls", default="[]")
    p.add_argument("--topic", default=None)
    p.add_argument("--group", default=None)
    p.add_argument("--count", type=int, default=5)
    args = p.parse_args()
    _driver.start_watchdog(args.timeout)
    conf = _security.librdkafka(args)
    conf["bootstrap.servers"] = args.bootstrap
    out = {}
    if args.action in ("create", "describe", "delete"):
        admin = AdminClient(conf)
        specs = json.loads(args.acls)
        if args.action == "create":
            bindings = [binding(s, AclBinding) for s in specs]
            futures = admin.create_acls(bindings, request_timeout=30)
            results = []
            for b in bindings:
                try:
                    futures[b].result()
                    results.append(None)
                except KafkaException as e:
                    results.append(error_name(e))
            out = {"results": results}
        elif args.action == "describe":
            try:
                found = admin.describe_acls(binding(specs, AclBindingFilter),
                                            request_timeout=30).result()
                out = {"acls": sorted((as_json(b) for b in found),
                                      key=lambda b: json.dumps(b, sort_keys=True))}
            except KafkaException as e:
                out = {"error": error_name(e)}
        else:
            filters = [binding(s, AclBindingFilter) for s in specs]
            futures = admin.delete_acls(filters, request_timeout=30)
            deleted = []
            for f in filters:
                try:
                    deleted.append([as_json(b) for b in futures[f].result()])
                except KafkaException as e:
                    deleted.append(error_name(e))
            out = {"deleted": deleted}
    elif args.action == "metadata":
        admin = AdminClient(conf)
        meta = admin.list_topics(timeout=30)
        out = {"topics": sorted(meta.topics)}
    elif args.action == "produce":
        errors = []
        delivered = [0]

        def report(err, _msg):
            if err is not None:
                errors.append(err.name())
            else:
                delivered[0] += 1

        conf["message.timeout.ms"] = 15000
        producer = Producer(conf)
        for i in range(args.count):
            producer.produce(args.topic, value=f"acl-{i}".encode(), on_delivery=report)
        producer.flush(30)
        out = {"delivered": delivered[0], "errors": sorted(set(errors))}
    else:
        conf.update({"group.id": args.group, "auto.offset.reset": "earliest",
                     "enable.auto.commit": False})
        consumer = Consumer(conf)
        consumer.subscribe([args.topic])
        consumed, error = 0, None
        end = time.time() + 30
        while time.time() < end and consumed < args.count:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                if msg.error().name() in ("GROUP_AUTHORIZATION_FAILED",
                                          "TOPIC_AUTHORIZATION_FAILED"):
                    error = msg.error().name()
                    break
                continue
            consumed += 1
        try:
            consumer.close()
        except KafkaException:
            pass
        out = {"consumed": consumed, "error": error}
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    sys.exit(main())
