//! ListOffsets v0 (removed by Kafka 4), answered as Kafka 3.9's `KafkaApis.
//! handleListOffsetRequestV0` and `Partition.legacyFetchOffsetsForTimestamp` did: per
//! partition, up to `max_num_offsets` segment-boundary offsets for the timestamp in
//! `old_style_offsets` (see [`crate::storage::PartitionLog::legacy_offsets_before`]).
//!
//! Per partition: a timestamp below -2 is `UNSUPPORTED_VERSION` (v0 knows only latest and
//! earliest among the special values); a topic or partition missing from the metadata
//! `UNKNOWN_TOPIC_OR_PARTITION`, one without a log here `KAFKA_STORAGE_ERROR`. For a
//! consumer (`replica_id` -1) offsets above the high watermark are replaced by the high
//! watermark, so a consumer never learns of offsets it may not read yet. Duplicate
//! partitions are answered each time (Kafka 3.9 checked duplicates only from v1 on).

use std::time::{SystemTime, UNIX_EPOCH};

use gregor_protocol::error_code;
use gregor_protocol::messages::list_offsets_request::ListOffsetsRequest;
use gregor_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};

use crate::broker::Broker;
use crate::storage::{LegacyOffsetsError, PartitionLog};

/// `replica_id` of a consumer.
const CONSUMER_REPLICA_ID: i32 = -1;

/// The topics of a v0 answer (blocking: reads segment file times).
pub(super) fn answer(
    broker: &Broker,
    request: ListOffsetsRequest,
) -> Vec<ListOffsetsTopicResponse> {
    let image = broker.image();
    let from_consumer = request.replica_id == CONSUMER_REPLICA_ID;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.to_string();
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let index = p.partition_index;
                    // Kafka's `ListOffsetsRequest.EARLIEST_TIMESTAMP` is the lowest v0 knows.
                    if p.timestamp < -2 {
                        return error(index, error_code::UNSUPPORTED_VERSION);
                    }
                    if image
                        .topic(&name)
                        .and_then(|t| t.partitions.get(&index))
                        .is_none()
                    {
                        return error(index, error_code::UNKNOWN_TOPIC_OR_PARTITION);
                    }
                    let Some(log) = broker.logs.get(&name, index) else {
                        return error(index, error_code::KAFKA_STORAGE_ERROR);
                    };
                    offsets(
                        &log,
                        p.timestamp,
                        p.max_num_offsets,
                        from_consumer,
                        now_ms,
                        index,
                    )
                })
                .collect();
            ListOffsetsTopicResponse {
                name: name.as_str().into(),
                partitions,
                ..Default::default()
            }
        })
        .collect()
}

/// One partition's answer.
fn offsets(
    log: &PartitionLog,
    timestamp: i64,
    max_num_offsets: i32,
    from_consumer: bool,
    now_ms: i64,
    index: i32,
) -> ListOffsetsPartitionResponse {
    let mut offsets = match log.legacy_offsets_before(timestamp, max_num_offsets, now_ms) {
        Ok(offsets) => offsets,
        Err(LegacyOffsetsError::NegativeCount) => {
            return error(index, error_code::UNKNOWN_SERVER_ERROR);
        }
    };
    if from_consumer {
        // Kafka's `Partition.legacyFetchOffsetsForTimestamp`: the high watermark instead of
        // the offsets past it.
        let high_watermark = log.high_watermark();
        if offsets.iter().any(|&o| o > high_watermark) {
            offsets.retain(|&o| o <= high_watermark);
            offsets.insert(0, high_watermark);
        }
    }
    ListOffsetsPartitionResponse {
        partition_index: index,
        error_code: error_code::NONE,
        old_style_offsets: offsets,
        ..Default::default()
    }
}

/// A partition's error, without offsets.
fn error(index: i32, code: i16) -> ListOffsetsPartitionResponse {
    ListOffsetsPartitionResponse {
        partition_index: index,
        error_code: code,
        ..Default::default()
    }
}
