//! kafka-python and confluent-kafka: a 3-partition topic created through the admin
//! client, 100,000 keyed records with headers produced (acks=all), read back across clean
//! restarts, offsets listed, the topic deleted.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use gregor_protocol::ApiKey;
use gregor_protocol::records::Compression;

use crate::disk;
use crate::records::{self, Generated};
use crate::support::{
    Broker, DataDir, Json, JsonExt, python, python_client_versions, python_with_timeout,
};
use crate::wire::{self, error};

/// Records each client produces.
const RECORDS: usize = 100_000;

/// Partitions of the topic.
const PARTITIONS: i32 = 3;

/// Time limit of one producer or consumer run (the drivers get less, to report first).
const RUN_LIMIT: Duration = Duration::from_secs(240);

/// The driver's own `--timeout`.
const DRIVER_TIMEOUT: &str = "200";

/// The two Python clients.
#[derive(Clone, Copy, Debug)]
enum Client {
    KafkaPython,
    Confluent,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::KafkaPython => "kafka-python",
            Client::Confluent => "confluent-kafka",
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Client::KafkaPython => "kafka_python",
            Client::Confluent => "confluent",
        }
    }

    /// The codec each client produces with (kcat covers the others).
    fn codec(self) -> (&'static str, Compression) {
        match self {
            Client::KafkaPython => ("lz4", Compression::Lz4),
            Client::Confluent => ("zstd", Compression::Zstd),
        }
    }

    /// kafka-python refuses header values that are null.
    fn null_headers(self) -> bool {
        matches!(self, Client::Confluent)
    }
}

/// Broker settings: auto-creation makes 3 partitions (the fallback while CreateTopics is
/// not served), and 4 MiB segments so that each partition rolls a few.
const PROPS: &[(&str, &str)] = &[("num.partitions", "3"), ("log.segment.bytes", "1048576")];

fn run(client: Client, role: &str, args: &[&str]) -> Option<crate::support::ClientOutput> {
    python_with_timeout(&format!("{role}_{}.py", client.suffix()), args, RUN_LIMIT)
}

/// An admin driver run that must succeed; its JSON document.
fn admin(client: Client, broker: &Broker, args: &[&str]) -> Json {
    let bootstrap = broker.bootstrap();
    let mut all = vec!["--bootstrap", bootstrap.as_str(), "--timeout", "60"];
    all.extend_from_slice(args);
    let out = run(client, "admin", &all).expect("the virtualenv");
    out.assert_success();
    out.json()
}

/// Checks an admin driver's per-topic outcome (`{"topics": {name: {...}}}`).
fn assert_topic_ok(client: Client, doc: &Json, topic: &str, op: &str) {
    let result = doc.field("topics").field(topic);
    let ok = match client {
        Client::KafkaPython => result.field("error_code").as_i64() == Some(0),
        Client::Confluent => result.field("error").is_null() && !result.is_null(),
    };
    assert!(ok, "{} {op} of {topic} failed: {doc}", client.name());
}

/// Waits for every directory of `topic` to leave `data` (Kafka renames a deleted
/// partition's directory to `<topic>-<p>.<id>-delete` and removes it later).
fn wait_dirs_gone(data: &Path, topic: &str) -> Result<(), Vec<String>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left: Vec<String> = std::fs::read_dir(data)
            .expect("list the data directory")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| {
                name.strip_prefix(topic)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
            })
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(left);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Expected ListOffsets answers from the acknowledgements: per partition the acked
/// `(offset, timestamp)` pairs in offset order.
fn expected_offsets(acks: &[(usize, i32, i64)], base_ts: i64) -> BTreeMap<i32, Vec<(i64, i64)>> {
    let mut out: BTreeMap<i32, Vec<(i64, i64)>> = BTreeMap::new();
    for &(i, p, o) in acks {
        out.entry(p).or_default().push((o, base_ts + i as i64));
    }
    for list in out.values_mut() {
        list.sort_unstable();
    }
    out
}

/// Checks the offsets an admin driver listed (`--op offsets`) against what was produced.
fn check_listed_offsets(
    client: Client,
    doc: &Json,
    produced: &BTreeMap<i32, Vec<(i64, i64)>>,
    timestamps: &[i64],
) {
    let name = client.name();
    let entry = |section: &Json, p: i32| -> (i64, i64) {
        let e = section.field(&p.to_string());
        (
            e.field("offset")
                .as_i64()
                .unwrap_or_else(|| panic!("{name}: offset of {p} in {doc}")),
            e.field("timestamp")
                .as_i64()
                .unwrap_or_else(|| panic!("{name}: timestamp of {p} in {doc}")),
        )
    };
    for (&p, records) in produced {
        let end = records.len() as i64;
        assert_eq!(
            entry(doc.field("earliest"), p).0,
            0,
            "{name}: earliest offset of partition {p}"
        );
        assert_eq!(
            entry(doc.field("latest"), p).0,
            end,
            "{name}: latest offset of partition {p}"
        );
        // Timestamps grow with the index, and so with the offset in a partition.
        let (last_offset, last_ts) = *records.last().expect("records");
        assert_eq!(
            entry(doc.field("max_timestamp"), p),
            (last_offset, last_ts),
            "{name}: max timestamp (offset, timestamp) of partition {p}"
        );
        for &t in timestamps {
            let want = records
                .iter()
                .find(|(_, ts)| *ts >= t)
                .copied()
                .unwrap_or((-1, -1));
            assert_eq!(
                entry(doc.field("timestamps").field(&t.to_string()), p),
                want,
                "{name}: offset for timestamp {t} in partition {p}"
            );
        }
    }
}

fn round_trip(client: Client) {
    if crate::support::clients::python_path().is_none() {
        // Prints the skip line (or fails when the clients are required).
        let _ = python("admin_kafka_python.py", &[]);
        return;
    }
    if let Some(versions) = python_client_versions() {
        println!("clients: {versions}");
    }
    let started = Instant::now();
    let data = DataDir::builder().build();
    let mut broker = Broker::start_with(&data, PROPS);
    let topic = format!("hundred-k-{}", client.suffix().replace('_', "-"));
    let (codec, compression) = client.codec();

    // 1. The topic, through the admin client when CreateTopics is served.
    if wire::serves(&broker, ApiKey::CreateTopics) {
        let partitions = PARTITIONS.to_string();
        let doc = admin(
            client,
            &broker,
            &[
                "--op",
                "create",
                "--topic",
                &topic,
                "--partitions",
                &partitions,
            ],
        );
        assert_topic_ok(client, &doc, &topic, "create");
        wire::wait_for_topic(&broker, &topic, PARTITIONS as usize, false);
    } else {
        println!(
            "note: the broker does not serve CreateTopics yet: {topic} is auto-created by the \
             producer's Metadata request (num.partitions=3)"
        );
    }

    // 2. 100,000 records, acks=all.
    let base_ts = wire::now_ms() - 300_000;
    let base = base_ts.to_string();
    let count = RECORDS.to_string();
    let bootstrap = broker.bootstrap();
    let out = run(
        client,
        "produce",
        &[
            "--bootstrap",
            &bootstrap,
            "--timeout",
            DRIVER_TIMEOUT,
            "--topic",
            &topic,
            "--count",
            &count,
            "--tag",
            &topic,
            "--base-ts",
            &base,
            "--acks",
            "all",
            "--compression",
            codec,
        ],
    )
    .expect("the virtualenv");
    out.assert_success();
    println!("{}", out.stderr.trim());
    let acks = records::parse_acks(&out);
    let counts = records::check_acks(client.name(), &acks, RECORDS);
    assert_eq!(
        counts.keys().copied().collect::<Vec<_>>(),
        (0..PARTITIONS).collect::<Vec<_>>(),
        "{}: the keys should spread over the 3 partitions: {counts:?}",
        client.name()
    );
    let pattern = records::pattern();
    let null_headers = client.null_headers();
    let expected =
        |i: usize| -> Generated { records::generate(&pattern, &topic, base_ts, i, null_headers) };

    // 3. A clean restart between producing and consuming.
    broker.stop();
    let mut broker = Broker::start_with(&data, PROPS);
    let bootstrap = broker.bootstrap();

    // 4. Everything back through the client's consumer (assigned partitions).
    let out = run(
        client,
        "consume_digest",
        &[
            "--bootstrap",
            &bootstrap,
            "--timeout",
            DRIVER_TIMEOUT,
            "--topic",
            &topic,
        ],
    )
    .expect("the virtualenv");
    out.assert_success();
    println!("{}", out.stderr.trim());
    let consumed = records::parse_digests(&out);
    records::check_consumed(client.name(), &consumed, &acks, expected);

    // 5. ListOffsets through the admin client: earliest, latest, max timestamp, and by
    //    timestamp (before the first record, inside, at the last, after the last).
    let produced = expected_offsets(&acks, base_ts);
    let timestamps = [
        base_ts - 1000,
        base_ts + 1,
        base_ts + 12_345,
        base_ts + 77_777,
        base_ts + RECORDS as i64 - 1,
        base_ts + RECORDS as i64 + 1000,
    ];
    let mut args = vec![
        "--op".to_string(),
        "offsets".into(),
        "--topic".into(),
        topic.clone(),
        "--partitions".into(),
        PARTITIONS.to_string(),
    ];
    for t in &timestamps {
        args.extend(["--timestamp".to_string(), t.to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let doc = admin(client, &broker, &args);
    check_listed_offsets(client, &doc, &produced, &timestamps);

    // 6. Another clean restart; the files on disk in Kafka's format; every record read back
    //    with Fetch, byte for byte, in the batches the client compressed.
    broker.stop();
    for p in 0..PARTITIONS {
        let dir = disk::partition_dir(data.path(), &topic, p);
        let segments = disk::check_partition_dir(&dir);
        assert!(
            segments.len() >= 2,
            "{}-{p}: megabytes of records in 1 MiB segments should have rolled: {} segment(s)",
            topic,
            segments.len()
        );
    }
    let broker = Broker::start_with(&data, PROPS);
    let mut raw = wire::connect(&broker);
    let mut by_offset: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for &(i, p, o) in &acks {
        by_offset.insert((p, o), i);
    }
    for p in 0..PARTITIONS {
        let log = wire::fetch_all(&mut raw, &topic, p, 0);
        assert_eq!(
            log.high_watermark, counts[&p],
            "{topic}-{p}: high watermark after restarts"
        );
        assert_eq!(log.log_start_offset, 0, "{topic}-{p}: log start offset");
        // As sent: compressed, or not when compressing did not make the batch smaller.
        let compressed = log
            .batches
            .iter()
            .filter(|batch| {
                let stored = batch.compression();
                assert!(
                    stored == compression || stored == Compression::None,
                    "{topic}-{p}: batch at {} stored as {stored}, {} sent {codec}",
                    batch.base_offset(),
                    client.name()
                );
                stored == compression
            })
            .count();
        assert!(compressed > 0, "{topic}-{p}: no batch stored as {codec}");
        for record in log.records() {
            let i = by_offset[&(p, record.offset)];
            let want = expected(i);
            let headers: Vec<(String, Option<Vec<u8>>)> = record
                .headers
                .iter()
                .map(|h| {
                    (
                        String::from_utf8_lossy(&h.key).into_owned(),
                        h.value.as_ref().map(|v| v.to_vec()),
                    )
                })
                .collect();
            assert_eq!(
                (
                    record.timestamp,
                    record.key.as_ref().map(|k| k.to_vec()),
                    record.value.as_ref().map(|v| v.to_vec()),
                    headers
                ),
                (want.timestamp, want.key, want.value, want.headers),
                "{topic}-{p} offset {}: record {i} fetched after two restarts",
                record.offset
            );
        }
    }
    drop(raw);

    // 7. Delete the topic through the admin client; gone from Metadata and from disk, and
    //    still gone after a restart.
    let mut broker = broker;
    if wire::serves(&broker, ApiKey::DeleteTopics) {
        let doc = admin(client, &broker, &["--op", "delete", "--topic", &topic]);
        assert_topic_ok(client, &doc, &topic, "delete");
        let deadline = Instant::now() + wire::METADATA_WAIT;
        while wire::topic_error(&broker, &topic) != error::UNKNOWN_TOPIC_OR_PARTITION {
            assert!(
                Instant::now() < deadline,
                "{topic} still in Metadata after DeleteTopics"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        if let Err(left) = wait_dirs_gone(data.path(), &topic) {
            panic!("{topic}: directories left 30 s after DeleteTopics: {left:?}");
        }
        broker.stop();
        let broker = Broker::start_with(&data, PROPS);
        assert_eq!(
            wire::topic_error(&broker, &topic),
            error::UNKNOWN_TOPIC_OR_PARTITION,
            "{topic} came back after a restart"
        );
        if let Err(left) = wait_dirs_gone(data.path(), &topic) {
            panic!("{topic}: directories back after a restart: {left:?}");
        }
    } else {
        println!("note: the broker does not serve DeleteTopics yet: the topic is not deleted");
    }
    println!("{}: done in {:?}", client.name(), started.elapsed());
}

#[test]
fn kafka_python_round_trips_100k_records_across_restarts() {
    round_trip(Client::KafkaPython);
}

#[test]
fn confluent_round_trips_100k_records_across_restarts() {
    round_trip(Client::Confluent);
}

/// Records per codec in [`python_clients_produce_with_every_codec`].
const CODEC_RECORDS: usize = 3000;

/// Both clients produce with each codec (kcat's librdkafka leaves some uncompressed, see
/// `kcat.rs`), read back with the same client, and the batches on the broker carry the
/// codec.
#[test]
fn python_clients_produce_with_every_codec() {
    if crate::support::clients::python_path().is_none() {
        let _ = python("admin_kafka_python.py", &[]);
        return;
    }
    let data = DataDir::builder().build();
    let broker = Broker::start_with(&data, PROPS);
    let bootstrap = broker.bootstrap();
    let pattern = records::pattern();
    let base_ts = wire::now_ms() - 60_000;
    let base = base_ts.to_string();
    let count = CODEC_RECORDS.to_string();
    let mut raw = wire::connect(&broker);
    for client in [Client::Confluent, Client::KafkaPython] {
        for (codec, compression) in [
            ("none", Compression::None),
            ("gzip", Compression::Gzip),
            ("snappy", Compression::Snappy),
            ("lz4", Compression::Lz4),
            ("zstd", Compression::Zstd),
        ] {
            let topic = format!("codec-{codec}-{}", client.suffix().replace('_', "-"));
            let mut args = vec![
                "--bootstrap",
                &bootstrap,
                "--timeout",
                "60",
                "--topic",
                &topic,
                "--count",
                &count,
                "--tag",
                &topic,
                "--base-ts",
                &base,
                "--compression",
                codec,
            ];
            if matches!(client, Client::Confluent) {
                // librdkafka's `msg` log says when it decides not to compress.
                args.extend(["--debug", "msg"]);
            }
            let out = run(client, "produce", &args).expect("the virtualenv");
            out.assert_success();
            let refused = format!("Broker does not support compression type {codec}");
            let downgraded = out.stderr.contains(&refused);
            if downgraded {
                println!(
                    "note: {} sent {codec} batches uncompressed: \"{refused}\" (librdkafka's \
                     feature check of ApiVersions; see the report)",
                    client.name()
                );
            }
            let acks = records::parse_acks(&out);
            let counts = records::check_acks(client.name(), &acks, CODEC_RECORDS);
            let out = run(
                client,
                "consume_digest",
                &[
                    "--bootstrap",
                    &bootstrap,
                    "--timeout",
                    "60",
                    "--topic",
                    &topic,
                ],
            )
            .expect("the virtualenv");
            out.assert_success();
            let consumed = records::parse_digests(&out);
            let null_headers = client.null_headers();
            records::check_consumed(
                &format!("{} ({codec})", client.name()),
                &consumed,
                &acks,
                |i| records::generate(&pattern, &topic, base_ts, i, null_headers),
            );
            // Both clients send a batch uncompressed when compressing does not make it
            // smaller (the values are mostly random bytes: a batch holding one 20 KB value).
            let mut compressed = 0;
            for (&p, &n) in &counts {
                let log = wire::fetch_all(&mut raw, &topic, p, 0);
                assert_eq!(log.high_watermark, n, "{topic}-{p}: high watermark");
                for batch in &log.batches {
                    let stored = batch.compression();
                    let allowed = if downgraded {
                        stored == Compression::None
                    } else {
                        stored == compression || stored == Compression::None
                    };
                    assert!(
                        allowed,
                        "{topic}-{p}: batch at {} stored as {stored}, {} sent {codec}",
                        batch.base_offset(),
                        client.name()
                    );
                    compressed += usize::from(stored == compression);
                }
            }
            assert!(
                downgraded || compressed > 0,
                "{topic}: no batch stored as {codec}"
            );
        }
    }
}
