//! kcat (librdkafka 2.0.2) produces keyed records with headers with each compression codec
//! and consumes them back.

use std::collections::BTreeMap;
use std::fs;

use gregor_protocol::records::Compression;

use crate::support::{Broker, DataDir, kcat, kcat_version, parse_kcat_json_records};
use crate::wire;

/// Records per codec.
const RECORDS: usize = 600;

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
        let lines: Vec<(String, String)> = (0..RECORDS).map(|i| line(codec, i)).collect();
        let text: String = lines.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
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
            RECORDS,
            "kcat -C read {} records of {topic}, {RECORDS} were produced",
            consumed.len()
        );
        // Each record once, as produced; each partition's offsets 0..n in the order the
        // records were sent.
        let mut seen = vec![false; RECORDS];
        let mut by_partition: BTreeMap<i32, Vec<(i64, usize)>> = BTreeMap::new();
        for record in &consumed {
            let value = String::from_utf8(record.value.clone().expect("a value")).expect("UTF-8");
            let i: usize = value
                .split('-')
                .nth(1)
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{topic}: unexpected value {value:?}"));
            assert!(i < RECORDS && !seen[i], "{topic}: record {i} read twice");
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

        // The broker keeps the producer's batches as they came: compressed with the codec
        // the producer used.
        let mut client = wire::connect(&broker);
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
            "kcat -z {codec}: {RECORDS} records in {batches} {sent} batches over {} partitions",
            by_partition.len()
        );
    }
}
