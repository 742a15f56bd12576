#!/usr/bin/env python3
"""Deletes a group's committed offsets with kafka-python's KafkaAdminClient
(`delete_group_offsets`, OffsetDelete) and prints one JSON document:

    {"results": {"<topic>:<partition>": "NoError" | "<error class name>", ...},
     "remaining": {"<topic>:<partition>": <offset>, ...}}

or, when the response carries an error for the whole group,
{"error": "<error class name>"}. `remaining` is what `list_group_offsets` (OffsetFetch)
reads back afterwards. --delete takes `topic:0,1` items separated by `;`.
"""

import json
import sys

import _driver

from kafka import KafkaAdminClient, TopicPartition
from kafka.errors import KafkaError


def main():
    p = _driver.parser(__doc__)
    p.add_argument("--group", required=True)
    p.add_argument("--delete", required=True, help="topic:0,1;other:0")
    args = p.parse_args()
    _driver.start_watchdog(args.timeout)
    timeout_ms = int(min(args.timeout, 15) * 1000)
    partitions = []
    for item in args.delete.split(";"):
        topic, _, indexes = item.partition(":")
        partitions.extend(TopicPartition(topic, int(i)) for i in indexes.split(","))
    out = {}
    admin = KafkaAdminClient(bootstrap_servers=args.bootstrap, client_id=args.client_id,
                             request_timeout_ms=timeout_ms)
    try:
        results = admin.delete_group_offsets(args.group, partitions)
        out["results"] = {f"{tp.topic}:{tp.partition}": error.__name__
                          for tp, error in sorted(results.items())}
        remaining = admin.list_group_offsets(args.group)[args.group]
        out["remaining"] = {f"{tp.topic}:{tp.partition}": meta.offset
                            for tp, meta in sorted(remaining.items())}
    except KafkaError as e:
        out["error"] = type(e).__name__
    finally:
        admin.close()
    print(json.dumps(out, sort_keys=True), flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - report anything as a failure
        _driver.fail(f"{type(e).__name__}: {e}")
        sys.exit(1)
