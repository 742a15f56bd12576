//! The group coordinator: Kafka's classic consumer group protocol (JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup), committed offsets, and their persistence in `__consumer_offsets`.
//!
//! This broker is the coordinator of every group. A group lives in the partition
//! `abs(groupId.hashCode()) % partitions` of `__consumer_offsets` (Java's `String.hashCode`
//! and `Utils.abs`), which is created through the controller on first use (internal,
//! `offsets.topic.num.partitions` partitions, `cleanup.policy=compact`).
//!
//! * [`group::ClassicGroup`]: one group's state machine, members and offsets, behind its
//!   own async lock (held across the write of the group's records, so a group's writes are
//!   applied in log order; groups never wait on each other).
//! * JoinGroup and SyncGroup wait on oneshot channels until the rebalance completes; the
//!   timers (initial rebalance delay, rebalance timeout, session timeouts, sync timeout)
//!   are tokio tasks that lock the group when they fire, each checking a token so that a
//!   rescheduled or cancelled timer does nothing.
//! * [`records`]: Kafka's record formats; on start-up every partition of
//!   `__consumer_offsets` is replayed (last value per key wins, null deletes), and the
//!   loaded members get their session timers again, as Kafka's `onLoaded` does.
//! * OffsetDelete removes committed offsets with tombstones, except those of topics an
//!   active consumer group subscribes to (Kafka's `OffsetMetadataManager.deleteOffsets`).
//! * Committed offsets expire as Kafka's `offsets.retention.minutes` rules say, checked
//!   every `offsets.retention.check.interval.ms`; empty groups without offsets are then
//!   deleted.

pub mod consumer;
pub mod errors;
pub mod group;
pub mod records;
pub mod txn_offsets;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use bytes::Bytes;
use gregor_protocol::messages::join_group_response::JoinGroupResponse;
use gregor_protocol::messages::sync_group_response::SyncGroupResponse;
use tokio::sync::oneshot;

use self::group::{
    ClassicGroup, GroupConfig, GroupDescription, GroupState, JoinRequest, LeftMember,
    OffsetAndMetadata, Record, ScheduledTimer, SyncOutcome, SyncRequest, TimerAction, TimerKey,
    join_error, now_ms, sync_error,
};
use crate::broker::Broker;
use crate::cluster::controller::NewTopic;
use crate::config::Config;
use crate::storage::validate_records;
use gregor_protocol::error_code;
use gregor_protocol::error_code::*;

pub use self::group::Protocol;

/// The internal topic holding committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// The group type ListGroups v5+ reports for classic groups.
pub const CLASSIC_GROUP_TYPE: &str = "classic";

/// Java's `String.hashCode` (over UTF-16 code units, wrapping).
pub fn java_string_hash(text: &str) -> i32 {
    text.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The `__consumer_offsets` partition of `group_id`: `Utils.abs(hashCode) % partitions`.
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    let hash = java_string_hash(group_id);
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions.max(1)
}

/// How Kafka shows a client's address (`InetAddress.toString()` of an address without a
/// host name): `/127.0.0.1`, `/0:0:0:0:0:0:0:1`.
pub fn client_host(peer: &SocketAddr) -> String {
    match peer.ip() {
        IpAddr::V4(ip) => format!("/{ip}"),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => format!("/{v4}"),
            None => {
                let groups: Vec<String> = ip.segments().iter().map(|s| format!("{s:x}")).collect();
                format!("/{}", groups.join(":"))
            }
        },
    }
}

/// The coordinator's settings, from the broker configuration.
#[derive(Clone, Debug)]
struct Settings {
    num_partitions: i32,
    replication_factor: i16,
    segment_bytes: i32,
    min_session_timeout_ms: i32,
    max_session_timeout_ms: i32,
    offset_metadata_max_bytes: i32,
    retention_ms: i64,
    retention_check_interval_ms: i64,
}

/// One group and its lock.
#[derive(Debug)]
struct GroupCell {
    state: tokio::sync::Mutex<ClassicGroup>,
}

/// A JoinGroup as the handler passes it on.
#[derive(Clone, Debug)]
pub struct JoinParams {
    /// Group id.
    pub group_id: String,
    /// Member id ("" for a new member).
    pub member_id: String,
    /// `group.instance.id`.
    pub group_instance_id: Option<String>,
    /// Client id (request header).
    pub client_id: String,
    /// Client host (`/address`).
    pub client_host: String,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// Protocol type.
    pub protocol_type: String,
    /// Protocols.
    pub protocols: Vec<Protocol>,
    /// Request version.
    pub version: i16,
    /// Reason (v8+).
    pub reason: Option<String>,
}

/// A SyncGroup as the handler passes it on.
#[derive(Clone, Debug)]
pub struct SyncParams {
    /// Group id.
    pub group_id: String,
    /// Generation.
    pub generation_id: i32,
    /// Member id.
    pub member_id: String,
    /// `group.instance.id`.
    pub group_instance_id: Option<String>,
    /// Protocol type (v5+).
    pub protocol_type: Option<String>,
    /// Protocol name (v5+).
    pub protocol_name: Option<String>,
    /// The leader's assignments.
    pub assignments: Vec<(String, Bytes)>,
}

/// One partition of an OffsetCommit.
#[derive(Clone, Debug)]
pub struct CommitPartition {
    /// Partition index.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Leader epoch (-1 for none).
    pub leader_epoch: i32,
    /// Metadata (null allowed).
    pub metadata: Option<String>,
    /// The commit time to store (OffsetCommit v1 only), -1 for the broker's clock
    /// (Kafka's `OffsetAndMetadata.fromRequest`).
    pub commit_timestamp_ms: i64,
}

/// An offset a commit stores: topic, partition and the offset.
type CommittedOffset = (String, i32, OffsetAndMetadata);

/// The offsets a commit (OffsetCommit or TxnOffsetCommit) stores, and each partition's
/// error: OFFSET_METADATA_TOO_LARGE for metadata longer than `offset.metadata.max.bytes`
/// (counted in UTF-16 units, as Java's `String.length`), which is then not stored.
fn offsets_to_commit(
    topics: &[(String, Vec<CommitPartition>)],
    max_metadata: i32,
    now_ms: i64,
    expire_timestamp_ms: Option<i64>,
) -> (Vec<Vec<i16>>, Vec<CommittedOffset>) {
    let mut offsets = Vec::new();
    let mut codes = Vec::with_capacity(topics.len());
    for (topic, partitions) in topics {
        let mut topic_codes = Vec::with_capacity(partitions.len());
        for p in partitions {
            let too_large = p.metadata.as_deref().is_some_and(|m| {
                i64::try_from(m.encode_utf16().count()).unwrap_or(i64::MAX)
                    > i64::from(max_metadata)
            });
            if too_large {
                topic_codes.push(OFFSET_METADATA_TOO_LARGE);
                continue;
            }
            topic_codes.push(error_code::NONE);
            offsets.push((
                topic.clone(),
                p.partition,
                OffsetAndMetadata {
                    committed_offset: p.offset,
                    leader_epoch: Some(p.leader_epoch).filter(|e| *e >= 0),
                    metadata: p.metadata.clone().unwrap_or_default(),
                    commit_timestamp_ms: if p.commit_timestamp_ms == -1 {
                        now_ms
                    } else {
                        p.commit_timestamp_ms
                    },
                    expire_timestamp_ms,
                },
            ));
        }
        codes.push(topic_codes);
    }
    (codes, offsets)
}

/// An OffsetCommit as the handler passes it on (topics resolved to names and checked).
#[derive(Clone, Debug)]
pub struct CommitParams {
    /// Group id.
    pub group_id: String,
    /// Generation, -1 without group management.
    pub generation_id: i32,
    /// Member id.
    pub member_id: String,
    /// `group.instance.id`.
    pub group_instance_id: Option<String>,
    /// Retention time (v2-v4), -1 for the broker's.
    pub retention_time_ms: i64,
    /// Request version.
    pub version: i16,
    /// Topics and their partitions.
    pub topics: Vec<(String, Vec<CommitPartition>)>,
}

/// One partition of an OffsetFetch answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedOffset {
    /// Partition index.
    pub partition: i32,
    /// Offset, -1 if none.
    pub offset: i64,
    /// Leader epoch, -1 if none.
    pub leader_epoch: i32,
    /// Metadata ("" if none).
    pub metadata: String,
    /// Error.
    pub error_code: i16,
}

/// A group in ListGroups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedGroup {
    /// Group id.
    pub group_id: String,
    /// Protocol type ("" for simple groups).
    pub protocol_type: String,
    /// State name.
    pub state: &'static str,
    /// Group type (ListGroups v5+): "classic" or "consumer".
    pub group_type: &'static str,
}

/// The group coordinator (see the module docs).
#[derive(Debug)]
pub struct GroupCoordinator {
    config: GroupConfig,
    settings: Settings,
    groups: Mutex<HashMap<String, Arc<GroupCell>>>,
    broker: OnceLock<Weak<Broker>>,
    topic_creation: tokio::sync::Mutex<()>,
    /// Transactional offsets waiting for their transaction's marker.
    txn_offsets: txn_offsets::PendingTxnOffsets,
    /// Consumer-group (KIP-848) settings.
    consumer: consumer::ConsumerSettings,
    /// The `__consumer_offsets` partitions coordinated here (all on a single node).
    owned: crate::cluster::coordinator_partitions::CoordinatorPartitions,
}

impl GroupCoordinator {
    /// A coordinator without groups, configured from `config`.
    pub fn new(config: &Config) -> GroupCoordinator {
        GroupCoordinator {
            config: GroupConfig {
                initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
                max_size: usize::try_from(config.group_max_size).unwrap_or(usize::MAX),
                new_member_join_timeout_ms: group::NEW_MEMBER_JOIN_TIMEOUT_MS,
            },
            settings: Settings {
                num_partitions: config.offsets_topic_num_partitions,
                replication_factor: config.offsets_topic_replication_factor,
                segment_bytes: config.offsets_topic_segment_bytes,
                min_session_timeout_ms: config.group_min_session_timeout_ms,
                max_session_timeout_ms: config.group_max_session_timeout_ms,
                offset_metadata_max_bytes: config.offset_metadata_max_bytes,
                retention_ms: i64::from(config.offsets_retention_minutes) * 60_000,
                retention_check_interval_ms: config.offsets_retention_check_interval_ms,
            },
            groups: Mutex::new(HashMap::new()),
            broker: OnceLock::new(),
            topic_creation: tokio::sync::Mutex::new(()),
            txn_offsets: txn_offsets::PendingTxnOffsets::default(),
            consumer: consumer::ConsumerSettings {
                session_timeout_ms: config.group_consumer_session_timeout_ms,
                heartbeat_interval_ms: config.group_consumer_heartbeat_interval_ms,
                max_size: usize::try_from(config.group_consumer_max_size).unwrap_or(usize::MAX),
                assignors: config.group_consumer_assignors.clone(),
                migration: consumer::migration::MigrationPolicy::parse(
                    &config.group_consumer_migration_policy,
                ),
                classic_max_size: usize::try_from(config.group_max_size).unwrap_or(usize::MAX),
            },
            owned: crate::cluster::coordinator_partitions::CoordinatorPartitions::all(),
        }
    }

    /// Loads the groups from `__consumer_offsets` (blocking file I/O), starts the loaded
    /// members' session timers and the offset expiration task. Called once by
    /// [`Broker::open`], inside the tokio runtime (without one, no timers run). In cluster
    /// mode nothing is loaded here: the metadata publisher loads each partition this
    /// broker comes to lead ([`Self::on_election`]).
    pub fn start(&self, broker: &Arc<Broker>) {
        let _ = self.broker.set(Arc::downgrade(broker));
        if broker.config.is_cluster() {
            self.coordinate_elected_only();
        } else {
            let replay = load(broker, None);
            self.install_replay(replay);
        }
        self.spawn_expiration();
        self.spawn_topic_watch(broker);
    }

    /// Kafka's `GroupCoordinator.onElection`: this broker now leads partition `partition`
    /// of `__consumer_offsets` in `leader_epoch`; unless it already coordinated it, its
    /// groups and offsets are replayed from the log (blocking file I/O; call inside the
    /// tokio runtime) and served from now on.
    pub fn on_election(&self, partition: i32, leader_epoch: i32) {
        if !self.owned.elect(partition, leader_epoch) {
            return;
        }
        let Some(broker) = self.broker() else {
            return;
        };
        let replay = load(&broker, Some(partition));
        tracing::info!(
            partition,
            leader_epoch,
            "coordinating the groups of {OFFSETS_TOPIC}-{partition} ({} loaded)",
            replay.groups.len()
        );
        self.install_replay(replay);
    }

    /// Kafka's `GroupCoordinator.onResignation`: this broker no longer leads partition
    /// `partition` (`leader_epoch`: the epoch it resigns in, when known); its groups are
    /// dropped from memory (their timers end, waiting joins fail) and requests for them
    /// are answered `NOT_COORDINATOR` from now on.
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
            "no longer coordinating the groups of {OFFSETS_TOPIC}-{partition} ({} unloaded)",
            before - map.len()
        );
    }

    /// From now on this broker coordinates only the partitions it is elected for
    /// ([`Self::on_election`]): a broker whose state follows the metadata publisher.
    pub fn coordinate_elected_only(&self) {
        self.owned.only_elected();
    }

    /// `NOT_COORDINATOR` when `group_id`'s partition is not coordinated by this broker.
    pub fn coordinator_error(&self, group_id: &str) -> Option<i16> {
        (!self.owned.owns(self.partition_of(group_id))).then_some(NOT_COORDINATOR)
    }

    /// Puts the replayed groups in place (as Kafka's `onLoaded`: session timers again).
    fn install_replay(&self, replay: records::Replay) {
        if replay.records > 0 || replay.skipped > 0 {
            tracing::info!(
                "loaded {} groups from {} records of {OFFSETS_TOPIC} ({} skipped)",
                replay.groups.len(),
                replay.records,
                replay.skipped
            );
        }
        for ((group, producer_id), offsets) in replay.pending_txn_offsets {
            self.txn_offsets.add(&group, producer_id, offsets);
        }
        for (id, mut group) in replay.groups {
            group.schedule_loaded_heartbeats(&self.config);
            let cell = Arc::new(GroupCell {
                state: tokio::sync::Mutex::new(group),
            });
            if let Ok(mut group) = cell.state.try_lock() {
                self.start_loaded_consumer_group(&cell, &mut group);
                let effects = group.take_effects();
                self.spawn_timers(&cell, &mut group, effects.timers);
                if !effects.records.is_empty() {
                    tracing::warn!(group = %id, "records of a freshly loaded group not written");
                }
            }
            self.map().insert(id, cell);
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<GroupCell>>> {
        self.groups.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn broker(&self) -> Option<Arc<Broker>> {
        self.broker.get()?.upgrade()
    }

    fn get(&self, group_id: &str) -> Option<Arc<GroupCell>> {
        self.map().get(group_id).cloned()
    }

    fn get_or_create(&self, group_id: &str) -> (Arc<GroupCell>, bool) {
        let mut map = self.map();
        if let Some(cell) = map.get(group_id) {
            return (cell.clone(), false);
        }
        let cell = Arc::new(GroupCell {
            state: tokio::sync::Mutex::new(ClassicGroup::new(group_id)),
        });
        map.insert(group_id.to_string(), cell.clone());
        (cell, true)
    }

    fn remove_if_same(&self, group_id: &str, cell: &Arc<GroupCell>) {
        let mut map = self.map();
        if map.get(group_id).is_some_and(|c| Arc::ptr_eq(c, cell)) {
            map.remove(group_id);
        }
    }

    /// The partition count of `__consumer_offsets`: the topic's if it exists, else
    /// `offsets.topic.num.partitions`.
    pub fn partition_count(&self) -> i32 {
        self.broker()
            .and_then(|b| {
                b.image()
                    .topic(OFFSETS_TOPIC)
                    .map(|t| t.partitions.len() as i32)
            })
            .unwrap_or(self.settings.num_partitions)
    }

    /// The `__consumer_offsets` partition of `group_id`.
    pub fn partition_of(&self, group_id: &str) -> i32 {
        partition_for(group_id, self.partition_count())
    }

    /// Creates `__consumer_offsets` through the controller unless it exists; an error is
    /// `COORDINATOR_NOT_AVAILABLE` (for example a replication factor above the broker
    /// count, as Kafka's auto-creation would fail).
    pub async fn ensure_offsets_topic(&self) -> Result<(), i16> {
        let broker = self.broker().ok_or(COORDINATOR_NOT_AVAILABLE)?;
        let topic = NewTopic::new(
            OFFSETS_TOPIC,
            self.settings.num_partitions,
            self.settings.replication_factor,
        )
        .with_config("cleanup.policy", "compact")
        .with_config("compression.type", "producer")
        .with_config("segment.bytes", self.settings.segment_bytes.to_string());
        broker
            .ensure_internal_topic(
                &self.topic_creation,
                topic,
                "offsets.topic.replication.factor",
            )
            .await
    }

    /// Appends `records` of `group_id` to its partition as one batch. The error is the
    /// write's error code (mapped by the caller as Kafka maps append errors).
    async fn append(&self, group_id: &str, records: &[Record]) -> Result<(), i16> {
        let broker = self
            .broker()
            .ok_or(error_code::UNKNOWN_TOPIC_OR_PARTITION)?;
        self.ensure_offsets_topic()
            .await
            .map_err(|_| error_code::UNKNOWN_TOPIC_OR_PARTITION)?;
        let (log, partition, leader_epoch) =
            broker.coordinator_partition(OFFSETS_TOPIC, group_id)?;
        use crate::cluster::coordinator_partitions as replicated;
        replicated::check_write(&broker.replicas, OFFSETS_TOPIC, partition)?;
        let now = now_ms();
        let batch = records::build_batch(group_id, records, now).map_err(|err| {
            tracing::error!(group = %group_id, "cannot encode the group's records: {err}");
            error_code::UNKNOWN_SERVER_ERROR
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
        let end = task
            .await
            .unwrap_or(Err(error_code::UNKNOWN_SERVER_ERROR))?;
        replicated::wait_replicated(
            &broker.replicas,
            OFFSETS_TOPIC,
            partition,
            end,
            replicated::OFFSETS_WRITE_TIMEOUT,
        )
        .await
    }

    /// Carries out the effects an operation left in `group` (timers, records, and what
    /// waits for the records) while the caller holds the group's lock. Returns the outcome
    /// of the operation's own write, if it wrote.
    async fn finish(
        &self,
        cell: &Arc<GroupCell>,
        group: &mut ClassicGroup,
    ) -> Option<Result<(), i16>> {
        let mut first = None;
        for _round in 0..32 {
            let effects = group.take_effects();
            self.spawn_timers(cell, group, effects.timers);
            if effects.records.is_empty() {
                return first;
            }
            let result = self.append(group.group_id(), &effects.records).await;
            if first.is_none() {
                first = Some(result);
            }
            match effects.after_append {
                Some(continuation) => group.after_append(&self.config, continuation, result),
                None => {
                    if let Err(code) = result {
                        tracing::warn!(
                            group = %group.group_id(),
                            "failed to write the group's metadata: error {code}"
                        );
                    }
                }
            }
        }
        let effects = group.take_effects();
        self.spawn_timers(cell, group, effects.timers);
        first
    }

    fn spawn_timers(
        &self,
        cell: &Arc<GroupCell>,
        group: &mut ClassicGroup,
        timers: Vec<ScheduledTimer>,
    ) {
        if timers.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Some(broker) = self.broker.get().cloned() else {
            return;
        };
        for timer in timers {
            let key = timer.key.clone();
            let token = timer.token;
            let broker = broker.clone();
            let cell = Arc::downgrade(cell);
            let task = runtime.spawn(async move {
                tokio::time::sleep(Duration::from_millis(timer.delay_ms)).await;
                let (Some(broker), Some(cell)) = (broker.upgrade(), cell.upgrade()) else {
                    return;
                };
                broker
                    .groups
                    .fire(&cell, timer.key, timer.token, timer.action)
                    .await;
            });
            group.set_timer_task(&key, token, task.abort_handle());
        }
    }

    async fn fire(&self, cell: &Arc<GroupCell>, key: TimerKey, token: u64, action: TimerAction) {
        let mut group = cell.state.lock().await;
        if !group.claim_timer(&key, token) {
            return;
        }
        group.on_timer(&self.config, action);
        self.finish(cell, &mut group).await;
    }

    fn spawn_expiration(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Some(broker) = self.broker.get().cloned() else {
            return;
        };
        let interval =
            Duration::from_millis(self.settings.retention_check_interval_ms.max(1) as u64);
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(broker) = broker.upgrade() else {
                    return;
                };
                broker.groups.expire_offsets().await;
            }
        });
    }

    /// Watches the metadata image for deleted topics (every second, when the image
    /// changed) and deletes their committed offsets, as Kafka's coordinator does on a
    /// metadata update. A topic deleted and created again gets new offsets too.
    fn spawn_topic_watch(&self, broker: &Arc<Broker>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak = Arc::downgrade(broker);
        let mut last = broker.image();
        let mut known: HashMap<String, gregor_protocol::Uuid> =
            last.topics().map(|t| (t.name.clone(), t.id)).collect();
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let Some(broker) = weak.upgrade() else {
                    return;
                };
                let image = broker.image();
                if Arc::ptr_eq(&image, &last) {
                    continue;
                }
                let current: HashMap<String, gregor_protocol::Uuid> =
                    image.topics().map(|t| (t.name.clone(), t.id)).collect();
                let deleted: Vec<String> = known
                    .iter()
                    .filter(|(name, id)| current.get(*name) != Some(*id))
                    .map(|(name, _)| name.clone())
                    .collect();
                known = current;
                last = image;
                if !deleted.is_empty() {
                    broker.groups.on_topics_deleted(&deleted).await;
                }
            }
        });
    }

    /// Deletes the committed offsets of `topics` in every group.
    pub async fn on_topics_deleted(&self, topics: &[String]) {
        let cells: Vec<Arc<GroupCell>> = self.map().values().cloned().collect();
        for cell in cells {
            let mut group = cell.state.lock().await;
            if group.state() != GroupState::Dead && group.delete_topic_offsets(topics) {
                tracing::info!(
                    group = %group.group_id(),
                    "deleting the offsets of deleted topics {topics:?}"
                );
                self.finish(&cell, &mut group).await;
            }
        }
    }

    /// Expires committed offsets and deletes empty groups left without offsets (Kafka's
    /// `cleanupGroupMetadata`).
    pub async fn expire_offsets(&self) {
        let cells: Vec<(String, Arc<GroupCell>)> = self
            .map()
            .iter()
            .map(|(id, cell)| (id.clone(), cell.clone()))
            .collect();
        let now = now_ms();
        for (id, cell) in cells {
            let mut group = cell.state.lock().await;
            if group.state() == GroupState::Dead {
                continue;
            }
            let all_expired = group.expire_offsets(now, self.settings.retention_ms);
            if !(all_expired && group.is_empty()) {
                self.finish(&cell, &mut group).await;
                continue;
            }
            let mut effects = group.take_effects();
            effects.records.push(Record::GroupTombstone);
            match self.append(&id, &effects.records).await {
                Ok(()) => {
                    tracing::info!(group = %id, "deleted the empty group without offsets");
                    group.mark_dead();
                    self.remove_if_same(&id, &cell);
                }
                Err(code) => {
                    tracing::warn!(group = %id, "cannot delete the expired group: error {code}")
                }
            }
        }
    }

    // ----- the APIs -----

    /// JoinGroup: waits until the member's join completes (or fails).
    pub async fn join_group(&self, params: JoinParams) -> JoinGroupResponse {
        if params.group_id.is_empty() {
            return join_error(&params.member_id, INVALID_GROUP_ID);
        }
        if let Some(code) = self.coordinator_error(&params.group_id) {
            return join_error(&params.member_id, code);
        }
        if params.session_timeout_ms < self.settings.min_session_timeout_ms
            || params.session_timeout_ms > self.settings.max_session_timeout_ms
        {
            return join_error(&params.member_id, INVALID_SESSION_TIMEOUT);
        }
        let (cell, created) = if params.member_id.is_empty() {
            self.get_or_create(&params.group_id)
        } else {
            match self.get(&params.group_id) {
                Some(cell) => (cell, false),
                None => return join_error(&params.member_id, UNKNOWN_MEMBER_ID),
            }
        };
        let (tx, rx) = oneshot::channel();
        let member_id = params.member_id.clone();
        {
            let mut group = cell.state.lock().await;
            if consumer::classic_api::is_live_consumer_group(&group) {
                return self
                    .classic_join_to_consumer(&cell, &mut group, params)
                    .await;
            }
            if let Err(code) = self.give_way_to_classic(&mut group).await {
                return join_error(&member_id, code);
            }
            group.join(
                &self.config,
                JoinRequest {
                    member_id: params.member_id,
                    group_instance_id: params.group_instance_id,
                    client_id: params.client_id,
                    client_host: params.client_host,
                    session_timeout_ms: params.session_timeout_ms,
                    rebalance_timeout_ms: params.rebalance_timeout_ms,
                    protocol_type: params.protocol_type,
                    protocols: params.protocols,
                    version: params.version,
                    reason: params.reason,
                },
                tx,
            );
            if created {
                group.write_new_group_record();
            }
            self.finish(&cell, &mut group).await;
        }
        rx.await
            .unwrap_or_else(|_| join_error(&member_id, UNKNOWN_MEMBER_ID))
    }

    /// SyncGroup: waits for the leader's assignment when the group is completing a
    /// rebalance.
    pub async fn sync_group(&self, params: SyncParams) -> SyncGroupResponse {
        if params.group_id.is_empty() {
            return sync_error(INVALID_GROUP_ID);
        }
        if let Some(code) = self.coordinator_error(&params.group_id) {
            return sync_error(code);
        }
        let Some(cell) = self.get(&params.group_id) else {
            return sync_error(UNKNOWN_MEMBER_ID);
        };
        let outcome = {
            let mut group = cell.state.lock().await;
            if consumer::classic_api::is_live_consumer_group(&group) {
                return self.classic_sync_to_consumer(&cell, &mut group, params);
            }
            if group.is_empty() {
                return sync_error(UNKNOWN_MEMBER_ID);
            }
            let outcome = group.sync(SyncRequest {
                generation_id: params.generation_id,
                member_id: params.member_id,
                group_instance_id: params.group_instance_id,
                protocol_type: params.protocol_type,
                protocol_name: params.protocol_name,
                assignments: params.assignments,
            });
            self.finish(&cell, &mut group).await;
            outcome
        };
        match outcome {
            SyncOutcome::Done(response) => response,
            SyncOutcome::Wait(rx) => rx.await.unwrap_or_else(|_| sync_error(UNKNOWN_MEMBER_ID)),
        }
    }

    /// Heartbeat: its error code.
    pub async fn heartbeat(
        &self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> i16 {
        if group_id.is_empty() {
            return INVALID_GROUP_ID;
        }
        if let Some(code) = self.coordinator_error(group_id) {
            return code;
        }
        let Some(cell) = self.get(group_id) else {
            return UNKNOWN_MEMBER_ID;
        };
        let mut group = cell.state.lock().await;
        if consumer::classic_api::is_live_consumer_group(&group) {
            return self.classic_heartbeat_to_consumer(
                &cell,
                &mut group,
                member_id,
                group_instance_id,
                generation_id,
            );
        }
        let code = group.heartbeat(member_id, group_instance_id, generation_id);
        self.finish(&cell, &mut group).await;
        code
    }

    /// LeaveGroup of `(member id, group instance id, reason)`s: the group-level error and
    /// each member's.
    pub async fn leave_group(
        &self,
        group_id: &str,
        members: Vec<(String, Option<String>, Option<String>)>,
    ) -> (i16, Vec<LeftMember>) {
        if group_id.is_empty() {
            return (INVALID_GROUP_ID, Vec::new());
        }
        if let Some(code) = self.coordinator_error(group_id) {
            return (code, Vec::new());
        }
        let Some(cell) = self.get(group_id) else {
            let responses = members
                .into_iter()
                .map(|(member_id, group_instance_id, _)| LeftMember {
                    member_id,
                    group_instance_id,
                    error_code: UNKNOWN_MEMBER_ID,
                })
                .collect();
            return (error_code::NONE, responses);
        };
        let mut group = cell.state.lock().await;
        if consumer::classic_api::is_live_consumer_group(&group) {
            return self
                .classic_leave_to_consumer(&cell, &mut group, members)
                .await;
        }
        let outcome = group.leave(&self.config, members);
        self.finish(&cell, &mut group).await;
        outcome
    }

    /// OffsetCommit: the error of every partition, in the order of `params.topics`.
    pub async fn commit_offsets(&self, params: CommitParams) -> Vec<Vec<i16>> {
        let all = |code: i16| -> Vec<Vec<i16>> {
            params
                .topics
                .iter()
                .map(|(_, partitions)| vec![code; partitions.len()])
                .collect()
        };
        if params.group_id.is_empty() {
            return all(INVALID_GROUP_ID);
        }
        if let Some(code) = self.coordinator_error(&params.group_id) {
            return all(code);
        }
        let cell = match self.get(&params.group_id) {
            Some(cell) => cell,
            None if params.generation_id < 0 => {
                tracing::info!(
                    group = %params.group_id,
                    "creating a simple consumer group via a manual offset commit"
                );
                self.get_or_create(&params.group_id).0
            }
            None if params.version >= 9 => return all(GROUP_ID_NOT_FOUND),
            None => return all(ILLEGAL_GENERATION),
        };
        let mut group = cell.state.lock().await;
        let valid = match group.consumer.as_deref() {
            // A consumer group (KIP-848): member epochs (Kafka's ConsumerGroup.validateOffsetCommit).
            Some(consumer) => consumer.validate_offset_commit(
                &params.member_id,
                params.generation_id,
                params.version,
            ),
            None => group.validate_offset_commit(
                &params.member_id,
                params.group_instance_id.as_deref(),
                params.generation_id,
            ),
        };
        if let Err(code) = valid {
            return all(code);
        }
        group.on_offset_commit(&params.member_id);
        let now = now_ms();
        let expire = (params.retention_time_ms != -1).then(|| now + params.retention_time_ms);
        let (mut codes, offsets) = offsets_to_commit(
            &params.topics,
            self.settings.offset_metadata_max_bytes,
            now,
            expire,
        );
        group.commit(offsets);
        if let Some(Err(code)) = self.finish(&cell, &mut group).await {
            let error = group::offset_commit_append_error(code);
            for code in codes.iter_mut().flatten() {
                if *code == error_code::NONE {
                    *code = error;
                }
            }
        }
        codes
    }

    /// OffsetFetch of one group: the requested partitions (`None`: every committed one),
    /// -1 where nothing is committed.
    pub async fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<&[(String, Vec<i32>)]>,
    ) -> Vec<(String, Vec<FetchedOffset>)> {
        let missing = |partition: i32| FetchedOffset {
            partition,
            offset: -1,
            leader_epoch: -1,
            metadata: String::new(),
            error_code: error_code::NONE,
        };
        let found = |partition: i32, o: &OffsetAndMetadata| FetchedOffset {
            partition,
            offset: o.committed_offset,
            leader_epoch: o.leader_epoch.unwrap_or(-1),
            metadata: o.metadata.clone(),
            error_code: error_code::NONE,
        };
        let cell = self.get(group_id);
        let group = match &cell {
            Some(cell) => Some(cell.state.lock().await),
            None => None,
        };
        let group = group.filter(|g| g.state() != GroupState::Dead);
        match topics {
            Some(topics) => topics
                .iter()
                .map(|(topic, partitions)| {
                    let answers = partitions
                        .iter()
                        .map(|&p| match group.as_ref().and_then(|g| g.offset(topic, p)) {
                            Some(o) => found(p, o),
                            None => missing(p),
                        })
                        .collect();
                    (topic.clone(), answers)
                })
                .collect(),
            None => match group {
                None => Vec::new(),
                Some(group) => group
                    .offsets
                    .iter()
                    .map(|(topic, partitions)| {
                        (
                            topic.clone(),
                            partitions.iter().map(|(p, o)| found(*p, o)).collect(),
                        )
                    })
                    .collect(),
            },
        }
    }

    /// ListGroups: the groups in one of `states` (any if empty) of one of `types` (any if
    /// empty), compared without case as Kafka does; sorted by id.
    pub async fn list_groups(&self, states: &[String], types: &[String]) -> Vec<ListedGroup> {
        let states: Vec<String> = states.iter().map(|s| s.to_lowercase()).collect();
        let types: Vec<String> = types.iter().map(|s| s.to_lowercase()).collect();
        let wanted = |t: &str| types.is_empty() || types.iter().any(|w| w == t);
        let mut cells: Vec<(String, Arc<GroupCell>)> = self
            .map()
            .iter()
            .map(|(id, cell)| (id.clone(), cell.clone()))
            .collect();
        cells.sort_by(|a, b| a.0.cmp(&b.0));
        let mut listed = Vec::new();
        for (id, cell) in cells {
            let group = cell.state.lock().await;
            if let Some(consumer) = group.consumer.as_deref() {
                let state = consumer::state_name(consumer);
                if wanted(consumer::CONSUMER_GROUP_TYPE)
                    && (states.is_empty() || states.contains(&state.to_lowercase()))
                {
                    listed.push(ListedGroup {
                        group_id: id,
                        protocol_type: group::CONSUMER_PROTOCOL_TYPE.to_string(),
                        state,
                        group_type: consumer::CONSUMER_GROUP_TYPE,
                    });
                }
                continue;
            }
            if !wanted(CLASSIC_GROUP_TYPE) {
                continue;
            }
            let state = group.state();
            if state == GroupState::Dead {
                continue;
            }
            if !states.is_empty() && !states.contains(&state.name().to_lowercase()) {
                continue;
            }
            listed.push(ListedGroup {
                group_id: id,
                protocol_type: group.protocol_type().unwrap_or("").to_string(),
                state: state.name(),
                group_type: CLASSIC_GROUP_TYPE,
            });
        }
        listed
    }

    /// DescribeGroups of one group; `None` if it does not exist.
    pub async fn describe_group(&self, group_id: &str) -> Option<GroupDescription> {
        let cell = self.get(group_id)?;
        let group = cell.state.lock().await;
        // A consumer group is not a classic group: Kafka's describeGroups answers as for
        // an unknown group.
        (group.state() != GroupState::Dead && group.consumer.is_none()).then(|| group.describe())
    }

    /// OffsetDelete of one group (Kafka's `OffsetMetadataManager.deleteOffsets`): for each
    /// topic, in order, each partition's error: `GROUP_SUBSCRIBED_TO_TOPIC` for every
    /// partition of a topic the group is subscribed to, else none, the committed offsets
    /// among them deleted with tombstones in `__consumer_offsets`. The error of the whole
    /// request: `INVALID_GROUP_ID` (empty id), `GROUP_ID_NOT_FOUND`, `NON_EMPTY_GROUP` (see
    /// [`ClassicGroup::validate_offset_delete`]) or the failed write's, mapped as Kafka's
    /// `handleOperationException` maps it.
    ///
    /// A group left without offsets or members is not deleted here: Kafka 4's coordinator
    /// leaves that to the periodic clean-up ([`Self::expire_offsets`]), as this does.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        topics: &[(String, Vec<i32>)],
    ) -> Result<Vec<(String, Vec<(i32, i16)>)>, i16> {
        if group_id.is_empty() {
            return Err(INVALID_GROUP_ID);
        }
        if let Some(code) = self.coordinator_error(group_id) {
            return Err(code);
        }
        let cell = self.get(group_id).ok_or(GROUP_ID_NOT_FOUND)?;
        let mut group = cell.state.lock().await;
        group.validate_offset_delete()?;
        let mut results = Vec::with_capacity(topics.len());
        let mut deletions = Vec::new();
        for (topic, partitions) in topics {
            let code = if group.is_subscribed_to_topic(topic) {
                GROUP_SUBSCRIBED_TO_TOPIC
            } else {
                deletions.extend(partitions.iter().map(|p| (topic.clone(), *p)));
                error_code::NONE
            };
            results.push((
                topic.clone(),
                partitions.iter().map(|p| (*p, code)).collect(),
            ));
        }
        if group.delete_offsets(&deletions) {
            if let Some(Err(code)) = self.finish(&cell, &mut group).await {
                return Err(group::group_metadata_append_error(code));
            }
            tracing::info!(group = %group_id, "deleted committed offsets on request");
        }
        Ok(results)
    }

    /// DeleteGroups of one group: its error code.
    pub async fn delete_group(&self, group_id: &str) -> i16 {
        if let Some(code) = self.coordinator_error(group_id) {
            return code;
        }
        let Some(cell) = self.get(group_id) else {
            return GROUP_ID_NOT_FOUND;
        };
        let mut group = cell.state.lock().await;
        if let Err(code) = group.validate_delete() {
            return code;
        }
        let records = group.deletion_records();
        match self.append(group_id, &records).await {
            Ok(()) => {
                tracing::info!(group = %group_id, "deleted the group and {} offsets", records.len() - 1);
                group.mark_dead();
                drop(group);
                self.remove_if_same(group_id, &cell);
                error_code::NONE
            }
            Err(code) => group::group_metadata_append_error(code),
        }
    }
}

/// Replays every partition of `__consumer_offsets`, or only `only` (blocking file I/O).
fn load(broker: &Broker, only: Option<i32>) -> records::Replay {
    let mut replay = records::Replay::default();
    let image = broker.image();
    let Some(topic) = image.topic(OFFSETS_TOPIC) else {
        return replay;
    };
    for partition in topic.partitions.keys() {
        if only.is_some_and(|only| only != *partition) {
            continue;
        }
        let Some(log) = broker.logs.get(OFFSETS_TOPIC, *partition) else {
            continue;
        };
        let mut offset = log.log_start_offset();
        let end = log.log_end_offset();
        while offset < end {
            match log.read(offset, 1 << 20, true) {
                Ok(read) if !read.records.is_empty() => {
                    let next = replay.apply_batches(read.records, offset);
                    if next <= offset {
                        tracing::warn!(
                            "{OFFSETS_TOPIC}-{partition}: no progress replaying at offset {offset}"
                        );
                        break;
                    }
                    offset = next;
                }
                Ok(_) => break,
                Err(err) => {
                    tracing::warn!(
                        "{OFFSETS_TOPIC}-{partition}: replay stopped at {offset}: {err}"
                    );
                    break;
                }
            }
        }
    }
    replay
}
