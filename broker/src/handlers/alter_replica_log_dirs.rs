//! AlterReplicaLogDirs: moves replicas of this broker to another of its log directories, as
//! Kafka's `ReplicaManager.alterReplicaLogDirs` answers (the move itself is
//! [`crate::storage::move_replica`]).
//!
//! Per partition (a partition named under several directories takes the last one, as Kafka
//! collects the request into a map): `LOG_DIR_NOT_FOUND` for a path that is not one of
//! `log.dirs`, `KAFKA_STORAGE_ERROR` for an offline one, `INVALID_TOPIC_EXCEPTION` when the
//! future directory's name would exceed 255 bytes, `REPLICA_NOT_AVAILABLE` for a partition
//! without a replica here. Otherwise `NONE` once the future replica exists (or the replica
//! is already there): the copy runs in the background, as Kafka's ReplicaAlterLogDirsThread.
//! Without ALTER on the cluster every partition of the request, as sent (directory by
//! directory, topic by topic), is CLUSTER_AUTHORIZATION_FAILED (Kafka's `getErrorResponse`).

use std::collections::HashMap;

use gregor_protocol::VersionRange;
use gregor_protocol::messages::alter_replica_log_dirs_request::AlterReplicaLogDirsRequest;
use gregor_protocol::messages::alter_replica_log_dirs_response::{
    AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult, AlterReplicaLogDirsResponse,
};

use super::RequestContext;
use crate::storage::MoveStart;
use gregor_protocol::error_code;

/// Versions served: Kafka 3.9's 0-2, v0 being v1 (Kafka 4.x: 1-2).
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

/// Answers an AlterReplicaLogDirs request.
pub async fn handle(
    ctx: &RequestContext,
    _version: i16,
    request: AlterReplicaLogDirsRequest,
) -> AlterReplicaLogDirsResponse {
    if let Some(code) =
        super::authorize::Checker::new(ctx).cluster_error(crate::authorizer::AclOperation::Alter)
    {
        let results = request
            .dirs
            .iter()
            .flat_map(|dir| dir.topics.iter())
            .map(|topic| AlterReplicaLogDirTopicResult {
                topic_name: topic.name.clone(),
                partitions: topic
                    .partitions
                    .iter()
                    .map(|&partition_index| AlterReplicaLogDirPartitionResult {
                        partition_index,
                        error_code: code,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
        return AlterReplicaLogDirsResponse {
            results,
            ..Default::default()
        };
    }
    // (topic, partition) -> target path, in order of first appearance; the last path wins.
    let mut order: Vec<(String, i32)> = Vec::new();
    let mut targets: HashMap<(String, i32), String> = HashMap::new();
    for dir in request.dirs {
        for topic in dir.topics {
            for partition in topic.partitions {
                let key = (topic.name.to_string(), partition);
                if targets.insert(key.clone(), dir.path.to_string()).is_none() {
                    order.push(key);
                }
            }
        }
    }
    let broker = ctx.broker.clone();
    let outcomes = tokio::task::spawn_blocking(move || {
        order
            .into_iter()
            .map(|key| {
                let path = &targets[&key];
                let code = match broker.logs.start_move(&key.0, key.1, path) {
                    Ok(MoveStart::Started(future)) => {
                        broker.spawn_move(future);
                        error_code::NONE
                    }
                    Ok(MoveStart::AlreadyThere | MoveStart::InProgress) => error_code::NONE,
                    Err(error) => {
                        tracing::warn!(topic = %key.0, partition = key.1, %error, "AlterReplicaLogDirs refused");
                        error.code()
                    }
                };
                (key, code)
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    let mut results: Vec<AlterReplicaLogDirTopicResult> = Vec::new();
    for ((topic, partition), code) in outcomes {
        let at = match results.iter().position(|r| *r.topic_name == *topic) {
            Some(at) => at,
            None => {
                results.push(AlterReplicaLogDirTopicResult {
                    topic_name: topic.into(),
                    ..Default::default()
                });
                results.len() - 1
            }
        };
        results[at]
            .partitions
            .push(AlterReplicaLogDirPartitionResult {
                partition_index: partition,
                error_code: code,
                ..Default::default()
            });
    }
    AlterReplicaLogDirsResponse {
        results,
        ..Default::default()
    }
}
