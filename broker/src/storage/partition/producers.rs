//! The producer state's life on disk: snapshots taken at rolls and at close, deleted with
//! their segments, loaded when the log is opened with only the later batches replayed
//! (Kafka's `UnifiedLog.roll`/`close`/`deleteProducerSnapshots`, `LogLoader` and
//! `rebuildProducerState`), and the periodic expiration of idle producers.

use super::super::producer_snapshot;
use super::*;

impl PartitionLog {
    /// Kafka's `takeSnapshot` at `offset` (the log end offset, or a new segment's base
    /// offset), under the writer lock: written only if no snapshot at `offset` or later was
    /// taken. A failure is logged, not returned: a missing snapshot only means that the next
    /// open replays from an older one.
    pub(super) fn take_producer_snapshot(&self, offset: i64) {
        if self.deleted.load(Ordering::Acquire) {
            return;
        }
        let mut producers = unpoison(self.producers.lock());
        if let Err(error) = take_snapshot(&mut producers, &self.dir, offset, true) {
            tracing::warn!(
                topic = %self.topic,
                partition = self.partition,
                offset,
                %error,
                "could not write a producer state snapshot"
            );
        }
    }

    /// Deletes the snapshots at the base offsets of deleted segments (Kafka's
    /// `deleteProducerSnapshots` for the segments retention or a raised log start offset
    /// removed); older snapshots are kept, as Kafka keeps them.
    pub(super) fn delete_producer_snapshots(&self, segment_bases: impl IntoIterator<Item = i64>) {
        producer_snapshot::delete_snapshots(&self.dir, segment_bases);
    }

    /// Kafka's periodic `removeExpiredProducers` at wall-clock time `now_ms`: forgets the
    /// idempotent producers whose last batch's timestamp is `producer.id.expiration.ms` old
    /// (and that have no ongoing transaction); the next snapshot no longer holds them.
    /// Returns how many were removed.
    pub fn expire_producers(&self, now_ms: i64) -> usize {
        let expiration_ms = self.config().producer_id_expiration_ms;
        let expired = unpoison(self.producers.lock()).remove_expired(now_ms, expiration_ms);
        if expired > 0 {
            tracing::debug!(
                topic = %self.topic,
                partition = self.partition,
                producers = expired,
                "expired idempotent producers"
            );
        }
        expired
    }

    /// Makes this log's producer state that of `replaced`, the replica it takes over from
    /// in another log directory (an AlterReplicaLogDirs move, with `replaced`'s writer lock
    /// held): the live state, with all retained batches, rather than the one its copied
    /// snapshots and batches give.
    pub(crate) fn take_producer_state_of(&self, replaced: &PartitionLog) {
        let live = unpoison(replaced.producers.lock());
        unpoison(self.producers.lock()).take_producers_of(&live);
    }

    /// The offsets of the producer state snapshot files in the partition directory.
    pub fn producer_snapshot_offsets(&self) -> Vec<i64> {
        producer_snapshot::list_snapshots(&self.dir).unwrap_or_default()
    }
}

/// Writes the snapshot of `state` at `offset` in `dir` if it is newer than the last one
/// taken or loaded (Kafka's `lastMapOffset > lastSnapOffset`), synced if `sync`; returns
/// whether it did.
pub(super) fn take_snapshot(
    state: &mut ProducerStateManager,
    dir: &Path,
    offset: i64,
    sync: bool,
) -> io::Result<bool> {
    if offset <= state.snapshot_offset() {
        return Ok(false);
    }
    producer_snapshot::write_snapshot_with(dir, offset, &state.snapshot_entries(), sync)?;
    state.set_snapshot_offset(offset);
    tracing::debug!(
        dir = %dir.display(),
        offset,
        "wrote a producer state snapshot"
    );
    Ok(true)
}

/// The producer state of a log being opened: the snapshot it starts from, then the batches
/// the segment scan replays into it.
#[derive(Debug)]
pub(super) struct ProducerLoad {
    /// The state so far.
    pub(super) producers: ProducerStateManager,
    /// Batches ending below this are not replayed: the snapshot's offset, or the log start
    /// offset without one (Kafka reads from `max(mapEndOffset, logStartOffset)`).
    from: i64,
    /// The loaded snapshot's offset.
    snapshot: Option<i64>,
    /// The snapshot files in the directory, while they are known exactly (from the open's
    /// listing, with what the load deleted and wrote); `None` once unsure (the directory
    /// is listed again when they are needed).
    known: Option<Vec<i64>>,
    now_ms: i64,
    expiration_ms: i64,
}

impl ProducerLoad {
    /// Loads the newest usable snapshot of `part_dir` before the segments (`found`) are
    /// scanned, as Kafka's `LogLoader` does: without the clean shutdown marker, snapshots
    /// above the base offset of the first segment to recover are deleted (they may describe
    /// data the crash lost), or with `keep_to_recovery_point` only those above the recovery
    /// point; snapshots at or below the log start offset are deleted
    /// (Kafka's `truncateAndReload`); corrupt ones are deleted and the next older one tried.
    /// Expired producers are left out of the loaded state. `snapshots` are the offsets of
    /// the directory's snapshot files, sorted (from its listing).
    pub(super) fn start(
        part_dir: &Path,
        found: &[(i64, PathBuf)],
        params: &OpenParams,
        recovery_point: i64,
        keep_to_recovery_point: bool,
        snapshots: Vec<i64>,
    ) -> ProducerLoad {
        let log_start = found
            .first()
            .map_or(0, |(base, _)| *base)
            .max(params.log_start_offset.unwrap_or(i64::MIN));
        let bound = if params.clean_shutdown {
            i64::MAX
        } else if keep_to_recovery_point {
            // The recovery from the segment's index (`segment/recover_from.rs`) starts the
            // state from a snapshot at or below the recovery point: what it describes was
            // flushed before the point was checkpointed (snapshots are synced when written,
            // or, the one `finish` writes, before the recovery point moves past it).
            // Truncation below it reloads an older one (`finish`).
            recovery_point
        } else {
            // Kafka recovers the segment holding the recovery point and every later one.
            found
                .iter()
                .enumerate()
                .find(|(i, _)| {
                    found
                        .get(i + 1)
                        .is_none_or(|(next, _)| *next > recovery_point)
                })
                .map_or(i64::MAX, |(_, (base, _))| *base)
        };
        let (stale, usable): (Vec<i64>, Vec<i64>) = snapshots
            .into_iter()
            .partition(|&offset| offset > bound || offset <= log_start);
        producer_snapshot::delete_snapshots(part_dir, stale);
        let now_ms = now_ms();
        let expiration_ms = params.config.producer_id_expiration_ms;
        let mut load = ProducerLoad {
            producers: ProducerStateManager::default(),
            from: log_start,
            snapshot: None,
            known: None,
            now_ms,
            expiration_ms,
        };
        load.load_snapshot(part_dir, &usable, i64::MAX, log_start);
        // The newest one loaded: none was found corrupt (and deleted) on the way.
        if load.snapshot == usable.last().copied() {
            load.known = Some(usable);
        }
        load
    }

    /// Replaces the state with the newest usable snapshot among `offsets` at or below
    /// `at_most` (or the empty state from `log_start`).
    fn load_snapshot(&mut self, part_dir: &Path, offsets: &[i64], at_most: i64, log_start: i64) {
        match producer_snapshot::load_latest(part_dir, offsets, at_most) {
            Some((offset, entries)) => {
                self.producers = ProducerStateManager::from_snapshot(
                    offset,
                    &entries,
                    self.now_ms,
                    self.expiration_ms,
                );
                self.from = offset.max(log_start);
                self.snapshot = Some(offset);
            }
            None => {
                self.producers = ProducerStateManager::default();
                self.from = log_start;
                self.snapshot = None;
            }
        }
    }

    /// Replays a batch header the scan found, if the batch ends at or after where the
    /// state stands.
    pub(super) fn replay(&mut self, header: &BatchHeader) {
        if let Some(batch) = ProducerBatch::from_header(header)
            && batch.last_offset >= self.from
        {
            self.producers.replay(&batch);
        }
    }

    /// Batches ending below this offset are not replayed.
    pub(super) fn replays_from(&self) -> i64 {
        self.from
    }

    /// Whether the batch of `header` is replayed into the state (it ends at or after where
    /// the loaded snapshot stands); a marker below it is already in the snapshot.
    pub(super) fn replays(&self, header: &BatchHeader) -> bool {
        header.last_offset() >= self.from
    }

    /// Before the scan reads the segment at `base_offset`: one of the last two segments
    /// reached while replaying gets a snapshot at its base offset, as Kafka's
    /// `rebuildProducerState` takes them (so that a later recovery need not go further back).
    pub(super) fn before_segment(
        &mut self,
        part_dir: &Path,
        base_offset: i64,
        one_of_last_two: bool,
    ) {
        if !one_of_last_two || base_offset < self.from {
            return;
        }
        match take_snapshot(&mut self.producers, part_dir, base_offset, true) {
            Ok(false) => {}
            Ok(true) => {
                if let Some(known) = &mut self.known
                    && let Err(at) = known.binary_search(&base_offset)
                {
                    known.insert(at, base_offset);
                }
            }
            Err(error) => {
                self.known = None;
                tracing::warn!(dir = %part_dir.display(), base_offset, %error, "could not write a producer state snapshot");
            }
        }
    }

    /// After the scan, with the log's final segments and offsets: snapshots above the log
    /// end offset are deleted (and if the loaded one was among them, the state is reloaded
    /// from an older one and the batches after it read again), stray snapshots removed as
    /// Kafka's `removeStraySnapshots` does, and a snapshot taken at the log end offset,
    /// not synced: with the state, the offset of that snapshot if it was written (for the
    /// log to sync before its recovery point moves past it).
    pub(super) fn finish(
        mut self,
        part_dir: &Path,
        segments: &[Segment],
        log_start: i64,
        log_end: i64,
    ) -> Result<(ProducerStateManager, Option<i64>), StorageError> {
        let offsets = match self.known.take() {
            Some(known) => known,
            None => producer_snapshot::list_snapshots(part_dir).unwrap_or_default(),
        };
        let (above, mut kept): (Vec<i64>, Vec<i64>) =
            offsets.into_iter().partition(|&offset| offset > log_end);
        producer_snapshot::delete_snapshots(part_dir, above);
        if self.snapshot.is_some_and(|offset| offset > log_end) {
            // The log ends before the snapshot (a torn or corrupt tail was cut off).
            self.load_snapshot(part_dir, &kept, log_end, log_start);
            replay_headers(segments, self.from, &mut self.producers)?;
            // The load may have deleted corrupt ones.
            kept = producer_snapshot::list_snapshots(part_dir).unwrap_or_default();
        }
        remove_stray_snapshots(part_dir, segments, kept);
        // Kafka's `LogLoader` takes this snapshot with a sync (`takeSnapshot()`); it is
        // written here without one, as Kafka's `roll` writes its snapshot
        // (`takeSnapshot(false)`, synced by the flush that follows): its offset is at or
        // above the recovery point, and a crash-open deletes every snapshot above the
        // recovery point, so nothing relies on it being durable until the recovery point
        // reaches it, and the log syncs it before moving the point (issue 14: 2,000 `fsync`s
        // less per start of 1,000 partitions after a kill -9). A snapshot exactly at the
        // recovery point that a power loss tore fails its CRC and an older one is used.
        let unsynced = match take_snapshot(&mut self.producers, part_dir, log_end, false) {
            Ok(written) => written.then_some(log_end),
            Err(error) => {
                tracing::warn!(dir = %part_dir.display(), log_end, %error, "could not write a producer state snapshot");
                None
            }
        };
        Ok((self.producers, unsynced))
    }
}

/// Kafka's `removeStraySnapshots`: snapshots at no segment's base offset are deleted, but
/// the newest of them is kept when it is at or above the last segment's base offset (the
/// snapshot of a clean shutdown).
fn remove_stray_snapshots(part_dir: &Path, segments: &[Segment], offsets: Vec<i64>) {
    let bases: Vec<i64> = segments.iter().map(|s| s.base_offset).collect();
    let strays: Vec<i64> = offsets
        .into_iter()
        .filter(|o| bases.binary_search(o).is_err())
        .collect();
    let Some((&newest, older)) = strays.split_last() else {
        return;
    };
    producer_snapshot::delete_snapshots(part_dir, older.iter().copied());
    if bases.last().is_some_and(|&last| newest < last) {
        producer_snapshot::delete_snapshots(part_dir, [newest]);
    }
}

/// Replays the producer batches of `segments` ending at or after `from`, reading their
/// headers again from the files (only when the log turned out to end before the snapshot
/// the scan started from).
fn replay_headers(
    segments: &[Segment],
    from: i64,
    producers: &mut ProducerStateManager,
) -> Result<(), StorageError> {
    let mut buf = [0u8; RECORD_BATCH_OVERHEAD];
    for segment in segments.iter().filter(|s| s.next_offset() > from) {
        for entry in segment
            .batches()
            .iter()
            .filter(|b| b.last_offset >= from && b.magic == MAGIC_V2)
        {
            segment
                .file
                .read_exact_at(&mut buf, u64::from(entry.position))
                .map_err(|e| StorageError::io(&segment.path, e))?;
            let Some(header) = BatchHeader::decode(&buf) else {
                continue;
            };
            if let Some(batch) = ProducerBatch::from_header(&header) {
                producers.replay(&batch);
            } else if header.is_control()
                && header.producer_id >= 0
                && let Some(marker) = super::transactions::read_marker(
                    &header,
                    &segment.file,
                    u64::from(entry.position),
                )
            {
                // Markers end the transactions the replayed batches started.
                producers.replay_marker(&marker);
            }
        }
    }
    Ok(())
}

impl PartitionLog {
    /// Kafka's `rebuildProducerState` after a truncation to `log_end`, under the writer
    /// lock: the snapshots above it are deleted, the newest one at or below it loaded (or
    /// the empty state from the log start offset) and the batch headers after it replayed
    /// from the files; the first unstable offset is published with it.
    pub(super) fn rebuild_producers(&self, log_end: i64) -> Result<(), StorageError> {
        let offsets = producer_snapshot::list_snapshots(&self.dir).unwrap_or_default();
        let (above, kept): (Vec<i64>, Vec<i64>) =
            offsets.into_iter().partition(|&offset| offset > log_end);
        producer_snapshot::delete_snapshots(&self.dir, above);
        let config = self.config();
        let state = unpoison(self.state.read());
        let log_start = state.log_start_offset;
        let (mut producers, from) = match producer_snapshot::load_latest(&self.dir, &kept, log_end)
        {
            Some((offset, entries)) => (
                ProducerStateManager::from_snapshot(
                    offset,
                    &entries,
                    now_ms(),
                    config.producer_id_expiration_ms,
                ),
                offset.max(log_start),
            ),
            None => (ProducerStateManager::default(), log_start),
        };
        replay_headers(&state.segments, from, &mut producers)?;
        drop(state);
        let first_unstable_offset = producers.first_unstable_offset();
        *unpoison(self.producers.lock()) = producers;
        unpoison(self.state.write()).first_unstable_offset = first_unstable_offset;
        Ok(())
    }
}
