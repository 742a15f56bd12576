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
from _scenario import Member

import confluent_kafka
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition


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
        members[name] = Member(name, "consumer", args, lock, consumed, errors)
    settle(1)
    members["c"] = Member("c", "consumer", args, lock, consumed, errors)
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
