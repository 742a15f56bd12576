//! FetchSnapshot (API 59) on a controller listener: a slice of one of the metadata
//! quorum's `.checkpoint` snapshots, for an observer a Fetch sent to that snapshot
//! (`SnapshotId` in the answer, see `metadata_fetch.rs`). Kafka's
//! `KafkaRaftClient.handleFetchSnapshotRequest` checks the cluster id
//! (`INCONSISTENT_CLUSTER_ID`), that exactly `__cluster_metadata-0` is named
//! (`INVALID_REQUEST`), that this node leads in the fetcher's epoch (the errors of Fetch,
//! with the leader this node knows), then reads the file: `SNAPSHOT_NOT_FOUND`,
//! `POSITION_OUT_OF_RANGE`.

use gregor_protocol::VersionRange;
use gregor_protocol::error_code;
use gregor_protocol::messages::fetch_snapshot_request::FetchSnapshotRequest;
use gregor_protocol::messages::fetch_snapshot_response::{
    FetchSnapshotResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionSnapshot, SnapshotId,
    TopicSnapshot,
};

use super::RequestContext;
use super::metadata_fetch::METADATA_TOPIC;
use crate::cluster::replay;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

/// Most bytes one answer carries (Kafka's `snapshot fetch max bytes` is 8 MiB too).
const MAX_CHUNK: usize = 8 * 1024 * 1024;

/// Answers FetchSnapshot.
pub fn handle(
    ctx: &RequestContext,
    _version: i16,
    request: FetchSnapshotRequest,
) -> FetchSnapshotResponse {
    let top = |error: i16| FetchSnapshotResponse {
        error_code: error,
        ..Default::default()
    };
    if let Some(cluster_id) = &request.cluster_id
        && **cluster_id != *ctx.broker.cluster_id
    {
        return top(error_code::INCONSISTENT_CLUSTER_ID);
    }
    let [topic] = request.topics.as_slice() else {
        return top(error_code::INVALID_REQUEST);
    };
    let [partition] = topic.partitions.as_slice() else {
        return top(error_code::INVALID_REQUEST);
    };
    if &*topic.name != METADATA_TOPIC || partition.partition != 0 {
        return top(error_code::INVALID_REQUEST);
    }
    let Some(quorum) = ctx.broker.controller.quorum() else {
        return respond(
            PartitionSnapshot {
                error_code: error_code::NOT_LEADER_OR_FOLLOWER,
                ..Default::default()
            },
            None,
        );
    };
    let leader = quorum.leader();
    let mut answer = PartitionSnapshot {
        index: 0,
        snapshot_id: SnapshotId {
            end_offset: partition.snapshot_id.end_offset,
            epoch: partition.snapshot_id.epoch,
            ..Default::default()
        },
        current_leader: LeaderIdAndEpoch {
            leader_id: leader.unwrap_or(-1),
            leader_epoch: quorum.epoch(),
            ..Default::default()
        },
        ..Default::default()
    };
    let endpoint = leader.and_then(|leader| {
        let metrics = quorum.metrics();
        let m = metrics.borrow();
        let node = m
            .membership_config
            .membership()
            .get_node(&(leader as u64))?;
        Some(NodeEndpoint {
            node_id: leader,
            host: node.host.clone().into(),
            port: node.port,
            ..Default::default()
        })
    });
    if let Some(error) = quorum.leader_only_error(partition.current_leader_epoch) {
        answer.error_code = error;
        return respond(answer, endpoint);
    }
    let id = replay::SnapshotId {
        end_offset: partition.snapshot_id.end_offset,
        epoch: partition.snapshot_id.epoch,
    };
    let max = usize::try_from(request.max_bytes)
        .unwrap_or(0)
        .min(MAX_CHUNK);
    match quorum.read_snapshot(id, partition.position, max) {
        Ok(chunk) => {
            answer.size = chunk.size;
            answer.position = chunk.position;
            answer.unaligned_records = chunk.bytes;
        }
        Err(error) => answer.error_code = error,
    }
    respond(answer, endpoint)
}

fn respond(partition: PartitionSnapshot, leader: Option<NodeEndpoint>) -> FetchSnapshotResponse {
    FetchSnapshotResponse {
        topics: vec![TopicSnapshot {
            name: METADATA_TOPIC.into(),
            partitions: vec![partition],
            ..Default::default()
        }],
        node_endpoints: leader.into_iter().collect(),
        ..Default::default()
    }
}
