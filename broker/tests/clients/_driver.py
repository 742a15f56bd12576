"""Helpers shared by the client drivers: argument parsing, a hard time limit, and the JSON
line every consumer prints per record (the Rust tests parse it):

    {"partition": 0, "offset": 0, "timestamp": 1735689600000,
     "key": "<hex>" | null, "value": "<hex>" | null,
     "headers": [["<key>", "<hex>" | null], ...]}
"""

import argparse
import faulthandler
import json
import sys
import time


def hexify(data):
    """Bytes (or str) as lowercase hex; None stays None."""
    if data is None:
        return None
    if isinstance(data, str):
        data = data.encode()
    return bytes(data).hex()


def record_line(partition, offset, timestamp, key, value, headers):
    """One record as a JSON line (headers: iterable of (key, value) pairs)."""
    return json.dumps({
        "partition": partition,
        "offset": offset,
        "timestamp": timestamp,
        "key": hexify(key),
        "value": hexify(value),
        "headers": [[k if isinstance(k, str) else bytes(k).decode("utf-8", "replace"),
                     hexify(v)] for k, v in (headers or [])],
    }, separators=(",", ":"))


def fail(message, code=1):
    """Prints the reason on stderr and exits non-zero."""
    print(f"{sys.argv[0]}: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def parser(description):
    """An argument parser with the options every driver takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--bootstrap", required=True, help="host:port of the broker")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="overall time limit in seconds (default 60)")
    p.add_argument("--client-id", default="gregor-tests")
    return p


def consumer_parser(description):
    """Options of the consumer drivers."""
    p = parser(description)
    p.add_argument("--topic", required=True)
    p.add_argument("--partitions", default=None,
                   help="comma-separated partition indexes (default: all, from metadata)")
    p.add_argument("--from", dest="start", default="beginning",
                   help="'beginning' (resolved with ListOffsets) or an absolute offset "
                        "(default: beginning)")
    p.add_argument("--until", default=None,
                   help="how the end is found: 'end-offsets' (ListOffsets latest, asked "
                        "once before reading) or 'highwater' (the high watermark of the "
                        "fetch responses)")
    p.add_argument("--max-partition-fetch-bytes", type=int, default=None)
    p.add_argument("--fetch-max-bytes", type=int, default=None)
    return p


def start_watchdog(timeout):
    """Kills the process (with a traceback of every thread) if it is still running well
    after its time limit, even when stuck in C code."""
    faulthandler.dump_traceback_later(timeout + 15, exit=True)
    return time.monotonic() + timeout


def partition_list(text):
    if text is None:
        return None
    return [int(p) for p in text.split(",") if p.strip()]


def kafka_python_group_poll(consumer, **poll_args):
    """KafkaConsumer.poll for a group member, working around a kafka-python 3.0.x race.

    When the leader rejoins because its topic metadata changed, kafka-python 3.0.12 drops
    the finished join if the poll's timer ran out while the SyncGroup was in flight: the
    leader's new assignment already made `need_rejoin()` false, so no later poll collects
    the join's result, and the member neither takes its partitions nor heartbeats (the
    coordinator then removes it). Seen as "timeout in ensure_active_group" followed by
    `need_rejoin: False` forever in kafka-python's debug log. After each poll this asks
    for a fresh rejoin when a finished join was left uncollected; the broker sees an
    ordinary rejoin. Uses kafka-python's private fields, so it does nothing when they
    are not there.
    """
    batches = consumer.poll(**poll_args)
    coordinator = getattr(consumer, "_coordinator", None)
    task = getattr(coordinator, "_join_task", None)
    if task is not None and getattr(task, "is_done", False) and not coordinator.need_rejoin():
        coordinator._join_task = None
        coordinator.request_rejoin()
    return batches
