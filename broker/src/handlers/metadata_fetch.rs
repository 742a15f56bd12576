//! Fetch on a controller listener: the metadata log `__cluster_metadata-0` for the nodes
//! that follow it (KRaft observers), answered by the quorum
//! ([`Quorum::fetch`](crate::cluster::quorum::Quorum::fetch), see `fetch_serve.rs`), as
//! Kafka's `ControllerApis.handleFetch` hands Fetch to its Raft client.
//!
//! Kafka's `KafkaRaftClient.handleFetchRequest` checks, in order: the cluster id
//! (`INCONSISTENT_CLUSTER_ID`), that the request names exactly the metadata partition (by
//! `Uuid.METADATA_TOPIC_ID` from version 13, by name before; anything else is
//! `INVALID_REQUEST`, since a controller holds no other partition), and the position
//! (`INVALID_REQUEST` for a negative wait, offset or last epoch, or a last epoch above the
//! current one). A node that is not a cluster controller has no quorum to fetch from and
//! answers `NOT_LEADER_OR_FOLLOWER` for the partition.

use std::time::Duration;

use gregor_protocol::error_code;
use gregor_protocol::messages::fetch_request::FetchRequest;
use gregor_protocol::messages::fetch_response::{
    EpochEndOffset, FetchResponse, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint,
    PartitionData, SnapshotId,
};

use super::RequestContext;
use crate::cluster::meta_properties::METADATA_TOPIC_ID;
use crate::cluster::quorum::fetch_serve::{FetchOutcome, MetadataFetch, MetadataFetchAnswer};

/// The metadata topic's name.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// Longest wait honoured (Kafka's observers ask for `controller.quorum.fetch.timeout.ms` / 2).
const MAX_WAIT_CAP: Duration = Duration::from_secs(30);

/// Answers a Fetch that came in on a controller listener.
pub async fn handle(ctx: &RequestContext, version: i16, request: FetchRequest) -> FetchResponse {
    let top = |error: i16| FetchResponse {
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
    let named = if version >= 13 {
        topic.topic_id == METADATA_TOPIC_ID
    } else {
        &*topic.topic == METADATA_TOPIC
    };
    let [partition] = topic.partitions.as_slice() else {
        return top(error_code::INVALID_REQUEST);
    };
    if !named || partition.partition != 0 {
        return top(error_code::INVALID_REQUEST);
    }
    if request.max_wait_ms < 0
        || partition.fetch_offset < 0
        || partition.last_fetched_epoch < 0
        || partition.last_fetched_epoch > partition.current_leader_epoch
    {
        return respond(version, partition_error(error_code::INVALID_REQUEST), None);
    }
    let Some(quorum) = ctx.broker.controller.quorum() else {
        return respond(
            version,
            partition_error(error_code::NOT_LEADER_OR_FOLLOWER),
            None,
        );
    };
    let fetch = MetadataFetch {
        fetch_offset: partition.fetch_offset,
        last_fetched_epoch: partition.last_fetched_epoch,
        current_leader_epoch: partition.current_leader_epoch,
        max_bytes: usize::try_from(partition.partition_max_bytes.min(request.max_bytes))
            .unwrap_or(0),
    };
    let wait =
        Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0)).min(MAX_WAIT_CAP);
    let answer = quorum.fetch(fetch, wait).await;
    if answer.error == error_code::NONE && matches!(answer.outcome, FetchOutcome::Records(_)) {
        // KIP-903: the replica id is in ReplicaState from version 15.
        let replica_id = if version >= 15 {
            request.replica_state.replica_id
        } else {
            request.replica_id
        };
        quorum.record_observer_fetch(
            replica_id,
            partition.replica_directory_id,
            partition.fetch_offset,
        );
    }
    let endpoint = answer.leader.and_then(|leader| {
        let metrics = quorum.metrics();
        let m = metrics.borrow();
        let node = m
            .membership_config
            .membership()
            .get_node(&(leader as u64))?;
        Some(NodeEndpoint {
            node_id: leader,
            host: node.host.clone().into(),
            port: i32::from(node.port),
            rack: None,
            ..Default::default()
        })
    });
    respond(version, partition_data(&answer), endpoint)
}

/// The partition's answer with only an error.
fn partition_error(error: i16) -> PartitionData {
    PartitionData {
        partition_index: 0,
        error_code: error,
        high_watermark: -1,
        ..Default::default()
    }
}

/// The partition's answer for `answer` (Kafka's `KafkaRaftClient.buildFetchResponse`).
fn partition_data(answer: &MetadataFetchAnswer) -> PartitionData {
    let mut data = PartitionData {
        partition_index: 0,
        error_code: answer.error,
        high_watermark: answer.high_watermark,
        log_start_offset: answer.log_start_offset,
        current_leader: LeaderIdAndEpoch {
            leader_id: answer.leader.unwrap_or(-1),
            leader_epoch: answer.epoch,
            ..Default::default()
        },
        ..Default::default()
    };
    match &answer.outcome {
        FetchOutcome::Records(bytes) => data.records = Some(bytes.clone()),
        FetchOutcome::Diverging { epoch, end_offset } => {
            data.diverging_epoch = EpochEndOffset {
                epoch: *epoch,
                end_offset: *end_offset,
                ..Default::default()
            };
            data.records = Some(bytes::Bytes::new());
        }
        FetchOutcome::Snapshot(id) => {
            data.snapshot_id = SnapshotId {
                end_offset: id.end_offset,
                epoch: id.epoch,
                ..Default::default()
            };
            data.records = Some(bytes::Bytes::new());
        }
    }
    data
}

/// The whole response: the metadata topic with `partition`.
fn respond(version: i16, partition: PartitionData, leader: Option<NodeEndpoint>) -> FetchResponse {
    FetchResponse {
        responses: vec![FetchableTopicResponse {
            topic: if version < 13 {
                METADATA_TOPIC.into()
            } else {
                Default::default()
            },
            topic_id: METADATA_TOPIC_ID,
            partitions: vec![partition],
            ..Default::default()
        }],
        node_endpoints: leader.into_iter().collect(),
        ..Default::default()
    }
}
