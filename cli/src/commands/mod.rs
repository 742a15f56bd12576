//! One module per subcommand, and what several of them share: the context from the global
//! flags, `key=value` parsing, offset look-ups and fetch requests routed to leaders.

pub mod api_versions;
pub mod configs;
pub mod consume;
pub mod describe_topic;
pub mod dump_log;
pub mod get_offsets;
pub mod groups;
pub mod metadata;
pub mod produce;
pub mod topics;

use std::collections::BTreeMap;

use bytes::Bytes;
use gregor_protocol::ApiKey;
use gregor_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use gregor_protocol::messages::fetch_response::{FetchResponse, PartitionData};
use gregor_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use gregor_protocol::records::{Batch, RecordBatches};
use serde::Serialize;

use crate::client::cluster::TopicInfo;
use crate::client::{Cluster, ConnectOptions, Connection, Error, Result};
use crate::output::text_or_hex;

/// What every command gets from the global flags.
#[derive(Clone, Debug)]
pub struct Context {
    /// `--bootstrap-server`.
    pub bootstrap: String,
    /// `--json`.
    pub json: bool,
    /// Client id and timeouts.
    pub options: ConnectOptions,
}

impl Context {
    /// Connects to the cluster.
    pub async fn cluster(&self) -> Result<Cluster> {
        Cluster::connect(&self.bootstrap, self.options.clone()).await
    }
}

/// Splits `key=value` (the value may contain `=`).
pub fn parse_key_value(item: &str) -> Result<(String, String)> {
    match item.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.trim().to_string()))
        }
        _ => Err(Error::Usage(format!("expected KEY=VALUE, got {item:?}"))),
    }
}

/// Timestamp of ListOffsets meaning "the earliest offset".
pub const EARLIEST: i64 = -2;
/// Timestamp of ListOffsets meaning "the latest offset" (the high watermark).
pub const LATEST: i64 = -1;
/// Timestamp of ListOffsets meaning "the offset of the largest timestamp" (v7+).
pub const MAX_TIMESTAMP: i64 = -3;

/// Parses `earliest`, `latest`, `max-timestamp` or a timestamp in milliseconds.
pub fn parse_time(text: &str) -> Result<i64> {
    match text {
        "earliest" | "-2" => Ok(EARLIEST),
        "latest" | "-1" => Ok(LATEST),
        "max-timestamp" | "-3" => Ok(MAX_TIMESTAMP),
        other => other.parse::<i64>().ok().filter(|t| *t >= 0).ok_or_else(|| {
            Error::Usage(format!(
                "--time {other:?}: expected earliest, latest, max-timestamp or milliseconds since the epoch"
            ))
        }),
    }
}

/// One partition's answer to an offset look-up.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PartitionOffset {
    /// The partition.
    pub partition: i32,
    /// The offset (-1 when none matches the timestamp).
    pub offset: i64,
    /// The timestamp of the record at the offset, when the broker says.
    pub timestamp: i64,
}

/// Looks up offsets of `partitions` at `timestamp` (EARLIEST, LATEST, MAX_TIMESTAMP or
/// milliseconds), asking each partition's leader. Brokers without ListOffsets are asked
/// with a Fetch instead (earliest and latest only): its log start offset and high
/// watermark.
pub async fn list_offsets(
    cluster: &Cluster,
    topic: &TopicInfo,
    partitions: &[i32],
    timestamp: i64,
) -> Result<BTreeMap<i32, PartitionOffset>> {
    let mut out = BTreeMap::new();
    for (leader, partitions) in cluster
        .partitions_by_leader(&topic.name, partitions)
        .await?
    {
        let connection = cluster.broker(leader).await?;
        if connection.supports(ApiKey::ListOffsets) {
            out.extend(list_offsets_on(&connection, topic, &partitions, timestamp).await?);
        } else if timestamp == EARLIEST || timestamp == LATEST {
            out.extend(offsets_by_fetch(&connection, topic, &partitions, timestamp).await?);
        } else {
            return Err(Error::missing_api(connection.addr(), ApiKey::ListOffsets));
        }
    }
    Ok(out)
}

async fn list_offsets_on(
    connection: &Connection,
    topic: &TopicInfo,
    partitions: &[i32],
    timestamp: i64,
) -> Result<Vec<(i32, PartitionOffset)>> {
    let version = connection.version(ApiKey::ListOffsets)?;
    if timestamp == MAX_TIMESTAMP && version < 7 {
        return Err(Error::Unsupported(format!(
            "max-timestamp needs ListOffsets v7; the broker at {} speaks v{version}",
            connection.addr()
        )));
    }
    let request = ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic {
            name: topic.name.as_str().into(),
            partitions: partitions
                .iter()
                .map(|&p| ListOffsetsPartition {
                    partition_index: p,
                    timestamp,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        timeout_ms: 30_000,
        ..Default::default()
    };
    let response = connection
        .dispatch_at(&request, version)
        .await?
        .wait()
        .await?;
    let mut out = Vec::new();
    for t in &response.topics {
        for p in &t.partitions {
            Error::check(p.error_code, None, || {
                format!("list offsets of {}-{}", t.name, p.partition_index)
            })?;
            out.push((
                p.partition_index,
                PartitionOffset {
                    partition: p.partition_index,
                    offset: p.offset,
                    timestamp: p.timestamp,
                },
            ));
        }
    }
    Ok(out)
}

/// Earliest or latest offsets from a Fetch at offset 0 (log start offset, high watermark).
async fn offsets_by_fetch(
    connection: &Connection,
    topic: &TopicInfo,
    partitions: &[i32],
    timestamp: i64,
) -> Result<Vec<(i32, PartitionOffset)>> {
    let positions: Vec<(i32, i64)> = partitions.iter().map(|&p| (p, 0)).collect();
    let request = fetch_request(topic, &positions, 0, 0, 1, 1);
    let response = connection.send(&request).await?;
    let mut out = Vec::new();
    for (partition, data) in fetch_partitions(&response, topic) {
        if data.error_code != 0 && data.error_code != 1 {
            Error::check(data.error_code, None, || {
                format!("fetch {}-{partition}", topic.name)
            })?;
        }
        let offset = if timestamp == EARLIEST {
            data.log_start_offset.max(0)
        } else {
            data.high_watermark
        };
        out.push((
            partition,
            PartitionOffset {
                partition,
                offset,
                timestamp: -1,
            },
        ));
    }
    Ok(out)
}

/// A sessionless Fetch for `positions` (partition, offset) of one topic; names and ids are
/// both set, the encoder keeps whichever the version has.
pub fn fetch_request(
    topic: &TopicInfo,
    positions: &[(i32, i64)],
    max_wait_ms: i32,
    min_bytes: i32,
    max_bytes: i32,
    partition_max_bytes: i32,
) -> FetchRequest {
    FetchRequest {
        max_wait_ms,
        min_bytes,
        max_bytes,
        topics: vec![FetchTopic {
            topic: topic.name.as_str().into(),
            topic_id: topic.id,
            partitions: positions
                .iter()
                .map(|&(partition, offset)| FetchPartition {
                    partition,
                    fetch_offset: offset,
                    partition_max_bytes,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The partitions of `topic` in a fetch response (matched by name or, from v13, by id),
/// after checking the top-level error.
pub fn fetch_partitions<'a>(
    response: &'a FetchResponse,
    topic: &TopicInfo,
) -> Vec<(i32, &'a PartitionData)> {
    response
        .responses
        .iter()
        .filter(|t| *t.topic == *topic.name || (!t.topic_id.is_nil() && t.topic_id == topic.id))
        .flat_map(|t| t.partitions.iter().map(|p| (p.partition_index, p)))
        .collect()
}

/// A record read back from a fetch.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ConsumedRecord {
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// The timestamp (ms).
    pub timestamp: i64,
    /// The key as text (hex with `0x` when not UTF-8), `None` when null.
    pub key: Option<String>,
    /// The value, `None` when null (raw bytes; shown as text or hex).
    #[serde(serialize_with = "serialize_text")]
    pub value: Option<Bytes>,
    /// Headers as (key, value) text pairs.
    pub headers: Vec<(String, Option<String>)>,
}

fn serialize_text<S: serde::Serializer>(value: &Option<Bytes>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(bytes) => s.serialize_some(&text_or_hex(bytes)),
        None => s.serialize_none(),
    }
}

/// Decodes the records of one partition's fetched data from `from` on (a batch may start
/// before the offset asked for); skips control batches. Returns the records, the offset to
/// fetch next, and the bytes of whole batches read.
pub fn decode_fetched(
    partition: i32,
    records: Bytes,
    from: i64,
) -> Result<(Vec<ConsumedRecord>, i64, usize)> {
    let mut out = Vec::new();
    let mut next = from;
    let mut bytes = 0;
    let corrupt = |e: gregor_protocol::records::RecordsError| {
        Error::Protocol(format!("corrupt records in partition {partition}: {e}"))
    };
    for batch in RecordBatches::new(records) {
        let batch = batch.map_err(corrupt)?;
        bytes += batch.size();
        match batch {
            Batch::V2(batch) => {
                next = next.max(batch.next_offset());
                if batch.is_control() {
                    continue;
                }
                for record in batch.records() {
                    let record = record.map_err(corrupt)?;
                    if record.offset < from {
                        continue;
                    }
                    out.push(ConsumedRecord {
                        partition,
                        offset: record.offset,
                        timestamp: record.timestamp,
                        key: record.key.as_deref().map(text_or_hex),
                        value: record.value.clone(),
                        headers: record
                            .headers
                            .iter()
                            .map(|h| (text_or_hex(&h.key), h.value.as_deref().map(text_or_hex)))
                            .collect(),
                    });
                }
            }
            Batch::Legacy(message) => {
                for inner in message.messages().map_err(corrupt)? {
                    next = next.max(inner.offset + 1);
                    if inner.offset < from {
                        continue;
                    }
                    out.push(ConsumedRecord {
                        partition,
                        offset: inner.offset,
                        timestamp: inner.timestamp,
                        key: inner.key.as_deref().map(text_or_hex),
                        value: inner.value.clone(),
                        headers: Vec::new(),
                    });
                }
            }
        }
    }
    Ok((out, next, bytes))
}

/// The partitions to work on: `only` if given (each checked against the topic), else all.
pub fn select_partitions(topic: &TopicInfo, only: &[i32]) -> Result<Vec<i32>> {
    if only.is_empty() {
        return Ok(topic.partitions.keys().copied().collect());
    }
    for p in only {
        if !topic.partitions.contains_key(p) {
            return Err(Error::Kafka {
                context: format!("partition {}-{p}", topic.name),
                code: 3,
                message: Some(format!(
                    "the topic has {} partitions",
                    topic.partitions.len()
                )),
            });
        }
    }
    Ok(only.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_and_times_parse() {
        assert_eq!(
            parse_key_value("retention.ms = 1000").unwrap(),
            ("retention.ms".into(), "1000".into())
        );
        assert_eq!(parse_key_value("a=b=c").unwrap().1, "b=c");
        assert!(parse_key_value("novalue").is_err());
        assert_eq!(parse_time("earliest").unwrap(), EARLIEST);
        assert_eq!(parse_time("latest").unwrap(), LATEST);
        assert_eq!(parse_time("1700000000000").unwrap(), 1_700_000_000_000);
        assert!(parse_time("yesterday").is_err());
    }
}
