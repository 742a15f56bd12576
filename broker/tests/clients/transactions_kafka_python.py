#!/usr/bin/env python3
"""Transactions with kafka-python's KafkaProducer (transactional_id) and KafkaConsumer
(isolation_level). Modes:

  produce  --topic T --pattern cac...  one transaction per letter, --per-txn records (keys
           "t<i>-<j>"), committed (c) or aborted (a); one JSON line per transaction
  consume  --topic T --isolation read_committed|read_uncommitted  every partition from
           the beginning until a poll returns nothing after the end offsets; the records
           as _driver.record_line JSON lines
"""

import json
import time

import _driver

from kafka import KafkaConsumer, KafkaProducer, TopicPartition


def mode_produce(args):
    p = KafkaProducer(bootstrap_servers=args.bootstrap, client_id=args.client_id,
                      transactional_id=args.transactional_id,
                      transaction_timeout_ms=60000)
    p.init_transactions()
    for i, letter in enumerate(args.pattern):
        p.begin_transaction()
        for j in range(args.per_txn):
            key = f"t{i}-{j}"
            p.send(args.topic, key=key.encode(), value=f"kp:{key}".encode())
        p.flush()
        if letter == "c":
            p.commit_transaction()
        else:
            p.abort_transaction()
        print(json.dumps({"txn": i, "outcome": "commit" if letter == "c" else "abort"}),
              flush=True)
    p.close()


def mode_consume(args):
    c = KafkaConsumer(bootstrap_servers=args.bootstrap, client_id=args.client_id,
                      isolation_level=args.isolation, enable_auto_commit=False,
                      consumer_timeout_ms=3000)
    parts = [TopicPartition(args.topic, p) for p in sorted(c.partitions_for_topic(args.topic))]
    c.assign(parts)
    c.seek_to_beginning(*parts)
    ends = c.end_offsets(parts)
    deadline = time.monotonic() + args.timeout
    done = set()
    while len(done) < len(parts) and time.monotonic() < deadline:
        batch = c.poll(timeout_ms=1000)
        for tp, records in batch.items():
            for m in records:
                print(_driver.record_line(m.partition, m.offset, m.timestamp, m.key, m.value,
                                          m.headers), flush=True)
        for tp in parts:
            if c.position(tp) >= ends[tp]:
                done.add(tp)
    c.close()
    if len(done) < len(parts):
        _driver.fail("not read to the end")


def main():
    p = _driver.parser(__doc__)
    p.add_argument("mode", choices=["produce", "consume"])
    p.add_argument("--topic", required=True)
    p.add_argument("--transactional-id", default="kp-txn")
    p.add_argument("--pattern", default="c")
    p.add_argument("--per-txn", type=int, default=10)
    p.add_argument("--isolation", default="read_committed",
                   choices=["read_committed", "read_uncommitted"])
    args = p.parse_args()
    _driver.start_watchdog(args.timeout)
    {"produce": mode_produce, "consume": mode_consume}[args.mode](args)


if __name__ == "__main__":
    main()
