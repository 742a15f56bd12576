//! Opening a partition's log: finding its segments, recovering them after an unclean stop
//! (Kafka's `LogLoader`/`LogSegment.recover`), loading or rebuilding their indexes and the
//! leader epoch cache and the producer state (from its snapshots, see `producers.rs`), and
//! creating a new log.

use std::collections::{BTreeMap, HashMap, hash_map};

use super::deferred_flush::Unsynced;
use super::transactions::{load_txn_index, read_marker};
use super::*;
use crate::storage::segment::{IndexLimits, SampledEpoch};
use crate::storage::{producer_snapshot, txn_index};

impl PartitionLog {
    /// Opens the log of `topic`/`partition` in the log directory `dir` (the directory
    /// holding `<topic>-<partition>/`, which must exist) with the default [`LogConfig`]; see
    /// [`Self::open_with_config`].
    pub fn open(dir: &Path, topic: &str, partition: i32) -> Result<PartitionLog, StorageError> {
        PartitionLog::open_with_config(dir, topic, partition, LogConfig::default())
    }

    /// Opens the log of `topic`/`partition` in the log directory `dir` with `config`,
    /// recovering it as Kafka does. `dir`'s clean shutdown marker and checkpoint files are
    /// read (not changed: [`super::LogManager`] deletes the marker).
    ///
    /// Lists the `<20 digits>.log` segment files (other files are ignored, leftover
    /// `*.deleted` files removed), sorts them by base offset and indexes each one's batches
    /// by reading their headers. Without the clean shutdown marker, the segments from the
    /// recovery point on (all of them without a checkpoint) are also read whole and every
    /// batch's CRC checked. The first torn, non-chaining or corrupt batch ends the log:
    /// the segment is truncated there and later segments removed; this is logged and
    /// reported by [`Self::torn_tail`]. Each segment's `.index` and `.timeindex` are checked
    /// against its batches and rebuilt if missing or wrong (always for recovered segments).
    ///
    /// Blocking: call it from a blocking context.
    pub fn open_with_config(
        dir: &Path,
        topic: &str,
        partition: i32,
        config: LogConfig,
    ) -> Result<PartitionLog, StorageError> {
        let params = OpenParams::from_log_dir(dir, topic, partition, config);
        PartitionLog::open_with(dir, topic, partition, params)
    }

    /// [`Self::open_with_config`] with what the caller read from the log directory.
    ///
    /// The segments that need no recovery (all of them after a clean shutdown, those
    /// wholly below the recovery point after an unclean one, as Kafka's `LogLoader` trusts
    /// their indexes) are first opened from their index files ([`Segment::open_indexed`]:
    /// no batch of a closed segment is read, the active one's end is found from its last
    /// index entry) with the leader epoch cache taken from its checkpoint, once the batch
    /// headers read agree with the file (see [`checkpoint_disagreement`]); a segment whose
    /// index files fail Kafka's sanity check or whose batches the producer state must
    /// replay is scanned as before. The segments to recover are scanned, and only their
    /// batches from the recovery point on verified (CRC). A damaged segment found after a
    /// clean shutdown, an unusable transaction index or a missing or disagreeing epoch
    /// checkpoint makes
    /// the open start over, scanning every segment: exactly the old behaviour.
    pub(crate) fn open_with(
        dir: &Path,
        topic: &str,
        partition: i32,
        params: OpenParams,
    ) -> Result<PartitionLog, StorageError> {
        let params = match PartitionLog::open_scanning(dir, topic, partition, params, true)? {
            Ok(log) => return Ok(log),
            Err((params, reason)) => {
                if reason == NO_EPOCH_CHECKPOINT {
                    // Routine for a new partition.
                    tracing::debug!(
                        topic,
                        partition,
                        reason,
                        "scanning every segment of the log"
                    );
                } else {
                    tracing::info!(
                        topic,
                        partition,
                        reason,
                        "scanning every segment of the log"
                    );
                }
                params
            }
        };
        match PartitionLog::open_scanning(dir, topic, partition, params, false)? {
            Ok(log) => Ok(log),
            Err((_, reason)) => unreachable!("no fallback from a full scan: {reason}"),
        }
    }

    /// [`Self::open_with`]: with `indexed`, segments are opened from their index files where
    /// possible, and `Ok(Err(reason))` gives `params` back where the open must scan every
    /// segment instead.
    #[allow(clippy::type_complexity)]
    fn open_scanning(
        dir: &Path,
        topic: &str,
        partition: i32,
        params: OpenParams,
        indexed: bool,
    ) -> Result<Result<PartitionLog, (OpenParams, &'static str)>, StorageError> {
        let part_dir = dir.join(partition_dir_name(topic, partition));
        // Read first: without it (a new partition, or a log written by other tools) the
        // open scans every segment.
        let checkpointed_epochs = if indexed {
            match leader_epoch::read_checkpoint(&part_dir) {
                Ok(Some(entries)) => entries,
                _ => return Ok(Err((params, NO_EPOCH_CHECKPOINT))),
            }
        } else {
            Vec::new()
        };
        // The directory is listed once; what interrupted operations left (rare) is cleared
        // up by their own passes first, and the directory listed again.
        let mut listing = Listing::read(&part_dir)?;
        if listing.leftovers {
            // A cleaning interrupted by a crash: finish or undo its swap first.
            super::compaction::complete_interrupted_cleaning(&part_dir)?;
            // Removes unfinished deletions.
            list_segment_files(&part_dir)?;
            producer_snapshot::remove_temp_files(&part_dir);
            listing = Listing::read(&part_dir)?;
        }
        let found = std::mem::take(&mut listing.segments);
        // The checkpoint as a cache, to check it against the batch headers an index-based
        // open reads, from the lowest offset the log can start at on.
        let checkpoint_cache = LeaderEpochCache::from_entries(checkpointed_epochs.iter().copied());
        let start_bound = found
            .first()
            .map_or(0, |(base, _)| *base)
            .max(params.log_start_offset.unwrap_or(i64::MIN));
        let recovery_point = params.recovery_point.unwrap_or(0);
        let clean = params.clean_shutdown;
        let mut report = OpenReport {
            clean_shutdown: clean,
            ..OpenReport::default()
        };

        let mut segments: Vec<Segment> = Vec::with_capacity(found.len());
        let mut verified = Vec::with_capacity(found.len());
        // Whether each segment was opened from its index files.
        let mut from_index = Vec::with_capacity(found.len());
        let mut torn_tail = None;
        // Index files the recovery rewrote without a sync (see `Unsynced`).
        let mut unsynced_files = Vec::new();
        // The producer state starts from the newest usable snapshot; the scan replays the
        // batches after it (see `producers.rs`).
        let mut producers = ProducerLoad::start(
            &part_dir,
            &found,
            &params,
            recovery_point,
            indexed,
            std::mem::take(&mut listing.snapshots),
        );
        // The leader epoch cache is rebuilt from the headers: every batch that starts a
        // newer epoch starts an entry. For segments opened from their index files, the
        // entries starting in them come from the checkpoint (which Kafka's `LogLoader`
        // always trusts).
        let mut epochs = LeaderEpochCache::default();
        // And the aborted transactions of each segment (its transaction index as Kafka's
        // `LogSegment.recover` rebuilds it), from the markers in it.
        let mut replayed_aborts: Vec<(Vec<AbortedTxn>, StoredTxnIndex)> =
            Vec::with_capacity(found.len());
        // Transactions seen by the scan from the log start, for the indexes of segments
        // below the producer snapshot (whose markers the state does not replay).
        let mut scanned_txns = ScannedTxns::default();
        for (i, (base, path)) in found.iter().enumerate() {
            producers.before_segment(&part_dir, *base, i + 2 >= found.len());
            let upper = found.get(i + 1).map(|(next, _)| *next);
            let min_offset = segments.last().map_or(*base, Segment::next_offset);
            // Kafka recovers the segment holding the recovery point and every later one.
            let verify = !clean && upper.is_none_or(|upper| upper > recovery_point);
            // The aborted transactions are only needed where the index will be rebuilt.
            // The segment's transaction index as stored (read once: also what it is kept as).
            let stored = if listing.has_txn_index(*base) {
                txn_index::read_txn_index(&part_dir, *base)
            } else {
                Ok(Vec::new())
            };
            let wants_aborts = verify || upper.is_none() || stored.is_err();
            let mut aborts = Vec::new();
            let replays_from = producers.replays_from();
            // The segment holding the recovery point is recovered from its last offset index
            // entry at or below it (and at or below where the producer state stands, so that
            // no batch the state needs is skipped): see `segment/recover_from.rs`. Kafka
            // re-reads the whole segment.
            let mut recovery_start = None;
            if indexed && verify && *base <= recovery_point && stored.is_ok() {
                let limit = recovery_point.min(replays_from);
                match Segment::recovery_start(&part_dir, path.clone(), *base, min_offset, limit)
                    .map_err(|e| StorageError::io(path, e))?
                {
                    Ok(start) => {
                        if let Some(disagreement) =
                            checkpoint_disagreement(&checkpoint_cache, &start.sampled, start_bound)
                        {
                            warn_epochs_disagree(path, &disagreement, &checkpointed_epochs);
                            return Ok(Err((params, EPOCHS_DISAGREE)));
                        }
                        // The epochs starting before the tail come from the checkpoint, those
                        // in it from the headers the recovery reads.
                        let low = if i == 0 { i64::MIN } else { *base };
                        for entry in checkpointed_epochs
                            .iter()
                            .filter(|e| e.start_offset >= low && e.start_offset < start.tail_offset)
                        {
                            epochs.assign(entry.epoch, entry.start_offset);
                        }
                        recovery_start = Some(start);
                    }
                    Err(reason) => tracing::debug!(
                        segment = %path.display(),
                        reason,
                        "recovering the segment from its first batch"
                    ),
                }
            }
            let recovered_from_index = recovery_start.is_some();
            let mut replay = |header: &BatchHeader, file: &File, position: u64| {
                if !header.is_control() {
                    producers.replay(header);
                    if header.is_transactional() && header.producer_id >= 0 {
                        scanned_txns.started(header.producer_id, header.base_offset);
                    }
                } else if header.producer_id >= 0 {
                    let first = scanned_txns.ended(header.producer_id);
                    if producers.replays(header) {
                        if let Some(marker) = read_marker(header, file, position)
                            && let Some(done) = producers.producers.replay_marker(&marker)
                            && done.aborted
                        {
                            aborts.push(AbortedTxn {
                                producer_id: done.producer_id,
                                first_offset: done.first_offset,
                                last_offset: done.last_offset,
                                last_stable_offset: done.last_stable_offset,
                            });
                        }
                    } else if wants_aborts
                        && let Some(first) = first
                        && let Some(marker) = read_marker(header, file, position)
                        && !marker.commit
                    {
                        aborts.push(AbortedTxn {
                            producer_id: header.producer_id,
                            first_offset: first,
                            last_offset: header.base_offset,
                            last_stable_offset: scanned_txns
                                .first_unstable()
                                .unwrap_or(header.base_offset + 1),
                        });
                    }
                }
                epochs.assign(header.partition_leader_epoch, header.base_offset);
            };
            if indexed && stored.is_err() {
                // Its rebuild needs the transactions the scan of every earlier segment sees.
                return Ok(Err((params, "an unusable transaction index")));
            }
            let mut opened = None;
            if indexed && !verify {
                match Segment::open_indexed(&part_dir, path.clone(), *base, upper)
                    .map_err(|e| StorageError::io(path, e))?
                {
                    // Batches the producer state must replay are read the old way.
                    Ok((segment, sampled)) if segment.next_offset() <= replays_from => {
                        // Its epochs are taken from the checkpoint: only if the file agrees
                        // with the headers read (a damaged or stale one would answer
                        // OffsetForLeaderEpoch wrongly and make followers truncate wrongly).
                        if let Some(disagreement) =
                            checkpoint_disagreement(&checkpoint_cache, &sampled, start_bound)
                        {
                            warn_epochs_disagree(path, &disagreement, &checkpointed_epochs);
                            return Ok(Err((params, EPOCHS_DISAGREE)));
                        }
                        opened = Some(segment);
                    }
                    Ok(_) => {}
                    Err(reason) => tracing::info!(
                        segment = %path.display(),
                        reason,
                        "scanning a segment whose index files cannot be used"
                    ),
                }
            }
            let opened_from_index = opened.is_some();
            let (segment, stop) = match (opened, recovery_start) {
                (Some(segment), _) => (segment, None),
                (None, Some(start)) => {
                    let limits = IndexLimits {
                        interval_bytes: u64::try_from(params.config.index_interval_bytes)
                            .unwrap_or(0),
                        max_offset_entries: params.config.max_offset_index_entries(),
                        max_time_entries: params.config.max_time_index_entries(),
                    };
                    match Segment::recover_from(start, upper, recovery_point, limits, &mut replay)
                        .map_err(|e| StorageError::io(path, e))?
                    {
                        Ok(recovered) => {
                            report.rebuilt_indexes += usize::from(recovered.rebuilt_indexes);
                            unsynced_files.extend(recovered.unsynced);
                            report.recovered_from_index += 1;
                            (recovered.segment, recovered.stop)
                        }
                        Err(reason) => return Ok(Err((params, reason))),
                    }
                }
                (None, None) => {
                    // What is below the recovery point was synced and checkpointed: only
                    // the batches from it on are verified (Kafka verifies whole segments).
                    let verify_from = verify.then_some(recovery_point);
                    Segment::open(
                        path.clone(),
                        *base,
                        min_offset,
                        upper,
                        verify_from,
                        &mut replay,
                    )
                    .map_err(|e| StorageError::io(path, e))?
                }
            };
            if indexed && clean && stop.is_some() {
                return Ok(Err((params, "a damaged segment")));
            }
            if opened_from_index {
                // The epochs starting in a segment whose batches are not read come from the
                // checkpoint (those of scanned segments from their headers).
                let low = if i == 0 { i64::MIN } else { *base };
                for entry in checkpointed_epochs
                    .iter()
                    .filter(|e| e.start_offset >= low && upper.is_none_or(|u| e.start_offset < u))
                {
                    epochs.assign(entry.epoch, entry.start_offset);
                }
            }
            if recovered_from_index && let Ok(stored) = &stored {
                // The markers before where the producer state stands were not replayed: the
                // stored transaction index (flushed with the batches below the recovery
                // point) gives their aborts.
                let mut merged: Vec<AbortedTxn> = stored
                    .iter()
                    .filter(|a| a.last_offset < replays_from)
                    .copied()
                    .collect();
                merged.extend(aborts.drain(..).filter(|a| a.last_offset >= replays_from));
                aborts = merged;
            }
            // The index files of a recovered segment were brought up to date by its recovery.
            from_index.push(opened_from_index || recovered_from_index);
            report.indexed_segments += usize::from(opened_from_index);
            replayed_aborts.push((aborts, stored));
            report.verified_segments += usize::from(verify);
            let file_len = segment.file_len;
            let valid_len = segment.valid_len;
            segments.push(segment);
            verified.push(verify);
            if let Some(stop) = stop {
                if clean && i + 1 < found.len() {
                    // Not a torn write: the tail of a cleanly closed log cannot be torn, and
                    // truncating would delete every later segment.
                    return Err(StorageError::DamagedAfterCleanShutdown {
                        path: path.clone(),
                        position: stop.position,
                        reason: stop.reason.to_string(),
                        later_segments: found.len() - i - 1,
                    });
                }
                let dropped: Vec<PathBuf> = found[i + 1..].iter().map(|(_, p)| p.clone()).collect();
                let dropped_bytes = truncate_tail(path, valid_len, &dropped)?;
                report.truncated_bytes = file_len - valid_len + dropped_bytes;
                let last = segments.last_mut().expect("just pushed");
                last.file_len = valid_len;
                let tail = TornTail {
                    path: path.clone(),
                    segment_base_offset: *base,
                    position: stop.position,
                    file_len,
                    reason: stop.reason,
                    dropped_segments: dropped,
                };
                tracing::warn!(
                    segment = %tail.path.display(),
                    position = tail.position,
                    file_len = tail.file_len,
                    reason = tail.reason,
                    next_offset = last.next_offset(),
                    truncated_bytes = report.truncated_bytes,
                    removed_segments = tail.dropped_segments.len(),
                    "truncated the log at a torn or corrupt batch"
                );
                torn_tail = Some(tail);
                break;
            }
        }
        let truncated_at = torn_tail.as_ref().map(|t| t.segment_base_offset);
        for (((segment, verified), replayed), opened_from_index) in segments
            .iter_mut()
            .zip(&verified)
            .zip(replayed_aborts)
            .zip(&from_index)
        {
            let force = *verified || truncated_at == Some(segment.base_offset);
            let (replayed, stored) = replayed;
            segment.aborted_txns = load_txn_index(&part_dir, segment, replayed, stored, force);
            if *opened_from_index {
                // Already checked (Kafka's sanity check); the active segment's files are
                // checked against its batches when its writer is set up.
                continue;
            }
            let segment = &*segment;
            match load_or_rebuild_indexes(&part_dir, segment, &params.config, force) {
                Ok((_, rebuilt)) => report.rebuilt_indexes += usize::from(rebuilt),
                // The broker reads through its in-memory index: a missing Kafka index only
                // matters to Kafka's tools, so it does not stop the log from opening.
                Err(error) => tracing::warn!(
                    segment = %segment.path.display(),
                    %error,
                    "could not write the segment's index files"
                ),
            }
        }

        let first_base = segments.first().map(|s| s.base_offset);
        let log_end_offset = segments.last().map_or(
            params.log_start_offset.unwrap_or(0).max(0),
            Segment::next_offset,
        );
        let log_start_offset = first_base
            .unwrap_or(log_end_offset)
            .max(params.log_start_offset.unwrap_or(i64::MIN))
            .min(log_end_offset);
        let recovery_point = if clean {
            log_end_offset
        } else {
            recovery_point.min(log_end_offset)
        };
        if let Some(log_starts) = &params.log_starts {
            log_starts.set(topic, partition, log_start_offset);
        }
        // Kafka expires only the snapshot's producers at load; the periodic check does the
        // rest.
        let (producers, unsynced_snapshot) =
            producers.finish(&part_dir, &segments, log_start_offset, log_end_offset)?;
        let first_unstable_offset = producers.first_unstable_offset();
        // The checkpoint as read at the start of an index-based open (nothing wrote it since).
        let epoch_file = indexed.then_some(checkpointed_epochs);
        let epochs = load_epochs(
            &part_dir,
            epochs,
            log_start_offset,
            log_end_offset,
            epoch_file,
        );
        let (end_offset, _) = watch::channel(log_end_offset);
        tracing::debug!(
            topic,
            partition,
            segments = segments.len(),
            log_start_offset,
            log_end_offset,
            recovery_point,
            verified_segments = report.verified_segments,
            rebuilt_indexes = report.rebuilt_indexes,
            "opened partition log"
        );
        Ok(Ok(PartitionLog {
            topic: topic.to_owned(),
            partition,
            log_dir: dir.to_owned(),
            dir: part_dir,
            state: RwLock::new(LogState {
                segments,
                log_start_offset,
                log_end_offset,
                first_unstable_offset,
                high_watermark: log_end_offset,
                hw_follows_leo: true,
            }),
            writer: Mutex::new(None),
            end_offset,
            torn_tail,
            report,
            deleted: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            config: ArcSwap::from_pointee(params.config),
            recovery_point: AtomicI64::new(recovery_point),
            last_flush_ms: AtomicI64::new(now_ms()),
            group_commit: Default::default(),
            log_starts: params.log_starts,
            producers: Mutex::new(producers),
            successor: std::sync::OnceLock::new(),
            epochs: Mutex::new(epochs),
            unsynced: Mutex::new(Unsynced {
                files: unsynced_files,
                snapshot: unsynced_snapshot,
            }),
        }))
    }

    /// Creates the directory of `topic`/`partition` in the log directory `dir` if needed
    /// and opens the log with the default [`LogConfig`] (see [`Self::create_with_config`]).
    pub fn create(dir: &Path, topic: &str, partition: i32) -> Result<PartitionLog, StorageError> {
        PartitionLog::create_with_config(dir, topic, partition, LogConfig::default())
    }

    /// Creates the directory of `topic`/`partition` in the log directory `dir` if needed
    /// and opens the log; a log without segments gets an empty first segment
    /// (`00000000000000000000.log` with its index files), as Kafka creates it.
    pub fn create_with_config(
        dir: &Path,
        topic: &str,
        partition: i32,
        config: LogConfig,
    ) -> Result<PartitionLog, StorageError> {
        let params = OpenParams::from_log_dir(dir, topic, partition, config);
        PartitionLog::create_with(dir, topic, partition, params)
    }

    /// [`Self::create_with_config`] with what the caller read from the log directory.
    pub(crate) fn create_with(
        dir: &Path,
        topic: &str,
        partition: i32,
        params: OpenParams,
    ) -> Result<PartitionLog, StorageError> {
        let part_dir = dir.join(partition_dir_name(topic, partition));
        fs::create_dir_all(&part_dir).map_err(|e| StorageError::io(&part_dir, e))?;
        let log = PartitionLog::open_with(dir, topic, partition, params)?;
        let empty = unpoison(log.state.read()).segments.is_empty();
        if empty {
            let mut writer = unpoison(log.writer.lock());
            let base = log.log_end_offset();
            log.new_segment(&mut writer, base)?;
        }
        Ok(log)
    }
}

/// The `<20 digits>.log` files of a partition directory, sorted by base offset; removes
/// leftover `*.deleted` files (deletions that did not finish).
/// The epoch cache of a log being opened: `rebuilt` from its batch headers, truncated to
/// the log's offsets as Kafka's `LogLoader` truncates it (`truncateFromEnd` at the log end
/// offset, `truncateFromStart` at the log start offset). The checkpoint file says nothing
/// the batches do not: every entry but a leader's newest starts at a batch, and Kafka
/// drops that one at load too (it starts at the log end offset). So the file is only
/// rewritten when it differs (or is missing or unreadable). `known_file` is the file's
/// contents if the caller read it already.
pub(super) fn load_epochs(
    part_dir: &Path,
    mut epochs: LeaderEpochCache,
    log_start_offset: i64,
    log_end_offset: i64,
    known_file: Option<Vec<EpochEntry>>,
) -> LeaderEpochCache {
    epochs.truncate_from_end(log_end_offset);
    epochs.truncate_from_start(log_start_offset);
    let read = match known_file {
        Some(file) => Ok(Some(file)),
        None => leader_epoch::read_checkpoint(part_dir),
    };
    let file = match read {
        Ok(file) => file,
        Err(error) => {
            tracing::warn!(
                dir = %part_dir.display(),
                %error,
                "rebuilding an unreadable {}", leader_epoch::LEADER_EPOCH_CHECKPOINT
            );
            None
        }
    };
    if file.as_deref() != Some(epochs.entries()) {
        if file.is_some() {
            // Routine after Kafka wrote the file: its leader's newest epoch, started at
            // the log end offset, is dropped at load (see above).
            tracing::debug!(
                dir = %part_dir.display(),
                from = ?file,
                to = ?epochs.entries(),
                "rebuilt {} from the log", leader_epoch::LEADER_EPOCH_CHECKPOINT
            );
        }
        if let Err(error) = leader_epoch::write_checkpoint(part_dir, epochs.entries()) {
            tracing::warn!(
                dir = %part_dir.display(),
                %error,
                "cannot write {}", leader_epoch::LEADER_EPOCH_CHECKPOINT
            );
        }
    }
    epochs
}

pub(super) fn list_segment_files(part_dir: &Path) -> Result<Vec<(i64, PathBuf)>, StorageError> {
    let mut found = Vec::new();
    let entries = fs::read_dir(part_dir).map_err(|e| StorageError::io(part_dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io(part_dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let path = entry.path();
        if name.ends_with(DELETED_SUFFIX) {
            if fs::metadata(&path).is_ok_and(|m| m.is_file()) {
                match fs::remove_file(&path) {
                    Ok(()) => {
                        tracing::debug!(file = %path.display(), "removed a leftover deleted file")
                    }
                    Err(error) => {
                        tracing::warn!(file = %path.display(), %error, "could not remove a deleted file")
                    }
                }
            }
            continue;
        }
        let Some(base) = parse_segment_file_name(name) else {
            continue;
        };
        // Follows symbolic links, as Kafka does.
        let metadata = fs::metadata(&path).map_err(|e| StorageError::io(&path, e))?;
        if metadata.is_file() {
            found.push((base, path));
        }
    }
    found.sort_unstable_by_key(|(base, _)| *base);
    Ok(found)
}

/// Truncates the segment at `path` to `valid_len` and deletes the `dropped` later
/// segments (with their index files); returns the bytes the dropped segments held.
pub(super) fn truncate_tail(
    path: &Path,
    valid_len: u64,
    dropped: &[PathBuf],
) -> Result<u64, StorageError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| StorageError::io(path, e))?;
    file.set_len(valid_len)
        .and_then(|()| file.sync_all())
        .map_err(|e| StorageError::io(path, e))?;
    let mut dropped_bytes = 0;
    for segment in dropped {
        dropped_bytes += fs::metadata(segment).map_or(0, |m| m.len());
        let base = segment
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(parse_segment_file_name)
            .expect("a listed segment file");
        let dir = segment.parent().expect("a file in a partition directory");
        delete_segment_files(dir, base).map_err(|e| StorageError::io(segment, e))?;
    }
    if let Some(dir) = path.parent() {
        checkpoint::sync_dir(dir).map_err(|e| StorageError::io(dir, e))?;
    }
    Ok(dropped_bytes)
}

/// Deletes a segment's files as Kafka does: the `.log` is first renamed to `.log.deleted`
/// (so that a crash midway never leaves a half-deleted segment in use), then the index
/// files and the renamed log are removed.
pub(super) fn delete_segment_files(dir: &Path, base_offset: i64) -> io::Result<()> {
    let log = Segment::path_in(dir, base_offset);
    let doomed = dir.join(format!(
        "{}{DELETED_SUFFIX}",
        segment_file_name(base_offset)
    ));
    match fs::rename(&log, &doomed) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    for suffix in SEGMENT_SIDE_FILES {
        match fs::remove_file(dir.join(format!("{base_offset:020}.{suffix}"))) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    match fs::remove_file(&doomed) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    tracing::debug!(segment = %log.display(), "deleted a segment");
    Ok(())
}

/// Loads a segment's `.index` and `.timeindex` and checks them against its batches,
/// rebuilding both (as Kafka's recovery would write them) if either is missing or wrong, or
/// if `force`. Returns the state to keep appending with and whether they were rebuilt.
pub(super) fn load_or_rebuild_indexes(
    dir: &Path,
    segment: &Segment,
    config: &LogConfig,
    force: bool,
) -> io::Result<(IndexBuilder, bool)> {
    let base = segment.base_offset;
    let offset_path = index::offset_index_path(dir, base);
    let time_path = index::time_index_path(dir, base);
    if !force {
        let offset_index = index::read_index_file(&offset_path)?
            .and_then(|bytes| index::decode_offset_index(&bytes, base));
        let time_index = index::read_index_file(&time_path)?
            .and_then(|bytes| index::decode_time_index(&bytes, base));
        let problem = match (&offset_index, &time_index) {
            (Some(offsets), Some(times)) => index::check_offset_index(offsets, segment.batches())
                .and_then(|()| index::check_time_index(times, segment.batches()))
                .err(),
            _ => Some("missing or not a whole number of entries"),
        };
        match problem {
            None => {
                let builder = IndexBuilder::resume(
                    base,
                    segment.batches(),
                    offset_index.as_deref().unwrap_or_default(),
                    time_index.as_deref().unwrap_or_default(),
                );
                return Ok((builder, false));
            }
            Some(reason) => tracing::info!(
                segment = %segment.path.display(),
                reason,
                "rebuilding the segment's index files"
            ),
        }
    }
    let (files, builder) = index::build_indexes(
        base,
        segment.batches(),
        u64::try_from(config.index_interval_bytes).unwrap_or(0),
        config.max_offset_index_entries(),
        config.max_time_index_entries(),
    );
    index::write_index_file(&offset_path, &files.offset_bytes)?;
    index::write_index_file(&time_path, &files.time_bytes)?;
    Ok((builder, true))
}

/// Why an open scans every segment: no readable epoch checkpoint (a new partition).
const NO_EPOCH_CHECKPOINT: &str = "no readable leader-epoch-checkpoint";

/// Why an open scans every segment: the epoch checkpoint disagrees with a batch header.
const EPOCHS_DISAGREE: &str = "a leader-epoch-checkpoint that disagrees with the batches";

/// Logs a batch that contradicts the `leader-epoch-checkpoint` (the open then falls back to
/// the full scan, which rewrites the file).
fn warn_epochs_disagree(
    segment: &std::path::Path,
    disagreement: &SampledEpoch,
    checkpointed: &[leader_epoch::EpochEntry],
) {
    tracing::warn!(
        segment = %segment.display(),
        batch_base_offset = disagreement.base_offset,
        batch_epoch = disagreement.epoch,
        checkpoint = ?checkpointed,
        "the {} disagrees with a batch of the log",
        leader_epoch::LEADER_EPOCH_CHECKPOINT
    );
}

/// The first of the `sampled` batches (of a segment opened from its index files) whose
/// leader epoch is not the one the epoch checkpoint (as `checkpoint`) gives its offsets,
/// where the log has them (from `start_bound` on; the checkpoint was truncated from the
/// start at the log start offset, its entry covering it moved there, as Kafka's
/// `truncateFromStart` does). Batches without an epoch are not checked: Kafka's `assign`
/// ignores them.
fn checkpoint_disagreement(
    checkpoint: &LeaderEpochCache,
    sampled: &[SampledEpoch],
    start_bound: i64,
) -> Option<SampledEpoch> {
    sampled.iter().copied().find(|batch| {
        batch.epoch >= 0
            && batch.last_offset >= start_bound
            && checkpoint.epoch_at(batch.base_offset.max(start_bound)) != Some(batch.epoch)
    })
}

/// A segment's `.txnindex` as read at open.
type StoredTxnIndex = Result<Vec<AbortedTxn>, txn_index::TxnIndexError>;

/// The transactions the open scan sees, from the first batch on (Kafka's `LogSegment.recover`
/// rebuilds a transaction index from them): the first offset of each producer's ongoing
/// transaction.
#[derive(Default)]
struct ScannedTxns {
    by_producer: HashMap<i64, i64>,
    by_first_offset: BTreeMap<i64, i64>,
}

impl ScannedTxns {
    /// A transactional batch of `producer_id` at `offset`: starts its transaction if none is
    /// ongoing.
    fn started(&mut self, producer_id: i64, offset: i64) {
        if let hash_map::Entry::Vacant(e) = self.by_producer.entry(producer_id) {
            e.insert(offset);
            self.by_first_offset.insert(offset, producer_id);
        }
    }

    /// A marker of `producer_id`: the first offset of the transaction it ends, if the scan
    /// saw it start.
    fn ended(&mut self, producer_id: i64) -> Option<i64> {
        let first = self.by_producer.remove(&producer_id)?;
        self.by_first_offset.remove(&first);
        Some(first)
    }

    /// The first offset of the oldest transaction still ongoing.
    fn first_unstable(&self) -> Option<i64> {
        self.by_first_offset.keys().next().copied()
    }
}
