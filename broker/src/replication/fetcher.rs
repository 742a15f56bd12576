//! The follower side: one fetcher task per leader broker (Kafka's `ReplicaFetcherThread` on
//! `AbstractFetcherThread`), fetching every partition this broker follows from that leader.
//!
//! Each round sends one Fetch (v15+, sessionless) with the replica state (this broker's id
//! and broker epoch) and, per partition, the log end offset as fetch offset, the leader
//! epoch the metadata gave, the epoch of the last batch held (KIP-320/KIP-595: the leader
//! answers a diverging epoch instead of records when the logs part ways), the log start
//! offset and `replica.fetch.max.bytes`; `replica.fetch.wait.max.ms`,
//! `replica.fetch.min.bytes` and `replica.fetch.response.max.bytes` shape the request. Then:
//!
//! * records are appended with the leader's offsets and epochs
//!   ([`PartitionLog::append_as_follower`]); the high watermark becomes the leader's,
//!   bounded by the log end offset; the log start offset follows the leader's;
//! * a diverging epoch truncates the log (Kafka's `getOffsetTruncationState`): to the end
//!   of that epoch on whichever side ends it first, or, when this log does not know the
//!   epoch, to the end of its largest epoch below it (the next fetch then asks again);
//! * OFFSET_OUT_OF_RANGE asks the leader for its end (ListOffsets latest, as a replica):
//!   a leader ending below this log truncates it there; else a leader starting above this
//!   log's end makes it start over at the leader's log start offset
//!   ([`PartitionLog::truncate_fully_and_start_at`]);
//! * other errors back the partition off for `replica.fetch.backoff.ms`; a connection or
//!   request failure backs off the whole fetcher, which then connects again.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gregor_protocol::messages::fetch_request::{
    FetchPartition, FetchRequest, FetchTopic, ReplicaState as FetchReplicaState,
};
use gregor_protocol::messages::fetch_response::PartitionData;
use gregor_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use gregor_protocol::{Uuid, error_code};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::client::{BrokerClient, ClientError};
use super::config::ReplicationConfig;
use crate::security::node_client::NodeConnector;
use crate::storage::{PartitionLog, StorageError, unpoison};

/// Highest Fetch version a follower sends (Kafka 4.0's replica fetcher uses 17).
const FETCH_VERSION: i16 = 17;
/// Lowest: `ReplicaState` (KIP-903) and topic ids.
const MIN_FETCH_VERSION: i16 = 15;
/// ListOffsets versions for the out-of-range reset.
const LIST_OFFSETS_VERSION: i16 = 9;

/// Where a leader is reached: its id and its endpoint on `inter.broker.listener.name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderEndpoint {
    /// The leader's broker id.
    pub id: i32,
    /// Its host.
    pub host: String,
    /// Its port.
    pub port: u16,
}

/// One partition a fetcher fetches.
#[derive(Clone, Debug)]
struct PartitionFetch {
    topic_id: Uuid,
    log: Arc<PartitionLog>,
    leader_epoch: i32,
    /// Not fetched before this (an error's backoff).
    delayed_until: Option<Instant>,
}

/// What a fetcher task and its manager share.
#[derive(Debug, Default)]
struct FetcherShared {
    partitions: Mutex<BTreeMap<(String, i32), PartitionFetch>>,
    wake: Notify,
    stopped: AtomicBool,
    /// Completed fetch rounds (for tests and logs).
    rounds: AtomicI64,
}

#[derive(Debug)]
struct Fetcher {
    endpoint: LeaderEndpoint,
    shared: Arc<FetcherShared>,
    task: tokio::task::JoinHandle<()>,
}

/// The fetcher tasks of this broker, one per leader (Kafka's `ReplicaFetcherManager` with
/// `num.replica.fetchers=1`).
#[derive(Debug)]
pub struct FetcherManager {
    local_id: i32,
    broker_epoch: Arc<AtomicI64>,
    config: ReplicationConfig,
    connector: NodeConnector,
    fetchers: Mutex<HashMap<i32, Fetcher>>,
}

impl FetcherManager {
    /// No fetcher yet; `broker_epoch` is this broker's registration epoch (-1 unknown).
    pub fn new(
        local_id: i32,
        broker_epoch: Arc<AtomicI64>,
        config: ReplicationConfig,
    ) -> FetcherManager {
        FetcherManager {
            local_id,
            broker_epoch,
            config,
            connector: NodeConnector::plaintext(),
            fetchers: Mutex::new(HashMap::new()),
        }
    }

    /// Connects to leaders through `connector` from now on.
    pub fn set_connector(&mut self, connector: NodeConnector) {
        self.connector = connector;
    }

    /// Fetches `log`'s partition from `leader` in `leader_epoch` from now on (moving it off
    /// any other fetcher; a leader whose endpoint changed gets a new fetcher). Must be
    /// called inside a tokio runtime.
    pub fn add_partition(
        &self,
        leader: &LeaderEndpoint,
        topic_id: Uuid,
        log: Arc<PartitionLog>,
        leader_epoch: i32,
    ) {
        let key = (log.topic().to_owned(), log.partition());
        self.remove_partition(&key.0, key.1);
        let mut fetchers = unpoison(self.fetchers.lock());
        if fetchers
            .get(&leader.id)
            .is_some_and(|f| f.endpoint != *leader)
            && let Some(old) = fetchers.remove(&leader.id)
        {
            stop(old);
        }
        let fetcher = fetchers.entry(leader.id).or_insert_with(|| {
            let shared = Arc::new(FetcherShared::default());
            let task = tokio::spawn(run(
                Arc::clone(&shared),
                leader.clone(),
                self.local_id,
                Arc::clone(&self.broker_epoch),
                self.config,
                self.connector.clone(),
            ));
            Fetcher {
                endpoint: leader.clone(),
                shared,
                task,
            }
        });
        unpoison(fetcher.shared.partitions.lock()).insert(
            key,
            PartitionFetch {
                topic_id,
                log,
                leader_epoch,
                delayed_until: None,
            },
        );
        fetcher.shared.wake.notify_one();
    }

    /// Stops fetching the partition (it became leader, or went away); a fetcher left
    /// without partitions ends.
    pub fn remove_partition(&self, topic: &str, partition: i32) {
        let key = (topic.to_owned(), partition);
        let mut fetchers = unpoison(self.fetchers.lock());
        let mut idle = Vec::new();
        for (id, fetcher) in fetchers.iter() {
            let mut partitions = unpoison(fetcher.shared.partitions.lock());
            if partitions.remove(&key).is_some() && partitions.is_empty() {
                idle.push(*id);
            }
        }
        for id in idle {
            if let Some(fetcher) = fetchers.remove(&id) {
                stop(fetcher);
            }
        }
    }

    /// The leader a partition is fetched from, if it is.
    pub fn leader_of(&self, topic: &str, partition: i32) -> Option<i32> {
        let key = (topic.to_owned(), partition);
        unpoison(self.fetchers.lock())
            .iter()
            .find(|(_, f)| unpoison(f.shared.partitions.lock()).contains_key(&key))
            .map(|(id, _)| *id)
    }

    /// Fetch rounds completed by the fetcher of `leader` (0 without one).
    pub fn rounds(&self, leader: i32) -> i64 {
        unpoison(self.fetchers.lock())
            .get(&leader)
            .map_or(0, |f| f.shared.rounds.load(Ordering::Acquire))
    }

    /// Stops every fetcher (broker shutdown).
    pub fn shutdown(&self) {
        for (_, fetcher) in unpoison(self.fetchers.lock()).drain() {
            stop(fetcher);
        }
    }
}

impl Drop for FetcherManager {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn stop(fetcher: Fetcher) {
    fetcher.shared.stopped.store(true, Ordering::Release);
    fetcher.shared.wake.notify_one();
    fetcher.task.abort();
}

/// One fetcher's loop.
async fn run(
    shared: Arc<FetcherShared>,
    leader: LeaderEndpoint,
    local_id: i32,
    broker_epoch: Arc<AtomicI64>,
    config: ReplicationConfig,
    connector: NodeConnector,
) {
    let backoff = Duration::from_millis(u64::try_from(config.fetch_backoff_ms).unwrap_or(0));
    let wait = Duration::from_millis(u64::try_from(config.fetch_wait_max_ms).unwrap_or(0));
    let socket_timeout =
        Duration::from_millis(u64::try_from(config.socket_timeout_ms).unwrap_or(30_000));
    // A response holds at most `replica.fetch.response.max.bytes` of records (plus one
    // oversized first batch, KIP-74) and its headers.
    let max_response = usize::try_from(config.fetch_response_max_bytes)
        .unwrap_or(0)
        .max(usize::try_from(config.fetch_max_bytes).unwrap_or(0))
        .saturating_mul(2)
        .saturating_add(1 << 20);
    let client_id = format!("broker-{local_id}-fetcher-{}", leader.id);
    let mut client: Option<BrokerClient> = None;
    while !shared.stopped.load(Ordering::Acquire) {
        let now = Instant::now();
        let ready: Vec<((String, i32), PartitionFetch)> = unpoison(shared.partitions.lock())
            .iter()
            .filter(|(_, p)| p.delayed_until.is_none_or(|until| until <= now))
            .map(|(k, p)| (k.clone(), p.clone()))
            .collect();
        if ready.is_empty() {
            let next = unpoison(shared.partitions.lock())
                .values()
                .filter_map(|p| p.delayed_until)
                .min();
            match next {
                Some(until) => {
                    tokio::select! {
                        () = shared.wake.notified() => {}
                        () = tokio::time::sleep_until(until) => {}
                    }
                }
                None => shared.wake.notified().await,
            }
            continue;
        }
        if client.is_none() {
            match BrokerClient::connect(
                &connector,
                &leader.host,
                leader.port,
                &client_id,
                max_response,
                socket_timeout,
            )
            .await
            {
                Ok(connected) => client = Some(connected),
                Err(error) if error.is_security() => {
                    tracing::error!(leader = leader.id, host = %leader.host, port = leader.port, listener = %connector.listener, %error, "the leader does not accept this broker (TLS or SASL of the inter-broker listener)");
                    tokio::time::sleep(backoff).await;
                    continue;
                }
                Err(error) => {
                    tracing::warn!(leader = leader.id, host = %leader.host, port = leader.port, %error, "cannot connect to the leader");
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            }
        }
        let connection = client.as_mut().expect("connected above");
        let epoch = broker_epoch.load(Ordering::Acquire);
        match fetch_round(
            connection,
            &shared,
            &ready,
            local_id,
            epoch,
            &config,
            wait,
            socket_timeout,
        )
        .await
        {
            Ok(()) => {
                shared.rounds.fetch_add(1, Ordering::AcqRel);
            }
            Err(error) => {
                tracing::warn!(leader = leader.id, %error, "fetch from the leader failed");
                client = None;
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

/// One Fetch to the leader and what its answer does to each partition.
#[allow(clippy::too_many_arguments)]
async fn fetch_round(
    client: &mut BrokerClient,
    shared: &FetcherShared,
    ready: &[((String, i32), PartitionFetch)],
    local_id: i32,
    broker_epoch: i64,
    config: &ReplicationConfig,
    wait: Duration,
    socket_timeout: Duration,
) -> Result<(), ClientError> {
    let version = client.version_for::<FetchRequest>(MIN_FETCH_VERSION, FETCH_VERSION)?;
    let mut topics: Vec<FetchTopic> = Vec::new();
    for ((_, partition), fetch) in ready {
        let log = &fetch.log;
        let wanted = FetchPartition {
            partition: *partition,
            current_leader_epoch: fetch.leader_epoch,
            fetch_offset: log.log_end_offset(),
            last_fetched_epoch: log.leader_epochs().last().map_or(-1, |e| e.epoch),
            log_start_offset: log.log_start_offset(),
            partition_max_bytes: config.fetch_max_bytes,
            ..Default::default()
        };
        match topics.last_mut() {
            Some(topic) if topic.topic_id == fetch.topic_id => topic.partitions.push(wanted),
            _ => topics.push(FetchTopic {
                topic_id: fetch.topic_id,
                partitions: vec![wanted],
                ..Default::default()
            }),
        }
    }
    let request = FetchRequest {
        replica_id: -1,
        replica_state: FetchReplicaState {
            replica_id: local_id,
            replica_epoch: broker_epoch,
            ..Default::default()
        },
        max_wait_ms: config.fetch_wait_max_ms,
        min_bytes: config.fetch_min_bytes,
        max_bytes: config.fetch_response_max_bytes,
        isolation_level: 0,
        session_id: 0,
        session_epoch: -1,
        topics,
        ..Default::default()
    };
    let response = client
        .send(&request, version, wait + socket_timeout)
        .await?;
    if response.error_code != error_code::NONE {
        return Err(ClientError::Protocol(format!(
            "the leader answered Fetch with error {}",
            gregor_protocol::ErrorCode::from(response.error_code)
        )));
    }
    for topic in response.responses {
        for data in topic.partitions {
            let Some((key, fetch)) = ready
                .iter()
                .find(|((_, p), f)| f.topic_id == topic.topic_id && *p == data.partition_index)
            else {
                continue;
            };
            // Still fetched from this leader in this epoch (not removed or re-added while
            // the request was out, as Kafka checks its partition states before processing).
            let current = unpoison(shared.partitions.lock())
                .get(key)
                .is_some_and(|now| {
                    now.leader_epoch == fetch.leader_epoch && Arc::ptr_eq(&now.log, &fetch.log)
                });
            if !current {
                continue;
            }
            let outcome = apply(client, key, fetch, data, local_id).await;
            if let Err(code) = outcome {
                let mut partitions = unpoison(shared.partitions.lock());
                if let Some(state) = partitions.get_mut(key) {
                    tracing::info!(
                        topic = %key.0,
                        partition = key.1,
                        error = %gregor_protocol::ErrorCode::from(code),
                        "backing off a partition"
                    );
                    state.delayed_until = Some(
                        Instant::now()
                            + Duration::from_millis(
                                u64::try_from(config.fetch_backoff_ms).unwrap_or(0),
                            ),
                    );
                }
            }
        }
    }
    Ok(())
}

/// Applies one partition of the leader's answer; `Err(code)` backs the partition off.
async fn apply(
    client: &mut BrokerClient,
    key: &(String, i32),
    fetch: &PartitionFetch,
    data: PartitionData,
    local_id: i32,
) -> Result<(), i16> {
    let log = Arc::clone(&fetch.log);
    match data.error_code {
        error_code::NONE => {}
        error_code::OFFSET_OUT_OF_RANGE => {
            return reset_out_of_range(client, key, fetch, local_id).await;
        }
        code => return Err(code),
    }
    let diverging = (data.diverging_epoch.epoch >= 0 || data.diverging_epoch.end_offset >= 0)
        .then_some((data.diverging_epoch.epoch, data.diverging_epoch.end_offset));
    let records = data.records.unwrap_or_default();
    let (leader_hw, leader_start) = (data.high_watermark, data.log_start_offset);
    blocking(move || {
        if let Some((epoch, end)) = diverging {
            let target = truncation_offset(&log, epoch, end);
            tracing::info!(
                partition = %log.name(),
                leader_epoch = epoch,
                leader_end_offset = end,
                truncate_to = target,
                "the leader's log diverges: truncating"
            );
            log.truncate_to(target)?;
            return Ok(());
        }
        match log.append_as_follower(records.clone()) {
            // Kafka's `Partition.appendRecordsToFollowerOrFutureReplica`: an empty log
            // started at an offset inside the leader's first batch (its log start offset
            // was raised mid-batch) starts over at the batch instead.
            Err(StorageError::OffsetOutOfRange { offset, .. })
                if log.log_end_offset() == log.log_start_offset()
                    && offset < log.log_end_offset() =>
            {
                log.truncate_fully_and_start_at(offset)?;
                log.append_as_follower(records)?;
            }
            other => {
                other?;
            }
        }
        if leader_start > log.log_start_offset() {
            log.advance_log_start_offset(leader_start.min(log.log_end_offset()))?;
        }
        log.update_follower_high_watermark(leader_hw);
        Ok(())
    })
    .await
}

/// Kafka's `getOffsetTruncationState` for a diverging epoch `(epoch, end)` from the leader.
fn truncation_offset(log: &PartitionLog, epoch: i32, end: i64) -> i64 {
    let log_end = log.log_end_offset();
    if end < 0 {
        // An unknown offset: keep the log up to where it was fetched (the log end).
        return log_end;
    }
    match log.end_offset_for_epoch(epoch, -1) {
        (-1, _) | (_, -1) => end.min(log_end),
        (found, follower_end) if found != epoch => follower_end.min(log_end),
        (_, follower_end) => follower_end.min(end).min(log_end),
    }
}

/// Kafka's `fetchOffsetAndTruncate` after OFFSET_OUT_OF_RANGE.
async fn reset_out_of_range(
    client: &mut BrokerClient,
    key: &(String, i32),
    fetch: &PartitionFetch,
    local_id: i32,
) -> Result<(), i16> {
    let leader_end = list_offset(client, key, fetch, local_id, -1).await?;
    let log = Arc::clone(&fetch.log);
    let log_end = log.log_end_offset();
    if leader_end < log_end {
        tracing::warn!(partition = %log.name(), log_end, leader_end, "truncating to the leader's end");
        return blocking(move || log.truncate_to(leader_end).map(|_| ())).await;
    }
    let leader_start = list_offset(client, key, fetch, local_id, -2).await?;
    if leader_start > log_end {
        tracing::warn!(partition = %log.name(), log_end, leader_start, "starting over at the leader's log start offset");
        return blocking(move || log.truncate_fully_and_start_at(leader_start)).await;
    }
    Ok(())
}

/// The leader's offset for `timestamp` (-1 latest, -2 earliest), asked as a replica.
async fn list_offset(
    client: &mut BrokerClient,
    key: &(String, i32),
    fetch: &PartitionFetch,
    local_id: i32,
    timestamp: i64,
) -> Result<i64, i16> {
    let version = client
        .version_for::<ListOffsetsRequest>(1, LIST_OFFSETS_VERSION)
        .map_err(|_| error_code::UNSUPPORTED_VERSION)?;
    let request = ListOffsetsRequest {
        replica_id: local_id,
        isolation_level: 0,
        topics: vec![ListOffsetsTopic {
            name: key.0.as_str().into(),
            partitions: vec![ListOffsetsPartition {
                partition_index: key.1,
                current_leader_epoch: fetch.leader_epoch,
                timestamp,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = client
        .send(&request, version, Duration::from_secs(30))
        .await
        .map_err(|_| error_code::NETWORK_EXCEPTION)?;
    let partition = response
        .topics
        .into_iter()
        .flat_map(|t| t.partitions)
        .find(|p| p.partition_index == key.1)
        .ok_or(error_code::UNKNOWN_TOPIC_OR_PARTITION)?;
    if partition.error_code != error_code::NONE {
        return Err(partition.error_code);
    }
    Ok(partition.offset)
}

/// Runs a log operation on the blocking pool; a storage error backs the partition off.
async fn blocking(
    work: impl FnOnce() -> Result<(), StorageError> + Send + 'static,
) -> Result<(), i16> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => {
            tracing::warn!(%error, "a follower's log operation failed");
            Err(match error {
                StorageError::OffsetOutOfRange { .. } => error_code::OFFSET_OUT_OF_RANGE,
                StorageError::InvalidBatch(_) => error_code::CORRUPT_MESSAGE,
                _ => error_code::KAFKA_STORAGE_ERROR,
            })
        }
        Err(error) => {
            tracing::error!(%error, "a follower's log task failed");
            Err(error_code::UNKNOWN_SERVER_ERROR)
        }
    }
}
