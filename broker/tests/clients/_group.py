"""Helpers shared by the group consumer drivers (group_consume_*.py): their options, the
rules for when to stop, the two-member rendezvous, and the summary line.

Every consumed record goes to stdout as a JSON line (see _driver.py). The last line on
stderr is `SUMMARY {...}`: the assignments seen (in order), the offsets committed, the
record count, and the member's split assignment in --report-dir mode.
"""

import glob
import json
import os
import sys
import time

import _driver


def parser(description):
    """The options of a group consumer driver."""
    p = _driver.parser(description)
    p.add_argument("--topic", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--group-instance-id", default=None,
                   help="static membership (group.instance.id)")
    p.add_argument("--max-records", type=int, default=None,
                   help="stop after this many records")
    p.add_argument("--idle-ms", type=int, default=3000,
                   help="stop when nothing arrived for this long once assigned (default 3000)")
    p.add_argument("--no-commit", action="store_true",
                   help="do not commit the consumed offsets before leaving")
    p.add_argument("--session-timeout-ms", type=int, default=10000)
    p.add_argument("--partitions-total", type=int, default=None,
                   help="partitions of the topic (for --report-dir)")
    p.add_argument("--report-dir", default=None,
                   help="two-member mode: once this member holds a strict subset of the "
                        "partitions for 2 s, write its assignment here, wait for --members "
                        "reports, then leave")
    p.add_argument("--members", type=int, default=2)
    p.add_argument("--protocol", default="classic", choices=["classic", "consumer"],
                   help="group.protocol (consumer: KIP-848, confluent-kafka only)")
    return p


class Progress:
    """What the member saw: records, assignments, and when to stop."""

    def __init__(self, args):
        self.args = args
        self.count = 0
        self.next_offsets = {}
        self.assignments = []
        self.current = None
        self.assigned_at = None
        self.last_record_at = None
        self.reported = None
        self.report_waiting_since = None
        self.deadline = _driver.start_watchdog(args.timeout)

    def on_assignment(self, partitions):
        """Records a new assignment (list of partition indexes). A partition assigned again
        is read again from its committed offset."""
        self.current = sorted(partitions)
        for p in self.current:
            self.next_offsets.pop(p, None)
        self.assignments.append(self.current)
        self.assigned_at = time.monotonic()

    def on_record(self, partition, offset):
        """Records one consumed record; returns False if the offset went back within one
        assignment."""
        self.count += 1
        self.last_record_at = time.monotonic()
        previous = self.next_offsets.get(partition)
        self.next_offsets[partition] = offset + 1
        return previous is None or offset >= previous

    def done(self):
        """True when the member should stop polling and leave."""
        now = time.monotonic()
        if now > self.deadline:
            _driver.fail(f"timed out after {self.args.timeout}s with {self.count} records; "
                         f"assignments {self.assignments}")
        if self.args.max_records is not None and self.count >= self.args.max_records:
            return True
        if self.args.report_dir:
            return self._rendezvous(now)
        if not self.current:
            return False
        quiet_since = max(self.assigned_at, self.last_record_at or 0)
        return now - quiet_since > self.args.idle_ms / 1000.0

    def _rendezvous(self, now):
        total = self.args.partitions_total
        if self.reported is None:
            split = (self.current is not None and total is not None
                     and 0 < len(self.current) < total)
            if split and now - self.assigned_at > 2.0:
                self.reported = list(self.current)
                path = os.path.join(self.args.report_dir, f"{self.args.client_id}.json")
                with open(path + ".tmp", "w") as f:
                    json.dump({"client_id": self.args.client_id,
                               "assignment": self.reported}, f)
                os.replace(path + ".tmp", path)
                self.report_waiting_since = now
            return False
        reports = glob.glob(os.path.join(self.args.report_dir, "*.json"))
        if len(reports) >= self.args.members:
            # Give the others a moment to see the reports too, then leave.
            return now - self.report_waiting_since > 1.0 and self._linger(now)
        return False

    def _linger(self, now):
        if not hasattr(self, "_all_reported_at"):
            self._all_reported_at = now
        return now - self._all_reported_at > 1.0

    def summary(self, committed, client):
        """Prints the summary line on stderr."""
        print("SUMMARY " + json.dumps({
            "client": client,
            "count": self.count,
            "assignments": self.assignments,
            "committed": {str(p): o for p, o in sorted(committed.items())},
            "reported": self.reported,
        }), file=sys.stderr, flush=True)
