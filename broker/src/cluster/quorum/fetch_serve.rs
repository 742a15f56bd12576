//! The leader's side of the metadata log's Fetch (Kafka's `KafkaRaftClient.handleFetchRequest`
//! and `tryCompleteFetchRequest`): brokers that only follow the log (KRaft observers, see
//! [`crate::cluster::observer`]) pull `__cluster_metadata-0` from the quorum's leader with
//! Kafka's Fetch, although the voters replicate among themselves with openraft's
//! AppendEntries.
//!
//! * Only the leader answers with records. Another voter answers `FENCED_LEADER_EPOCH` when
//!   the fetcher's epoch is older than its own, `UNKNOWN_LEADER_EPOCH` when newer, and
//!   `NOT_LEADER_OR_FOLLOWER` otherwise (Kafka's `validateLeaderOnlyRequest`); every answer
//!   names the leader and epoch this voter knows, which is how an observer finds the leader.
//! * The fetch position is checked as Kafka's `ReplicatedLog.validateOffsetAndEpoch`: below
//!   the log start (or an empty fetcher while a snapshot exists), the answer is the latest
//!   snapshot's id (the fetcher loads that snapshot); a last fetched epoch whose end the
//!   leader places before the fetch offset, or an epoch the leader never had, is a diverging
//!   epoch (the fetcher truncates to its end); otherwise the batches from the fetch offset
//!   on, committed or not, as stored, with the high watermark (one past the last entry the
//!   leader applied, which is committed).
//! * With nothing to send, the answer waits up to the fetch's `MaxWaitMs` until the log or
//!   the high watermark moves (Kafka's `fetchPurgatory`, completed on appends and on a
//!   new high watermark).

use std::time::Duration;

use bytes::Bytes;
use gregor_protocol::error_code;
use uuid::Uuid;

use super::Quorum;
use super::network::now_ms;
use super::observers::ObserverState;
use super::state_machine::snapshot_id_of;
use crate::cluster::replay::SnapshotId;
use crate::storage::leader_epoch::{EpochEntry, LeaderEpochCache};
use crate::storage::unpoison;

/// One fetch of the metadata partition (the fields of Kafka's `FetchPartition` that matter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetadataFetch {
    /// The first offset wanted (the fetcher's log end).
    pub fetch_offset: i64,
    /// The epoch of the fetcher's last batch (0 for an empty log... or -1 unknown).
    pub last_fetched_epoch: i32,
    /// The epoch the fetcher believes current.
    pub current_leader_epoch: i32,
    /// At most this many bytes of batches (at least one batch is sent regardless).
    pub max_bytes: usize,
}

/// What the fetch position gave (Kafka's `ValidOffsetAndEpoch`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchOutcome {
    /// The batches from the fetch offset on (possibly none).
    Records(Bytes),
    /// The fetcher's log diverges: it must truncate to `end_offset` (the end of `epoch` in
    /// the leader's log, or where the leader's log ends for it).
    Diverging {
        /// The largest epoch of the leader not above the fetcher's last epoch.
        epoch: i32,
        /// Where that epoch ends in the leader's log.
        end_offset: i64,
    },
    /// The fetcher must load this snapshot first.
    Snapshot(SnapshotId),
}

/// The leader's (or a voter's) answer to a [`MetadataFetch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataFetchAnswer {
    /// `NONE` on the leader; otherwise why not (see the module docs).
    pub error: i16,
    /// The leader this node knows, if any.
    pub leader: Option<i32>,
    /// This node's epoch.
    pub epoch: i32,
    /// One past the last committed entry (on the leader; -1 elsewhere).
    pub high_watermark: i64,
    /// The first offset in the log.
    pub log_start_offset: i64,
    /// What the position gave (empty records with an error).
    pub outcome: FetchOutcome,
}

impl MetadataFetchAnswer {
    /// Whether the answer would be sent at once, even before the fetch's wait is over.
    fn complete(&self) -> bool {
        self.error != error_code::NONE
            || !matches!(&self.outcome, FetchOutcome::Records(b) if b.is_empty())
    }
}

/// A slice of a snapshot file (FetchSnapshot's `UnalignedRecords`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotChunk {
    /// Size of the whole file.
    pub size: i64,
    /// Where in the file `bytes` start.
    pub position: i64,
    /// The bytes.
    pub bytes: Bytes,
}

impl Quorum {
    /// Why this node may not answer a leader-only request (Fetch, FetchSnapshot) made in
    /// `current_leader_epoch` (Kafka's `validateLeaderOnlyRequest`); `None` on the leader
    /// of that epoch.
    pub fn leader_only_error(&self, current_leader_epoch: i32) -> Option<i16> {
        let (leader, epoch) = {
            let m = self.inner.raft.metrics();
            let m = m.borrow();
            (m.current_leader, m.current_term as i32)
        };
        if current_leader_epoch < epoch {
            Some(error_code::FENCED_LEADER_EPOCH)
        } else if current_leader_epoch > epoch {
            Some(error_code::UNKNOWN_LEADER_EPOCH)
        } else if leader != Some(self.inner.node_id) {
            Some(error_code::NOT_LEADER_OR_FOLLOWER)
        } else {
            None
        }
    }

    /// Up to `max_bytes` of snapshot `id`'s `.checkpoint` file from `position` (Kafka's
    /// `KafkaRaftClient.handleFetchSnapshotRequest`): `SNAPSHOT_NOT_FOUND` when there is no
    /// such snapshot, `POSITION_OUT_OF_RANGE` for a position outside the file.
    pub fn read_snapshot(
        &self,
        id: SnapshotId,
        position: i64,
        max_bytes: usize,
    ) -> Result<SnapshotChunk, i16> {
        use std::io::{Read, Seek, SeekFrom};
        if id.end_offset < 0 || id.epoch < 0 {
            return Err(error_code::SNAPSHOT_NOT_FOUND);
        }
        let path = self.inner.log.dir().join(id.file_name());
        let mut file = std::fs::File::open(&path).map_err(|_| error_code::SNAPSHOT_NOT_FOUND)?;
        let size = file
            .metadata()
            .map_err(|_| error_code::SNAPSHOT_NOT_FOUND)?
            .len() as i64;
        if position < 0 || position >= size.max(1) {
            return Err(error_code::POSITION_OUT_OF_RANGE);
        }
        let want = ((size - position) as u64).min(max_bytes.max(1) as u64);
        let mut bytes = vec![0u8; want as usize];
        file.seek(SeekFrom::Start(position as u64))
            .and_then(|_| file.read_exact(&mut bytes))
            .map_err(|e| {
                tracing::warn!(snapshot = %path.display(), "cannot read a snapshot: {e}");
                error_code::UNKNOWN_SERVER_ERROR
            })?;
        Ok(SnapshotChunk {
            size,
            position,
            bytes: Bytes::from(bytes),
        })
    }

    /// The id of the newest snapshot, if there is one.
    pub fn latest_snapshot(&self) -> Option<SnapshotId> {
        let snapshot = self.inner.raft.metrics().borrow().snapshot;
        snapshot.map(|id| snapshot_id_of(Some(id)))
    }

    /// The first offset of the log.
    pub fn log_start_offset(&self) -> i64 {
        self.inner.log.start_offset()
    }

    /// Answers `fetch` at once (see the module docs).
    pub fn answer_fetch(&self, fetch: &MetadataFetch) -> MetadataFetchAnswer {
        let (leader, epoch) = {
            let m = self.inner.raft.metrics();
            let m = m.borrow();
            (m.current_leader.map(|id| id as i32), m.current_term as i32)
        };
        // The state machine's own applied id: openraft's metrics report it a moment later.
        let applied = self.inner.state_machine.applied();
        let log_start_offset = self.inner.log.start_offset();
        let refuse = |error: i16| MetadataFetchAnswer {
            error,
            leader,
            epoch,
            high_watermark: -1,
            log_start_offset,
            outcome: FetchOutcome::Records(Bytes::new()),
        };
        if fetch.current_leader_epoch < epoch {
            return refuse(error_code::FENCED_LEADER_EPOCH);
        }
        if fetch.current_leader_epoch > epoch {
            return refuse(error_code::UNKNOWN_LEADER_EPOCH);
        }
        if leader != Some(self.inner.node_id as i32) {
            return refuse(error_code::NOT_LEADER_OR_FOLLOWER);
        }
        let high_watermark = applied.map_or(0, |id| id.index as i64 + 1);
        let answer = |outcome| MetadataFetchAnswer {
            error: error_code::NONE,
            leader,
            epoch,
            high_watermark,
            log_start_offset,
            outcome,
        };
        let snapshot = self.latest_snapshot();
        // Kafka's `tryCompleteFetchRequest`: an empty fetcher loads the newest snapshot
        // rather than the whole log (the bootstrap snapshot 0-0 aside).
        if fetch.fetch_offset == 0
            && let Some(id) = snapshot.filter(|id| id.end_offset > 0)
        {
            return answer(FetchOutcome::Snapshot(id));
        }
        match self.validate(fetch, snapshot, log_start_offset) {
            Some(outcome) => answer(outcome),
            None => match self
                .inner
                .log
                .read_batches_from(fetch.fetch_offset, fetch.max_bytes.max(1))
            {
                Ok(bytes) => answer(FetchOutcome::Records(bytes)),
                Err(e) => {
                    tracing::warn!(
                        offset = fetch.fetch_offset,
                        "cannot read the metadata log for a fetch: {e}"
                    );
                    refuse(error_code::UNKNOWN_SERVER_ERROR)
                }
            },
        }
    }

    /// Kafka's `validateOffsetAndEpoch`: `None` when the position is valid.
    fn validate(
        &self,
        fetch: &MetadataFetch,
        snapshot: Option<SnapshotId>,
        log_start_offset: i64,
    ) -> Option<FetchOutcome> {
        let (offset, last_epoch) = (fetch.fetch_offset, fetch.last_fetched_epoch);
        if log_start_offset == 0 && offset == 0 {
            return None;
        }
        if let Some(latest) = snapshot {
            // The earliest snapshot still backing the log start: the one ending there.
            let earliest_epoch = if log_start_offset == latest.end_offset {
                latest.epoch
            } else {
                self.epoch_at(log_start_offset)
            };
            if offset < log_start_offset
                || (offset == log_start_offset && last_epoch != earliest_epoch)
                || last_epoch < earliest_epoch
            {
                return Some(FetchOutcome::Snapshot(latest));
            }
        } else if offset < log_start_offset {
            // No snapshot and a log that does not start at 0 cannot happen with openraft
            // (it purges only below a snapshot); send the fetcher to the start.
            return Some(FetchOutcome::Diverging {
                epoch: -1,
                end_offset: log_start_offset,
            });
        }
        let cache = LeaderEpochCache::from_entries(self.inner.log.epochs().into_iter().map(
            |(epoch, start_offset)| EpochEntry {
                epoch,
                start_offset,
            },
        ));
        let (epoch, end_offset) = cache.end_offset_for(last_epoch, self.inner.log.end_offset());
        if epoch != last_epoch || end_offset < offset {
            return Some(FetchOutcome::Diverging { epoch, end_offset });
        }
        None
    }

    /// The epoch of the batch holding `offset` (as the epoch cache says).
    fn epoch_at(&self, offset: i64) -> i32 {
        self.inner
            .log
            .epochs()
            .into_iter()
            .rev()
            .find(|(_, start)| *start <= offset)
            .map_or(0, |(epoch, _)| epoch)
    }

    /// Records that observer `replica_id` (its metadata directory `directory_id`) fetched
    /// from `fetch_offset` and was answered with records, if this node leads and the
    /// replica is not a voter (see [`super::observers`]).
    pub fn record_observer_fetch(&self, replica_id: i32, directory_id: Uuid, fetch_offset: i64) {
        let metrics = self.inner.raft.metrics();
        let m = metrics.borrow();
        if m.current_leader != Some(self.inner.node_id)
            || m.membership_config
                .membership()
                .voter_ids()
                .any(|id| id as i32 == replica_id)
        {
            return;
        }
        let leader_end = m.last_log_index.map_or(0, |i| i as i64 + 1);
        let epoch = m.current_term as i32;
        drop(m);
        unpoison(self.inner.observers.lock()).record_fetch(
            epoch,
            replica_id,
            directory_id,
            fetch_offset,
            leader_end,
            now_ms(),
        );
    }

    /// The observers this node knows as the leader (empty elsewhere), by replica id.
    pub fn observers(&self) -> Vec<ObserverState> {
        let metrics = self.inner.raft.metrics();
        let m = metrics.borrow();
        if m.current_leader != Some(self.inner.node_id) {
            return Vec::new();
        }
        let epoch = m.current_term as i32;
        let voters: Vec<i32> = m
            .membership_config
            .membership()
            .voter_ids()
            .map(|id| id as i32)
            .collect();
        drop(m);
        unpoison(self.inner.observers.lock()).list(epoch, now_ms(), &voters)
    }

    /// Answers `fetch`, waiting up to `max_wait` for something to send when there is
    /// nothing yet (see the module docs).
    pub async fn fetch(&self, fetch: MetadataFetch, max_wait: Duration) -> MetadataFetchAnswer {
        let mut metrics = self.inner.raft.metrics();
        let moved = |m: &openraft::RaftMetrics<super::NodeId, super::VoterNode>| {
            (m.last_log_index, m.last_applied, m.current_term)
        };
        let mut seen = moved(&metrics.borrow_and_update());
        let answer = self.answer_fetch(&fetch);
        let high_watermark = answer.high_watermark;
        if answer.complete() || max_wait.is_zero() {
            return answer;
        }
        let deadline = tokio::time::Instant::now() + max_wait;
        loop {
            match tokio::time::timeout_at(deadline, metrics.changed()).await {
                Ok(Ok(())) => {
                    let now = moved(&metrics.borrow_and_update());
                    if now == seen {
                        continue;
                    }
                    seen = now;
                    // Something to send, or a new high watermark to tell.
                    let answer = self.answer_fetch(&fetch);
                    if answer.complete() || answer.high_watermark != high_watermark {
                        return answer;
                    }
                }
                // Timed out, or the quorum stopped: answer what there is.
                _ => return self.answer_fetch(&fetch),
            }
        }
    }
}
