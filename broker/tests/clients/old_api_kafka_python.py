#!/usr/bin/env python3
"""kafka-python pinned to an old protocol level with `api_version` (no ApiVersions
negotiation: the client then uses the request versions of that Kafka release, e.g. for
(0, 10) Produce v2, Fetch v2, ListOffsets v0, OffsetCommit v2, JoinGroup v0).

Modes:
  produce  --count keyed records ("key-<run>-<i>", "value-<run>-<i>-<codec>") with
           --compression none|gzip|snappy|lz4, acks=all.
  group    a consumer group member (subscribe): reads --max-records records from the
           committed offsets (else the earliest), commits the next offsets of what it
           read, reads the committed offsets back (OffsetFetch) and leaves.

Prints one JSON document on stdout:
  {"records": [{"partition", "offset", "key", "value"}...], "committed": {"<p>": <o>},
   "errors": [...]}
and exits 1 when "errors" is not empty.
"""

import json
import sys
import time

import _driver

import kafka
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata


def api_version(text):
    return tuple(int(part) for part in text.split("."))


def produce(args, report):
    producer = KafkaProducer(
        bootstrap_servers=args.bootstrap,
        client_id=args.client_id,
        api_version=args.api_version,
        acks="all",
        compression_type=None if args.compression == "none" else args.compression,
        linger_ms=20,
        request_timeout_ms=15000,
        delivery_timeout_ms=20000,
    )
    futures = []
    for i in range(args.count):
        key = f"key-{args.run}-{i}".encode()
        value = f"value-{args.run}-{i}-{args.compression}".encode()
        futures.append((key, value, producer.send(args.topic, key=key, value=value)))
    producer.flush(timeout=min(args.timeout, 25))
    for key, value, future in futures:
        try:
            metadata = future.get(timeout=5)
        except Exception as e:  # noqa: BLE001 - every failure is reported
            report["errors"].append(f"record {key.decode()}: {type(e).__name__}: {e}")
            continue
        report["records"].append({"partition": metadata.partition, "offset": metadata.offset,
                                  "key": key.decode(), "value": value.decode()})
    producer.close(timeout=10)


def group(args, report, deadline):
    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        client_id=args.client_id,
        group_id=args.group,
        api_version=args.api_version,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=10000,
        heartbeat_interval_ms=1000,
        request_timeout_ms=30000,
        fetch_max_wait_ms=200,
    )
    consumer.subscribe([args.topic])
    next_offsets = {}
    while len(report["records"]) < args.max_records:
        if time.monotonic() > deadline:
            report["errors"].append(
                f"timed out with {len(report['records'])} of {args.max_records} records")
            break
        batches = _driver.kafka_python_group_poll(consumer, timeout_ms=200, max_records=100)
        for tp, messages in sorted(batches.items()):
            for m in messages:
                if len(report["records"]) >= args.max_records:
                    break
                report["records"].append({"partition": m.partition, "offset": m.offset,
                                          "key": m.key.decode(), "value": m.value.decode()})
                next_offsets[m.partition] = m.offset + 1
    if next_offsets:
        consumer.commit({TopicPartition(args.topic, p): OffsetAndMetadata(o, "", -1)
                         for p, o in next_offsets.items()})
    committed = {}
    for p in sorted(consumer.partitions_for_topic(args.topic) or []):
        offset = consumer.committed(TopicPartition(args.topic, p))
        committed[str(p)] = -1 if offset is None else offset
    report["committed"] = committed
    consumer.close()


def main():
    p = _driver.parser(__doc__)
    p.add_argument("--mode", required=True, choices=["produce", "group"])
    p.add_argument("--api-version", type=api_version, required=True, help="e.g. 0.10")
    p.add_argument("--topic", required=True)
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--run", default="0")
    p.add_argument("--compression", default="none", choices=["none", "gzip", "snappy", "lz4"])
    p.add_argument("--group", default=None)
    p.add_argument("--max-records", type=int, default=None)
    args = p.parse_args()
    deadline = _driver.start_watchdog(args.timeout)
    report = {"client": f"kafka-python {kafka.__version__}",
              "api_version": list(args.api_version), "records": [], "errors": []}
    try:
        if args.mode == "produce":
            produce(args, report)
        else:
            group(args, report, deadline)
    except Exception as e:  # noqa: BLE001 - every failure is reported
        report["errors"].append(f"{type(e).__name__}: {e}")
    print(json.dumps(report), flush=True)
    sys.exit(1 if report["errors"] else 0)


if __name__ == "__main__":
    main()
