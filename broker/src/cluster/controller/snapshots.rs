//! When the controller writes metadata snapshots, as Kafka's `SnapshotGenerator`.
//!
//! After each committed batch (the image published): if at least
//! `metadata.log.max.record.bytes.between.snapshots` bytes of batches were appended since
//! the last snapshot (counting, after a start, the log bytes replayed past the snapshot
//! loaded), or `metadata.log.max.snapshot.interval.ms` (not 0) passed since the last
//! snapshot (or the start), a snapshot of the new image is started, unless one is still
//! being written (Kafka's event queue is not empty then) or the image is inside a metadata
//! transaction (it would not be batch aligned). The time rule is only checked when a batch
//! is committed, so an idle log gets no new snapshot, as in Kafka. Both counters restart
//! when a snapshot starts.
//!
//! The snapshot's id is the log's next offset and current epoch: the image holds every
//! record below it. The image is cheap to clone (shared, copy-on-write), so the snapshot is
//! encoded and written on a thread of its own from that clone, the controller going on at
//! once; the thread then takes the log lock briefly to apply retention
//! ([`maybe_clean`](crate::cluster::snapshot_retention::maybe_clean)). A failed snapshot is
//! logged (Kafka's fault handler would count it too) and the next trigger tries again.

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use super::{Controller, ControllerError};
use crate::cluster::image::MetadataImage;
use crate::cluster::metadata_log::{MetadataLog, MetadataLogError};
use crate::cluster::replay::SnapshotId;
use crate::cluster::snapshot::{self, KRaftState, SnapshotError, WrittenSnapshot};
use crate::cluster::snapshot_retention::{self, CleanReport, RetentionPolicy};
use crate::cluster::snapshot_trigger::SnapshotTrigger;

pub use crate::cluster::snapshot_trigger::SnapshotOptions;

/// The outcome of a snapshot written on its thread.
pub type SnapshotOutcome = Result<(WrittenSnapshot, CleanReport), String>;

/// The generator's counters and the snapshot being written.
#[derive(Debug)]
pub(crate) struct SnapshotState {
    /// When the next snapshot is due.
    trigger: SnapshotTrigger,
    /// The KRaft version and voters, written into every snapshot header.
    kraft: KRaftState,
    running: Option<JoinHandle<SnapshotOutcome>>,
    /// The last snapshot finished (for tests and tools).
    last: Option<SnapshotOutcome>,
}

impl SnapshotState {
    /// The state after opening a log whose replay counted `replayed_bytes` past the
    /// snapshot, with `log` opened (its bytes so far count too).
    pub(crate) fn new(replayed_bytes: u64, kraft: KRaftState) -> SnapshotState {
        SnapshotState {
            trigger: SnapshotTrigger::new(replayed_bytes),
            kraft,
            running: None,
            last: None,
        }
    }

    fn reap(&mut self) {
        if self.running.as_ref().is_some_and(|h| h.is_finished())
            && let Some(handle) = self.running.take()
        {
            self.last = Some(join(handle));
        }
    }
}

fn join(handle: JoinHandle<SnapshotOutcome>) -> SnapshotOutcome {
    handle
        .join()
        .unwrap_or_else(|_| Err("the snapshot thread panicked".to_string()))
}

/// Writes snapshot `id` of `image` and applies retention (on the snapshot thread).
fn write_and_clean(
    log: &Mutex<super::Backend>,
    dir: &std::path::Path,
    id: SnapshotId,
    image: &MetadataImage,
    timestamp: i64,
    kraft: &KRaftState,
    retention: RetentionPolicy,
) -> SnapshotOutcome {
    let started = Instant::now();
    let written =
        snapshot::write_snapshot(dir, id, image, timestamp, kraft).map_err(|e| e.to_string())?;
    tracing::info!(
        snapshot = %id.file_name(),
        bytes = written.size,
        records = written.records,
        batches = written.batches,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "Successfully wrote the metadata snapshot"
    );
    let mut backend = log.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(log) = backend.local() else {
        return Ok((written, CleanReport::default()));
    };
    let report = snapshot_retention::maybe_clean(log, retention, now_ms())
        .map_err(|e| format!("metadata retention after {}: {e}", id.file_name()))?;
    Ok((written, report))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Controller {
    fn snapshot_state(&self) -> std::sync::MutexGuard<'_, SnapshotState> {
        self.snapshots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Kafka's `SnapshotGenerator.publishLogDelta`, after a batch was committed and `image`
    /// published (see the module docs). The caller holds the log lock.
    pub(super) fn maybe_snapshot(&self, log: &MetadataLog, image: &Arc<MetadataImage>) {
        let mut state = self.snapshot_state();
        state.reap();
        let options = self.options.snapshots;
        let Some(reason) = state.trigger.due(log.appended_bytes(), &options) else {
            return;
        };
        if state.running.is_some() {
            tracing::trace!("not starting a snapshot: one is still being written");
            return;
        }
        if image.pending_transaction().is_some() {
            tracing::debug!("not starting a snapshot: the image is inside a transaction");
            return;
        }
        let id = SnapshotId {
            end_offset: log.next_offset(),
            epoch: log.epoch(),
        };
        state.trigger.reset(log.appended_bytes());
        if log.dir().join(id.file_name()).exists() {
            tracing::error!(snapshot = %id.file_name(), "Not generating the snapshot because it already exists");
            return;
        }
        tracing::info!(snapshot = %id.file_name(), "Creating new KRaft snapshot file because {reason}");
        let (log_ref, dir, image) = (
            Arc::clone(&self.log),
            log.dir().to_path_buf(),
            Arc::clone(image),
        );
        let (kraft, retention) = (state.kraft.clone(), options.retention);
        let timestamp = log.last_append_timestamp();
        let spawned = std::thread::Builder::new()
            .name("metadata-snapshot".to_string())
            .spawn(move || {
                let outcome =
                    write_and_clean(&log_ref, &dir, id, &image, timestamp, &kraft, retention);
                if let Err(error) = &outcome {
                    tracing::error!(snapshot = %id.file_name(), %error, "KRaft snapshot file generation error");
                }
                outcome
            });
        match spawned {
            Ok(handle) => state.running = Some(handle),
            Err(e) => tracing::error!("cannot start the snapshot thread: {e}"),
        }
    }

    /// Waits for the snapshot being written, if any, and returns the outcome of the last
    /// snapshot finished (`None` if none was ever written). Do not call it while holding
    /// the log lock (the snapshot thread takes it for retention).
    pub fn wait_for_snapshot(&self) -> Option<SnapshotOutcome> {
        let handle = self.snapshot_state().running.take();
        let mut state = self.snapshot_state();
        if let Some(handle) = handle {
            drop(state);
            let outcome = join(handle);
            state = self.snapshot_state();
            state.last = Some(outcome);
        }
        state.last.clone()
    }

    /// Writes a snapshot of the current image now, on this thread, and applies retention
    /// (for tools and tests; the controller writes them by itself, see the module docs).
    /// `Ok(None)` if a snapshot with this id exists already. Blocking file I/O.
    pub fn snapshot_now(&self) -> Result<Option<(WrittenSnapshot, CleanReport)>, ControllerError> {
        if let Some(handle) = self.snapshot_state().running.take() {
            let outcome = join(handle);
            self.snapshot_state().last = Some(outcome);
        }
        let mut backend = self.lock();
        // In a cluster the quorum writes its own snapshots (openraft's policy).
        let Some(log) = backend.local() else {
            return Ok(None);
        };
        let image = self.image();
        if image.pending_transaction().is_some() {
            return Ok(None);
        }
        let id = SnapshotId {
            end_offset: log.next_offset(),
            epoch: log.epoch(),
        };
        let kraft = self.snapshot_state().kraft.clone();
        let written = match snapshot::write_snapshot(
            log.dir(),
            id,
            &image,
            log.last_append_timestamp(),
            &kraft,
        ) {
            Ok(written) => written,
            Err(SnapshotError::Exists(_)) => return Ok(None),
            Err(SnapshotError::Io { path, source }) => {
                return Err(MetadataLogError::Io { path, source }.into());
            }
            Err(other) => return Err(MetadataLogError::Encode(other.to_string()).into()),
        };
        {
            self.snapshot_state().trigger.reset(log.appended_bytes());
        }
        let report =
            snapshot_retention::maybe_clean(log, self.options.snapshots.retention, now_ms())?;
        let outcome = (written, report);
        self.snapshot_state().last = Some(Ok(outcome.clone()));
        Ok(Some(outcome))
    }
}
