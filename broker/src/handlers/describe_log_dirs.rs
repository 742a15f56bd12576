//! DescribeLogDirs: this broker's log directories and the replicas in them, as Kafka's
//! `ReplicaManager.describeLogDirs` answers.
//!
//! Every configured log directory is listed by its absolute path. A usable one lists the
//! asked-for replicas it holds (all with a null topic list; topics without a replica there
//! are left out): size (bytes of the segments), offset lag (high watermark minus log end
//! offset, at least 0: always 0 for this single-node leader), and, for a replica being moved
//! here by AlterReplicaLogDirs, its future replica (`is_future_key`, lag = how far it trails
//! the current replica). v4+ carries the file system's total and usable bytes. An offline
//! directory is answered `KAFKA_STORAGE_ERROR` with no topics (sizes -1). Cordoning (v5) is
//! not supported: never cordoned. Without DESCRIBE on the cluster the answer is
//! CLUSTER_AUTHORIZATION_FAILED (top level, v3+) and no directories, as Kafka's
//! `handleDescribeLogDirsRequest`.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use gregor_protocol::VersionRange;
use gregor_protocol::error_code;
use gregor_protocol::messages::describe_log_dirs_request::DescribeLogDirsRequest;
use gregor_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResponse, DescribeLogDirsResult, DescribeLogDirsTopic,
};

use super::RequestContext;
use crate::broker::Broker;

/// Versions served: Kafka 3.9's floor, v0 (the same as v1), to Kafka 4.x's 5 (Kafka 4.x: 1-5).
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

/// Answers a DescribeLogDirs request (blocking file system calls, on the blocking pool).
pub async fn handle(
    ctx: &RequestContext,
    _version: i16,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    if let Some(code) =
        super::authorize::Checker::new(ctx).cluster_error(crate::authorizer::AclOperation::Describe)
    {
        return DescribeLogDirsResponse {
            error_code: code,
            results: Vec::new(),
            ..Default::default()
        };
    }
    let wanted: Option<HashSet<(String, i32)>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .flat_map(|t| {
                let name = t.topic.to_string();
                t.partitions.into_iter().map(move |p| (name.clone(), p))
            })
            .collect()
    });
    let broker = ctx.broker.clone();
    let results = tokio::task::spawn_blocking(move || describe(&broker, wanted.as_ref()))
        .await
        .unwrap_or_default();
    DescribeLogDirsResponse {
        error_code: error_code::NONE,
        results,
        ..Default::default()
    }
}

fn describe(
    broker: &Broker,
    wanted: Option<&HashSet<(String, i32)>>,
) -> Vec<DescribeLogDirsResult> {
    let asked = |topic: &str, partition: i32| {
        wanted.is_none_or(|w| w.contains(&(topic.to_owned(), partition)))
    };
    let futures = broker.logs.future_replicas();
    let mut results = Vec::new();
    for log_dir in &broker.config.log_dirs {
        let path = std::path::absolute(log_dir).unwrap_or_else(|_| log_dir.clone());
        let usable = broker.logs.log_dirs().iter().any(|d| d == log_dir);
        if !usable {
            results.push(DescribeLogDirsResult {
                error_code: error_code::KAFKA_STORAGE_ERROR,
                log_dir: path.to_string_lossy().into_owned().into(),
                total_bytes: -1,
                usable_bytes: -1,
                ..Default::default()
            });
            continue;
        }
        let mut topics: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
        for (topic, partition) in broker.logs.partitions() {
            if !asked(&topic, partition) {
                continue;
            }
            let Some(log) = broker.logs.get(&topic, partition) else {
                continue;
            };
            if log.log_dir() != log_dir.as_path() {
                continue;
            }
            let size = log.size_bytes();
            topics
                .entry(topic)
                .or_default()
                .push(DescribeLogDirsPartition {
                    partition_index: partition,
                    partition_size: size as i64,
                    offset_lag: (log.high_watermark() - log.log_end_offset()).max(0),
                    is_future_key: false,
                    ..Default::default()
                });
        }
        for future in futures.iter().filter(|f| f.target_log_dir == *log_dir) {
            if !asked(&future.topic, future.partition) {
                continue;
            }
            let current_end = broker
                .logs
                .get(&future.topic, future.partition)
                .map_or(future.copied_end(), |log| log.log_end_offset());
            topics
                .entry(future.topic.clone())
                .or_default()
                .push(DescribeLogDirsPartition {
                    partition_index: future.partition,
                    partition_size: future.size() as i64,
                    offset_lag: (current_end - future.copied_end()).max(0),
                    is_future_key: true,
                    ..Default::default()
                });
        }
        let (total_bytes, usable_bytes) = volume_bytes(log_dir);
        results.push(DescribeLogDirsResult {
            error_code: error_code::NONE,
            log_dir: path.to_string_lossy().into_owned().into(),
            topics: topics
                .into_iter()
                .map(|(name, partitions)| DescribeLogDirsTopic {
                    name: name.into(),
                    partitions,
                    ..Default::default()
                })
                .collect(),
            total_bytes,
            usable_bytes,
            is_cordoned: false,
            ..Default::default()
        });
    }
    results
}

/// The total and usable bytes of the file system holding `dir` (Java's
/// `FileStore.getTotalSpace` and `getUsableSpace`: blocks times fragment size, usable being
/// the blocks free to unprivileged users); -1 each if unknown.
fn volume_bytes(dir: &Path) -> (i64, i64) {
    match rustix::fs::statvfs(dir) {
        Ok(stat) => {
            let unit = stat.f_frsize;
            let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            (
                clamp(stat.f_blocks.saturating_mul(unit)),
                clamp(stat.f_bavail.saturating_mul(unit)),
            )
        }
        Err(_) => (-1, -1),
    }
}
