#!/usr/bin/env python3
"""Asks kafka-python's KafkaAdminClient.describe_log_dirs (DescribeLogDirs) about --topic and
prints one JSON document: for every log directory the broker reports, its error code and the
size of each partition of the topic it holds:

    {"dirs": {"<path>": {"error_code": 0, "partitions": {"0": 1234, ...}}}}
"""

import json

import _driver

from kafka import KafkaAdminClient


def main():
    p = _driver.parser(__doc__)
    p.add_argument("--topic", required=True)
    args = p.parse_args()
    _driver.start_watchdog(args.timeout)
    timeout_ms = int(min(args.timeout, 15) * 1000)
    admin = KafkaAdminClient(bootstrap_servers=args.bootstrap, client_id=args.client_id,
                             request_timeout_ms=timeout_ms)
    try:
        results = admin.describe_log_dirs(topic_partitions=[args.topic])
    finally:
        admin.close()
    dirs = {}
    for broker_result in results:
        # One DescribeLogDirs response per broker: {"broker": id, "log_dirs": [result, ...]}
        # with each result as a dict of the response's fields.
        for result in broker_result["log_dirs"]:
            partitions = {}
            for topic in result["topics"]:
                if topic["name"] != args.topic:
                    continue
                for partition in topic["partitions"]:
                    partitions[str(partition["partition_index"])] = partition["partition_size"]
            dirs[result["log_dir"]] = {"error_code": result["error_code"],
                                       "partitions": partitions}
    print(json.dumps({"dirs": dirs}))


if __name__ == "__main__":
    main()
