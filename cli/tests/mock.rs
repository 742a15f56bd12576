//! The client paths the real broker cannot exercise yet (Produce, consumer groups), against
//! `support::mock::MockBroker`, which speaks the newest version of every API gregorctl
//! uses (Produce v13 and Fetch v18 with topic ids, OffsetFetch v10 groups, ...). The same
//! checks run against the real broker in `broker.rs` once it serves these APIs.

mod support;

use serde_json::Value;
use support::gregorctl;
use support::mock::MockBroker;

fn ctl(mock: &MockBroker, args: &[&str]) -> support::Run {
    let mut all = vec!["--bootstrap-server", mock.bootstrap.as_str()];
    all.extend_from_slice(args);
    gregorctl(&all, None)
}

fn ctl_stdin(mock: &MockBroker, args: &[&str], stdin: &str) -> support::Run {
    let mut all = vec!["--bootstrap-server", mock.bootstrap.as_str()];
    all.extend_from_slice(args);
    gregorctl(&all, Some(stdin))
}

fn summary(run: &support::Run) -> Value {
    run.ok();
    serde_json::from_str(run.stdout.lines().last().expect("a summary")).expect("JSON summary")
}

#[test]
fn produce_routes_by_key_and_consume_reads_back() {
    let mock = MockBroker::start(&[("t", 3)]);
    let input: String = (0..30).map(|i| format!("key{i}\tvalue{i}\n")).collect();
    let run = ctl_stdin(
        &mock,
        &[
            "produce",
            "t",
            "--parse-key",
            "--header",
            "h=1",
            "--compression-codec",
            "snappy",
            "--json",
        ],
        &input,
    );
    run.ok();
    let acked: i64 = run
        .json_lines()
        .iter()
        .map(|l| l["records"].as_i64().unwrap())
        .sum();
    assert_eq!(acked, 30);
    assert_eq!(mock.stored("t"), 30);
    let run = ctl(
        &mock,
        &[
            "consume",
            "t",
            "--from-beginning",
            "--max-messages",
            "30",
            "--json",
        ],
    );
    run.ok();
    let records = run.json_lines();
    assert_eq!(records.len(), 30);
    for r in &records {
        let key = r["key"].as_str().unwrap();
        assert_eq!(r["value"].as_str().unwrap(), key.replace("key", "value"));
        assert_eq!(r["headers"][0], serde_json::json!(["h", "1"]));
    }
    let partitions: std::collections::BTreeSet<i64> = records
        .iter()
        .map(|r| r["partition"].as_i64().unwrap())
        .collect();
    assert!(partitions.len() > 1, "keys should spread over partitions");

    // Kafka's default partitioner: murmur2("21") = -973932308, positive 1173551340, % 3 = 0.
    ctl_stdin(
        &mock,
        &["produce", "t", "--key-separator", "=", "--json"],
        "21=x\n",
    )
    .ok();
    let last = ctl(
        &mock,
        &["get-offsets", "--topic", "t", "--partitions", "0", "--json"],
    )
    .json();
    let p0 = records.iter().filter(|r| r["partition"] == 0).count() as i64;
    assert_eq!(last[0]["offset"], p0 + 1);

    // acks=0 and an explicit partition.
    ctl_stdin(
        &mock,
        &["produce", "t", "--acks", "0", "--partition", "2"],
        "x\ny\n",
    )
    .ok();
    let got = ctl(&mock, &["get-offsets", "--topic", "t", "--partitions", "2"]);
    let line = got.ok().trim().to_string();
    let before = records.iter().filter(|r| r["partition"] == 2).count() as i64;
    assert_eq!(line, format!("t:2:{}", before + 2));
}

#[test]
fn perf_produce_and_consume_counts_match_the_broker() {
    let mock = MockBroker::start(&[("perf", 4)]);
    let run = ctl(
        &mock,
        &[
            "perf",
            "produce",
            "--topic",
            "perf",
            "--num-records",
            "50000",
            "--record-size",
            "100",
            "--throughput",
            "-1",
            "--max-in-flight",
            "8",
            "--connections",
            "2",
            "--producer-props",
            "linger.ms=0",
            "compression.type=lz4",
        ],
    );
    let s = summary(&run);
    println!("perf produce against the mock: {s}");
    assert_eq!(s["records"], 50000, "{s}");
    assert_eq!(s["errors"], 0);
    assert_eq!(s["bytes"], 5_000_000);
    assert_eq!(s["settings"]["compression"], "lz4");
    assert_eq!(s["settings"]["max_in_flight"], 8);
    assert!(s["latency_ms"]["p999"].as_f64().unwrap() >= s["latency_ms"]["p50"].as_f64().unwrap());
    assert_eq!(mock.stored("perf"), 50000);

    // Throttled for a bounded time.
    let run = ctl(
        &mock,
        &[
            "perf",
            "produce",
            "--topic",
            "perf",
            "--throughput",
            "2000",
            "--duration",
            "1.5",
            "--acks",
            "1",
        ],
    );
    let t = summary(&run);
    let throttled = t["records"].as_i64().unwrap();
    assert!((2000..=3500).contains(&throttled), "{t}");
    assert_eq!(mock.stored("perf"), 50000 + throttled);

    // acks=0 counts what was written.
    let run = ctl(
        &mock,
        &[
            "perf",
            "produce",
            "--topic",
            "perf",
            "--num-records",
            "1000",
            "--acks",
            "0",
        ],
    );
    assert_eq!(summary(&run)["records"], 1000);

    let total = mock.stored("perf");
    let run = ctl(
        &mock,
        &[
            "perf",
            "consume",
            "--topic",
            "perf",
            "--fetch-size",
            "65536",
        ],
    );
    let c = summary(&run);
    println!("perf consume against the mock: {c}");
    assert_eq!(c["records"].as_i64().unwrap(), total, "{c}");
    let run = ctl(
        &mock,
        &["perf", "consume", "--topic", "perf", "--messages", "10000"],
    );
    assert!(summary(&run)["records"].as_i64().unwrap() >= 10000);
}

#[test]
fn consumer_groups_commit_and_resume() {
    let mock = MockBroker::start(&[("g", 2)]);
    let input: String = (0..20).map(|i| format!("v{i}\n")).collect();
    ctl_stdin(&mock, &["produce", "g", "--batch-size", "5"], &input).ok();
    assert_eq!(mock.stored("g"), 20);
    let first = ctl(
        &mock,
        &[
            "consume",
            "g",
            "--group",
            "readers",
            "--from-beginning",
            "--max-messages",
            "7",
        ],
    );
    assert_eq!(first.ok().lines().count(), 7);
    let described = ctl(
        &mock,
        &["groups", "describe", "--group", "readers", "--json"],
    )
    .json();
    let committed: i64 = described["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["committed_offset"].as_i64().unwrap())
        .sum();
    assert_eq!(committed, 7);
    let lag: i64 = described["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["lag"].as_i64().unwrap())
        .sum();
    assert_eq!(lag, 13);
    let rest = ctl(
        &mock,
        &["consume", "g", "--group", "readers", "--timeout-ms", "1500"],
    );
    assert_eq!(rest.ok().lines().count(), 13);
    let list = ctl(&mock, &["groups", "list", "--json"]).json();
    assert_eq!(list[0]["group_id"], "readers");
    let table = ctl(&mock, &["groups", "describe", "--group", "readers"]);
    assert!(table.ok().contains("CURRENT-OFFSET"), "{}", table.stdout);
    ctl(&mock, &["groups", "describe", "--group", "nobody"]).fails_with("GROUP_ID_NOT_FOUND (69)");
}

#[test]
fn version_negotiation_falls_back_and_explains_mismatches() {
    use gregor_protocol::ApiKey;
    // ApiVersions only up to v2 (KIP-511 fallback), Produce only in versions gregorctl
    // does not speak, Fetch only up to v11 (names, no topic ids).
    let mock = MockBroker::start_with_versions(
        &[("t", 1)],
        &[
            (ApiKey::ApiVersions, 0, 2),
            (ApiKey::Produce, 0, 2),
            (ApiKey::Fetch, 4, 11),
        ],
    );
    let run = ctl(&mock, &["api-versions"]);
    let text = run.ok();
    assert!(text.contains("answered ApiVersions v2"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("Produce") && l.ends_with("none")),
        "{text}"
    );
    ctl_stdin(&mock, &["produce", "t"], "x\n").fails_with(&format!(
        "no common version of Produce (API key 0) with the broker at {}: gregorctl supports v3-v13, the broker v0-v2",
        mock.bootstrap
    ));
    // Fetch v11 still reads (by topic name).
    let run = ctl(
        &mock,
        &["consume", "t", "--from-beginning", "--timeout-ms", "300"],
    );
    run.ok();
}
