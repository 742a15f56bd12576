//! Produce v0-v2 with legacy message sets (issue 11), against the real `gregor` binary:
//!
//! * raw protocol (generated types): magic 0 and 1 message sets, plain and in gzip, snappy
//!   and lz4 wrappers, produced with Produce v0, v1 and v2, then read back with Fetch v12:
//!   ordinary v2 batches at the offsets the responses gave, keys, values and timestamps
//!   kept (none for magic 0); a corrupt CRC is CORRUPT_MESSAGE, magic 1 in Produce v3 is
//!   INVALID_RECORD, magic 2 batches in Produce v2 are stored as Kafka 3.9 stored them;
//! * kafka-python pinned to `api_version=(0, 9)` (magic 0) and `(0, 10)` (magic 1) with
//!   each codec, read back by confluent-kafka (a current librdkafka);
//! * with `legacy.api.versions.enable=false`, Produce v0-v2 close the connection (Kafka 4).

mod support;

#[allow(dead_code)]
#[path = "write_path/wire.rs"]
mod wire;

#[path = "legacy_produce/messages.rs"]
mod messages;

use bytes::Bytes;
use gregor_protocol::Uuid;
use gregor_protocol::records::{Compression, NewRecord};
use support::{Broker, DataDir, TopicSpec, parse_driver_records, python, python_client_versions};

const CORRUPT_MESSAGE: i16 = 2;
const INVALID_RECORD: i16 = 87;

/// What one produce should store: (timestamp as read back, key, value) per record.
type Expected = Vec<(i64, Option<Vec<u8>>, Option<Vec<u8>>)>;

#[test]
fn produce_v0_to_v2_with_legacy_message_sets_reads_back_with_fetch_v12() {
    let data = DataDir::builder()
        .topic(TopicSpec::new("legacy", 1))
        .build();
    let broker = Broker::start(&data);
    let mut client = wire::connect(&broker);
    let ts = wire::now_ms() - 10_000;
    let mut expected: Expected = Vec::new();
    let mut next_offset = 0;
    let cases = [
        (0, 0, Compression::None),
        (0, 0, Compression::Gzip),
        (1, 0, Compression::Snappy),
        (1, 1, Compression::None),
        (1, 1, Compression::Lz4),
        (2, 1, Compression::Gzip),
        (2, 1, Compression::Snappy),
        (2, 0, Compression::Lz4),
    ];
    for (case, (version, magic, codec)) in cases.into_iter().enumerate() {
        let keys: Vec<Option<Vec<u8>>> = (0..4)
            .map(|i| (i != 2).then(|| format!("key-{case}-{i}").into_bytes()))
            .collect();
        let values: Vec<Vec<u8>> = (0..4)
            .map(|i| format!("value-{case}-{i}-{}", "z".repeat(i * 9)).into_bytes())
            .collect();
        let rows: Vec<messages::Row<'_>> = (0..4)
            .map(|i| (ts + i as i64, keys[i].as_deref(), Some(&values[i][..])))
            .collect();
        let set = Bytes::from(messages::message_set(magic, codec, &rows));
        let response = wire::produce_ok(&mut client, version, "legacy", Uuid::nil(), 0, set);
        assert_eq!(
            response.base_offset, next_offset,
            "Produce v{version} magic {magic} {codec}"
        );
        assert_eq!(response.log_append_time_ms, -1, "a CreateTime topic");
        next_offset += 4;
        for i in 0..4 {
            let timestamp = if magic == 0 { -1 } else { ts + i as i64 };
            expected.push((timestamp, keys[i].clone(), Some(values[i].clone())));
        }
    }
    // Produce v2 with a magic 2 batch: Kafka 3.9 checked nothing for v0-v2 and stored it.
    let modern = wire::batch(
        &[NewRecord::new(
            ts,
            Some(Bytes::from_static(b"v2-key")),
            Some(Bytes::from_static(b"v2-value")),
        )],
        Compression::None,
    );
    let response = wire::produce_ok(&mut client, 2, "legacy", Uuid::nil(), 0, modern);
    assert_eq!(response.base_offset, next_offset);
    expected.push((ts, Some(b"v2-key".to_vec()), Some(b"v2-value".to_vec())));

    // Refusals: a corrupt CRC, and a legacy set in Produce v3.
    let mut corrupt = messages::message(0, 1, 0, ts, None, Some(b"value"));
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    for (version, records, code) in [
        (1, corrupt, CORRUPT_MESSAGE),
        (
            3,
            messages::message(0, 1, 0, ts, None, Some(b"value")),
            INVALID_RECORD,
        ),
    ] {
        let request =
            wire::produce_request("legacy", Uuid::nil(), -1, vec![(0, Bytes::from(records))]);
        let response = wire::produce(&mut client, version, &request)
            .expect("Produce")
            .remove(0);
        assert_eq!(
            response.error_code, code,
            "Produce v{version}: {response:?}"
        );
    }

    // A modern consumer's view: ordinary v2 batches, nothing of the refused requests.
    let log = wire::fetch_all(&mut client, "legacy", 0, 0);
    assert_eq!(log.high_watermark, expected.len() as i64);
    let records = log.records();
    assert_eq!(records.len(), expected.len());
    for (offset, (record, want)) in records.iter().zip(&expected).enumerate() {
        assert_eq!(record.offset, offset as i64);
        assert_eq!(record.timestamp, want.0, "timestamp at {offset}");
        assert_eq!(record.key.as_deref(), want.1.as_deref(), "key at {offset}");
        assert_eq!(
            record.value.as_deref(),
            want.2.as_deref(),
            "value at {offset}"
        );
    }
    for batch in &log.batches {
        assert_eq!(batch.header().producer_id, -1);
    }
    // Each legacy produce became one batch in the producer's codec.
    let codecs: Vec<Compression> = log.batches.iter().map(|b| b.compression()).collect();
    let mut want_codecs: Vec<Compression> = cases.iter().map(|c| c.2).collect();
    want_codecs.push(Compression::None);
    assert_eq!(codecs, want_codecs);
}

#[test]
fn kafka_python_with_old_api_versions_and_every_codec() {
    const API_VERSIONS: [&str; 2] = ["0.9", "0.10"];
    const CODECS: [&str; 4] = ["none", "gzip", "snappy", "lz4"];
    let topic_name = |api: &str, codec: &str| format!("legacy-{}-{codec}", api.replace('.', "-"));
    let mut builder = DataDir::builder();
    for api in API_VERSIONS {
        for codec in CODECS {
            builder = builder.topic(TopicSpec::new(&topic_name(api, codec), 1));
        }
    }
    let data = builder.build();
    let broker = Broker::start(&data);
    let bootstrap = broker.bootstrap();
    if let Some(versions) = python_client_versions() {
        println!("clients: {versions}");
    }
    let count = 200usize;
    let base_ts = wire::now_ms() - 60_000;
    for api_version in API_VERSIONS {
        for codec in CODECS {
            let topic = topic_name(api_version, codec);
            let tag = format!("{api_version}-{codec}");
            let count_text = count.to_string();
            let base = base_ts.to_string();
            let args = [
                "--bootstrap",
                &bootstrap,
                "--topic",
                &topic,
                "--count",
                &count_text,
                "--tag",
                &tag,
                "--base-ts",
                &base,
                "--api-version",
                api_version,
                "--compression",
                codec,
            ];
            let Some(out) = python("produce_legacy_kafka_python.py", &args) else {
                return;
            };
            assert!(
                out.success(),
                "kafka-python api_version {api_version} {codec}: {}\n{}",
                out.stderr,
                broker.log_text()
            );
            println!("{}", out.stderr.trim());
            let acked: Vec<i64> = out
                .stdout
                .lines()
                .map(|l| {
                    l.split(' ')
                        .nth(2)
                        .expect("offset")
                        .parse()
                        .expect("offset")
                })
                .collect();
            assert_eq!(
                acked,
                (0..count as i64).collect::<Vec<_>>(),
                "{tag}: acked offsets"
            );

            let consumed = python(
                "consume_confluent.py",
                &[
                    "--bootstrap",
                    &bootstrap,
                    "--topic",
                    &topic,
                    "--until",
                    "end-offsets",
                ],
            )
            .expect("venv");
            assert!(
                consumed.success(),
                "confluent-kafka {tag}: {}",
                consumed.stderr
            );
            let records = parse_driver_records(&consumed);
            assert_eq!(records.len(), count, "{tag}");
            for (i, record) in records.iter().enumerate() {
                assert_eq!(record.offset, i as i64, "{tag}");
                let key = (i % 5 != 4).then(|| format!("k-{tag}-{i}").into_bytes());
                assert_eq!(record.key, key, "{tag} key {i}");
                let mut value = format!("v-{tag}-{i}-").into_bytes();
                value.extend(std::iter::repeat_n(b'x', i % 37));
                assert_eq!(record.value.as_deref(), Some(&value[..]), "{tag} value {i}");
                if api_version == "0.10" {
                    assert_eq!(record.timestamp, Some(base_ts + i as i64), "{tag} ts {i}");
                } else {
                    // Magic 0 has no timestamp: stored as -1 (librdkafka may omit it).
                    assert!(
                        matches!(record.timestamp, None | Some(-1)),
                        "{tag} ts {i}: {:?}",
                        record.timestamp
                    );
                }
            }
        }
    }
}

#[test]
fn produce_v0_to_v2_are_refused_with_legacy_api_versions_off() {
    let data = DataDir::builder()
        .topic(TopicSpec::new("legacy", 1))
        .build();
    let broker = Broker::start_with(&data, &[("legacy.api.versions.enable", "false")]);
    let set = Bytes::from(messages::message_set(
        1,
        Compression::None,
        &[(wire::now_ms(), None, Some(&b"v"[..]))],
    ));
    let request = wire::produce_request("legacy", Uuid::nil(), -1, vec![(0, set)]);
    for version in 0..3 {
        // Kafka 4 closes the connection on a version it does not serve.
        let mut client = wire::connect(&broker);
        assert!(
            client.call(&request, version).is_err(),
            "Produce v{version} answered with legacy.api.versions.enable=false"
        );
    }
    // Nothing was appended.
    let mut client = wire::connect(&broker);
    assert_eq!(
        wire::fetch_all(&mut client, "legacy", 0, 0).high_watermark,
        0
    );
}
