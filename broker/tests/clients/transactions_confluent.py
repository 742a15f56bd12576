#!/usr/bin/env python3
"""Transactional producer steps with confluent-kafka, printed as one JSON document:

    --mode init        init_transactions()                       {"init": "ok"}
    --mode abort       init, begin_transaction, abort_transaction  {"init": "ok", "abort": "ok"}
    --mode fence       producer A inits, producer B inits with the same transactional.id,
                       then A tries send_offsets_to_transaction:
                       {"a_init": "ok", "b_init": "ok", "a_after_fence": "<error>",
                        "a_fatal": true|false}
"""

import json

import _driver

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition


def producer(args):
    return Producer({"bootstrap.servers": args.bootstrap, "client.id": args.client_id,
                     "transactional.id": args.transactional_id,
                     "transaction.timeout.ms": 60000, "socket.timeout.ms": 10000})


def main():
    p = _driver.parser(__doc__)
    p.add_argument("--mode", required=True, choices=["init", "abort", "fence"])
    p.add_argument("--transactional-id", required=True)
    p.add_argument("--topic", default="txn-topic")
    args = p.parse_args()
    _driver.start_watchdog(args.timeout)
    out = {}
    if args.mode in ("init", "abort"):
        a = producer(args)
        try:
            a.init_transactions(args.timeout)
        except KafkaException as e:
            _driver.fail(f"init_transactions failed: {e}")
        out["init"] = "ok"
        if args.mode == "abort":
            try:
                a.begin_transaction()
                a.abort_transaction(args.timeout)
            except KafkaException as e:
                _driver.fail(f"begin/abort failed: {e}")
            out["abort"] = "ok"
    else:
        a = producer(args)
        a.init_transactions(args.timeout)
        out["a_init"] = "ok"
        b = producer(args)
        b.init_transactions(args.timeout)
        out["b_init"] = "ok"
        consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "txn-fence-group"})
        try:
            a.begin_transaction()
            a.send_offsets_to_transaction([TopicPartition(args.topic, 0, 1)],
                                          consumer.consumer_group_metadata(), args.timeout)
            out["a_after_fence"] = None
        except KafkaException as e:
            err = e.args[0]
            out["a_after_fence"] = err.name()
            out["a_fatal"] = err.fatal()
        consumer.close()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
