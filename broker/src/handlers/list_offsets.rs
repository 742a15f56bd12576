//! ListOffsets: the earliest (-2), latest (-1) and max-timestamp (-3) offsets, the first
//! offset at or after a timestamp (through the time index), per partition. v0 (removed by
//! Kafka 4) answers with a list of segment-boundary offsets instead, see [`legacy`].

use std::collections::HashSet;

use gregor_protocol::VersionRange;
use gregor_protocol::messages::list_offsets_request::ListOffsetsRequest;
use gregor_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
};

use super::RequestContext;
use crate::storage::{PartitionLog, TimestampOffset};
use gregor_protocol::error_code;

mod legacy;

/// Versions served (v0 as Kafka 3.9 served it).
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 11 };

/// The special timestamps of Kafka's ListOffsetsRequest.
mod spec {
    /// The high watermark (or last stable offset for READ_COMMITTED).
    pub const LATEST: i64 = -1;
    /// The log start offset.
    pub const EARLIEST: i64 = -2;
    /// The record with the largest timestamp (v7+).
    pub const MAX_TIMESTAMP: i64 = -3;
    /// The first offset of the local log (v8+); the log start offset without tiering.
    pub const EARLIEST_LOCAL: i64 = -4;
    /// The highest tiered offset (v9+); none without tiered storage.
    pub const LATEST_TIERED: i64 = -5;
    /// The first offset not yet tiered (v11+); none without tiered storage.
    pub const EARLIEST_PENDING_UPLOAD: i64 = -6;
}

/// `isolation_level` of READ_COMMITTED.
const READ_COMMITTED: i8 = 1;

/// Answers a ListOffsets request.
pub async fn handle(
    ctx: &RequestContext,
    version: i16,
    mut request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    // KafkaApis.handleListOffsetRequest: DESCRIBE on each topic; the unauthorized ones
    // are answered TOPIC_AUTHORIZATION_FAILED after the others.
    let checker = super::authorize::Checker::new(ctx);
    let (allowed, denied): (Vec<_>, Vec<_>) = std::mem::take(&mut request.topics)
        .into_iter()
        .partition(|t| checker.topic(crate::authorizer::AclOperation::Describe, &t.name));
    request.topics = allowed;
    let unauthorized: Vec<ListOffsetsTopicResponse> = denied
        .into_iter()
        .map(|t| ListOffsetsTopicResponse {
            name: t.name,
            partitions: t
                .partitions
                .iter()
                .map(|p| error(p.partition_index, error_code::TOPIC_AUTHORIZATION_FAILED))
                .collect(),
            ..Default::default()
        })
        .collect();
    let mut response = answer(ctx, version, request).await;
    response.topics.extend(unauthorized);
    if version < 4 {
        // Leader epochs arrived with v4; the field must keep its default before.
        for partition in response
            .topics
            .iter_mut()
            .flat_map(|t| t.partitions.iter_mut())
        {
            partition.leader_epoch = -1;
        }
    }
    response
}

/// Answers the (authorized) topics of a request.
async fn answer(
    ctx: &RequestContext,
    version: i16,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let broker = ctx.broker.clone();
    if version == 0 {
        let topics = tokio::task::spawn_blocking(move || legacy::answer(&broker, request))
            .await
            .unwrap_or_else(|err| {
                tracing::error!("list offsets task failed: {err}");
                Vec::new()
            });
        return ListOffsetsResponse {
            topics,
            ..Default::default()
        };
    }
    let read_committed = request.isolation_level == READ_COMMITTED;
    // Kafka's `isFromConsumer`: a replica (or the debugging id -2) sees up to the log end
    // offset, a consumer up to the high watermark (or the LSO).
    let from_replica = request.replica_id != -1;
    let topics = tokio::task::spawn_blocking(move || {
        let image = broker.image();
        let mut seen = HashSet::new();
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
                        if !seen.insert((name.clone(), index)) {
                            return error(index, error_code::INVALID_REQUEST);
                        }
                        let Some(partition) =
                            image.topic(&name).and_then(|t| t.partitions.get(&index))
                        else {
                            return error(index, error_code::UNKNOWN_TOPIC_OR_PARTITION);
                        };
                        let Some(log) = broker.logs.get(&name, index) else {
                            // In the metadata but without a log: offline.
                            return error(index, error_code::KAFKA_STORAGE_ERROR);
                        };
                        if let Some(code) = fence(p.current_leader_epoch, partition.leader_epoch) {
                            return error(index, code);
                        }
                        lookup(
                            &log,
                            version,
                            p.timestamp,
                            partition.leader_epoch,
                            read_committed,
                            from_replica,
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
    })
    .await
    .unwrap_or_else(|err| {
        tracing::error!("list offsets task failed: {err}");
        Vec::new()
    });
    ListOffsetsResponse {
        throttle_time_ms: 0,
        topics,
        ..Default::default()
    }
}

/// FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH when the client's epoch is not current.
fn fence(requested: i32, current: i32) -> Option<i16> {
    match requested {
        -1 => None,
        e if e < current => Some(error_code::FENCED_LEADER_EPOCH),
        e if e > current => Some(error_code::UNKNOWN_LEADER_EPOCH),
        _ => None,
    }
}

/// The first version that knows each special timestamp.
fn min_version(timestamp: i64) -> i16 {
    match timestamp {
        spec::MAX_TIMESTAMP => 7,
        spec::EARLIEST_LOCAL => 8,
        spec::LATEST_TIERED => 9,
        spec::EARLIEST_PENDING_UPLOAD => 11,
        _ => 0,
    }
}

fn lookup(
    log: &PartitionLog,
    version: i16,
    timestamp: i64,
    leader_epoch: i32,
    read_committed: bool,
    from_replica: bool,
    index: i32,
) -> ListOffsetsPartitionResponse {
    if version < min_version(timestamp) {
        return error(index, error_code::UNSUPPORTED_VERSION);
    }
    let last_fetchable = if from_replica {
        log.log_end_offset()
    } else if read_committed {
        log.last_stable_offset()
    } else {
        log.high_watermark()
    };
    let found = match timestamp {
        spec::LATEST => Ok(Some(TimestampOffset {
            offset: last_fetchable,
            timestamp: -1,
            leader_epoch,
        })),
        spec::EARLIEST | spec::EARLIEST_LOCAL => Ok(Some(TimestampOffset {
            offset: log.log_start_offset(),
            timestamp: -1,
            leader_epoch,
        })),
        spec::LATEST_TIERED | spec::EARLIEST_PENDING_UPLOAD => Ok(Some(TimestampOffset {
            offset: -1,
            timestamp: -1,
            leader_epoch: -1,
        })),
        spec::MAX_TIMESTAMP => log.max_timestamp(),
        at => log.offset_for_timestamp(at),
    };
    match found {
        // Searches never report records past what the reader may see (Kafka's filter).
        Ok(Some(found)) if is_search(timestamp) && found.offset >= last_fetchable => unknown(index),
        Ok(Some(found)) => ListOffsetsPartitionResponse {
            partition_index: index,
            error_code: error_code::NONE,
            timestamp: found.timestamp,
            offset: found.offset,
            leader_epoch: found.leader_epoch,
            ..Default::default()
        },
        Ok(None) => unknown(index),
        Err(err) => {
            tracing::error!("list offsets on {}: {err}", log.name());
            error(index, error_code::KAFKA_STORAGE_ERROR)
        }
    }
}

/// True for lookups by timestamp (including max timestamp), as opposed to fixed positions.
fn is_search(timestamp: i64) -> bool {
    timestamp == spec::MAX_TIMESTAMP
        || !(spec::EARLIEST_PENDING_UPLOAD..=spec::LATEST).contains(&timestamp)
}

/// No such offset: -1 offset and timestamp, no error (as Kafka answers).
fn unknown(index: i32) -> ListOffsetsPartitionResponse {
    ListOffsetsPartitionResponse {
        partition_index: index,
        offset: -1,
        timestamp: -1,
        leader_epoch: -1,
        ..Default::default()
    }
}

fn error(index: i32, code: i16) -> ListOffsetsPartitionResponse {
    ListOffsetsPartitionResponse {
        partition_index: index,
        error_code: code,
        offset: -1,
        timestamp: -1,
        leader_epoch: -1,
        ..Default::default()
    }
}
