#!/usr/bin/env python3
"""confluent-kafka (librdkafka) workloads for the multi-node tests (broker/tests/cluster.rs).
Every record's value is "<tag>:<i>", so that what was read can be matched with what was
acknowledged.

--op create    AdminClient.create_topics of --topic with --partitions, --replication-factor
               and --config key=value (repeatable); prints {"error": null | "...",
               "code": null | "<name>"}
--op produce   --count records at about --rate records/s with acks=all and
               enable.idempotence (to --partition only, if given), retrying through leader
               changes; prints one line per
               acknowledged record once all are settled: "<i> <partition> <offset>";
               exit 0 even if some were not acknowledged (the test decides), a summary on
               stderr
--op group     a member of --group (classic protocol, manual commits every 200 records and
               at every revocation, synchronous); prints "R <partition> <offset> <i>" per
               record and "C <partition> <offset>" per successful commit; stops once every
               index listed in --expect-file (one per line; the file appears when the
               producer is done) was read, or fails at --timeout naming what is missing
"""

import concurrent.futures
import json
import os
import sys
import time

import _driver

import confluent_kafka
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def create(args):
    admin = AdminClient({"bootstrap.servers": args.bootstrap, "client.id": args.client_id})
    configs = dict(c.split("=", 1) for c in args.config)
    topic = NewTopic(args.topic, num_partitions=args.partitions,
                     replication_factor=args.replication_factor, config=configs)
    future = admin.create_topics([topic], request_timeout=args.timeout)[args.topic]
    try:
        future.result(timeout=args.timeout + 5)
        out = {"error": None, "code": None}
    except KafkaException as e:
        err = e.args[0]
        out = {"error": str(err), "code": err.name()}
    except concurrent.futures.TimeoutError:
        out = {"error": f"no answer within {args.timeout + 5}s", "code": "_TIMED_OUT"}
    print(json.dumps(out))


def produce(args):
    deadline = _driver.start_watchdog(args.timeout)
    client_errors = []
    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "client.id": args.client_id,
        "acks": "all",
        "enable.idempotence": not args.no_idempotence,
        "linger.ms": 5,
        "message.timeout.ms": int(args.timeout * 1000),
        "socket.timeout.ms": 10000,
        "reconnect.backoff.max.ms": 1000,
        "topic.metadata.refresh.interval.ms": 2000,
        "error_cb": lambda err: client_errors.append(str(err)),
    })
    acked = {}
    failed = []

    def delivered(i):
        def callback(err, msg):
            if err is None:
                acked[i] = (msg.partition(), msg.offset())
            else:
                failed.append(f"{i}: {err}")
        return callback

    started = time.monotonic()
    for i in range(args.count):
        # Paced, so that the run spans the test's node failures.
        due = started + i / args.rate
        while time.monotonic() < due:
            producer.poll(min(0.05, max(0.0, due - time.monotonic())))
        while True:
            try:
                extra = {} if args.partition is None else {"partition": args.partition}
                producer.produce(args.topic, value=f"{args.tag}:{i}".encode(),
                                 on_delivery=delivered(i), **extra)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    remaining = producer.flush(max(1.0, deadline - time.monotonic()))
    for i in sorted(acked):
        partition, offset = acked[i]
        sys.stdout.write(f"{i} {partition} {offset}\n")
    sys.stdout.flush()
    print(f"confluent-kafka {confluent_kafka.__version__}: {len(acked)}/{args.count} "
          f"acknowledged in {time.monotonic() - started:.1f}s, {remaining} still queued, "
          f"{len(failed)} failed (first: {failed[:3]}), client errors {client_errors[-3:]}",
          file=sys.stderr)


def group(args):
    deadline = _driver.start_watchdog(args.timeout)
    errors = []
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "client.id": args.client_id,
        "group.id": args.group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 1000,
        "fetch.wait.max.ms": 200,
        "reconnect.backoff.max.ms": 1000,
        "topic.metadata.refresh.interval.ms": 2000,
        "error_cb": lambda err: errors.append(str(err)),
    })
    positions = {}
    since_commit = [0]

    def commit():
        if not positions:
            return
        offsets = [TopicPartition(args.topic, p, o) for p, o in positions.items()]
        try:
            for tp in consumer.commit(offsets=offsets, asynchronous=False):
                if tp.error is None:
                    print(f"C {tp.partition} {tp.offset}", flush=True)
        except KafkaException as e:
            # A commit that fails (coordinator moving) is retried with the next one.
            errors.append(f"commit: {e}")
        since_commit[0] = 0

    def on_revoke(_consumer, partitions):
        commit()
        for tp in partitions:
            positions.pop(tp.partition, None)

    consumer.subscribe([args.topic], on_revoke=on_revoke)
    seen = set()
    expected = None
    while True:
        if expected is None and os.path.exists(args.expect_file):
            with open(args.expect_file) as f:
                text = f.read()
            if text.endswith("\n") or text == "":
                expected = {int(line) for line in text.split()}
        if expected is not None and expected <= seen:
            break
        if time.monotonic() > deadline:
            missing = sorted(expected - seen) if expected is not None else "(no expect file)"
            _driver.fail(f"timed out; missing {len(missing)}: {list(missing)[:20]}; "
                         f"errors {errors[-5:]}")
        msg = consumer.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                continue
            errors.append(str(msg.error()))
            continue
        tag, _, index = msg.value().decode().partition(":")
        if tag != args.tag:
            continue
        i = int(index)
        seen.add(i)
        print(f"R {msg.partition()} {msg.offset()} {i}", flush=True)
        positions[msg.partition()] = msg.offset() + 1
        since_commit[0] += 1
        if since_commit[0] >= 200:
            commit()
    commit()
    consumer.close()
    print(f"group member read {len(seen)} distinct records; errors {errors[-5:]}",
          file=sys.stderr)


def main():
    p = _driver.parser(__doc__)
    p.add_argument("--op", required=True, choices=["create", "produce", "group"])
    p.add_argument("--topic", required=True)
    p.add_argument("--partitions", type=int, default=1)
    p.add_argument("--partition", type=int, default=None,
                   help="produce to this partition only (default: the partitioner's choice)")
    p.add_argument("--replication-factor", type=int, default=3)
    p.add_argument("--config", action="append", default=[], help="key=value")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--tag", default="cluster")
    p.add_argument("--no-idempotence", action="store_true",
                   help="a plain acks=all producer (needs no producer id from the controller)")
    p.add_argument("--group", default="cluster-group")
    p.add_argument("--expect-file", default=None)
    args = p.parse_args()
    {"create": create, "produce": produce, "group": group}[args.op](args)


if __name__ == "__main__":
    main()
