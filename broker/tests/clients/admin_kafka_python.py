#!/usr/bin/env python3
"""Topic administration and offset look-ups with kafka-python's KafkaAdminClient; prints
one JSON document.

--op create   create_topics (CreateTopics) of --topic with --partitions and --config
              key=value (repeatable), replication factor 1:
              {"topics": {"<name>": {"error_code": 0, "error": null | "..."}}}
--op delete   delete_topics (DeleteTopics) of --topic:
              {"topics": {"<name>": {"error_code": 0, "error": null | "..."}}}
--op offsets  list_partition_offsets (ListOffsets) of partitions 0..--partitions-1:
              earliest, latest, max timestamp, and each --timestamp (repeatable):
              {"earliest": {"<p>": {"offset": o, "timestamp": t}}, "latest": {...},
               "max_timestamp": {...}, "timestamps": {"<ts>": {"<p>": {...}}}}
"""

import json
import sys

import _driver

import kafka
from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec


def entry(result):
    return {"offset": result.offset, "timestamp": result.timestamp}


def main():
    p = _driver.parser(__doc__)
    p.add_argument("--op", required=True, choices=["create", "delete", "offsets"])
    p.add_argument("--topic", required=True)
    p.add_argument("--partitions", type=int, default=1)
    p.add_argument("--config", action="append", default=[], help="key=value")
    p.add_argument("--timestamp", action="append", type=int, default=[])
    args = p.parse_args()
    _driver.start_watchdog(args.timeout)
    timeout_ms = int(min(args.timeout, 30) * 1000)
    try:
        admin = KafkaAdminClient(bootstrap_servers=args.bootstrap, client_id=args.client_id,
                                 request_timeout_ms=timeout_ms,
                                 bootstrap_timeout_ms=timeout_ms)
    except Exception as e:  # noqa: BLE001 - any failure ends the run
        _driver.fail(f"cannot create the admin client: {type(e).__name__}: {e}")
    out = {}
    try:
        if args.op == "create":
            configs = dict(c.split("=", 1) for c in args.config)
            response = admin.create_topics(
                {args.topic: {"num_partitions": args.partitions, "replication_factor": 1,
                              "configs": configs}},
                timeout_ms=timeout_ms, raise_errors=False)
            out["topics"] = {
                t["name"]: {"error_code": t["error_code"], "error": t.get("error_message")}
                for t in response["topics"]
            }
            if all(t["error_code"] == 0 for t in response["topics"]):
                admin.wait_for_topics([args.topic], timeout_ms=timeout_ms)
        elif args.op == "delete":
            response = admin.delete_topics([args.topic], timeout_ms=timeout_ms,
                                           raise_errors=False)
            results = response.get("responses", response.get("topics", []))
            out["topics"] = {
                t["name"]: {"error_code": t["error_code"], "error": t.get("error_message")}
                for t in results
            }
        else:
            tps = [TopicPartition(args.topic, p) for p in range(args.partitions)]

            def look_up(spec):
                found = admin.list_partition_offsets({tp: spec for tp in tps},
                                                     timeout_ms=timeout_ms)
                return {str(tp.partition): entry(found[tp]) for tp in tps}

            out["earliest"] = look_up(OffsetSpec.EARLIEST)
            out["latest"] = look_up(OffsetSpec.LATEST)
            out["max_timestamp"] = look_up(OffsetSpec.MAX_TIMESTAMP)
            out["timestamps"] = {str(ts): look_up(ts) for ts in args.timestamp}
    except Exception as e:  # noqa: BLE001
        _driver.fail(f"{args.op} failed: {type(e).__name__}: {e}")
    admin.close()
    print(json.dumps(out))
    print(f"kafka-python {kafka.__version__}: {args.op} done", file=sys.stderr)


if __name__ == "__main__":
    main()
