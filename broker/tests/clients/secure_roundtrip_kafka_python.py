#!/usr/bin/env python3
"""secure_roundtrip_confluent.py with kafka-python: over a secured listener (see
_security.py) produces --count records `<tag>-<i>`, consumes them as a member of --group,
commits and closes; prints the same JSON line, or {"error": "..."} and exit status 1.
With --metadata-only it only asks for the partitions of --topic (default secure).
"""

import json
import logging
import sys
import time

import _driver
import _security

from kafka import KafkaConsumer, KafkaProducer, TopicPartition


def main():
    p = _security.add_options(_driver.parser(__doc__))
    p.add_argument("--topic", default=None)
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--tag", default="secure")
    p.add_argument("--group", default="secure-group")
    p.add_argument("--metadata-only", action="store_true")
    args = p.parse_args()
    deadline = _driver.start_watchdog(args.timeout)
    # kafka-python reports an authentication failure only in its log.
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)

    def stop(message):
        print(json.dumps({"error": message}), flush=True)
        sys.exit(1)

    base = dict(_security.kafka_python(args))
    base.update(bootstrap_servers=args.bootstrap, client_id=args.client_id,
                request_timeout_ms=20000, reconnect_backoff_max_ms=1000)
    try:
        if args.metadata_only:
            # A producer's metadata wait is bounded (max_block_ms); the admin client's
            # bootstrap is not.
            producer = KafkaProducer(max_block_ms=int(min(10.0, args.timeout) * 1000), **base)
            topic = args.topic or "secure"
            partitions = producer.partitions_for(topic)
            producer.close()
            print(json.dumps({"topics": [topic] if partitions else [],
                              "partitions": sorted(partitions or [])}), flush=True)
            return
        producer = KafkaProducer(acks="all", linger_ms=5, **base)
        futures = [producer.send(args.topic, value=f"{args.tag}-{i}".encode())
                   for i in range(args.count)]
        for f in futures:
            f.get(timeout=max(1.0, deadline - time.monotonic()))
        producer.close()
        consumer = KafkaConsumer(group_id=args.group, auto_offset_reset="earliest",
                                 enable_auto_commit=False, fetch_max_wait_ms=200, **base)
        consumer.subscribe([args.topic])
        consumed = []
        while len(consumed) < args.count:
            if time.monotonic() > deadline:
                stop(f"timed out with {len(consumed)} records")
            for _, messages in consumer.poll(timeout_ms=500).items():
                for m in messages:
                    value = m.value.decode()
                    if value.startswith(args.tag + "-"):
                        consumed.append(value)
        consumer.commit()
        committed = consumer.committed(TopicPartition(args.topic, 0))
        consumer.close()
    except Exception as e:  # noqa: BLE001 - any failure ends the run
        stop(f"{type(e).__name__}: {e}")
    print(json.dumps({"produced": args.count, "consumed": consumed,
                      "committed": {"0": committed}}), flush=True)


if __name__ == "__main__":
    main()
