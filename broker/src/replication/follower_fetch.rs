//! The leader's answer to a follower's Fetch of one partition (Kafka's
//! `Partition.fetchRecords` with `isFromFollower`): the current leader epoch checked, the
//! follower's last fetched epoch compared with the leader's epoch cache (KIP-320: a
//! diverging epoch is answered instead of records, for the follower to truncate), the log
//! read up to its end (`FetchIsolation.LOG_END`), then the follower's fetch state updated,
//! which may move the ISR and the high watermark.

use bytes::Bytes;
use gregor_protocol::error_code;

use super::leader::LeaderPartition;
use crate::storage::{FetchIsolation, ReadError};

/// One partition of a follower's Fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowerFetch {
    /// The follower's broker id (`ReplicaState.ReplicaId`, or `ReplicaId` before v15).
    pub replica_id: i32,
    /// The follower's broker epoch (`ReplicaState.ReplicaEpoch`; -1 before v15).
    pub broker_epoch: i64,
    /// Where the follower's log ends.
    pub fetch_offset: i64,
    /// The follower's log start offset.
    pub log_start_offset: i64,
    /// The leader epoch the follower knows (-1: none).
    pub current_leader_epoch: i32,
    /// The epoch of the follower's last batch (-1: none).
    pub last_fetched_epoch: i32,
    /// Most bytes to return.
    pub max_bytes: usize,
    /// Whether the first batch is returned even when larger than `max_bytes`.
    pub min_one_message: bool,
    /// Whether the follower may join the ISR (not fenced, not shutting down, its broker
    /// epoch the registered one), from the metadata image.
    pub isr_eligible: bool,
}

/// What the leader answers for one partition of a follower's Fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowerFetchAnswer {
    /// The partition's error code.
    pub error: i16,
    /// Records from the fetch offset (empty with an error or a diverging epoch).
    pub records: Bytes,
    /// The high watermark (after the fetch moved it), -1 with an error.
    pub high_watermark: i64,
    /// The last stable offset, -1 with an error.
    pub last_stable_offset: i64,
    /// The log start offset, -1 with an error.
    pub log_start_offset: i64,
    /// KIP-320: the largest epoch at or below the follower's last fetched one and its end
    /// offset, when the follower's log diverges from the leader's there.
    pub diverging_epoch: Option<(i32, i64)>,
}

impl FollowerFetchAnswer {
    fn failed(error: i16) -> FollowerFetchAnswer {
        FollowerFetchAnswer {
            error,
            records: Bytes::new(),
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            diverging_epoch: None,
        }
    }
}

/// Answers one partition of a follower's Fetch (blocking file I/O).
pub fn read_for_follower(
    leader: &LeaderPartition,
    fetch: &FollowerFetch,
    now_ms: i64,
) -> FollowerFetchAnswer {
    let log = leader.log();
    let epoch = leader.leader_epoch();
    if !leader.is_leading() {
        return FollowerFetchAnswer::failed(error_code::NOT_LEADER_OR_FOLLOWER);
    }
    // Kafka's `localLogWithEpochOrThrow`.
    match fetch.current_leader_epoch {
        -1 => {}
        e if e < epoch => return FollowerFetchAnswer::failed(error_code::FENCED_LEADER_EPOCH),
        e if e > epoch => return FollowerFetchAnswer::failed(error_code::UNKNOWN_LEADER_EPOCH),
        _ => {}
    }
    // Kafka's `followerReplicaOrThrow`.
    if !leader.is_replica(fetch.replica_id) || fetch.replica_id == -1 {
        return FollowerFetchAnswer::failed(if fetch.current_leader_epoch >= 0 {
            error_code::UNKNOWN_LEADER_EPOCH
        } else {
            error_code::NOT_LEADER_OR_FOLLOWER
        });
    }
    let (log_start, high_watermark, last_stable) = (
        log.log_start_offset(),
        log.high_watermark(),
        log.last_stable_offset(),
    );
    if fetch.last_fetched_epoch >= 0 {
        let (found_epoch, end) = log.end_offset_for_epoch(fetch.last_fetched_epoch, epoch);
        if found_epoch < 0 || end < 0 || fetch.fetch_offset < log_start {
            return FollowerFetchAnswer::failed(error_code::OFFSET_OUT_OF_RANGE);
        }
        if found_epoch < fetch.last_fetched_epoch || end < fetch.fetch_offset {
            return FollowerFetchAnswer {
                error: error_code::NONE,
                records: Bytes::new(),
                high_watermark,
                last_stable_offset: last_stable,
                log_start_offset: log_start,
                diverging_epoch: Some((found_epoch, end)),
            };
        }
    }
    let read = match log.read_with_isolation(
        fetch.fetch_offset,
        fetch.max_bytes,
        fetch.min_one_message,
        FetchIsolation::LogEnd,
    ) {
        Ok(read) => read,
        Err(ReadError::OffsetOutOfRange { .. }) => {
            return FollowerFetchAnswer::failed(error_code::OFFSET_OUT_OF_RANGE);
        }
        Err(error) => {
            tracing::error!(partition = %log.name(), %error, "reading for a follower");
            return FollowerFetchAnswer::failed(error_code::KAFKA_STORAGE_ERROR);
        }
    };
    if let Err(code) = leader.on_follower_fetch(
        fetch.replica_id,
        fetch.broker_epoch,
        fetch.fetch_offset,
        fetch.log_start_offset,
        now_ms,
        fetch.isr_eligible,
    ) {
        return FollowerFetchAnswer::failed(code);
    }
    FollowerFetchAnswer {
        error: error_code::NONE,
        records: read.records,
        high_watermark: log.high_watermark(),
        last_stable_offset: log.last_stable_offset(),
        log_start_offset: read.log_start_offset,
        diverging_epoch: None,
    }
}
