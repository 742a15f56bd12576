//! The observer's fetch loop (Kafka's `KafkaRaftClient.pollFollowerAsObserver`,
//! `buildFetchRequest` and `handleFetchResponse`).
//!
//! Each round sends one Fetch of `__cluster_metadata-0` (by `Uuid.METADATA_TOPIC_ID`,
//! version 13 and up) from the end of what the observer holds, with the epoch of its last
//! batch and the quorum epoch it knows, and:
//!
//! * records: kept, and written and applied once the answer's high watermark covers them;
//! * a diverging epoch: what is held is truncated to the epoch's end in the leader's log;
//! * a snapshot id: the snapshot is downloaded with FetchSnapshot (API 59) and installed
//!   (the local log starts over at its end);
//! * `FENCED_LEADER_EPOCH` / `NOT_LEADER_OR_FOLLOWER` / `UNKNOWN_LEADER_EPOCH`: the answer's
//!   `CurrentLeader` (and `NodeEndpoints`) name the leader to go to; without one (an
//!   election is under way) the next voter is asked after the backoff;
//! * a failed connection or request, or any other error: the next voter after the backoff.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use gregor_protocol::error_code;
use gregor_protocol::messages::fetch_request::{
    FetchPartition, FetchRequest, FetchTopic, ReplicaState,
};
use gregor_protocol::messages::fetch_response::FetchResponse;
use gregor_protocol::messages::fetch_snapshot_request::{
    FetchSnapshotRequest, PartitionSnapshot, SnapshotId as RequestSnapshotId, TopicSnapshot,
};

use super::{FollowerLog, ObserverOptions, Shared, Target};
use crate::cluster::meta_properties::METADATA_TOPIC_ID;
use crate::cluster::replay::SnapshotId;
use crate::replication::client::{BrokerClient, ClientError};

/// Lowest Fetch version sent: topic ids (the metadata topic's is reserved).
const MIN_FETCH_VERSION: i16 = 13;
/// Highest: Kafka 4.0's Raft client sends 17.
const MAX_FETCH_VERSION: i16 = 17;
/// The largest snapshot downloaded (it is held in memory until installed; metadata
/// snapshots are far smaller).
const MAX_SNAPSHOT_BYTES: i64 = 1024 * 1024 * 1024;

/// What to do after a connection's rounds end.
enum Next {
    /// Go to this node (the leader).
    Go(Target),
    /// Back off, then try the next target.
    Retry,
}

/// Runs the loop until the task is aborted.
pub(super) async fn run(options: ObserverOptions, log: FollowerLog, shared: Arc<Shared>) {
    if options.targets.is_empty() {
        tracing::error!(
            "a broker-only node needs controller.quorum.voters or \
             controller.quorum.bootstrap.servers to follow the metadata"
        );
        return;
    }
    let log = Arc::new(Mutex::new(log));
    let mut turn = 0usize;
    let mut go: Option<Target> = None;
    loop {
        let target = go.take().unwrap_or_else(|| {
            turn = turn.wrapping_add(1);
            options.targets[turn % options.targets.len()].clone()
        });
        let client = BrokerClient::connect(
            &options.connector,
            &target.host,
            target.port,
            &format!("gregor-observer-{}", options.node_id),
            usize::try_from(options.fetch_max_bytes).unwrap_or(0) + 1024 * 1024,
            options.request_timeout,
        )
        .await;
        let next = match client {
            Ok(mut client) => rounds(&mut client, &target, &options, &log, &shared).await,
            Err(e) if e.is_security() => {
                tracing::error!(host = %target.host, port = target.port, listener = %options.connector.listener, "the controller does not accept this node: {e}");
                Next::Retry
            }
            Err(e) => {
                tracing::debug!(host = %target.host, port = target.port, "cannot reach a controller: {e}");
                Next::Retry
            }
        };
        match next {
            Next::Go(leader) => go = Some(leader),
            Next::Retry => tokio::time::sleep(options.retry_backoff).await,
        }
    }
}

fn lock(log: &Mutex<FollowerLog>) -> std::sync::MutexGuard<'_, FollowerLog> {
    log.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Fetches from `target` until something sends the observer elsewhere.
async fn rounds(
    client: &mut BrokerClient,
    target: &Target,
    options: &ObserverOptions,
    log: &Arc<Mutex<FollowerLog>>,
    shared: &Arc<Shared>,
) -> Next {
    let version = match client.version_for::<FetchRequest>(MIN_FETCH_VERSION, MAX_FETCH_VERSION) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(host = %target.host, port = target.port, "cannot fetch the metadata: {e}");
            return Next::Retry;
        }
    };
    loop {
        let (fetch_offset, last_epoch) = {
            let log = lock(log);
            (log.fetch_offset(), log.last_fetched_epoch())
        };
        let epoch = shared.epoch.load(Ordering::Acquire).max(last_epoch);
        let request = request(options, version, fetch_offset, last_epoch, epoch);
        let wait = options.fetch_max_wait + options.request_timeout;
        let response = match client.send(&request, version, wait).await {
            Ok(r) => r,
            Err(e @ ClientError::Protocol(_)) => {
                tracing::warn!(host = %target.host, port = target.port, "metadata fetch failed: {e}");
                return Next::Retry;
            }
            Err(e) => {
                tracing::debug!(host = %target.host, port = target.port, "metadata fetch failed: {e}");
                return Next::Retry;
            }
        };
        match handle(client, response, target, options, log, shared, epoch).await {
            Round::Again => {}
            Round::Done(next) => return next,
        }
    }
}

/// The Fetch of one round, at `version` (13 or above: the topic by id; from 15 the
/// replica id in `ReplicaState`, KIP-903).
fn request(
    options: &ObserverOptions,
    version: i16,
    offset: i64,
    last_epoch: i32,
    epoch: i32,
) -> FetchRequest {
    let (replica_id, replica_state) = if version >= 15 {
        (
            -1,
            ReplicaState {
                replica_id: options.node_id,
                replica_epoch: -1,
                ..Default::default()
            },
        )
    } else {
        (options.node_id, ReplicaState::default())
    };
    FetchRequest {
        cluster_id: Some(options.cluster_id.as_str().into()),
        replica_id,
        replica_state,
        max_wait_ms: i32::try_from(options.fetch_max_wait.as_millis()).unwrap_or(i32::MAX),
        min_bytes: 0,
        max_bytes: options.fetch_max_bytes,
        isolation_level: 0,
        session_id: 0,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic_id: METADATA_TOPIC_ID,
            partitions: vec![FetchPartition {
                partition: 0,
                current_leader_epoch: epoch,
                fetch_offset: offset,
                last_fetched_epoch: last_epoch,
                log_start_offset: -1,
                partition_max_bytes: options.fetch_max_bytes,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// What one answer leads to.
enum Round {
    /// Fetch again from the same node.
    Again,
    /// Stop fetching from it.
    Done(Next),
}

/// Downloads snapshot `id` with FetchSnapshot (Kafka's `buildFetchSnapshotRequest` and
/// `handleFetchSnapshotResponse`: chunks from position 0 until the snapshot's size) and
/// installs it.
async fn download(
    client: &mut BrokerClient,
    options: &ObserverOptions,
    log: &Arc<Mutex<FollowerLog>>,
    shared: &Arc<Shared>,
    id: SnapshotId,
    epoch: i32,
) -> Result<(), String> {
    let version = client
        .version_for::<FetchSnapshotRequest>(0, 1)
        .map_err(|e| e.to_string())?;
    let mut bytes: Vec<u8> = Vec::new();
    loop {
        let request = FetchSnapshotRequest {
            cluster_id: Some(options.cluster_id.as_str().into()),
            replica_id: options.node_id,
            max_bytes: options.fetch_max_bytes,
            topics: vec![TopicSnapshot {
                name: crate::handlers::metadata_fetch::METADATA_TOPIC.into(),
                partitions: vec![PartitionSnapshot {
                    partition: 0,
                    current_leader_epoch: epoch,
                    snapshot_id: RequestSnapshotId {
                        end_offset: id.end_offset,
                        epoch: id.epoch,
                        ..Default::default()
                    },
                    position: bytes.len() as i64,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let response = client
            .send(&request, version, options.request_timeout)
            .await
            .map_err(|e| e.to_string())?;
        if response.error_code != error_code::NONE {
            return Err(gregor_protocol::ErrorCode::from(response.error_code).to_string());
        }
        let part = response
            .topics
            .into_iter()
            .next()
            .and_then(|t| t.partitions.into_iter().next())
            .ok_or("an answer without the partition")?;
        if part.error_code != error_code::NONE {
            return Err(gregor_protocol::ErrorCode::from(part.error_code).to_string());
        }
        if part.size > MAX_SNAPSHOT_BYTES {
            return Err(format!(
                "a snapshot of {} bytes is over the {MAX_SNAPSHOT_BYTES} this node downloads",
                part.size
            ));
        }
        if part.position != bytes.len() as i64 || part.size < 0 {
            return Err(format!(
                "a chunk at position {} of {} bytes when {} were expected next",
                part.position,
                part.size,
                bytes.len()
            ));
        }
        if part.unaligned_records.is_empty() && (bytes.len() as i64) < part.size {
            return Err("an empty chunk before the end of the snapshot".to_string());
        }
        bytes.extend_from_slice(&part.unaligned_records);
        if bytes.len() as i64 > part.size {
            return Err("more bytes than the snapshot's size".to_string());
        }
        if bytes.len() as i64 == part.size {
            break;
        }
    }
    let work = Arc::clone(log);
    let installed = tokio::task::spawn_blocking(move || {
        let mut log = lock(&work);
        log.install_snapshot(id, &bytes)?;
        Ok::<_, super::FollowerLogError>((Arc::new(log.image().clone()), log.applied_offset()))
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    shared.applied.store(installed.1, Ordering::Release);
    shared.image.send_replace(installed.0);
    Ok(())
}

/// Applies one answer (see the module docs).
async fn handle(
    client: &mut BrokerClient,
    response: FetchResponse,
    target: &Target,
    options: &ObserverOptions,
    log: &Arc<Mutex<FollowerLog>>,
    shared: &Arc<Shared>,
    sent_epoch: i32,
) -> Round {
    if response.error_code != error_code::NONE {
        let error = gregor_protocol::ErrorCode::from(response.error_code);
        tracing::warn!(host = %target.host, port = target.port, %error, "a controller refused the metadata fetch");
        return Round::Done(Next::Retry);
    }
    let Some(data) = response
        .responses
        .into_iter()
        .next()
        .and_then(|t| t.partitions.into_iter().next())
    else {
        return Round::Done(Next::Retry);
    };
    // What the answer says of the quorum (Kafka's `maybeTransition` on a fetch response).
    let (leader, leader_epoch) = (
        data.current_leader.leader_id,
        data.current_leader.leader_epoch,
    );
    let known = shared.epoch.load(Ordering::Acquire);
    if leader_epoch > known || (leader_epoch == known && leader >= 0) {
        shared.epoch.store(leader_epoch, Ordering::Release);
        shared.leader.store(leader, Ordering::Release);
    }
    match data.error_code {
        error_code::NONE => {}
        error_code::FENCED_LEADER_EPOCH
        | error_code::NOT_LEADER_OR_FOLLOWER
        | error_code::UNKNOWN_LEADER_EPOCH => {
            if leader >= 0 && Some(leader) != target.id {
                let from_voters = options.targets.iter().find(|t| t.id == Some(leader));
                let from_answer = response.node_endpoints.iter().find(|n| n.node_id == leader);
                let go = from_voters.cloned().or_else(|| {
                    from_answer.and_then(|n| {
                        Some(Target {
                            id: Some(leader),
                            host: n.host.to_string(),
                            port: u16::try_from(n.port).ok()?,
                        })
                    })
                });
                if let Some(go) = go {
                    return Round::Done(Next::Go(go));
                }
            }
            // This node leads in a newer epoch than the one sent: ask again at once.
            if leader >= 0 && Some(leader) == target.id && leader_epoch > sent_epoch {
                return Round::Again;
            }
            return Round::Done(Next::Retry);
        }
        code => {
            let error = gregor_protocol::ErrorCode::from(code);
            tracing::warn!(host = %target.host, port = target.port, %error, "the metadata fetch failed");
            return Round::Done(Next::Retry);
        }
    }
    if data.snapshot_id.end_offset >= 0 || data.snapshot_id.epoch >= 0 {
        let id = SnapshotId {
            end_offset: data.snapshot_id.end_offset,
            epoch: data.snapshot_id.epoch,
        };
        tracing::info!(?id, "the leader sends this node to a metadata snapshot");
        return match download(
            client,
            options,
            log,
            shared,
            id,
            sent_epoch.max(leader_epoch),
        )
        .await
        {
            Ok(()) => Round::Again,
            Err(e) => {
                tracing::warn!(?id, "cannot download the metadata snapshot: {e}");
                Round::Done(Next::Retry)
            }
        };
    }
    let diverging = (data.diverging_epoch.epoch >= 0 || data.diverging_epoch.end_offset >= 0)
        .then_some(data.diverging_epoch.end_offset);
    let records = data.records.unwrap_or_default();
    let high_watermark = data.high_watermark;
    let work = Arc::clone(log);
    let done = tokio::task::spawn_blocking(move || {
        let mut log = lock(&work);
        let mut changed = false;
        if let Some(end) = diverging {
            let end = end.max(0);
            tracing::info!(truncate_to = end, "the leader's metadata log diverges");
            changed |= log.truncate_to(end)?;
        }
        let before = log.applied_offset();
        let kept = if diverging.is_none() && !records.is_empty() {
            Some(log.add_fetched(records)?)
        } else {
            None
        };
        if high_watermark >= 0 {
            changed |= log.commit_to(high_watermark)?;
        }
        // Records came but none could be kept or committed: no progress (see
        // `MAX_PENDING_BYTES`), so the next round waits a little.
        let stalled = kept == Some(0) && log.applied_offset() == before;
        let image = changed.then(|| Arc::new(log.image().clone()));
        Ok::<_, super::FollowerLogError>((image, log.applied_offset(), stalled))
    })
    .await;
    match done {
        Ok(Ok((image, applied, stalled))) => {
            if stalled {
                tokio::time::sleep(options.retry_backoff).await;
            }
            shared.applied.store(applied, Ordering::Release);
            shared
                .high_watermark
                .store(high_watermark, Ordering::Release);
            if let Some(image) = image {
                shared.image.send_replace(image);
            }
            Round::Again
        }
        Ok(Err(e)) => {
            tracing::error!("cannot keep the fetched metadata: {e}");
            Round::Done(Next::Retry)
        }
        Err(e) => {
            tracing::error!("the metadata append task failed: {e}");
            Round::Done(Next::Retry)
        }
    }
}
