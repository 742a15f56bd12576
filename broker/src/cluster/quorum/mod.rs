//! The KRaft metadata quorum on [openraft](https://docs.rs/openraft/0.9.25): the controllers
//! replicate `__cluster_metadata-0` with Raft, and everything on disk stays Kafka's.
//!
//! * [`entry`]: one openraft entry = one Kafka record, Raft index = Kafka offset, term =
//!   the batch's partition leader epoch; a new leader's blank entry is Kafka's
//!   `LeaderChangeMessage`, a membership entry a KIP-853 `VotersRecord`, a normal entry one
//!   metadata record. openraft's `single-term-leader` mode is used: one leader per term, as
//!   one leader per Kafka epoch, so a log id is `(epoch, offset)` as in Kafka.
//! * [`log_store`]: the log in `__cluster_metadata-0`'s segments
//!   ([`MetadataLog`](super::metadata_log::MetadataLog) with
//!   appends at the leader's offsets and epochs, truncation of a conflicting suffix, purge
//!   below a snapshot); the vote in Kafka's `quorum-state` file ([`quorum_state`]).
//! * [`state_machine`]: the [`MetadataImage`], with `<end offset>-<epoch>.checkpoint`
//!   snapshots.
//! * [`network`]: controller-to-controller RPCs over TCP, Kafka-framed: Kafka's `Vote` API,
//!   and private AppendEntries and InstallSnapshot carrying Kafka record batches.
//!
//! [`Quorum`] is what the controller uses: [`Quorum::propose`] writes records and returns
//! once they are committed and applied; several records are written as a metadata
//! transaction (KIP-868: `BeginTransactionRecord` ... `EndTransactionRecord`), so that they
//! apply atomically even if they land in several batches or a leader fails half way. A new
//! leader that finds an unfinished transaction (of an old leader, or its own failed
//! proposal) first writes an `AbortTransactionRecord`, as Kafka's `QuorumController` does
//! when it becomes active.
//!
//! # What differs from Kafka's KRaft
//!
//! * Replication is pushed by the leader (Raft's AppendEntries) rather than pulled by
//!   followers with Fetch; brokers that only follow the log will still Fetch it.
//! * The high watermark is not persisted (Kafka does not either): after a restart, entries
//!   past the snapshot are applied again once the leader confirms them committed.
//! * Voter changes (KIP-853, [`voters`]) go through openraft's joint configuration, whose
//!   step is written as the larger voter set, and a new voter is first an openraft learner
//!   pushed to by the leader rather than an observer fetching on its own; a learner's
//!   directory id is taken from the request, not checked against the node.
//! * No pre-vote (KIP-996; openraft 0.9 has none); a Vote response does not carry the
//!   voter's last log id (see [`network`]); a `LeaderChangeMessage` lists only the leader
//!   among the granting voters (openraft does not report who granted).
//! * Snapshots follow openraft's policy (every [`QuorumOptions::snapshot_after_entries`]
//!   entries) rather than `metadata.log.max.record.bytes.between.snapshots`, and the two
//!   newest are kept rather than `metadata.max.retention.*` applying: openraft must decide
//!   what it purges from its log.

pub mod entry;
pub mod fetch_serve;
pub mod log_store;
pub mod network;
pub mod observers;
pub mod quorum_state;
pub mod state_machine;
pub mod voters;

#[cfg(test)]
mod fetch_serve_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use gregor_protocol::messages::abort_transaction_record::AbortTransactionRecord;
use gregor_protocol::messages::begin_transaction_record::BeginTransactionRecord;
use gregor_protocol::messages::end_transaction_record::EndTransactionRecord;
use gregor_protocol::metadata_frame::VersionedRecord;
use gregor_protocol::{MetadataRecord, Uuid};
use openraft::error::{CheckIsLeaderError, ClientWriteError, Fatal, RaftError};
use openraft::metrics::WaitError;
use openraft::{Config, Membership, RaftMetrics, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use entry::{QuorumEntry, QuorumPayload};
pub use network::FrameHandler;
pub use voters::VoterChangeError;

use super::image::MetadataImage;
use super::metadata_log::{ABORT_REASON, MetadataLogError, MetadataLogOptions};
use super::replay::{self, METADATA_PARTITION_DIR, ReplayError};
use log_store::LogStore;
use quorum_state::QuorumStateError;
use state_machine::StateMachine;

/// A node id in openraft (Kafka's `node.id`, which is never negative).
pub type NodeId = u64;

/// The running Raft node.
pub type Raft = openraft::Raft<TypeConfig>;

openraft::declare_raft_types!(
    /// openraft's types for the metadata quorum.
    pub TypeConfig:
        D = VersionedRecord,
        R = Applied,
        NodeId = NodeId,
        Node = VoterNode,
        Entry = QuorumEntry,
        SnapshotData = Cursor<Vec<u8>>,
);

/// A voter: where its controller listener is (the endpoint of its `VotersRecord` entry).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VoterNode {
    /// Its log directory id (nil when unknown: `controller.quorum.voters` does not say).
    pub directory_id: Uuid,
    /// The listener name (`CONTROLLER` by default).
    pub listener: String,
    /// Host of the listener.
    pub host: String,
    /// Port of the listener.
    pub port: u16,
}

impl VoterNode {
    /// A voter reached at `host:port` on the `CONTROLLER` listener.
    pub fn new(host: impl Into<String>, port: u16) -> VoterNode {
        VoterNode {
            directory_id: Uuid::nil(),
            listener: "CONTROLLER".to_string(),
            host: host.into(),
            port,
        }
    }
}

/// What applying one entry gave: the error of a record that did not apply, if any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Why the record could not be applied (the image was left unchanged).
    pub error: Option<String>,
}

/// Settings of the quorum.
#[derive(Clone, Debug)]
pub struct QuorumOptions {
    /// This node's id (`node.id`).
    pub node_id: i32,
    /// The metadata log directory (holding `__cluster_metadata-0`).
    pub log_dir: PathBuf,
    /// The voters (`controller.quorum.voters`).
    pub voters: BTreeMap<i32, VoterNode>,
    /// The cluster id requests carry and check (`meta.properties`), if known.
    pub cluster_id: Option<String>,
    /// This node's log directory id, written as `votedDirectoryId`.
    pub directory_id: Uuid,
    /// The segments' settings; `node_id` there is ignored.
    pub log: MetadataLogOptions,
    /// Election timeout range in ms (Kafka's `controller.quorum.election.timeout.ms` is 1000;
    /// openraft draws a timeout in this range).
    pub election_timeout_ms: (u64, u64),
    /// Heartbeat interval in ms.
    pub heartbeat_interval_ms: u64,
    /// A snapshot after this many entries since the last one (0: never).
    pub snapshot_after_entries: u64,
    /// Entries kept in the log below a snapshot before they may be purged.
    pub entries_kept_after_snapshot: u64,
    /// How to connect (TLS, SASL) to the other voters' controller listener.
    pub connector: crate::security::node_client::NodeConnector,
    /// Where this node's controller listener is (its advertised endpoint); a voter of a
    /// dynamic quorum whose entry in the voter set differs tells the leader
    /// (UpdateRaftVoter). `None`: never.
    pub own_endpoint: Option<VoterNode>,
}

impl QuorumOptions {
    /// Defaults for node `node_id` with `voters`, under `log_dir`.
    pub fn new(node_id: i32, log_dir: PathBuf, voters: BTreeMap<i32, VoterNode>) -> Self {
        QuorumOptions {
            node_id,
            log_dir,
            voters,
            cluster_id: None,
            directory_id: Uuid::nil(),
            log: MetadataLogOptions::new(node_id),
            election_timeout_ms: (1000, 2000),
            heartbeat_interval_ms: 200,
            snapshot_after_entries: 20_000,
            entries_kept_after_snapshot: 1000,
            connector: crate::security::node_client::NodeConnector::plaintext(),
            own_endpoint: None,
        }
    }

    /// The voters of `controller.quorum.voters` entries.
    pub fn voters_from_config(voters: &[crate::config::QuorumVoter]) -> BTreeMap<i32, VoterNode> {
        voters
            .iter()
            .map(|v| (v.id, VoterNode::new(v.host.clone(), v.port)))
            .collect()
    }
}

/// The quorum as DescribeQuorum reports it (see [`Quorum::status`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumStatus {
    /// The leader, if known.
    pub leader: Option<i32>,
    /// The current epoch.
    pub epoch: i32,
    /// One past the last entry applied on this node.
    pub high_watermark: i64,
    /// Each voter with its log end offset, if known.
    pub voters: Vec<(i32, Option<i64>)>,
}

/// Why a quorum operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    /// This node is not the leader; the leader's id if known.
    #[error("this controller is not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader, if known.
        leader: Option<i32>,
    },
    /// The quorum is shutting down (or its Raft core stopped after a fatal error).
    #[error("the metadata quorum is shutting down")]
    ShuttingDown,
    /// The metadata log failed.
    #[error(transparent)]
    Log(#[from] MetadataLogError),
    /// The metadata could not be read at start-up.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// `quorum-state` could not be read.
    #[error(transparent)]
    QuorumState(#[from] QuorumStateError),
    /// Raft storage or another openraft failure.
    #[error("metadata quorum: {0}")]
    Raft(String),
    /// A committed record could not be applied to the image (see [`Applied`]).
    #[error("a committed record at offset {offset} did not apply: {reason}")]
    Apply {
        /// Its offset.
        offset: i64,
        /// Why.
        reason: String,
    },
    /// The options are unusable.
    #[error("invalid quorum settings: {0}")]
    Invalid(String),
}

/// The metadata quorum of this node (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct Quorum {
    inner: Arc<Inner>,
}

struct Inner {
    raft: Raft,
    node_id: NodeId,
    cluster_id: Option<String>,
    state_machine: StateMachine,
    log: LogStore,
    /// Serialises proposals; the term whose leftovers were settled.
    propose: tokio::sync::Mutex<Option<u64>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// The observers this node saw fetch while it led (DescribeQuorum's observers).
    observers: Mutex<observers::Observers>,
    /// Held while a KIP-853 voter change runs (one at a time, as Kafka's leader allows).
    voter_change: tokio::sync::Mutex<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in self.tasks.get_mut().map(std::mem::take).unwrap_or_default() {
            task.abort();
        }
    }
}

/// How long start-up waits for a single voter to elect itself, and settling waits for the
/// leader's first entry to apply.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

impl From<Fatal<NodeId>> for QuorumError {
    fn from(fatal: Fatal<NodeId>) -> Self {
        match fatal {
            Fatal::Stopped => QuorumError::ShuttingDown,
            other => QuorumError::Raft(other.to_string()),
        }
    }
}

impl From<WaitError> for QuorumError {
    fn from(e: WaitError) -> Self {
        match e {
            WaitError::ShuttingDown => QuorumError::ShuttingDown,
            other => QuorumError::Raft(other.to_string()),
        }
    }
}

impl Quorum {
    /// Opens the quorum under `options.log_dir`: reads the metadata (the newest snapshot is
    /// the state machine's start; the log is continued as is), starts the Raft node, and,
    /// for a single voter, waits until it elected itself and applied the log. A node that is
    /// not the only voter serves nothing until [`Quorum::serve`] is given a listener.
    pub async fn open(options: QuorumOptions) -> Result<Quorum, QuorumError> {
        if options.node_id < 0 {
            return Err(QuorumError::Invalid(format!(
                "a negative node id {}",
                options.node_id
            )));
        }
        if options.voters.keys().any(|id| *id < 0) {
            return Err(QuorumError::Invalid("a negative voter id".to_string()));
        }
        let log_dir = options.log_dir.clone();
        let loaded = tokio::task::spawn_blocking(move || replay::load(&log_dir))
            .await
            .map_err(|e| QuorumError::Raft(e.to_string()))??;
        // The voters: KIP-853's from the log (the bootstrap snapshot of `format --standalone`
        // / `--initial-controllers`, later `VotersRecord`s), else `controller.quorum.voters`.
        // A controller formatted with `--no-initial-controllers` knows none yet: it waits
        // to be added by the leader (AddRaftVoter).
        let initial_voters = match &loaded.kraft.voters {
            Some(record) if loaded.kraft.kraft_version >= 1 => entry::membership_of(record),
            _ if !options.voters.is_empty() => {
                if !options.voters.contains_key(&options.node_id) {
                    return Err(QuorumError::Invalid(format!(
                        "node {} is not one of the voters {:?}",
                        options.node_id,
                        options.voters.keys().collect::<Vec<_>>()
                    )));
                }
                Membership::new(
                    vec![
                        options
                            .voters
                            .keys()
                            .map(|id| *id as NodeId)
                            .collect::<BTreeSet<_>>(),
                    ],
                    options
                        .voters
                        .iter()
                        .map(|(id, node)| (*id as NodeId, node.clone()))
                        .collect::<BTreeMap<_, _>>(),
                )
            }
            _ => Membership::default(),
        };
        let voter_ids: Vec<i32> = initial_voters.voter_ids().map(|id| id as i32).collect();
        let dir = options.log_dir.join(METADATA_PARTITION_DIR);
        std::fs::create_dir_all(&dir).map_err(|source| MetadataLogError::Io {
            path: dir.clone(),
            source,
        })?;
        let _ = crate::cluster::snapshot::remove_leftovers(&dir);
        let mut log_options = options.log.clone();
        log_options.node_id = options.node_id;
        let log = LogStore::open(
            &options.log_dir,
            &loaded,
            log_options,
            voter_ids.clone(),
            options.directory_id,
        )?;
        let static_voters = initial_voters;
        let state_machine = StateMachine::open(&dir, loaded.snapshot, static_voters)?;
        let config = Config {
            cluster_name: options
                .cluster_id
                .clone()
                .unwrap_or_else(|| "gregor".to_string()),
            election_timeout_min: options.election_timeout_ms.0,
            election_timeout_max: options.election_timeout_ms.1,
            heartbeat_interval: options.heartbeat_interval_ms,
            install_snapshot_timeout: 30_000,
            snapshot_policy: if options.snapshot_after_entries == 0 {
                SnapshotPolicy::Never
            } else {
                SnapshotPolicy::LogsSinceLast(options.snapshot_after_entries)
            },
            snapshot_max_chunk_size: (network::MAX_FRAME / 4) as u64,
            max_in_snapshot_log_to_keep: options.entries_kept_after_snapshot,
            ..Default::default()
        }
        .validate()
        .map_err(|e| QuorumError::Invalid(e.to_string()))?;
        let node_id = options.node_id as NodeId;
        let network = network::Network {
            cluster_id: options.cluster_id.clone(),
            connector: options.connector.clone(),
        };
        let network_for_updates = network.clone();
        let raft = Raft::new(
            node_id,
            Arc::new(config),
            network,
            log.clone(),
            state_machine.clone(),
        )
        .await?;
        let quorum = Quorum {
            inner: Arc::new(Inner {
                raft,
                node_id,
                cluster_id: options.cluster_id.clone(),
                state_machine,
                log,
                propose: tokio::sync::Mutex::new(None),
                tasks: Mutex::new(Vec::new()),
                observers: Mutex::new(observers::Observers::default()),
                voter_change: tokio::sync::Mutex::new(()),
            }),
        };
        quorum.spawn_leader_watch();
        if let Some(own) = options.own_endpoint.clone() {
            let own = VoterNode {
                directory_id: options.directory_id,
                ..own
            };
            quorum.spawn_endpoint_updates(own, network_for_updates);
        }
        if voter_ids == [options.node_id] {
            // At once rather than after an election timeout; a new epoch at every start,
            // as Kafka's single voter and the single-node appender have.
            quorum.inner.raft.trigger().elect().await?;
            quorum.wait_for_leader(SETTLE_TIMEOUT).await?;
            let term = quorum.inner.raft.metrics().borrow().current_term;
            let mut settled = quorum.inner.propose.lock().await;
            quorum.inner.settle(&mut settled, term).await?;
        }
        Ok(quorum)
    }

    /// Runs a task settling each term this node leads (see the module docs).
    fn spawn_leader_watch(&self) {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let mut metrics = self.inner.raft.metrics();
        let me = self.inner.node_id;
        let task = tokio::spawn(async move {
            loop {
                let (leader, term) = {
                    let m = metrics.borrow_and_update();
                    (m.current_leader, m.current_term)
                };
                if leader == Some(me) {
                    let Some(inner) = weak.upgrade() else { break };
                    let mut settled = inner.propose.lock().await;
                    if let Err(e) = inner.settle(&mut settled, term).await {
                        tracing::debug!(term, "could not settle the new term yet: {e}");
                    }
                }
                if metrics.changed().await.is_err() {
                    break;
                }
            }
        });
        self.push_task(task);
    }

    fn push_task(&self, task: JoinHandle<()>) {
        self.inner
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(task);
    }

    /// Serves the quorum's RPCs on `listener` (until shutdown).
    pub fn serve(&self, listener: TcpListener) {
        let task = tokio::spawn(network::serve(listener, self.handler()));
        self.push_task(task);
    }

    /// The handler of the quorum's RPC frames, for a listener of the broker's.
    pub fn handler(&self) -> Arc<dyn FrameHandler> {
        Arc::new(Handler(Arc::downgrade(&self.inner)))
    }

    /// Writes `records` and returns the offsets of the first and last record written once
    /// they are committed and applied to the image. More than one record is wrapped in a
    /// metadata transaction (the offsets are then those of its begin and end markers),
    /// unless they already start with a `BeginTransactionRecord`. Fails with
    /// [`QuorumError::NotLeader`] on a follower; after any failure some of the records may
    /// still be committed (as after a failed write to Kafka's quorum), but a transaction
    /// left open is aborted before anything else is written.
    pub async fn propose(&self, records: Vec<VersionedRecord>) -> Result<(i64, i64), QuorumError> {
        if records.is_empty() {
            return Err(QuorumError::Invalid("nothing to propose".to_string()));
        }
        let mut settled = self.inner.propose.lock().await;
        let (leader, term) = {
            let m = self.inner.raft.metrics();
            let m = m.borrow();
            (m.current_leader, m.current_term)
        };
        if leader != Some(self.inner.node_id) {
            return Err(QuorumError::NotLeader {
                leader: leader.map(|id| id as i32),
            });
        }
        self.inner.settle(&mut settled, term).await?;
        // A caller's own transaction (the controller's bootstrap writes one) is kept as is.
        let own_transaction = matches!(
            records.first().map(|r| &r.record),
            Some(MetadataRecord::BeginTransaction(_))
        );
        let records = if records.len() > 1 && !own_transaction {
            let mut wrapped = Vec::with_capacity(records.len() + 2);
            wrapped.push(VersionedRecord {
                version: 0,
                record: MetadataRecord::BeginTransaction(BeginTransactionRecord::default()),
            });
            wrapped.extend(records);
            wrapped.push(VersionedRecord {
                version: 0,
                record: MetadataRecord::EndTransaction(EndTransactionRecord::default()),
            });
            wrapped
        } else {
            records
        };
        self.inner.write(records).await
    }

    /// Settles this leader's term now (its first entry applied, an unfinished transaction
    /// aborted), so that [`Self::log_end_offset`] is where the next proposal lands.
    /// [`QuorumError::NotLeader`] on a follower.
    pub async fn settle_leadership(&self) -> Result<(), QuorumError> {
        let mut settled = self.inner.propose.lock().await;
        let (leader, term) = {
            let m = self.inner.raft.metrics();
            let m = m.borrow();
            (m.current_leader, m.current_term)
        };
        if leader != Some(self.inner.node_id) {
            return Err(QuorumError::NotLeader {
                leader: leader.map(|id| id as i32),
            });
        }
        self.inner.settle(&mut settled, term).await
    }

    /// One past the last entry of this node's log (appended, not necessarily committed).
    pub fn log_end_offset(&self) -> i64 {
        self.inner
            .raft
            .metrics()
            .borrow()
            .last_log_index
            .map_or(0, |index| index as i64 + 1)
    }

    /// What DescribeQuorum reports (Kafka's `LeaderState.describeQuorum`): the leader, the
    /// epoch, the high watermark (one past the last entry applied here: on the leader at
    /// most the committed end) and each voter's log end offset as the leader knows it
    /// (openraft's replication metrics: one past the entry it matched; `None` when unknown
    /// or on a follower).
    pub fn status(&self) -> QuorumStatus {
        let metrics = self.inner.raft.metrics();
        let m = metrics.borrow();
        let voters = m
            .membership_config
            .membership()
            .voter_ids()
            .map(|id| {
                let end = if Some(id) == m.current_leader && id == self.inner.node_id {
                    m.last_log_index.map(|i| i as i64 + 1)
                } else {
                    m.replication
                        .as_ref()
                        .and_then(|r| r.get(&id).cloned())
                        .map(|matched| matched.map_or(0, |l| l.index as i64 + 1))
                };
                (id as i32, end)
            })
            .collect();
        QuorumStatus {
            leader: m.current_leader.map(|id| id as i32),
            epoch: m.current_term as i32,
            high_watermark: m.last_applied.map_or(0, |l| l.index as i64 + 1),
            voters,
        }
    }

    /// The image after the last applied entry.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.inner.state_machine.image()
    }

    /// A receiver of the image after each applied change.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.inner.state_machine.subscribe()
    }

    /// The current leader, if known.
    pub fn leader(&self) -> Option<i32> {
        self.inner
            .raft
            .metrics()
            .borrow()
            .current_leader
            .map(|id| id as i32)
    }

    /// The current epoch (Raft term).
    pub fn epoch(&self) -> i32 {
        self.inner.raft.metrics().borrow().current_term as i32
    }

    /// Offset of the last applied entry (-1 for none).
    pub fn applied_offset(&self) -> i64 {
        self.inner
            .state_machine
            .applied()
            .map_or(-1, |id| id.index as i64)
    }

    /// openraft's metrics of this node.
    pub fn metrics(&self) -> watch::Receiver<RaftMetrics<NodeId, VoterNode>> {
        self.inner.raft.metrics()
    }

    /// The leader epochs and their start offsets (`leader-epoch-checkpoint`).
    pub fn epochs(&self) -> Vec<(i32, i64)> {
        self.inner.log.epochs()
    }

    /// The Raft node (for tests and diagnostics).
    pub fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    /// Waits until some node is the leader, up to `timeout`; returns it.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<i32, QuorumError> {
        let metrics = self
            .inner
            .raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader.is_some(), "a leader")
            .await?;
        Ok(metrics.current_leader.unwrap_or_default() as i32)
    }

    /// Stops the Raft node and the tasks serving it.
    pub async fn shutdown(&self) {
        for task in self
            .inner
            .tasks
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default()
        {
            task.abort();
        }
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!("the metadata quorum did not stop cleanly: {e}");
        }
    }
}

impl Inner {
    /// Once per term this node leads: waits until the leader's first entry is applied
    /// (openraft's linearizable read point) and aborts an unfinished transaction.
    async fn settle(&self, settled: &mut Option<u64>, term: u64) -> Result<(), QuorumError> {
        if *settled == Some(term) {
            return Ok(());
        }
        let ready = tokio::time::timeout(SETTLE_TIMEOUT, self.raft.ensure_linearizable()).await;
        match ready {
            Err(_) => return Err(QuorumError::Raft("timed out settling the term".to_string())),
            Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))) => {
                return Err(QuorumError::NotLeader {
                    leader: f.leader_id.map(|id| id as i32),
                });
            }
            Ok(Err(RaftError::APIError(e))) => return Err(QuorumError::Raft(e.to_string())),
            Ok(Err(RaftError::Fatal(f))) => return Err(f.into()),
            Ok(Ok(_)) => {}
        }
        if let Some(begin) = self.state_machine.image().pending_transaction() {
            let abort = VersionedRecord {
                version: 0,
                record: MetadataRecord::AbortTransaction(AbortTransactionRecord {
                    reason: Some(ABORT_REASON.into()),
                    ..Default::default()
                }),
            };
            let (offset, _) = self.write(vec![abort]).await?;
            tracing::warn!(
                begin_offset = begin,
                abort_offset = offset,
                "aborted an unfinished metadata transaction"
            );
        }
        *settled = Some(term);
        Ok(())
    }

    /// Writes `records` in order and waits until all are applied.
    async fn write(&self, records: Vec<VersionedRecord>) -> Result<(i64, i64), QuorumError> {
        let mut receivers = Vec::with_capacity(records.len());
        for record in records {
            receivers.push(self.raft.client_write_ff(record).await?);
        }
        let mut first = None;
        let mut last = -1;
        let mut failure = None;
        for receiver in receivers {
            let response = receiver.await.map_err(|_| QuorumError::ShuttingDown)?;
            match response {
                Ok(response) => {
                    let offset = response.log_id.index as i64;
                    first.get_or_insert(offset);
                    last = offset;
                    if let Some(reason) = response.data.error
                        && failure.is_none()
                    {
                        failure = Some(QuorumError::Apply { offset, reason });
                    }
                }
                Err(ClientWriteError::ForwardToLeader(f)) => {
                    failure.get_or_insert(QuorumError::NotLeader {
                        leader: f.leader_id.map(|id| id as i32),
                    });
                }
                Err(e) => {
                    failure.get_or_insert(QuorumError::Raft(e.to_string()));
                }
            }
        }
        if let Some(failure) = failure {
            return Err(failure);
        }
        Ok((first.unwrap_or(last), last))
    }
}

/// The quorum's [`FrameHandler`]: answers nothing once the quorum is gone.
struct Handler(Weak<Inner>);

impl FrameHandler for Handler {
    fn handle_frame(
        &self,
        frame: Bytes,
    ) -> Pin<Box<dyn std::future::Future<Output = Option<BytesMut>> + Send + '_>> {
        Box::pin(async move {
            let inner = self.0.upgrade()?;
            network::handle_frame(
                &inner.raft,
                inner.node_id,
                inner.cluster_id.as_deref(),
                frame,
            )
            .await
        })
    }
}
