#!/usr/bin/env python3
"""Transactions with confluent-kafka (librdkafka). One of these modes:

  produce  --topic T --pattern cac...  one transaction per letter of the pattern, each of
           --per-txn records (keys "t<i>-<j>"), committed (c) or aborted (a), or left
           open (h: written, flushed, then the driver sleeps until --timeout); prints one
           JSON line per transaction: {"txn": i, "outcome": "commit"|"abort"|"open"}
  consume  --topic T --isolation read_committed|read_uncommitted  reads every partition
           from the beginning to the end offsets of that isolation level and prints the
           records as _driver.record_line JSON lines
  eos      --input I --output O --group G --pattern ...  consume-transform-produce: each
           transaction reads up to --per-txn records of I (read_committed, group G),
           writes them upper-cased to O with send_offsets_to_transaction, and commits or
           aborts per letter (an abort rewinds the consumer to the group's committed
           offsets, so those records are processed again by a later transaction); stops
           when the pattern is used up (or --stop-after records are committed) and prints
           {"done": n} with the records committed
  fence    --topic T  two producers with one transactional.id: the first begins a
           transaction and produces, the second initializes (fencing the first), the
           first's commit must fail as fenced; prints {"fenced": true, "error": "..."}
"""

import json
import sys
import time

import _driver

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition


def producer(args, transactional_id):
    conf = {
        "bootstrap.servers": args.bootstrap,
        "client.id": args.client_id,
        "transactional.id": transactional_id,
        "transaction.timeout.ms": args.transaction_timeout_ms,
        "linger.ms": 5,
        # librdkafka: socket and message timeouts may not exceed the transaction's.
        "socket.timeout.ms": min(30000, args.transaction_timeout_ms),
        "message.timeout.ms": min(int(args.timeout * 1000), args.transaction_timeout_ms),
    }
    p = Producer(conf)
    p.init_transactions(args.timeout)
    return p


def end(p, commit, timeout):
    if commit:
        p.commit_transaction(timeout)
    else:
        p.abort_transaction(timeout)


def mode_produce(args):
    p = producer(args, args.transactional_id)
    for i, letter in enumerate(args.pattern):
        if letter == "h":
            # Hang inside an open transaction whose records are written (for crash tests).
            p.begin_transaction()
            for j in range(args.per_txn):
                key = f"t{i}-{j}"
                p.produce(args.topic, key=key.encode(), value=f"{args.tag}:{key}".encode())
            p.flush(args.timeout)
            print(json.dumps({"txn": i, "outcome": "open"}), flush=True)
            time.sleep(args.timeout)
            return
        p.begin_transaction()
        for j in range(args.per_txn):
            key = f"t{i}-{j}"
            p.produce(args.topic, key=key.encode(), value=f"{args.tag}:{key}".encode())
        p.flush(args.timeout)
        end(p, letter == "c", args.timeout)
        print(json.dumps({"txn": i, "outcome": "commit" if letter == "c" else "abort"}),
              flush=True)


def partitions_of(consumer, topic, timeout):
    md = consumer.list_topics(topic, timeout=timeout)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        _driver.fail(f"topic {topic}: {t.error if t else 'missing'}")
    return sorted(t.partitions)


def mode_consume(args):
    c = Consumer({
        "bootstrap.servers": args.bootstrap,
        "client.id": args.client_id,
        "group.id": f"reader-{time.time_ns()}",
        "enable.auto.commit": False,
        "isolation.level": args.isolation,
        "enable.partition.eof": True,
    })
    parts = partitions_of(c, args.topic, args.timeout)
    ends = {}
    for p in parts:
        _low, high = c.get_watermark_offsets(TopicPartition(args.topic, p), args.timeout)
        ends[p] = high
    todo = {p for p in parts if ends[p] > 0}
    c.assign([TopicPartition(args.topic, p, 0) for p in parts])
    deadline = time.monotonic() + args.timeout
    while todo and time.monotonic() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:  # partition EOF
                todo.discard(m.partition())
                continue
            _driver.fail(f"consume: {m.error()}")
        print(_driver.record_line(m.partition(), m.offset(), m.timestamp()[1], m.key(),
                                  m.value(), m.headers()), flush=True)
        if m.offset() + 1 >= ends[m.partition()]:
            todo.discard(m.partition())
    c.close()
    if todo:
        _driver.fail(f"not read to the end: partitions {sorted(todo)}")


def mode_eos(args):
    c = Consumer({
        "bootstrap.servers": args.bootstrap,
        "client.id": args.client_id,
        "group.id": args.group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
    })
    c.subscribe([args.input])
    p = producer(args, args.transactional_id)
    committed = 0
    deadline = time.monotonic() + args.timeout
    for letter in args.pattern:
        if args.stop_after is not None and committed >= args.stop_after:
            break
        batch = []
        while len(batch) < args.per_txn and time.monotonic() < deadline:
            m = c.poll(1.0)
            if m is None:
                if batch:
                    break
                continue
            if m.error():
                _driver.fail(f"consume: {m.error()}")
            batch.append(m)
        if not batch:
            break
        p.begin_transaction()
        for m in batch:
            p.produce(args.output, key=m.key(),
                      value=None if m.value() is None else m.value().upper())
        p.send_offsets_to_transaction(c.position(c.assignment()),
                                      c.consumer_group_metadata(), args.timeout)
        if letter == "c":
            p.commit_transaction(args.timeout)
            committed += len(batch)
        else:
            p.abort_transaction(args.timeout)
            # Back to what the group committed: these records are read again.
            positions = c.committed(c.assignment(), args.timeout)
            for tp in positions:
                if tp.offset < 0:
                    tp.offset = 0
                c.seek(tp)
    c.close()
    print(json.dumps({"done": committed}), flush=True)


def mode_fence(args):
    first = producer(args, args.transactional_id)
    first.begin_transaction()
    first.produce(args.topic, key=b"fenced", value=b"never committed")
    first.flush(args.timeout)
    second = producer(args, args.transactional_id)
    try:
        first.commit_transaction(args.timeout)
    except KafkaException as e:
        err = e.args[0]
        print(json.dumps({"fenced": bool(err.fatal()) or "fenced" in str(err).lower(),
                          "error": str(err)}), flush=True)
    else:
        print(json.dumps({"fenced": False, "error": None}), flush=True)
    second.begin_transaction()
    second.produce(args.topic, key=b"second", value=b"committed by the second producer")
    second.commit_transaction(args.timeout)


def main():
    p = _driver.parser(__doc__)
    p.add_argument("mode", choices=["produce", "consume", "eos", "fence"])
    p.add_argument("--topic")
    p.add_argument("--input")
    p.add_argument("--output")
    p.add_argument("--group")
    p.add_argument("--transactional-id", default="gregor-txn")
    p.add_argument("--pattern", default="c")
    p.add_argument("--per-txn", type=int, default=10)
    p.add_argument("--stop-after", type=int, default=None,
                   help="eos: stop once this many records are committed")
    p.add_argument("--tag", default="v")
    p.add_argument("--transaction-timeout-ms", type=int, default=60000)
    p.add_argument("--isolation", default="read_committed",
                   choices=["read_committed", "read_uncommitted"])
    args = p.parse_args()
    _driver.start_watchdog(args.timeout)
    {"produce": mode_produce, "consume": mode_consume, "eos": mode_eos,
     "fence": mode_fence}[args.mode](args)


if __name__ == "__main__":
    try:
        main()
    except KafkaException as e:
        _driver.fail(f"kafka: {e}")
