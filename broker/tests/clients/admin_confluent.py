#!/usr/bin/env python3
"""Topic administration and offset look-ups with confluent-kafka's AdminClient
(librdkafka); prints one JSON document.

--op create   create_topics (CreateTopics) of --topic with --partitions and --config
              key=value (repeatable), replication factor 1:
              {"topics": {"<name>": {"error": null | "...", "code": null | "<name>"}}}
--op delete   delete_topics (DeleteTopics) of --topic, same output
--op offsets  list_offsets (ListOffsets) of partitions 0..--partitions-1: earliest,
              latest, max timestamp, and each --timestamp (repeatable):
              {"earliest": {"<p>": {"offset": o, "timestamp": t}}, "latest": {...},
               "max_timestamp": {...}, "timestamps": {"<ts>": {"<p>": {...}}}}
"""

import json
import sys

import _driver

import confluent_kafka
from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec


def outcome(future, timeout):
    try:
        future.result(timeout=timeout)
        return {"error": None, "code": None}
    except KafkaException as e:
        err = e.args[0]
        return {"error": str(err), "code": err.name()}


def main():
    p = _driver.parser(__doc__)
    p.add_argument("--op", required=True, choices=["create", "delete", "offsets"])
    p.add_argument("--topic", required=True)
    p.add_argument("--partitions", type=int, default=1)
    p.add_argument("--config", action="append", default=[], help="key=value")
    p.add_argument("--timestamp", action="append", type=int, default=[])
    args = p.parse_args()
    _driver.start_watchdog(args.timeout)
    timeout = min(args.timeout, 30)
    admin = AdminClient({"bootstrap.servers": args.bootstrap, "client.id": args.client_id,
                         "socket.timeout.ms": int(timeout * 1000)})
    out = {}
    try:
        if args.op == "create":
            configs = dict(c.split("=", 1) for c in args.config)
            futures = admin.create_topics(
                [NewTopic(args.topic, num_partitions=args.partitions, replication_factor=1,
                          config=configs)],
                operation_timeout=timeout, request_timeout=timeout)
            out["topics"] = {name: outcome(f, timeout) for name, f in futures.items()}
        elif args.op == "delete":
            futures = admin.delete_topics([args.topic], operation_timeout=timeout,
                                          request_timeout=timeout)
            out["topics"] = {name: outcome(f, timeout) for name, f in futures.items()}
        else:
            tps = [TopicPartition(args.topic, p) for p in range(args.partitions)]

            def look_up(spec):
                futures = admin.list_offsets({tp: spec for tp in tps}, request_timeout=timeout)
                result = {}
                for tp, future in futures.items():
                    info = future.result(timeout=timeout)
                    result[str(tp.partition)] = {"offset": info.offset,
                                                 "timestamp": info.timestamp}
                return result

            out["earliest"] = look_up(OffsetSpec.earliest())
            out["latest"] = look_up(OffsetSpec.latest())
            out["max_timestamp"] = look_up(OffsetSpec.max_timestamp())
            out["timestamps"] = {str(ts): look_up(OffsetSpec.for_timestamp(ts))
                                 for ts in args.timestamp}
    except KafkaException as e:
        _driver.fail(f"{args.op} failed: {e}")
    print(json.dumps(out))
    print(f"confluent-kafka {confluent_kafka.__version__} (librdkafka "
          f"{confluent_kafka.libversion()[0]}): {args.op} done", file=sys.stderr)


if __name__ == "__main__":
    main()
