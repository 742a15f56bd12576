//! Shopify's Sarama 1.22.1 (Debian's, a Go client of the Kafka 0.10-2.1 era) configured as
//! a 0.10, 1.0 and 2.1 client: it then sends the old request versions Kafka 4 dropped
//! (KIP-896) and Kafka 3.9 still served. Sarama 1.22.1 picks versions from
//! `Config.Version` alone, without ApiVersions:
//!
//! | Config.Version | Produce | Fetch | ListOffsets | OffsetCommit | CreateTopics | DeleteTopics |
//! |---|---|---|---|---|---|---|
//! | 0.10.0.0 | v2 | v2 | v0 | - | - | - |
//! | 0.10.2.0 | v2 | v3 | v1 | v1 | v0 | v0 |
//! | 1.0.0, 2.1.0 | v3 | v4 | v1 | v1 | v2 | v1 |
//!
//! and always Metadata v0/v1/v5, OffsetFetch v1, JoinGroup v1, SyncGroup/Heartbeat/
//! LeaveGroup v0, DescribeConfigs v0. Produce v2 carries message-format v1 message sets.
//!
//! Each test produces keyed records with every codec Sarama has without cgo (none, gzip,
//! snappy, lz4), consumes them in a `ConsumerGroup` that commits part-way, resumes from the
//! committed offsets in a second run (no record twice, none missing), reads them all again
//! with a plain `Consumer`, and drives `ClusterAdmin`. Throughout, the broker must close no
//! connection (it logs `closing connection from <peer>: <reason>` when it does, for example
//! for an unsupported version) and Sarama must report no error.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use gregor_protocol::records::{Compression, NewRecord};

use crate::support::{Broker, DataDir, Json, JsonExt, TopicSpec, sarama, sarama_package_version};

/// The topic the produce/consume tests write (three partitions, empty at the start).
const TOPIC: &str = "sarama-orders";

/// Records per codec.
pub(super) const PER_CODEC: usize = 100;

/// The codecs Sarama has without cgo (and the ones the kafka-python tests use).
pub(super) const CODECS: [&str; 4] = ["none", "gzip", "snappy", "lz4"];

/// One record as the drivers print it (this one and `old_api_kafka_python.py`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Record {
    pub partition: i64,
    pub offset: i64,
    pub key: String,
    pub value: String,
}

pub(super) fn records(doc: &Json) -> Vec<Record> {
    doc.field("records")
        .as_array()
        .unwrap_or_else(|| panic!("no records in {doc}"))
        .iter()
        .map(|r| Record {
            partition: r.field("partition").as_i64().expect("partition"),
            offset: r.field("offset").as_i64().expect("offset"),
            key: r.field("key").as_str().expect("key").to_string(),
            value: r.field("value").as_str().expect("value").to_string(),
        })
        .collect()
}

/// Starts the broker with no initial rebalance delay (a single member joins at once).
pub(super) fn start(data: &DataDir) -> Broker {
    Broker::start_with(data, &[("group.initial.rebalance.delay.ms", "0")])
}

/// Why the broker closed connections, each reason once with its count (the broker logs
/// `closing connection from <peer>: <reason>`; the reason names the API and version it
/// refused or could not decode).
pub(super) fn closed_connections(broker: &Broker) -> BTreeMap<String, usize> {
    let mut reasons = BTreeMap::new();
    for line in broker.log_text().lines() {
        if let Some((_, rest)) = line.split_once("closing connection from ") {
            let reason = rest.split_once(": ").map_or(rest, |(_, reason)| reason);
            *reasons.entry(reason.to_string()).or_insert(0) += 1;
        }
    }
    reasons
}

/// Panics with the reasons if the broker closed any connection.
pub(super) fn assert_no_closed_connections(broker: &Broker, client: &str) {
    let closed = closed_connections(broker);
    assert!(
        closed.is_empty(),
        "the broker closed connections of {client}: {closed:#?}"
    );
}

/// A fixture for the consumers alone (written by the harness, not by a producer), so that
/// reading is tested even where the client's Produce version is not served: three
/// partitions of keyed records, uncompressed, gzip and snappy, and lz4 batches.
pub(super) fn consume_fixture(topic: &str) -> (DataDir, BTreeSet<Record>) {
    let data = DataDir::builder()
        .topic(
            TopicSpec::new(topic, 3)
                .records(150)
                .batch_records(25)
                .partition_compression(1, &[Compression::Gzip, Compression::Snappy])
                .partition_compression(2, &[Compression::Lz4])
                .generator(|partition, i| NewRecord {
                    timestamp: 1_735_689_600_000 + i as i64,
                    key: Some(Bytes::from(format!("key-{partition}-{i}"))),
                    value: Some(Bytes::from(format!("value-{partition}-{i}"))),
                    headers: Vec::new(),
                }),
        )
        .build();
    let written = data
        .topic(topic)
        .partitions
        .iter()
        .flat_map(|p| {
            p.records.iter().map(move |r| Record {
                partition: i64::from(p.index),
                offset: r.offset,
                key: String::from_utf8(r.key.clone().expect("key").to_vec()).expect("utf-8"),
                value: String::from_utf8(r.value.clone().expect("value").to_vec()).expect("utf-8"),
            })
        })
        .collect();
    (data, written)
}

/// Runs the driver in `mode` with Sarama's `Config.Version` `version`; the parsed report,
/// asserted free of errors. `None` when Sarama is not installed.
fn run(broker: &Broker, version: &str, mode: &str, extra: &[&str]) -> Option<Json> {
    let bootstrap = broker.bootstrap();
    let mut args = vec![
        "--bootstrap",
        bootstrap.as_str(),
        "--version",
        version,
        "--mode",
        mode,
        "--timeout",
        "60s",
    ];
    args.extend_from_slice(extra);
    let out = sarama(&args)?;
    let doc = Json::parse(out.stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: no report from the Sarama driver\n{out}"));
    let errors = doc.field("errors").as_array().cloned().unwrap_or_default();
    assert!(
        out.success() && errors.is_empty(),
        "Sarama {version} {mode} {extra:?} reported errors {errors:?}; the broker closed \
         connections: {:#?}\n{out}",
        closed_connections(broker)
    );
    Some(doc)
}

/// Produces [`PER_CODEC`] records with each codec; returns them all.
fn produce_all(broker: &Broker, version: &str) -> Option<Vec<Record>> {
    if let Some(package) = sarama_package_version() {
        println!("client: Sarama {package} (Debian) as Kafka {version}");
    }
    let count = PER_CODEC.to_string();
    let mut produced = Vec::new();
    for codec in CODECS {
        let doc = run(
            broker,
            version,
            "produce",
            &[
                "--topic",
                TOPIC,
                "--count",
                &count,
                "--run",
                codec,
                "--compression",
                codec,
            ],
        )?;
        let batch = records(&doc);
        assert_eq!(batch.len(), PER_CODEC, "acknowledged records ({codec})");
        produced.extend(batch);
    }
    // Offsets are dense per partition from 0, and every key went to one partition.
    let mut by_partition: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for r in &produced {
        by_partition.entry(r.partition).or_default().push(r.offset);
    }
    for (partition, offsets) in &mut by_partition {
        offsets.sort_unstable();
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(*offsets, expected, "offsets of partition {partition}");
    }
    assert!(
        by_partition.len() > 1,
        "the keys should spread over the partitions: {by_partition:?}"
    );
    Some(produced)
}

/// Sorted, and asserted free of duplicates.
pub(super) fn as_set(client: &str, records: &[Record]) -> BTreeSet<Record> {
    let set: BTreeSet<Record> = records.iter().cloned().collect();
    assert_eq!(set.len(), records.len(), "{client} read a record twice");
    set
}

/// The group's committed offsets from a report, by partition.
pub(super) fn committed(doc: &Json) -> BTreeMap<i64, i64> {
    doc.field("committed")
        .as_object()
        .unwrap_or_else(|| panic!("no committed offsets in {doc}"))
        .iter()
        .map(|(p, o)| (p.parse().expect("partition"), o.as_i64().expect("offset")))
        .collect()
}

/// The next offset per partition after `records` (partitions without records: absent).
pub(super) fn next_offsets(records: &[Record]) -> BTreeMap<i64, i64> {
    let mut next = BTreeMap::new();
    for r in records {
        let entry = next.entry(r.partition).or_insert(0);
        *entry = (*entry).max(r.offset + 1);
    }
    next
}

/// Produce with every codec, consume in a group in two runs (commit, stop, resume), then
/// read everything with a plain consumer.
fn produce_consume_resume(version: &str) {
    let data = DataDir::builder().topic(TopicSpec::new(TOPIC, 3)).build();
    let broker = start(&data);
    let Some(produced) = produce_all(&broker, version) else {
        return;
    };
    let produced = as_set("the producer", &produced);
    let group = format!("sarama-{version}");
    let half = (produced.len() / 2).to_string();

    // First member: half the records, committed on close.
    let first = run(
        &broker,
        version,
        "group",
        &["--topic", TOPIC, "--group", &group, "--max-records", &half],
    )
    .expect("installed");
    let first_records = records(&first);
    assert_eq!(
        first_records.len(),
        produced.len() / 2,
        "first run's records"
    );
    let mut expected_commit: BTreeMap<i64, i64> = (0..3).map(|p| (p, -1)).collect();
    expected_commit.extend(next_offsets(&first_records));
    assert_eq!(
        committed(&first),
        expected_commit,
        "committed after the first run"
    );

    // Second member of the same group: from the committed offsets to the end.
    let second = run(
        &broker,
        version,
        "group",
        &["--topic", TOPIC, "--group", &group],
    )
    .expect("installed");
    let second_records = records(&second);
    let mut both = first_records.clone();
    both.extend(second_records);
    assert_eq!(
        as_set("the two group runs", &both),
        produced,
        "the two runs together read every record once"
    );
    let ends: BTreeMap<i64, i64> = next_offsets(&produced.iter().cloned().collect::<Vec<_>>());
    let mut final_commit: BTreeMap<i64, i64> = (0..3).map(|p| (p, -1)).collect();
    final_commit.extend(ends);
    assert_eq!(committed(&second), final_commit, "committed at the end");

    // A plain consumer (no group) from the oldest offsets.
    let all = run(&broker, version, "consume", &["--topic", TOPIC]).expect("installed");
    assert_eq!(as_set("the consumer", &records(&all)), produced);
    assert_no_closed_connections(&broker, &format!("Sarama {version}"));
}

/// The plain producer and consumer (no group: Sarama's `ConsumerGroup` needs 0.10.2).
fn produce_consume(version: &str) {
    let data = DataDir::builder().topic(TopicSpec::new(TOPIC, 3)).build();
    let broker = start(&data);
    let Some(produced) = produce_all(&broker, version) else {
        return;
    };
    let produced = as_set("the producer", &produced);
    let all = run(&broker, version, "consume", &["--topic", TOPIC]).expect("installed");
    assert_eq!(as_set("the consumer", &records(&all)), produced);
    assert_no_closed_connections(&broker, &format!("Sarama {version}"));
}

/// Checks partitions as the driver lists them: indexes `0..count`, each led by `node`,
/// replicas and ISR `[node]`.
fn check_partitions(doc: &Json, node: i64, what: &str, partitions: &Json, count: i64) {
    let partitions = partitions
        .as_array()
        .unwrap_or_else(|| panic!("{what}: {doc}"));
    let ids: Vec<i64> = partitions
        .iter()
        .map(|p| p.field("id").as_i64().expect("id"))
        .collect();
    assert_eq!(ids, (0..count).collect::<Vec<_>>(), "{what}");
    for p in partitions {
        assert_eq!(p.field("leader").as_i64(), Some(node), "{what}: {p}");
        assert_eq!(
            p.field("replicas"),
            &serde_json::json!([node]),
            "{what}: {p}"
        );
        assert_eq!(p.field("isr"), &serde_json::json!([node]), "{what}: {p}");
    }
}

/// ClusterAdmin: ListTopics (Metadata and DescribeConfigs), DescribeTopics, DescribeConfig,
/// then CreateTopic, DescribeTopics and DeleteTopic of a new topic (at 0.10 without the
/// two that need DescribeConfigs, which Sarama sends from 0.11 on).
fn admin(version: &str) {
    let data = DataDir::builder()
        .topic(TopicSpec::new("events", 3).records(20))
        .topic(
            TopicSpec::new("settings", 2)
                .config("cleanup.policy", "compact")
                .config("retention.ms", "3600000"),
        )
        .build();
    let broker = start(&data);
    let node = i64::from(data.node_id);
    let created = format!("sarama-created-{}", version.replace('.', "-"));
    let Some(doc) = run(
        &broker,
        version,
        "admin",
        &["--topic", "settings", "--create-topic", &created],
    ) else {
        return;
    };
    let admin = doc.field("admin");
    check_partitions(
        &doc,
        node,
        "DescribeTopics settings",
        admin.field("describe_topic"),
        2,
    );
    check_partitions(&doc, node, "the created topic", admin.field("created"), 2);
    assert_eq!(admin.field("deleted").as_bool(), Some(true));
    if version.starts_with("0.10.") {
        // Sarama sends DescribeConfigs (also part of ListTopics) from 0.11 on only.
        assert_eq!(
            admin.field("skipped"),
            &serde_json::json!(["ListTopics", "DescribeConfig"])
        );
        assert_no_closed_connections(&broker, &format!("Sarama {version} ClusterAdmin"));
        return;
    }

    let listed = admin.field("list_topics");
    for (name, partitions) in [("events", 3), ("settings", 2)] {
        let topic = listed.field(name);
        assert_eq!(
            topic.field("partitions").as_i64(),
            Some(partitions),
            "ListTopics {name}: {listed}"
        );
        assert_eq!(topic.field("replication_factor").as_i64(), Some(1));
    }
    // ListTopics keeps the configs its DescribeConfigs (v0) answer does not mark as defaults
    // (which ones those are is the broker's v0 `is_default` rule, not checked here beyond
    // the topic's own overrides).
    let configs = listed.field("settings").field("configs");
    assert_eq!(configs.field("cleanup.policy").as_str(), Some("compact"));
    assert_eq!(configs.field("retention.ms").as_str(), Some("3600000"));
    assert!(
        listed
            .as_object()
            .expect("topics")
            .keys()
            .all(|t| !t.starts_with("__")),
        "no internal topics: {listed}"
    );

    let described = admin.field("describe_config");
    let retention = described.field("retention.ms");
    assert_eq!(
        retention.field("value").as_str(),
        Some("3600000"),
        "{described}"
    );
    assert_eq!(
        retention.field("default").as_bool(),
        Some(false),
        "{described}"
    );
    assert_eq!(
        described.field("cleanup.policy").field("value").as_str(),
        Some("compact"),
        "{described}"
    );
    assert_no_closed_connections(&broker, &format!("Sarama {version} ClusterAdmin"));
}

/// A plain consumer and a group (two runs, commit and resume) on records the harness
/// wrote: the read path alone.
fn consume_written(version: &str, group: bool) {
    let (data, written) = consume_fixture(TOPIC);
    let broker = start(&data);
    let Some(all) = run(&broker, version, "consume", &["--topic", TOPIC]) else {
        return;
    };
    assert_eq!(as_set("the consumer", &records(&all)), written);
    if group {
        let name = format!("sarama-fixture-{version}");
        let half = (written.len() / 2).to_string();
        let args = ["--topic", TOPIC, "--group", &name, "--max-records", &half];
        let first = run(&broker, version, "group", &args).expect("installed");
        let second = run(
            &broker,
            version,
            "group",
            &["--topic", TOPIC, "--group", &name],
        )
        .expect("installed");
        let mut both = records(&first);
        both.extend(records(&second));
        assert_eq!(as_set("the two group runs", &both), written);
    }
    assert_no_closed_connections(&broker, &format!("Sarama {version}"));
}

#[test]
fn sarama_0_10_0_consumes_written_records_of_every_codec() {
    consume_written("0.10.0.0", false);
}

#[test]
fn sarama_0_10_2_consumes_written_records_alone_and_in_a_group() {
    consume_written("0.10.2.0", true);
}

#[test]
fn sarama_0_10_0_produces_and_consumes_every_codec() {
    produce_consume("0.10.0.0");
}

#[test]
fn sarama_0_10_2_consumes_in_a_group_and_resumes() {
    produce_consume_resume("0.10.2.0");
}

#[test]
fn sarama_1_0_consumes_in_a_group_and_resumes() {
    produce_consume_resume("1.0.0");
}

#[test]
fn sarama_2_1_consumes_in_a_group_and_resumes() {
    produce_consume_resume("2.1.0");
}

#[test]
fn sarama_0_10_2_cluster_admin() {
    admin("0.10.2.0");
}

#[test]
fn sarama_1_0_cluster_admin() {
    admin("1.0.0");
}

#[test]
fn sarama_2_1_cluster_admin() {
    admin("2.1.0");
}
