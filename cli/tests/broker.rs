//! `gregorctl` against the real `gregor` broker (see `support` for how the binary is
//! found), on data directories written with gregor-protocol in Kafka's layout.
//!
//! APIs the broker may or may not serve yet (CreateTopics, Produce, configs, groups, ...)
//! are probed with `gregorctl api-versions`: served, the command is checked end to end;
//! not served, the test checks gregorctl's error ("the broker at ... does not support X
//! (API key N)", exit code 1) and prints a `note:` line.

mod support;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use gregor_protocol::records::Compression;
use serde_json::Value;
use support::{Broker, DataDir, TopicSpec, free_port, gregorctl, kafka_uuid, topic_id};

fn fixture() -> DataDir {
    DataDir::with_topics(vec![
        TopicSpec::new("events", 3)
            .records(25)
            .config("retention.ms", "3600000"),
        TopicSpec::new("compressed", 1)
            .records(40)
            .compression(Compression::Zstd),
        TopicSpec::new("empty", 2),
    ])
}

fn note(text: &str) {
    println!("note: {text}");
}

/// The error gregorctl gives for an API the broker lacks.
fn unsupported(api: &str) -> String {
    format!("does not support {api} (API key {})", support::api_key(api))
}

#[test]
fn a_broker_that_is_down_gives_connection_refused() {
    let port = free_port();
    for command in [&["api-versions"][..], &["metadata"], &["topics", "list"]] {
        let mut args = vec![
            "--bootstrap-server".to_string(),
            format!("127.0.0.1:{port}"),
        ];
        args.extend(command.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = gregorctl(&args, None);
        run.fails_with(&format!(
            "cannot connect to 127.0.0.1:{port}: connection refused"
        ));
        assert!(run.elapsed < Duration::from_secs(10), "{:?}", run.elapsed);
        assert!(run.stdout.is_empty());
    }
}

#[test]
fn a_silent_peer_times_out_instead_of_hanging() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts and reads, never answers.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten().take(4) {
            held.push(stream);
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    let run = gregorctl(
        &[
            "--bootstrap-server",
            &addr.to_string(),
            "--request-timeout-ms",
            "500",
            "api-versions",
        ],
        None,
    );
    run.fails_with("no response to ApiVersions within 500ms");
    assert!(run.elapsed < Duration::from_secs(10), "{:?}", run.elapsed);
}

#[test]
fn a_non_kafka_peer_is_named_as_such() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Some(Ok(mut stream)) = listener.incoming().next() {
            let mut buf = [0u8; 64];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        }
    });
    let run = gregorctl(&["--bootstrap-server", &addr.to_string(), "metadata"], None);
    let stderr = run.fails_with(&format!("cannot connect to {addr}"));
    assert!(stderr.contains("is this a Kafka listener?"), "{stderr}");
}

#[test]
fn api_versions_as_table_and_json() {
    let data = fixture();
    let broker = Broker::start(&data);
    let table = broker.ctl(&["api-versions"]);
    let text = table.ok();
    assert!(text.contains("answered ApiVersions v"), "{text}");
    for api in ["ApiVersions", "Metadata", "Fetch"] {
        assert!(
            text.lines().any(|l| l.starts_with(api)),
            "{api} missing:\n{text}"
        );
    }
    let json = broker.ctl(&["api-versions", "--json"]).json();
    assert_eq!(json["error_code"], 0);
    let keys: BTreeSet<i64> = json["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["api_key"].as_i64().unwrap())
        .collect();
    assert!(keys.is_superset(&BTreeSet::from([1, 3, 18])), "{keys:?}");
}

#[test]
fn metadata_and_describe_topic() {
    let data = fixture();
    let broker = Broker::start(&data);
    let json = broker.ctl(&["metadata", "--json"]).json();
    assert_eq!(json["brokers"][0]["node_id"], 1);
    assert_eq!(json["brokers"][0]["port"], i64::from(data.port));
    let topics: BTreeSet<&str> = json["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(topics, BTreeSet::from(["compressed", "empty", "events"]));
    let events = json["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "events")
        .unwrap();
    assert_eq!(events["partitions"].as_array().unwrap().len(), 3);
    assert_eq!(events["partitions"][0]["leader_id"], 1);
    assert_eq!(
        events["topic_id"].as_str().unwrap(),
        topic_id("events").to_string()
    );

    let only = broker
        .ctl(&["metadata", "--topic", "empty", "--json"])
        .json();
    assert_eq!(only["topics"].as_array().unwrap().len(), 1);
    let table = broker.ctl(&["metadata"]);
    let text = table.ok();
    assert!(text.contains(&kafka_uuid(&topic_id("events"))), "{text}");
    assert!(
        text.lines().filter(|l| l.starts_with("events ")).count() == 3,
        "{text}"
    );

    let described = broker.ctl(&["describe-topic", "events", "--json"]).json();
    assert_eq!(described["topics"][0]["name"], "events");
    assert_eq!(
        described["topics"][0]["partitions"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let text = broker.ctl(&["describe-topic", "events"]);
    assert!(text.ok().contains("partitions 3"), "{}", text.stdout);
    broker.ctl(&["describe-topic", "nope"]).fails_with(
        "topic \"nope\": UNKNOWN_TOPIC_OR_PARTITION (3): the topic or partition does not exist; create it or check the name",
    );
}

#[test]
fn topics_list_and_offsets() {
    let data = fixture();
    let broker = Broker::start(&data);
    let list = broker.ctl(&["topics", "list"]);
    assert_eq!(
        list.ok().lines().collect::<Vec<_>>(),
        ["compressed", "empty", "events"]
    );
    let json = broker.ctl(&["topics", "list", "--json"]).json();
    assert_eq!(json[2]["name"], "events");
    assert_eq!(json[2]["partitions"], 3);

    let latest = broker.ctl(&["get-offsets", "--topic", "events"]);
    assert_eq!(
        latest.ok().lines().collect::<Vec<_>>(),
        ["events:0:25", "events:1:25", "events:2:25"]
    );
    let earliest = broker
        .ctl(&[
            "get-offsets",
            "--topic",
            "compressed",
            "--time",
            "earliest",
            "--json",
        ])
        .json();
    assert_eq!(earliest[0]["offset"], 0);
    let some = broker
        .ctl(&[
            "get-offsets",
            "--topic",
            "events",
            "--partitions",
            "1",
            "--json",
        ])
        .json();
    assert_eq!(some.as_array().unwrap().len(), 1);
    assert_eq!(some[0]["offset"], 25);
    broker
        .ctl(&["get-offsets", "--topic", "events", "--partitions", "7"])
        .fails_with("UNKNOWN_TOPIC_OR_PARTITION");
}

#[test]
fn consume_prints_values_keys_and_json() {
    let data = fixture();
    let broker = Broker::start(&data);
    let run = broker.ctl(&[
        "consume",
        "events",
        "--from-beginning",
        "--partition",
        "0",
        "--max-messages",
        "25",
    ]);
    let values: Vec<String> = run.ok().lines().map(str::to_string).collect();
    let expected: Vec<String> = (0..25).map(|i| format!("value-0-{i}")).collect();
    assert_eq!(values, expected);
    assert!(
        run.stderr.contains("Processed a total of 25 messages"),
        "{}",
        run.stderr
    );

    let run = broker.ctl(&[
        "consume",
        "events",
        "--partition",
        "1",
        "--offset",
        "20",
        "--max-messages",
        "3",
        "--print-key",
        "--print-offset",
        "--key-separator",
        "|",
    ]);
    assert_eq!(
        run.ok().lines().collect::<Vec<_>>(),
        [
            "Offset:20|k-1-20|value-1-20",
            "Offset:21|k-1-21|value-1-21",
            "Offset:22|k-1-22|value-1-22"
        ]
    );

    // Every partition, JSON lines, until 2 s pass without a record.
    let run = broker.ctl(&[
        "consume",
        "events",
        "--from-beginning",
        "--timeout-ms",
        "2000",
        "--json",
    ]);
    run.ok();
    let lines = run.json_lines();
    assert_eq!(lines.len(), 75);
    let first = lines
        .iter()
        .find(|l| l["partition"] == 2 && l["offset"] == 3)
        .unwrap();
    assert_eq!(first["key"], "k-2-3");
    assert_eq!(first["value"], "value-2-3");
    assert_eq!(first["headers"][0][0], "seq");
    assert_eq!(first["headers"][0][1], "3");
    assert_eq!(first["timestamp"], support::BASE_TIMESTAMP + 3);

    // zstd batches decode.
    let run = broker.ctl(&[
        "consume",
        "compressed",
        "--from-beginning",
        "--max-messages",
        "40",
    ]);
    assert_eq!(run.ok().lines().last(), Some("value-0-39"));

    // From the latest offset nothing arrives: the idle timeout ends the run cleanly.
    let run = broker.ctl(&["consume", "events", "--timeout-ms", "700"]);
    assert_eq!(run.ok(), "");
    assert!(run.stderr.contains("Processed a total of 0 messages"));

    broker
        .ctl(&["consume", "missing", "--max-messages", "1"])
        .fails_with("topic \"missing\": UNKNOWN_TOPIC_OR_PARTITION (3)");
}

#[test]
fn topic_admin_or_a_clear_unsupported_error() {
    let data = fixture();
    let broker = Broker::start(&data);
    if broker.supports("CreateTopics") {
        let run = broker.ctl(&[
            "topics",
            "create",
            "--topic",
            "made",
            "--partitions",
            "4",
            "--replication-factor",
            "1",
            "--config",
            "retention.ms=60000",
            "--json",
        ]);
        let json = run.json();
        assert_eq!(json["topics"][0]["error_code"], 0, "{json}");
        let metadata = broker
            .ctl(&["metadata", "--topic", "made", "--json"])
            .json();
        assert_eq!(
            metadata["topics"][0]["partitions"]
                .as_array()
                .unwrap()
                .len(),
            4
        );
        broker
            .ctl(&["topics", "create", "--topic", "made", "--partitions", "1"])
            .fails_with("TOPIC_ALREADY_EXISTS (36)");
        broker
            .ctl(&["topics", "create", "--topic", "made", "--if-not-exists"])
            .ok();
        broker
            .ctl(&[
                "topics",
                "create",
                "--topic",
                "bad name!",
                "--partitions",
                "1",
            ])
            .fails_with("INVALID_TOPIC_EXCEPTION (17)");
        if broker.supports("CreatePartitions") {
            broker
                .ctl(&["topics", "alter", "--topic", "made", "--partitions", "6"])
                .ok();
            let metadata = broker
                .ctl(&["metadata", "--topic", "made", "--json"])
                .json();
            assert_eq!(
                metadata["topics"][0]["partitions"]
                    .as_array()
                    .unwrap()
                    .len(),
                6
            );
        } else {
            broker
                .ctl(&["topics", "alter", "--topic", "made", "--partitions", "6"])
                .fails_with(&unsupported("CreatePartitions"));
            note("the broker lacks CreatePartitions: checked the error message");
        }
        if broker.supports("DeleteTopics") {
            broker.ctl(&["topics", "delete", "--topic", "made"]).ok();
            let list = broker.ctl(&["topics", "list"]);
            assert!(!list.ok().lines().any(|l| l == "made"));
            broker
                .ctl(&["topics", "delete", "--topic", "made"])
                .fails_with("UNKNOWN_TOPIC_OR_PARTITION (3)");
            broker
                .ctl(&["topics", "delete", "--topic", "made", "--if-exists"])
                .ok();
        } else {
            broker
                .ctl(&["topics", "delete", "--topic", "made"])
                .fails_with(&unsupported("DeleteTopics"));
            note("the broker lacks DeleteTopics: checked the error message");
        }
    } else {
        broker
            .ctl(&["topics", "create", "--topic", "made", "--partitions", "4"])
            .fails_with(&unsupported("CreateTopics"));
        broker
            .ctl(&["topics", "alter", "--topic", "events", "--partitions", "6"])
            .fails_with(&unsupported("CreatePartitions"));
        broker
            .ctl(&["topics", "delete", "--topic", "events"])
            .fails_with(&unsupported("DeleteTopics"));
        note(
            "the broker lacks CreateTopics: checked the error messages of topics create/alter/delete",
        );
    }
}

#[test]
fn configs_or_a_clear_unsupported_error() {
    let data = fixture();
    let broker = Broker::start(&data);
    let describe = [
        "configs",
        "describe",
        "--entity-type",
        "topics",
        "--entity-name",
        "events",
    ];
    if broker.supports("DescribeConfigs") {
        let mut args = describe.to_vec();
        args.push("--json");
        let json = broker.ctl(&args).json();
        let configs = json["results"][0]["configs"].as_array().unwrap();
        let retention = configs
            .iter()
            .find(|c| c["name"] == "retention.ms")
            .unwrap();
        assert_eq!(retention["value"], "3600000");
        let table = broker.ctl(&describe);
        assert!(table.ok().contains("retention.ms"), "{}", table.stdout);
        broker
            .ctl(&[
                "configs",
                "describe",
                "--entity-type",
                "tables",
                "--entity-name",
                "x",
            ])
            .fails_with("--entity-type \"tables\"");
    } else {
        broker
            .ctl(&describe)
            .fails_with(&unsupported("DescribeConfigs"));
        note("the broker lacks DescribeConfigs: checked the error message");
    }
    let alter = [
        "configs",
        "alter",
        "--entity-type",
        "topics",
        "--entity-name",
        "events",
        "--add-config",
        "retention.ms=1000,cleanup.policy=[delete]",
    ];
    if broker.supports("IncrementalAlterConfigs") {
        broker.ctl(&alter).ok();
        if broker.supports("DescribeConfigs") {
            let mut args = describe.to_vec();
            args.push("--json");
            let json = broker.ctl(&args).json();
            let configs = json["results"][0]["configs"].as_array().unwrap();
            let retention = configs
                .iter()
                .find(|c| c["name"] == "retention.ms")
                .unwrap();
            assert_eq!(retention["value"], "1000");
        }
    } else {
        broker
            .ctl(&alter)
            .fails_with(&unsupported("IncrementalAlterConfigs"));
        note("the broker lacks IncrementalAlterConfigs: checked the error message");
    }
}

#[test]
fn groups_or_a_clear_unsupported_error() {
    let data = fixture();
    let broker = Broker::start(&data);
    if broker.supports("ListGroups") {
        broker.ctl(&["groups", "list", "--json"]).json();
    } else {
        broker
            .ctl(&["groups", "list"])
            .fails_with(&unsupported("ListGroups"));
        note("the broker lacks ListGroups: checked the error message");
    }
    let group_apis = [
        "FindCoordinator",
        "JoinGroup",
        "OffsetFetch",
        "OffsetCommit",
        "DescribeGroups",
    ];
    if group_apis.iter().all(|api| broker.supports(api)) {
        // A member reads 10 records, commits and leaves; the next run resumes there.
        let run = broker.ctl(&[
            "consume",
            "events",
            "--group",
            "g1",
            "--from-beginning",
            "--max-messages",
            "10",
        ]);
        assert_eq!(run.ok().lines().count(), 10);
        let described = broker
            .ctl(&["groups", "describe", "--group", "g1", "--json"])
            .json();
        let committed: i64 = described["offsets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["committed_offset"].as_i64().unwrap().max(0))
            .sum();
        assert_eq!(committed, 10);
        let run = broker.ctl(&[
            "consume",
            "events",
            "--group",
            "g1",
            "--from-beginning",
            "--timeout-ms",
            "2000",
        ]);
        assert_eq!(run.ok().lines().count(), 65);
    } else {
        let missing = group_apis
            .iter()
            .find(|api| !broker.supports(api))
            .copied()
            .unwrap_or("FindCoordinator");
        let first_needed = if broker.supports("FindCoordinator") {
            missing
        } else {
            "FindCoordinator"
        };
        broker
            .ctl(&["groups", "describe", "--group", "g1"])
            .fails_with("does not support");
        broker
            .ctl(&["consume", "events", "--group", "g1", "--max-messages", "1"])
            .fails_with(&unsupported(first_needed));
        note(&format!(
            "the broker lacks {missing}: checked the errors of groups describe and consume --group"
        ));
    }
}

/// Sum of the latest offsets of a topic.
fn stored(broker: &Broker, topic: &str) -> i64 {
    broker
        .ctl(&["get-offsets", "--topic", topic, "--json"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["offset"].as_i64().unwrap())
        .sum()
}

#[test]
fn produce_then_consume_or_a_clear_unsupported_error() {
    let data = fixture();
    let broker = Broker::start(&data);
    let lines = "a:first\nb:second\nc:third\n";
    let args = [
        "produce",
        "empty",
        "--key-separator",
        ":",
        "--header",
        "origin=test",
        "--compression-codec",
        "lz4",
        "--json",
    ];
    if !broker.supports("Produce") {
        broker
            .ctl_stdin(&args, lines)
            .fails_with(&unsupported("Produce"));
        note("the broker lacks Produce: checked the error message of produce");
        return;
    }
    let run = broker.ctl_stdin(&args, lines);
    let acked: i64 = run
        .json_lines()
        .iter()
        .map(|l| l["records"].as_i64().unwrap())
        .sum();
    assert_eq!(acked, 3);
    assert_eq!(stored(&broker, "empty"), 3);
    let run = broker.ctl(&[
        "consume",
        "empty",
        "--from-beginning",
        "--max-messages",
        "3",
        "--json",
    ]);
    run.ok();
    let mut got: Vec<(String, String)> = run
        .json_lines()
        .iter()
        .map(|l| {
            assert_eq!(l["headers"][0], serde_json::json!(["origin", "test"]));
            (
                l["key"].as_str().unwrap().to_string(),
                l["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("a".into(), "first".into()),
            ("b".into(), "second".into()),
            ("c".into(), "third".into())
        ]
    );
    // A missing separator is the user's error, named with the line.
    broker
        .ctl_stdin(
            &["produce", "empty", "--key-separator", ":"],
            "no separator here\n",
        )
        .fails_with("line 1: no key separator");
}

/// The JSON summary (the last stdout line) of a perf run.
fn summary(run: &support::Run) -> Value {
    run.ok();
    let last = run.stdout.lines().last().expect("a summary line");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("summary is not JSON ({e}): {last}"))
}

#[test]
fn perf_counts_match_what_the_broker_stored() {
    let data = fixture();
    let broker = Broker::start(&data);
    // perf consume works with Fetch alone: read the fixture's records.
    let consumed = summary(&broker.ctl(&["perf", "consume", "--topic", "events"]));
    assert_eq!(consumed["mode"], "consume");
    assert_eq!(consumed["records"], 75);
    assert!(consumed["fetches"].as_u64().unwrap() >= 1);
    assert!(consumed["fetch_latency_ms"]["p99"].as_f64().unwrap() > 0.0);

    let produce = [
        "perf",
        "produce",
        "--topic",
        "empty",
        "--num-records",
        "20000",
        "--record-size",
        "100",
        "--throughput",
        "-1",
        "--duration",
        "10",
        "--producer-props",
        "linger.ms=1",
        "batch.size=16384",
    ];
    if !broker.supports("Produce") {
        broker.ctl(&produce).fails_with(&unsupported("Produce"));
        note("the broker lacks Produce: perf produce checked for its error message only");
        return;
    }
    let run = broker.ctl(&produce);
    let s = summary(&run);
    assert_eq!(s["errors"], 0, "{s}");
    let records = s["records"].as_i64().unwrap();
    assert!(records > 0 && records <= 20000, "{s}");
    assert_eq!(stored(&broker, "empty"), records, "{s}");
    for key in ["p50", "p99", "p999"] {
        assert!(s["latency_ms"][key].as_f64().unwrap() > 0.0, "{s}");
    }
    assert_eq!(s["settings"]["linger_ms"], 1);

    // Throttled, by duration: about 1000 records/s for 2 s.
    let run = broker.ctl(&[
        "perf",
        "produce",
        "--topic",
        "empty",
        "--record-size",
        "200",
        "--throughput",
        "1000",
        "--duration",
        "2",
        "--compression",
        "zstd",
        "--connections",
        "2",
    ]);
    let t = summary(&run);
    let throttled = t["records"].as_i64().unwrap();
    assert!((1000..=3000).contains(&throttled), "{t}");
    assert_eq!(stored(&broker, "empty"), records + throttled);

    let consumed =
        summary(&broker.ctl(&["perf", "consume", "--topic", "empty", "--connections", "2"]));
    assert_eq!(consumed["records"].as_i64().unwrap(), records + throttled);
}

#[test]
fn dump_log_reads_what_the_broker_serves() {
    let data = fixture();
    let broker = Broker::start(&data);
    // The partition directory the broker serves: batches and index entries.
    let dir = data.path().join("events-0");
    let run = gregorctl(
        &[
            "dump-log",
            dir.to_str().unwrap(),
            "--json",
            "--print-data-log",
        ],
        None,
    );
    run.ok();
    let lines = run.json_lines();
    let batches: Vec<&Value> = lines
        .iter()
        .filter(|l| l.get("base_offset").is_some())
        .collect();
    assert_eq!(batches.len(), 3);
    let count: i64 = batches.iter().map(|b| b["count"].as_i64().unwrap()).sum();
    assert_eq!(count, 25);
    assert!(batches.iter().all(|b| b["crc_valid"] == true));
    assert_eq!(batches[1]["records"][0]["value"], "value-0-10");
    // Index entries (the broker may rebuild the indexes as Kafka would): every offset
    // entry points at the start of a batch, every time entry at an offset of the log.
    let positions: Vec<i64> = batches
        .iter()
        .map(|b| b["position"].as_i64().unwrap())
        .collect();
    for entry in lines.iter().filter(|l| l.get("base_offset").is_none()) {
        let offset = entry["offset"].as_i64().unwrap();
        assert!((0..25).contains(&offset), "{entry}");
        if let Some(position) = entry.get("position") {
            assert!(positions.contains(&position.as_i64().unwrap()), "{entry}");
        } else {
            assert!(
                entry["timestamp"].as_i64().unwrap() >= support::BASE_TIMESTAMP,
                "{entry}"
            );
        }
    }

    // The metadata log the broker replayed.
    let meta = data.path().join("__cluster_metadata-0");
    let run = gregorctl(&["dump-log", meta.to_str().unwrap()], None);
    run.ok();
    let records = run.json_lines();
    assert_eq!(records[0]["control"], "LEADER_CHANGE");
    let topics: Vec<&str> = records
        .iter()
        .filter(|r| r["type"] == "TOPIC_RECORD")
        .map(|r| {
            r["record"]["name"]
                .as_str()
                .unwrap_or_else(|| panic!("{r}"))
        })
        .collect();
    assert_eq!(topics, ["events", "compressed", "empty"]);
    assert_eq!(
        records
            .iter()
            .filter(|r| r["type"] == "PARTITION_RECORD")
            .count(),
        6
    );

    // What the broker itself writes: new topics in its metadata log, records in segments.
    if broker.supports("CreateTopics") {
        broker
            .ctl(&[
                "topics",
                "create",
                "--topic",
                "written",
                "--partitions",
                "1",
            ])
            .ok();
        let run = gregorctl(&["dump-log", meta.to_str().unwrap()], None);
        run.ok();
        assert!(
            run.json_lines()
                .iter()
                .any(|r| r["type"] == "TOPIC_RECORD" && r["record"]["name"] == "written"),
            "the broker's metadata log lacks the new topic:\n{}",
            run.stdout
        );
    } else {
        note("the broker lacks CreateTopics: dump-log read a metadata log written by the library");
    }
    if broker.supports("Produce") {
        broker
            .ctl_stdin(&["produce", "empty", "--partition", "1"], "x\ny\nz\n")
            .ok();
        let dir = data.path().join("empty-1");
        let run = gregorctl(
            &["dump-log", dir.to_str().unwrap(), "--print-data-log"],
            None,
        );
        let text = run.ok();
        assert!(text.contains("count: 3"), "{text}");
        assert!(text.contains("crcValid: true"), "{text}");
        assert!(text.contains("payload: z"), "{text}");
    } else {
        note("the broker lacks Produce: dump-log read segments written by the library");
    }
}
