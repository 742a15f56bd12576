//! Fetch: whole record batches from the partition logs, by topic name (before v13) or id.
//!
//! Limits follow Kafka (`KafkaApis.handleFetchRequest`, `ReplicaManager.readFromLog`):
//! `partition_max_bytes` per partition, and in all the request's `max_bytes` capped by the
//! broker's `fetch.max.bytes` (55 MiB by default), except that the first batch of the first
//! partition with data is returned whole even when it is larger (KIP-74), so a consumer
//! always progresses; `min_bytes` is capped by the same limit. Fetch v0-2 have no
//! `max_bytes` (only the broker's cap applies) and a hard limit without that exception
//! (Kafka's `FetchParams.hardMaxBytesLimit`). An empty partition gets a zero-length
//! `records`, never null. When less than `min_bytes` is
//! available the request waits up to `max_wait_ms` for any of its partitions to grow.
//!
//! A partition named more than once is answered once, as Kafka's `FetchRequest.fetchData`
//! collects the partitions into a map keyed by topic (name before v13, id from v13) and
//! partition: in the place of its first mention, with the offset and limit of its last
//! ([`fetch_sessions::request_partitions`]). The response groups consecutive partitions of
//! one topic, as Kafka's `FetchResponse.toMessage` does.
//!
//! READ_COMMITTED (`isolation_level` 1, KIP-98): each partition is read up to its last
//! stable offset, and `aborted_transactions` lists the aborted transactions overlapping the
//! records returned (Kafka's `collectAbortedTransactions`), from which the consumer drops
//! their records. `last_stable_offset` is the partition's LSO at either level, as Kafka
//! answers. A marker moves the high watermark with the LSO, so an incremental session
//! sends the partition again whenever its LSO moved.
//!
//! Before v10 the response goes through [`down_convert`]: zstd topics refused, magic 0/1
//! message sets for v0-3 (which have no `isolation_level`: READ_UNCOMMITTED).
//!
//! Fetch sessions (KIP-227) are [`crate::fetch_sessions`]: its context gives the partitions
//! to read (the request's, or a session's) and filters the response (an incremental one
//! carries only the partitions that changed).
//!
//! Replication ([`replica`]): a follower's fetch (replica id >= 0, from v15 in its
//! `ReplicaState`) needs CLUSTER_ACTION, reads a partition this broker leads up to its log
//! end offset, moves the follower's state (and maybe the ISR and the high watermark) and
//! may be answered a `diverging_epoch`; a partition led elsewhere is NOT_LEADER_OR_FOLLOWER
//! with `current_leader` and, from v16, the leader's endpoint in `node_endpoints`
//! (KIP-951). Consumers read up to the high watermark.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gregor_protocol::messages::fetch_request::FetchRequest;
use gregor_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchResponse, FetchableTopicResponse, LeaderIdAndEpoch,
    NodeEndpoint, PartitionData,
};
use gregor_protocol::{Uuid, VersionRange};
use tokio::time::Instant;

use super::RequestContext;
use crate::fetch_sessions::{self, RequestedPartition};
use crate::storage::{AbortedTxn, PartitionLog, ReadError};
use gregor_protocol::error_code;

mod down_convert;
mod replica;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 18 };

/// Longest wait honoured, whatever the client asks (Kafka clients ask for 500 ms).
const MAX_WAIT_CAP: Duration = Duration::from_secs(30);

/// `isolation_level` of READ_COMMITTED.
const READ_COMMITTED: i8 = 1;

/// One requested partition, resolved against the logs.
struct Wanted {
    topic: usize,
    partition: i32,
    fetch_offset: i64,
    max_bytes: usize,
    log: Result<Arc<PartitionLog>, i16>,
    /// How replication has the partition read.
    route: replica::Route,
}

/// Answers a Fetch request, waiting for data when asked to.
pub async fn handle(ctx: &RequestContext, version: i16, request: FetchRequest) -> FetchResponse {
    // A controller listener serves only the metadata log (`metadata_fetch.rs`).
    if ctx.on_controller_listener() {
        return super::metadata_fetch::handle(ctx, version, request).await;
    }
    let image = ctx.broker.image();
    let topic_name = |id: &Uuid| image.topic_by_id(id).map(|t| t.name.clone());
    let (fetch, forget) = fetch_sessions::request_partitions(version, &request, topic_name);
    let session = ctx.broker.fetch_sessions.new_context(
        version,
        fetch_sessions::FetchMetadata::of(&request),
        fetch_sessions::is_from_follower(version, &request),
        fetch,
        forget,
        topic_name,
    );
    if session.session_error().is_some() {
        return session.into_response(Vec::new());
    }
    let from_follower = fetch_sessions::is_from_follower(version, &request);
    // v0-2 have a hard byte limit: no oversized first batch (FetchParams.minOneMessage).
    let min_one_message = version >= 3;
    let follower = from_follower.then(|| replica::replica_of(version, &request));
    let (topics, wanted) = resolve(ctx, version, follower, session.partitions());
    let read_committed = request.isolation_level == READ_COMMITTED;
    let max_bytes = request.max_bytes.min(ctx.broker.config.fetch_max_bytes);
    let min_bytes = request.min_bytes.min(max_bytes);
    let max_bytes = usize::try_from(max_bytes).unwrap_or(0);
    let min_bytes = usize::try_from(min_bytes).unwrap_or(0);
    let wait =
        Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0)).min(MAX_WAIT_CAP);
    let deadline = Instant::now() + wait;
    let wanted = Arc::new(wanted);

    loop {
        // Subscribe before reading, so growth during the read still wakes us.
        let mut watches: Vec<_> = wanted
            .iter()
            .filter_map(|w| w.log.as_ref().ok().map(|log| log.subscribe()))
            .collect();
        let reads = {
            let wanted = wanted.clone();
            tokio::task::spawn_blocking(move || {
                read_all(&wanted, max_bytes, min_one_message, read_committed)
            })
            .await
        };
        let reads = match reads {
            Ok(reads) => reads,
            Err(err) => {
                tracing::error!("fetch read task failed: {err}");
                Vec::new()
            }
        };
        let total: usize = reads.iter().map(|r| r.records.len()).sum();
        // A diverging epoch is answered at once, as an error is.
        let has_error = reads
            .iter()
            .any(|r| r.error != error_code::NONE || r.diverging.is_some());
        if total >= min_bytes
            || has_error
            || wait.is_zero()
            || Instant::now() >= deadline
            || watches.is_empty()
        {
            let leaders: Vec<i32> = reads
                .iter()
                .filter_map(|r| r.current_leader.map(|(id, _)| id))
                .collect();
            let mut response =
                session.into_response(responses(version, &topics, &wanted, reads, read_committed));
            if version >= 16 {
                response.node_endpoints = node_endpoints(ctx, leaders);
            }
            if !down_convert::needed(version) {
                return response;
            }
            let logs = &ctx.broker.logs;
            return down_convert::convert_response(
                logs,
                version,
                from_follower,
                &topics,
                &wanted,
                response,
            )
            .await;
        }
        let changed =
            futures_util::future::select_all(watches.iter_mut().map(|w| Box::pin(w.changed())));
        tokio::select! {
            _ = changed => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// (name, id) of each topic to read, consecutive partitions of one topic together, and
/// every partition with its log.
fn resolve(
    ctx: &RequestContext,
    version: i16,
    follower: Option<(i32, i64)>,
    partitions: &[RequestedPartition],
) -> (Vec<(String, Uuid)>, Vec<Wanted>) {
    let from_follower = follower.is_some();
    let image = ctx.broker.image();
    // KafkaApis.handleFetchRequest: a follower needs CLUSTER_ACTION on the cluster, a
    // consumer READ on each topic (checked before existence); TOPIC_AUTHORIZATION_FAILED.
    let checker = super::authorize::Checker::new(ctx);
    let follower_allowed =
        !from_follower || checker.cluster(crate::authorizer::AclOperation::ClusterAction);
    let mut topics: Vec<(String, Uuid)> = Vec::new();
    let mut wanted = Vec::new();
    for partition in partitions {
        // An id that does not resolve (v13+) is UNKNOWN_TOPIC_ID; a name without a topic
        // UNKNOWN_TOPIC_OR_PARTITION (KafkaApis.handleFetchRequest).
        let found = match &partition.topic {
            None => Err(error_code::UNKNOWN_TOPIC_ID),
            Some(_) if !follower_allowed => Err(error_code::TOPIC_AUTHORIZATION_FAILED),
            Some(name)
                if !from_follower
                    && !checker.topic(crate::authorizer::AclOperation::Read, name) =>
            {
                Err(error_code::TOPIC_AUTHORIZATION_FAILED)
            }
            Some(name) if image.topic(name).is_some() => Ok(name.clone()),
            Some(_) => Err(error_code::UNKNOWN_TOPIC_OR_PARTITION),
        };
        let name = partition.topic.clone().unwrap_or_default();
        if topics.last() != Some(&(name.clone(), partition.topic_id)) {
            topics.push((name, partition.topic_id));
        }
        let log = found.and_then(|name| {
            ctx.broker
                .logs
                .get(&name, partition.partition)
                .ok_or_else(|| {
                    // In the metadata but without a log: offline (Kafka's ReplicaManager).
                    let known = image
                        .topic(&name)
                        .is_some_and(|t| t.partitions.contains_key(&partition.partition));
                    if known {
                        error_code::KAFKA_STORAGE_ERROR
                    } else {
                        error_code::UNKNOWN_TOPIC_OR_PARTITION
                    }
                })
        });
        let max_bytes = usize::try_from(partition.max_bytes).unwrap_or(0);
        let route = match (&log, &partition.topic) {
            (Ok(_), Some(name)) => replica::route(
                &ctx.broker.replicas,
                &image,
                ctx.broker.node_id,
                version,
                follower,
                name,
                partition,
                max_bytes,
            ),
            _ => replica::Route::Local,
        };
        wanted.push(Wanted {
            topic: topics.len() - 1,
            partition: partition.partition,
            fetch_offset: partition.fetch_offset,
            max_bytes,
            log,
            route,
        });
    }
    (topics, wanted)
}

/// What one partition read produced.
struct PartitionRead {
    error: i16,
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
    records: Bytes,
    /// READ_COMMITTED: the aborted transactions overlapping `records`.
    aborted: Option<Vec<AbortedTxn>>,
    /// A follower's diverging epoch (KIP-320): (epoch, end offset).
    diverging: Option<(i32, i64)>,
    /// The current leader and its epoch, for NOT_LEADER_OR_FOLLOWER (KIP-951).
    current_leader: Option<(i32, i32)>,
}

/// Reads every partition in request order within the byte budgets (the first batch of the
/// first partition with data whole when `min_one_message`), up to the LSO with
/// `read_committed` (blocking file I/O).
fn read_all(
    wanted: &[Wanted],
    max_bytes: usize,
    min_one_message: bool,
    read_committed: bool,
) -> Vec<PartitionRead> {
    let mut budget = max_bytes;
    let mut have_data = false;
    wanted
        .iter()
        .map(|w| {
            let log = match &w.log {
                Ok(log) => log,
                Err(code) => return failed(*code, -1, -1, -1),
            };
            let limit = w.max_bytes.min(budget);
            match &w.route {
                replica::Route::Local => {}
                replica::Route::Refused(code, leader) => {
                    let mut read = failed(*code, -1, -1, -1);
                    read.current_leader = *leader;
                    return read;
                }
                replica::Route::Follower(leader, fetch) => {
                    let mut fetch = *fetch;
                    fetch.max_bytes = limit;
                    fetch.min_one_message = min_one_message && !have_data;
                    let answer = crate::replication::follower_fetch::read_for_follower(
                        leader,
                        &fetch,
                        crate::replication::leader::now_ms(),
                    );
                    budget = budget.saturating_sub(answer.records.len());
                    have_data |= !answer.records.is_empty();
                    return PartitionRead {
                        error: answer.error,
                        high_watermark: answer.high_watermark,
                        last_stable_offset: answer.last_stable_offset,
                        log_start_offset: answer.log_start_offset,
                        records: answer.records,
                        aborted: None,
                        diverging: answer.diverging_epoch,
                        current_leader: None,
                    };
                }
            }
            match log.read_isolated(
                w.fetch_offset,
                limit,
                min_one_message && !have_data,
                read_committed,
            ) {
                Ok(read) => {
                    budget = budget.saturating_sub(read.records.len());
                    have_data |= !read.records.is_empty();
                    PartitionRead {
                        error: error_code::NONE,
                        high_watermark: read.high_watermark,
                        last_stable_offset: read.last_stable_offset,
                        log_start_offset: read.log_start_offset,
                        records: read.records,
                        aborted: read.aborted_transactions,
                        diverging: None,
                        current_leader: None,
                    }
                }
                // Kafka reports unknown offsets (-1) with OFFSET_OUT_OF_RANGE.
                Err(ReadError::OffsetOutOfRange { .. }) => {
                    failed(error_code::OFFSET_OUT_OF_RANGE, -1, -1, -1)
                }
                Err(err) => {
                    tracing::error!("reading {:?} at {}: {err}", log.name(), w.fetch_offset);
                    failed(error_code::UNKNOWN_SERVER_ERROR, -1, -1, -1)
                }
            }
        })
        .collect()
}

fn failed(
    error: i16,
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
) -> PartitionRead {
    PartitionRead {
        error,
        high_watermark,
        last_stable_offset,
        log_start_offset,
        records: Bytes::new(),
        aborted: None,
        diverging: None,
        current_leader: None,
    }
}

/// The read results by topic, as the version names topics (by id from v13).
fn responses(
    version: i16,
    topics: &[(String, Uuid)],
    wanted: &[Wanted],
    reads: Vec<PartitionRead>,
    read_committed: bool,
) -> Vec<FetchableTopicResponse> {
    let mut responses: Vec<FetchableTopicResponse> = topics
        .iter()
        .map(|(name, id)| FetchableTopicResponse {
            topic: if version < 13 {
                name.as_str().into()
            } else {
                Default::default()
            },
            topic_id: if version >= 13 { *id } else { Uuid::nil() },
            partitions: Vec::new(),
            ..Default::default()
        })
        .collect();
    for (w, read) in wanted.iter().zip(reads) {
        responses[w.topic].partitions.push(PartitionData {
            partition_index: w.partition,
            error_code: read.error,
            high_watermark: read.high_watermark,
            last_stable_offset: read.last_stable_offset,
            log_start_offset: read.log_start_offset,
            // READ_COMMITTED readers get the list of aborted transactions (empty after an
            // error).
            aborted_transactions: read_committed.then(|| {
                read.aborted
                    .unwrap_or_default()
                    .into_iter()
                    .map(|txn| AbortedTransaction {
                        producer_id: txn.producer_id,
                        first_offset: txn.first_offset,
                        ..Default::default()
                    })
                    .collect()
            }),
            preferred_read_replica: -1,
            // Tagged fields of v12+: absent (default) before.
            diverging_epoch: match read.diverging {
                Some((epoch, end_offset)) if version >= 12 => EpochEndOffset {
                    epoch,
                    end_offset,
                    ..Default::default()
                },
                _ => EpochEndOffset::default(),
            },
            current_leader: match read.current_leader {
                Some((leader_id, leader_epoch)) if version >= 12 => LeaderIdAndEpoch {
                    leader_id,
                    leader_epoch,
                    ..Default::default()
                },
                _ => LeaderIdAndEpoch::default(),
            },
            records: Some(read.records),
            ..Default::default()
        });
    }
    responses
}

/// KIP-951: the endpoints, on the listener the request came by, of the leaders named in
/// NOT_LEADER_OR_FOLLOWER / FENCED_LEADER_EPOCH answers (each once).
fn node_endpoints(ctx: &RequestContext, mut leaders: Vec<i32>) -> Vec<NodeEndpoint> {
    leaders.sort_unstable();
    leaders.dedup();
    let image = ctx.broker.image();
    leaders
        .into_iter()
        .filter_map(|id| {
            let broker = image.broker(id)?;
            let endpoint = broker
                .endpoints
                .iter()
                .find(|e| e.listener.eq_ignore_ascii_case(&ctx.listener))?;
            Some(NodeEndpoint {
                node_id: id,
                host: endpoint.host.as_str().into(),
                port: i32::from(endpoint.port),
                rack: broker.rack.as_deref().map(Into::into),
                ..Default::default()
            })
        })
        .collect()
}
