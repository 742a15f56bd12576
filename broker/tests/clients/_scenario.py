"""The group member the confluent-kafka scenario drivers share
(consumer_protocol_scenario_confluent.py, migration_scenario_confluent.py)."""

import threading
import time

import confluent_kafka
from confluent_kafka import Consumer, KafkaException


class Member:
    """One consumer (`protocol`: "classic" or "consumer") on a thread of its own: it
    commits every record as soon as it is consumed, keeps its assignment in `assignment`,
    and notes errors (and `dead` if its thread failed) for the scenario to report."""

    def __init__(self, name, protocol, args, lock, consumed, errors):
        self.name = name
        self.protocol = protocol
        self.args = args
        self.lock = lock
        self.consumed = consumed
        self.errors = errors
        self.assignment = set()
        self.dead = False
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        try:
            self.consume()
        except Exception as e:  # noqa: BLE001 - reported, the phase then fails
            self.note(f"died: {e!r}")
            self.dead = True

    def consume(self):
        conf = {
            "bootstrap.servers": self.args.bootstrap,
            "client.id": self.name,
            "group.id": self.args.group,
            "group.protocol": self.protocol,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 200,
            "reconnect.backoff.max.ms": 500,
            "error_cb": lambda err: self.note(f"error_cb: {err}"),
        }
        if self.protocol == "classic":
            conf["session.timeout.ms"] = 10000
            conf["heartbeat.interval.ms"] = 500
        consumer = Consumer(conf)

        # The consumer protocol is incremental; the classic member uses librdkafka's
        # default eager assignors (range, roundrobin): all its partitions go at each
        # rebalance.
        cooperative = self.protocol == "consumer"

        def on_assign(c, partitions):
            if cooperative:
                c.incremental_assign(partitions)
            else:
                c.assign(partitions)
            with self.lock:
                self.assignment = {tp.partition for tp in c.assignment()}

        def on_revoke(c, partitions):
            try:
                if cooperative:
                    c.incremental_unassign(partitions)
                else:
                    c.unassign()
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
