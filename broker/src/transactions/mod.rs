//! The transaction coordinator: Kafka's `TransactionCoordinator` and
//! `TransactionStateManager`.
//!
//! A single node coordinates every transactional id; a broker of a cluster those of the
//! `__transaction_state` partitions it leads
//! ([`TransactionCoordinator::on_election`]), and reaches the other brokers for markers
//! ([`marker_sender`]) and KIP-890 verification ([`verification`]) over [`channel`].
//! An id lives in the partition
//! `Utils.abs(transactionalId.hashCode()) % partitions` of `__transaction_state` (Java's
//! `String.hashCode`), which is created through the controller on first use (internal,
//! `transaction.state.log.num.partitions` partitions, `cleanup.policy=compact`,
//! `compression.type=uncompressed`, `min.insync.replicas` and `segment.bytes` from the
//! `transaction.state.log.*` keys).
//!
//! * [`state`]: one id's state machine (`TransactionMetadata`), [`rules`]: what each request
//!   does to it, [`log`]: the records and their replay, [`markers`]: the marker writes.
//! * Every change is written to `__transaction_state` before it is applied in memory
//!   (Kafka's `appendTransactionToLog`), under the id's lock; ids never wait on each other.
//! * EndTxn answers once PrepareCommit/PrepareAbort is written; the markers are then
//!   written by a task (retried until they succeed), and CompleteCommit/CompleteAbort
//!   after them. Requests meanwhile get `CONCURRENT_TRANSACTIONS`.
//! * At start-up every partition is replayed; transactions found preparing get their
//!   markers written and complete (a crash between the prepare record and the markers).
//! * Ongoing transactions past their timeout are aborted with the epoch fenced, checked
//!   every `transaction.abort.timed.out.transaction.cleanup.interval.ms`; ids idle for
//!   `transactional.id.expiration.ms` are removed with tombstones, checked every
//!   `transaction.remove.expired.transaction.cleanup.interval.ms`.

pub mod channel;
pub mod log;
pub mod marker_sender;
pub mod markers;
pub mod rules;
pub mod state;
pub mod verification;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use gregor_protocol::error_code;
use gregor_protocol::error_code::*;

use self::markers::MarkerWriter;
use self::rules::{AddDecision, EndDecision, InitDecision};
use self::state::{TopicPartition, Transit, TxnMetadata, TxnState};
use crate::broker::Broker;
use crate::cluster::controller::NewTopic;
use crate::config::Config;
use crate::groups::group::now_ms;
use crate::storage::validate_records;

/// The internal topic holding the transaction state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// The finalized feature that turns on KIP-890's transaction versions.
pub const TRANSACTION_VERSION_FEATURE: &str = "transaction.version";

/// The `__transaction_state` partition of `transactional_id`:
/// `Utils.abs(hashCode) % partitions`, as for groups.
pub fn partition_for(transactional_id: &str, partitions: i32) -> i32 {
    crate::groups::partition_for(transactional_id, partitions)
}

/// Kafka's `appendTransactionToLog` mapping of a failed write to the client's error.
pub fn append_error(code: i16) -> i16 {
    match code {
        UNKNOWN_TOPIC_OR_PARTITION
        | NOT_ENOUGH_REPLICAS
        | NOT_ENOUGH_REPLICAS_AFTER_APPEND
        | REQUEST_TIMED_OUT => COORDINATOR_NOT_AVAILABLE,
        NOT_LEADER_OR_FOLLOWER | KAFKA_STORAGE_ERROR => NOT_COORDINATOR,
        _ => UNKNOWN_SERVER_ERROR,
    }
}

#[derive(Clone, Debug)]
struct Settings {
    num_partitions: i32,
    replication_factor: i16,
    segment_bytes: i32,
    min_isr: i32,
    max_timeout_ms: i32,
    expiration_ms: i64,
    abort_interval_ms: u64,
    expire_interval_ms: u64,
}

/// One transactional id and its lock.
#[derive(Debug)]
struct TxnCell {
    meta: tokio::sync::Mutex<TxnMetadata>,
}

/// One transaction as DescribeTransactions shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribedTxn {
    /// State name.
    pub state: &'static str,
    /// Timeout.
    pub timeout_ms: i32,
    /// Start, -1 if none.
    pub start_ms: i64,
    /// Producer id.
    pub producer_id: i64,
    /// Epoch.
    pub producer_epoch: i16,
    /// Partitions (those still without a marker while preparing).
    pub partitions: BTreeSet<TopicPartition>,
}

/// One transaction as ListTransactions shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedTxn {
    /// Transactional id.
    pub transactional_id: String,
    /// Producer id.
    pub producer_id: i64,
    /// State name.
    pub state: &'static str,
}

/// The transaction coordinator (see the module docs).
pub struct TransactionCoordinator {
    settings: Settings,
    txns: Mutex<HashMap<String, Arc<TxnCell>>>,
    broker: OnceLock<Weak<Broker>>,
    markers: OnceLock<Arc<dyn MarkerWriter>>,
    topic_creation: tokio::sync::Mutex<()>,
    /// The `__transaction_state` partitions coordinated here (all on a single node).
    owned: crate::cluster::coordinator_partitions::CoordinatorPartitions,
    /// Connections to the other brokers of a cluster for the markers, and apart from
    /// them for KIP-890 verification (Kafka's `TransactionMarkerChannelManager` and
    /// `AddPartitionsToTxnManager` have a client each: a marker waiting for a slow ISR
    /// never holds up a producer's verification).
    marker_channels: channel::BrokerChannels,
    verification_channels: channel::BrokerChannels,
}

impl std::fmt::Debug for TransactionCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionCoordinator")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl TransactionCoordinator {
    /// A coordinator without transactions, configured from `config`.
    pub fn new(config: &Config) -> TransactionCoordinator {
        TransactionCoordinator {
            settings: Settings {
                num_partitions: config.transaction_state_log_num_partitions,
                replication_factor: config.transaction_state_log_replication_factor,
                segment_bytes: config.transaction_state_log_segment_bytes,
                min_isr: config.transaction_state_log_min_isr,
                max_timeout_ms: config.transaction_max_timeout_ms,
                expiration_ms: i64::from(config.transactional_id_expiration_ms),
                abort_interval_ms: config
                    .transaction_abort_timed_out_cleanup_interval_ms
                    .max(1) as u64,
                expire_interval_ms: config.transaction_remove_expired_cleanup_interval_ms.max(1)
                    as u64,
            },
            txns: Mutex::new(HashMap::new()),
            broker: OnceLock::new(),
            markers: OnceLock::new(),
            topic_creation: tokio::sync::Mutex::new(()),
            owned: crate::cluster::coordinator_partitions::CoordinatorPartitions::all(),
            marker_channels: channel::BrokerChannels::new(),
            verification_channels: channel::BrokerChannels::new(),
        }
    }

    /// Loads every partition of `__transaction_state` (blocking file I/O), resumes the
    /// markers of transactions found preparing and starts the timeout and expiration
    /// tasks. Called once by [`Broker::open`] inside the tokio runtime, with the marker
    /// writer the broker provides.
    pub fn start(&self, broker: &Arc<Broker>, markers: Arc<dyn MarkerWriter>) {
        let _ = self.broker.set(Arc::downgrade(broker));
        let _ = self.markers.set(markers);
        if broker.config.is_cluster() {
            // The metadata publisher loads the partitions this broker leads (on_election).
            self.coordinate_elected_only();
        } else {
            self.load_partitions(broker, None);
        }
        self.spawn_periodic();
    }

    /// Kafka's `TransactionCoordinator.onElection`: this broker now leads partition
    /// `partition` of `__transaction_state` in `leader_epoch`; unless it already
    /// coordinated it, its transactional ids are replayed from the log (blocking file
    /// I/O; call inside the tokio runtime), and transactions found preparing complete.
    pub fn on_election(&self, partition: i32, leader_epoch: i32) {
        if !self.owned.elect(partition, leader_epoch) {
            return;
        }
        if let Some(broker) = self.broker() {
            tracing::info!(
                partition,
                leader_epoch,
                "coordinating the transactional ids of {TRANSACTION_STATE_TOPIC}-{partition}"
            );
            self.load_partitions(&broker, Some(partition));
        }
    }

    /// Kafka's `TransactionCoordinator.onResignation`: the partition's transactional ids
    /// are dropped from memory and answered `NOT_COORDINATOR` from now on.
    pub fn on_resignation(&self, partition: i32, leader_epoch: Option<i32>) {
        if !self.owned.resign(partition, leader_epoch) {
            return;
        }
        let count = self.partition_count();
        let mut map = self.map();
        let before = map.len();
        map.retain(|id, _| partition_for(id, count) != partition);
        tracing::info!(
            partition,
            "no longer coordinating the transactional ids of {TRANSACTION_STATE_TOPIC}-{partition} ({} unloaded)",
            before - map.len()
        );
    }

    /// From now on this broker coordinates only the partitions it is elected for
    /// ([`Self::on_election`]): a broker whose state follows the metadata publisher.
    pub fn coordinate_elected_only(&self) {
        self.owned.only_elected();
    }

    /// `NOT_COORDINATOR` when `id`'s partition is not coordinated by this broker.
    pub fn coordinator_error(&self, id: &str) -> Option<i16> {
        let partition = partition_for(id, self.partition_count());
        (!self.owned.owns(partition)).then_some(NOT_COORDINATOR)
    }

    /// Replays every partition of `__transaction_state` (or only `only`) into memory.
    fn load_partitions(&self, broker: &Broker, only: Option<i32>) {
        let mut replay = log::Replay::default();
        let image = broker.image();
        if let Some(topic) = image.topic(TRANSACTION_STATE_TOPIC) {
            for partition in topic.partitions.keys() {
                if only.is_some_and(|only| only != *partition) {
                    continue;
                }
                if let Some(log) = broker.logs.get(TRANSACTION_STATE_TOPIC, *partition) {
                    replay.load(&log);
                }
            }
        }
        if replay.records > 0 || replay.skipped > 0 {
            tracing::info!(
                "loaded {} transactional ids from {} records of {TRANSACTION_STATE_TOPIC} \
                 ({} skipped)",
                replay.transactions.len(),
                replay.records,
                replay.skipped
            );
        }
        let mut preparing = Vec::new();
        {
            let mut map = self.map();
            for (id, meta) in replay.transactions {
                if matches!(meta.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
                    preparing.push(id.clone());
                }
                map.insert(
                    id,
                    Arc::new(TxnCell {
                        meta: tokio::sync::Mutex::new(meta),
                    }),
                );
            }
        }
        for id in preparing {
            tracing::info!(transactional_id = %id, "completing a transaction found preparing");
            self.spawn_markers(&id);
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<TxnCell>>> {
        self.txns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn broker(&self) -> Option<Arc<Broker>> {
        self.broker.get()?.upgrade()
    }

    fn get(&self, id: &str) -> Option<Arc<TxnCell>> {
        self.map().get(id).cloned()
    }

    /// The finalized `transaction.version` (0 when not finalized).
    pub fn transaction_version(&self) -> i16 {
        self.broker()
            .and_then(|b| b.image().feature_level(TRANSACTION_VERSION_FEATURE))
            .unwrap_or(0)
    }

    /// The partition count of `__transaction_state`: the topic's, else the configured one.
    pub fn partition_count(&self) -> i32 {
        self.broker()
            .and_then(|b| {
                b.image()
                    .topic(TRANSACTION_STATE_TOPIC)
                    .map(|t| t.partitions.len() as i32)
            })
            .unwrap_or(self.settings.num_partitions)
    }

    /// Creates `__transaction_state` unless it exists; `COORDINATOR_NOT_AVAILABLE` when it
    /// cannot be (a replication factor above the broker count).
    pub async fn ensure_topic(&self) -> Result<(), i16> {
        let broker = self.broker().ok_or(COORDINATOR_NOT_AVAILABLE)?;
        // Kafka's `TransactionStateManager.transactionTopicConfigs`.
        let topic = NewTopic::new(
            TRANSACTION_STATE_TOPIC,
            self.settings.num_partitions,
            self.settings.replication_factor,
        )
        .with_config("cleanup.policy", "compact")
        .with_config("compression.type", "uncompressed")
        .with_config("unclean.leader.election.enable", "false")
        .with_config("min.insync.replicas", self.settings.min_isr.to_string())
        .with_config("segment.bytes", self.settings.segment_bytes.to_string());
        broker
            .ensure_internal_topic(
                &self.topic_creation,
                topic,
                "transaction.state.log.replication.factor",
            )
            .await
    }

    /// The coordinator epoch of `id`'s partition: its leader epoch.
    fn coordinator_epoch(&self, id: &str) -> i32 {
        let Some(broker) = self.broker() else {
            return 0;
        };
        let image = broker.image();
        let Some(topic) = image.topic(TRANSACTION_STATE_TOPIC) else {
            return 0;
        };
        let partition = partition_for(id, topic.partitions.len() as i32);
        topic.partition(partition).map_or(0, |p| p.leader_epoch)
    }

    /// Writes `transit` of `id` (`None`: a tombstone) to its partition; the storage error
    /// code on failure (see [`append_error`]).
    async fn append(&self, id: &str, transit: Option<&Transit>) -> Result<(), i16> {
        let broker = self.broker().ok_or(UNKNOWN_TOPIC_OR_PARTITION)?;
        self.ensure_topic()
            .await
            .map_err(|_| UNKNOWN_TOPIC_OR_PARTITION)?;
        let (log, partition, leader_epoch) =
            broker.coordinator_partition(TRANSACTION_STATE_TOPIC, id)?;
        use crate::cluster::coordinator_partitions as replicated;
        replicated::check_write(&broker.replicas, TRANSACTION_STATE_TOPIC, partition)?;
        let image = broker.image();
        let now = now_ms();
        let tv = image
            .feature_level(TRANSACTION_VERSION_FEATURE)
            .unwrap_or(0);
        let batch = log::build_batch(id, transit, tv, now).map_err(|err| {
            tracing::error!(transactional_id = %id, "cannot encode the transaction state: {err}");
            UNKNOWN_SERVER_ERROR
        })?;
        let task = tokio::task::spawn_blocking(move || {
            let config = log.config();
            let validated = validate_records(batch, &config, now).map_err(|err| {
                tracing::warn!("writing to {}: {}", log.name(), err.message);
                err.code
            })?;
            log.append(validated, leader_epoch, now)
                .map(|info| info.last_offset + 1)
                .map_err(|err| err.coordinator_write_code(&log.name()))
        });
        let end = task.await.unwrap_or(Err(UNKNOWN_SERVER_ERROR))?;
        replicated::wait_replicated(
            &broker.replicas,
            TRANSACTION_STATE_TOPIC,
            partition,
            end,
            replicated::TRANSACTION_WRITE_TIMEOUT,
        )
        .await
    }

    /// Writes `transit` and applies it to `meta` (whose lock the caller holds); on a
    /// failed write the pending transition is dropped and the client's error returned.
    async fn write_and_complete(
        &self,
        meta: &mut TxnMetadata,
        transit: &Transit,
    ) -> Result<(), i16> {
        match self.append(&meta.transactional_id, Some(transit)).await {
            Ok(()) => meta.complete_transition(transit).map_err(|message| {
                tracing::error!("transaction coordinator: {message}");
                meta.abort_transition();
                UNKNOWN_SERVER_ERROR
            }),
            Err(code) => {
                meta.abort_transition();
                tracing::info!(
                    transactional_id = %meta.transactional_id,
                    "writing the transaction state failed: error {code}"
                );
                Err(append_error(code))
            }
        }
    }

    async fn allocate_producer_id(&self) -> Result<i64, i16> {
        let broker = self.broker().ok_or(COORDINATOR_NOT_AVAILABLE)?;
        broker.allocate_producer_id().await.map_err(|error| {
            tracing::error!("allocating a producer id: {error:?}");
            error.code
        })
    }

    /// A producer id allocated ahead when `meta`'s epoch is exhausted (the rules call
    /// for one only then), so the allocation is not made under a blocking call.
    async fn spare_producer_id(&self, meta: &TxnMetadata) -> Option<Result<i64, i16>> {
        if meta.is_epoch_exhausted() {
            Some(self.allocate_producer_id().await)
        } else {
            None
        }
    }

    fn check_active(&self) -> Result<Arc<Broker>, i16> {
        self.broker().ok_or(COORDINATOR_NOT_AVAILABLE)
    }

    // ----- the APIs -----

    /// InitProducerId with a (non-empty) transactional id: the producer id and epoch, or
    /// the error (Kafka's `handleInitProducerId`).
    pub async fn init_producer_id(
        &self,
        id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), i16> {
        self.check_active()?;
        if let Some(code) = self.coordinator_error(id) {
            return Err(code);
        }
        if timeout_ms <= 0 || timeout_ms > self.settings.max_timeout_ms {
            return Err(INVALID_TRANSACTION_TIMEOUT);
        }
        self.ensure_topic().await?;
        let cell = match self.get(id) {
            Some(cell) => cell,
            None => {
                let producer_id = self.allocate_producer_id().await?;
                let mut map = self.map();
                map.entry(id.to_string())
                    .or_insert_with(|| {
                        Arc::new(TxnCell {
                            meta: tokio::sync::Mutex::new(TxnMetadata::new(
                                id,
                                producer_id,
                                timeout_ms,
                                now_ms(),
                            )),
                        })
                    })
                    .clone()
            }
        };
        let mut meta = cell.meta.lock().await;
        if meta.state == TxnState::Dead {
            // Being expired right now: let the client retry.
            return Err(CONCURRENT_TRANSACTIONS);
        }
        let mut spare = self.spare_producer_id(&meta).await;
        let mut new_id = || spare.take().unwrap_or(Err(UNKNOWN_SERVER_ERROR));
        let decision =
            rules::init_producer_id(&mut meta, timeout_ms, expected, &mut new_id, now_ms())?;
        match decision {
            InitDecision::Write(transit) => {
                self.write_and_complete(&mut meta, &transit).await?;
                tracing::info!(
                    transactional_id = %id,
                    "initialized with producer id {} and epoch {}",
                    meta.producer_id,
                    meta.producer_epoch
                );
                Ok((meta.producer_id, meta.producer_epoch))
            }
            InitDecision::Fence(fence) => {
                let tv = self.transaction_version();
                let result = self
                    .end_locked(
                        &mut meta,
                        fence.producer_id,
                        fence.producer_epoch,
                        false,
                        false,
                        tv,
                    )
                    .await;
                // The fenced epoch is not returned: the client retries and bumps again.
                Err(match result {
                    Ok(_) => CONCURRENT_TRANSACTIONS,
                    Err(code) => code,
                })
            }
        }
    }

    /// AddPartitionsToTxn (v0-v3 and v4+ without `verify_only`) and AddOffsetsToTxn: the
    /// error for all the partitions.
    pub async fn add_partitions(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &BTreeSet<TopicPartition>,
    ) -> i16 {
        if id.is_empty() {
            return INVALID_REQUEST;
        }
        if let Err(code) = self.check_active() {
            return code;
        }
        if let Some(code) = self.coordinator_error(id) {
            return code;
        }
        let Some(cell) = self.get(id) else {
            return INVALID_PRODUCER_ID_MAPPING;
        };
        let mut meta = cell.meta.lock().await;
        if meta.state == TxnState::Dead {
            return INVALID_PRODUCER_ID_MAPPING;
        }
        match rules::add_partitions(&mut meta, producer_id, epoch, partitions, now_ms()) {
            Err(code) => code,
            Ok(AddDecision::AlreadyAdded) => NONE,
            Ok(AddDecision::Write(transit)) => {
                match self.write_and_complete(&mut meta, &transit).await {
                    Ok(()) => NONE,
                    Err(code) => code,
                }
            }
        }
    }

    /// KIP-890 part 1: whether each of `partitions` is in `id`'s ongoing transaction of
    /// `producer_id` at `epoch` (the check the produce path makes before appending a
    /// transactional batch): `NONE`, `TRANSACTION_ABORTABLE` (not added), or the error of
    /// the whole transaction (`INVALID_PRODUCER_ID_MAPPING`, `PRODUCER_FENCED`,
    /// `CONCURRENT_TRANSACTIONS`, `INVALID_REQUEST`) for each.
    pub async fn verify_partitions(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[TopicPartition],
    ) -> Vec<(TopicPartition, i16)> {
        let all = |code: i16| partitions.iter().map(|p| (p.clone(), code)).collect();
        if id.is_empty() {
            return all(INVALID_REQUEST);
        }
        if let Err(code) = self.check_active() {
            return all(code);
        }
        if let Some(code) = self.coordinator_error(id) {
            return all(code);
        }
        let Some(cell) = self.get(id) else {
            return all(INVALID_PRODUCER_ID_MAPPING);
        };
        let meta = cell.meta.lock().await;
        match rules::verify_partitions(&meta, producer_id, epoch, partitions) {
            Ok(codes) => partitions
                .iter()
                .map(|p| (p.clone(), codes.get(p).copied().unwrap_or(NONE)))
                .collect(),
            Err(code) => all(code),
        }
    }

    /// EndTxn: on success the producer id and epoch to answer (bumped with TV2).
    /// `client_tv` is 2 for EndTxn v5+ (Kafka: the client then supports epoch bumps).
    pub async fn end_txn(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        client_tv: i16,
    ) -> Result<(i64, i16), i16> {
        if id.is_empty() {
            return Err(INVALID_REQUEST);
        }
        self.check_active()?;
        if let Some(code) = self.coordinator_error(id) {
            return Err(code);
        }
        let Some(cell) = self.get(id) else {
            return Err(INVALID_PRODUCER_ID_MAPPING);
        };
        let mut meta = cell.meta.lock().await;
        if meta.state == TxnState::Dead {
            return Err(INVALID_PRODUCER_ID_MAPPING);
        }
        self.end_locked(&mut meta, producer_id, epoch, commit, true, client_tv)
            .await
    }

    /// EndTxn under the id's lock (also the coordinator's own aborts).
    async fn end_locked(
        &self,
        meta: &mut TxnMetadata,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        from_client: bool,
        client_tv: i16,
    ) -> Result<(i64, i16), i16> {
        let mut spare = if state::supports_epoch_bump(client_tv) {
            self.spare_producer_id(meta).await
        } else {
            None
        };
        let mut new_id = || spare.take().unwrap_or(Err(UNKNOWN_SERVER_ERROR));
        let decision = rules::end_txn(
            meta,
            producer_id,
            epoch,
            commit,
            from_client,
            client_tv,
            &mut new_id,
            now_ms(),
        );
        let (transit, epoch_fence) = match decision {
            Err(code) => {
                if meta.pending == Some(TxnState::PrepareEpochFence) {
                    meta.abort_transition();
                }
                return Err(code);
            }
            Ok(EndDecision::Done {
                producer_id,
                producer_epoch,
            }) => return Ok((producer_id, producer_epoch)),
            Ok(EndDecision::Write {
                transit,
                epoch_fence,
            }) => (transit, epoch_fence),
        };
        if let Err(code) = self.write_and_complete(meta, &transit).await {
            if epoch_fence {
                // The bumped epoch was not written; the next fence must not bump again.
                meta.has_failed_epoch_fence = true;
            }
            return Err(code);
        }
        let answer = (meta.producer_id, meta.producer_epoch);
        self.spawn_markers(&meta.transactional_id);
        Ok(answer)
    }

    /// Starts the task that writes the markers of `id`'s prepared transaction and then
    /// its Complete state.
    fn spawn_markers(&self, id: &str) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Some(broker) = self.broker.get().cloned() else {
            return;
        };
        let id = id.to_string();
        runtime.spawn(async move {
            let mut backoff = Duration::from_millis(20);
            let mut warned = false;
            loop {
                let Some(broker) = broker.upgrade() else {
                    return;
                };
                match broker.transactions.marker_round(&id).await {
                    MarkerProgress::Done => return,
                    MarkerProgress::Retry(code) => {
                        if !warned {
                            tracing::warn!(
                                transactional_id = %id,
                                "transaction markers not written yet (error {code}); retrying"
                            );
                            warned = true;
                        }
                    }
                }
                drop(broker);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        });
    }

    /// One round of `id`'s markers: the partitions still without one are written (the
    /// lock is not held meanwhile, so requests are answered `CONCURRENT_TRANSACTIONS`),
    /// and once none is left the Complete state is written.
    async fn marker_round(&self, id: &str) -> MarkerProgress {
        let Some(cell) = self.get(id) else {
            return MarkerProgress::Done;
        };
        let Some(writer) = self.markers.get().cloned() else {
            return MarkerProgress::Retry(COORDINATOR_NOT_AVAILABLE);
        };
        let (partitions, producer_id, epoch, commit) = {
            let meta = cell.meta.lock().await;
            let commit = match meta.state {
                TxnState::PrepareCommit => true,
                TxnState::PrepareAbort => false,
                _ => return MarkerProgress::Done,
            };
            let partitions: Vec<TopicPartition> = meta.partitions.iter().cloned().collect();
            (partitions, meta.producer_id, meta.producer_epoch, commit)
        };
        let coordinator_epoch = self.coordinator_epoch(id);
        let cluster = self.broker().filter(|b| b.config.is_cluster());
        let round = if partitions.is_empty() {
            markers::MarkerRound::default()
        } else if let Some(broker) = cluster {
            // In a cluster each marker goes to its partition's leader.
            let marker = marker_sender::Marker {
                producer_id,
                producer_epoch: epoch,
                coordinator_epoch,
                commit,
                transaction_version: self.transaction_version(),
            };
            marker_sender::send_round(&broker, &self.marker_channels, writer, &partitions, marker)
                .await
        } else {
            let parts = partitions.clone();
            tokio::task::spawn_blocking(move || {
                markers::write_round(
                    writer.as_ref(),
                    &parts,
                    producer_id,
                    epoch,
                    coordinator_epoch,
                    commit,
                )
            })
            .await
            .unwrap_or_else(|_| markers::MarkerRound {
                retry: partitions
                    .iter()
                    .map(|p| (p.clone(), UNKNOWN_SERVER_ERROR))
                    .collect(),
                ..Default::default()
            })
        };
        let mut meta = cell.meta.lock().await;
        if !matches!(meta.state, TxnState::PrepareCommit | TxnState::PrepareAbort)
            || meta.producer_id != producer_id
            || meta.producer_epoch != epoch
        {
            return MarkerProgress::Done;
        }
        if let Some(code) = round.abandoned {
            tracing::warn!(
                transactional_id = %id,
                "abandoned writing the transaction markers: error {code}"
            );
            return MarkerProgress::Done;
        }
        for tp in &round.done {
            meta.partitions.remove(tp);
        }
        if let Some((_, code)) = round.retry.first() {
            return MarkerProgress::Retry(*code);
        }
        if !meta.partitions.is_empty() {
            return MarkerProgress::Retry(NONE);
        }
        let transit = match meta.prepare_complete(now_ms()) {
            Ok(transit) => transit,
            Err(message) => {
                tracing::error!("transaction coordinator: {message}");
                return MarkerProgress::Done;
            }
        };
        match self.write_and_complete(&mut meta, &transit).await {
            Ok(()) => {
                tracing::debug!(
                    transactional_id = %id,
                    "transaction completed: {}",
                    meta.state.name()
                );
                MarkerProgress::Done
            }
            Err(code) => MarkerProgress::Retry(code),
        }
    }

    /// DescribeTransactions of one id.
    pub async fn describe(&self, id: &str) -> Result<DescribedTxn, i16> {
        self.check_active()?;
        if id.is_empty() {
            return Err(INVALID_REQUEST);
        }
        if let Some(code) = self.coordinator_error(id) {
            return Err(code);
        }
        let cell = self.get(id).ok_or(TRANSACTIONAL_ID_NOT_FOUND)?;
        let meta = cell.meta.lock().await;
        if meta.state == TxnState::Dead {
            return Err(TRANSACTIONAL_ID_NOT_FOUND);
        }
        Ok(DescribedTxn {
            state: meta.state.name(),
            timeout_ms: meta.timeout_ms,
            start_ms: meta.start_ms,
            producer_id: meta.producer_id,
            producer_epoch: meta.producer_epoch,
            partitions: meta.partitions.clone(),
        })
    }

    /// ListTransactions (Kafka's `listTransactionStates`): the state filters it does not
    /// know, and the transactions matching every filter (any state / producer id when
    /// the list is empty; running longer than `min_duration_ms` when it is >= 0; the id
    /// matching `pattern` when it is set and not empty), sorted by id.
    pub async fn list(
        &self,
        states: &[String],
        producer_ids: &[i64],
        min_duration_ms: i64,
        pattern: Option<&str>,
    ) -> Result<(Vec<String>, Vec<ListedTxn>), i16> {
        self.check_active()?;
        let mut unknown = Vec::new();
        let mut wanted = BTreeSet::new();
        for name in states {
            match TxnState::from_name(name) {
                Some(state) => {
                    wanted.insert(state);
                }
                None => unknown.push(name.clone()),
            }
        }
        let regex = match pattern.filter(|p| !p.is_empty()) {
            Some(p) => Some(
                regex::Regex::new(&format!("^(?:{p})$")).map_err(|_| INVALID_REGULAR_EXPRESSION)?,
            ),
            None => None,
        };
        let now = now_ms();
        let mut cells: Vec<(String, Arc<TxnCell>)> = self
            .map()
            .iter()
            .map(|(id, cell)| (id.clone(), cell.clone()))
            .collect();
        cells.sort_by(|a, b| a.0.cmp(&b.0));
        let mut listed = Vec::new();
        for (id, cell) in cells {
            let meta = cell.meta.lock().await;
            if meta.state == TxnState::Dead {
                continue;
            }
            if !states.is_empty() && !wanted.contains(&meta.state) {
                continue;
            }
            if !producer_ids.is_empty() && !producer_ids.contains(&meta.producer_id) {
                continue;
            }
            if min_duration_ms >= 0
                && !(meta.state == TxnState::Ongoing && now - meta.start_ms > min_duration_ms)
            {
                continue;
            }
            if regex.as_ref().is_some_and(|r| !r.is_match(&id)) {
                continue;
            }
            listed.push(ListedTxn {
                transactional_id: id,
                producer_id: meta.producer_id,
                state: meta.state.name(),
            });
        }
        Ok((unknown, listed))
    }

    /// Aborts the ongoing transactions past their timeout, fencing their producers
    /// (Kafka's `abortTimedOutTransactions`).
    pub async fn abort_timed_out(&self) {
        let cells: Vec<(String, Arc<TxnCell>)> = self
            .map()
            .iter()
            .map(|(id, cell)| (id.clone(), cell.clone()))
            .collect();
        let now = now_ms();
        for (id, cell) in cells {
            let mut meta = cell.meta.lock().await;
            if !rules::timed_out(&meta, now) {
                continue;
            }
            let fence = match meta.prepare_fence_epoch() {
                Ok(fence) => fence,
                Err(message) => {
                    tracing::error!("transaction coordinator: {message}");
                    continue;
                }
            };
            let tv = self.transaction_version();
            match self
                .end_locked(
                    &mut meta,
                    fence.producer_id,
                    fence.producer_epoch,
                    false,
                    false,
                    tv,
                )
                .await
            {
                Ok(_) => tracing::info!(
                    transactional_id = %id,
                    "aborting the ongoing transaction: it ran past its timeout"
                ),
                Err(code) => tracing::warn!(
                    transactional_id = %id,
                    "aborting the timed-out transaction failed: error {code}"
                ),
            }
        }
    }

    /// Removes the ids idle past `transactional.id.expiration.ms` with tombstones
    /// (Kafka's `removeExpiredTransactionalIds`).
    pub async fn expire_ids(&self) {
        let cells: Vec<(String, Arc<TxnCell>)> = self
            .map()
            .iter()
            .map(|(id, cell)| (id.clone(), cell.clone()))
            .collect();
        let now = now_ms();
        for (id, cell) in cells {
            let mut meta = cell.meta.lock().await;
            if !rules::expired(&meta, self.settings.expiration_ms, now) {
                continue;
            }
            if let Err(message) = meta.prepare_dead() {
                tracing::error!("transaction coordinator: {message}");
                continue;
            }
            match self.append(&id, None).await {
                Ok(()) => {
                    meta.pending = None;
                    meta.state = TxnState::Dead;
                    let mut map = self.map();
                    if map.get(&id).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                        map.remove(&id);
                    }
                    tracing::info!(transactional_id = %id, "expired the transactional id");
                }
                Err(code) => {
                    meta.abort_transition();
                    tracing::warn!(transactional_id = %id, "cannot expire: error {code}");
                }
            }
        }
    }

    fn spawn_periodic(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Some(weak) = self.broker.get().cloned() else {
            return;
        };
        let abort = Duration::from_millis(self.settings.abort_interval_ms);
        let expire = Duration::from_millis(self.settings.expire_interval_ms);
        let weak2 = weak.clone();
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(abort).await;
                let Some(broker) = weak.upgrade() else {
                    return;
                };
                broker.transactions.abort_timed_out().await;
            }
        });
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(expire).await;
                let Some(broker) = weak2.upgrade() else {
                    return;
                };
                broker.transactions.expire_ids().await;
            }
        });
    }
}

/// What a marker round left to do.
enum MarkerProgress {
    /// The transaction completed (or is no longer this task's business).
    Done,
    /// Try again later; the first error seen.
    Retry(i16),
}

/// The error code a marker write answers when it is not possible yet.
pub const MARKER_NOT_WRITABLE: i16 = error_code::NOT_LEADER_OR_FOLLOWER;
