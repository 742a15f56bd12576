#!/usr/bin/env python3
"""Runs the workspace's test binaries in parallel lanes instead of cargo's one-after-another.

    cargo test --workspace --no-run --message-format=json > target/test-binaries.json
    scripts/run-test-binaries.py [--group serial|lanes] target/test-binaries.json [-- <libtest args>]

Most of the suite's time is spent waiting (session timeouts, client start-ups, elections),
not on CPU, so two binaries at a time take about half the wall time on a 2-core machine.
TEST_JOBS (default 2) sets the number of lanes. Each binary runs as cargo would run it: with
the package's directory as cwd and CARGO_MANIFEST_DIR / CARGO_PKG_NAME / CARGO_CRATE_NAME
set. Its output goes to a file and is printed whole when it ends, so logs never interleave.
Every binary runs (no fail-fast); the summary lists each one's seconds and result, and the
exit status is 1 if any failed. The binaries named in SERIAL run first, one at a time with
nothing else of ours running, then the rest in the lanes; `--group serial` or `--group
lanes` runs only one of the two (scripts/test.sh starts its background builds in between).

Standard library only: this runs before (and without) the clients' venv.
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time

# The slow binaries, longest first (seconds of a sequential CI run), so the lanes do not end
# with one long binary running alone. Anything not named here runs after these, in cargo's
# order. Names are "package/target" ("package/lib" for unit tests).
SLOW_FIRST = [
    "gregor-broker/security",  # 179 s
    "gregor-broker/groups",  # 119 s
    "gregor-cli/broker",  # 105 s
    "gregor-broker/transactions",  # 62 s
    "gregor-broker/cluster_failover",  # 42 s
    "gregor-broker/cluster_transactions",  # 32 s
    "gregor-protocol/decode_allocation",  # 32 s
    "gregor-broker/lib",  # 24 s
    "gregor-broker/real_clients",  # 20 s
    "gregor-cli/groups",  # 19 s
]

# Binaries that run alone, before the lanes, because what they assert depends on having the
# machine to themselves:
# - quotas: throttling is asserted within +-10 % of the configured byte rate over the
#   busiest 11 s; a neighbour binary's CPU use delays the fetches and drifts the rate.
# - cluster: with a controller killed, the two left took ~30 s of split votes to elect a
#   leader when a neighbour binary loaded the machine, and the CreateTopics that waited
#   through it was retried into TOPIC_ALREADY_EXISTS.
# Tried in the lanes and fine there: write_path (its memory test bounds the broker's peak
# resident set, which a neighbour does not change), cluster_failover, cluster_transactions.
SERIAL = [
    "gregor-broker/cluster",
    "gregor-broker/quotas",
]


def compiler_artifacts(path):
    """The `compiler-artifact` messages of a cargo `--message-format=json` output."""
    with open(path) as messages:
        for line in messages:
            line = line.strip()
            if not line.startswith("{"):
                continue
            message = json.loads(line)
            if message.get("reason") == "compiler-artifact":
                yield message


def artifacts(path):
    """The test executables of a `cargo test --no-run --message-format=json` output."""
    found = []
    seen = set()
    for message in compiler_artifacts(path):
        executable = message.get("executable")
        if not message.get("profile", {}).get("test") or not executable or executable in seen:
            continue
        seen.add(executable)
        target = message["target"]
        kinds = target.get("kind", [])
        manifest = message["manifest_path"]
        package = package_name(message.get("package_id", ""), manifest)
        label = "lib" if "lib" in kinds else target["name"]
        if "bin" in kinds:
            label = "bin:" + target["name"]
        found.append(
            {
                "name": f"{package}/{label}",
                "executable": executable,
                "cwd": os.path.dirname(manifest),
                "package": package,
                "crate": target["name"].replace("-", "_"),
            }
        )
    return found


def built_binaries(path):
    """The workspace's own executables (not test harnesses) of the same cargo output, by
    name: the tests start `gregor` and `gregorctl` and would otherwise build them again."""
    return {
        message["target"]["name"]: message["executable"]
        for message in compiler_artifacts(path)
        if message.get("executable")
        and not message.get("profile", {}).get("test")
        and "bin" in message["target"].get("kind", [])
    }


def tool_environment(artifacts_path):
    """What cargo's own test runs pass on that a plain process lacks: the toolchain (cargo
    run through rustup sets RUSTUP_TOOLCHAIN for its children; without it a nested `cargo
    build` compiles registry crates in their own directory, where a crate's
    rust-toolchain file can name a toolchain that is not installed) and the built broker
    and gregorctl (GREGOR_BROKER_BIN, GREGORCTL_BIN: no nested build at all)."""
    env = {}
    if "RUSTUP_TOOLCHAIN" not in os.environ:
        try:
            active = subprocess.run(
                ["rustup", "show", "active-toolchain"],
                capture_output=True, text=True, check=True,
            ).stdout.split()
            if active:
                env["RUSTUP_TOOLCHAIN"] = active[0]
        except (OSError, subprocess.CalledProcessError):
            pass
    bins = built_binaries(artifacts_path)
    if "gregor" in bins and "GREGOR_BROKER_BIN" not in os.environ:
        env["GREGOR_BROKER_BIN"] = bins["gregor"]
    if "gregorctl" in bins and "GREGORCTL_BIN" not in os.environ:
        env["GREGORCTL_BIN"] = bins["gregorctl"]
    return env


def package_name(package_id, manifest):
    """A package's name from its cargo package id (both the old and the new format)."""
    # New: "path+file:///dir/broker#gregor-broker@0.1.0"; old: "gregor-broker 0.1.0 (path+...)".
    if "#" in package_id:
        tail = package_id.rsplit("#", 1)[1]
        name = tail.split("@", 1)[0]
        if name and not name[0].isdigit():
            return name
        # "path+file:///dir/gregor#0.1.0": the name is the directory's.
        return os.path.basename(package_id.rsplit("#", 1)[0])
    if " " in package_id:
        return package_id.split(" ", 1)[0]
    return os.path.basename(os.path.dirname(manifest))


def ordered(binaries):
    """The binaries in lane order (slow ones first) and the serial ones, in that order."""
    by_name = {b["name"]: b for b in binaries}
    serial = [by_name[n] for n in SERIAL if n in by_name]
    first = [by_name[n] for n in SLOW_FIRST if n in by_name]
    named = set(SERIAL) | set(SLOW_FIRST)
    rest = [b for b in binaries if b["name"] not in named]
    return first + rest, serial


class Runner:
    def __init__(self, extra_args, logdir, tools):
        self.extra_args = extra_args
        self.tools = tools
        self.logdir = logdir
        self.print_lock = threading.Lock()
        self.results = []

    def run(self, binary):
        """Runs one binary to its end, then prints its whole output."""
        log_path = os.path.join(self.logdir, binary["name"].replace("/", "__") + ".log")
        env = dict(os.environ)
        env.update(self.tools)
        env["CARGO_MANIFEST_DIR"] = binary["cwd"]
        env["CARGO_PKG_NAME"] = binary["package"]
        env["CARGO_CRATE_NAME"] = binary["crate"]
        start = time.monotonic()
        with open(log_path, "wb") as log:
            status = subprocess.call(
                [binary["executable"], *self.extra_args],
                cwd=binary["cwd"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        seconds = time.monotonic() - start
        with self.print_lock:
            verdict = "ok" if status == 0 else f"FAILED (exit {status})"
            print(f"\n---- {binary['name']} ({seconds:.1f} s, {verdict})", flush=True)
            print(f"     {binary['executable']}", flush=True)
            with open(log_path, "rb") as log:
                sys.stdout.buffer.write(log.read())
            sys.stdout.flush()
            self.results.append((binary["name"], seconds, status))

    def lanes(self, queue, jobs):
        """Runs the queue's binaries `jobs` at a time, each lane taking the next when free."""
        lock = threading.Lock()
        pending = list(queue)

        def lane():
            while True:
                with lock:
                    if not pending:
                        return
                    binary = pending.pop(0)
                self.run(binary)

        threads = [threading.Thread(target=lane) for _ in range(max(1, jobs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def main():
    args = sys.argv[1:]
    extra = []
    if "--" in args:
        at = args.index("--")
        args, extra = args[:at], args[at + 1 :]
    group = "all"
    if len(args) == 3 and args[0] == "--group" and args[1] in ("serial", "lanes"):
        group, args = args[1], args[2:]
    if len(args) != 1:
        sys.exit(__doc__)
    jobs = int(os.environ.get("TEST_JOBS", "2"))
    binaries = artifacts(args[0])
    if not binaries:
        sys.exit(f"no test executables in {args[0]}")
    parallel, serial = ordered(binaries)
    if group == "serial":
        parallel = []
    elif group == "lanes":
        serial = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gregor-tests-") as logdir:
        runner = Runner(extra, logdir, tool_environment(args[0]))
        print(f"{len(serial)} test binaries alone, then {len(parallel)} in {jobs} lanes", flush=True)
        for binary in serial:
            runner.run(binary)
        runner.lanes(parallel, jobs)
    total = time.monotonic() - started
    failed = [r for r in runner.results if r[2] != 0]
    print(f"\n==== test binaries: {len(runner.results)} ran in {total:.0f} s ({jobs} lanes)")
    for name, seconds, status in sorted(runner.results, key=lambda r: -r[1]):
        verdict = "ok" if status == 0 else f"FAILED (exit {status})"
        print(f"  {seconds:7.1f} s  {verdict:<18} {name}")
    if failed:
        print(f"{len(failed)} of {len(runner.results)} test binaries failed: "
              + " ".join(r[0] for r in failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
