//! kcat (librdkafka 2.0.2) produces keyed records with headers with each compression codec
//! and consumes them back, after batches of the same codec written with the raw client (so
//! that kcat reads every codec even where its librdkafka does not compress).

use std::collections::BTreeMap;
use std::fs;

use bytes::Bytes;
use gregor_protocol::records::{Compression, Header, NewRecord};

use crate::support::{Broker, DataDir, kcat, kcat_version, parse_kcat_json_records};
use crate::wire::{self, error};

/// Records kcat produces per codec.
const RECORDS: usize = 600;

/// Records written first with the raw client, per codec (partition `i % 3`, 25 a batch).
const RAW: usize = 150;

/// Line `i` of kcat's input: `key:value` (keys repeat, so each partition gets many; values
/// of 0 to ~900 characters).
fn line(codec: &str, i: usize) -> (String, String) {
    let key = format!("key-{}", (i * 13) % 41);
    let mut value = format!("{codec}-{i}-");
    let len = (i * 37) % 900;
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    value.extend((0..len).map(|j| char::from(alphabet[(i * 7 + j * j) % alphabet.len()])));
    (key, value)
}

#[test]
fn kcat_produces_and_consumes_with_every_codec() {
    if kcat(&["-V"]).is_none() {
        return;
    }
    if let Some(version) = kcat_version() {
        println!("client: {version}");
    }
    let data = DataDir::builder().build();
    let broker = Broker::start_with(&data, &[("num.partitions", "3")]);
    let bootstrap = broker.bootstrap();
    let input_dir = tempfile::tempdir().expect("a temporary directory");
    for (codec, compression) in [
        ("none", Compression::None),
        ("gzip", Compression::Gzip),
        ("snappy", Compression::Snappy),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ] {
        let topic = format!("kcat-{codec}");
        let input = input_dir.path().join(format!("{codec}.txt"));
        let total = RAW + RECORDS;
        let lines: Vec<(String, String)> = (0..total).map(|i| line(codec, i)).collect();

        // Records 0..RAW with the raw client, compressed with the codec.
        let created = wire::create_topic(&broker, &topic, 3, &[]);
        if let Some((code, message)) = &created {
            assert_eq!(*code, error::NONE, "CreateTopics {topic}: {message:?}");
        }
        let topic_id = wire::wait_for_topic(&broker, &topic, 3, created.is_none());
        let mut client = wire::connect(&broker);
        let mut raw_counts = [0i64; 3];
        for (p, raw_count) in raw_counts.iter_mut().enumerate() {
            let mine: Vec<usize> = (0..RAW).filter(|i| i % 3 == p).collect();
            for chunk in mine.chunks(25) {
                let records: Vec<NewRecord> = chunk
                    .iter()
                    .map(|&i| NewRecord {
                        timestamp: wire::now_ms(),
                        key: Some(Bytes::from(lines[i].0.clone())),
                        value: Some(Bytes::from(lines[i].1.clone())),
                        headers: vec![
                            Header::new("k", Some(Bytes::from_static(b"v"))),
                            Header::new("codec", Some(Bytes::from(codec.to_string()))),
                        ],
                    })
                    .collect();
                let batch = wire::batch(&records, compression);
                wire::produce_ok(
                    &mut client,
                    wire::PRODUCE_BY_NAME,
                    &topic,
                    topic_id,
                    p as i32,
                    batch,
                );
                *raw_count += chunk.len() as i64;
            }
        }

        // Records RAW.. with kcat.
        let text: String = lines[RAW..]
            .iter()
            .map(|(k, v)| format!("{k}:{v}\n"))
            .collect();
        fs::write(&input, text).expect("write kcat's input");
        let header = format!("codec={codec}");
        let input_path = input.to_string_lossy().into_owned();
        let out = kcat(&[
            "-P",
            "-b",
            &bootstrap,
            "-t",
            &topic,
            "-K:",
            "-H",
            "k=v",
            "-H",
            &header,
            "-z",
            codec,
            "-X",
            "acks=all",
            "-X",
            "linger.ms=50",
            "-d",
            "msg",
            "-l",
            &input_path,
        ])
        .expect("kcat");
        out.assert_success();
        assert!(
            !out.stderr.contains("ERROR"),
            "kcat -P -z {codec} reported errors:\n{out}"
        );
        // librdkafka decides from ApiVersions whether the broker takes a codec, and sends
        // the batch uncompressed (saying so in its `msg` debug log) when it thinks not.
        let refused = format!("Broker does not support compression type {codec}");
        let sent = if out.stderr.contains(&refused) {
            println!(
                "note: kcat (librdkafka 2.0.2) sent -z {codec} batches uncompressed: \
                 \"{refused}\" (its feature check of ApiVersions; see the report)"
            );
            Compression::None
        } else {
            compression
        };

        let out = kcat(&[
            "-C",
            "-b",
            &bootstrap,
            "-t",
            &topic,
            "-o",
            "beginning",
            "-e",
            "-J",
            "-q",
            "-m",
            "15",
        ])
        .expect("kcat");
        out.assert_success();
        let consumed = parse_kcat_json_records(&out);
        assert_eq!(
            consumed.len(),
            total,
            "kcat -C read {} records of {topic}, {total} were produced",
            consumed.len()
        );
        // Each record once, as produced; each partition's offsets 0..n in the order the
        // records were sent.
        let mut seen = vec![false; total];
        let mut by_partition: BTreeMap<i32, Vec<(i64, usize)>> = BTreeMap::new();
        for record in &consumed {
            let value = String::from_utf8(record.value.clone().expect("a value")).expect("UTF-8");
            let i: usize = value
                .split('-')
                .nth(1)
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{topic}: unexpected value {value:?}"));
            assert!(i < total && !seen[i], "{topic}: record {i} read twice");
            seen[i] = true;
            let (key, expected_value) = &lines[i];
            assert_eq!(
                record.key.as_deref(),
                Some(key.as_bytes()),
                "{topic}: key of record {i}"
            );
            assert_eq!(&value, expected_value, "{topic}: value of record {i}");
            let headers: Vec<(String, Option<Vec<u8>>)> = vec![
                ("k".into(), Some(b"v".to_vec())),
                ("codec".into(), Some(codec.as_bytes().to_vec())),
            ];
            assert_eq!(record.headers, headers, "{topic}: headers of record {i}");
            by_partition
                .entry(record.partition)
                .or_default()
                .push((record.offset, i));
        }
        for (partition, entries) in &by_partition {
            for (n, (offset, i)) in entries.iter().enumerate() {
                assert_eq!(
                    *offset, n as i64,
                    "{topic}-{partition}: offsets read are not 0..n"
                );
                if n > 0 {
                    assert!(
                        entries[n - 1].1 < *i,
                        "{topic}-{partition}: record {i} at offset {offset} after record {} \
                         (not in send order)",
                        entries[n - 1].1
                    );
                }
            }
        }

        // The broker keeps the producers' batches as they came: compressed with the codec
        // the producer used.
        let (mut batches, mut compressed) = (0, 0);
        for partition in by_partition.keys() {
            let log = wire::fetch_all(&mut client, &topic, *partition, 0);
            assert_eq!(
                log.high_watermark,
                by_partition[partition].len() as i64,
                "{topic}-{partition}: high watermark"
            );
            // librdkafka also sends a batch uncompressed when compressing does not make it
            // smaller (a batch of one short record).
            for batch in &log.batches {
                let stored = batch.compression();
                if batch.base_offset() < raw_counts[*partition as usize] {
                    assert_eq!(
                        stored,
                        compression,
                        "{topic}-{partition}: raw batch at {}",
                        batch.base_offset()
                    );
                    continue;
                }
                assert!(
                    stored == sent || stored == Compression::None,
                    "{topic}-{partition}: batch at offset {} stored as {stored}, kcat sent {sent}",
                    batch.base_offset()
                );
                compressed += usize::from(stored == sent);
            }
            batches += log.batches.len();
        }
        assert!(compressed > 0, "{topic}: no batch stored as {sent}");
        println!(
            "kcat -z {codec}: {RECORDS} records from kcat and {RAW} raw {codec} ones in \
             {batches} batches ({compressed} from kcat as {sent}) over {} partitions",
            by_partition.len()
        );
    }
}
