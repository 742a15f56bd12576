//! `gregorctl` against the real `gregor` broker (see `support` for how the binary is
//! found): every test starts a broker on an empty data directory, creates its topics with
//! `topics create` and its records with `produce`, and checks what the other subcommands
//! read back. `dump-log` reads the files that broker wrote. One test serves a data
//! directory written with gregor-protocol in Apache Kafka's layout instead.
//!
//! The load generator is in `perf.rs`, consumer groups in `groups.rs`, and peers that are
//! not a (current) Kafka broker in `peers.rs`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gregor_protocol::records::Compression;
use serde_json::Value;
use support::{Broker, DataDir, Run, TopicSpec, gregorctl, kafka_uuid, topic_id};

/// Kafka's default partitioner for a key (murmur2, positive, modulo the partition count),
/// written out here so the test does not trust gregorctl's own copy; checked against a
/// value of Kafka's UtilsTest below.
fn partition_for(key: &str, partitions: i64) -> i64 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    let data = key.as_bytes();
    let mut h: u32 = SEED ^ (data.len() as u32);
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for chunk in chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    i64::from((h as i32) & 0x7fff_ffff) % partitions
}

/// `(partition, offset, key, value, headers)` of consumed JSON lines, sorted.
type Consumed = Vec<(
    i64,
    i64,
    Option<String>,
    String,
    Vec<(String, Option<String>)>,
)>;

fn consumed(run: &Run) -> Consumed {
    run.ok();
    let mut records: Consumed = run
        .json_lines()
        .iter()
        .map(|l| {
            let headers = l["headers"]
                .as_array()
                .unwrap_or_else(|| panic!("headers in {l}"))
                .iter()
                .map(|h| {
                    (
                        h[0].as_str().unwrap().to_string(),
                        h[1].as_str().map(str::to_string),
                    )
                })
                .collect();
            (
                l["partition"].as_i64().unwrap(),
                l["offset"].as_i64().unwrap(),
                l["key"].as_str().map(str::to_string),
                l["value"].as_str().unwrap().to_string(),
                headers,
            )
        })
        .collect();
    records.sort();
    records
}

/// Reads the whole topic back as JSON lines (`expected` records, then stops).
fn consume_all(broker: &Broker, topic: &str, expected: usize) -> Consumed {
    let max = expected.to_string();
    let records = consumed(&broker.ctl(&[
        "consume",
        topic,
        "--from-beginning",
        "--max-messages",
        &max,
        "--json",
    ]));
    assert_eq!(records.len(), expected, "{records:?}");
    records
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn api_versions_as_table_and_json() {
    let broker = Broker::start_empty();
    let json = broker.ctl(&["api-versions", "--json"]).json();
    assert_eq!(json["error_code"], 0, "{json}");
    let ranges: BTreeMap<i64, (i64, i64)> = json["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let (min, max) = (
                k["min_version"].as_i64().unwrap(),
                k["max_version"].as_i64().unwrap(),
            );
            assert!(min <= max, "{k}");
            (k["api_key"].as_i64().unwrap(), (min, max))
        })
        .collect();
    for api in [
        "Produce",
        "Fetch",
        "ListOffsets",
        "Metadata",
        "ApiVersions",
        "CreateTopics",
        "DeleteTopics",
        "DeleteRecords",
        "InitProducerId",
        "DescribeConfigs",
        "CreatePartitions",
        "IncrementalAlterConfigs",
        "DescribeCluster",
        "DescribeTopicPartitions",
    ] {
        assert!(
            ranges.contains_key(&support::api_key(api)),
            "{api} missing: {json}"
        );
    }

    // The table: one line per API the broker lists, with its range and the version used
    // (the highest both sides speak).
    let run = broker.ctl(&["api-versions"]);
    let text = run.ok();
    let api_versions_max = ranges[&support::api_key("ApiVersions")].1;
    assert!(
        text.starts_with(&format!(
            "{} answered ApiVersions v{api_versions_max}\n",
            broker.bootstrap
        )),
        "{text}"
    );
    let rows: BTreeMap<i64, Vec<&str>> = text
        .lines()
        .skip(2)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            Some((cols.get(1)?.parse().ok()?, cols))
        })
        .collect();
    for (key, (min, max)) in &ranges {
        let row = rows
            .get(key)
            .unwrap_or_else(|| panic!("no row for {key}:\n{text}"));
        assert_eq!(row[2], format!("{min}-{max}"), "{text}");
        let ours_max: i64 = row[3].split_once('-').unwrap().1.parse().unwrap();
        assert_eq!(row[4], (*max).min(ours_max).to_string(), "{text}");
    }
}

#[test]
fn metadata_and_describe_topic() {
    let broker = Broker::start_empty();
    broker.create_topic("events", 3, &[]);
    broker.create_topic("single", 1, &[]);
    let listed = broker.ctl(&["topics", "list", "--json"]).json();
    let events_id = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "events")
        .unwrap()["topic_id"]
        .as_str()
        .unwrap()
        .to_string();

    let json = broker.ctl(&["metadata", "--json"]).json();
    assert_eq!(json["brokers"].as_array().unwrap().len(), 1, "{json}");
    assert_eq!(json["brokers"][0]["node_id"], 1);
    assert_eq!(json["brokers"][0]["host"], "127.0.0.1");
    assert_eq!(json["brokers"][0]["port"], i64::from(broker.data().port));
    let topics: BTreeMap<&str, &Value> = json["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t))
        .collect();
    assert_eq!(
        topics.keys().copied().collect::<Vec<_>>(),
        ["events", "single"]
    );
    let events = topics["events"];
    assert_eq!(events["error_code"], 0);
    let partitions = events["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 3);
    assert!(partitions.iter().all(|p| p["leader_id"] == 1), "{events}");
    // `--json` prints the UUID form; tables and `topics list` Kafka's base64 form.
    let uuid: gregor_protocol::Uuid = events["topic_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(kafka_uuid(&uuid), events_id);

    let only = broker
        .ctl(&["metadata", "--topic", "single", "--json"])
        .json();
    assert_eq!(only["topics"].as_array().unwrap().len(), 1);
    assert_eq!(only["topics"][0]["name"], "single");
    let table = broker.ctl(&["metadata"]);
    let text = table.ok();
    assert!(text.contains(&events_id), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("events ")).count(),
        3,
        "{text}"
    );

    let described = broker.ctl(&["describe-topic", "events", "--json"]).json();
    assert_eq!(described["topics"][0]["name"], "events");
    assert_eq!(described["topics"][0]["error_code"], 0);
    let partitions = described["topics"][0]["partitions"].as_array().unwrap();
    assert_eq!(
        partitions
            .iter()
            .map(|p| p["partition_index"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [0, 1, 2]
    );
    let text = broker.ctl(&["describe-topic", "events"]);
    assert!(text.ok().contains("partitions 3"), "{}", text.stdout);
    broker.ctl(&["describe-topic", "nope"]).fails_with(
        "topic \"nope\": UNKNOWN_TOPIC_OR_PARTITION (3): the topic or partition does not exist; create it or check the name",
    );
}

#[test]
fn topics_create_list_alter_delete() {
    let broker = Broker::start_empty();
    let created = broker
        .ctl(&[
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
        ])
        .json();
    let topic = &created["topics"][0];
    assert_eq!(topic["error_code"], 0, "{created}");
    assert_eq!(topic["num_partitions"], 4);
    assert_eq!(topic["replication_factor"], 1);
    let retention = topic["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "retention.ms")
        .unwrap_or_else(|| panic!("no retention.ms in {created}"));
    assert_eq!(retention["value"], "60000");
    broker.create_topic("other", 1, &[]);

    let list = broker.ctl(&["topics", "list"]);
    assert_eq!(list.ok().lines().collect::<Vec<_>>(), ["made", "other"]);
    let json = broker.ctl(&["topics", "list", "--json"]).json();
    assert_eq!(json[0]["name"], "made");
    assert_eq!(json[0]["partitions"], 4);
    assert_eq!(json[0]["internal"], false);

    broker
        .ctl(&["topics", "create", "--topic", "made", "--partitions", "1"])
        .fails_with("TOPIC_ALREADY_EXISTS (36)");
    let run = broker.ctl(&["topics", "create", "--topic", "made", "--if-not-exists"]);
    assert_eq!(run.ok(), "Topic made already exists.\n");
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
    let run = broker.ctl(&[
        "topics",
        "create",
        "--topic",
        "checked",
        "--partitions",
        "2",
        "--validate-only",
    ]);
    assert!(run.ok().starts_with("Validated topic checked"), "{run:?}");
    broker
        .ctl(&["describe-topic", "checked"])
        .fails_with("UNKNOWN_TOPIC_OR_PARTITION (3)");

    // Alter: more partitions, which take records at once; never fewer.
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
    broker.produce("made", &["--partition", "5"], "new\n");
    assert_eq!(broker.end_offsets("made"), [0, 0, 0, 0, 0, 1]);
    broker
        .ctl(&["topics", "alter", "--topic", "made", "--partitions", "2"])
        .fails_with("INVALID_PARTITIONS (37)");

    // Delete.
    broker.ctl(&["topics", "delete", "--topic", "made"]).ok();
    let list = broker.ctl(&["topics", "list"]);
    assert_eq!(list.ok().lines().collect::<Vec<_>>(), ["other"]);
    broker
        .ctl(&["topics", "delete", "--topic", "made"])
        .fails_with("UNKNOWN_TOPIC_OR_PARTITION (3)");
    broker
        .ctl(&["topics", "delete", "--topic", "made", "--if-exists"])
        .ok();
    broker
        .ctl(&["get-offsets", "--topic", "made"])
        .fails_with("UNKNOWN_TOPIC_OR_PARTITION (3)");
    // The name is free again.
    broker.create_topic("made", 1, &[]);
    assert_eq!(broker.end_offsets("made"), [0]);
}

#[test]
fn configs_describe_and_alter() {
    let broker = Broker::start_empty();
    broker.create_topic("events", 1, &["--config", "retention.ms=3600000"]);
    let describe = [
        "configs",
        "describe",
        "--entity-type",
        "topics",
        "--entity-name",
        "events",
    ];
    // `--json` is the whole DescribeConfigs response: every config with its source
    // (DYNAMIC_TOPIC_CONFIG is 1, DEFAULT_CONFIG 5).
    let configs = || -> BTreeMap<String, (String, i64)> {
        let mut args = describe.to_vec();
        args.push("--json");
        let json = broker.ctl(&args).json();
        let result = &json["results"][0];
        assert_eq!(result["error_code"], 0, "{json}");
        assert_eq!(result["resource_name"], "events");
        result["configs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    (
                        c["value"].as_str().unwrap_or("null").to_string(),
                        c["config_source"].as_i64().unwrap(),
                    ),
                )
            })
            .collect()
    };
    let set = |configs: &BTreeMap<String, (String, i64)>| -> BTreeMap<String, String> {
        configs
            .iter()
            .filter(|(_, (_, source))| *source != 5)
            .map(|(name, (value, _))| (name.clone(), value.clone()))
            .collect()
    };
    let all = configs();
    assert_eq!(all["retention.ms"], ("3600000".into(), 1), "{all:?}");
    assert_eq!(all["cleanup.policy"], ("delete".into(), 5), "{all:?}");
    assert_eq!(
        set(&all),
        BTreeMap::from([("retention.ms".into(), "3600000".into())])
    );
    // The table leaves defaults out unless --all.
    let rows = |all: bool| -> Vec<Vec<String>> {
        let mut args = describe.to_vec();
        if all {
            args.push("--all");
        }
        let run = broker.ctl(&args);
        let text = run.ok();
        assert!(text.starts_with("NAME "), "{text}");
        text.lines()
            .skip(1)
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect()
    };
    assert_eq!(
        rows(false),
        [[
            "retention.ms",
            "3600000",
            "DYNAMIC_TOPIC_CONFIG",
            "false",
            "false"
        ]]
    );
    let every = rows(true);
    assert_eq!(every.len(), all.len());
    assert!(
        every
            .iter()
            .any(|r| r[..3] == ["cleanup.policy", "delete", "DEFAULT_CONFIG"]),
        "{every:?}"
    );

    let run = broker.ctl(&[
        "configs",
        "alter",
        "--entity-type",
        "topics",
        "--entity-name",
        "events",
        "--add-config",
        "retention.ms=1000,cleanup.policy=[delete,compact]",
    ]);
    assert_eq!(run.ok(), "Completed updating config for topics events.\n");
    assert_eq!(
        set(&configs()),
        BTreeMap::from([
            ("cleanup.policy".into(), "delete,compact".into()),
            ("retention.ms".into(), "1000".into())
        ])
    );
    broker
        .ctl(&[
            "configs",
            "alter",
            "--entity-type",
            "topics",
            "--entity-name",
            "events",
            "--delete-config",
            "retention.ms",
        ])
        .ok();
    let after = configs();
    assert_eq!(
        set(&after),
        BTreeMap::from([("cleanup.policy".into(), "delete,compact".into())])
    );
    // Deleted, it is back at its default.
    assert_eq!(after["retention.ms"].1, 5, "{after:?}");

    broker
        .ctl(&[
            "configs",
            "alter",
            "--entity-type",
            "topics",
            "--entity-name",
            "events",
            "--add-config",
            "retention.ms=soon",
        ])
        .fails_with("INVALID_CONFIG (40)");
    broker
        .ctl(&[
            "configs",
            "describe",
            "--entity-type",
            "topics",
            "--entity-name",
            "nope",
        ])
        .fails_with("UNKNOWN_TOPIC_OR_PARTITION (3)");
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

    // A broker's configs, by node id.
    let json = broker
        .ctl(&[
            "configs",
            "describe",
            "--entity-type",
            "brokers",
            "--entity-name",
            "1",
            "--json",
        ])
        .json();
    let node_id = json["results"][0]["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "node.id")
        .unwrap_or_else(|| panic!("{json}"));
    assert_eq!(node_id["value"], "1");
}

#[test]
fn produce_keys_and_headers_then_consume_them_back() {
    let broker = Broker::start_empty();
    broker.create_topic("t", 3, &[]);
    let input: String = (0..30).map(|i| format!("key{i}\tvalue{i}\n")).collect();
    let run = broker.produce(
        "t",
        &[
            "--parse-key",
            "--header",
            "h=1",
            "--header",
            "origin=test",
            "--json",
        ],
        &input,
    );
    let acked: i64 = run
        .json_lines()
        .iter()
        .map(|l| l["records"].as_i64().unwrap())
        .sum();
    assert_eq!(acked, 30);
    assert_eq!(broker.stored("t"), 30);
    let records = consume_all(&broker, "t", 30);
    let headers = vec![
        ("h".to_string(), Some("1".to_string())),
        ("origin".to_string(), Some("test".to_string())),
    ];
    let mut per_partition = [0i64; 3];
    for (partition, offset, key, value, got_headers) in &records {
        let key = key.as_deref().unwrap();
        assert_eq!(value, &key.replace("key", "value"));
        assert_eq!(got_headers, &headers);
        // Kafka's default partitioner placed it.
        assert_eq!(*partition, partition_for(key, 3), "{key}");
        // Offsets are dense per partition, in the order of the input.
        assert_eq!(*offset, per_partition[*partition as usize]);
        per_partition[*partition as usize] += 1;
    }
    assert_eq!(broker.end_offsets("t"), per_partition);
    for p in 0..3 {
        let keys: Vec<usize> = records
            .iter()
            .filter(|r| r.0 == p)
            .map(|r| r.2.as_deref().unwrap()[3..].parse().unwrap())
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
    }

    // Another separator; murmur2("21") % 3 = 0 (Kafka's UtilsTest value -973932308).
    assert_eq!(partition_for("21", 3), 0);
    broker.produce("t", &["--key-separator", "="], "21=x=y\n");
    assert_eq!(broker.end_offsets("t")[0], per_partition[0] + 1);
    // Headers from the line: `k:v,k2<TAB>key<TAB>value` (a header without ':' is null).
    broker.produce(
        "t",
        &["--parse-headers", "--parse-key", "--partition", "2"],
        "a:1,b\tk\tv\n",
    );
    let run = broker.ctl(&[
        "consume",
        "t",
        "--partition",
        "0",
        "--offset",
        &per_partition[0].to_string(),
        "--max-messages",
        "1",
        "--print-key",
        "--print-offset",
        "--print-partition",
        "--key-separator",
        "|",
    ]);
    assert_eq!(
        run.ok(),
        format!("Partition:0|Offset:{}|21|x=y\n", per_partition[0])
    );
    let run = broker.ctl(&[
        "consume",
        "t",
        "--partition",
        "2",
        "--offset",
        &per_partition[2].to_string(),
        "--max-messages",
        "1",
        "--print-headers",
        "--print-key",
    ]);
    assert_eq!(run.ok(), "a:1,b:NULL\tk\tv\n");
    assert!(
        run.stderr.contains("Processed a total of 1 messages"),
        "{}",
        run.stderr
    );

    // Records without keys rotate over the partitions, a batch at a time.
    let before = broker.end_offsets("t");
    broker.produce("t", &["--batch-size", "1"], "n1\nn2\nn3\n");
    let after = broker.end_offsets("t");
    assert_eq!(
        (0..3).map(|p| after[p] - before[p]).collect::<Vec<_>>(),
        [1, 1, 1]
    );

    // From the latest offset nothing arrives: the idle timeout ends the run cleanly.
    let run = broker.ctl(&["consume", "t", "--timeout-ms", "700"]);
    assert_eq!(run.ok(), "");
    assert!(run.stderr.contains("Processed a total of 0 messages"));

    // The user's errors, named.
    broker
        .ctl_stdin(
            &["produce", "t", "--key-separator", ":"],
            "no separator here\n",
        )
        .fails_with("line 1: no key separator");
    broker
        .ctl_stdin(&["produce", "t", "--partition", "7"], "x\n")
        .fails_with("UNKNOWN_TOPIC_OR_PARTITION");
    broker
        .ctl(&["consume", "missing", "--max-messages", "1"])
        .fails_with("topic \"missing\": UNKNOWN_TOPIC_OR_PARTITION (3)");
    broker
        .ctl_stdin(&["produce", "t", "--compression-codec", "brotli"], "x\n")
        .fails_with("compression \"brotli\"");
    assert_eq!(broker.stored("t"), 35, "failed runs stored nothing");
}

#[test]
fn every_codec_round_trips_and_is_stored_as_sent() {
    let mut broker = Broker::start_empty();
    broker.create_topic("codecs", 1, &[]);
    let codecs = ["none", "gzip", "snappy", "lz4", "zstd"];
    let mut expected = Vec::new();
    for codec in codecs {
        let input: String = (0..20)
            .map(|i| {
                // Repetitive values, so that every codec really shrinks the batch.
                let value = format!("{codec}-{i}-").repeat(10);
                expected.push((format!("{codec}{i}"), value.clone()));
                format!("{codec}{i}\t{value}\n")
            })
            .collect();
        broker.produce(
            "codecs",
            // One batch per run: no linger flush however slowly stdin arrives.
            &[
                "--parse-key",
                "--compression-codec",
                codec,
                "--linger-ms",
                "600000",
            ],
            &input,
        );
    }
    let records = consume_all(&broker, "codecs", 100);
    let got: Vec<(String, String)> = records
        .iter()
        .map(|r| (r.2.clone().unwrap(), r.3.clone()))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(
        records.iter().map(|r| r.1).collect::<Vec<_>>(),
        (0..100).collect::<Vec<_>>()
    );

    // The broker stored each batch with the codec it was sent with.
    broker.stop();
    let segment = broker
        .data_dir()
        .join("codecs-0")
        .join("00000000000000000000.log");
    let run = gregorctl(&["dump-log", segment.to_str().unwrap(), "--json"], None);
    run.ok();
    let batches = run.json_lines();
    assert_eq!(
        batches
            .iter()
            .map(|b| b["compression"].as_str().unwrap())
            .collect::<Vec<_>>(),
        codecs,
        "{}",
        run.stdout
    );
    assert!(
        batches
            .iter()
            .all(|b| b["count"] == 20 && b["crc_valid"] == true)
    );
    let sizes: Vec<i64> = batches
        .iter()
        .map(|b| b["size"].as_i64().unwrap())
        .collect();
    assert!(sizes[1..].iter().all(|s| *s < sizes[0]), "{sizes:?}");
}

#[test]
fn acks_all_one_and_zero() {
    let broker = Broker::start_empty();
    broker.create_topic("acks", 2, &[]);
    let lines = |prefix: &str| -> String { (0..50).map(|i| format!("{prefix}{i}\n")).collect() };
    let mut total = 0;
    for acks in ["all", "-1", "1"] {
        let run = broker.produce("acks", &["--acks", acks, "--json"], &lines(acks));
        let acked: i64 = run
            .json_lines()
            .iter()
            .map(|l| l["records"].as_i64().unwrap())
            .sum();
        assert_eq!(acked, 50, "acks={acks}");
        total += 50;
        // Acknowledged means stored: visible at once.
        assert_eq!(broker.stored("acks"), total, "acks={acks}");
    }
    // acks=0: no response to wait for, nothing acknowledged to print; the broker stores
    // the records all the same (soon after gregorctl has exited).
    let run = broker.produce("acks", &["--acks", "0", "--json"], &lines("zero"));
    assert_eq!(run.stdout, "");
    total += 50;
    broker.wait_stored("acks", total);
    let run = broker.produce("acks", &["--acks", "0", "--partition", "1"], "x\ny\n");
    assert_eq!(run.stdout, "");
    total += 2;
    broker.wait_stored("acks", total);

    let values: BTreeSet<String> = consume_all(&broker, "acks", total as usize)
        .into_iter()
        .map(|r| r.3)
        .collect();
    for prefix in ["all", "-1", "1", "zero"] {
        for i in 0..50 {
            assert!(values.contains(&format!("{prefix}{i}")), "{prefix}{i}");
        }
    }
    assert!(values.contains("x") && values.contains("y"));
    broker
        .ctl_stdin(&["produce", "acks", "--acks", "2"], "x\n")
        .fails_with("acks \"2\": expected all, -1, 1 or 0");
}

#[test]
fn get_offsets_by_time() {
    let broker = Broker::start_empty();
    broker.create_topic("timed", 2, &[]);
    let first: String = (0..10).map(|i| format!("early{i}\n")).collect();
    broker.produce("timed", &["--partition", "0"], &first);
    std::thread::sleep(Duration::from_millis(50));
    let between = now_ms();
    std::thread::sleep(Duration::from_millis(50));
    let second: String = (0..5).map(|i| format!("late{i}\n")).collect();
    broker.produce("timed", &["--partition", "0"], &second);
    let after = now_ms() + 60_000;

    let run = broker.ctl(&["get-offsets", "--topic", "timed"]);
    assert_eq!(
        run.ok().lines().collect::<Vec<_>>(),
        ["timed:0:15", "timed:1:0"]
    );
    let at = |time: &str| -> Vec<(i64, i64)> {
        broker
            .ctl(&[
                "get-offsets",
                "--topic",
                "timed",
                "--partitions",
                "0",
                "--time",
                time,
                "--json",
            ])
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                assert_eq!(o["topic"], "timed");
                assert_eq!(o["partition"], 0);
                (
                    o["offset"].as_i64().unwrap(),
                    o["timestamp"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(at("earliest")[0].0, 0);
    assert_eq!(at("latest")[0].0, 15);
    // The first record at or after the time; none after every record.
    let (offset, timestamp) = at(&between.to_string())[0];
    assert_eq!(offset, 10, "first record of the second run");
    assert!(timestamp >= between, "{timestamp} < {between}");
    assert_eq!(at("0")[0].0, 0);
    assert_eq!(at(&after.to_string())[0].0, -1);
    // The record with the largest timestamp is one of the second run.
    let (offset, timestamp) = at("max-timestamp")[0];
    assert!((10..15).contains(&offset), "{offset}");
    assert!(timestamp >= between);

    let both = broker
        .ctl(&[
            "get-offsets",
            "--topic",
            "timed",
            "--partitions",
            "0,1",
            "--json",
        ])
        .json();
    assert_eq!(both.as_array().unwrap().len(), 2);
    broker
        .ctl(&["get-offsets", "--topic", "timed", "--partitions", "7"])
        .fails_with("UNKNOWN_TOPIC_OR_PARTITION");
    broker
        .ctl(&["get-offsets", "--topic", "timed", "--time", "yesterday"])
        .fails_with("--time");
}

#[test]
fn dump_log_reads_the_data_directory_the_broker_wrote() {
    let mut broker = Broker::start_empty();
    broker.create_topic("written", 2, &["--config", "retention.ms=3600000"]);
    broker.create_topic("gone", 1, &[]);
    broker.ctl(&["topics", "delete", "--topic", "gone"]).ok();
    // Enough bytes in partition 0 for index entries (one per 4096 bytes of batches).
    let input: String = (0..2000)
        .map(|i| format!("k{i}\t{}\n", format!("value-{i}-").repeat(8)))
        .collect();
    broker.produce(
        "written",
        &[
            "--parse-key",
            "--partition",
            "0",
            "--batch-size",
            "100",
            "--linger-ms",
            "600000",
        ],
        &input,
    );
    broker.produce("written", &["--partition", "1"], "x\ny\nz\n");
    let ends = broker.end_offsets("written");
    assert_eq!(ends, [2000, 3]);
    broker.stop();
    let data = broker.data_dir();

    // A partition directory: its segment, offset index and time index.
    let dir = data.join("written-0");
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
    assert_eq!(batches.len(), 20, "100 records per batch");
    assert!(batches.iter().all(|b| b["crc_valid"] == true));
    assert_eq!(
        batches
            .iter()
            .map(|b| b["count"].as_i64().unwrap())
            .sum::<i64>(),
        2000
    );
    let mut next = 0;
    for batch in &batches {
        assert_eq!(batch["base_offset"], next, "{batch}");
        next = batch["last_offset"].as_i64().unwrap() + 1;
    }
    assert_eq!(batches[3]["records"][0]["key"], "k300");
    assert_eq!(
        batches[3]["records"][0]["value"],
        "value-300-".repeat(8).as_str()
    );
    // Index entries: every offset entry points at a batch, every time entry at an
    // offset of the log, both in order.
    let positions: BTreeMap<i64, (i64, i64)> = batches
        .iter()
        .map(|b| {
            (
                b["position"].as_i64().unwrap(),
                (
                    b["base_offset"].as_i64().unwrap(),
                    b["last_offset"].as_i64().unwrap(),
                ),
            )
        })
        .collect();
    let entries: Vec<&Value> = lines
        .iter()
        .filter(|l| l.get("base_offset").is_none())
        .collect();
    let offset_entries: Vec<&Value> = entries
        .iter()
        .copied()
        .filter(|e| e.get("position").is_some())
        .collect();
    let time_entries: Vec<&Value> = entries
        .iter()
        .copied()
        .filter(|e| e.get("timestamp").is_some())
        .collect();
    assert_eq!(offset_entries.len() + time_entries.len(), entries.len());
    assert!(!offset_entries.is_empty(), "{}", run.stdout);
    assert!(!time_entries.is_empty(), "{}", run.stdout);
    for entry in &offset_entries {
        let offset = entry["offset"].as_i64().unwrap();
        let (base, last) = positions
            .get(&entry["position"].as_i64().unwrap())
            .unwrap_or_else(|| panic!("{entry} is not at a batch"));
        assert!(*base <= offset && offset <= *last, "{entry}");
    }
    for pair in time_entries.windows(2) {
        assert!(pair[0]["offset"].as_i64() < pair[1]["offset"].as_i64());
        assert!(pair[0]["timestamp"].as_i64() <= pair[1]["timestamp"].as_i64());
    }
    assert!(
        time_entries
            .iter()
            .all(|e| (0..2000).contains(&e["offset"].as_i64().unwrap()))
    );

    // A segment as Kafka's text.
    let segment = data.join("written-1").join("00000000000000000000.log");
    let run = gregorctl(
        &["dump-log", segment.to_str().unwrap(), "--print-data-log"],
        None,
    );
    let text = run.ok();
    assert!(
        text.starts_with(&format!(
            "Dumping {}\nLog starting offset: 0\n",
            segment.display()
        )),
        "{text}"
    );
    assert!(
        text.contains("baseOffset: 0 lastOffset: 2 count: 3 "),
        "{text}"
    );
    assert!(text.contains("crcValid: true"), "{text}");
    assert!(text.contains("| offset: 2 "), "{text}");
    assert!(text.contains("payload: z"), "{text}");

    // The metadata log: the broker's own records, then what `topics create|delete` did.
    let meta = data
        .join("__cluster_metadata-0")
        .join("00000000000000000000.log");
    let run = gregorctl(&["dump-log", meta.to_str().unwrap()], None);
    run.ok();
    let records = run.json_lines();
    let of_type = |t: &str| -> Vec<&Value> {
        records
            .iter()
            .filter(|r| r["type"] == t)
            .map(|r| &r["record"])
            .collect()
    };
    assert!(
        records.iter().any(|r| r["control"] == "LEADER_CHANGE"),
        "{}",
        run.stdout
    );
    let registered = of_type("REGISTER_BROKER_RECORD");
    assert_eq!(registered[0]["broker_id"], 1);
    assert_eq!(
        registered[0]["end_points"][0]["port"],
        i64::from(broker.data().port)
    );
    let topics = of_type("TOPIC_RECORD");
    assert_eq!(
        topics
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["written", "gone"]
    );
    let written_id = topics[0]["topic_id"].as_str().unwrap();
    let gone_id = topics[1]["topic_id"].as_str().unwrap();
    let partitions: Vec<(&str, i64)> = of_type("PARTITION_RECORD")
        .iter()
        .map(|p| {
            (
                p["topic_id"].as_str().unwrap(),
                p["partition_id"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(partitions, [(written_id, 0), (written_id, 1), (gone_id, 0)]);
    let configs = of_type("CONFIG_RECORD");
    assert!(
        configs.iter().any(|c| c["resource_name"] == "written"
            && c["name"] == "retention.ms"
            && c["value"] == "3600000"),
        "{configs:?}"
    );
    let removed = of_type("REMOVE_TOPIC_RECORD");
    assert_eq!(removed.len(), 1, "{}", run.stdout);
    assert_eq!(removed[0]["topic_id"], gone_id);
    // Offsets increase over the whole log.
    let offsets: Vec<i64> = records
        .iter()
        .map(|r| r["offset"].as_i64().unwrap())
        .collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");

    // Restarted on the same directory, the broker serves what it wrote.
    let broker = broker.restart();
    assert_eq!(broker.end_offsets("written"), [2000, 3]);
    broker
        .ctl(&["describe-topic", "gone"])
        .fails_with("UNKNOWN_TOPIC_OR_PARTITION (3)");
}

/// The broker serves a directory it did not write: a metadata log, segments (several
/// batches, zstd), indexes and configs written with gregor-protocol in Kafka's layout.
#[test]
fn a_data_directory_in_kafkas_layout_is_served() {
    let broker = Broker::start(DataDir::with_topics(vec![
        TopicSpec::new("events", 3)
            .records(25)
            .config("retention.ms", "3600000"),
        TopicSpec::new("compressed", 1)
            .records(40)
            .compression(Compression::Zstd),
        TopicSpec::new("empty", 2),
    ]));
    let json = broker.ctl(&["metadata", "--json"]).json();
    let ids: BTreeMap<&str, &str> = json["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["topic_id"].as_str().unwrap()))
        .collect();
    let names = ["compressed", "empty", "events"];
    assert_eq!(ids.keys().copied().collect::<Vec<_>>(), names);
    for name in names {
        assert_eq!(ids[name], topic_id(name).to_string());
    }
    assert_eq!(broker.end_offsets("events"), [25, 25, 25]);
    assert_eq!(broker.end_offsets("empty"), [0, 0]);

    let records = consume_all(&broker, "events", 75);
    let first = records.iter().find(|r| r.0 == 2 && r.1 == 3).unwrap();
    assert_eq!(first.2.as_deref(), Some("k-2-3"));
    assert_eq!(first.3, "value-2-3");
    assert_eq!(first.4, [("seq".to_string(), Some("3".to_string()))]);
    let run = broker.ctl(&[
        "consume",
        "compressed",
        "--from-beginning",
        "--max-messages",
        "40",
    ]);
    let values: Vec<String> = run.ok().lines().map(str::to_string).collect();
    assert_eq!(
        values,
        (0..40).map(|i| format!("value-0-{i}")).collect::<Vec<_>>()
    );
    let json = broker
        .ctl(&[
            "get-offsets",
            "--topic",
            "events",
            "--partitions",
            "1",
            "--time",
            &(support::BASE_TIMESTAMP + 12).to_string(),
            "--json",
        ])
        .json();
    assert_eq!(json[0]["offset"], 12);
    let json = broker
        .ctl(&[
            "configs",
            "describe",
            "--entity-type",
            "topics",
            "--entity-name",
            "events",
            "--json",
        ])
        .json();
    let retention = json["results"][0]["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "retention.ms")
        .unwrap_or_else(|| panic!("{json}"));
    assert_eq!(retention["value"], "3600000");
    assert_eq!(retention["config_source"], 1, "DYNAMIC_TOPIC_CONFIG");
    // And takes new records after the ones it found.
    broker.produce("events", &["--partition", "0"], "more\n");
    assert_eq!(broker.end_offsets("events"), [26, 25, 25]);
}

#[test]
fn produce_creates_a_missing_topic_only_where_the_broker_allows_it() {
    // As Kafka's console producer: Metadata with allow_auto_topic_creation=true, so the
    // broker's auto.create.topics.enable decides; a Produce itself never creates a topic.
    let broker = Broker::start_empty();
    broker.produce("fresh", &[], "a\nb\n");
    assert_eq!(broker.end_offsets("fresh"), [2]);

    let broker =
        Broker::start(DataDir::empty().broker_config("auto.create.topics.enable", "false"));
    broker
        .ctl_stdin(&["produce", "missing"], "x\n")
        .fails_with("topic \"missing\": UNKNOWN_TOPIC_OR_PARTITION (3)");
    broker
        .ctl(&["describe-topic", "missing"])
        .fails_with("UNKNOWN_TOPIC_OR_PARTITION (3)");
}
