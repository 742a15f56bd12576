#!/usr/bin/env python3
"""Measurement and report helper of scripts/bench.sh (standard library only).

  bench.py run RESULTS --bench B --key K --round R [--broker-pid P] -- CMD...
      Runs CMD (a `gregorctl perf ...` whose last stdout line is a JSON summary, or any
      command when --raw-rate is given), and appends one JSON line to RESULTS with the
      summary, the broker's CPU seconds during the run (from /proc/P/stat), the command's
      own CPU seconds (rusage of children), the wall time and the load average.
  bench.py ceiling RESULTS --name N --round R --mib-per-sec X [--method M]
      Appends a ceiling measurement.
  bench.py loopback SECONDS
      Fallback loopback TCP blaster (when iperf3 is missing): prints MiB/s.
  bench.py copies RESULTS --phase P --before FILE:LINE --after FILE:LINE ...
      Appends a zero-copy measurement (see bench.sh).
  bench.py report RESULTS MACHINE BENCHMARKS.md
      Renders the section between the bench.sh markers of BENCHMARKS.md.
"""

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time

BEGIN = "<!-- bench.sh:begin -->"
END = "<!-- bench.sh:end -->"
TICKS = os.sysconf("SC_CLK_TCK")
INTRO = (
    "The real release binaries (`gregor`, `gregorctl perf produce|consume|requests`) on one "
    "machine, client and broker together: `scripts/bench.sh` (about 6 minutes after the "
    "build; `BENCH_SECONDS` and `BENCH_RUNS` shorten or lengthen it, the header of the "
    "script lists every setting) rewrites the section between the markers below."
)


def proc_cpu_seconds(pid):
    """utime + stime of a whole process (every thread), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        # The command name may hold spaces: split after its closing parenthesis.
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def append(path, record):
    with open(path, "a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")


def cmd_run(args):
    cmd = args.cmd
    if not cmd:
        raise SystemExit("bench.py run: give the command after --")
    broker_before = proc_cpu_seconds(args.broker_pid) if args.broker_pid else None
    client_before = children_cpu_seconds()
    start = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - start
    client_cpu = children_cpu_seconds() - client_before
    broker_cpu = (
        proc_cpu_seconds(args.broker_pid) - broker_before if args.broker_pid else None
    )
    lines = [l for l in proc.stdout.splitlines() if l.strip()]
    summary = None
    if lines:
        try:
            summary = json.loads(lines[-1])
        except json.JSONDecodeError:
            summary = None
    record = {
        "type": "run",
        "bench": args.bench,
        "key": args.key,
        "round": args.round,
        "summary": summary,
        "broker_cpu_s": broker_cpu,
        "client_cpu_s": client_cpu,
        "wall_s": wall,
        "load1": os.getloadavg()[0],
        "exit": proc.returncode,
    }
    if proc.returncode != 0 or summary is None:
        record["error"] = (proc.stderr.strip() or "no JSON summary")[-500:]
        print(f"  FAILED {args.bench} {args.key}: {record['error']}", file=sys.stderr)
    append(args.results, record)
    if summary:
        rate = (
            summary.get("requests_per_sec")
            if args.bench == "requests"
            else summary.get("batch_mb_per_sec", summary.get("mb_per_sec"))
        )
        unit = "req/s" if args.bench == "requests" else "MiB/s"
        lat = summary.get("latency_ms") or summary.get("fetch_latency_ms") or {}
        cpu = f"{broker_cpu:.2f}" if broker_cpu is not None else "?"
        print(
            f"  round {args.round} {args.bench:8} {args.key:28} {rate:>12,.1f} {unit}"
            f"  p50 {lat.get('p50', 0):.3f} ms  p99 {lat.get('p99', 0):.3f} ms"
            f"  broker cpu {cpu} s  client cpu {client_cpu:.2f} s"
        )
    return 0


def cmd_ceiling(args):
    append(
        args.results,
        {
            "type": "ceiling",
            "name": args.name,
            "round": args.round,
            "mib_per_sec": args.mib_per_sec,
            "method": args.method,
            "load1": os.getloadavg()[0],
        },
    )
    print(f"  round {args.round} ceiling  {args.name:28} {args.mib_per_sec:>12,.1f} MiB/s")
    return 0


def cmd_loopback(args):
    """One TCP stream over 127.0.0.1: 128 KiB sends, a reader that discards."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    received = [0]

    def reader():
        conn, _ = server.accept()
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        while True:
            n = conn.recv_into(view)
            if n == 0:
                break
            received[0] += n
        conn.close()

    thread = threading.Thread(target=reader)
    thread.start()
    client = socket.create_connection(server.getsockname())
    chunk = b"x" * (128 * 1024)
    start = time.monotonic()
    deadline = start + args.seconds
    while time.monotonic() < deadline:
        for _ in range(64):
            client.sendall(chunk)
    client.close()
    thread.join()
    elapsed = time.monotonic() - start
    print(f"{received[0] / elapsed / 1048576:.1f}")
    return 0


def parse_counts(spec):
    """FILE:LINE -> dict of the copycount line (1-based), plus /proc io fields if present."""
    path, line = spec.rsplit(":", 1)
    with open(path) as f:
        text = f.read().splitlines()[int(line) - 1]
    return {k: int(v) for k, v in (item.split("=") for item in text.split())}


def cmd_copies(args):
    before = parse_counts(args.before)
    after = parse_counts(args.after)
    delta = {k: after[k] - before.get(k, 0) for k in after}
    append(
        args.results,
        {
            "type": "copies",
            "phase": args.phase,
            "served_bytes": args.served_bytes,
            "mib_per_sec": args.mib_per_sec,
            "delta": delta,
        },
    )
    large = sum(delta.get(f"{k}_large_bytes", 0) for k in ("memcpy", "memmove", "realloc"))
    every = sum(delta.get(f"{k}_bytes", 0) for k in ("memcpy", "memmove", "realloc"))
    served = max(args.served_bytes, 1)
    print(
        f"  copies   {args.phase:28} {args.served_bytes:,} B; user-space copies "
        f"{every / served:.4f} per byte ({large / served:.4f} in copies >= 4 KiB); "
        f"file reads {delta.get('rchar', 0) / served:.3f} per byte"
    )
    return 0


# ---------------------------------------------------------------------------------------
# The report


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def spread(values):
    values = [v for v in values if v is not None]
    if len(values) < 2:
        return ""
    return f"{min(values):,.0f}–{max(values):,.0f}"


def spread_f(values, digits=1):
    values = [v for v in values if v is not None]
    if len(values) < 2:
        return ""
    return f"{min(values):,.{digits}f}–{max(values):,.{digits}f}"


def fmt(value, digits=1):
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def pct(value, ceiling):
    if value is None or not ceiling:
        return "n/a"
    return f"{100 * value / ceiling:.0f} %"


def ms(value):
    if value is None:
        return "n/a"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def size_name(size):
    size = int(size)
    return f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} B"


def render(results, machine):
    runs = [r for r in results if r["type"] == "run"]
    ceilings = [r for r in results if r["type"] == "ceiling"]
    copies = [r for r in results if r["type"] == "copies"]

    def by_key(bench):
        out = {}
        for r in runs:
            if r["bench"] == bench:
                out.setdefault(r["key"], []).append(r)
        return out

    def ok(rs):
        return [r for r in rs if r.get("summary") and not r.get("error")]

    ceiling = {}
    ceiling_runs = {}
    ceiling_method = {}
    for c in ceilings:
        ceiling_runs.setdefault(c["name"], []).append(c["mib_per_sec"])
        ceiling_method[c["name"]] = c.get("method") or ""
    for name, values in ceiling_runs.items():
        ceiling[name] = median(values)
    loads = [r["load1"] for r in runs + ceilings if r.get("load1") is not None]

    out = []
    w = out.append
    w(BEGIN)
    w("")
    w(
        "Generated by `scripts/bench.sh` (do not edit by hand: rerun it). Every figure is the "
        f"**median of {machine['runs']} runs** (spread in the \"runs\" columns); the runs of all "
        "benchmarks and ceilings are interleaved round by round, so each ceiling was measured "
        "in the same run as the figures compared with it. MB/s means MiB/s, as Kafka's perf "
        "tools compute it."
    )
    w("")
    w("## Machine")
    w("")
    w("| | |")
    w("| --- | --- |")
    w(f"| date | {machine['date']} |")
    w(f"| commit | `{machine['commit']}` |")
    w(f"| CPU | `{machine['cpu']}`, {machine['cores']} cores (shared with other work) |")
    w(f"| memory | {machine['memory']} |")
    w(f"| kernel | {machine['kernel']} |")
    w(f"| rustc | {machine['rustc']} (release profile) |")
    w(f"| data directory | {machine['filesystem']} |")
    load_text = (
        f"{machine['load_start']} at the start, {machine['load_end']} at the end; "
        f"1-minute load {min(loads):.1f}–{max(loads):.1f} during the runs"
        if loads
        else machine["load_start"]
    )
    w(f"| load average | {load_text} |")
    w(
        f"| settings | BENCH_SECONDS={machine['seconds']}, BENCH_RUNS={machine['runs']}, "
        f"in-flight window {machine['in_flight']}, fetch log {machine['fetch_mib']} MiB, "
        f"total time {machine.get('elapsed', '?')} |"
    )
    w("")

    w("## Ceilings (measured in the same run)")
    w("")
    w("| ceiling | MB/s | runs | how |")
    w("| --- | ---: | --- | --- |")
    names = {
        "loopback": "loopback TCP, one stream",
        "disk_direct": "sequential disk write, O_DIRECT",
        "disk_fdatasync": "sequential disk write, page cache + fdatasync",
        "cache_read": "sequential read of the prepared fetch logs (page cache)",
    }
    for name in ("loopback", "disk_direct", "disk_fdatasync", "cache_read"):
        if name in ceiling:
            w(
                f"| {names[name]} | {fmt(ceiling[name], 0)} | {spread(ceiling_runs[name])} | "
                f"{ceiling_method[name]} |"
            )
    w("")

    loop = ceiling.get("loopback")
    disk = ceiling.get("disk_direct")
    disk_sync = ceiling.get("disk_fdatasync")
    cache = ceiling.get("cache_read")

    produce = by_key("produce")
    if produce:
        w("## Produce (issue 4)")
        w("")
        w(
            "`gregorctl perf produce --record-size B --acks A --connections P --duration "
            f"{machine['seconds']}`: unthrottled, Kafka's producer defaults (batch.size "
            "16384, linger.ms 5, max.in.flight 5, no compression), null keys; P producers "
            "(connections) on a fresh topic with P partitions, one each. Throughput counts "
            "record values; latency is from when a record was due to its acknowledgement. "
            "The broker leaves flushing to the page cache (Kafka's default), so acks=-1 "
            "(all in-sync replicas: this broker alone) waits for the same append as acks=1."
        )
        w("")
        w(
            "| record | acks | producers | MB/s | runs | records/s | p50 ms | p99 ms "
            "| broker CPU | broker CPU µs/request | client CPU | of loopback | of disk (direct) "
            "| of disk (fdatasync) |"
        )
        w(
            "| ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
            "| ---: | ---: |"
        )
        for key in sorted(produce, key=produce_order):
            rs = ok(produce[key])
            size, acks, producers = key.split("/")
            mb = [r["summary"]["mb_per_sec"] for r in rs]
            rec = median([r["summary"]["records_per_sec"] for r in rs])
            p50 = median([r["summary"]["latency_ms"]["p50"] for r in rs])
            p99 = median([r["summary"]["latency_ms"]["p99"] for r in rs])
            bcpu = median([cores(r["broker_cpu_s"], r["summary"]["duration_s"]) for r in rs])
            ccpu = median([cores(r["client_cpu_s"], r["summary"]["duration_s"]) for r in rs])
            per = median([per_request(r) for r in rs])
            m = median(mb)
            w(
                f"| {size_name(size)} | {acks} | {producers} | **{fmt(m)}** | {spread_f(mb)} "
                f"| {fmt(rec, 0)} | {ms(p50)} | {ms(p99)} | {fmt(bcpu, 2)} | {fmt(per, 1)} "
                f"| {fmt(ccpu, 2)} "
                f"| {pct(m, loop)} | {pct(m, disk)} | {pct(m, disk_sync)} |"
                + failures(produce[key])
            )
        w("")
        w(
            "Broker and client CPU are in cores (CPU seconds per second of the run; the "
            f"machine has {machine['cores']})."
        )
        w("")

    fetch = by_key("fetch")
    if fetch:
        w("## Fetch (issue 3)")
        w("")
        w(
            f"`gregorctl perf consume` reads a prepared {machine['fetch_mib']} MiB log (one "
            "partition, written by `perf produce` with the defaults above, then read several "
            "times so it is in the page cache) from the earliest offset to the end: one "
            "connection, one Fetch in flight, 1 MiB per partition per fetch (Kafka's "
            "max.partition.fetch.bytes). \"Batches MB/s\" counts the `records` bytes on the "
            "wire (what the broker served), \"values MB/s\" the record values (what Kafka's "
            "consumer perf tool reports). Latency is the fetch round trip."
        )
        w("")
        w(
            "| record | batches MB/s | runs | values MB/s | records/s | fetches | p50 ms | p99 ms "
            "| broker CPU | client CPU | of loopback | of page-cache read |"
        )
        w("| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for key in sorted(fetch, key=lambda k: int(k)):
            rs = ok(fetch[key])
            bmb = [r["summary"].get("batch_mb_per_sec") for r in rs]
            m = median(bmb)
            vmb = median([r["summary"]["mb_per_sec"] for r in rs])
            rec = median([r["summary"]["records_per_sec"] for r in rs])
            fetches = median([r["summary"]["fetches"] for r in rs])
            p50 = median([r["summary"]["fetch_latency_ms"]["p50"] for r in rs])
            p99 = median([r["summary"]["fetch_latency_ms"]["p99"] for r in rs])
            bcpu = median([cores(r["broker_cpu_s"], r["summary"]["duration_s"]) for r in rs])
            ccpu = median([cores(r["client_cpu_s"], r["summary"]["duration_s"]) for r in rs])
            w(
                f"| {size_name(key)} | **{fmt(m)}** | {spread_f(bmb)} | {fmt(vmb)} | {fmt(rec, 0)} "
                f"| {fmt(fetches, 0)} | {ms(p50)} | {ms(p99)} | {fmt(bcpu, 2)} | {fmt(ccpu, 2)} "
                f"| {pct(m, loop)} | {pct(m, cache)} |" + failures(fetch[key])
            )
        w("")

    if copies:
        w("## Zero copy on the fetch path (issue 3)")
        w("")
        w(
            "The broker is restarted under `scripts/bench/copycount.c`, an `LD_PRELOAD` library "
            "that counts the bytes passed to `memcpy`, `memmove` and moving `realloc`s (every "
            "user-space copy of a runtime-sized buffer in a Rust program goes through one of "
            "them), and the bytes zero-filled by `memset` and by `calloc` of 4 KiB or more "
            "(`vec![0; n]`, `BytesMut::zeroed`); the kernel's `/proc/PID/io` counts the bytes "
            "read from files (`rchar`). Snapshots are taken before and after each phase. \"Per "
            "byte\" divides by the record-batch bytes the phase served (fetch) or received "
            "(produce). The produce phase is the control: it shows the counter sees copies "
            "where there are some."
        )
        w("")
        w(
            "| phase | batch bytes | user-space copies per byte | of which copies ≥ 4 KiB "
            "| zero-filled per byte | file bytes read per byte | MB/s under the counter |"
        )
        w("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for c in copies:
            d = c["delta"]
            served = max(c["served_bytes"], 1)
            every = sum(d.get(f"{k}_bytes", 0) for k in ("memcpy", "memmove", "realloc"))
            large = sum(d.get(f"{k}_large_bytes", 0) for k in ("memcpy", "memmove", "realloc"))
            zeroed = d.get("memset_bytes", 0) + d.get("calloc_large_bytes", 0)
            w(
                f"| {c['phase']} | {c['served_bytes']:,} | **{every / served:.4f}** "
                f"| {large / served:.4f} | {zeroed / served:.4f} "
                f"| {d.get('rchar', 0) / served:.3f} | {fmt(c.get('mib_per_sec'))} |"
            )
        w("")

    requests = by_key("requests")
    if requests:
        w("## Request rate (issue 3)")
        w("")
        w(
            "`gregorctl perf requests --api A --connections N --in-flight "
            f"{machine['in_flight']} --duration {machine['seconds']}`: N connections to "
            f"the broker, each keeping {machine['in_flight']} requests outstanding (the "
            "oldest is awaited, then replaced); every response decoded and checked. "
            "Each API at the highest version both sides support; Metadata for every topic "
            "(the two prepared fetch topics). Client and broker share the machine's cores, so "
            "the client's CPU is part of the ceiling here: the broker's CPU per request is "
            "the figure to compare across changes."
        )
        w("")
        w(
            "| API | connections | requests/s | runs | p50 ms | p99 ms "
            "| broker CPU µs/request | broker CPU | client CPU |"
        )
        w("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
        for key in sorted(requests, key=requests_order):
            rs = ok(requests[key])
            api, conns = key.split("/")
            versions = sorted({r["summary"]["version"] for r in rs})
            if rs:
                api = f"{rs[0]['summary']['api']} v{'/'.join(str(v) for v in versions)}"
            rate = [r["summary"]["requests_per_sec"] for r in rs]
            p50 = median([r["summary"]["latency_ms"]["p50"] for r in rs])
            p99 = median([r["summary"]["latency_ms"]["p99"] for r in rs])
            per = median([per_request(r) for r in rs])
            bcpu = median([cores(r["broker_cpu_s"], r["summary"]["duration_s"]) for r in rs])
            ccpu = median([cores(r["client_cpu_s"], r["summary"]["duration_s"]) for r in rs])
            w(
                f"| {api} | {conns} | **{fmt(median(rate), 0)}** | {spread(rate)} "
                f"| {ms(p50)} | {ms(p99)} | {fmt(per, 2)} | {fmt(bcpu, 2)} | {fmt(ccpu, 2)} |"
                + failures(requests[key])
            )
        w("")

    w(END)
    return "\n".join(out)


def per_request(r):
    """Broker CPU microseconds per request of a run."""
    requests = r["summary"].get("requests")
    if r["broker_cpu_s"] is None or not requests:
        return None
    return 1e6 * r["broker_cpu_s"] / requests


def cores(cpu_s, duration_s):
    if cpu_s is None or not duration_s:
        return None
    return cpu_s / duration_s


def failures(rs):
    failed = [r for r in rs if r.get("error") or not r.get("summary")]
    return f" ({len(failed)} failed run(s))" if failed else ""


def produce_order(key):
    size, acks, producers = key.split("/")
    return (int(size), -int(acks), int(producers))


def requests_order(key):
    api, conns = key.split("/")
    return (api, int(conns))


def cmd_report(args):
    with open(args.results) as f:
        results = [json.loads(line) for line in f if line.strip()]
    with open(args.machine) as f:
        machine = json.load(f)
    section = render(results, machine)
    with open(args.markdown) as f:
        text = f.read()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + section + tail
    else:
        text = (
            text.rstrip("\n")
            + "\n\n# Broker benchmarks: `scripts/bench.sh`\n\n"
            + INTRO
            + "\n\n"
            + section
            + "\n"
        )
    with open(args.markdown, "w") as f:
        f.write(text)
    print(f"wrote the bench.sh section of {args.markdown}")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run")
    run.add_argument("results")
    run.add_argument("--bench", required=True)
    run.add_argument("--key", required=True)
    run.add_argument("--round", type=int, required=True)
    run.add_argument("--broker-pid", type=int)
    run.set_defaults(func=cmd_run)

    ceiling = sub.add_parser("ceiling")
    ceiling.add_argument("results")
    ceiling.add_argument("--name", required=True)
    ceiling.add_argument("--round", type=int, required=True)
    ceiling.add_argument("--mib-per-sec", type=float, required=True)
    ceiling.add_argument("--method", default="")
    ceiling.set_defaults(func=cmd_ceiling)

    loopback = sub.add_parser("loopback")
    loopback.add_argument("seconds", type=float)
    loopback.set_defaults(func=cmd_loopback)

    copies = sub.add_parser("copies")
    copies.add_argument("results")
    copies.add_argument("--phase", required=True)
    copies.add_argument("--before", required=True)
    copies.add_argument("--after", required=True)
    copies.add_argument("--served-bytes", type=int, required=True)
    copies.add_argument("--mib-per-sec", type=float)
    copies.set_defaults(func=cmd_copies)

    report = sub.add_parser("report")
    report.add_argument("results")
    report.add_argument("machine")
    report.add_argument("markdown")
    report.set_defaults(func=cmd_report)

    argv = sys.argv[1:]
    cmd = []
    if "--" in argv:
        at = argv.index("--")
        argv, cmd = argv[:at], argv[at + 1 :]
    args = parser.parse_args(argv)
    args.cmd = cmd
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
