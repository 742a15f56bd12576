#!/usr/bin/env python3
"""Drives a confluent-kafka (librdkafka) producer with client metrics pushing on (KIP-714,
`enable.metrics.push`, librdkafka's default): it produces --count records to --topic,
flushes, stays up for --linger seconds so it can push its metrics, then closes (a
terminating push). Prints one JSON document:

    {"produced": 10, "errors": []}
"""

import json
import time

import _driver

from confluent_kafka import Producer


def main():
    p = _driver.parser(__doc__)
    p.add_argument("--topic", required=True)
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--linger", type=float, default=5.0)
    args = p.parse_args()
    _driver.start_watchdog(args.timeout)
    errors = []
    delivered = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            delivered.append(msg.offset())

    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "client.id": args.client_id,
        "enable.metrics.push": True,
        "error_cb": lambda err: errors.append(str(err)),
    })
    for i in range(args.count):
        producer.produce(args.topic, value=f"v{i}".encode(), on_delivery=on_delivery)
    producer.flush(30)
    deadline = time.monotonic() + args.linger
    while time.monotonic() < deadline:
        producer.poll(0.2)
    producer.flush(10)
    del producer
    print(json.dumps({"produced": len(delivered), "errors": errors}), flush=True)


if __name__ == "__main__":
    main()
