#!/usr/bin/env python3
"""The online migration of a group between the classic and the consumer protocol
(KIP-848), with confluent-kafka (librdkafka):

  1. member a (group.protocol=classic) consumes alone: a classic group;
  2. member b (group.protocol=consumer) joins (30 more records): the broker upgrades the
     group to a consumer group, and a and b split the partitions;
  3. b leaves (30 more): the group goes back to classic, a holds every partition.

A phase ends when the members' assignments are disjoint, cover every partition, and every
record produced so far has been consumed; then the group's type is read with ListGroups
(AdminClient.list_consumer_groups) and its members with DescribeConsumerGroups. Every
record is committed (synchronously) as soon as it is consumed. On stdout, one JSON
object: the records each member consumed, the assignments and group types of each phase,
the high watermarks, and the commit errors seen.
"""

import json
import threading
import time

import _driver
from _scenario import Member

import confluent_kafka
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient


def main():
    p = _driver.parser(__doc__)
    p.add_argument("--topic", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--partitions", type=int, required=True)
    args = p.parse_args()
    deadline = time.time() + args.timeout
    lock = threading.Lock()
    consumed = []
    errors = []
    producer = Producer({"bootstrap.servers": args.bootstrap})
    watcher = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "migration-watcher"})
    admin = AdminClient({"bootstrap.servers": args.bootstrap})

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

    def group_type():
        listed = admin.list_consumer_groups(request_timeout=10).result(timeout=15)
        for g in listed.valid:
            if g.group_id == args.group:
                return str(g.type).split(".")[-1].lower()
        return None

    def described_types():
        """Each member's protocol as DescribeConsumerGroups reports it (consumer groups)."""
        try:
            described = admin.describe_consumer_groups([args.group], request_timeout=10)
            d = described[args.group].result(timeout=15)
            return {"type": str(d.type).split(".")[-1].lower(),
                    "members": sorted(m.client_id for m in d.members)}
        except Exception as e:  # noqa: BLE001 - reported, the test decides
            return {"error": str(e)}

    members = {}
    phases = []

    def settle(phase, want_type):
        want = set(range(args.partitions))
        hw = high_watermarks()
        while True:
            if time.time() > deadline or any(m.dead for m in members.values()):
                with lock:
                    state = {n: sorted(m.assignment) for n, m in members.items()}
                _driver.fail(f"phase {phase} did not settle: {state}; type {group_type()}; "
                             f"consumed {len(consumed)}; watermarks {hw}; errors {errors[-5:]}")
            with lock:
                shares = [set(m.assignment) for m in members.values()]
                seen = {(p, o) for (_, p, o) in consumed}
            disjoint = sum(len(s) for s in shares) == len(set().union(*shares))
            complete = set().union(*shares) == want
            read_all = all((p, o) in seen for p in range(args.partitions)
                           for o in range(hw[p]))
            if disjoint and complete and read_all and all(shares) and group_type() == want_type:
                with lock:
                    assignment = {n: sorted(m.assignment) for n, m in members.items()}
                phases.append({"assignment": assignment, "type": group_type(),
                               "described": described_types()})
                return hw
            time.sleep(0.2)

    members["a"] = Member("a", "classic", args, lock, consumed, errors)
    settle(1, "classic")
    members["b"] = Member("b", "consumer", args, lock, consumed, errors)
    produce(30, "two")
    settle(2, "consumer")
    members.pop("b").leave()
    produce(30, "three")
    hw = settle(3, "classic")
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
