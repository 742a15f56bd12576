//! DescribeQuorum: the state of this node's one-voter KRaft quorum, as Kafka's
//! `KafkaRaftClient.handleDescribeQuorumRequest` reports a leader's own state. Kafka's
//! brokers forward the request to the controller; this process is both, so it answers on
//! the broker listeners itself.
//!
//! * Without DESCRIBE on the cluster (Kafka's `ControllerApis.handleDescribeQuorum`) the
//!   top-level error is CLUSTER_AUTHORIZATION_FAILED with its default message, no topics.
//! * The request must name exactly `__cluster_metadata` partition 0, else every partition
//!   asked about gets `UNKNOWN_TOPIC_OR_PARTITION` (with Kafka's default message from v2).
//! * The leader is this node, the epoch that of the metadata log; every record is fsync'd
//!   before it is applied, so the high watermark is the log end offset.
//! * Voters: a dynamic quorum's (KIP-853: those of its last `VotersRecord`, with their
//!   directory ids and endpoints), else `controller.quorum.voters`, else this node. This node's log end offset is its
//!   own, and its last fetch and caught-up timestamps are now (a leader reports itself so);
//!   another voter (never expected with one node) is unknown: -1 for all three. Directory
//!   ids are zero: a static quorum (`kraft.version` 0) has none.
//! * Observers: on the quorum's leader, the broker-only nodes it saw fetch the metadata
//!   log in this epoch (`cluster/quorum/observers.rs`, Kafka's `LeaderState`
//!   observer states); none elsewhere, and none on a single node (its broker is a voter).
//! * In a cluster (`Config::is_cluster`) the answer is the quorum's
//!   ([`Quorum::status`](crate::cluster::quorum::Quorum::status)): the leader, its epoch,
//!   the high watermark and each voter's log end offset as the leader's replication
//!   reports it; a controller that is not the leader answers `NOT_LEADER_OR_FOLLOWER` for
//!   the partition, as Kafka's `KafkaRaftClient.handleDescribeQuorumRequest` does. The
//!   timestamps are now for the leader and for voters it has replicated to, -1 otherwise
//!   (openraft does not report when a follower last acknowledged).
//! * Nodes (v2): each voter with its controller listener: this node's registered
//!   controller endpoints (bound ports), else its configured controller listeners; another
//!   voter with the `controller.quorum.voters` address under the first
//!   `controller.listener.names` name, as Kafka's static voter set.

use gregor_protocol::VersionRange;
use gregor_protocol::error_code;
use gregor_protocol::messages::describe_quorum_request::DescribeQuorumRequest;
use gregor_protocol::messages::describe_quorum_response::{
    DescribeQuorumResponse, Listener, Node, PartitionData, ReplicaState, TopicData,
};
use gregor_protocol::{ByteString, ErrorCode};
use uuid::Uuid;

use super::RequestContext;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

/// The metadata topic.
const METADATA_TOPIC: &str = "__cluster_metadata";

/// Answers a DescribeQuorum request.
pub fn handle(
    ctx: &RequestContext,
    version: i16,
    request: DescribeQuorumRequest,
) -> DescribeQuorumResponse {
    if let Some(code) =
        super::authorize::Checker::new(ctx).cluster_error(crate::authorizer::AclOperation::Describe)
    {
        return DescribeQuorumResponse {
            error_code: code,
            error_message: ErrorCode::from(code)
                .default_message()
                .map(ByteString::from),
            topics: Vec::new(),
            ..Default::default()
        };
    }
    let valid = matches!(&request.topics[..], [topic]
        if &*topic.topic_name == METADATA_TOPIC
            && matches!(&topic.partitions[..], [p] if p.partition_index == 0));
    if !valid {
        let message = ErrorCode::from(error_code::UNKNOWN_TOPIC_OR_PARTITION)
            .default_message()
            .map(ByteString::from);
        let topics = request
            .topics
            .iter()
            .map(|t| TopicData {
                topic_name: t.topic_name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| PartitionData {
                        partition_index: p.partition_index,
                        error_code: error_code::UNKNOWN_TOPIC_OR_PARTITION,
                        error_message: if version >= 2 { message.clone() } else { None },
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
        return DescribeQuorumResponse {
            error_code: error_code::NONE,
            topics,
            ..Default::default()
        };
    }
    let broker = &ctx.broker;
    let controller = &broker.controller;
    let node_id = broker.node_id;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let status = controller.quorum().map(|q| q.status());
    if let Some(status) = &status
        && status.leader != Some(node_id)
    {
        return DescribeQuorumResponse {
            error_code: error_code::NONE,
            topics: vec![TopicData {
                topic_name: METADATA_TOPIC.into(),
                partitions: vec![PartitionData {
                    partition_index: 0,
                    error_code: error_code::NOT_LEADER_OR_FOLLOWER,
                    error_message: if version >= 2 {
                        ErrorCode::from(error_code::NOT_LEADER_OR_FOLLOWER)
                            .default_message()
                            .map(ByteString::from)
                    } else {
                        None
                    },
                    leader_id: status.leader.unwrap_or(-1),
                    leader_epoch: status.epoch,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
    }
    let (end_offset, epoch) = match &status {
        Some(status) => (status.high_watermark, status.epoch),
        None => (controller.next_offset(), controller.epoch()),
    };
    let config = &broker.config;
    // A dynamic quorum's voters (KIP-853) are those of its log, with directory ids.
    let dynamic_voters = controller
        .quorum()
        .filter(|q| q.kraft_version() >= 1)
        .map(|q| q.voter_nodes());
    let mut voter_ids: Vec<i32> = match &dynamic_voters {
        Some(voters) => voters.keys().copied().collect(),
        None => config
            .controller_quorum_voters
            .iter()
            .map(|v| v.id)
            .collect(),
    };
    if voter_ids.is_empty() {
        voter_ids.push(node_id);
    }
    let directory_of = |id: i32| {
        dynamic_voters
            .as_ref()
            .and_then(|voters| voters.get(&id))
            .map_or(Uuid::nil(), |node| node.directory_id)
    };
    let voters = voter_ids
        .iter()
        .map(|&id| {
            if let Some(status) = &status {
                let end = status
                    .voters
                    .iter()
                    .find(|(voter, _)| *voter == id)
                    .and_then(|(_, end)| *end);
                return ReplicaState {
                    replica_id: id,
                    replica_directory_id: directory_of(id),
                    log_end_offset: end.unwrap_or(-1),
                    last_fetch_timestamp: if end.is_some() { now } else { -1 },
                    last_caught_up_timestamp: if end.is_some() { now } else { -1 },
                    ..Default::default()
                };
            }
            let own = id == node_id;
            ReplicaState {
                replica_id: id,
                replica_directory_id: directory_of(id),
                log_end_offset: if own { end_offset } else { -1 },
                last_fetch_timestamp: if own { now } else { -1 },
                last_caught_up_timestamp: if own { now } else { -1 },
                ..Default::default()
            }
        })
        .collect();
    // Broker-only nodes following the metadata log, as the leader saw them fetch.
    let observers: Vec<ReplicaState> = controller
        .quorum()
        .map(|quorum| quorum.observers())
        .unwrap_or_default()
        .into_iter()
        .map(|o| ReplicaState {
            replica_id: o.replica_id,
            replica_directory_id: o.directory_id,
            log_end_offset: o.log_end_offset,
            last_fetch_timestamp: o.last_fetch_timestamp,
            last_caught_up_timestamp: o.last_caught_up_timestamp,
            ..Default::default()
        })
        .collect();
    let nodes = if version >= 2 {
        let image = broker.image();
        voter_ids
            .iter()
            .map(|&id| {
                let listeners: Vec<Listener> = if id == node_id {
                    match image.controllers().get(&id) {
                        Some(registration) => registration
                            .endpoints
                            .iter()
                            .map(|e| Listener {
                                name: e.listener.clone().into(),
                                host: e.host.clone().into(),
                                port: e.port,
                                ..Default::default()
                            })
                            .collect(),
                        None => config
                            .controller_listeners()
                            .map(|l| Listener {
                                name: l.name.clone().into(),
                                host: if l.host.is_empty() {
                                    "localhost".into()
                                } else {
                                    l.host.clone().into()
                                },
                                port: l.port,
                                ..Default::default()
                            })
                            .collect(),
                    }
                } else if let Some(node) = dynamic_voters.as_ref().and_then(|v| v.get(&id)) {
                    vec![Listener {
                        name: node.listener.as_str().into(),
                        host: node.host.as_str().into(),
                        port: node.port,
                        ..Default::default()
                    }]
                } else {
                    config
                        .controller_quorum_voters
                        .iter()
                        .filter(|v| v.id == id)
                        .zip(config.controller_listener_names.first())
                        .map(|(v, name)| Listener {
                            name: name.clone().into(),
                            host: v.host.clone().into(),
                            port: v.port,
                            ..Default::default()
                        })
                        .collect()
                };
                Node {
                    node_id: id,
                    listeners,
                    ..Default::default()
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    DescribeQuorumResponse {
        error_code: error_code::NONE,
        error_message: None,
        topics: vec![TopicData {
            topic_name: METADATA_TOPIC.into(),
            partitions: vec![PartitionData {
                partition_index: 0,
                error_code: error_code::NONE,
                error_message: None,
                leader_id: node_id,
                leader_epoch: epoch,
                high_watermark: end_offset,
                current_voters: voters,
                observers,
                ..Default::default()
            }],
            ..Default::default()
        }],
        nodes,
        ..Default::default()
    }
}
