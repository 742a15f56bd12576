//! Real Kafka clients against the `gregor` binary, on data directories written in Kafka's
//! own layout: Debian's kcat (librdkafka 2.0.2, an old client strict about tagged fields),
//! confluent-kafka (a current librdkafka) and kafka-python (an independent implementation);
//! and old clients sending the versions Kafka 4 dropped: Sarama 1.22.1 as a 0.10, 1.0 and
//! 2.1 client (`sarama`), kafka-python pinned to `api_version` 0.10 and 0.11
//! (`old_api_kafka_python`).
//!
//! The clients come from `scripts/install-test-clients.sh` (see `support::clients`); when
//! one is missing the test prints `skipped: ...` and passes, unless
//! `GREGOR_REQUIRE_CLIENTS=1` (as in `scripts/test.sh`).
//!
//! Consumers start at `beginning` and stop at the end offsets (ListOffsets) when the broker
//! advertises ListOffsets; otherwise at offset 0 and at the high watermark of the fetch
//! responses, which needs only ApiVersions, Metadata and Fetch.

mod support;

#[path = "real_clients/fetch_sessions.rs"]
mod fetch_sessions;

#[path = "real_clients/sarama.rs"]
mod sarama;

#[path = "real_clients/old_api_kafka_python.rs"]
mod old_api_kafka_python;

use gregor_protocol::ApiKey;
use gregor_protocol::records::Compression;
use support::{
    Broker, DataDir, Json, JsonExt, TopicSpec, advertised_versions, assert_consumed_all, kcat,
    kcat_version, parse_driver_records, parse_kcat_json_records, python, python_client_versions,
};

/// Three topics for the metadata tests: records, an empty one, one with configs.
fn metadata_fixture() -> DataDir {
    DataDir::builder()
        .topic(TopicSpec::new("events", 3).records(20))
        .topic(TopicSpec::new("audit-log", 1))
        .topic(
            TopicSpec::new("settings", 2)
                .config("cleanup.policy", "compact")
                .config("retention.ms", "3600000"),
        )
        .build()
}

/// Topic `records`: 4 partitions, 4500 records, 2 to 4 segments each (batches of 37
/// records, 64 KiB segments); partition 0 uncompressed, 1 lz4, 2 zstd, 3 snappy and gzip
/// batches in turn. Topic `empty`: one partition without records.
fn records_fixture() -> DataDir {
    let data = DataDir::builder()
        .topic(
            TopicSpec::new("records", 4)
                .partition_records(0, 1500)
                .partition_records(1, 1200)
                .partition_records(2, 1000)
                .partition_records(3, 800)
                .batch_records(37)
                .segment_bytes(64 * 1024)
                .partition_compression(1, &[Compression::Lz4])
                .partition_compression(2, &[Compression::Zstd])
                .partition_compression(3, &[Compression::Snappy, Compression::Gzip]),
        )
        .topic(TopicSpec::new("empty", 1))
        .build();
    for partition in &data.topic("records").partitions {
        assert!(
            partition.segments.len() >= 2,
            "partition {} should span several segments: {:?}",
            partition.index,
            partition.segments
        );
    }
    data
}

/// How consumers find the start and the end of a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bounds {
    /// `beginning`, and ListOffsets for the end.
    ListOffsets,
    /// Offset 0, and the high watermark of the fetch responses.
    FetchOnly,
}

fn bounds(broker: &Broker) -> Bounds {
    if advertised_versions(broker.addr(), ApiKey::ListOffsets).is_some() {
        Bounds::ListOffsets
    } else {
        println!(
            "note: the broker does not advertise ListOffsets: consumers start at offset 0 \
             and stop at the fetch high watermark"
        );
        Bounds::FetchOnly
    }
}

/// librdkafka (every version: kcat's 2.0.2 and confluent-kafka's) gives a Fetch request a
/// version only when the broker's ApiVersions enable its `MsgVer2` feature (Produce v3 and
/// Fetch v4 advertised; failing that `MsgVer1`, Produce v2 and Fetch v2, or `ThrottleTime`,
/// Produce and Fetch v1-2). Otherwise the request stays at version 0, which it then refuses
/// to send to a broker without Fetch v0 ("request not supported by broker"), retrying
/// forever without reporting an error. Fails at once with that reason rather than after a
/// client time-out.
fn assert_librdkafka_can_fetch(broker: &Broker) {
    let produce = advertised_versions(broker.addr(), ApiKey::Produce);
    let fetch = advertised_versions(broker.addr(), ApiKey::Fetch);
    assert!(
        produce.is_some_and(|(_, max)| max >= 3) && fetch.is_some_and(|(_, max)| max >= 4),
        "librdkafka cannot fetch from this broker: it advertises Produce {produce:?} and Fetch \
         {fetch:?} in ApiVersions, and librdkafka only versions its Fetch requests when \
         Produce v3+ and Fetch v4+ are both advertised (feature MsgVer2); without them it \
         loops on 'Failing FetchResponse (v0): request not supported by broker'"
    );
}

fn print_versions() {
    if let Some(version) = kcat_version() {
        println!("client: {version}");
    }
    if let Some(versions) = python_client_versions() {
        println!("client: {versions}");
    }
}

/// A partition as a client lists it: index, leader, replicas, ISR.
type ListedPartition = (i64, i64, Vec<i64>, Vec<i64>);

/// A topic as a client lists it.
type ListedTopic = (String, Vec<ListedPartition>);

/// Checks a metadata listing against the fixture: every topic with its partitions, each
/// led by the node, replicas and ISR `[node]`.
fn check_listing(client: &str, data: &DataDir, topics: &[ListedTopic]) {
    let node = i64::from(data.node_id);
    for written in &data.topics {
        let Some((_, partitions)) = topics.iter().find(|(name, _)| *name == written.name) else {
            panic!(
                "{client} does not list topic {}: {:?}",
                written.name,
                topics.iter().map(|t| &t.0).collect::<Vec<_>>()
            );
        };
        let mut indexes: Vec<i64> = partitions.iter().map(|p| p.0).collect();
        indexes.sort_unstable();
        let expected: Vec<i64> = (0..written.partitions.len() as i64).collect();
        assert_eq!(
            indexes, expected,
            "{client}: partitions of {}",
            written.name
        );
        for (index, leader, replicas, isr) in partitions {
            assert_eq!(
                (*leader, replicas.as_slice(), isr.as_slice()),
                (node, &[node][..], &[node][..]),
                "{client}: leader, replicas and ISR of {}-{index}",
                written.name
            );
        }
    }
    let internal: Vec<&String> = topics
        .iter()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("__"))
        .collect();
    assert!(
        internal.is_empty(),
        "{client} lists internal topics: {internal:?}"
    );
}

fn ints(value: &Json) -> Vec<i64> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_i64().or_else(|| v.get("id").and_then(Json::as_i64)))
        .map(|v| v.expect("an integer or {\"id\": n}"))
        .collect()
}

#[test]
fn kcat_lists_topics_and_partitions() {
    let data = metadata_fixture();
    let broker = Broker::start(&data);
    let bootstrap = broker.bootstrap();
    let Some(out) = kcat(&["-L", "-b", &bootstrap, "-J", "-m", "15"]) else {
        return;
    };
    print_versions();
    out.assert_success();
    let doc = out.json();
    let brokers = doc.field("brokers").as_array().expect("brokers");
    assert_eq!(brokers.len(), 1, "one broker: {doc}");
    assert_eq!(
        brokers[0].field("id").as_i64(),
        Some(i64::from(data.node_id))
    );
    assert_eq!(brokers[0].field("name").as_str(), Some(bootstrap.as_str()));
    let topics: Vec<_> = doc
        .field("topics")
        .as_array()
        .expect("topics")
        .iter()
        .map(|t| {
            assert!(t.get("error").is_none(), "topic error in {t}");
            let partitions = t
                .field("partitions")
                .as_array()
                .expect("partitions")
                .iter()
                .map(|p| {
                    assert!(p.get("error").is_none(), "partition error in {p}");
                    (
                        p.field("partition").as_i64().expect("index"),
                        p.field("leader").as_i64().expect("leader"),
                        ints(p.field("replicas")),
                        ints(p.field("isrs")),
                    )
                })
                .collect();
            (
                t.field("topic").as_str().expect("name").to_string(),
                partitions,
            )
        })
        .collect();
    assert_eq!(topics.len(), data.topics.len(), "topics listed: {doc}");
    check_listing("kcat -L -J", &data, &topics);

    // The human-readable listing too.
    let text = kcat(&["-L", "-b", &bootstrap, "-m", "15"]).expect("kcat");
    text.assert_success();
    for topic in &data.topics {
        let line = format!(
            "topic \"{}\" with {} partitions:",
            topic.name,
            topic.partitions.len()
        );
        assert!(
            text.stdout.contains(&line),
            "no {line:?} in\n{}",
            text.stdout
        );
    }
    assert!(
        text.stdout
            .contains(&format!("broker {} at {bootstrap}", data.node_id)),
        "broker line missing:\n{}",
        text.stdout
    );
}

#[test]
fn confluent_admin_lists_topics() {
    let data = metadata_fixture();
    let broker = Broker::start(&data);
    let bootstrap = broker.bootstrap();
    let Some(out) = python(
        "metadata_confluent.py",
        &["--bootstrap", &bootstrap, "--timeout", "30"],
    ) else {
        return;
    };
    print_versions();
    out.assert_success();
    let doc = out.json();
    let brokers = doc.field("brokers").as_array().expect("brokers");
    assert_eq!(brokers.len(), 1, "one broker: {doc}");
    assert_eq!(
        brokers[0].field("id").as_i64(),
        Some(i64::from(data.node_id))
    );
    assert_eq!(brokers[0].field("host").as_str(), Some("127.0.0.1"));
    assert_eq!(
        brokers[0].field("port").as_i64(),
        Some(i64::from(data.ports.plaintext))
    );
    assert_eq!(
        doc.field("cluster_id").as_str(),
        Some(data.cluster_id.as_str()),
        "cluster id"
    );
    assert_eq!(
        doc.field("controller_id").as_i64(),
        Some(i64::from(data.node_id)),
        "controller id (KRaft brokers report a random alive broker)"
    );
    let topics: Vec<_> = doc
        .field("topics")
        .as_array()
        .expect("topics")
        .iter()
        .map(|t| {
            assert!(t.field("error").is_null(), "topic error in {t}");
            let partitions = t
                .field("partitions")
                .as_array()
                .expect("partitions")
                .iter()
                .map(|p| {
                    assert!(p.field("error").is_null(), "partition error in {p}");
                    (
                        p.field("id").as_i64().expect("id"),
                        p.field("leader").as_i64().expect("leader"),
                        ints(p.field("replicas")),
                        ints(p.field("isrs")),
                    )
                })
                .collect();
            (
                t.field("name").as_str().expect("name").to_string(),
                partitions,
            )
        })
        .collect();
    assert_eq!(topics.len(), data.topics.len(), "topics listed: {doc}");
    check_listing("confluent-kafka AdminClient.list_topics", &data, &topics);
}

fn kafka_python_topics(doc: &Json) -> Vec<ListedTopic> {
    doc.field("topics")
        .as_array()
        .expect("topics")
        .iter()
        .map(|t| {
            assert_eq!(
                t.field("error_code").as_i64(),
                Some(0),
                "topic error in {t}"
            );
            let partitions = t
                .field("partitions")
                .as_array()
                .expect("partitions")
                .iter()
                .map(|p| {
                    assert_eq!(
                        p.field("error_code").as_i64(),
                        Some(0),
                        "partition error in {p}"
                    );
                    (
                        p.field("partition").as_i64().expect("index"),
                        p.field("leader").as_i64().expect("leader"),
                        ints(p.field("replicas")),
                        ints(p.field("isr")),
                    )
                })
                .collect();
            (
                t.field("name").as_str().expect("name").to_string(),
                partitions,
            )
        })
        .collect()
}

#[test]
fn kafka_python_lists_topics() {
    let data = metadata_fixture();
    let broker = Broker::start(&data);
    let bootstrap = broker.bootstrap();
    let Some(out) = python(
        "list_topics_kafka_python.py",
        &["--bootstrap", &bootstrap, "--timeout", "30"],
    ) else {
        return;
    };
    print_versions();
    out.assert_success();
    let doc = out.json();
    let topics = kafka_python_topics(&doc);
    assert_eq!(topics.len(), data.topics.len(), "topics listed: {doc}");
    check_listing("kafka-python describe_topics", &data, &topics);
    for written in &data.topics {
        let listed = doc
            .field("topics")
            .as_array()
            .expect("topics")
            .iter()
            .find(|t| t.field("name").as_str() == Some(written.name.as_str()))
            .expect("listed");
        assert_eq!(
            listed.field("topic_id").as_str(),
            Some(written.id.to_string().as_str()),
            "topic id of {}",
            written.name
        );
    }
    let brokers = doc.field("brokers").as_array().expect("brokers");
    assert_eq!(brokers.len(), 1, "one broker: {doc}");
    assert_eq!(
        brokers[0].field("port").as_i64(),
        Some(i64::from(data.ports.plaintext))
    );
    assert_eq!(
        doc.field("cluster_id").as_str(),
        Some(data.cluster_id.as_str())
    );
}

#[test]
fn kafka_python_describes_topic_partitions() {
    let data = metadata_fixture();
    let broker = Broker::start(&data);
    if advertised_versions(broker.addr(), ApiKey::DescribeTopicPartitions).is_none() {
        println!("skipped: the broker does not advertise DescribeTopicPartitions");
        return;
    }
    let bootstrap = broker.bootstrap();
    let mut args = vec![
        "--bootstrap",
        &bootstrap,
        "--timeout",
        "30",
        "--api",
        "describe-topic-partitions",
    ];
    for topic in &data.topics {
        args.extend(["--topic", topic.name.as_str()]);
    }
    let Some(out) = python("list_topics_kafka_python.py", &args) else {
        return;
    };
    out.assert_success();
    let doc = out.json();
    let topics = kafka_python_topics(&doc);
    assert_eq!(topics.len(), data.topics.len(), "topics described: {doc}");
    check_listing("kafka-python describe_topic_partitions", &data, &topics);
}

#[test]
fn kcat_consumes_every_record() {
    let data = records_fixture();
    let broker = Broker::start(&data);
    let bootstrap = broker.bootstrap();
    let start = match bounds(&broker) {
        Bounds::ListOffsets => "beginning",
        Bounds::FetchOnly => "0",
    };
    let topic = data.topic("records");
    if support::kcat_version().is_some() {
        assert_librdkafka_can_fetch(&broker);
    }
    let Some(out) = kcat(&[
        "-C", "-b", &bootstrap, "-t", "records", "-o", start, "-e", "-J", "-q", "-m", "15",
    ]) else {
        return;
    };
    print_versions();
    out.assert_success();
    let consumed = parse_kcat_json_records(&out);
    assert_consumed_all("kcat -C -J", topic, None, &consumed);
    println!(
        "kcat read {} records of {} partitions in {:?}",
        consumed.len(),
        topic.partitions.len(),
        out.elapsed
    );

    // A format string, one partition, from the middle of a compressed batch, a count.
    let out = kcat(&[
        "-C",
        "-b",
        &bootstrap,
        "-t",
        "records",
        "-p",
        "1",
        "-o",
        "100",
        "-c",
        "50",
        "-f",
        "%p %o %k %S\\n",
        "-q",
        "-m",
        "15",
    ])
    .expect("kcat");
    out.assert_success();
    let expected: Vec<String> = topic.partitions[1].records[100..150]
        .iter()
        .map(|r| {
            let key = r
                .key
                .as_ref()
                .map_or(String::new(), |k| String::from_utf8_lossy(k).into_owned());
            let size = r.value.as_ref().map_or(-1, |v| v.len() as i64);
            format!("1 {} {key} {size}", r.offset)
        })
        .collect();
    let got: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(got, expected, "kcat -p 1 -o 100 -c 50");

    // An empty partition: nothing, and kcat still ends.
    let out = kcat(&[
        "-C", "-b", &bootstrap, "-t", "empty", "-o", start, "-e", "-J", "-q", "-m", "15",
    ])
    .expect("kcat");
    out.assert_success();
    assert_eq!(
        parse_kcat_json_records(&out),
        Vec::new(),
        "records of `empty`"
    );
}

fn driver_args<'a>(bootstrap: &'a str, bounds: Bounds, until_fetch: &'a str) -> Vec<&'a str> {
    let mut args = vec!["--bootstrap", bootstrap, "--timeout", "60"];
    match bounds {
        Bounds::ListOffsets => args.extend(["--from", "beginning", "--until", "end-offsets"]),
        Bounds::FetchOnly => args.extend(["--from", "0", "--until", until_fetch]),
    }
    args
}

#[test]
fn kafka_python_consumes_every_record() {
    let data = records_fixture();
    let broker = Broker::start(&data);
    let bootstrap = broker.bootstrap();
    let mut args = driver_args(&bootstrap, bounds(&broker), "highwater");
    args.extend(["--topic", "records"]);
    let Some(out) = python("consume_kafka_python.py", &args) else {
        return;
    };
    print_versions();
    out.assert_success();
    let consumed = parse_driver_records(&out);
    assert_consumed_all("kafka-python", data.topic("records"), None, &consumed);
    println!("{}", out.stderr.trim());
}

#[test]
fn confluent_consumes_every_record() {
    let data = records_fixture();
    let broker = Broker::start(&data);
    let bootstrap = broker.bootstrap();
    let mut args = driver_args(&bootstrap, bounds(&broker), "eof");
    args.extend(["--topic", "records"]);
    if support::clients::venv_path().is_some() {
        assert_librdkafka_can_fetch(&broker);
    }
    let Some(out) = python("consume_confluent.py", &args) else {
        return;
    };
    print_versions();
    out.assert_success();
    let consumed = parse_driver_records(&out);
    assert_consumed_all("confluent-kafka", data.topic("records"), None, &consumed);
    println!("{}", out.stderr.trim());
}

/// Per-partition fetch limits smaller than one batch: the broker must still hand out
/// whole batches (KIP-74) and the clients must make progress.
#[test]
fn consumers_read_with_fetch_limits_below_a_batch() {
    let data = records_fixture();
    let broker = Broker::start(&data);
    let bootstrap = broker.bootstrap();
    let bounds = bounds(&broker);
    let limits = [
        "--max-partition-fetch-bytes",
        "1024",
        "--partitions",
        "0,2,3",
    ];

    let mut args = driver_args(&bootstrap, bounds, "highwater");
    args.extend(["--topic", "records"]);
    args.extend(limits);
    let Some(out) = python("consume_kafka_python.py", &args) else {
        return;
    };
    out.assert_success();
    let consumed = parse_driver_records(&out);
    assert_consumed_all(
        "kafka-python (max_partition_fetch_bytes=1024)",
        data.topic("records"),
        Some(&[0, 2, 3]),
        &consumed,
    );

    let mut args = driver_args(&bootstrap, bounds, "eof");
    args.extend(["--topic", "records"]);
    args.extend(limits);
    assert_librdkafka_can_fetch(&broker);
    let out = python("consume_confluent.py", &args).expect("venv");
    out.assert_success();
    let consumed = parse_driver_records(&out);
    assert_consumed_all(
        "confluent-kafka (max.partition.fetch.bytes=1024)",
        data.topic("records"),
        Some(&[0, 2, 3]),
        &consumed,
    );
}

/// Not a test: serves the consumer fixture for a person with a client at hand
/// (`GREGOR_SERVE_SECONDS`, default 300; `RUST_LOG` passes through), e.g.
/// `cargo test -p gregor-broker --test real_clients -- --ignored --nocapture serve_fixture`.
#[test]
#[ignore = "serves a broker for manual debugging"]
fn serve_fixture() {
    let data = records_fixture();
    let log = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_string());
    let broker = Broker::start_with_env(&data, &[], &[("RUST_LOG", &log)]);
    let seconds: u64 = std::env::var("GREGOR_SERVE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    println!(
        "serving {} (data {}, log {}) for {seconds}s",
        broker.bootstrap(),
        data.path().display(),
        broker.work_dir().join("broker.log").display()
    );
    std::thread::sleep(std::time::Duration::from_secs(seconds));
}
