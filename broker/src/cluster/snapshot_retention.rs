//! Retention of the metadata log's snapshots and segments, as Kafka's `KafkaMetadataLog`
//! does it (`maybeClean`, `cleanSnapshotsRetentionSize`, `cleanSnapshotsRetentionMs`,
//! `deleteBeforeSnapshot`, `recoverSnapshots`).
//!
//! The newest snapshot is always kept. Going from the oldest snapshot on, pair by pair
//! (a snapshot and the next one): while the segments and snapshots together exceed
//! `metadata.max.retention.bytes` (-1: no limit), and then while the older snapshot of the
//! pair is older than `metadata.max.retention.ms` (by the `LastContainedLogTimestamp` of
//! its header; -1: no limit), the log start offset moves to the next snapshot's end
//! offset: the segments wholly below it are deleted ([`MetadataLog::delete_segments_below`])
//! and so are the snapshots before it. The first pair that breaks no limit stops each pass.
//!
//! Kafka renames deleted snapshots to `.checkpoint.deleted` and removes them a minute later
//! (`file.delete.delay.ms`) so that readers still holding them finish; nothing here reads a
//! snapshot after start-up, so they are renamed and removed at once (a crash in between
//! leaves a `.deleted` file, removed at the next start).
//!
//! At start-up ([`recover_snapshots`]), as `recoverSnapshots`: `.part` and `.deleted`
//! leftovers are removed and so are snapshots that end below the log start offset.

use std::fs;
use std::path::{Path, PathBuf};

use super::metadata_log::{MetadataLog, MetadataLogError};
use super::replay::{SNAPSHOT_SUFFIX, SnapshotId};
use super::snapshot::{self, DELETED_SUFFIX, SnapshotError};

/// Kafka's default `metadata.max.retention.bytes` (100 MiB).
pub const DEFAULT_RETENTION_BYTES: i64 = 100 * 1024 * 1024;
/// Kafka's default `metadata.max.retention.ms` (7 days).
pub const DEFAULT_RETENTION_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// The retention limits (`metadata.max.retention.bytes`, `metadata.max.retention.ms`; a
/// negative value is no limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Total bytes of segments and snapshots to keep at most.
    pub retention_bytes: i64,
    /// Age of a snapshot (its last record's timestamp) past which it may go.
    pub retention_ms: i64,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            retention_bytes: DEFAULT_RETENTION_BYTES,
            retention_ms: DEFAULT_RETENTION_MS,
        }
    }
}

/// What a retention pass deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CleanReport {
    /// The snapshots deleted.
    pub deleted_snapshots: Vec<SnapshotId>,
    /// Base offsets of the segments deleted.
    pub deleted_segments: Vec<i64>,
}

/// A snapshot on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotFile {
    /// Its id.
    pub id: SnapshotId,
    /// The `.checkpoint` file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> MetadataLogError + '_ {
    move |source| MetadataLogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The snapshots (`.checkpoint` files) in the partition directory `dir`, oldest first.
pub fn list_snapshots(dir: &Path) -> Result<Vec<SnapshotFile>, MetadataLogError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let Some(id) = entry
            .file_name()
            .to_str()
            .and_then(SnapshotId::from_file_name)
        else {
            continue;
        };
        let path = entry.path();
        let size = entry.metadata().map_err(io_error(&path))?.len();
        out.push(SnapshotFile { id, path, size });
    }
    out.sort_by_key(|s| s.id);
    Ok(out)
}

/// Deletes a snapshot: renamed to `.checkpoint.deleted` (Kafka's `markForDelete`), then
/// removed.
fn delete_snapshot(file: &SnapshotFile) -> Result<(), MetadataLogError> {
    let name = file.id.file_name();
    let stem = name.strip_suffix(SNAPSHOT_SUFFIX).unwrap_or(&name);
    let deleted = file.path.with_file_name(format!("{stem}{DELETED_SUFFIX}"));
    fs::rename(&file.path, &deleted).map_err(io_error(&file.path))?;
    fs::remove_file(&deleted).map_err(io_error(&deleted))?;
    Ok(())
}

fn snapshot_error(error: SnapshotError) -> MetadataLogError {
    match error {
        SnapshotError::Io { path, source } => MetadataLogError::Io { path, source },
        other => MetadataLogError::Corrupt {
            path: PathBuf::new(),
            reason: other.to_string(),
        },
    }
}

/// At start-up: removes `.part`/`.deleted` leftovers and the snapshots that end below the
/// log start offset (Kafka's `recoverSnapshots`). Returns the leftovers and snapshots
/// removed.
pub fn recover_snapshots(log: &MetadataLog) -> Result<Vec<PathBuf>, MetadataLogError> {
    let mut removed = snapshot::remove_leftovers(log.dir())
        .map_err(snapshot_error)?
        .removed;
    let start = log.log_start_offset()?;
    for file in list_snapshots(log.dir())? {
        if file.id.end_offset < start {
            fs::remove_file(&file.path).map_err(io_error(&file.path))?;
            tracing::info!(file = %file.path.display(), log_start_offset = start, "deleted a snapshot below the log start offset");
            removed.push(file.path);
        }
    }
    Ok(removed)
}

/// Kafka's `deleteBeforeSnapshot`: moves the log start to `next`'s end offset, deleting the
/// segments wholly below it and the snapshots before it. Returns whether anything was
/// deleted.
fn delete_before(
    log: &mut MetadataLog,
    snapshots: &mut Vec<SnapshotFile>,
    next: SnapshotId,
    start: &mut i64,
    report: &mut CleanReport,
) -> Result<bool, MetadataLogError> {
    let Some(latest) = snapshots.last().map(|s| s.id) else {
        return Ok(false);
    };
    if !snapshots.iter().any(|s| s.id == next)
        || *start >= next.end_offset
        || next.end_offset > latest.end_offset
    {
        return Ok(false);
    }
    *start = next.end_offset;
    let segments = log.delete_segments_below(next.end_offset)?;
    let mut forgotten = Vec::new();
    while snapshots.first().is_some_and(|s| s.id < next) {
        let file = snapshots.remove(0);
        delete_snapshot(&file)?;
        forgotten.push(file.id);
    }
    let deleted = !segments.is_empty() || !forgotten.is_empty();
    report.deleted_segments.extend(segments);
    report.deleted_snapshots.extend(forgotten);
    Ok(deleted)
}

/// One retention pass (Kafka's `maybeClean`; see the module docs) at time `now_ms`.
pub fn maybe_clean(
    log: &mut MetadataLog,
    policy: RetentionPolicy,
    now_ms: i64,
) -> Result<CleanReport, MetadataLogError> {
    let mut report = CleanReport::default();
    let mut snapshots = list_snapshots(log.dir())?;
    let mut start = log.log_start_offset()?;

    // cleanSnapshotsRetentionSize
    if policy.retention_bytes >= 0 && snapshots.len() >= 2 {
        let mut snapshot_total: u64 = snapshots.iter().map(|s| s.size).sum();
        while snapshots.len() >= 2 {
            let log_size: u64 = log.segments()?.iter().map(|(_, _, size)| size).sum();
            if log_size + snapshot_total <= policy.retention_bytes as u64 {
                break;
            }
            snapshot_total -= snapshots[0].size;
            let next = snapshots[1].id;
            if !delete_before(log, &mut snapshots, next, &mut start, &mut report)? {
                break;
            }
        }
    }

    // cleanSnapshotsRetentionMs
    if policy.retention_ms >= 0 {
        while snapshots.len() >= 2 {
            let timestamp = match snapshot::read_last_contained_timestamp(&snapshots[0].path) {
                Ok(timestamp) => timestamp,
                Err(error) => {
                    // Kafka skips a snapshot it cannot read the timestamp of.
                    tracing::warn!(%error, "cannot read a snapshot's timestamp");
                    break;
                }
            };
            if now_ms - timestamp <= policy.retention_ms {
                break;
            }
            let next = snapshots[1].id;
            if !delete_before(log, &mut snapshots, next, &mut start, &mut report)? {
                break;
            }
        }
    }
    for id in &report.deleted_snapshots {
        tracing::info!(snapshot = %id.file_name(), "deleted a metadata snapshot past retention");
    }
    Ok(report)
}
