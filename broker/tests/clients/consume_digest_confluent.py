#!/usr/bin/env python3
"""Reads every partition of a topic from the beginning to its end offset (ListOffsets
latest through get_watermark_offsets, asked once before reading) with confluent-kafka's
Consumer (librdkafka; manual assignment, nothing committed) and prints one digest line per
record (_records.digest_line: key and headers in hex, the value as length and CRC-32).

Exit status 0 when every partition was read to its end, 1 otherwise (the reason on
stderr). A summary goes to stderr.
"""

import sys
import time

import _driver
import _records

import confluent_kafka
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition


def main():
    p = _driver.parser(__doc__)
    p.add_argument("--topic", required=True)
    p.add_argument("--partitions", type=int, default=None,
                   help="number of partitions (default: from the metadata)")
    p.add_argument("--debug", default=None, help="librdkafka debug contexts (to stderr)")
    args = p.parse_args()
    deadline = _driver.start_watchdog(args.timeout)

    errors = []

    def on_error(err):
        errors.append(str(err))
        print(f"librdkafka error: {err}", file=sys.stderr, flush=True)

    conf = {
        "bootstrap.servers": args.bootstrap,
        "client.id": args.client_id,
        "group.id": "gregor-tests",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "socket.timeout.ms": 30000,
        "fetch.wait.max.ms": 200,
        "max.partition.fetch.bytes": 4 * 1024 * 1024,
        "error_cb": on_error,
    }
    if args.debug:
        conf["debug"] = args.debug
    consumer = Consumer(conf)

    if args.partitions is not None:
        partitions = list(range(args.partitions))
    else:
        try:
            md = consumer.list_topics(args.topic, timeout=max(1.0, deadline - time.monotonic()))
        except KafkaException as e:
            _driver.fail(f"metadata request failed: {e}")
        topic = md.topics.get(args.topic)
        if topic is None or topic.error is not None:
            _driver.fail(f"topic {args.topic!r} not in the metadata: "
                         f"{topic.error if topic else 'absent'}")
        partitions = sorted(topic.partitions)

    ends = {}
    for p in partitions:
        try:
            _low, high = consumer.get_watermark_offsets(
                TopicPartition(args.topic, p), timeout=30, cached=False)
        except KafkaException as e:
            _driver.fail(f"get_watermark_offsets (ListOffsets) failed: {e}")
        ends[p] = high
    consumer.assign([TopicPartition(args.topic, p, confluent_kafka.OFFSET_BEGINNING)
                     for p in partitions])

    out = sys.stdout
    count = 0
    last = {}
    position = {}
    finished = set(p for p in partitions if ends[p] <= 0)
    started = time.monotonic()
    while len(finished) < len(partitions):
        if time.monotonic() > deadline:
            _driver.fail(f"timed out after {args.timeout}s with {count} records read; "
                         f"finished partitions {sorted(finished)}, positions {position}, "
                         f"ends {ends}, errors {errors[-5:]}")
        msgs = consumer.consume(num_messages=1000, timeout=0.5)
        for msg in msgs:
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                _driver.fail(f"consume error: {msg.error()}")
            p, offset = msg.partition(), msg.offset()
            if p in last and offset <= last[p]:
                _driver.fail(f"offset {offset} after {last[p]} in partition {p}")
            last[p] = offset
            position[p] = offset + 1
            _ts_type, ts = msg.timestamp()
            out.write(_records.digest_line(p, offset, ts, msg.key(), msg.value(),
                                           msg.headers()))
            out.write("\n")
            count += 1
            if position[p] >= ends[p]:
                finished.add(p)
    out.flush()
    consumer.close()
    print(f"confluent-kafka {confluent_kafka.__version__} (librdkafka "
          f"{confluent_kafka.libversion()[0]}): {count} records in "
          f"{time.monotonic() - started:.2f}s; positions {position}, ends {ends}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
