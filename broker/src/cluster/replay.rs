//! Loading the KRaft metadata at start-up from Kafka's on-disk layout:
//!
//! ```text
//! <log_dir>/meta.properties
//! <log_dir>/__cluster_metadata-0/00000000000000004096-0000000003.checkpoint   snapshot
//! <log_dir>/__cluster_metadata-0/00000000000000000000.log                      segments
//! <log_dir>/__cluster_metadata-0/00000000000000005000.log
//! ```
//!
//! [`load`] applies the newest snapshot (`<20-digit end offset>-<10-digit epoch>.checkpoint`:
//! a control batch with a `SnapshotHeaderRecord`, data batches of framed metadata records, a
//! control batch with a `SnapshotFooterRecord`), then every log segment (`<20-digit base
//! offset>.log`) in offset order, skipping what the snapshot already holds. Control batches
//! of the log (leader changes, KRaft version and voters records) are skipped but count for
//! the next offset and the epoch. Every batch's CRC is checked.
//!
//! A partial or corrupt batch that ends the last segment is what an unclean shutdown
//! leaves: it is tolerated with a warning, and [`LoadedMetadata::truncate_at`] says where the
//! log should be truncated before anything is appended (this function never modifies
//! files). Corruption anywhere else is an error naming the file and the byte position.
//! Partial files Kafka leaves behind (`*.checkpoint.part`, `*.deleted`, `*.swap`,
//! `*.cleaned`) and indexes are ignored.
//!
//! Files are read whole (one at a time), synchronously: call [`load`] before starting the
//! runtime or from `spawn_blocking`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use gregor_protocol::records::{
    Batch, ControlRecordType, Record, RecordBatch, RecordBatches, RecordsError,
};
use gregor_protocol::{DecodeError, DecodeErrorKind, MetadataRecord};

use super::image::{ImageError, MetadataImage};
use super::meta_properties::{MetaProperties, MetaPropertiesError};

/// The directory of the metadata log's only partition, inside the metadata log directory.
pub const METADATA_PARTITION_DIR: &str = "__cluster_metadata-0";

/// Suffix of log segment files.
pub const LOG_SUFFIX: &str = ".log";
/// Suffix of snapshot files.
pub const SNAPSHOT_SUFFIX: &str = ".checkpoint";

/// A snapshot's id: the offset after its last record and the epoch of that record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SnapshotId {
    /// The first offset the snapshot does not contain.
    pub end_offset: i64,
    /// The epoch of the last record it contains.
    pub epoch: i32,
}

impl SnapshotId {
    /// The snapshot's file name, `<20-digit end offset>-<10-digit epoch>.checkpoint`.
    pub fn file_name(&self) -> String {
        format!(
            "{:020}-{:010}{SNAPSHOT_SUFFIX}",
            self.end_offset, self.epoch
        )
    }

    /// Parses a snapshot file name (`None` for anything else, `.checkpoint.part` included).
    pub fn from_file_name(name: &str) -> Option<SnapshotId> {
        let stem = name.strip_suffix(SNAPSHOT_SUFFIX)?;
        let (offset, epoch) = stem.split_once('-')?;
        if offset.len() != 20 || epoch.len() != 10 {
            return None;
        }
        Some(SnapshotId {
            end_offset: parse_digits(offset)?,
            epoch: i32::try_from(parse_digits(epoch)?).ok()?,
        })
    }
}

/// The file name of the log segment starting at `base_offset` (`<20 digits>.log`).
pub fn segment_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}{LOG_SUFFIX}")
}

/// The base offset in a log segment file name (`None` for anything else).
pub fn parse_segment_file_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(LOG_SUFFIX)?;
    if stem.len() != 20 {
        return None;
    }
    parse_digits(stem)
}

fn parse_digits(text: &str) -> Option<i64> {
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// What [`load`] read.
#[derive(Clone, Debug)]
pub struct LoadedMetadata {
    /// The metadata: the snapshot, then the log, without an unfinished transaction.
    pub image: MetadataImage,
    /// `<log_dir>/meta.properties`, if the directory is formatted.
    pub meta: Option<MetaProperties>,
    /// The offset the next record appended to the metadata log gets: one past the last batch
    /// read (or the snapshot's end offset; 0 for an empty log).
    pub next_offset: i64,
    /// The partition leader epoch of the last batch read (or the snapshot's epoch; 0 for an
    /// empty log).
    pub last_epoch: i32,
    /// A torn tail at the end of the last segment: the file and the byte position to
    /// truncate it to.
    pub truncate_at: Option<(PathBuf, u64)>,
    /// The snapshot that was loaded, if any.
    pub snapshot: Option<SnapshotId>,
    /// Offset of the `BeginTransactionRecord` of a transaction that the log ends inside of;
    /// its records are not in the image. Before appending, a writer must end it with an
    /// `AbortTransactionRecord`, as Kafka's controller does when it becomes active.
    pub discarded_transaction: Option<i64>,
}

/// Why the metadata could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A file or directory could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// `meta.properties` is invalid.
    #[error(transparent)]
    MetaProperties(#[from] MetaPropertiesError),
    /// A batch is corrupt (bad CRC, bad header, malformed records) where no torn write can
    /// explain it.
    #[error("{}: corrupt record batch at byte {position}: {source}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte position of the batch in the file.
        position: u64,
        /// What is wrong with it.
        source: RecordsError,
    },
    /// The files are readable but do not form a valid metadata log or snapshot (missing or
    /// overlapping offsets, legacy batches, a snapshot without header or footer, ...).
    #[error("{}: byte {position}: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Byte position of the batch in the file.
        position: u64,
        /// What is wrong.
        reason: String,
    },
    /// A record of a type this broker does not know (Kafka's loader fails on them too).
    #[error(
        "{}: unknown metadata record type {record_type} at offset {offset} (batch at byte {position})",
        path.display()
    )]
    UnknownRecordType {
        /// The file.
        path: PathBuf,
        /// Byte position of the batch in the file.
        position: u64,
        /// Offset of the record (in the snapshot's own offsets for a snapshot).
        offset: i64,
        /// The record type.
        record_type: i16,
    },
    /// A record that does not decode.
    #[error(
        "{}: cannot decode the metadata record at offset {offset} (batch at byte {position}): {source}",
        path.display()
    )]
    Decode {
        /// The file.
        path: PathBuf,
        /// Byte position of the batch in the file.
        position: u64,
        /// Offset of the record (in the snapshot's own offsets for a snapshot).
        offset: i64,
        /// The decoding error.
        source: DecodeError,
    },
    /// A record that cannot be applied.
    #[error("{} (batch at byte {position}): {source}", path.display())]
    Apply {
        /// The file.
        path: PathBuf,
        /// Byte position of the batch in the file.
        position: u64,
        /// Why the record cannot be applied (names its offset).
        source: ImageError,
    },
}

/// Loads `<log_dir>/meta.properties` and the metadata log in `<log_dir>/__cluster_metadata-0`
/// (see the module docs). A directory without the metadata partition gives an empty image.
pub fn load(log_dir: &Path) -> Result<LoadedMetadata, ReplayError> {
    let meta = MetaProperties::read(log_dir)?;
    let dir = log_dir.join(METADATA_PARTITION_DIR);
    let mut replay = Replay {
        image: MetadataImage::empty(),
        next_offset: 0,
        last_epoch: 0,
        snapshot_end: 0,
    };
    let mut loaded = LoadedMetadata {
        image: MetadataImage::empty(),
        meta,
        next_offset: 0,
        last_epoch: 0,
        truncate_at: None,
        snapshot: None,
        discarded_transaction: None,
    };
    let Some((snapshots, segments)) = list_files(&dir)? else {
        tracing::info!(dir = %dir.display(), "no metadata log: starting from an empty image");
        return Ok(loaded);
    };

    if let Some((id, path)) = snapshots.last() {
        replay.load_snapshot(path, *id)?;
        loaded.snapshot = Some(*id);
    }
    // A segment is wholly in the snapshot when the next one starts at or before its end.
    let first = segments
        .iter()
        .rposition(|(base, _)| *base <= replay.snapshot_end)
        .unwrap_or(0);
    for (i, (base, path)) in segments.iter().enumerate().skip(first) {
        let is_last = i + 1 == segments.len();
        if let Some(position) = replay.read_segment(path, *base, is_last)? {
            tracing::warn!(
                file = %path.display(),
                position,
                "torn batch at the end of the metadata log (unclean shutdown?): ignoring it; \
                 the log must be truncated at this position"
            );
            loaded.truncate_at = Some((path.clone(), position));
        }
    }
    if let Some((begin, records)) = replay.image.discard_pending_transaction() {
        tracing::warn!(
            begin_offset = begin,
            records,
            "the metadata log ends inside a transaction: discarding its records"
        );
        loaded.discarded_transaction = Some(begin);
    }
    tracing::info!(
        dir = %dir.display(),
        snapshot = ?loaded.snapshot,
        segments = segments.len(),
        next_offset = replay.next_offset,
        epoch = replay.last_epoch,
        topics = replay.image.topic_count(),
        brokers = replay.image.brokers().len(),
        "loaded the cluster metadata"
    );
    loaded.image = replay.image;
    loaded.next_offset = replay.next_offset;
    loaded.last_epoch = replay.last_epoch;
    Ok(loaded)
}

type Listing = (Vec<(SnapshotId, PathBuf)>, Vec<(i64, PathBuf)>);

/// The snapshots and segments of the metadata partition, each sorted by offset; `None` if
/// the directory does not exist.
fn list_files(dir: &Path) -> Result<Option<Listing>, ReplayError> {
    let io_err = |source| ReplayError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(e)),
    };
    let mut snapshots = Vec::new();
    let mut segments = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(id) = SnapshotId::from_file_name(name) {
            snapshots.push((id, entry.path()));
        } else if let Some(base) = parse_segment_file_name(name) {
            segments.push((base, entry.path()));
        } else if name.ends_with(LOG_SUFFIX) || name.ends_with(SNAPSHOT_SUFFIX) {
            tracing::warn!(file = %entry.path().display(), "ignoring a file with an unexpected name");
        }
    }
    snapshots.sort();
    segments.sort();
    Ok(Some((snapshots, segments)))
}

/// Replay state.
struct Replay {
    image: MetadataImage,
    /// One past the last offset read.
    next_offset: i64,
    /// Epoch of the last batch read.
    last_epoch: i32,
    /// End offset of the loaded snapshot (0 without one): lower offsets are skipped.
    snapshot_end: i64,
}

fn read_file(path: &Path) -> Result<Bytes, ReplayError> {
    fs::read(path)
        .map(Bytes::from)
        .map_err(|source| ReplayError::Io {
            path: path.to_path_buf(),
            source,
        })
}

fn malformed(path: &Path, position: usize, reason: impl Into<String>) -> ReplayError {
    ReplayError::Malformed {
        path: path.to_path_buf(),
        position: position as u64,
        reason: reason.into(),
    }
}

fn corrupt(path: &Path, position: usize, source: RecordsError) -> ReplayError {
    ReplayError::Corrupt {
        path: path.to_path_buf(),
        position: position as u64,
        source,
    }
}

/// Whether the unreadable entry at `position` can be the torn last write of the file: the
/// rest of the file is zeros (preallocated or zero-filled after a crash), or the entry's
/// length field says it ends exactly at the end of the file.
fn is_torn_tail(data: &[u8], position: usize) -> bool {
    let rest = &data[position..];
    if rest.iter().all(|&b| b == 0) {
        return true;
    }
    if rest.len() < 12 {
        return true;
    }
    let length = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
    usize::try_from(length).is_ok_and(|length| length + 12 == rest.len())
}

impl Replay {
    fn load_snapshot(&mut self, path: &Path, id: SnapshotId) -> Result<(), ReplayError> {
        let data = read_file(path)?;
        let mut batches = RecordBatches::new(data);
        let mut header = false;
        let mut footer = false;
        loop {
            let position = batches.position();
            let Some(item) = batches.next() else { break };
            let batch = match item {
                Ok(Batch::V2(batch)) => batch,
                Ok(Batch::Legacy(message)) => {
                    let reason = format!("legacy message (magic {}) in a snapshot", message.magic);
                    return Err(malformed(path, position, reason));
                }
                Err(source) => return Err(corrupt(path, position, source)),
            };
            batch
                .validate()
                .map_err(|source| corrupt(path, position, source))?;
            for record in batch.records() {
                let record = record.map_err(|source| corrupt(path, position, source))?;
                if footer {
                    return Err(malformed(
                        path,
                        position,
                        "records after the SnapshotFooterRecord",
                    ));
                }
                if !batch.is_control() {
                    if !header {
                        return Err(malformed(
                            path,
                            position,
                            "the snapshot does not start with a SnapshotHeaderRecord",
                        ));
                    }
                    self.apply_record(path, &batch, id.epoch, &record)?;
                    continue;
                }
                let key = record
                    .control_key()
                    .map_err(|source| corrupt(path, position, source))?;
                match key.record_type {
                    ControlRecordType::SnapshotHeader if !header => header = true,
                    ControlRecordType::SnapshotHeader => {
                        return Err(malformed(path, position, "a second SnapshotHeaderRecord"));
                    }
                    _ if !header => {
                        return Err(malformed(
                            path,
                            position,
                            "the snapshot does not start with a SnapshotHeaderRecord",
                        ));
                    }
                    ControlRecordType::SnapshotFooter => footer = true,
                    // KRaft version and voters records: not metadata.
                    _ => {}
                }
            }
        }
        if batches.is_truncated() {
            return Err(malformed(
                path,
                batches.position(),
                "the snapshot ends with a partial batch",
            ));
        }
        if !header || !footer {
            let missing = if header {
                "SnapshotFooterRecord"
            } else {
                "SnapshotHeaderRecord"
            };
            return Err(malformed(
                path,
                batches.position(),
                format!("the snapshot has no {missing}"),
            ));
        }
        if self.image.pending_transaction().is_some() {
            return Err(malformed(
                path,
                batches.position(),
                "the snapshot ends inside a transaction",
            ));
        }
        self.image.set_provenance(id.end_offset - 1, id.epoch);
        self.snapshot_end = id.end_offset;
        self.next_offset = id.end_offset;
        self.last_epoch = id.epoch;
        tracing::debug!(file = %path.display(), ?id, "loaded the metadata snapshot");
        Ok(())
    }

    /// Reads one segment; returns the byte position of a torn tail (only in the last
    /// segment).
    fn read_segment(
        &mut self,
        path: &Path,
        base_offset: i64,
        is_last: bool,
    ) -> Result<Option<u64>, ReplayError> {
        let data = read_file(path)?;
        let mut batches = RecordBatches::new(data.clone());
        loop {
            let position = batches.position();
            let Some(item) = batches.next() else { break };
            let batch = match item {
                Ok(Batch::V2(batch)) => batch,
                Ok(Batch::Legacy(message)) => {
                    // KRaft only writes v2 batches: this is garbage that happens to look like
                    // an old message, torn if it ends the log.
                    if is_last && position + message.size() == data.len() {
                        tracing::warn!(file = %path.display(), position, "garbage at the end of the log");
                        return Ok(Some(position as u64));
                    }
                    let reason = format!(
                        "legacy message (magic {}) in the metadata log",
                        message.magic
                    );
                    return Err(malformed(path, position, reason));
                }
                Err(source) => {
                    if is_last && is_torn_tail(&data, position) {
                        tracing::warn!(file = %path.display(), position, "unreadable tail: {source}");
                        return Ok(Some(position as u64));
                    }
                    return Err(corrupt(path, position, source));
                }
            };
            if let Err(source) = batch.validate() {
                if is_last && position + batch.size() == data.len() {
                    tracing::warn!(file = %path.display(), position, "corrupt last batch: {source}");
                    return Ok(Some(position as u64));
                }
                return Err(corrupt(path, position, source));
            }
            if batch.base_offset() < base_offset {
                let reason = format!(
                    "batch at offset {} in a segment starting at offset {base_offset}",
                    batch.base_offset()
                );
                return Err(malformed(path, position, reason));
            }
            self.replay_batch(path, &batch)?;
        }
        if batches.is_truncated() {
            let position = batches.position();
            if is_last {
                return Ok(Some(position as u64));
            }
            return Err(malformed(
                path,
                position,
                "partial batch at the end of a segment that is not the last",
            ));
        }
        Ok(None)
    }

    fn replay_batch(&mut self, path: &Path, batch: &RecordBatch) -> Result<(), ReplayError> {
        let position = batch.position();
        if batch.next_offset() <= self.snapshot_end {
            return Ok(()); // wholly in the snapshot
        }
        let expected = self.next_offset;
        if batch.base_offset() > expected {
            let reason = format!(
                "batch at offset {} but the log so far ends at offset {expected}: records are \
                 missing",
                batch.base_offset()
            );
            return Err(malformed(path, position, reason));
        }
        if batch.base_offset() < expected && expected > self.snapshot_end {
            let reason = format!(
                "batch at offset {} overlaps records already read up to offset {expected}",
                batch.base_offset()
            );
            return Err(malformed(path, position, reason));
        }
        let epoch = batch.header().partition_leader_epoch;
        if !batch.is_control() {
            for record in batch.records() {
                let record = record.map_err(|source| corrupt(path, position, source))?;
                if record.offset < self.snapshot_end {
                    continue;
                }
                self.apply_record(path, batch, epoch, &record)?;
            }
        }
        self.next_offset = batch.next_offset();
        self.last_epoch = epoch;
        Ok(())
    }

    fn apply_record(
        &mut self,
        path: &Path,
        batch: &RecordBatch,
        epoch: i32,
        record: &Record,
    ) -> Result<(), ReplayError> {
        let position = batch.position();
        let offset = record.offset;
        let Some(value) = &record.value else {
            let reason = format!("the record at offset {offset} has a null value");
            return Err(malformed(path, position, reason));
        };
        let mut buf = value.clone();
        let versioned =
            MetadataRecord::decode_framed(&mut buf).map_err(|source| match source.kind() {
                DecodeErrorKind::UnknownRecordType(record_type) => ReplayError::UnknownRecordType {
                    path: path.to_path_buf(),
                    position: position as u64,
                    offset,
                    record_type: *record_type,
                },
                _ => ReplayError::Decode {
                    path: path.to_path_buf(),
                    position: position as u64,
                    offset,
                    source,
                },
            })?;
        self.image
            .apply_with_epoch(offset, epoch, &versioned.record)
            .map_err(|source| ReplayError::Apply {
                path: path.to_path_buf(),
                position: position as u64,
                source,
            })
    }
}
