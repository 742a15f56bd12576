//! What a client consumed, parsed from its output, and the comparison with what a
//! [`super::DataDir`] wrote.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::clients::ClientOutput;
use super::datadir::{WrittenRecord, WrittenTopic};
use super::json::{Json, JsonExt};

/// One record as a client reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumedRecord {
    /// Partition index.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp, when the client reports one.
    pub timestamp: Option<i64>,
    /// Key; `None` for null.
    pub key: Option<Vec<u8>>,
    /// Value; `None` for null.
    pub value: Option<Vec<u8>>,
    /// Headers in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "odd-length hex {text:?}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn nullable_hex(value: &Json) -> Option<Vec<u8>> {
    match value {
        Json::Null => None,
        Json::String(s) => Some(unhex(s)),
        other => panic!("expected hex or null, got {other}"),
    }
}

fn nullable_text(value: &Json) -> Option<Vec<u8>> {
    match value {
        Json::Null => None,
        Json::String(s) => Some(s.as_bytes().to_vec()),
        other => panic!("expected a string or null, got {other}"),
    }
}

/// Records printed by a Python driver (`tests/clients/_driver.py`: hex keys, values and
/// header values).
pub fn parse_driver_records(output: &ClientOutput) -> Vec<ConsumedRecord> {
    output
        .json_lines()
        .iter()
        .map(|line| ConsumedRecord {
            partition: line.field("partition").as_i64().expect("partition") as i32,
            offset: line.field("offset").as_i64().expect("offset"),
            timestamp: line.get("timestamp").and_then(Json::as_i64),
            key: nullable_hex(line.field("key")),
            value: nullable_hex(line.field("value")),
            headers: line
                .field("headers")
                .as_array()
                .expect("headers array")
                .iter()
                .map(|pair| {
                    let pair = pair.as_array().expect("header pair");
                    (
                        pair[0].as_str().expect("header key").to_string(),
                        nullable_hex(&pair[1]),
                    )
                })
                .collect(),
        })
        .collect()
}

/// Records printed by `kcat -C -J` (text keys and values; `headers` as a flat
/// `[key, value, ...]` array, absent when a record has none). Lines that are not JSON
/// objects (kcat's `%` notices when `-q` is not given) are skipped.
pub fn parse_kcat_json_records(output: &ClientOutput) -> Vec<ConsumedRecord> {
    output
        .stdout
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| {
            let doc = Json::parse(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            let headers = match doc.get("headers") {
                None => Vec::new(),
                Some(flat) => flat
                    .as_array()
                    .expect("headers array")
                    .chunks(2)
                    .map(|pair| {
                        (
                            pair[0].as_str().expect("header key").to_string(),
                            nullable_text(&pair[1]),
                        )
                    })
                    .collect(),
            };
            ConsumedRecord {
                partition: doc.field("partition").as_i64().expect("partition") as i32,
                offset: doc.field("offset").as_i64().expect("offset"),
                timestamp: doc.get("ts").and_then(Json::as_i64),
                key: nullable_text(doc.field("key")),
                value: nullable_text(doc.field("payload")),
                headers,
            }
        })
        .collect()
}

fn show(bytes: &Option<Vec<u8>>) -> String {
    match bytes {
        None => "null".to_string(),
        Some(b) => format!("{:?}", String::from_utf8_lossy(b)),
    }
}

fn mismatch(written: &WrittenRecord, got: &ConsumedRecord) -> Option<String> {
    let mut why = String::new();
    if got.offset != written.offset {
        let _ = write!(why, " offset {} != {}", got.offset, written.offset);
    }
    if got.key.as_deref() != written.key.as_deref() {
        let _ = write!(
            why,
            " key {} != {}",
            show(&got.key),
            show(&written.key.as_ref().map(|b| b.to_vec()))
        );
    }
    if got.value.as_deref() != written.value.as_deref() {
        let _ = write!(
            why,
            " value {} != {}",
            show(&got.value),
            show(&written.value.as_ref().map(|b| b.to_vec()))
        );
    }
    let headers: Vec<(String, Option<Vec<u8>>)> = written
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.as_ref().map(|b| b.to_vec())))
        .collect();
    if got.headers != headers {
        let _ = write!(why, " headers {:?} != {:?}", got.headers, headers);
    }
    if let Some(ts) = got.timestamp {
        if ts != written.timestamp {
            let _ = write!(why, " timestamp {ts} != {}", written.timestamp);
        }
    }
    (!why.is_empty()).then_some(why)
}

/// Checks that `consumed` holds every record of the `partitions` of `topic` (all when
/// `None`), each partition in offset order, each record equal to what was written (key,
/// value, headers, and timestamp when reported); panics with the first differences.
pub fn assert_consumed_all(
    client: &str,
    topic: &WrittenTopic,
    partitions: Option<&[i32]>,
    consumed: &[ConsumedRecord],
) {
    let mut by_partition: BTreeMap<i32, Vec<&ConsumedRecord>> = BTreeMap::new();
    for record in consumed {
        by_partition
            .entry(record.partition)
            .or_default()
            .push(record);
    }
    let mut problems = Vec::new();
    for partition in &topic.partitions {
        if partitions.is_some_and(|only| !only.contains(&partition.index)) {
            continue;
        }
        let got = by_partition.remove(&partition.index).unwrap_or_default();
        let expected = &partition.records;
        if got.len() != expected.len() {
            problems.push(format!(
                "partition {}: {} records read, {} written (offsets read: {})",
                partition.index,
                got.len(),
                expected.len(),
                summarize_offsets(&got)
            ));
        }
        let mut shown = 0;
        for (i, (written, read)) in expected.iter().zip(&got).enumerate() {
            if let Some(why) = mismatch(written, read) {
                if shown < 5 {
                    problems.push(format!(
                        "partition {} record #{i} (offset {}):{why}",
                        partition.index, read.offset
                    ));
                }
                shown += 1;
            }
        }
        if shown > 5 {
            problems.push(format!(
                "partition {}: {} more differing records",
                partition.index,
                shown - 5
            ));
        }
    }
    for (partition, records) in by_partition {
        problems.push(format!(
            "{} records of partition {partition}, which was not asked for",
            records.len()
        ));
    }
    assert!(
        problems.is_empty(),
        "{client} did not read {} as written:\n  {}",
        topic.name,
        problems.join("\n  ")
    );
}

/// Offsets as ranges (`0-99, 150-199`), to show gaps and repeats briefly.
pub fn summarize_offsets(records: &[&ConsumedRecord]) -> String {
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    for record in records {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == record.offset => *end = record.offset,
            _ => ranges.push((record.offset, record.offset)),
        }
    }
    let text: Vec<String> = ranges
        .iter()
        .take(12)
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect();
    let more = if ranges.len() > 12 { ", ..." } else { "" };
    format!("{}{more}", text.join(", "))
}
