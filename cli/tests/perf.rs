//! `gregorctl perf produce|consume` against the real `gregor` broker: every run is
//! bounded (a record count, with a duration as the backstop), and its JSON summary must
//! match what the broker stored, read back with `get-offsets` and with `perf consume`.
//! No assertion is about speed: the machine may be slow and loaded.

mod support;

use serde_json::Value;
use support::{Broker, DataDir, Run};

/// The JSON summary (the last stdout line) of a perf run, which must have succeeded.
fn summary(run: &Run) -> Value {
    run.ok();
    let last = run.stdout.lines().last().expect("a summary line");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("summary is not JSON ({e}): {last}"))
}

fn count(value: &Value) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| panic!("not a count: {value}"))
}

#[test]
fn perf_produce_counts_match_what_the_broker_stored() {
    let broker = Broker::start_empty();
    broker.create_topic("perf", 4, &[]);

    // Unthrottled, pipelined, compressed; --duration only as a backstop.
    let s = summary(&broker.ctl(&[
        "perf",
        "produce",
        "--topic",
        "perf",
        "--num-records",
        "20000",
        "--record-size",
        "100",
        "--throughput",
        "-1",
        "--duration",
        "30",
        "--max-in-flight",
        "8",
        "--connections",
        "2",
        "--producer-props",
        "linger.ms=0",
        "compression.type=lz4",
    ]));
    println!("unthrottled: {s}");
    assert_eq!(s["mode"], "produce");
    assert_eq!(s["topic"], "perf");
    assert_eq!(s["errors"], 0, "{s}");
    let mut total = count(&s["records"]);
    assert!(0 < total && total <= 20000, "{s}");
    assert_eq!(count(&s["bytes"]), total * 100);
    assert!(count(&s["requests"]) >= total / count(&s["settings"]["records_per_batch"]));
    assert_eq!(s["settings"]["compression"], "lz4");
    assert_eq!(s["settings"]["linger_ms"], 0);
    assert_eq!(s["settings"]["acks"], -1);
    assert_eq!(s["settings"]["max_in_flight"], 8);
    assert_eq!(s["settings"]["connections"], 2);
    let latency = &s["latency_ms"];
    for key in ["p50", "p95", "p99", "p999", "max"] {
        assert!(latency[key].as_f64().unwrap() > 0.0, "{s}");
    }
    assert!(latency["p50"].as_f64() <= latency["p99"].as_f64(), "{s}");
    assert!(latency["p99"].as_f64() <= latency["p999"].as_f64(), "{s}");
    assert_eq!(broker.stored("perf"), total, "{s}");
    // Four partitions, all used.
    assert!(broker.end_offsets("perf").iter().all(|&o| o > 0));

    // Throttled by a count: exactly that many, at about the rate.
    let s = summary(&broker.ctl(&[
        "perf",
        "produce",
        "--topic",
        "perf",
        "--num-records",
        "300",
        "--throughput",
        "500",
        "--duration",
        "30",
    ]));
    println!("throttled by count: {s}");
    assert_eq!(s["records"], 300, "{s}");
    assert_eq!(s["errors"], 0);
    assert_eq!(s["settings"]["throughput"], 500.0);
    total += 300;
    assert_eq!(broker.stored("perf"), total);

    // Throttled by duration, acks=1: never more records than the rate allows over the
    // run (plus one linger's worth), and every one of them stored.
    let s = summary(&broker.ctl(&[
        "perf",
        "produce",
        "--topic",
        "perf",
        "--record-size",
        "200",
        "--throughput",
        "1000",
        "--duration",
        "2",
        "--acks",
        "1",
        "--compression",
        "zstd",
    ]));
    println!("throttled by duration: {s}");
    let throttled = count(&s["records"]);
    let linger_s = s["settings"]["linger_ms"].as_f64().unwrap() / 1000.0;
    assert!(
        0 < throttled && throttled as f64 <= 1000.0 * (2.0 + linger_s) + 1.0,
        "{s}"
    );
    assert_eq!(s["errors"], 0);
    assert_eq!(s["settings"]["acks"], 1);
    assert_eq!(count(&s["bytes"]), throttled * 200);
    total += throttled;
    assert_eq!(broker.stored("perf"), total);

    // acks=0 counts what was written; the broker stores it soon after.
    let s = summary(&broker.ctl(&[
        "perf",
        "produce",
        "--topic",
        "perf",
        "--num-records",
        "5000",
        "--acks",
        "0",
        "--duration",
        "30",
    ]));
    println!("acks=0: {s}");
    assert_eq!(s["records"], 5000, "{s}");
    assert_eq!(s["settings"]["acks"], 0);
    total += 5000;
    broker.wait_stored("perf", total);

    // perf consume reads back every record the runs reported, on one or two connections.
    let c = summary(&broker.ctl(&["perf", "consume", "--topic", "perf"]));
    println!("consume: {c}");
    assert_eq!(c["mode"], "consume");
    assert_eq!(count(&c["records"]), total, "{c}");
    assert_eq!(
        count(&c["bytes"]),
        (total - throttled) * 100 + throttled * 200,
        "{c}"
    );
    assert!(count(&c["fetches"]) >= 1);
    let c = summary(&broker.ctl(&[
        "perf",
        "consume",
        "--topic",
        "perf",
        "--connections",
        "2",
        "--fetch-size",
        "65536",
    ]));
    assert_eq!(count(&c["records"]), total, "{c}");
    assert_eq!(c["connections"], 2);
    assert_eq!(c["fetch_size"], 65536);
}

#[test]
fn perf_consume_stops_at_a_count_or_a_duration() {
    let broker = Broker::start_empty();
    broker.create_topic("read", 2, &[]);
    let s = summary(&broker.ctl(&[
        "perf",
        "produce",
        "--topic",
        "read",
        "--num-records",
        "4000",
        "--record-size",
        "50",
        "--duration",
        "30",
    ]));
    assert_eq!(s["records"], 4000, "{s}");
    assert_eq!(broker.stored("read"), 4000);

    // A count: at least that many (whole fetches), never more than there are.
    let c = summary(&broker.ctl(&[
        "perf",
        "consume",
        "--topic",
        "read",
        "--messages",
        "1000",
        "--fetch-size",
        "4096",
    ]));
    let read = count(&c["records"]);
    assert!((1000..=4000).contains(&read), "{c}");
    assert_eq!(count(&c["bytes"]), read * 50);

    // A duration from the latest offset, with nothing arriving: nothing read, and done.
    let c = summary(&broker.ctl(&[
        "perf",
        "consume",
        "--topic",
        "read",
        "--from-latest",
        "--duration",
        "1",
    ]));
    assert_eq!(c["records"], 0, "{c}");

    // The user's errors.
    broker
        .ctl(&["perf", "produce", "--topic", "read"])
        .fails_with("give --num-records, --duration, or both");
    broker
        .ctl(&["perf", "consume", "--topic", "nope"])
        .fails_with("UNKNOWN_TOPIC_OR_PARTITION (3)");
    assert_eq!(broker.stored("read"), 4000);
}

#[test]
fn perf_produce_creates_a_missing_topic_only_where_the_broker_allows_it() {
    // As Kafka's perf tool: Metadata with allow_auto_topic_creation, so the broker's
    // auto.create.topics.enable decides (num.partitions=1 in the test broker).
    let broker = Broker::start_empty();
    let s = summary(&broker.ctl(&[
        "perf",
        "produce",
        "--topic",
        "created",
        "--num-records",
        "100",
        "--record-size",
        "10",
        "--throughput",
        "-1",
    ]));
    assert_eq!(count(&s["records"]), 100, "{s}");
    assert_eq!(broker.end_offsets("created"), [100]);

    let broker =
        Broker::start(DataDir::empty().broker_config("auto.create.topics.enable", "false"));
    broker
        .ctl(&["perf", "produce", "--topic", "nope", "--num-records", "1"])
        .fails_with("topic \"nope\": UNKNOWN_TOPIC_OR_PARTITION (3)");
    broker
        .ctl(&["topics", "list"])
        .ok()
        .lines()
        .for_each(|line| assert!(!line.contains("nope"), "{line}"));
}
