//! openraft's [`RaftLogStorage`] over Kafka's `__cluster_metadata-0`: entries are records
//! of the segments [`MetadataLog`] writes (see [`entry`] for the mapping),
//! the vote is Kafka's `quorum-state` file ([`quorum_state`]).
//!
//! * **append**: the entries are encoded into batches (one per run of one term and kind)
//!   and each is appended at its own offset and epoch and fsynced before openraft is told
//!   the entries are durable; a new epoch is recorded in `leader-epoch-checkpoint`.
//! * **truncate** (a conflicting suffix after a leader change): Kafka's `truncateTo`
//!   ([`MetadataLog::truncate_to`]).
//! * **purge** (below a snapshot): whole segments below the purged index go, as Kafka's
//!   `deleteOldSegments` after moving the log start to the snapshot; the records left in
//!   the first segment below the purged index stay on disk and are never read. A purge past
//!   the end of the log (a follower that installed a snapshot) starts the log over at the
//!   snapshot's end offset (Kafka's `truncateFullyAndStartAt`).
//! * **last purged log id** after a restart: the newest snapshot's last entry (its
//!   `<end offset>-<epoch>` id), since openraft only purges what a snapshot holds and the
//!   state machine restarts from that snapshot.
//! * **vote** after a restart: `quorum-state` (a leader's own leadership read back as a
//!   plain vote for itself: it resigns, as in Kafka), but never below the epoch of the last batch
//!   (a log written by the single-node appender has no `quorum-state`: Kafka, too, derives
//!   the epoch from the log then), so that a new election always starts a higher epoch.
//!
//! The log is behind a mutex shared with the reader openraft hands to replication; file
//! I/O is blocking and short (one fsync per batch), as the single-node appender's.

// openraft's StorageError is what its traits return, large or not.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use gregor_protocol::Uuid;
use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{AnyError, LogId, OptionalSend, StorageError, StorageIOError, Vote};

use super::entry::{self, QuorumEntry, QuorumPayload};
use super::quorum_state::{self, QuorumState};
use super::{NodeId, TypeConfig};
use crate::cluster::metadata_log::{BatchLocation, MetadataLog, MetadataLogOptions};
use crate::cluster::replay::LoadedMetadata;

/// The log storage (cheap to clone: clones share the log).
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<LogInner>>,
}

struct LogInner {
    log: MetadataLog,
    /// Every batch on disk, by base offset.
    batches: BTreeMap<i64, BatchLocation>,
    vote: Option<Vote<NodeId>>,
    purged: Option<LogId<NodeId>>,
    /// The voters named in `LeaderChangeMessage`s: the configured or bootstrap ones, then
    /// those of the last `VotersRecord` appended.
    voters: Vec<i32>,
    directory_id: Uuid,
}

fn write_error(e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::write_logs(AnyError::error(e.to_string())).into()
}

fn read_error(e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::read_logs(AnyError::error(e.to_string())).into()
}

impl LogStore {
    /// Opens the log under `log_dir` that `loaded` was read from (see the module docs).
    /// `voters` are the configured voter ids; `directory_id` this node's log directory id.
    pub fn open(
        log_dir: &Path,
        loaded: &LoadedMetadata,
        options: MetadataLogOptions,
        voters: Vec<i32>,
        directory_id: Uuid,
    ) -> Result<LogStore, super::QuorumError> {
        let log = MetadataLog::open_replica(log_dir, loaded, options)?;
        let batches = log
            .batch_locations()?
            .into_iter()
            .map(|b| (b.base_offset, b))
            .collect();
        let purged = loaded
            .snapshot
            .filter(|id| id.end_offset > 0)
            .map(|id| entry::log_id(id.epoch, id.end_offset - 1));
        let state = quorum_state::read(log.dir())?;
        let me = log.node_id() as NodeId;
        let mut vote = state.map(|s| s.vote);
        // A leader that restarts resigns, as Kafka's `QuorumState.initialize` does: its
        // leadership reads back as a plain vote for itself, and it elects anew.
        if let Some(v) = &mut vote
            && v.committed
            && v.leader_id.voted_for == Some(me)
        {
            v.committed = false;
        }
        let last_epoch = log.epoch().max(loaded.last_epoch).max(0) as u64;
        if vote.is_none_or(|v| v.leader_id.term < last_epoch) {
            let mut derived = Vote::default();
            derived.leader_id.term = last_epoch;
            vote = (last_epoch > 0).then_some(derived);
        }
        Ok(LogStore {
            inner: Arc::new(Mutex::new(LogInner {
                log,
                batches,
                vote,
                purged,
                voters,
                directory_id,
            })),
        })
    }

    fn lock(&self) -> MutexGuard<'_, LogInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The partition leader epochs and their start offsets (`leader-epoch-checkpoint`).
    pub fn epochs(&self) -> Vec<(i32, i64)> {
        self.lock().log.epochs().to_vec()
    }
}

impl LogInner {
    fn last_log_id(&self) -> Option<LogId<NodeId>> {
        let last = self
            .batches
            .values()
            .next_back()
            .map(|b| entry::log_id(b.epoch, b.last_offset));
        last.max(self.purged)
    }

    fn read(&self, start: u64, end: u64) -> Result<Vec<QuorumEntry>, StorageError<NodeId>> {
        let start = i64::try_from(start).unwrap_or(i64::MAX);
        let end = i64::try_from(end).unwrap_or(i64::MAX);
        if start >= end {
            return Ok(Vec::new());
        }
        let from = self
            .batches
            .range(..=start)
            .next_back()
            .map_or(start, |(base, _)| *base);
        let mut out = Vec::new();
        for location in self.batches.range(from..end).map(|(_, b)| b) {
            if location.last_offset < start {
                continue;
            }
            let bytes = self.log.read_batch(location).map_err(read_error)?;
            let entries = entry::decode_entries(bytes).map_err(read_error)?;
            out.extend(entries.into_iter().filter(|e| {
                let index = e.log_id.index as i64;
                index >= start && index < end
            }));
        }
        Ok(out)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<QuorumEntry>, StorageError<NodeId>> {
        let start = match range.start_bound() {
            Bound::Included(x) => *x,
            Bound::Excluded(x) => x.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(x) => x.saturating_add(1),
            Bound::Excluded(x) => *x,
            Bound::Unbounded => u64::MAX,
        };
        self.lock().read(start, end)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let inner = self.lock();
        Ok(LogState {
            last_purged_log_id: inner.purged,
            last_log_id: inner.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.lock();
        let state = QuorumState {
            vote: *vote,
            voted_directory_id: if vote.leader_id.voted_for.is_some() {
                inner.directory_id
            } else {
                Uuid::nil()
            },
        };
        quorum_state::write(inner.log.dir(), &state)
            .map_err(|e| StorageError::from(StorageIOError::write_vote(AnyError::error(e))))?;
        inner.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.lock().vote)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = QuorumEntry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<QuorumEntry> = entries.into_iter().collect();
        let mut inner = self.lock();
        let result = (|| {
            let vote = inner.vote.unwrap_or_default();
            let voters = inner.voters.clone();
            // The blank entry of a new leader: the leader is the committed vote of its term.
            let fill = move |e: &QuorumEntry| {
                let leader = if vote.committed && vote.leader_id.term == e.log_id.leader_id.term {
                    vote.leader_id.voted_for.map_or(-1, |id| id as i32)
                } else {
                    -1
                };
                entry::leader_change(leader, &voters)
            };
            let batches = entry::encode_entries(&entries, now_ms(), &fill).map_err(write_error)?;
            for batch in batches {
                let location = inner
                    .log
                    .append_batch_at(
                        &batch.bytes,
                        batch.base_offset,
                        batch.count,
                        batch.epoch,
                        batch.max_timestamp,
                    )
                    .map_err(write_error)?;
                inner.batches.insert(location.base_offset, location);
            }
            // A new voter set (KIP-853) is what later leaders' `LeaderChangeMessage`s name.
            if let Some(ids) = entries.iter().rev().find_map(|e| match &e.payload {
                QuorumPayload::Voters(v) => entry::written_voters(&v.0).ok(),
                _ => None,
            }) {
                inner.voters = ids.iter().map(|id| *id as i32).collect();
            }
            Ok::<(), StorageError<NodeId>>(())
        })();
        drop(inner);
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(e)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.lock();
        let offset = i64::try_from(log_id.index).map_err(write_error)?;
        let rewritten = inner.log.truncate_to(offset).map_err(write_error)?;
        inner.batches.retain(|_, b| b.last_offset < offset);
        if let Some(b) = rewritten {
            inner.batches.insert(b.base_offset, b);
        }
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.lock();
        let start = i64::try_from(log_id.index)
            .map_err(write_error)?
            .saturating_add(1);
        if start >= inner.log.next_offset() {
            inner.log.reset_to(start).map_err(write_error)?;
            inner.batches.clear();
        } else {
            let deleted = inner
                .log
                .delete_segments_below(start)
                .map_err(write_error)?;
            inner.batches.retain(|_, b| !deleted.contains(&b.segment));
        }
        inner.purged = inner.purged.max(Some(log_id));
        Ok(())
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What a reader of the log outside openraft (the leader answering an observer's Fetch,
/// `fetch_serve.rs`) may ask of it.
impl LogStore {
    /// The whole batches from the one holding `offset` on, concatenated as on disk: at
    /// least one batch if there is any at or past `offset`, then more while they fit in
    /// `max_bytes` (Kafka's log read returns at least one batch whatever the limit).
    pub fn read_batches_from(
        &self,
        offset: i64,
        max_bytes: usize,
    ) -> Result<bytes::Bytes, crate::cluster::metadata_log::MetadataLogError> {
        let inner = self.lock();
        let from = inner
            .batches
            .range(..=offset)
            .next_back()
            .filter(|(_, b)| b.last_offset >= offset)
            .map_or(offset, |(base, _)| *base);
        let mut out = bytes::BytesMut::new();
        for location in inner.batches.range(from..).map(|(_, b)| b) {
            if !out.is_empty() && out.len() as u64 + location.size > max_bytes as u64 {
                break;
            }
            out.extend_from_slice(&inner.log.read_batch(location)?);
        }
        Ok(out.freeze())
    }

    /// The first offset still in the log (one past the last purged entry; 0 for a log that
    /// was never purged).
    pub fn start_offset(&self) -> i64 {
        let inner = self.lock();
        let purged = inner.purged.map_or(0, |id| id.index as i64 + 1);
        inner
            .batches
            .keys()
            .next()
            .map_or(purged, |first| (*first).max(purged))
    }

    /// One past the last entry on disk.
    pub fn end_offset(&self) -> i64 {
        self.lock()
            .last_log_id()
            .map_or(0, |id| id.index as i64 + 1)
    }
}

impl LogStore {
    /// The partition directory (`__cluster_metadata-0`), where the snapshots are too.
    pub fn dir(&self) -> std::path::PathBuf {
        self.lock().log.dir().to_path_buf()
    }
}
