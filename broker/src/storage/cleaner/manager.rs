//! Which log to clean next, and where each log's dirty part starts (Kafka's
//! `LogCleanerManager`, `LogToClean`, `LogCleaningState`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::storage::checkpoint;
use crate::storage::config::LogConfig;
use crate::storage::partition::CleaningView;
use crate::storage::{PartitionLog, unpoison};

/// The file, in each log directory, of the first dirty offset of each compacted partition
/// (Kafka's format: version 0, the count, then `topic partition offset` lines).
pub const CLEANER_OFFSET_CHECKPOINT: &str = "cleaner-offset-checkpoint";

type Partition = (String, i32);

/// A log chosen for cleaning, with Kafka's `LogToClean` figures.
#[derive(Debug)]
pub struct LogToClean {
    /// The log.
    pub log: Arc<PartitionLog>,
    /// Where the dirty part starts.
    pub first_dirty_offset: i64,
    /// Nothing at or above it is cleaned (the active segment, the last stable offset,
    /// `min.compaction.lag.ms`), as a segment's base offset.
    pub first_uncleanable_offset: i64,
    /// Bytes of the segments below the first dirty offset.
    pub clean_bytes: u64,
    /// Bytes of the segments in the dirty part.
    pub cleanable_bytes: u64,
    /// Whether `max.compaction.lag.ms` has passed for some dirty record.
    pub needs_compaction_now: bool,
    /// The snapshot of the segments the figures were computed on.
    pub(crate) view: CleaningView,
}

impl LogToClean {
    /// `cleanable_bytes / (clean_bytes + cleanable_bytes)`.
    pub fn cleanable_ratio(&self) -> f64 {
        let total = self.clean_bytes + self.cleanable_bytes;
        if total == 0 {
            0.0
        } else {
            self.cleanable_bytes as f64 / total as f64
        }
    }

    /// Kafka's `LogToClean` for `log` with the checkpointed first dirty offset
    /// `checkpoint` at `now_ms`; also whether the checkpoint was invalid (and must be
    /// rewritten).
    pub fn compute(
        log: Arc<PartitionLog>,
        checkpoint: Option<i64>,
        now_ms: i64,
    ) -> (LogToClean, bool) {
        let view = log.cleaning_view();
        let config = log.config();
        let (first_dirty, uncleanable, force) =
            cleanable_offsets(&view, &config, checkpoint, now_ms);
        // Kafka's `calculateCleanableBytes`: up to the base offset of the segment holding
        // the first uncleanable offset.
        let first_uncleanable_offset = if uncleanable >= view.active_base_offset {
            view.active_base_offset
        } else {
            view.segments
                .iter()
                .rev()
                .find(|s| s.base_offset <= uncleanable)
                .or(view.segments.first())
                .map_or(view.active_base_offset, |s| s.base_offset)
        };
        let bytes_between = |from: i64, to: i64| -> u64 {
            view.segments
                .iter()
                .filter(|s| s.next_offset() > from && s.base_offset < to)
                .map(|s| s.size)
                .sum()
        };
        let clean_bytes = bytes_between(i64::MIN, first_dirty);
        let cleanable_bytes = bytes_between(
            first_dirty.min(first_uncleanable_offset),
            first_uncleanable_offset,
        );
        let needs_compaction_now = max_compaction_delay(&view, &config, first_dirty, now_ms) > 0;
        (
            LogToClean {
                log,
                first_dirty_offset: first_dirty,
                first_uncleanable_offset,
                clean_bytes,
                cleanable_bytes,
                needs_compaction_now,
                view,
            },
            force,
        )
    }
}

/// Kafka's `cleanableOffsets`: the first dirty offset (the checkpoint, reset to the log
/// start offset when it is below it or past the end), the first uncleanable offset (the
/// smallest of the last stable offset, the active segment's base offset and the first
/// dirty segment newer than `min.compaction.lag.ms`), and whether the checkpoint was reset.
pub(crate) fn cleanable_offsets(
    view: &CleaningView,
    config: &LogConfig,
    checkpoint: Option<i64>,
    now_ms: i64,
) -> (i64, i64, bool) {
    let start = view.log_start_offset;
    let checkpointed = checkpoint.unwrap_or(start);
    let (first_dirty, force) = if checkpointed < start {
        (start, true)
    } else if checkpointed > view.log_end_offset {
        tracing::warn!(
            checkpointed,
            log_end_offset = view.log_end_offset,
            "the cleaner's checkpoint is past the log end: cleaning from the log start"
        );
        (start, true)
    } else {
        (checkpointed, false)
    };
    let mut uncleanable = view.last_stable_offset.min(view.active_base_offset);
    let lag = config.min_compaction_lag_ms.max(0);
    if lag > 0 {
        let too_new = view
            .segments
            .iter()
            .filter(|s| s.next_offset() > first_dirty)
            .find(|s| s.largest_timestamp > now_ms.saturating_sub(lag));
        if let Some(segment) = too_new {
            uncleanable = uncleanable.min(segment.base_offset);
        }
    }
    (first_dirty, uncleanable, force)
}

/// Kafka's `maxCompactionDelay`: how long past `max.compaction.lag.ms` the oldest dirty
/// segment's first batch is (0 if it is not).
fn max_compaction_delay(
    view: &CleaningView,
    config: &LogConfig,
    first_dirty: i64,
    now: i64,
) -> i64 {
    let earliest = view
        .segments
        .iter()
        .filter(|s| s.next_offset() > first_dirty)
        .filter_map(|s| s.batches.first().map(|b| b.max_timestamp))
        .filter(|&t| t > 0)
        .min()
        .unwrap_or(i64::MAX);
    let clean_until = now.saturating_sub(config.max_compaction_lag_ms.max(0));
    if earliest < clean_until {
        clean_until - earliest
    } else {
        0
    }
}

/// The cleaning state of every compacted log: checkpoints, logs being cleaned, logs that
/// failed (Kafka's `LogCleanerManager`).
#[derive(Debug, Default)]
pub struct CleanerManager {
    /// First dirty offsets by log directory, loaded from its checkpoint on first use.
    checkpoints: Mutex<HashMap<PathBuf, HashMap<Partition, i64>>>,
    /// Logs a thread is cleaning (Kafka's `LogCleaningInProgress`).
    in_progress: Mutex<HashSet<Partition>>,
    /// Logs whose cleaning failed (Kafka's `uncleanablePartitions`).
    uncleanable: Mutex<HashSet<Partition>>,
}

impl CleanerManager {
    /// A manager with nothing loaded yet.
    pub fn new() -> CleanerManager {
        CleanerManager::default()
    }

    /// The checkpointed first dirty offset of `log`.
    pub fn checkpoint_of(&self, log: &PartitionLog) -> Option<i64> {
        let mut checkpoints = unpoison(self.checkpoints.lock());
        let dir = load(&mut checkpoints, log.log_dir());
        dir.get(&(log.topic().to_owned(), log.partition())).copied()
    }

    /// Kafka's `grabFilthiestCompactedLog`: among `logs` with `compact`, not being cleaned
    /// and not uncleanable, the one with the highest cleanable ratio above its
    /// `min.cleanable.dirty.ratio` (or past `max.compaction.lag.ms` with something to
    /// clean); it is marked in progress until [`Self::done_cleaning`] or
    /// [`Self::failed_cleaning`].
    pub fn grab_filthiest(&self, logs: &[Arc<PartitionLog>], now_ms: i64) -> Option<LogToClean> {
        let mut in_progress = unpoison(self.in_progress.lock());
        let uncleanable = unpoison(self.uncleanable.lock()).clone();
        let mut best: Option<LogToClean> = None;
        for log in logs {
            let key = (log.topic().to_owned(), log.partition());
            let config = log.config();
            if !config.cleanup_policy.compact
                || in_progress.contains(&key)
                || uncleanable.contains(&key)
                || !log.cleanable()
            {
                continue;
            }
            let checkpoint = self.checkpoint_of(log);
            let (candidate, force) = LogToClean::compute(Arc::clone(log), checkpoint, now_ms);
            if force {
                self.update_checkpoint(log, candidate.first_dirty_offset);
            }
            if candidate.clean_bytes + candidate.cleanable_bytes == 0 {
                continue;
            }
            let ratio = candidate.cleanable_ratio();
            let eligible = (candidate.needs_compaction_now && candidate.cleanable_bytes > 0)
                || ratio > config.min_cleanable_ratio;
            if eligible && best.as_ref().is_none_or(|b| ratio > b.cleanable_ratio()) {
                best = Some(candidate);
            }
        }
        if let Some(chosen) = &best {
            in_progress.insert((chosen.log.topic().to_owned(), chosen.log.partition()));
        }
        best
    }

    /// Kafka's `doneCleaning`: the log's next cleaning starts at `end_offset`.
    pub fn done_cleaning(&self, log: &PartitionLog, end_offset: i64) {
        self.update_checkpoint(log, end_offset);
        unpoison(self.in_progress.lock()).remove(&(log.topic().to_owned(), log.partition()));
    }

    /// A cleaning that failed: the log is no longer cleaned (until restart).
    pub fn failed_cleaning(&self, log: &PartitionLog) {
        let key = (log.topic().to_owned(), log.partition());
        unpoison(self.in_progress.lock()).remove(&key);
        unpoison(self.uncleanable.lock()).insert(key);
    }

    /// A cleaning given up without error (the log changed or the cleaner stops).
    pub fn aborted_cleaning(&self, log: &PartitionLog) {
        unpoison(self.in_progress.lock()).remove(&(log.topic().to_owned(), log.partition()));
    }

    /// Whether `log` is marked uncleanable.
    pub fn is_uncleanable(&self, log: &PartitionLog) -> bool {
        unpoison(self.uncleanable.lock()).contains(&(log.topic().to_owned(), log.partition()))
    }

    /// Records `offset` as `log`'s first dirty offset and rewrites its log directory's
    /// checkpoint (a failed write is logged: the next cleaning then starts earlier).
    pub fn update_checkpoint(&self, log: &PartitionLog, offset: i64) {
        let mut checkpoints = unpoison(self.checkpoints.lock());
        let dir = load(&mut checkpoints, log.log_dir());
        dir.insert((log.topic().to_owned(), log.partition()), offset);
        let mut entries: Vec<(String, i32, i64)> = dir
            .iter()
            .map(|((topic, partition), offset)| (topic.clone(), *partition, *offset))
            .collect();
        entries.sort();
        let path = log.log_dir().join(CLEANER_OFFSET_CHECKPOINT);
        if let Err(error) = checkpoint::write_checkpoint(&path, &entries) {
            tracing::warn!(file = %path.display(), %error, "could not write the cleaner checkpoint");
        }
    }
}

/// The checkpoint entries of `log_dir`, read from its file the first time.
fn load<'a>(
    checkpoints: &'a mut HashMap<PathBuf, HashMap<Partition, i64>>,
    log_dir: &Path,
) -> &'a mut HashMap<Partition, i64> {
    checkpoints.entry(log_dir.to_owned()).or_insert_with(|| {
        let path = log_dir.join(CLEANER_OFFSET_CHECKPOINT);
        match checkpoint::read_checkpoint(&path) {
            Ok(found) => found.unwrap_or_default(),
            Err(error) => {
                tracing::warn!(file = %path.display(), %error, "ignoring an unreadable cleaner checkpoint");
                HashMap::new()
            }
        }
    })
}
