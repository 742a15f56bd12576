//! The log cleaner's hooks into a partition (Kafka's `UnifiedLog.replaceSegments` and the
//! `.cleaned`/`.swap` handling of `LogLoader`): a snapshot of the non-active segments for
//! the cleaner to read without locks, the swap of a cleaned segment in place of the ones it
//! replaces, and the completion of an interrupted swap when the log is opened.
//!
//! A swap goes, under the writer lock (so no append, roll or retention runs meanwhile; reads
//! go on): rename the cleaned files `.cleaned` -> `.swap` (the `.log` last: its
//! `.log.swap` is the commit point), sync the directory, delete the replaced segments
//! (except the one with the same base offset, whose files the final rename replaces), rename
//! the `.swap` files to their final names, sync the directory, then publish the new segment
//! in memory. Readers that copied an old segment's handle keep reading its (unlinked) file;
//! the offsets kept are the same, so no reader ever sees a missing range.
//!
//! After a crash at any step, [`complete_interrupted_cleaning`] (when the log is opened)
//! deletes `.cleaned` files (the swap had not begun: the old segments are whole) and, for a
//! `.log.swap`, deletes the segments whose base offset lies in its offset range and renames
//! it (and its index files) into place, as Kafka's `LogLoader` does.

use std::collections::HashMap;

use super::*;
use crate::storage::cleaner::{
    AbortedTxn, CLEANED_SUFFIX, CleanError, CleanInput, CleanPlan, CleanedSegment, Cleaner,
    LogToClean, SWAP_SUFFIX, SegmentToClean,
};

/// Where a test makes a swap stop, as if the broker crashed there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CrashPoint {
    /// After the cleaned files are written, before anything is renamed.
    Cleaned,
    /// After the cleaned files are renamed to `.swap`.
    SwapRenamed,
    /// After the replaced segments are deleted, before the `.swap` files are renamed.
    OldDeleted,
}

/// What the cleaner needs of a partition at the start of a cleaning.
#[derive(Debug)]
pub(crate) struct CleaningView {
    /// Every segment but the active (last) one.
    pub(crate) segments: Vec<SegmentToClean>,
    /// Base offset of the active segment.
    pub(crate) active_base_offset: i64,
    /// The log start offset.
    pub(crate) log_start_offset: i64,
    /// The log end offset.
    pub(crate) log_end_offset: i64,
    /// The last stable offset.
    pub(crate) last_stable_offset: i64,
}

impl PartitionLog {
    /// A snapshot of the non-active segments (handles and batch indexes), taken under the
    /// segment lock and read without it.
    pub(crate) fn cleaning_view(&self) -> CleaningView {
        let (mut segments, paths, active_base_offset, log_start_offset, log_end_offset) = {
            let state = unpoison(self.state.read());
            let n = state.segments.len().saturating_sub(1);
            let non_active = &state.segments[..n];
            let segments: Vec<SegmentToClean> = non_active
                .iter()
                .map(|s| SegmentToClean {
                    base_offset: s.base_offset,
                    file: Arc::clone(&s.file),
                    batches: s.batches().to_vec(),
                    size: s.valid_len,
                    offset_index_bytes: 0,
                    time_index_bytes: 0,
                    last_modified_ms: 0,
                    largest_timestamp: s.max_timestamp(),
                })
                .collect();
            let paths: Vec<PathBuf> = non_active.iter().map(|s| s.path.clone()).collect();
            let active = state
                .segments
                .last()
                .map_or(state.log_end_offset, |s| s.base_offset);
            (
                segments,
                paths,
                active,
                state.log_start_offset,
                state.log_end_offset,
            )
        };
        // File metadata is read without the lock.
        for (segment, path) in segments.iter_mut().zip(&paths) {
            let base_offset = segment.base_offset;
            let file_len = |suffix: &str| {
                fs::metadata(self.dir.join(format!("{base_offset:020}.{suffix}")))
                    .map_or(0, |m| m.len())
            };
            segment.offset_index_bytes = file_len("index");
            segment.time_index_bytes = file_len("timeindex");
            segment.last_modified_ms = fs::metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            if segment.largest_timestamp < 0 {
                segment.largest_timestamp = segment.last_modified_ms;
            }
        }
        CleaningView {
            segments,
            active_base_offset,
            log_start_offset,
            log_end_offset,
            last_stable_offset: self.last_stable_offset(),
        }
    }

    /// Whether the log still accepts cleaning (not deleted, closed or moved away).
    pub(crate) fn cleanable(&self) -> bool {
        !self.deleted.load(Ordering::Acquire)
            && !self.closed.load(Ordering::Acquire)
            && self.successor.get().is_none()
    }

    /// One cleaning of this log now, from its start (no checkpoint), as a cleaner thread
    /// would do it with the log's aborted transactions: for tools and benchmarks. Blocking
    /// file I/O.
    pub fn clean_now(
        self: &Arc<Self>,
        cleaner: &mut Cleaner,
        now_ms: i64,
    ) -> Result<CleanPlan, CleanError> {
        let (chosen, _) = LogToClean::compute(Arc::clone(self), None, now_ms);
        let aborted = self.aborted_for_cleaning(&chosen);
        self.compact(cleaner, &chosen, &aborted, now_ms, &|| false, None)
    }

    /// The aborted transactions below the end of `chosen`'s cleanable range, from the
    /// segments' transaction indexes (as Kafka's cleaner reads them).
    pub fn aborted_for_cleaning(&self, chosen: &LogToClean) -> Vec<AbortedTxn> {
        self.aborted_transactions(self.log_start_offset(), chosen.first_uncleanable_offset)
            .into_iter()
            .map(|t| AbortedTxn {
                producer_id: t.producer_id,
                first_offset: t.first_offset,
                last_offset: t.last_offset,
            })
            .collect()
    }

    /// Cleans the log from `chosen`'s first dirty offset up to its first uncleanable offset
    /// (Kafka's `Cleaner.clean`): see [`Cleaner::clean`]; each cleaned group is swapped in as it is
    /// written. `aborted` lists the partition's aborted transactions (their records are
    /// dropped). `stop()` is polled between batches. Blocking file I/O.
    pub(crate) fn compact(
        &self,
        cleaner: &mut Cleaner,
        chosen: &LogToClean,
        aborted: &[AbortedTxn],
        now_ms: i64,
        stop: &dyn Fn() -> bool,
        crash: Option<CrashPoint>,
    ) -> Result<CleanPlan, CleanError> {
        let config = self.config();
        let producers: HashMap<i64, i64> = self
            .producer_states()
            .into_iter()
            .filter(|(_, entry)| entry.last_offset() >= 0)
            .map(|(id, entry)| (id, entry.last_offset()))
            .collect();
        let input = CleanInput {
            segments: &chosen.view.segments,
            first_dirty_offset: chosen.first_dirty_offset,
            first_uncleanable_offset: chosen.first_uncleanable_offset,
            config: &config,
            aborted,
            last_offsets_of_active_producers: &producers,
            now_ms,
        };
        let aborted_now = || stop() || !self.cleanable();
        cleaner.clean(&self.dir, &input, &aborted_now, &mut |cleaned| {
            self.swap_in_cleaned(cleaned, crash)
        })
    }

    /// Replaces the segments `cleaned` was made from by it (see the module
    /// documentation). Returns `false` (and removes the cleaned files) if the log changed
    /// meanwhile: deleted, closed, moved, or those segments no longer all there.
    fn swap_in_cleaned(
        &self,
        cleaned: CleanedSegment,
        crash: Option<CrashPoint>,
    ) -> Result<bool, CleanError> {
        let base = cleaned.base_offset;
        let names = [
            segment_file_name(base),
            format!("{base:020}.index"),
            format!("{base:020}.timeindex"),
        ];
        let io = |path: &Path| {
            let path = path.to_owned();
            move |e| StorageError::io(path, e)
        };
        let _writer = unpoison(self.writer.lock());
        let still_there = {
            let state = unpoison(self.state.read());
            let segments = &state.segments;
            let first = segments.iter().position(|s| s.base_offset == base);
            first.is_some_and(|first| {
                let end = first + cleaned.replaced.len();
                end < segments.len()
                    && segments[first..end]
                        .iter()
                        .zip(&cleaned.replaced)
                        .all(|(s, &b)| s.base_offset == b)
            })
        };
        if !self.cleanable() || !still_there || crash == Some(CrashPoint::Cleaned) {
            if crash != Some(CrashPoint::Cleaned) {
                for name in &names {
                    let _ = fs::remove_file(self.dir.join(format!("{name}{CLEANED_SUFFIX}")));
                }
                return Ok(false);
            }
            return Err(CleanError::Aborted);
        }
        // `.cleaned` -> `.swap`, the log last: its `.log.swap` commits the swap.
        for name in names.iter().rev() {
            let from = self.dir.join(format!("{name}{CLEANED_SUFFIX}"));
            let to = self.dir.join(format!("{name}{SWAP_SUFFIX}"));
            fs::rename(&from, &to).map_err(io(&from))?;
        }
        checkpoint::sync_dir(&self.dir).map_err(io(&self.dir))?;
        if crash == Some(CrashPoint::SwapRenamed) {
            return Err(CleanError::Aborted);
        }
        for &old in cleaned.replaced.iter().filter(|&&b| b != base) {
            delete_segment_files(&self.dir, old).map_err(io(&self.dir))?;
        }
        if crash == Some(CrashPoint::OldDeleted) {
            return Err(CleanError::Aborted);
        }
        for name in names.iter().rev() {
            let from = self.dir.join(format!("{name}{SWAP_SUFFIX}"));
            let to = self.dir.join(name);
            fs::rename(&from, &to).map_err(io(&from))?;
        }
        // The aborted transactions of the replaced segments go to the cleaned one (Kafka
        // writes the cleaned segment's transaction index from the aborted transactions it
        // met), so read_committed fetches still skip what remains of them.
        let aborted: Vec<crate::storage::txn_index::AbortedTxn> = {
            let state = unpoison(self.state.read());
            state
                .segments
                .iter()
                .filter(|s| cleaned.replaced.contains(&s.base_offset))
                .flat_map(|s| s.aborted_txns.iter().cloned())
                .collect()
        };
        for &old in cleaned.replaced.iter().filter(|&&b| b != base) {
            let _ = fs::remove_file(crate::storage::txn_index::txn_index_path(&self.dir, old));
        }
        if aborted.is_empty() {
            let _ = fs::remove_file(crate::storage::txn_index::txn_index_path(&self.dir, base));
        } else {
            crate::storage::txn_index::write_txn_index(&self.dir, base, &aborted).map_err(|e| {
                StorageError::io(
                    crate::storage::txn_index::txn_index_path(&self.dir, base),
                    e,
                )
            })?;
        }
        checkpoint::sync_dir(&self.dir).map_err(io(&self.dir))?;
        let mut segment = Segment::empty(base, self.segment_path(base), Arc::new(cleaned.file));
        for entry in cleaned.batches {
            segment.push(entry);
        }
        segment.aborted_txns = aborted;
        {
            let mut state = unpoison(self.state.write());
            let first = state
                .segments
                .iter()
                .position(|s| s.base_offset == base)
                .expect("checked under the writer lock");
            let end = first + cleaned.replaced.len();
            state.segments.splice(first..end, [segment]);
        }
        tracing::debug!(
            topic = %self.topic,
            partition = self.partition,
            base_offset = base,
            replaced = cleaned.replaced.len(),
            "swapped in a cleaned segment"
        );
        Ok(true)
    }
}

/// Finishes what a crash interrupted in a partition directory being opened (Kafka's
/// `LogLoader.removeTempFilesAndCollectSwapFiles` and swap completion): deletes every
/// `*.cleaned` file, completes each `<base>.log.swap` (deleting the segments whose base
/// offset is in its range and renaming its files into place) and deletes index `.swap`
/// files without their log.
pub(super) fn complete_interrupted_cleaning(part_dir: &Path) -> Result<(), StorageError> {
    let mut swaps: Vec<i64> = Vec::new();
    let mut stray_swaps: Vec<PathBuf> = Vec::new();
    let entries = fs::read_dir(part_dir).map_err(|e| StorageError::io(part_dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io(part_dir, e))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.ends_with(CLEANED_SUFFIX) {
            tracing::info!(file = %path.display(), "deleting a leftover cleaned file");
            fs::remove_file(&path).map_err(|e| StorageError::io(&path, e))?;
        } else if let Some(stem) = name.strip_suffix(SWAP_SUFFIX) {
            match parse_segment_file_name(stem) {
                Some(base) => swaps.push(base),
                None => stray_swaps.push(path),
            }
        }
    }
    swaps.sort_unstable();
    for base in &swaps {
        let swap = part_dir.join(format!("{}{SWAP_SUFFIX}", segment_file_name(*base)));
        let (segment, _) = Segment::open(swap.clone(), *base, *base, None, None, &mut |_, _, _| {})
            .map_err(|e| StorageError::io(&swap, e))?;
        let next = segment.next_offset();
        drop(segment);
        for (old, _) in list_segment_files(part_dir)? {
            if old >= *base && old < next.max(*base + 1) {
                delete_segment_files(part_dir, old).map_err(|e| StorageError::io(part_dir, e))?;
            }
        }
        for suffix in ["index", "timeindex"] {
            let name = format!("{base:020}.{suffix}");
            let from = part_dir.join(format!("{name}{SWAP_SUFFIX}"));
            match fs::rename(&from, part_dir.join(&name)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io(&from, e)),
            }
        }
        fs::rename(&swap, Segment::path_in(part_dir, *base))
            .map_err(|e| StorageError::io(&swap, e))?;
        tracing::info!(segment = %swap.display(), next_offset = next, "completed an interrupted segment swap");
    }
    for path in stray_swaps {
        if path.exists() {
            fs::remove_file(&path).map_err(|e| StorageError::io(&path, e))?;
        }
    }
    if !swaps.is_empty() {
        checkpoint::sync_dir(part_dir).map_err(|e| StorageError::io(part_dir, e))?;
    }
    Ok(())
}
