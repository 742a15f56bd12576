#!/usr/bin/env python3
"""Reads partitions of a topic from the start to the end with confluent-kafka's Consumer
(librdkafka; manual assignment, nothing committed) and prints every record as a JSON line
(see _driver.py).

The end is the partition EOF event (enable.partition.eof: the fetch offset reached the high
watermark of a fetch response) by default, or --until end-offsets (get_watermark_offsets,
a ListOffsets request, asked once before reading). Exit status 0 when every partition was
read to its end, 1 otherwise (the reason on stderr). A summary goes to stderr.
"""

import sys
import time

import _driver

import confluent_kafka
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition


def main():
    p = _driver.consumer_parser(__doc__)
    p.add_argument("--debug", default=None, help="librdkafka debug contexts (to stderr)")
    args = p.parse_args()
    until = args.until or "eof"
    if until not in ("eof", "end-offsets"):
        _driver.fail(f"--until must be eof or end-offsets for confluent-kafka, not {until}")
    deadline = _driver.start_watchdog(args.timeout)

    errors = []

    def on_error(err):
        errors.append(str(err))
        print(f"librdkafka error: {err}", file=sys.stderr, flush=True)

    conf = {
        "bootstrap.servers": args.bootstrap,
        "client.id": args.client_id,
        # Required by the Python binding; nothing is committed and no group is joined.
        "group.id": "gregor-tests",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
        "socket.timeout.ms": 10000,
        "fetch.wait.max.ms": 200,
        "error_cb": on_error,
    }
    if args.max_partition_fetch_bytes:
        conf["max.partition.fetch.bytes"] = args.max_partition_fetch_bytes
    if args.fetch_max_bytes:
        conf["fetch.max.bytes"] = args.fetch_max_bytes
    if args.debug:
        conf["debug"] = args.debug
    consumer = Consumer(conf)

    partitions = _driver.partition_list(args.partitions)
    if partitions is None:
        try:
            md = consumer.list_topics(args.topic, timeout=max(1.0, deadline - time.monotonic()))
        except KafkaException as e:
            _driver.fail(f"metadata request failed: {e}")
        topic = md.topics.get(args.topic)
        if topic is None or topic.error is not None:
            _driver.fail(f"topic {args.topic!r} not in the metadata: "
                         f"{topic.error if topic else 'absent'}")
        partitions = sorted(topic.partitions)

    if args.start == "beginning":
        start = confluent_kafka.OFFSET_BEGINNING
    else:
        start = int(args.start)
    ends = {}
    if until == "end-offsets":
        for p in partitions:
            try:
                _low, high = consumer.get_watermark_offsets(
                    TopicPartition(args.topic, p), timeout=10, cached=False)
            except KafkaException as e:
                _driver.fail(f"get_watermark_offsets (ListOffsets) failed: {e}")
            ends[p] = high
    consumer.assign([TopicPartition(args.topic, p, start) for p in partitions])

    count = 0
    last = {}
    position = {}
    finished = set(p for p in partitions if ends.get(p) == 0)
    started = time.monotonic()
    while len(finished) < len(partitions):
        if time.monotonic() > deadline:
            _driver.fail(f"timed out after {args.timeout}s with {count} records read; "
                         f"finished partitions {sorted(finished)}, positions {position}, "
                         f"errors {errors[-5:]}")
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                if until == "eof":
                    finished.add(msg.partition())
                continue
            _driver.fail(f"consume error: {msg.error()}")
        p, offset = msg.partition(), msg.offset()
        if p in last and offset <= last[p]:
            _driver.fail(f"offset {offset} after {last[p]} in partition {p}")
        last[p] = offset
        position[p] = offset + 1
        _ts_type, ts = msg.timestamp()
        print(_driver.record_line(p, offset, ts, msg.key(), msg.value(), msg.headers()))
        count += 1
        if until == "end-offsets" and position[p] >= ends[p]:
            finished.add(p)
    consumer.close()
    print(f"confluent-kafka {confluent_kafka.__version__} (librdkafka "
          f"{confluent_kafka.libversion()[0]}): {count} records in "
          f"{time.monotonic() - started:.2f}s; positions {position}", file=sys.stderr)


if __name__ == "__main__":
    main()
