//! `gregorctl produce TOPIC`: one record per stdin line, like kafka-console-producer.sh.
//!
//! Lines are batched per partition (`--batch-size` records, or `--linger-ms` after the
//! first record of a batch, or the end of input) and sent to each partition's leader.
//! Keyed records go to `murmur2(key) % partitions` as with Kafka's default partitioner;
//! records without a key rotate over the partitions one batch at a time.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gregor_protocol::ApiKey;
use gregor_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use gregor_protocol::messages::produce_response::ProduceResponse;
use gregor_protocol::records::{Compression, Header, NewRecord, RecordBatchBuilder};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::Context;
use crate::client::cluster::TopicInfo;
use crate::client::{Cluster, Error, Result};
use crate::errors::is_retriable_metadata_error;
use crate::output;

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The topic.
    pub topic: String,
    /// Split each line into key and value at the first tab (or --key-separator).
    #[arg(long)]
    pub parse_key: bool,
    /// The key separator (implies --parse-key).
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// A header added to every record, as KEY=VALUE (repeatable).
    #[arg(long = "header", value_name = "KEY=VALUE")]
    pub headers: Vec<String>,
    /// Read headers from each line first: `k1:v1,k2:v2<TAB>[key<TAB>]value`.
    #[arg(long)]
    pub parse_headers: bool,
    /// Only this partition (default: by key hash, or rotating for records without keys).
    #[arg(long)]
    pub partition: Option<i32>,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none", value_name = "CODEC")]
    pub compression_codec: String,
    /// Acknowledgements: -1 or all (every in-sync replica), 1 (the leader), 0 (none).
    #[arg(
        long = "acks",
        alias = "request-required-acks",
        default_value = "-1",
        allow_hyphen_values = true
    )]
    pub acks: String,
    /// Records per batch.
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
    /// How long a batch waits for more lines, in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub linger_ms: u64,
}

/// Parses a codec name.
pub fn parse_compression(name: &str) -> Result<Compression> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "none" | "" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        other => {
            return Err(Error::Usage(format!(
                "compression {other:?}: expected none, gzip, snappy, lz4 or zstd"
            )));
        }
    })
}

/// Parses acks: `all`/`-1`, `1`, `0`.
pub fn parse_acks(text: &str) -> Result<i16> {
    match text {
        "all" | "-1" => Ok(-1),
        "1" => Ok(1),
        "0" => Ok(0),
        other => Err(Error::Usage(format!(
            "acks {other:?}: expected all, -1, 1 or 0"
        ))),
    }
}

/// Kafka's murmur2 hash (`Utils.murmur2`), for key partitioning.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    let mut h: u32 = SEED ^ (length as u32);
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for chunk in chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
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
    h as i32
}

/// The partition Kafka's default partitioner picks for a key.
pub fn partition_for_key(key: &[u8], partitions: usize) -> i32 {
    ((murmur2(key) & 0x7fff_ffff) as usize % partitions.max(1)) as i32
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A ProduceRequest with one batch per partition, for one topic.
pub fn produce_request(
    topic: &TopicInfo,
    acks: i16,
    timeout_ms: i32,
    batches: Vec<(i32, Bytes)>,
) -> ProduceRequest {
    ProduceRequest {
        acks,
        timeout_ms,
        topic_data: vec![TopicProduceData {
            name: topic.name.as_str().into(),
            topic_id: topic.id,
            partition_data: batches
                .into_iter()
                .map(|(index, records)| PartitionProduceData {
                    index,
                    records: Some(records),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// A partition's produce outcome: the base offset, or the error code and message.
pub type PartitionOutcome = Result<i64, (i16, Option<String>)>;

/// The outcome per partition of a produce response.
pub fn produce_results(response: &ProduceResponse) -> Vec<(i32, PartitionOutcome)> {
    response
        .responses
        .iter()
        .flat_map(|t| t.partition_responses.iter())
        .map(|p| {
            let result = if p.error_code == 0 {
                Ok(p.base_offset)
            } else {
                Err((p.error_code, p.error_message.as_deref().map(str::to_string)))
            };
            (p.index, result)
        })
        .collect()
}

/// One acknowledged batch (`--json`).
#[derive(Serialize)]
struct Acked {
    partition: i32,
    base_offset: i64,
    records: usize,
}

/// Sends `batches` (partition, encoded batch, record count) to their leaders, retrying
/// after a metadata refresh when a leader moved; prints acknowledgements with `--json`.
async fn send_batches(
    cluster: &Cluster,
    context: &Context,
    topic_name: &str,
    acks: i16,
    mut batches: Vec<(i32, Bytes, usize)>,
) -> Result<()> {
    let timeout_ms = context
        .options
        .request_timeout
        .as_millis()
        .min(i32::MAX as u128) as i32;
    for attempt in 0..5 {
        let topic = if attempt == 0 {
            cluster.topic_for_writing(topic_name).await?
        } else {
            cluster.topic(topic_name, true).await?
        };
        let partitions: Vec<i32> = batches.iter().map(|b| b.0).collect();
        let by_leader = cluster
            .partitions_by_leader(topic_name, &partitions)
            .await?;
        let mut retry = Vec::new();
        for (leader, partitions) in by_leader {
            let connection = cluster.broker(leader).await?;
            let version = connection.version(ApiKey::Produce)?;
            let mine: Vec<(i32, Bytes, usize)> = batches
                .iter()
                .filter(|b| partitions.contains(&b.0))
                .cloned()
                .collect();
            let request = produce_request(
                &topic,
                acks,
                timeout_ms,
                mine.iter().map(|(p, b, _)| (*p, b.clone())).collect(),
            );
            if acks == 0 {
                connection.send_without_response(&request, version).await?;
                continue;
            }
            let response = connection
                .dispatch_at(&request, version)
                .await?
                .wait()
                .await?;
            for (partition, result) in produce_results(&response) {
                let count = mine.iter().find(|b| b.0 == partition).map_or(0, |b| b.2);
                match result {
                    Ok(base_offset) => {
                        if context.json {
                            output::json(&Acked {
                                partition,
                                base_offset,
                                records: count,
                            })?;
                        }
                    }
                    Err((code, _)) if is_retriable_metadata_error(code) && attempt < 4 => {
                        if let Some(batch) = mine.iter().find(|b| b.0 == partition) {
                            retry.push(batch.clone());
                        }
                    }
                    Err((code, message)) => {
                        return Err(Error::Kafka {
                            context: format!("produce to {topic_name}-{partition}"),
                            code,
                            message,
                        });
                    }
                }
            }
        }
        if retry.is_empty() {
            return Ok(());
        }
        batches = retry;
        tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
    }
    Ok(())
}

/// Parses `k1:v1,k2:v2` headers.
fn parse_header_list(text: &str) -> Vec<Header> {
    text.split(',')
        .filter(|h| !h.is_empty())
        .map(|h| match h.split_once(':') {
            Some((k, v)) => {
                Header::new(Bytes::from(k.to_string()), Some(Bytes::from(v.to_string())))
            }
            None => Header::new(Bytes::from(h.to_string()), None),
        })
        .collect()
}

/// Reads stdin and produces.
pub async fn run(context: &Context, args: &Args) -> Result<()> {
    let compression = parse_compression(&args.compression_codec)?;
    let acks = parse_acks(&args.acks)?;
    let parse_key = args.parse_key || args.key_separator.is_some();
    let separator = args.key_separator.clone().unwrap_or_else(|| "\t".into());
    if separator.is_empty() {
        return Err(Error::Usage("--key-separator must not be empty".into()));
    }
    let mut static_headers = Vec::new();
    for item in &args.headers {
        let (key, value) = super::parse_key_value(item)?;
        static_headers.push(Header::new(Bytes::from(key), Some(Bytes::from(value))));
    }
    let cluster = context.cluster().await?;
    let topic = cluster.topic_for_writing(&args.topic).await?;
    let partition_count = topic.partitions.len();
    if partition_count == 0 {
        return Err(Error::Protocol(format!(
            "topic {:?} has no partitions",
            args.topic
        )));
    }
    if let Some(p) = args.partition {
        super::select_partitions(&topic, &[p])?;
    }
    // Fail before reading stdin when the broker cannot take Produce.
    cluster.any().version(ApiKey::Produce)?;

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut pending: BTreeMap<i32, Vec<NewRecord>> = BTreeMap::new();
    let mut pending_count = 0usize;
    let mut deadline: Option<tokio::time::Instant> = None;
    let mut rotate = 0usize;
    let mut line_number = 0usize;
    let linger = Duration::from_millis(args.linger_ms);
    let mut eof = false;
    while !eof {
        let next = match deadline {
            Some(at) => tokio::select! {
                line = lines.next_line() => Some(line),
                _ = tokio::time::sleep_until(at) => None,
            },
            None => Some(lines.next_line().await),
        };
        match next {
            Some(Ok(Some(line))) => {
                line_number += 1;
                let mut rest = line.as_str();
                let mut headers = static_headers.clone();
                if args.parse_headers {
                    let Some((h, r)) = rest.split_once('\t') else {
                        return Err(Error::Usage(format!(
                            "line {line_number}: no headers delimiter (tab) found"
                        )));
                    };
                    headers.extend(parse_header_list(h));
                    rest = r;
                }
                let (key, value) = if parse_key {
                    match rest.split_once(separator.as_str()) {
                        Some((k, v)) => (Some(Bytes::from(k.to_string())), v),
                        None => {
                            return Err(Error::Usage(format!(
                                "line {line_number}: no key separator {separator:?} found"
                            )));
                        }
                    }
                } else {
                    (None, rest)
                };
                let partition = match (args.partition, key.as_deref()) {
                    (Some(p), _) => p,
                    (None, Some(k)) => partition_for_key(k, partition_count),
                    (None, None) => {
                        let keys: Vec<i32> = topic.partitions.keys().copied().collect();
                        keys[rotate % keys.len().max(1)]
                    }
                };
                pending.entry(partition).or_default().push(NewRecord {
                    timestamp: now_ms(),
                    key,
                    value: Some(Bytes::from(value.to_string())),
                    headers,
                });
                pending_count += 1;
                if deadline.is_none() {
                    deadline = Some(tokio::time::Instant::now() + linger);
                }
                let full = pending
                    .values()
                    .any(|records| records.len() >= args.batch_size.max(1));
                if !full {
                    continue;
                }
            }
            Some(Ok(None)) => eof = true,
            Some(Err(e)) => return Err(Error::io("reading stdin", e)),
            None => {} // linger passed
        }
        if pending_count == 0 {
            continue;
        }
        let mut batches = Vec::new();
        for (partition, records) in std::mem::take(&mut pending) {
            let batch = RecordBatchBuilder::new()
                .compression(compression)
                .build(records.iter())
                .map_err(|e| Error::Usage(format!("cannot encode a batch: {e}")))?;
            batches.push((partition, batch, records.len()));
        }
        pending_count = 0;
        deadline = None;
        rotate += 1;
        send_batches(&cluster, context, &args.topic, acks, batches).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58897971
        );
        assert_eq!(murmur2(b"abc"), 479470107);
    }

    #[test]
    fn options_parse() {
        assert_eq!(parse_acks("all").unwrap(), -1);
        assert_eq!(parse_acks("0").unwrap(), 0);
        assert!(parse_acks("2").is_err());
        assert_eq!(parse_compression("LZ4").unwrap(), Compression::Lz4);
        assert!(parse_compression("brotli").is_err());
        let headers = parse_header_list("a:1,b");
        assert_eq!(headers.len(), 2);
        assert_eq!(headers[1].value, None);
    }
}
