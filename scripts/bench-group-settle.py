#!/usr/bin/env python3
"""Time for a 10-member consumer group to settle after an 11th member joins (issue 12):
the classic protocol (librdkafka's eager `range` and `cooperative-sticky`) against the
consumer protocol of KIP-848 (the broker's `uniform` assignor), in the same run, against
one `gregor` started here.

Settled: every member holds a non-empty share, the shares are disjoint and cover all
partitions of the topic. The clock starts when the 11th member subscribes and stops when
the group is settled with it. Each case runs --rounds times with a fresh group; the median
and the range are printed as a Markdown table.

    scripts/bench-group-settle.py --gregor target/release/gregor [--rounds 3]

Needs confluent-kafka (the test clients' virtualenv: GREGOR_CLIENTS_VENV/bin/python).
"""

import argparse
import os
import socket
import statistics
import subprocess
import tempfile
import threading
import time

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

PARTITIONS = 30
MEMBERS = 10


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Member:
    def __init__(self, bootstrap, group, conf):
        self.assignment = set()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.conf = dict(conf, **{"bootstrap.servers": bootstrap, "group.id": group,
                                  "enable.auto.commit": False})
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        c = Consumer(self.conf)
        incremental = self.conf.get("group.protocol") == "consumer" or \
            self.conf.get("partition.assignment.strategy") == "cooperative-sticky"

        def on_assign(c_, parts):
            if incremental:
                c_.incremental_assign(parts)
            else:
                c_.assign(parts)
            with self.lock:
                self.assignment = {tp.partition for tp in c_.assignment()}

        def on_revoke(c_, parts):
            if incremental:
                c_.incremental_unassign(parts)
            else:
                c_.unassign()
            with self.lock:
                self.assignment = {tp.partition for tp in c_.assignment()}

        c.subscribe(["settle"], on_assign=on_assign, on_revoke=on_revoke)
        while not self.stop.is_set():
            c.poll(0.05)
        c.close()

    def share(self):
        with self.lock:
            return set(self.assignment)


def settled(members):
    shares = [m.share() for m in members]
    union = set().union(*shares)
    return all(shares) and sum(map(len, shares)) == len(union) == PARTITIONS


def wait_settled(members, timeout=180):
    deadline = time.time() + timeout
    while not settled(members):
        if time.time() > deadline:
            raise SystemExit(f"did not settle: {[sorted(m.share()) for m in members]}")
        time.sleep(0.01)


def round_once(bootstrap, group, conf):
    members = [Member(bootstrap, group, conf) for _ in range(MEMBERS)]
    wait_settled(members)
    time.sleep(1)
    start = time.time()
    members.append(Member(bootstrap, group, conf))
    wait_settled(members)
    elapsed = time.time() - start
    for m in members:
        m.stop.set()
    for m in members:
        m.thread.join(30)
    return elapsed


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--gregor", required=True)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--consumer-heartbeat-ms", type=int, default=5000,
                   help="group.consumer.heartbeat.interval.ms of the broker (Kafka's default 5000)")
    p.add_argument("--only-consumer", action="store_true", help="run the KIP-848 case only")
    args = p.parse_args()
    port = free_port()
    work = tempfile.mkdtemp(prefix="gregor-settle-")
    props = os.path.join(work, "server.properties")
    with open(props, "w") as f:
        f.write(f"""node.id=1
process.roles=broker,controller
listeners=PLAINTEXT://127.0.0.1:{port}
log.dirs={work}/data
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
group.initial.rebalance.delay.ms=0
group.consumer.heartbeat.interval.ms={args.consumer_heartbeat_ms}
group.consumer.min.heartbeat.interval.ms={min(args.consumer_heartbeat_ms, 5000)}
""")
    broker = subprocess.Popen([args.gregor, props], stdout=subprocess.DEVNULL,
                              stderr=open(os.path.join(work, "broker.log"), "w"))
    bootstrap = f"127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for f in admin.create_topics([NewTopic("settle", PARTITIONS, 1)]).values():
            f.result()
        cases = [
            ("classic, eager `range`", {"partition.assignment.strategy": "range"}),
            ("classic, `cooperative-sticky`",
             {"partition.assignment.strategy": "cooperative-sticky"}),
            (f"consumer (KIP-848), `uniform`, heartbeat {args.consumer_heartbeat_ms} ms",
             {"group.protocol": "consumer"}),
        ]
        if args.only_consumer:
            cases = cases[2:]
        print(f"| protocol | median (s) | min-max (s) over {args.rounds} rounds |")
        print("| --- | ---: | ---: |")
        for n, (name, conf) in enumerate(cases):
            times = [round_once(bootstrap, f"settle-{n}-{r}", conf) for r in range(args.rounds)]
            print(f"| {name} | {statistics.median(times):.2f} | "
                  f"{min(times):.2f}-{max(times):.2f} |", flush=True)
    finally:
        broker.terminate()
        broker.wait(30)


if __name__ == "__main__":
    main()
