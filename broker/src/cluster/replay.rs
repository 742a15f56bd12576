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
//! # Where the log starts
//!
//! As in Kafka's `LogLoader`, the log starts at the base offset of its first segment, and
//! its first batch may be past it: the "Build your own Kafka" course writes
//! `00000000000000000000.log` with a first batch at offset 1, and Kafka 4 serves that log.
//! A first segment past offset 0 means older segments were deleted, which Kafka only does
//! below a snapshot: without a snapshot reaching it, that is an error (Kafka's
//! `KafkaMetadataLog.recoverSnapshots`: "Inconsistent snapshot state"). From the first batch
//! on (or from the snapshot's end offset), every batch must start right after the one
//! before: a gap or an overlap between consecutive batches is an error.
//!
//! # Recovery of the tail
//!
//! Kafka recovers the metadata log at every start (`KafkaMetadataLog` opens it with
//! `lastShutdownClean = false` and recovery point 0), and `LogSegment.recover` truncates at
//! the first batch that is not whole and valid. What an interrupted append leaves at the
//! end of the last segment is tolerated the same way, clean shutdown marker or not: a
//! partial batch, zeros, a garbage header (a wrong magic byte, a length past the end of the
//! file) or a batch failing its CRC. It is logged (file, position, bytes dropped) and
//! [`LoadedMetadata::truncate_at`] says where the log must be truncated before anything is
//! appended (this function never modifies files). Two rules keep committed metadata, where
//! Kafka would truncate (and delete the later segments): damage in a segment that is not
//! the last one, and damage followed (at the position its length field gives) by a valid
//! batch, cannot be an interrupted append; they are errors naming the file and the byte
//! position. Dropping committed records would make start-up delete the directories of the
//! topics they created. Partial files Kafka leaves behind (`*.checkpoint.part`,
//! `*.deleted`, `*.swap`, `*.cleaned`) and indexes are ignored.
//!
//! # A damaged snapshot
//!
//! Snapshots are written as `.checkpoint.part` and renamed once complete and synced, so a
//! crash leaves no partial `.checkpoint` (the `.part` files are ignored here and deleted
//! when the log is opened). A `.checkpoint` that still does not read (a bad CRC, no
//! footer: damage on disk) is skipped with a warning and the next older snapshot is tried,
//! then the log from offset 0 if it still starts there; the segments must continue
//! without a gap from whichever snapshot is used, else it is an error. (Kafka's loader
//! fails on such a snapshot; falling back loses nothing, since the records are read from
//! an older, whole state plus the log.) If none can be used, the newest one's error is
//! returned.
//!
//! Files are read whole (one at a time), synchronously: call [`load`] before starting the
//! runtime or from `spawn_blocking`. The INFO line at the end names the snapshot used and
//! how long the load took.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use gregor_protocol::records::{
    Batch, ControlRecordType, Record, RecordBatch, RecordBatches, RecordsError,
};
use gregor_protocol::{DecodeError, DecodeErrorKind, MetadataRecord};

use gregor_protocol::Decodable;
use gregor_protocol::messages::kraft_version_record::KRaftVersionRecord;
use gregor_protocol::messages::voters_record::VotersRecord;

use super::image::{ImageError, MetadataImage};
use super::meta_properties::{MetaProperties, MetaPropertiesError};
use super::snapshot::KRaftState;
use crate::storage::CLEAN_SHUTDOWN_FILE;

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
    /// Bytes of log batches replayed after the snapshot (all of them without one): what
    /// Kafka's `SnapshotGenerator` counts towards the next snapshot after loading.
    pub bytes_since_snapshot: u64,
    /// How long the load took.
    pub elapsed: std::time::Duration,
    /// The last `KRaftVersionRecord` and `VotersRecord` read (control records of the
    /// snapshot header or the log): what a snapshot carries over.
    pub kraft: KRaftState,
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
    let started = std::time::Instant::now();
    let meta = MetaProperties::read(log_dir)?;
    let dir = log_dir.join(METADATA_PARTITION_DIR);
    let mut replay = Replay::new();
    let mut loaded = LoadedMetadata {
        image: MetadataImage::empty(),
        meta,
        next_offset: 0,
        last_epoch: 0,
        truncate_at: None,
        snapshot: None,
        discarded_transaction: None,
        bytes_since_snapshot: 0,
        elapsed: std::time::Duration::ZERO,
        kraft: KRaftState::default(),
    };
    let Some((snapshots, segments)) = list_files(&dir)? else {
        tracing::info!(dir = %dir.display(), "no metadata log: starting from an empty image");
        return Ok(loaded);
    };

    let mut newest_error = None;
    for (id, path) in snapshots.iter().rev() {
        match replay.load_snapshot(path, *id) {
            Ok(()) => {
                loaded.snapshot = Some(*id);
                break;
            }
            Err(error) => {
                tracing::warn!(
                    file = %path.display(),
                    %error,
                    "cannot read the metadata snapshot: trying an older one"
                );
                newest_error.get_or_insert(error);
                replay = Replay::new();
            }
        }
    }
    if let Some(error) = newest_error
        && loaded.snapshot.is_none()
        && segments.first().is_none_or(|(base, _)| *base > 0)
    {
        return Err(error);
    }
    if let Some((base, path)) = segments.first()
        && *base > 0
        && loaded.snapshot.is_none()
    {
        // With a snapshot, a gap after it is reported with the first batch past it.
        let reason = format!(
            "the metadata log starts at offset {base} but there is no snapshot of the \
             records before it"
        );
        return Err(malformed(path, 0, reason));
    }
    // A segment is wholly in the snapshot when the next one starts at or before its end.
    let first = segments
        .iter()
        .rposition(|(base, _)| *base <= replay.snapshot_end)
        .unwrap_or(0);
    for (i, (base, path)) in segments.iter().enumerate().skip(first) {
        let is_last = i + 1 == segments.len();
        if let Some(tail) = replay.read_segment(path, *base, is_last)? {
            let clean = log_dir.join(CLEAN_SHUTDOWN_FILE).is_file();
            tracing::warn!(
                file = %path.display(),
                position = tail.position,
                dropped_bytes = tail.dropped_bytes,
                reason = %tail.reason,
                clean_shutdown_marker = clean,
                next_offset = replay.next_offset.unwrap_or(replay.snapshot_end),
                "the metadata log ends with bytes that are not a whole, valid batch (an \
                 interrupted append): ignoring them; the segment is truncated at this position"
            );
            loaded.truncate_at = Some((path.clone(), tail.position));
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
    let next_offset = replay.next_offset.unwrap_or(replay.snapshot_end);
    loaded.elapsed = started.elapsed();
    tracing::info!(
        dir = %dir.display(),
        from_snapshot = %loaded.snapshot.map_or("none".to_string(), |id| id.file_name()),
        replay_ms = loaded.elapsed.as_millis() as u64,
        bytes_after_snapshot = replay.bytes_replayed,
        segments = segments.len(),
        first_offset = ?replay.first_offset,
        next_offset,
        epoch = replay.last_epoch,
        topics = replay.image.topic_count(),
        brokers = replay.image.brokers().len(),
        "loaded the cluster metadata"
    );
    loaded.image = replay.image;
    loaded.next_offset = next_offset;
    loaded.last_epoch = replay.last_epoch;
    loaded.bytes_since_snapshot = replay.bytes_replayed;
    loaded.kraft = replay.kraft;
    Ok(loaded)
}

/// Reads the snapshot file `path` of snapshot `id` alone (no log segments): its image (at
/// the snapshot's last offset and epoch) and its KRaft version and voters. What the metadata
/// quorum's state machine starts from, and what it installs from a leader.
pub fn load_snapshot_file(
    path: &Path,
    id: SnapshotId,
) -> Result<(MetadataImage, KRaftState), ReplayError> {
    let mut replay = Replay::new();
    replay.load_snapshot(path, id)?;
    Ok((replay.image, replay.kraft))
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
    /// One past the last offset read (the snapshot's end offset after a snapshot); `None`
    /// before the first batch of a log without a snapshot, which may start anywhere.
    next_offset: Option<i64>,
    /// Base offset of the first log batch replayed.
    first_offset: Option<i64>,
    /// Epoch of the last batch read.
    last_epoch: i32,
    /// End offset of the loaded snapshot (0 without one): lower offsets are skipped.
    snapshot_end: i64,
    /// Bytes of log batches replayed (past the snapshot).
    bytes_replayed: u64,
    /// The KRaft version and voters last read.
    kraft: KRaftState,
}

impl Replay {
    fn new() -> Replay {
        Replay {
            image: MetadataImage::empty(),
            next_offset: None,
            first_offset: None,
            last_epoch: 0,
            snapshot_end: 0,
            bytes_replayed: 0,
            kraft: KRaftState::default(),
        }
    }

    /// Keeps a `KRaftVersionRecord` or `VotersRecord` control record.
    fn note_kraft(
        &mut self,
        path: &Path,
        position: usize,
        record_type: ControlRecordType,
        record: &Record,
    ) -> Result<(), ReplayError> {
        if !matches!(
            record_type,
            ControlRecordType::KRaftVersion | ControlRecordType::KRaftVoters
        ) {
            return Ok(());
        }
        let Some(mut value) = record.value.clone() else {
            return Err(malformed(
                path,
                position,
                "a KRaft control record without a value",
            ));
        };
        let bad = |e: DecodeError| {
            malformed(
                path,
                position,
                format!("cannot decode a KRaft control record: {e}"),
            )
        };
        if record_type == ControlRecordType::KRaftVersion {
            let version = KRaftVersionRecord::decode(&mut value, 0).map_err(bad)?;
            self.kraft.kraft_version = version.kraft_version;
        } else {
            self.kraft.voters = Some(VotersRecord::decode(&mut value, 0).map_err(bad)?);
        }
        Ok(())
    }
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

/// The end of the last segment from the first byte that is not a whole, valid batch.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Tail {
    /// Byte position where the valid batches end.
    position: u64,
    /// Bytes from there to the end of the file.
    dropped_bytes: u64,
    /// What was found there.
    reason: String,
}

/// What is wrong with the entry at some position of a segment.
enum Damage {
    /// It does not parse or fails its checks (magic, length, CRC, records).
    Corrupt(RecordsError),
    /// A legacy message: KRaft only writes v2 batches.
    Legacy(i8),
    /// It is cut short by the end of the file.
    Partial,
}

impl Damage {
    fn describe(&self) -> String {
        match self {
            Damage::Corrupt(source) => source.to_string(),
            Damage::Legacy(magic) => format!("legacy message (magic {magic})"),
            Damage::Partial => "partial batch at the end of the file".to_string(),
        }
    }

    fn into_error(self, path: &Path, position: usize) -> ReplayError {
        match self {
            Damage::Corrupt(source) => corrupt(path, position, source),
            Damage::Legacy(magic) => malformed(
                path,
                position,
                format!("legacy message (magic {magic}) in the metadata log"),
            ),
            Damage::Partial => malformed(
                path,
                position,
                "partial batch at the end of a segment that is not the last",
            ),
        }
    }
}

/// Whether the damaged entry at `position` is followed, at the position its length field
/// gives, by a whole batch that passes its CRC: then the damage is inside the log, not the
/// remains of an interrupted append (each append is synced before the next one starts).
fn valid_batch_follows(data: &Bytes, position: usize) -> bool {
    let rest = &data[position..];
    if rest.len() < 12 {
        return false;
    }
    let length = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
    let Some(next) = usize::try_from(length)
        .ok()
        .and_then(|length| position.checked_add(12)?.checked_add(length))
    else {
        return false;
    };
    if next >= data.len() {
        return false;
    }
    matches!(
        RecordBatches::new(data.slice(next..)).next(),
        Some(Ok(Batch::V2(batch))) if batch.validate().is_ok()
    )
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
                    // KRaft version and voters records: not metadata, kept for snapshots.
                    other => self.note_kraft(path, position, other, &record)?,
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
        self.next_offset = Some(id.end_offset);
        self.last_epoch = id.epoch;
        tracing::debug!(file = %path.display(), ?id, "loaded the metadata snapshot");
        Ok(())
    }

    /// Reads one segment; returns the tail to truncate (only in the last segment, see the
    /// module docs).
    fn read_segment(
        &mut self,
        path: &Path,
        base_offset: i64,
        is_last: bool,
    ) -> Result<Option<Tail>, ReplayError> {
        let data = read_file(path)?;
        let mut batches = RecordBatches::new(data.clone());
        let (position, damage) = loop {
            let position = batches.position();
            let Some(item) = batches.next() else {
                if batches.is_truncated() {
                    break (batches.position(), Damage::Partial);
                }
                return Ok(None);
            };
            let batch = match item {
                Ok(Batch::V2(batch)) => batch,
                Ok(Batch::Legacy(message)) => break (position, Damage::Legacy(message.magic)),
                Err(source) => break (position, Damage::Corrupt(source)),
            };
            if let Err(source) = batch.validate() {
                break (position, Damage::Corrupt(source));
            }
            if batch.base_offset() < base_offset {
                let reason = format!(
                    "batch at offset {} in a segment starting at offset {base_offset}",
                    batch.base_offset()
                );
                return Err(malformed(path, position, reason));
            }
            self.replay_batch(path, &batch)?;
        };
        if !is_last || valid_batch_follows(&data, position) {
            return Err(damage.into_error(path, position));
        }
        Ok(Some(Tail {
            position: position as u64,
            dropped_bytes: (data.len() - position) as u64,
            reason: damage.describe(),
        }))
    }

    fn replay_batch(&mut self, path: &Path, batch: &RecordBatch) -> Result<(), ReplayError> {
        let position = batch.position();
        if batch.next_offset() <= self.snapshot_end {
            return Ok(()); // wholly in the snapshot
        }
        // The first batch of a log without a snapshot starts the log wherever it is.
        let expected = *self.next_offset.get_or_insert(batch.base_offset());
        self.first_offset.get_or_insert(batch.base_offset());
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
        if batch.is_control() {
            for record in batch.records() {
                let record = record.map_err(|source| corrupt(path, position, source))?;
                let key = record
                    .control_key()
                    .map_err(|source| corrupt(path, position, source))?;
                self.note_kraft(path, position, key.record_type, &record)?;
            }
        } else {
            for record in batch.records() {
                let record = record.map_err(|source| corrupt(path, position, source))?;
                if record.offset < self.snapshot_end {
                    continue;
                }
                self.apply_record(path, batch, epoch, &record)?;
            }
        }
        self.next_offset = Some(batch.next_offset());
        self.last_epoch = epoch;
        self.bytes_replayed += batch.size() as u64;
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
