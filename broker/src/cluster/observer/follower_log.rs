//! An observer's copy of `__cluster_metadata-0` and the image built from it.
//!
//! The batches a Fetch returns are kept in memory until the leader's high watermark covers
//! them whole; then they are appended to the local segments (at the leader's offsets and
//! epochs, byte for byte, fsynced: [`MetadataLog::append_batch_at`]) and applied to the
//! image. The disk therefore holds only committed batches, so a restart replays it as is
//! ([`replay::load`]) and continues from its end; Kafka's observers keep uncommitted
//! batches on disk too and truncate them on a diverging epoch, which here touches only the
//! batches in memory unless the leader's log contradicts committed ones (it cannot, but
//! the disk is truncated then as well, and the image rebuilt, rather than trusting it).
//!
//! The image is published only outside a metadata transaction (KIP-868), as Kafka's
//! `MetadataLoader` publishes no half-applied transaction.
//!
//! The copy writes snapshots of its own, as Kafka's brokers do (`SnapshotGenerator` on the
//! broker's `MetadataLoader`), by the rules of [`snapshot_trigger`]: the image is written
//! to a `.checkpoint` file on a thread of its own (the fetch loop goes on), and once it is
//! done, at the next batch applied, retention trims the segments and older snapshots
//! (`metadata.max.retention.bytes` / `.ms`, [`snapshot_retention::maybe_clean`]). So a
//! broker's copy stays bounded and a restart replays from its latest snapshot.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use bytes::Bytes;
use gregor_protocol::records::{Batch, RecordBatches};

use crate::cluster::image::MetadataImage;
use crate::cluster::metadata_log::{MetadataLog, MetadataLogError, MetadataLogOptions};
use crate::cluster::quorum::entry::{self, QuorumPayload};
use crate::cluster::replay::{self, METADATA_PARTITION_DIR, ReplayError};
use crate::cluster::snapshot::{self, KRaftState, WrittenSnapshot};
use crate::cluster::snapshot_retention;
use crate::cluster::snapshot_trigger::{SnapshotOptions, SnapshotTrigger};

/// Why the local copy failed.
#[derive(Debug, thiserror::Error)]
pub enum FollowerLogError {
    /// The segments could not be written or read.
    #[error(transparent)]
    Log(#[from] MetadataLogError),
    /// The local copy could not be replayed.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// A batch from the leader does not decode.
    #[error("a metadata batch from the leader does not decode: {0}")]
    Decode(String),
}

/// Most bytes of uncommitted batches held in memory: past it, fetched batches are dropped
/// until the high watermark moves (a leader's uncommitted tail is small; this bounds what
/// a leader that never commits can make this node hold).
pub const MAX_PENDING_BYTES: usize = 64 * 1024 * 1024;

/// One fetched batch not yet covered by the high watermark.
#[derive(Clone, Debug)]
struct Pending {
    base_offset: i64,
    last_offset: i64,
    epoch: i32,
    count: i64,
    max_timestamp: i64,
    bytes: Bytes,
}

/// The local log, the uncommitted tail in memory, and the image (see the module docs).
#[derive(Debug)]
pub struct FollowerLog {
    log_dir: PathBuf,
    options: MetadataLogOptions,
    log: MetadataLog,
    pending: Vec<Pending>,
    /// The image after every record applied.
    working: MetadataImage,
    /// The last image outside a transaction (the one published).
    image: MetadataImage,
    /// Offset of the last record applied (-1 for none).
    applied: i64,
    /// When to write snapshots and what to keep.
    snapshot_options: SnapshotOptions,
    /// When the next snapshot is due.
    trigger: SnapshotTrigger,
    /// The KRaft version and voters at the last record applied (in every snapshot header).
    kraft: KRaftState,
    /// The snapshot being written.
    running: Option<JoinHandle<Result<WrittenSnapshot, String>>>,
}

impl FollowerLog {
    /// Opens the copy under `log_dir` (replaying it; a transaction the copy ends inside of
    /// is cut off, to be fetched again). Blocking file I/O.
    pub fn open(
        log_dir: &Path,
        options: MetadataLogOptions,
    ) -> Result<FollowerLog, FollowerLogError> {
        let dir = log_dir.join(METADATA_PARTITION_DIR);
        std::fs::create_dir_all(&dir).map_err(|source| MetadataLogError::Io {
            path: dir.clone(),
            source,
        })?;
        let _ = crate::cluster::snapshot::remove_leftovers(&dir);
        let loaded = replay::load(log_dir)?;
        let mut log = MetadataLog::open_replica(log_dir, &loaded, options.clone())?;
        for removed in snapshot_retention::recover_snapshots(&log)? {
            tracing::debug!(file = %removed.display(), "removed a metadata snapshot leftover");
        }
        let mut next = loaded.next_offset;
        if let Some(begin) = loaded.discarded_transaction {
            log.truncate_to(begin)?;
            next = begin;
        }
        tracing::info!(
            next_offset = next,
            snapshot = ?loaded.snapshot,
            "replayed the local copy of the metadata log"
        );
        Ok(FollowerLog {
            log_dir: log_dir.to_path_buf(),
            options,
            log,
            pending: Vec::new(),
            working: loaded.image.clone(),
            image: loaded.image,
            applied: next - 1,
            snapshot_options: SnapshotOptions::default(),
            trigger: SnapshotTrigger::new(loaded.bytes_since_snapshot),
            kraft: loaded.kraft,
            running: None,
        })
    }

    /// The same copy, writing snapshots by `options` instead of Kafka's defaults.
    pub fn with_snapshots(mut self, options: SnapshotOptions) -> FollowerLog {
        self.snapshot_options = options;
        self
    }

    /// Where the next fetch starts: one past the last batch held (on disk or in memory).
    pub fn fetch_offset(&self) -> i64 {
        self.pending
            .last()
            .map_or(self.log.next_offset(), |p| p.last_offset + 1)
    }

    /// The epoch of the last batch held (0 for none).
    pub fn last_fetched_epoch(&self) -> i32 {
        self.pending
            .last()
            .map_or(self.log.epoch(), |p| p.epoch)
            .max(0)
    }

    /// Offset of the last record applied to the image (-1 for none).
    pub fn applied_offset(&self) -> i64 {
        self.applied
    }

    /// The image to publish: the last one outside a metadata transaction.
    pub fn image(&self) -> &MetadataImage {
        &self.image
    }

    /// Keeps the whole v2 batches of `records` that continue what is held (those already
    /// held are skipped; a torn last batch is dropped; nothing more once
    /// [`MAX_PENDING_BYTES`] are held). Returns how many were kept.
    pub fn add_fetched(&mut self, records: Bytes) -> Result<usize, FollowerLogError> {
        let mut kept = 0;
        let mut held: usize = self.pending.iter().map(|p| p.bytes.len()).sum();
        for batch in RecordBatches::new(records) {
            if held >= MAX_PENDING_BYTES {
                break;
            }
            let Ok(Batch::V2(batch)) = batch else {
                break;
            };
            if batch.last_offset() < self.fetch_offset() {
                continue;
            }
            if batch.base_offset() != self.fetch_offset() {
                return Err(FollowerLogError::Decode(format!(
                    "a batch at offset {} does not continue the log at {}",
                    batch.base_offset(),
                    self.fetch_offset()
                )));
            }
            batch
                .validate()
                .map_err(|e| FollowerLogError::Decode(e.to_string()))?;
            let header = batch.header();
            self.pending.push(Pending {
                base_offset: batch.base_offset(),
                last_offset: batch.last_offset(),
                epoch: header.partition_leader_epoch,
                count: i64::from(batch.record_count()),
                max_timestamp: header.max_timestamp,
                bytes: batch.as_bytes().clone(),
            });
            held += batch.as_bytes().len();
            kept += 1;
        }
        Ok(kept)
    }

    /// Writes and applies the held batches that end below `high_watermark`; returns
    /// whether the published image changed.
    pub fn commit_to(&mut self, high_watermark: i64) -> Result<bool, FollowerLogError> {
        let mut changed = false;
        while let Some(first) = self.pending.first() {
            if first.last_offset >= high_watermark {
                break;
            }
            let batch = self.pending.remove(0);
            let entries = entry::decode_entries(batch.bytes.clone())
                .map_err(|e| FollowerLogError::Decode(e.to_string()))?;
            self.log.append_batch_at(
                &batch.bytes,
                batch.base_offset,
                batch.count,
                batch.epoch,
                batch.max_timestamp,
            )?;
            for e in entries {
                let offset = e.log_id.index as i64;
                if let QuorumPayload::Record(versioned) = &e.payload
                    && let Err(error) =
                        self.working
                            .apply_with_epoch(offset, batch.epoch, &versioned.record)
                {
                    tracing::error!(
                        offset,
                        "a committed metadata record does not apply: {error}"
                    );
                }
                if let QuorumPayload::Voters(voters) = &e.payload {
                    // As the quorum's state machine: a VotersRecord in the log is KIP-853's
                    // kraft.version 1.
                    self.kraft = KRaftState {
                        kraft_version: entry::KRAFT_VERSION_MAX,
                        voters: Some(voters.1.clone()),
                    };
                }
                self.applied = offset;
                if self.working.pending_transaction().is_none() {
                    self.image = self.working.clone();
                    changed = true;
                }
            }
        }
        if changed {
            self.maybe_snapshot();
        }
        Ok(changed)
    }

    /// After batches were applied: finishes a snapshot written meanwhile (retention runs
    /// then) and starts the next one if it is due (see the module docs).
    fn maybe_snapshot(&mut self) {
        if self.running.as_ref().is_some_and(|h| h.is_finished()) {
            self.finish_snapshot();
        }
        if self.running.is_some() || self.working.pending_transaction().is_some() {
            return;
        }
        let Some(reason) = self
            .trigger
            .due(self.log.appended_bytes(), &self.snapshot_options)
        else {
            return;
        };
        self.trigger.reset(self.log.appended_bytes());
        let id = replay::SnapshotId {
            end_offset: self.log.next_offset(),
            epoch: self.log.epoch(),
        };
        let dir = self.log.dir().to_path_buf();
        if dir.join(id.file_name()).exists() {
            return;
        }
        tracing::info!(snapshot = %id.file_name(), "Creating new KRaft snapshot file because {reason}");
        let (image, kraft) = (self.image.clone(), self.kraft.clone());
        let timestamp = self.log.last_append_timestamp();
        let spawned = std::thread::Builder::new()
            .name("metadata-snapshot".to_string())
            .spawn(move || {
                snapshot::write_snapshot(&dir, id, &image, timestamp, &kraft)
                    .map_err(|e| format!("snapshot {}: {e}", id.file_name()))
            });
        match spawned {
            Ok(handle) => self.running = Some(handle),
            Err(e) => tracing::error!("cannot start the snapshot thread: {e}"),
        }
    }

    /// Waits for the snapshot being written, if any, and applies retention after it.
    /// Returns the snapshot written (for tests and tools).
    pub fn finish_snapshot(&mut self) -> Option<WrittenSnapshot> {
        let outcome = self
            .running
            .take()?
            .join()
            .unwrap_or_else(|_| Err("the snapshot thread panicked".to_string()));
        let written = match outcome {
            Ok(written) => written,
            Err(error) => {
                tracing::error!(%error, "KRaft snapshot file generation error");
                return None;
            }
        };
        tracing::info!(
            snapshot = %written.id.file_name(),
            bytes = written.size,
            records = written.records,
            "Successfully wrote the metadata snapshot"
        );
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        if let Err(error) =
            snapshot_retention::maybe_clean(&mut self.log, self.snapshot_options.retention, now_ms)
        {
            tracing::warn!(%error, "metadata retention after a snapshot failed");
        }
        Some(written)
    }

    /// Truncates what is held to below `offset` (a diverging epoch). Committed batches
    /// on disk are truncated only if `offset` is below them, and the image is then
    /// replayed from the disk again. Returns whether the published image changed.
    pub fn truncate_to(&mut self, offset: i64) -> Result<bool, FollowerLogError> {
        self.pending.retain(|p| p.last_offset < offset);
        if offset >= self.log.next_offset() {
            return Ok(false);
        }
        tracing::warn!(
            offset,
            end = self.log.next_offset(),
            "the leader's metadata log diverges below the committed copy: truncating it"
        );
        self.pending.clear();
        self.finish_snapshot();
        self.log.truncate_to(offset)?;
        // A snapshot past the new end holds what was truncated: not replayed again.
        for file in snapshot_retention::list_snapshots(self.log.dir())? {
            if file.id.end_offset > offset {
                let _ = std::fs::remove_file(&file.path);
            }
        }
        *self = FollowerLog::open(&self.log_dir.clone(), self.options.clone())?
            .with_snapshots(self.snapshot_options);
        Ok(true)
    }
}

impl FollowerLog {
    /// Installs snapshot `id` (the whole `.checkpoint` file the leader sent, `bytes`):
    /// checks that it reads, writes it durably next to the segments, starts the log over at
    /// its end offset (Kafka's `truncateFullyAndStartAt` after a follower's snapshot
    /// download) and replays again. Blocking file I/O.
    pub fn install_snapshot(
        &mut self,
        id: replay::SnapshotId,
        bytes: &[u8],
    ) -> Result<(), FollowerLogError> {
        use std::io::Write;
        let dir = self.log.dir().to_path_buf();
        let path = dir.join(id.file_name());
        let partial = dir.join(format!(
            "{}{}",
            id.file_name().trim_end_matches(replay::SNAPSHOT_SUFFIX),
            crate::cluster::snapshot::PARTIAL_SUFFIX
        ));
        let io = |source| MetadataLogError::Io {
            path: partial.clone(),
            source,
        };
        let written = (|| {
            let mut file = std::fs::File::create(&partial)?;
            file.write_all(bytes)?;
            file.sync_all()
        })();
        written.map_err(io)?;
        // A snapshot that does not read is not kept (the leader is asked again).
        if let Err(e) = replay::load_snapshot_file(&partial, id) {
            let _ = std::fs::remove_file(&partial);
            return Err(e.into());
        }
        std::fs::rename(&partial, &path).map_err(io)?;
        if let Ok(handle) = std::fs::File::open(&dir) {
            let _ = handle.sync_all();
        }
        self.pending.clear();
        self.finish_snapshot();
        self.log.reset_to(id.end_offset)?;
        *self = FollowerLog::open(&self.log_dir.clone(), self.options.clone())?
            .with_snapshots(self.snapshot_options);
        tracing::info!(
            snapshot = %path.display(),
            "installed a metadata snapshot from the leader"
        );
        Ok(())
    }
}
