//! One partition's log: its segments, reads with Fetch semantics, appends, and the end
//! offset watch that wakes long-polling fetches.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::{Bytes, BytesMut};
use gregor_protocol::records::{
    BatchHeader, LOG_OVERHEAD, MAGIC_V2, RECORD_BATCH_OVERHEAD, set_base_offset,
};
use tokio::sync::watch;

use super::segment::{BatchEntry, MAX_SEGMENT_BYTES, Segment, parse_segment_file_name};
use super::{ReadError, StorageError, unpoison};

/// Most segments one [`PartitionLog::read`] spans; a read that would cross more returns the
/// batches of the first ones (the client fetches the rest next). Kafka itself never crosses
/// a segment boundary in one read.
pub const MAX_SEGMENTS_PER_READ: usize = 16;

/// The name of a partition's directory: `<topic>-<partition>`.
pub fn partition_dir_name(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

/// The result of [`PartitionLog::read`]: whole batches and the partition's offsets, taken
/// together under the log's lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRead {
    /// Whole batches, exactly as stored (v2 batches, or legacy messages from old logs);
    /// empty at the log end or when nothing fits.
    pub records: Bytes,
    /// The high watermark (the log end offset on this single-node broker).
    pub high_watermark: i64,
    /// The log start offset.
    pub log_start_offset: i64,
    /// The last stable offset (the high watermark until transactions are tracked).
    pub last_stable_offset: i64,
}

/// What [`PartitionLog::append_batch`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset assigned to the first record.
    pub base_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// The log end offset after the append.
    pub log_end_offset: i64,
}

/// A summary of one segment, from [`PartitionLog::segments`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The base offset the file is named after.
    pub base_offset: i64,
    /// The offset after its last batch (its base offset if it is empty).
    pub next_offset: i64,
    /// Bytes of whole batches served from it.
    pub size: u64,
    /// Number of batches indexed.
    pub batch_count: usize,
    /// Largest batch max timestamp (-1 if none).
    pub max_timestamp: i64,
    /// The `.log` file.
    pub path: PathBuf,
}

/// Where [`PartitionLog::open`] stopped serving a log early: a partial batch at the end of a
/// segment (a crash mid-write), or bytes that are not a batch chaining on the previous one.
/// Nothing from `position` on is served, nor any later segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The segment file.
    pub path: PathBuf,
    /// Its base offset.
    pub segment_base_offset: i64,
    /// Byte position where the served data ends.
    pub position: u64,
    /// Size of the file when it was opened.
    pub file_len: u64,
    /// What was found at `position`.
    pub reason: &'static str,
    /// Later segment files that were not opened.
    pub dropped_segments: Vec<PathBuf>,
}

/// One partition's log in Kafka's layout: `<log dir>/<topic>-<partition>/<base>.log`.
///
/// Shared as `Arc<PartitionLog>`. The segment list and its batch index sit behind an
/// `RwLock` that readers hold only to look up offsets, never during file I/O; appends are
/// serialised by a separate writer lock and take the `RwLock` for writing only to publish
/// a batch already written, so they never wait for a read's I/O, and readers never see a
/// batch before it is whole in the file.
#[derive(Debug)]
pub struct PartitionLog {
    topic: String,
    partition: i32,
    log_dir: PathBuf,
    dir: PathBuf,
    state: RwLock<LogState>,
    writer: Mutex<Option<ActiveWriter>>,
    end_offset: watch::Sender<i64>,
    torn_tail: Option<TornTail>,
    deleted: AtomicBool,
}

/// What readers look up.
#[derive(Debug)]
struct LogState {
    /// Sorted by base offset; their offset ranges do not overlap.
    segments: Vec<Segment>,
    log_start_offset: i64,
    log_end_offset: i64,
}

/// The write handle of the active (last) segment.
#[derive(Debug)]
struct ActiveWriter {
    base_offset: i64,
    file: Arc<File>,
    /// Where the next batch goes.
    position: u64,
}

/// One contiguous byte range of one segment, planned under the lock and read after it.
#[derive(Debug)]
struct ReadRange {
    file: Arc<File>,
    segment_base_offset: i64,
    position: u64,
    len: usize,
}

impl PartitionLog {
    /// Opens the log of `topic`/`partition` in the log directory `dir` (the directory
    /// holding `<topic>-<partition>/`, which must exist).
    ///
    /// Lists the `<20 digits>.log` segment files (other files are ignored), sorts them by
    /// base offset and indexes each one's batches by reading their headers only. The first
    /// torn or non-chaining batch ends the log: it is logged, reported by
    /// [`Self::torn_tail`], and neither it nor anything after it (later segments included)
    /// is served. The first append after a torn tail truncates the file there.
    ///
    /// Blocking: call it from a blocking context.
    pub fn open(dir: &Path, topic: &str, partition: i32) -> Result<PartitionLog, StorageError> {
        let part_dir = dir.join(partition_dir_name(topic, partition));
        let mut found = Vec::new();
        let entries = fs::read_dir(&part_dir).map_err(|e| StorageError::io(&part_dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| StorageError::io(&part_dir, e))?;
            let Some(base) = entry.file_name().to_str().and_then(parse_segment_file_name) else {
                continue;
            };
            let path = entry.path();
            // Follows symbolic links, as Kafka does.
            let metadata = fs::metadata(&path).map_err(|e| StorageError::io(&path, e))?;
            if metadata.is_file() {
                found.push((base, path));
            }
        }
        found.sort_unstable_by_key(|(base, _)| *base);

        let mut segments: Vec<Segment> = Vec::with_capacity(found.len());
        let mut torn_tail = None;
        for (i, (base, path)) in found.iter().enumerate() {
            let upper = found.get(i + 1).map(|(next, _)| *next);
            let min_offset = segments.last().map_or(*base, Segment::next_offset);
            let (segment, stop) = Segment::open(path.clone(), *base, min_offset, upper)
                .map_err(|e| StorageError::io(path, e))?;
            let file_len = segment.file_len;
            segments.push(segment);
            if let Some(stop) = stop {
                let tail = TornTail {
                    path: path.clone(),
                    segment_base_offset: *base,
                    position: stop.position,
                    file_len,
                    reason: stop.reason,
                    dropped_segments: found[i + 1..].iter().map(|(_, p)| p.clone()).collect(),
                };
                tracing::warn!(
                    segment = %tail.path.display(),
                    position = tail.position,
                    file_len = tail.file_len,
                    reason = tail.reason,
                    dropped_segments = tail.dropped_segments.len(),
                    "log ends early: not serving bytes past a torn or corrupt batch"
                );
                torn_tail = Some(tail);
                break;
            }
        }

        let log_start_offset = segments.first().map_or(0, |s| s.base_offset);
        let log_end_offset = segments
            .last()
            .map_or(log_start_offset, Segment::next_offset);
        let (end_offset, _) = watch::channel(log_end_offset);
        tracing::debug!(
            topic,
            partition,
            segments = segments.len(),
            log_start_offset,
            log_end_offset,
            "opened partition log"
        );
        Ok(PartitionLog {
            topic: topic.to_owned(),
            partition,
            log_dir: dir.to_owned(),
            dir: part_dir,
            state: RwLock::new(LogState {
                segments,
                log_start_offset,
                log_end_offset,
            }),
            writer: Mutex::new(None),
            end_offset,
            torn_tail,
            deleted: AtomicBool::new(false),
        })
    }

    /// Creates the directory of `topic`/`partition` in the log directory `dir` if needed
    /// and opens the log; a log without segments gets an empty first segment
    /// (`00000000000000000000.log`), as Kafka creates it.
    pub fn create(dir: &Path, topic: &str, partition: i32) -> Result<PartitionLog, StorageError> {
        let part_dir = dir.join(partition_dir_name(topic, partition));
        fs::create_dir_all(&part_dir).map_err(|e| StorageError::io(&part_dir, e))?;
        let log = PartitionLog::open(dir, topic, partition)?;
        let empty = unpoison(log.state.read()).segments.is_empty();
        if empty {
            let mut writer = unpoison(log.writer.lock());
            let base = log.log_end_offset();
            log.new_segment(&mut writer, base)?;
        }
        Ok(log)
    }

    /// The topic name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partition index.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// `<topic>-<partition>`, for messages.
    pub fn name(&self) -> String {
        partition_dir_name(&self.topic, self.partition)
    }

    /// The partition's directory (`<log dir>/<topic>-<partition>`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The log directory holding the partition's directory.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// Where opening stopped early, if it did (see [`TornTail`]).
    pub fn torn_tail(&self) -> Option<&TornTail> {
        self.torn_tail.as_ref()
    }

    /// The first offset served: the base offset of the first segment (0 for a log without
    /// segments), or higher once raised by [`Self::advance_log_start_offset`].
    pub fn log_start_offset(&self) -> i64 {
        unpoison(self.state.read()).log_start_offset
    }

    /// The offset after the last batch (the offset the next append gets).
    pub fn log_end_offset(&self) -> i64 {
        unpoison(self.state.read()).log_end_offset
    }

    /// The high watermark: the log end offset, as every write is committed on this
    /// single-node broker.
    pub fn high_watermark(&self) -> i64 {
        self.log_end_offset()
    }

    /// The last stable offset: the high watermark until transactions are tracked.
    pub fn last_stable_offset(&self) -> i64 {
        self.high_watermark()
    }

    /// The segments, in offset order.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        unpoison(self.state.read())
            .segments
            .iter()
            .map(|segment| SegmentInfo {
                base_offset: segment.base_offset,
                next_offset: segment.next_offset(),
                size: segment.valid_len,
                batch_count: segment.batches.len(),
                max_timestamp: segment.max_timestamp(),
                path: segment.path.clone(),
            })
            .collect()
    }

    /// The index entry of the batch holding `offset`, or of the first batch after it if
    /// `offset` falls in a gap; `None` past the last batch.
    pub fn find_batch(&self, offset: i64) -> Option<BatchEntry> {
        let state = unpoison(self.state.read());
        let segments = &state.segments;
        let first = segments.partition_point(|s| s.next_offset() <= offset);
        segments[first..].iter().find_map(|segment| {
            let at = segment.batches.partition_point(|b| b.last_offset < offset);
            segment.batches.get(at).copied()
        })
    }

    /// Reads whole batches from `fetch_offset`, with Kafka's Fetch semantics:
    ///
    /// * `fetch_offset` equal to the log end offset: no records.
    /// * below the log start offset or above the log end offset:
    ///   [`ReadError::OffsetOutOfRange`].
    /// * otherwise the batch holding `fetch_offset` (its base offset may be lower: the
    ///   client skips the earlier records) and the batches after it, across segments, while
    ///   the total stays within `max_bytes`. A first batch larger than `max_bytes` is
    ///   returned alone if `min_one_message` (Kafka sets it for the first partition of a
    ///   response), else nothing is.
    ///
    /// The bytes are read once from the file straight into the returned buffer (one
    /// positional read per segment touched, into one allocation of the exact total size).
    ///
    /// Blocking file I/O: async callers use [`Self::read_async`] or wrap the call in
    /// `tokio::task::spawn_blocking`.
    pub fn read(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        min_one_message: bool,
    ) -> Result<LogRead, ReadError> {
        let mut ranges: [Option<ReadRange>; MAX_SEGMENTS_PER_READ] =
            [const { None }; MAX_SEGMENTS_PER_READ];
        let (log_start_offset, high_watermark, total) = {
            let state = unpoison(self.state.read());
            let (log_start, log_end) = (state.log_start_offset, state.log_end_offset);
            if fetch_offset < log_start || fetch_offset > log_end {
                return Err(ReadError::OffsetOutOfRange { log_start, log_end });
            }
            let total = if fetch_offset < log_end {
                plan_read(
                    &state.segments,
                    fetch_offset,
                    max_bytes,
                    min_one_message,
                    &mut ranges,
                )
            } else {
                0
            };
            (log_start, log_end, total)
        };
        let records = if total == 0 {
            Bytes::new()
        } else {
            let mut buf = BytesMut::zeroed(total);
            let mut at = 0;
            for range in ranges.iter().flatten() {
                range
                    .file
                    .read_exact_at(&mut buf[at..at + range.len], range.position)
                    .map_err(|source| ReadError::Io {
                        segment_base_offset: range.segment_base_offset,
                        source,
                    })?;
                at += range.len;
            }
            buf.freeze()
        };
        Ok(LogRead {
            records,
            high_watermark,
            log_start_offset,
            last_stable_offset: high_watermark,
        })
    }

    /// [`Self::read`] on tokio's blocking thread pool (must be called inside a tokio
    /// runtime).
    pub async fn read_async(
        self: &Arc<Self>,
        fetch_offset: i64,
        max_bytes: usize,
        min_one_message: bool,
    ) -> Result<LogRead, ReadError> {
        let log = Arc::clone(self);
        let task =
            tokio::task::spawn_blocking(move || log.read(fetch_offset, max_bytes, min_one_message));
        match task.await {
            Ok(result) => result,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(error) => Err(ReadError::Io {
                segment_base_offset: 0,
                source: io::Error::other(error),
            }),
        }
    }

    /// A receiver of the log end offset: `changed().await` on it returns once the end offset
    /// moved (appends), for fetches waiting on `min_bytes`. The receiver also wakes, with an
    /// error, when the log is dropped.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.end_offset.subscribe()
    }

    /// Waits until the log end offset differs from `seen_end_offset` and returns it
    /// (immediately if it already does).
    pub async fn changed(&self, seen_end_offset: i64) -> i64 {
        let mut receiver = self.subscribe();
        match receiver.wait_for(|&end| end != seen_end_offset).await {
            Ok(end) => *end,
            // The sender lives as long as `self`: unreachable, but harmless.
            Err(_) => self.log_end_offset(),
        }
    }

    /// Appends one encoded v2 batch at the log end offset (rewriting its base offset in
    /// place; the CRC does not cover it), publishes it to readers and wakes subscribers.
    /// Rolls to a new segment when the active one would exceed [`MAX_SEGMENT_BYTES`].
    ///
    /// This is the minimal write path (no validation of the records, no leader epoch or log
    /// append time, no fsync); the Produce path builds on it. Blocking file I/O.
    pub fn append_batch(&self, batch: &mut [u8]) -> Result<AppendInfo, StorageError> {
        let header = check_batch(batch)?;
        let size = batch.len() as u64;
        let mut writer = unpoison(self.writer.lock());
        self.check_not_deleted()?;
        let base_offset = self.log_end_offset();
        let last_offset = base_offset
            .checked_add(i64::from(header.last_offset_delta))
            .filter(|last| *last < i64::MAX)
            .ok_or(StorageError::InvalidBatch("offsets overflow"))?;
        self.prepare_writer(&mut writer)?;
        let position = writer.as_ref().map_or(0, |active| active.position);
        if position > 0 && position + size > MAX_SEGMENT_BYTES {
            self.new_segment(&mut writer, base_offset)?;
        }
        let active = writer.as_mut().expect("the writer is set");
        set_base_offset(batch, base_offset)
            .map_err(|_| StorageError::InvalidBatch("not a v2 batch"))?;
        if let Err(error) = active.file.write_all_at(batch, active.position) {
            // Do not leave part of a batch behind; the next append overwrites it anyway.
            let _ = active.file.set_len(active.position);
            let path = self.segment_path(active.base_offset);
            return Err(StorageError::io(path, error));
        }
        let entry = BatchEntry {
            base_offset,
            last_offset,
            position: active.position as u32,
            size: size as u32,
            max_timestamp: header.max_timestamp,
            magic: MAGIC_V2,
        };
        active.position += size;
        let log_end_offset = last_offset + 1;
        {
            let mut state = unpoison(self.state.write());
            let segment = state.segments.last_mut().expect("the writer's segment");
            segment.batches.push(entry);
            segment.valid_len = active.position;
            segment.file_len = active.position;
            state.log_end_offset = log_end_offset;
        }
        drop(writer);
        self.end_offset.send_replace(log_end_offset);
        Ok(AppendInfo {
            base_offset,
            last_offset,
            log_end_offset,
        })
    }

    /// Starts a new, empty segment at the log end offset (after syncing the previous one to
    /// disk) and returns its base offset; does nothing if the last segment is already empty
    /// and starts there.
    pub fn roll_segment(&self) -> Result<i64, StorageError> {
        let mut writer = unpoison(self.writer.lock());
        self.check_not_deleted()?;
        self.prepare_writer(&mut writer)?;
        let (end, done) = {
            let state = unpoison(self.state.read());
            let end = state.log_end_offset;
            let done = state
                .segments
                .last()
                .is_some_and(|s| s.batches.is_empty() && s.base_offset == end);
            (end, done)
        };
        if !done {
            self.new_segment(&mut writer, end)?;
        }
        Ok(end)
    }

    /// Writes the active segment's data to disk (`fdatasync`).
    pub fn flush(&self) -> Result<(), StorageError> {
        let writer = unpoison(self.writer.lock());
        if let Some(active) = writer.as_ref() {
            active
                .file
                .sync_data()
                .map_err(|e| StorageError::io(self.segment_path(active.base_offset), e))?;
        }
        Ok(())
    }

    /// Raises the log start offset to `offset` (DeleteRecords, retention), if it is higher;
    /// returns the log start offset. Offsets below it are no longer served; segments are not
    /// deleted here. An offset above the log end offset is an error.
    pub fn advance_log_start_offset(&self, offset: i64) -> Result<i64, StorageError> {
        let mut state = unpoison(self.state.write());
        if offset > state.log_end_offset {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start: state.log_start_offset,
                log_end: state.log_end_offset,
            });
        }
        state.log_start_offset = state.log_start_offset.max(offset);
        Ok(state.log_start_offset)
    }

    /// Marks the log deleted: later appends and rolls fail. Taken under the writer lock so
    /// that no append is in flight once it returns.
    pub(crate) fn mark_deleted(&self) {
        let _writer = unpoison(self.writer.lock());
        self.deleted.store(true, Ordering::Release);
    }

    fn check_not_deleted(&self) -> Result<(), StorageError> {
        if self.deleted.load(Ordering::Acquire) {
            return Err(StorageError::Deleted {
                topic: self.topic.clone(),
                partition: self.partition,
            });
        }
        Ok(())
    }

    fn segment_path(&self, base_offset: i64) -> PathBuf {
        Segment::path_in(&self.dir, base_offset)
    }

    /// Makes sure `writer` writes at the end of the last segment: creates the first segment
    /// of an empty log, opens the active segment for writing after `open`, and truncates a
    /// torn tail.
    fn prepare_writer(&self, writer: &mut Option<ActiveWriter>) -> Result<(), StorageError> {
        let active = {
            let state = unpoison(self.state.read());
            state
                .segments
                .last()
                .map(|last| (last.base_offset, last.valid_len, last.file_len))
        };
        let Some((base_offset, valid_len, file_len)) = active else {
            let base = self.log_end_offset();
            return self.new_segment(writer, base);
        };
        if writer
            .as_ref()
            .is_some_and(|w| w.base_offset == base_offset)
        {
            return Ok(());
        }
        if writer.is_none() {
            self.set_aside_dropped_segments()?;
        }
        let path = self.segment_path(base_offset);
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| StorageError::io(&path, e))?;
        if file_len > valid_len {
            tracing::info!(
                segment = %path.display(),
                valid_len,
                file_len,
                "truncating the torn tail before appending"
            );
            file.set_len(valid_len)
                .map_err(|e| StorageError::io(&path, e))?;
            let mut state = unpoison(self.state.write());
            if let Some(last) = state.segments.last_mut() {
                last.file_len = valid_len;
            }
        }
        *writer = Some(ActiveWriter {
            base_offset,
            file: Arc::new(file),
            position: valid_len,
        });
        Ok(())
    }

    /// Renames the segment files after a torn tail (never opened) to `<name>.deleted`, which
    /// Kafka and [`Self::open`] ignore, before the first append: appended offsets would
    /// otherwise collide with theirs when the log is opened again.
    fn set_aside_dropped_segments(&self) -> Result<(), StorageError> {
        let Some(torn) = &self.torn_tail else {
            return Ok(());
        };
        for path in &torn.dropped_segments {
            let mut aside = path.clone().into_os_string();
            aside.push(".deleted");
            match fs::rename(path, &aside) {
                Ok(()) => {
                    tracing::warn!(segment = %path.display(), "set aside a segment after a torn tail");
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(StorageError::io(path, error)),
            }
        }
        Ok(())
    }

    /// Creates the segment file of `base_offset` (which must not exist), publishes it as the
    /// last segment and makes it the writer's; syncs the previous active segment first.
    fn new_segment(
        &self,
        writer: &mut Option<ActiveWriter>,
        base_offset: i64,
    ) -> Result<(), StorageError> {
        if let Some(previous) = writer.as_ref() {
            previous
                .file
                .sync_data()
                .map_err(|e| StorageError::io(self.segment_path(previous.base_offset), e))?;
        }
        let path = self.segment_path(base_offset);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| StorageError::io(&path, e))?;
        let file = Arc::new(file);
        unpoison(self.state.write()).segments.push(Segment::empty(
            base_offset,
            path,
            Arc::clone(&file),
        ));
        *writer = Some(ActiveWriter {
            base_offset,
            file,
            position: 0,
        });
        Ok(())
    }
}

/// Checks that `batch` is exactly one v2 batch and returns its header.
fn check_batch(batch: &[u8]) -> Result<BatchHeader, StorageError> {
    let header = BatchHeader::decode(batch)
        .ok_or(StorageError::InvalidBatch("shorter than a batch header"))?;
    if header.magic != MAGIC_V2 {
        return Err(StorageError::InvalidBatch("magic is not 2"));
    }
    let declared = usize::try_from(header.batch_length)
        .ok()
        .and_then(|length| length.checked_add(LOG_OVERHEAD));
    if declared != Some(batch.len()) || batch.len() < RECORD_BATCH_OVERHEAD {
        return Err(StorageError::InvalidBatch(
            "length field does not match the buffer",
        ));
    }
    if batch.len() as u64 > MAX_SEGMENT_BYTES {
        return Err(StorageError::InvalidBatch("larger than a segment"));
    }
    if header.last_offset_delta < 0 {
        return Err(StorageError::InvalidBatch("negative last offset delta"));
    }
    Ok(header)
}

/// Plans a read: fills `ranges` with the byte ranges to read, segment by segment, and
/// returns their total size (see [`PartitionLog::read`] for the rules).
fn plan_read(
    segments: &[Segment],
    fetch_offset: i64,
    max_bytes: usize,
    min_one_message: bool,
    ranges: &mut [Option<ReadRange>],
) -> usize {
    let mut total = 0usize;
    let mut used = 0;
    // Segments' offset ranges are ordered, so `next_offset` is non-decreasing.
    let first = segments.partition_point(|s| s.next_offset() <= fetch_offset);
    for segment in &segments[first..] {
        if used == ranges.len() {
            break;
        }
        let batches = &segment.batches;
        let from = batches.partition_point(|b| b.last_offset < fetch_offset);
        let Some(first_batch) = batches.get(from) else {
            continue;
        };
        let start = u64::from(first_batch.position);
        let budget = max_bytes.saturating_sub(total) as u64;
        // Batches are contiguous in the file: the bytes up to a batch's end are its end
        // position minus the start.
        let fitting = batches[from..].partition_point(|b| b.end_position() - start <= budget);
        let (count, stop) = if fitting == 0 {
            (usize::from(total == 0 && min_one_message), true)
        } else {
            (fitting, from + fitting < batches.len())
        };
        if count > 0 {
            let len = (batches[from + count - 1].end_position() - start) as usize;
            ranges[used] = Some(ReadRange {
                file: Arc::clone(&segment.file),
                segment_base_offset: segment.base_offset,
                position: start,
                len,
            });
            used += 1;
            total += len;
        }
        if stop {
            break;
        }
    }
    total
}
