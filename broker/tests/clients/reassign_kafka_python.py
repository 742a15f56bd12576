#!/usr/bin/env python3
"""Drives partition reassignment with kafka-python's KafkaAdminClient and prints one JSON
document. --op alter moves --topic's --partition to --replicas (comma-separated broker
ids, or "cancel" to cancel its reassignment) and prints the partition's error name (null
when accepted); --op list prints the reassignments in progress:

    {"error": null}
    {"reassignments": {"<topic>-<partition>": {"replicas": [...], "adding": [...],
                                               "removing": [...]}}}
"""

import json

import _driver

from kafka import KafkaAdminClient, TopicPartition


def main():
    p = _driver.parser(__doc__)
    p.add_argument("--op", required=True, choices=["alter", "list"])
    p.add_argument("--topic")
    p.add_argument("--partition", type=int, default=0)
    p.add_argument("--replicas", default=None)
    args = p.parse_args()
    _driver.start_watchdog(args.timeout)
    timeout_ms = int(min(args.timeout, 15) * 1000)
    admin = KafkaAdminClient(bootstrap_servers=args.bootstrap, client_id=args.client_id,
                             request_timeout_ms=timeout_ms)
    try:
        if args.op == "alter":
            tp = TopicPartition(args.topic, args.partition)
            replicas = None if args.replicas == "cancel" else _driver.partition_list(args.replicas)
            results = admin.alter_partition_reassignments({tp: replicas}, timeout_ms=timeout_ms)
            if tp not in results:
                _driver.fail(f"no result for {tp}: {results}")
            error = results[tp]
            print(json.dumps({"error": None if error is None else error.__name__}))
        else:
            listed = admin.list_partition_reassignments(timeout_ms=timeout_ms)
            print(json.dumps({"reassignments": {
                f"{tp.topic}-{tp.partition}": {"replicas": r["replicas"],
                                               "adding": r["adding_replicas"],
                                               "removing": r["removing_replicas"]}
                for tp, r in listed.items()}}))
    finally:
        admin.close()


if __name__ == "__main__":
    main()
