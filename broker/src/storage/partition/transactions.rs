//! The partition leader's half of Kafka transactions (KIP-98): transaction markers
//! written for the coordinator (Kafka's `appendAsLeader` with `AppendOrigin.COORDINATOR`),
//! the last stable offset, the transaction index of each segment, READ_COMMITTED reads'
//! aborted transactions, KIP-890 verification guards, and the markers and index rebuilt
//! when the log is opened (Kafka's `LogSegment.recover`).
//!
//! The rules on the producer state are in [`crate::storage::producer_state::txn`]; this
//! module writes what they decide.

use super::*;
use crate::storage::producer_state::VerificationGuard;
use crate::storage::producer_state::txn::{MarkerUpdate, TxnMarker};
use crate::storage::txn_index::{self, AbortedTxn};
use gregor_protocol::records::{
    ControlRecordKey, ControlRecordType, EndTxnMarker, NewRecord, RecordBatchBuilder,
};

/// Largest control batch read back when the log is opened (a marker batch is about 80
/// bytes); a larger one is not taken for a marker.
const MAX_MARKER_BATCH: u64 = 64 * 1024;

impl LogState {
    /// Kafka's `UnifiedLog.lastStableOffset`: the first unstable offset (raised to the log
    /// start offset, as `maybeIncrementFirstUnstableOffset` does), else the high
    /// watermark.
    pub(super) fn last_stable_offset(&self) -> i64 {
        match self.first_unstable_offset {
            Some(first) => first.max(self.log_start_offset).min(self.high_watermark()),
            None => self.high_watermark(),
        }
    }
}

impl PartitionLog {
    /// Appends the commit (`commit`) or abort marker of `producer_id`'s transaction, as
    /// the transaction coordinator has the partition leader write it (Kafka's
    /// `MemoryRecords.withEndTransactionMarker`): one control batch (attributes control +
    /// transactional, uncompressed), the producer's id and epoch, sequence -1, the
    /// partition's `leader_epoch`, one record stamped `now_ms` whose key is the control
    /// record key (version 0, type 0 abort / 1 commit) and whose value is the
    /// `EndTxnMarker` (version 0, `coordinator_epoch`).
    ///
    /// Kafka's checks (`ProducerAppendInfo.appendEndTxnMarker`): an epoch older than the
    /// producer's is [`crate::storage::ProducerStateError::InvalidEpoch`] (`INVALID_PRODUCER_EPOCH`), a
    /// coordinator epoch older than the one of the producer's last marker
    /// [`crate::storage::ProducerStateError::CoordinatorFenced`] (`TRANSACTION_COORDINATOR_FENCED`); then
    /// nothing is appended. The marker ends the producer's ongoing transaction: an abort
    /// adds its entry to the `.txnindex` of the segment the marker lands in (synced before
    /// anything is visible), and the last stable offset moves, waking fetches waiting on
    /// [`Self::subscribe`]. A marker for a producer without an ongoing transaction is
    /// appended all the same (Kafka writes it too) and only records the epochs.
    ///
    /// Works on every partition, `__consumer_offsets` included (transactional offset
    /// commits). Blocking file I/O.
    pub fn append_txn_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        commit: bool,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        if producer_id < 0 {
            return Err(StorageError::InvalidBatch(
                "a transaction marker needs a producer id",
            ));
        }
        let record_type = if commit {
            ControlRecordType::Commit
        } else {
            ControlRecordType::Abort
        };
        let record = NewRecord::new(
            now_ms,
            Some(ControlRecordKey::new(record_type).encode()),
            Some(
                EndTxnMarker {
                    version: 0,
                    coordinator_epoch,
                }
                .encode(),
            ),
        );
        let batch = RecordBatchBuilder::new()
            .producer(producer_id, producer_epoch)
            .partition_leader_epoch(leader_epoch)
            .transactional(true)
            .control(true)
            .build([&record])
            .map_err(|_| StorageError::InvalidBatch("cannot encode a transaction marker"))?;
        let mut buf = BytesMut::from(&batch[..]);
        let header = check_batch(&buf)?;
        let described = [ValidatedBatch::from_header(&header, 0, buf.len())];
        let config = self.config();
        let mode = AppendMode {
            leader_epoch: Some(leader_epoch),
            log_append_time: (config.timestamp_type == TimestampType::LogAppendTime)
                .then_some(now_ms),
            check_producers: true,
            verification: TxnVerification::NotRequired,
            keep_offsets: false,
            defer_flush: false,
        };
        self.append_buffer(&mut buf, &described, mode, now_ms, &config)
    }

    /// [`Self::append`] of a client's records with KIP-890 verification: with
    /// [`TxnVerification::Guard`], a transactional batch that would start its producer's
    /// transaction here must carry the guard [`Self::start_txn_verification`] gave for it
    /// (and the coordinator confirmed), else [`crate::storage::ProducerStateError::InvalidTxnState`].
    pub fn append_with_verification(
        &self,
        validated: ValidatedRecords,
        leader_epoch: i32,
        now_ms: i64,
        verification: TxnVerification,
    ) -> Result<AppendInfo, StorageError> {
        self.append_client(validated, leader_epoch, now_ms, verification, false)
    }

    /// [`Self::append_with_verification`]; with `defer_flush`, a `flush.messages` flush the
    /// append makes due is left to [`Self::flush_if_reached`].
    pub(super) fn append_client(
        &self,
        validated: ValidatedRecords,
        leader_epoch: i32,
        now_ms: i64,
        verification: TxnVerification,
        defer_flush: bool,
    ) -> Result<AppendInfo, StorageError> {
        let (records, batches) = validated.into_parts();
        let mut buf = records
            .try_into_mut()
            .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        let config = self.config();
        let mode = AppendMode {
            leader_epoch: Some(leader_epoch),
            log_append_time: (config.timestamp_type == TimestampType::LogAppendTime)
                .then_some(now_ms),
            check_producers: true,
            verification,
            keep_offsets: false,
            defer_flush,
        };
        self.append_buffer(&mut buf, &batches, mode, now_ms, &config)
    }

    /// Kafka's `maybeStartTransactionVerification`: [`VerificationGuard::SENTINEL`] if
    /// `producer_id` has an ongoing transaction here (no verification needed), else the
    /// guard of its verification, to pass to [`Self::append_with_verification`] once the
    /// coordinator confirmed the partition is in the transaction.
    pub fn start_txn_verification(
        &self,
        producer_id: i64,
        sequence: i32,
        producer_epoch: i16,
    ) -> VerificationGuard {
        let _writer = unpoison(self.writer.lock());
        unpoison(self.producers.lock()).start_verification(
            producer_id,
            sequence,
            producer_epoch,
            now_ms(),
        )
    }

    /// Whether `producer_id` has an ongoing transaction in this partition (Kafka's
    /// `hasOngoingTransaction`).
    pub fn has_ongoing_txn(&self, producer_id: i64) -> bool {
        unpoison(self.producers.lock())
            .get(producer_id)
            .is_some_and(|e| e.current_txn_first_offset().is_some())
    }

    /// The entries of the transaction index of the segment starting at `base_offset`
    /// (empty for an unknown segment).
    pub fn transaction_index(&self, base_offset: i64) -> Vec<AbortedTxn> {
        unpoison(self.state.read())
            .segments
            .iter()
            .find(|s| s.base_offset == base_offset)
            .map(|s| s.aborted_txns.clone())
            .unwrap_or_default()
    }

    /// The aborted transactions overlapping `[fetch_offset, upper_bound_offset)` (Kafka's
    /// `collectAbortedTransactions`).
    pub fn aborted_transactions(
        &self,
        fetch_offset: i64,
        upper_bound_offset: i64,
    ) -> Vec<AbortedTxn> {
        let state = unpoison(self.state.read());
        collect_aborted_transactions(&state.segments, fetch_offset, upper_bound_offset)
    }

    /// The producer state's update for `marker` at the log end: checked as a coordinator
    /// append (`check`) or replayed as a trusted one.
    pub(super) fn marker_update(
        &self,
        marker: &TxnMarker,
        check: bool,
    ) -> Result<MarkerUpdate, StorageError> {
        let producers = unpoison(self.producers.lock());
        if check {
            producers.check_marker(marker).map_err(|error| {
                tracing::debug!(partition = %self.name(), %error, "refused a transaction marker");
                StorageError::Producer(error)
            })
        } else {
            Ok(producers.replay_marker_update(marker))
        }
    }

    /// Appends `aborted` to the `.txnindex` of the segment starting at `segment_base`
    /// (the active one, under the writer lock).
    pub(super) fn append_aborted_txn(
        &self,
        segment_base: i64,
        aborted: &AbortedTxn,
    ) -> Result<(), StorageError> {
        let existing = {
            let state = unpoison(self.state.read());
            state
                .segments
                .last()
                .filter(|s| s.base_offset == segment_base)
                .map(|s| s.aborted_txns.clone())
                .unwrap_or_default()
        };
        let path = txn_index::txn_index_path(&self.dir, segment_base);
        txn_index::append_txn_index(&self.dir, segment_base, &existing, aborted).map_err(|error| {
            match error {
                txn_index::TxnIndexError::Io(source) => StorageError::io(&path, source),
                other => StorageError::io(&path, io::Error::new(io::ErrorKind::InvalidData, other)),
            }
        })
    }
}

/// The marker of an append's control batch, at the offset it gets: `None` without a
/// control batch, or for one that is not a commit or abort marker of a producer.
pub(super) fn control_marker(
    buf: &[u8],
    batches: &[ValidatedBatch],
    base_offset: i64,
    kept: &[i64],
    log_append_time: Option<i64>,
) -> Option<TxnMarker> {
    let mut next = base_offset;
    for (i, batch) in batches.iter().enumerate() {
        let offset = kept.get(i).copied().unwrap_or(next);
        next = next.saturating_add(i64::from(batch.record_count));
        if !batch.control || batch.producer_id < 0 {
            continue;
        }
        let bytes = &buf[batch.position..batch.position + batch.size];
        let (commit, coordinator_epoch, timestamp) = parse_marker(bytes)?;
        return Some(TxnMarker {
            producer_id: batch.producer_id,
            producer_epoch: batch.producer_epoch,
            coordinator_epoch,
            commit,
            offset,
            timestamp: log_append_time.unwrap_or(timestamp),
        });
    }
    None
}

/// The marker of the control batch at `position` of a segment being opened (read from the
/// file: its header alone does not say commit or abort).
pub(super) fn read_marker(header: &BatchHeader, file: &File, position: u64) -> Option<TxnMarker> {
    let size = u64::try_from(header.batch_length).ok()? + LOG_OVERHEAD as u64;
    if size > MAX_MARKER_BATCH {
        tracing::warn!(
            offset = header.base_offset,
            size,
            "ignoring an oversized control batch"
        );
        return None;
    }
    let mut buf = vec![0u8; size as usize];
    if let Err(error) = file.read_exact_at(&mut buf, position) {
        tracing::warn!(offset = header.base_offset, %error, "cannot read a control batch");
        return None;
    }
    let (commit, coordinator_epoch, timestamp) = parse_marker(&buf)?;
    Some(TxnMarker {
        producer_id: header.producer_id,
        producer_epoch: header.producer_epoch,
        coordinator_epoch,
        commit,
        offset: header.base_offset,
        timestamp,
    })
}

/// (commit?, coordinator epoch, timestamp) of a control batch's first record, as Kafka's
/// `EndTransactionMarker.deserialize` reads it; `None` for an empty control batch (its
/// transaction was cleaned away), another control type, or one that does not parse.
fn parse_marker(bytes: &[u8]) -> Option<(bool, i32, i64)> {
    let batch = RecordBatch::parse(Bytes::copy_from_slice(bytes)).ok()?;
    let record = batch.records().next()?.ok()?;
    let commit = match record.control_key().ok()?.record_type {
        ControlRecordType::Commit => true,
        ControlRecordType::Abort => false,
        _ => return None,
    };
    let marker = EndTxnMarker::parse(record.value.as_deref()?).ok()?;
    Some((commit, marker.coordinator_epoch, record.timestamp()))
}

/// Kafka's `collectAbortedTransactions(fetchOffset, upperBoundOffset)`: the aborted
/// transactions overlapping the range, from the segment holding `fetch_offset` through
/// the later ones until an entry's LSO shows that no later abort can overlap.
pub(super) fn collect_aborted_transactions(
    segments: &[Segment],
    fetch_offset: i64,
    upper_bound_offset: i64,
) -> Vec<AbortedTxn> {
    let first = segments.partition_point(|s| s.next_offset() <= fetch_offset);
    let mut found = Vec::new();
    for segment in &segments[first..] {
        if txn_index::collect_aborted(
            &segment.aborted_txns,
            fetch_offset,
            upper_bound_offset,
            &mut found,
        ) {
            break;
        }
    }
    found
}

/// The transaction index of a segment being opened: rebuilt from the markers `replayed`
/// in it when it was recovered (`rebuild`, Kafka's `LogSegment.recover`), else read from
/// its `.txnindex` and checked (Kafka's `sanityCheck`); a file that fails the checks is
/// rebuilt too. `stored` is what the file held; a rebuilt index that differs is written
/// back (the file removed when empty).
pub(super) fn load_txn_index(
    part_dir: &Path,
    segment: &Segment,
    replayed: Vec<AbortedTxn>,
    stored: Result<Vec<AbortedTxn>, txn_index::TxnIndexError>,
    rebuild: bool,
) -> Vec<AbortedTxn> {
    let base = segment.base_offset;
    match stored {
        Ok(entries) if !rebuild => return entries,
        Ok(entries) if entries == replayed => return replayed,
        Ok(_) => {}
        Err(error) => tracing::warn!(
            segment = %segment.path.display(),
            %error,
            "rebuilding the segment's transaction index"
        ),
    }
    if let Err(error) = txn_index::write_txn_index(part_dir, base, &replayed) {
        tracing::warn!(
            segment = %segment.path.display(),
            %error,
            "could not write the segment's transaction index"
        );
    }
    replayed
}

impl super::super::LogManager {
    /// [`PartitionLog::append_txn_marker`] on `topic`/`partition`, for the transaction
    /// coordinator's WriteTxnMarkers (`__consumer_offsets` partitions included). `Ok(None)`
    /// if there is no such log here. Blocking file I/O.
    #[allow(clippy::too_many_arguments)]
    pub fn append_txn_marker(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        commit: bool,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<Option<AppendInfo>, StorageError> {
        self.get(topic, partition)
            .map(|log| {
                log.append_txn_marker(
                    producer_id,
                    producer_epoch,
                    coordinator_epoch,
                    commit,
                    leader_epoch,
                    now_ms,
                )
            })
            .transpose()
    }
}
