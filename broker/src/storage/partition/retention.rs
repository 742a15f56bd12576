//! The log start offset and retention: DeleteRecords, `retention.ms`/`retention.bytes`,
//! deleting leading segments, persisting the log start offset (Kafka's
//! `UnifiedLog.deleteOldSegments` and `maybeIncrementLogStartOffset`).

use super::*;

impl PartitionLog {
    /// Raises the log start offset to `offset` (DeleteRecords, retention), if it is higher,
    /// and deletes the segments wholly below it; returns the log start offset. Offsets below
    /// it are no longer served. An offset above the log end offset is an error.
    pub fn advance_log_start_offset(&self, offset: i64) -> Result<i64, StorageError> {
        let mut writer = unpoison(self.writer.lock());
        let (start, end) = {
            let state = unpoison(self.state.read());
            (state.log_start_offset, state.log_end_offset)
        };
        if offset > end {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start: start,
                log_end: end,
            });
        }
        self.raise_log_start_locked(&mut writer, offset)
    }

    /// DeleteRecords: makes `offset` the log start offset (-1 means the high watermark) if
    /// it is higher, deletes the segments wholly below it and persists it in the log
    /// directory's `log-start-offset-checkpoint` (when the log belongs to a
    /// [`super::LogManager`]). Returns the new log start offset (Kafka's low watermark).
    /// An offset above the high watermark, or negative other than -1, is
    /// [`StorageError::OffsetOutOfRange`] (Kafka's `OFFSET_OUT_OF_RANGE`). Blocking file I/O.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, StorageError> {
        let mut writer = unpoison(self.writer.lock());
        let (start, high_watermark) = {
            let state = unpoison(self.state.read());
            (state.log_start_offset, state.high_watermark())
        };
        let target = if offset == -1 { high_watermark } else { offset };
        if target < 0 || target > high_watermark {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start: start,
                log_end: high_watermark,
            });
        }
        self.raise_log_start_locked(&mut writer, target)
    }

    /// Raises the log start offset to `offset` (at most the log end offset), deletes the
    /// segments below it and persists it; under the writer lock.
    pub(super) fn raise_log_start_locked(
        &self,
        writer: &mut Option<ActiveWriter>,
        offset: i64,
    ) -> Result<i64, StorageError> {
        let (start, raised) = {
            let mut state = unpoison(self.state.write());
            let raised = offset > state.log_start_offset;
            state.log_start_offset = state.log_start_offset.max(offset);
            (state.log_start_offset, raised)
        };
        if raised {
            tracing::info!(
                topic = %self.topic,
                partition = self.partition,
                log_start_offset = start,
                "raised the log start offset"
            );
            self.delete_leading_segments(writer, 0)?;
            self.truncate_epochs_to_start();
            self.persist_log_start()?;
        }
        Ok(start)
    }

    /// Writes the log directory's `log-start-offset-checkpoint` with this log's log start
    /// offset (nothing for a log opened outside a [`super::LogManager`]).
    pub(super) fn persist_log_start(&self) -> Result<(), StorageError> {
        if let Some(log_starts) = &self.log_starts {
            log_starts.set(&self.topic, self.partition, self.log_start_offset());
            log_starts.persist().map_err(|e| {
                StorageError::io(
                    self.log_dir.join(checkpoint::LOG_START_OFFSET_CHECKPOINT),
                    e,
                )
            })?;
        }
        Ok(())
    }

    /// Kafka's `deleteOldSegments` at wall-clock time `now_ms`: deletes the oldest segments
    /// wholly below the log start offset and, when `cleanup.policy` has `delete`, those
    /// beyond `retention.bytes` (oldest first while the rest still exceeds it) and those whose
    /// largest timestamp (the file's modification time without timestamps) is older than
    /// `retention.ms`. Never deletes data above the high watermark or the last segment if it
    /// is empty; when every segment goes, a new empty one is rolled first. The log start
    /// offset moves to the first segment left. Returns the number of segments deleted.
    ///
    /// Deleting a producer's batches does not remove its state, as in Kafka (producers
    /// expire by [`Self::expire_producers`]); the producer snapshots at the deleted
    /// segments' base offsets go with them. Blocking file I/O.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<usize, StorageError> {
        let mut writer = unpoison(self.writer.lock());
        if self.deleted.load(Ordering::Acquire) || self.closed.load(Ordering::Acquire) {
            return Ok(0);
        }
        let config = self.config();
        let count = {
            let state = unpoison(self.state.read());
            retention_count(&state, &config, now_ms)
        };
        if count == 0 {
            return Ok(0);
        }
        let deleted = self.delete_leading_segments(&mut writer, count)?;
        if deleted > 0 {
            self.truncate_epochs_to_start();
            tracing::info!(
                topic = %self.topic,
                partition = self.partition,
                segments = deleted,
                log_start_offset = self.log_start_offset(),
                "deleted segments by retention"
            );
            if let Some(log_starts) = &self.log_starts {
                log_starts.set(&self.topic, self.partition, self.log_start_offset());
            }
        }
        Ok(deleted)
    }

    /// Deletes the first `at_least` segments, and then any further segment wholly below
    /// the log start offset (Kafka's rule: the next segment starts at or below it); rolls
    /// first if that would delete every segment. Raises the log start offset to the first
    /// segment left. Returns how many were deleted.
    pub(super) fn delete_leading_segments(
        &self,
        writer: &mut Option<ActiveWriter>,
        at_least: usize,
    ) -> Result<usize, StorageError> {
        let (count, all) = {
            let state = unpoison(self.state.read());
            let segments = &state.segments;
            let mut count = at_least.min(segments.len());
            while count + 1 < segments.len()
                && segments[count + 1].base_offset <= state.log_start_offset
            {
                count += 1;
            }
            (count, count > 0 && count == segments.len())
        };
        if count == 0 {
            return Ok(0);
        }
        if all {
            self.prepare_writer(writer)?;
            let end = self.log_end_offset();
            self.roll_locked(writer, end)?;
        }
        let removed: Vec<Segment> = {
            let mut state = unpoison(self.state.write());
            let removed: Vec<Segment> = state.segments.drain(..count).collect();
            let first = state
                .segments
                .first()
                .map_or(state.log_end_offset, |s| s.base_offset);
            state.log_start_offset = state.log_start_offset.max(first);
            removed
        };
        for segment in &removed {
            delete_segment_files(&self.dir, segment.base_offset)
                .map_err(|e| StorageError::io(&segment.path, e))?;
        }
        self.delete_producer_snapshots(removed.iter().map(|s| s.base_offset));
        Ok(removed.len())
    }
}

/// How many of the oldest segments Kafka's retention would delete now (see
/// [`PartitionLog::enforce_retention`]).
pub(super) fn retention_count(state: &LogState, config: &LogConfig, now_ms: i64) -> usize {
    let segments = &state.segments;
    let high_watermark = state.high_watermark();
    let deletable = |i: usize| {
        let segment: &Segment = &segments[i];
        let upper = segments
            .get(i + 1)
            .map_or(state.log_end_offset, |next| next.base_offset);
        let last_and_empty = i + 1 == segments.len() && segment.is_empty();
        upper <= high_watermark && !last_and_empty
    };
    let mut count = 0;
    while count + 1 < segments.len() && segments[count + 1].base_offset <= state.log_start_offset {
        count += 1;
    }
    if !config.cleanup_policy.delete {
        return count;
    }
    if let Ok(limit) = u64::try_from(config.retention_bytes) {
        let total: u64 = segments[count..].iter().map(|s| s.valid_len).sum();
        if total >= limit {
            let mut excess = total - limit;
            while count < segments.len() && deletable(count) && excess >= segments[count].valid_len
            {
                excess -= segments[count].valid_len;
                count += 1;
            }
        }
    }
    if config.retention_ms >= 0 {
        while count < segments.len()
            && deletable(count)
            && now_ms.saturating_sub(largest_timestamp(&segments[count])) > config.retention_ms
        {
            count += 1;
        }
    }
    count
}
