#!/usr/bin/env python3
"""SASL/OAUTHBEARER with confluent-kafka over SASL_PLAINTEXT. By default librdkafka makes
its own unsecured JWT (enable.sasl.oauthbearer.unsecure.jwt, sasl.oauthbearer.config from
--oauth-config); with --token the token comes from an oauth_cb returning that string.

Modes (one JSON line on stdout):
- default: produces --count records `<tag>-<i>` to --topic and consumes them back
  (group --group, earliest): {"produced": n, "consumed": [...]}
- --produce-for S: produces one record every 100 ms for S seconds, waiting for each
  delivery: {"produced": n, "failures": [...], "errors": [...]}
- --metadata-only: lists the topics: {"topics": [...]}
Any client error ends the run with exit status 1 and {"error": "..."}.
"""

import json
import sys
import time

import _driver

from confluent_kafka import Consumer, KafkaException, Producer


def main():
    p = _driver.parser(__doc__)
    p.add_argument("--topic", default=None)
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--tag", default="oauth")
    p.add_argument("--group", default="oauth-group")
    p.add_argument("--oauth-config", default="principal=alice")
    p.add_argument("--token", default=None)
    p.add_argument("--produce-for", type=float, default=None)
    p.add_argument("--metadata-only", action="store_true")
    args = p.parse_args()
    deadline = _driver.start_watchdog(args.timeout)
    errors = []

    def on_error(err):
        errors.append(str(err))
        print(f"librdkafka error: {err}", file=sys.stderr, flush=True)

    def stop(message):
        print(json.dumps({"error": message}), flush=True)
        sys.exit(1)

    base = {"bootstrap.servers": args.bootstrap, "client.id": args.client_id,
            "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "OAUTHBEARER",
            "error_cb": on_error, "socket.timeout.ms": 20000, "debug": "security"}
    if args.token is not None:
        base["oauth_cb"] = lambda _config: (args.token, time.time() + 3600)
    else:
        base["enable.sasl.oauthbearer.unsecure.jwt"] = True
        base["sasl.oauthbearer.config"] = args.oauth_config

    if args.metadata_only:
        producer = Producer(base)
        producer.poll(1.0)  # serves the oauth_cb
        try:
            md = producer.list_topics(timeout=min(15.0, args.timeout))
        except KafkaException as e:
            stop(f"{e}; client errors: {errors}")
        if errors:
            stop(f"client errors: {errors}")
        print(json.dumps({"topics": sorted(md.topics)}), flush=True)
        return

    producer = Producer(dict(base, **{"acks": "all", "linger.ms": 0,
                                      "message.timeout.ms": int(args.timeout * 1000)}))
    failures = []
    if args.produce_for is not None:
        end = time.monotonic() + args.produce_for
        produced = 0
        while time.monotonic() < end:
            producer.produce(args.topic, value=f"{args.tag}-{produced}".encode(),
                             on_delivery=lambda err, msg: err and failures.append(str(err)))
            left = producer.flush(max(1.0, deadline - time.monotonic()))
            if left:
                stop(f"record {produced} not delivered; client errors: {errors[-3:]}")
            produced += 1
            time.sleep(0.1)
        print(json.dumps({"produced": produced, "failures": failures, "errors": errors}),
              flush=True)
        return

    for i in range(args.count):
        producer.produce(args.topic, value=f"{args.tag}-{i}".encode(),
                         on_delivery=lambda err, msg: err and failures.append(str(err)))
    left = producer.flush(max(1.0, deadline - time.monotonic()))
    if failures or left:
        stop(f"produce failed: {failures[:3]} ({left} queued); client errors: {errors[-3:]}")
    consumer = Consumer(dict(base, **{"group.id": args.group, "auto.offset.reset": "earliest",
                                      "enable.auto.commit": False}))
    consumer.subscribe([args.topic])
    consumed = []
    while len(consumed) < args.count:
        if time.monotonic() > deadline:
            stop(f"timed out with {len(consumed)} records; client errors: {errors[-3:]}")
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            stop(f"consume failed: {msg.error()}")
        value = msg.value().decode()
        if value.startswith(args.tag + "-"):
            consumed.append(value)
    consumer.close()
    print(json.dumps({"produced": args.count, "consumed": consumed}), flush=True)


if __name__ == "__main__":
    main()
