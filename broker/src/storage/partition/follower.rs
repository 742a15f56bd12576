//! A follower replica's writes (Kafka's `UnifiedLog.appendAsFollower`, `truncateTo` and
//! `truncateFullyAndStartAt`): the leader's batches appended with the offsets and leader
//! epochs it assigned, and the log cut back to where it agrees with the leader.
//!
//! A follower's append checks what Kafka's `analyzeAndValidateRecords` checks for
//! replicated records: whole v2 batches, each batch's CRC, `max.message.bytes`, offsets
//! that start at or after the log end offset and increase (gaps are allowed: a compacted
//! leader's log has them). It assigns nothing: not offsets, not epochs, not timestamps.
//! Everything else is the leader's append path: segment rolls, indexes, the leader epoch
//! cache (a batch of a newer epoch starts an entry), the producer state (recorded without
//! checks, Kafka's `AppendOrigin.REPLICATION`) and the transaction index of aborted
//! transactions.

use super::*;
use crate::storage::txn_index;

impl PartitionLog {
    /// Appends the leader's `records` (v2 batches, as a Fetch response carries them)
    /// keeping their offsets and partition leader epochs. A partial batch at the end (a
    /// response cut at its byte limit) is left out; `Ok(None)` when no whole batch is
    /// there.
    ///
    /// Errors: [`StorageError::OffsetOutOfRange`] when the first batch starts below the log
    /// end offset (Kafka's `UnexpectedAppendOffsetException`: the follower must truncate
    /// first); [`StorageError::InvalidBatch`] for anything else that is not a valid batch
    /// sequence (a bad CRC, offsets going back, a batch over `max.message.bytes`, a
    /// header that is not v2). Nothing is appended then. Blocking file I/O.
    pub fn append_as_follower(&self, records: Bytes) -> Result<Option<AppendInfo>, StorageError> {
        if records.is_empty() {
            return Ok(None);
        }
        let config = self.config();
        let max_message_bytes = usize::try_from(config.max_message_bytes).unwrap_or(usize::MAX);
        let mut batches = Vec::new();
        let mut position = 0;
        while position < records.len() {
            let rest = &records[position..];
            // A leader may cut its answer inside the last batch (Kafka's file slices do):
            // the whole batches before it are appended, the rest is fetched again.
            let Some(header) = BatchHeader::decode(rest) else {
                break;
            };
            let size = usize::try_from(header.batch_length)
                .ok()
                .and_then(|length| length.checked_add(LOG_OVERHEAD))
                .ok_or(StorageError::InvalidBatch("a negative batch length"))?;
            if size > rest.len() {
                break;
            }
            let header = check_batch(&rest[..size])?;
            if size > max_message_bytes {
                return Err(StorageError::InvalidBatch(
                    "a batch larger than max.message.bytes",
                ));
            }
            let batch = RecordBatch::parse(records.slice(position..position + size))
                .map_err(|_| StorageError::InvalidBatch("not a v2 batch"))?;
            batch
                .verify_crc()
                .map_err(|_| StorageError::InvalidBatch("a batch failing its CRC"))?;
            batches.push(ValidatedBatch::from_header(&header, position, size));
            position += size;
        }
        if batches.is_empty() {
            return Ok(None);
        }
        let records = records.slice(..position);
        let mut buf = records
            .try_into_mut()
            .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        let mode = AppendMode {
            leader_epoch: None,
            log_append_time: None,
            check_producers: false,
            verification: TxnVerification::NotRequired,
            keep_offsets: true,
            defer_flush: false,
        };
        // Checked whole first, so that nothing is appended if any batch is out of order
        // (the groups below are checked again under the writer lock).
        kept_offsets(&buf, &batches, self.log_end_offset())?;
        // A transaction marker is written alone, as the leader wrote it: its effect on the
        // producer state (and the transaction index) needs the batches before it applied.
        let mut info: Option<AppendInfo> = None;
        let mut group: Vec<ValidatedBatch> = Vec::new();
        let now = now_ms();
        let mut flush = |group: &mut Vec<ValidatedBatch>| -> Result<(), StorageError> {
            let (Some(first), Some(last)) = (group.first(), group.last()) else {
                return Ok(());
            };
            let (start, end) = (first.position, last.position + last.size);
            for batch in group.iter_mut() {
                batch.position -= start;
            }
            let appended = self.append_buffer(&mut buf[start..end], group, mode, now, &config)?;
            info = Some(match info {
                None => appended,
                Some(before) => AppendInfo {
                    base_offset: before.base_offset,
                    ..appended
                },
            });
            group.clear();
            Ok(())
        };
        for batch in batches {
            if batch.control {
                flush(&mut group)?;
                group.push(batch);
                flush(&mut group)?;
            } else {
                group.push(batch);
            }
        }
        flush(&mut group)?;
        Ok(info)
    }

    /// Kafka's `UnifiedLog.truncateTo`: removes every batch holding an offset at or above
    /// `target` (a batch that straddles it goes whole, and the log then ends at its base
    /// offset), the segments starting above it, their index and transaction index entries
    /// and producer snapshots; truncates the leader epoch cache from the end, rebuilds the
    /// producer state, and brings the high watermark and the recovery point down to the new
    /// log end offset. A `target` at or past the log end offset changes nothing; one at or
    /// below the first segment's base offset empties the log to start at `target`
    /// ([`Self::truncate_fully_and_start_at`]). Returns whether anything was removed.
    /// Blocking file I/O.
    pub fn truncate_to(&self, target: i64) -> Result<bool, StorageError> {
        if target < 0 {
            return Err(StorageError::OffsetOutOfRange {
                offset: target,
                log_start: self.log_start_offset(),
                log_end: self.log_end_offset(),
            });
        }
        let mut writer = unpoison(self.writer.lock());
        self.check_writable()?;
        let (log_end, first_base) = {
            let state = unpoison(self.state.read());
            (
                state.log_end_offset,
                state.segments.first().map(|s| s.base_offset),
            )
        };
        if target >= log_end {
            // Kafka's `truncateTo` cuts the epoch cache at the log end even then: a broker
            // that led an epoch and appended nothing in it has that epoch cached at its log
            // end, which the new leader does not know; kept, every fetch would send it as
            // the last fetched epoch and be answered with the same diverging epoch again.
            self.update_epochs(|cache| cache.truncate_from_end(log_end));
            return Ok(false);
        }
        if first_base.is_none_or(|base| target <= base) {
            self.truncate_fully_locked(&mut writer, target)?;
            return Ok(true);
        }
        // The active segment's write handles and index state are rebuilt on the next
        // append (`prepare_writer`), from the truncated segment.
        *writer = None;
        let (removed, new_end, truncated) = {
            let mut state = unpoison(self.state.write());
            let keep = state.segments.partition_point(|s| s.base_offset <= target);
            let removed: Vec<Segment> = state.segments.drain(keep..).collect();
            let segment = state
                .segments
                .last_mut()
                .expect("the first segment is kept");
            let cut = segment
                .batches()
                .partition_point(|b| b.last_offset < target);
            let new_end = segment
                .batches()
                .get(cut)
                .map_or(target, |b| b.base_offset.min(target));
            let position = segment
                .batches()
                .get(cut)
                .map_or(segment.valid_len, |b| u64::from(b.position));
            segment.truncate_batches(cut);
            let before = segment.aborted_txns.len();
            txn_index::truncate_entries(&mut segment.aborted_txns, new_end);
            let txns = (segment.aborted_txns.len() != before).then(|| segment.aborted_txns.clone());
            let truncated = (
                Arc::clone(&segment.file),
                segment.path.clone(),
                segment.base_offset,
                position,
                txns,
            );
            state.log_end_offset = new_end;
            state.log_start_offset = state.log_start_offset.min(new_end);
            state.high_watermark = if state.hw_follows_leo {
                new_end
            } else {
                state.high_watermark.min(new_end)
            };
            (removed, new_end, truncated)
        };
        let (file, path, base, position, txns) = truncated;
        file.set_len(position)
            .and_then(|()| file.sync_data())
            .map_err(|e| StorageError::io(&path, e))?;
        if let Some(txns) = txns {
            txn_index::write_txn_index(&self.dir, base, &txns)
                .map_err(|e| StorageError::io(txn_index::txn_index_path(&self.dir, base), e))?;
        }
        if !truncate_index_files(&self.dir, base, new_end) {
            // Missing or malformed: rebuilt from the batches kept, as recovery would.
            let state = unpoison(self.state.read());
            let segment = state.segments.last().expect("the first segment is kept");
            load_or_rebuild_indexes(&self.dir, segment, &self.config(), true)
                .map_err(|e| StorageError::io(index::offset_index_path(&self.dir, base), e))?;
        }
        for segment in &removed {
            delete_segment_files(&self.dir, segment.base_offset)
                .map_err(|e| StorageError::io(&segment.path, e))?;
        }
        self.recovery_point.fetch_min(new_end, Ordering::AcqRel);
        self.update_epochs(|cache| cache.truncate_from_end(new_end));
        self.rebuild_producers(new_end)?;
        tracing::info!(
            topic = %self.topic,
            partition = self.partition,
            from = log_end,
            to = new_end,
            segments_removed = removed.len(),
            "truncated the log"
        );
        drop(writer);
        self.end_offset.send_replace(new_end);
        Ok(true)
    }

    /// Kafka's `UnifiedLog.truncateFullyAndStartAt`: deletes every segment, its snapshots
    /// and the leader epoch cache, and starts an empty log at `offset` (the log start, log
    /// end, high watermark and recovery point all become `offset`). A follower does this
    /// when its fetch offset is below the leader's log start offset. Blocking file I/O.
    pub fn truncate_fully_and_start_at(&self, offset: i64) -> Result<(), StorageError> {
        if offset < 0 {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start: self.log_start_offset(),
                log_end: self.log_end_offset(),
            });
        }
        let mut writer = unpoison(self.writer.lock());
        self.check_writable()?;
        self.truncate_fully_locked(&mut writer, offset)?;
        drop(writer);
        self.end_offset.send_replace(offset);
        Ok(())
    }

    /// [`Self::truncate_fully_and_start_at`] under the writer lock.
    fn truncate_fully_locked(
        &self,
        writer: &mut Option<ActiveWriter>,
        offset: i64,
    ) -> Result<(), StorageError> {
        *writer = None;
        let removed: Vec<Segment> = {
            let mut state = unpoison(self.state.write());
            let removed = state.segments.drain(..).collect();
            state.log_start_offset = offset;
            state.log_end_offset = offset;
            state.high_watermark = offset;
            state.first_unstable_offset = None;
            removed
        };
        for segment in &removed {
            delete_segment_files(&self.dir, segment.base_offset)
                .map_err(|e| StorageError::io(&segment.path, e))?;
        }
        let snapshots =
            super::super::producer_snapshot::list_snapshots(&self.dir).unwrap_or_default();
        super::super::producer_snapshot::delete_snapshots(&self.dir, snapshots);
        *unpoison(self.producers.lock()) = ProducerStateManager::default();
        self.update_epochs(|cache| {
            let had = !cache.entries().is_empty();
            *cache = LeaderEpochCache::default();
            had
        });
        self.new_segment(writer, offset)?;
        self.recovery_point.store(offset, Ordering::Release);
        self.persist_log_start()?;
        tracing::info!(
            topic = %self.topic,
            partition = self.partition,
            offset,
            segments_removed = removed.len(),
            "truncated the log fully"
        );
        Ok(())
    }
}

/// Kafka's `OffsetIndex.truncateTo` and `TimeIndex.truncateTo` on the index files of the
/// segment at `base`: the entries for offsets at or above `end` are cut off (the others
/// point into the batches kept). False if a file is missing, malformed or cannot be
/// written; the caller rebuilds both then.
fn truncate_index_files(dir: &Path, base: i64, end: i64) -> bool {
    let offset_path = index::offset_index_path(dir, base);
    let time_path = index::time_index_path(dir, base);
    let (Ok(Some(offset_bytes)), Ok(Some(time_bytes))) = (
        index::read_index_file(&offset_path),
        index::read_index_file(&time_path),
    ) else {
        return false;
    };
    let (Some(offsets), Some(times)) = (
        index::decode_offset_index(&offset_bytes, base),
        index::decode_time_index(&time_bytes, base),
    ) else {
        return false;
    };
    let keep_offsets = offsets.partition_point(|e| e.offset < end) * index::OFFSET_ENTRY_SIZE;
    let keep_times = times.partition_point(|e| e.offset < end) * index::TIME_ENTRY_SIZE;
    index::write_index_file(&offset_path, &offset_bytes[..keep_offsets]).is_ok()
        && index::write_index_file(&time_path, &time_bytes[..keep_times]).is_ok()
}

/// The first offsets of a follower append's batches, as the leader assigned them: the
/// first at or after `log_end`, each after the previous batch's last offset (Kafka's
/// "out of order offsets" and `UnexpectedAppendOffsetException` checks).
pub(super) fn kept_offsets(
    buf: &[u8],
    batches: &[ValidatedBatch],
    log_end: i64,
) -> Result<Vec<i64>, StorageError> {
    let mut offsets = Vec::with_capacity(batches.len());
    let mut next = log_end;
    for (i, batch) in batches.iter().enumerate() {
        let bytes = &buf[batch.position..batch.position + batch.size];
        let header =
            BatchHeader::decode(bytes).ok_or(StorageError::InvalidBatch("not a v2 batch"))?;
        if header.base_offset < next {
            if i == 0 {
                return Err(StorageError::OffsetOutOfRange {
                    offset: header.base_offset,
                    log_start: next,
                    log_end: next,
                });
            }
            return Err(StorageError::InvalidBatch("out of order offsets"));
        }
        offsets.push(header.base_offset);
        next = header
            .base_offset
            .checked_add(i64::from(batch.record_count))
            .ok_or(StorageError::InvalidBatch("offsets overflow"))?;
    }
    Ok(offsets)
}
