//! Fetch before v10: the per-partition rules Kafka 3.9 applied to a response as it was
//! sent (`KafkaApis.handleFetchRequest`'s `maybeConvertFetchedData`), after the fetch
//! session chose its partitions:
//!
//! * a topic whose `compression.type` is `zstd` answers Fetch v0-9 with
//!   `UNSUPPORTED_COMPRESSION_TYPE` (KIP-110: those clients cannot read zstd);
//! * Fetch v0-1 read magic 0, v2-3 magic 1: the magic 2 batches are down-converted
//!   ([`gregor_protocol::records::legacy_write::down_convert`], Kafka's
//!   `LazyDownConversionRecords`), unless the topic's `message.downconversion.enable` is
//!   false, which answers a consumer (not a follower) with `UNSUPPORTED_VERSION`; a zstd
//!   batch first in the data answers `UNSUPPORTED_COMPRESSION_TYPE`;
//! * `KAFKA_STORAGE_ERROR` is sent as `NOT_LEADER_OR_FOLLOWER` to v0-5, whose clients do
//!   not know it and would not retry (`maybeDownConvertStorageError`).
//!
//! Conversion runs on tokio's blocking pool, one partition at a time and one batch at a
//! time within it, never holding more than the partition's answer and one converted batch.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use gregor_protocol::error_code;
use gregor_protocol::messages::fetch_response::{FetchResponse, PartitionData};
use gregor_protocol::records::Compression;
use gregor_protocol::records::legacy_write::{DownConvertError, down_convert};

use super::Wanted;
use crate::storage::PartitionLog;

/// First version whose clients read zstd (KIP-110).
const FIRST_ZSTD_VERSION: i16 = 10;
/// Last version whose clients do not know `KAFKA_STORAGE_ERROR`.
const LAST_VERSION_WITHOUT_STORAGE_ERROR: i16 = 5;

/// Whether a response of `version` goes through [`convert_response`].
pub(super) fn needed(version: i16) -> bool {
    version < FIRST_ZSTD_VERSION
}

/// The magic a consumer of `version` reads, when older than the stored magic 2.
fn target_magic(version: i16) -> Option<i8> {
    match version {
        0 | 1 => Some(0),
        2 | 3 => Some(1),
        _ => None,
    }
}

/// Applies the rules of the module docs to every partition of `response`.
pub(super) async fn convert_response(
    logs: &crate::storage::LogManager,
    version: i16,
    from_follower: bool,
    topics: &[(String, gregor_protocol::Uuid)],
    wanted: &[Wanted],
    mut response: FetchResponse,
) -> FetchResponse {
    let offsets: HashMap<(&str, i32), i64> = wanted
        .iter()
        .map(|w| ((topics[w.topic].0.as_str(), w.partition), w.fetch_offset))
        .collect();
    // Each partition's log and fetch offset, looked up before leaving the runtime.
    let mut jobs: Vec<Option<(Arc<PartitionLog>, i64)>> = Vec::new();
    for topic in &response.responses {
        for partition in &topic.partitions {
            let name: &str = &topic.topic;
            let log = logs.get(name, partition.partition_index);
            let offset = offsets.get(&(name, partition.partition_index)).copied();
            jobs.push(log.zip(offset));
        }
    }
    let task = tokio::task::spawn_blocking(move || {
        let mut jobs = jobs.into_iter();
        for topic in &mut response.responses {
            for partition in &mut topic.partitions {
                let job = jobs.next().flatten();
                convert_partition(version, from_follower, job, partition);
            }
        }
        response
    });
    match task.await {
        Ok(response) => response,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => panic!("down-conversion task cancelled: {error}"),
    }
}

/// One partition: `job` is its log and fetch offset (none for a partition without a log,
/// whose answer is an error already).
fn convert_partition(
    version: i16,
    from_follower: bool,
    job: Option<(Arc<PartitionLog>, i64)>,
    partition: &mut PartitionData,
) {
    if let Some((log, fetch_offset)) = job {
        let config = log.config();
        if config.compression_type == Some(Compression::Zstd) && version < FIRST_ZSTD_VERSION {
            return fail(partition, error_code::UNSUPPORTED_COMPRESSION_TYPE);
        }
        if let Some(magic) = target_magic(version) {
            if !from_follower && !config.message_downconversion_enable {
                return fail(partition, error_code::UNSUPPORTED_VERSION);
            }
            let records = partition.records.take().unwrap_or_default();
            match down_convert(&records, magic, fetch_offset) {
                Ok(converted) => partition.records = Some(converted),
                Err(DownConvertError::UnsupportedCompression { .. }) => {
                    return fail(partition, error_code::UNSUPPORTED_COMPRESSION_TYPE);
                }
                Err(error) => {
                    tracing::error!(
                        "down-converting {:?} at {fetch_offset} to magic {magic}: {error}",
                        log.name()
                    );
                    return fail(partition, error_code::UNKNOWN_SERVER_ERROR);
                }
            }
        }
    }
    if version <= LAST_VERSION_WITHOUT_STORAGE_ERROR
        && partition.error_code == error_code::KAFKA_STORAGE_ERROR
    {
        partition.error_code = error_code::NOT_LEADER_OR_FOLLOWER;
    }
}

/// The partition answered with `code` alone (Kafka's `FetchResponse.partitionResponse`).
fn fail(partition: &mut PartitionData, code: i16) {
    *partition = PartitionData {
        partition_index: partition.partition_index,
        error_code: code,
        high_watermark: -1,
        last_stable_offset: -1,
        log_start_offset: -1,
        preferred_read_replica: -1,
        records: Some(Bytes::new()),
        ..Default::default()
    };
}
