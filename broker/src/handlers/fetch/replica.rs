//! Where one partition of a Fetch is read, once replication gave the partition a role here
//! (Kafka's `ReplicaManager.readFromLog` → `Partition.fetchRecords`):
//!
//! * a follower's fetch of a partition this broker leads goes to
//!   [`crate::replication::follower_fetch`] (read to the log end, the follower's state
//!   updated, a diverging epoch answered);
//! * a follower's fetch of a partition this broker does not lead is NOT_LEADER_OR_FOLLOWER
//!   with the current leader (KIP-951);
//! * a consumer's fetch checks its `current_leader_epoch` (FENCED_LEADER_EPOCH,
//!   UNKNOWN_LEADER_EPOCH) and reads up to the high watermark; on a follower only from
//!   Fetch v11 (KIP-392's fetch from follower; older consumers must use the leader).
//!
//! A partition without a role is read as before (this broker is its only replica), unless
//! the metadata names another broker as its leader.

use std::sync::Arc;

use gregor_protocol::error_code;

use crate::cluster::image::MetadataImage;
use crate::fetch_sessions::RequestedPartition;
use crate::replication::follower_fetch::FollowerFetch;
use crate::replication::{LeaderPartition, ReplicaManager, Role};

/// How one partition is read.
#[derive(Debug)]
pub(super) enum Route {
    /// From the local log, as a consumer reads.
    Local,
    /// A follower's fetch of a partition this broker leads.
    Follower(Arc<LeaderPartition>, FollowerFetch),
    /// Refused with this error and, for NOT_LEADER_OR_FOLLOWER and FENCED_LEADER_EPOCH,
    /// the current leader and its epoch (KIP-951).
    Refused(i16, Option<(i32, i32)>),
}

/// The replica state of a follower's request: (replica id, broker epoch).
pub(super) fn replica_of(
    version: i16,
    request: &gregor_protocol::messages::fetch_request::FetchRequest,
) -> (i32, i64) {
    if version >= 15 {
        (
            request.replica_state.replica_id,
            request.replica_state.replica_epoch,
        )
    } else {
        (request.replica_id, -1)
    }
}

/// The route of `partition` of `topic`.
#[allow(clippy::too_many_arguments)]
pub(super) fn route(
    replicas: &ReplicaManager,
    image: &MetadataImage,
    local_id: i32,
    version: i16,
    follower: Option<(i32, i64)>,
    topic: &str,
    partition: &RequestedPartition,
    max_bytes: usize,
) -> Route {
    let index = partition.partition;
    let metadata_leader = image
        .topic(topic)
        .and_then(|t| t.partitions.get(&index))
        .map(|p| (p.leader, p.leader_epoch));
    let check_epoch = |epoch: i32| match partition.current_leader_epoch {
        -1 => None,
        e if e < epoch => Some(error_code::FENCED_LEADER_EPOCH),
        e if e > epoch => Some(error_code::UNKNOWN_LEADER_EPOCH),
        _ => None,
    };
    match replicas.role(topic, index) {
        None => match metadata_leader {
            Some((leader, epoch)) if leader >= 0 && leader != local_id => {
                Route::Refused(error_code::NOT_LEADER_OR_FOLLOWER, Some((leader, epoch)))
            }
            _ => Route::Local,
        },
        Some(Role::Leader(leader)) => {
            let epoch = leader.leader_epoch();
            match follower {
                Some((replica_id, broker_epoch)) => Route::Follower(
                    Arc::clone(&leader),
                    FollowerFetch {
                        replica_id,
                        broker_epoch,
                        fetch_offset: partition.fetch_offset,
                        log_start_offset: partition.log_start_offset,
                        current_leader_epoch: partition.current_leader_epoch,
                        last_fetched_epoch: partition.last_fetched_epoch,
                        max_bytes,
                        min_one_message: true,
                        isr_eligible: crate::replication::isr_eligible(
                            image,
                            replica_id,
                            broker_epoch,
                        ),
                    },
                ),
                None => match check_epoch(epoch) {
                    Some(code) => Route::Refused(code, Some((local_id, epoch))),
                    None => Route::Local,
                },
            }
        }
        Some(Role::Follower {
            leader_id,
            leader_epoch,
        }) => {
            let current = Some((leader_id, leader_epoch));
            if follower.is_some() || version < 11 {
                return Route::Refused(error_code::NOT_LEADER_OR_FOLLOWER, current);
            }
            match check_epoch(leader_epoch) {
                Some(code) => Route::Refused(code, current),
                None => Route::Local,
            }
        }
    }
}
