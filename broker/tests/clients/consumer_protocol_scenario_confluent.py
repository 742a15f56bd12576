#!/usr/bin/env python3
"""KIP-848 with confluent-kafka (librdkafka, group.protocol=consumer): members of one
consumer group join and leave while records keep coming, and the broker restarts once.

Phases (each ends when the members' assignments are disjoint, cover every partition, and
every record produced so far has been consumed):
  1. members a and b;
  2. member c joins (30 more records);
  3. member b leaves (30 more);
  4. the broker restarts: this driver writes <control-dir>/restart-request and waits for
     <control-dir>/restarted, then produces 30 more.
Every record is committed (synchronously) as soon as it is consumed. On stdout, one JSON
object: the records each member consumed, the assignments at the end of each phase, the
high watermarks, and the commit errors seen.
"""

import json
import os
import threading
import time

import _driver

import confluent_kafka
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition


class Member:
    """One consumer on a thread of its own."""

    def __init__(self, name, args, lock, consumed, errors):
        self.name = name
        self.args = args
        self.lock = lock
        self.consumed = consumed
        self.errors = errors
        self.assignment = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        conf = {
            "bootstrap.servers": self.args.bootstrap,
            "client.id": self.name,
            "group.id": self.args.group,
            "group.protocol": "consumer",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 200,
            "reconnect.backoff.max.ms": 500,
            "error_cb": lambda err: self.note(f"error_cb: {err}"),
        }
        consumer = Consumer(conf)

        def on_assign(c, partitions):
            c.incremental_assign(partitions)
            with self.lock:
                self.assignment = {tp.partition for tp in c.assignment()}

        def on_revoke(c, partitions):
            try:
                c.incremental_unassign(partitions)
                held = {tp.partition for tp in c.assignment()}
            except KafkaException as e:
                # close() revokes while it destroys the handle (_DESTROY): nothing held.
                if e.args[0].code() != confluent_kafka.KafkaError._DESTROY:
                    raise
                held = set()
            with self.lock:
                self.assignment = held

        consumer.subscribe([self.args.topic], on_assign=on_assign, on_revoke=on_revoke)
        while not self.stop.is_set():
            msg = consumer.poll(0.1)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() != confluent_kafka.KafkaError._PARTITION_EOF:
                    self.note(f"consume: {msg.error()}")
                continue
            with self.lock:
                self.consumed.append((self.name, msg.partition(), msg.offset()))
            for attempt in range(20):
                try:
                    consumer.commit(message=msg, asynchronous=False)
                    break
                except KafkaException as e:
                    self.note(f"commit {msg.partition()}:{msg.offset()}: {e}")
                    time.sleep(0.2)
        consumer.close()

    def note(self, text):
        with self.lock:
            self.errors.append(f"{self.name}: {text}")

    def leave(self):
        self.stop.set()
        self.thread.join(30)


def main():
    p = _driver.parser(__doc__)
    p.add_argument("--topic", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--partitions", type=int, required=True)
    p.add_argument("--control-dir", required=True)
    args = p.parse_args()
    deadline = time.time() + args.timeout
    lock = threading.Lock()
    consumed = []
    errors = []
    producer = Producer({"bootstrap.servers": args.bootstrap})
    watcher = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "scenario-watcher"})

    def high_watermarks():
        for _ in range(100):
            try:
                return [watcher.get_watermark_offsets(TopicPartition(args.topic, p),
                                                      timeout=5)[1]
                        for p in range(args.partitions)]
            except KafkaException:
                time.sleep(0.2)
        _driver.fail("no watermarks")

    def produce(n, tag):
        for i in range(n):
            producer.produce(args.topic, f"{tag}-{i}".encode(), partition=i % args.partitions)
        producer.flush(30)

    members = {}
    phases = []

    def settle(phase):
        want = set(range(args.partitions))
        hw = high_watermarks()
        while True:
            if time.time() > deadline:
                with lock:
                    state = {n: sorted(m.assignment) for n, m in members.items()}
                _driver.fail(f"phase {phase} did not settle: {state}; consumed "
                             f"{len(consumed)}; watermarks {hw}; errors {errors[-5:]}")
            with lock:
                shares = [set(m.assignment) for m in members.values()]
                seen = {(p, o) for (_, p, o) in consumed}
            disjoint = sum(len(s) for s in shares) == len(set().union(*shares))
            complete = set().union(*shares) == want
            read_all = all((p, o) in seen for p in range(args.partitions)
                           for o in range(hw[p]))
            if disjoint and complete and read_all and all(shares):
                with lock:
                    phases.append({n: sorted(m.assignment) for n, m in members.items()})
                return hw
            time.sleep(0.2)

    for name in ["a", "b"]:
        members[name] = Member(name, args, lock, consumed, errors)
    settle(1)
    members["c"] = Member("c", args, lock, consumed, errors)
    produce(30, "two")
    settle(2)
    members.pop("b").leave()
    produce(30, "three")
    settle(3)
    open(os.path.join(args.control_dir, "restart-request"), "w").close()
    restarted = os.path.join(args.control_dir, "restarted")
    while not os.path.exists(restarted):
        if time.time() > deadline:
            _driver.fail("the broker was not restarted")
        time.sleep(0.1)
    produce(30, "four")
    hw = settle(4)
    for m in members.values():
        m.leave()
    watcher.close()
    print(json.dumps({
        "consumed": consumed,
        "phases": phases,
        "watermarks": hw,
        "errors": errors,
        "client": f"confluent-kafka {confluent_kafka.__version__} "
                  f"(librdkafka {confluent_kafka.libversion()[0]})",
    }), flush=True)


if __name__ == "__main__":
    main()
