//! `compression.type` on the produce path, against the real binary: a topic created with
//! `compression.type=lz4` stores what producers send with gzip as lz4 batches, a topic
//! without the config takes the broker's `compression.type`, `producer` keeps the
//! producer's codec; kcat, kafka-python and confluent-kafka read every record unchanged.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use gregor_protocol::Uuid;
use gregor_protocol::records::{Batch, Compression, Header, NewRecord, RecordBatches};

use crate::records;
use crate::support::{
    Broker, DataDir, kcat, parse_driver_records, parse_kcat_json_records, python,
    python_with_timeout,
};
use crate::wire;

/// Records each producer run sends.
const COUNT: usize = 2000;

/// Time limit of one client run.
const RUN_LIMIT: Duration = Duration::from_secs(240);

/// The codec of every batch in the segment files of `topic-partition` in `data`.
fn codecs_on_disk(data: &Path, topic: &str, partition: i32) -> Vec<Compression> {
    let dir = data.join(format!("{topic}-{partition}"));
    let mut segments: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    segments.sort();
    let mut codecs = Vec::new();
    for segment in segments {
        let bytes = Bytes::from(std::fs::read(&segment).expect("read the segment"));
        for batch in RecordBatches::new(bytes) {
            match batch.expect("a batch") {
                Batch::V2(batch) => {
                    batch.validate().expect("a sound batch on disk");
                    codecs.push(batch.compression());
                }
                Batch::Legacy(_) => panic!("{}: a legacy batch", segment.display()),
            }
        }
    }
    codecs
}

/// A Python driver run.
fn driver(script: &str, args: &[&str]) -> crate::support::ClientOutput {
    let out = python_with_timeout(script, args, RUN_LIMIT).expect("the virtualenv");
    out.assert_success();
    out
}

#[test]
fn python_clients_gzip_is_stored_with_the_topic_or_broker_codec() {
    if crate::support::clients::python_path().is_none() {
        let _ = python("produce_kafka_python.py", &[]);
        return;
    }
    let data = DataDir::builder().build();
    let broker = Broker::start_with(&data, &[("compression.type", "zstd")]);
    let bootstrap = broker.bootstrap();
    let pattern = records::pattern();
    let base_ts = wire::now_ms() - 60_000;
    let base = base_ts.to_string();
    let count = COUNT.to_string();
    let mut raw = wire::connect(&broker);
    // (topic, its compression.type, the producer's driver, the codecs stored)
    let cases: [(&str, Option<&str>, &str, &[Compression]); 3] = [
        ("stored-lz4", Some("lz4"), "confluent", &[Compression::Lz4]),
        (
            "stored-broker-default",
            None,
            "kafka_python",
            &[Compression::Zstd],
        ),
        (
            "stored-as-produced",
            Some("producer"),
            "confluent",
            // librdkafka sends a batch uncompressed when gzip does not make it smaller.
            &[Compression::Gzip, Compression::None],
        ),
    ];
    for (topic, config, producer, stored) in cases {
        let configs: Vec<(&str, &str)> = config
            .map(|c| ("compression.type", c))
            .into_iter()
            .collect();
        let created = wire::create_topic(&broker, topic, 2, &configs).expect("CreateTopics");
        assert_eq!(created.0, 0, "create {topic}: {created:?}");
        let out = driver(
            &format!("produce_{producer}.py"),
            &[
                "--bootstrap",
                &bootstrap,
                "--timeout",
                "60",
                "--topic",
                topic,
                "--count",
                &count,
                "--tag",
                topic,
                "--base-ts",
                &base,
                "--compression",
                "gzip",
            ],
        );
        let acks = records::parse_acks(&out);
        let counts = records::check_acks(producer, &acks, COUNT);
        let null_headers = producer == "confluent";
        for consumer in [
            "consume_digest_kafka_python.py",
            "consume_digest_confluent.py",
        ] {
            let out = driver(
                consumer,
                &[
                    "--bootstrap",
                    &bootstrap,
                    "--timeout",
                    "60",
                    "--topic",
                    topic,
                ],
            );
            records::check_consumed(
                &format!("{consumer} on {topic}"),
                &records::parse_digests(&out),
                &acks,
                |i| records::generate(&pattern, topic, base_ts, i, null_headers),
            );
        }
        for (&p, &n) in &counts {
            let log = wire::fetch_all(&mut raw, topic, p, 0);
            assert_eq!(log.high_watermark, n, "{topic}-{p}: high watermark");
            assert!(!log.batches.is_empty());
            for batch in &log.batches {
                assert!(
                    stored.contains(&batch.compression()),
                    "{topic}-{p}: a batch fetched as {}, expected one of {stored:?}",
                    batch.compression()
                );
            }
            let on_disk = codecs_on_disk(data.path(), topic, p);
            println!("{topic}-{p}: {n} records, stored as {on_disk:?}");
            assert_eq!(
                on_disk.len(),
                log.batches.len(),
                "{topic}-{p}: batches on disk"
            );
            assert!(
                on_disk.iter().all(|c| stored.contains(c)),
                "{topic}-{p}: codecs on disk {on_disk:?}, expected {stored:?}"
            );
        }
    }
}

/// Record `i` of the raw produce: text key, value and headers, so kcat's JSON shows them.
fn text_record(i: usize, base_ts: i64) -> NewRecord {
    NewRecord {
        timestamp: base_ts + i as i64,
        key: Some(Bytes::from(format!("key-{i}"))),
        value: Some(Bytes::from(format!("value-{i}-{}", "gzip".repeat(i % 13)))),
        headers: vec![
            Header::new(Bytes::from_static(b"n"), Some(Bytes::from(i.to_string()))),
            Header::new(
                Bytes::from_static(b"codec"),
                Some(Bytes::from_static(b"gzip")),
            ),
        ],
    }
}

#[test]
fn a_raw_gzip_produce_to_an_lz4_topic_is_read_unchanged_by_kcat_and_kafka_python() {
    let data = DataDir::builder().build();
    let broker = Broker::start(&data);
    let topic = "raw-lz4";
    let created = wire::create_topic(&broker, topic, 1, &[("compression.type", "lz4")])
        .expect("CreateTopics");
    assert_eq!(created.0, 0, "{created:?}");
    wire::wait_for_topic(&broker, topic, 1, false);
    let base_ts = wire::now_ms() - 10_000;
    let mut client = wire::connect(&broker);
    let mut expected = Vec::new();
    for chunk in 0..4 {
        let records: Vec<NewRecord> = (chunk * 50..chunk * 50 + 50)
            .map(|i| text_record(i, base_ts))
            .collect();
        let response = wire::produce_ok(
            &mut client,
            wire::PRODUCE_BY_NAME,
            topic,
            Uuid::nil(),
            0,
            wire::batch(&records, Compression::Gzip),
        );
        assert_eq!(response.base_offset, (chunk * 50) as i64);
        expected.extend(records);
    }
    assert_eq!(
        codecs_on_disk(data.path(), topic, 0),
        vec![Compression::Lz4; 4]
    );
    let log = wire::fetch_all(&mut client, topic, 0, 0);
    let fetched = log.records();
    assert_eq!(fetched.len(), expected.len());
    for (offset, (got, want)) in fetched.iter().zip(&expected).enumerate() {
        assert_eq!(got.offset, offset as i64);
        assert_eq!(got.timestamp, want.timestamp);
        assert_eq!((&got.key, &got.value), (&want.key, &want.value));
        assert_eq!(got.headers, want.headers);
    }
    let bootstrap = broker.bootstrap();
    let want_text = |i: usize| {
        let r = text_record(i, base_ts);
        (
            r.timestamp,
            r.key.map(|k| k.to_vec()),
            r.value.map(|v| v.to_vec()),
            r.headers
                .iter()
                .map(|h| {
                    (
                        String::from_utf8(h.key.to_vec()).expect("UTF-8"),
                        h.value.as_ref().map(|v| v.to_vec()),
                    )
                })
                .collect::<Vec<_>>(),
        )
    };
    if let Some(out) = kcat(&[
        "-C",
        "-b",
        &bootstrap,
        "-t",
        topic,
        "-o",
        "beginning",
        "-e",
        "-J",
        "-q",
    ]) {
        out.assert_success();
        let consumed = parse_kcat_json_records(&out);
        assert_eq!(consumed.len(), expected.len(), "kcat: {}", out.stderr);
        for (i, record) in consumed.iter().enumerate() {
            assert_eq!(record.offset, i as i64, "kcat");
            let (ts, key, value, headers) = want_text(i);
            assert_eq!(record.timestamp, Some(ts), "kcat: timestamp of {i}");
            assert_eq!(
                (&record.key, &record.value),
                (&key, &value),
                "kcat: record {i}"
            );
            assert_eq!(record.headers, headers, "kcat: headers of {i}");
        }
    }
    if let Some(out) = python(
        "consume_kafka_python.py",
        &[
            "--bootstrap",
            &bootstrap,
            "--timeout",
            "60",
            "--topic",
            topic,
        ],
    ) {
        out.assert_success();
        let consumed = parse_driver_records(&out);
        assert_eq!(
            consumed.len(),
            expected.len(),
            "kafka-python: {}",
            out.stderr
        );
        for (i, record) in consumed.iter().enumerate() {
            assert_eq!(record.offset, i as i64, "kafka-python");
            let (ts, key, value, headers) = want_text(i);
            assert_eq!(record.timestamp, Some(ts), "kafka-python: timestamp of {i}");
            assert_eq!(
                (&record.key, &record.value),
                (&key, &value),
                "kafka-python: record {i}"
            );
            assert_eq!(record.headers, headers, "kafka-python: headers of {i}");
        }
    }
}
