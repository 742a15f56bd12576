//! What the Raft log storage of the metadata quorum ([`crate::cluster::quorum`]) needs of
//! [`MetadataLog`] beyond the single-node appender: opening without starting an epoch,
//! appending batches whose offsets and epochs the leader chose, truncating a conflicting
//! suffix (Kafka's `UnifiedLog.truncateTo`), starting over past a snapshot (Kafka's
//! `truncateFullyAndStartAt`), and reading batches back.
//!
//! The files stay those of the module docs: segments of v2 batches with their indexes and
//! `leader-epoch-checkpoint`, which a follower keeps as Kafka's followers do (an entry
//! per epoch of the batches it appends, truncated from the end with the log).

use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use bytes::Bytes;
use gregor_protocol::records::{Batch, NewRecord, RecordBatchBuilder, RecordBatches};

use super::{
    ActiveSegment, LoadedMetadata, MetadataLog, MetadataLogError, MetadataLogOptions,
    OFFSET_INDEX_SUFFIX, TIME_INDEX_SUFFIX, index_path, io_error, scan_segment, sync_dir,
    write_leader_epoch_checkpoint,
};
use crate::storage::leader_epoch::{EpochEntry, LeaderEpochCache};

/// Where one batch of the metadata log is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLocation {
    /// Offset of its first record.
    pub base_offset: i64,
    /// Offset of its last record.
    pub last_offset: i64,
    /// Its partition leader epoch.
    pub epoch: i32,
    /// Base offset of the segment it is in.
    pub segment: i64,
    /// Its byte position in that segment.
    pub position: u64,
    /// Its size in bytes.
    pub size: u64,
}

impl MetadataLog {
    /// Opens the log `loaded` was read from as a replica of the quorum: truncates the torn
    /// tail and picks the active segment as [`MetadataLog::open`] does, but appends nothing
    /// (the quorum's leader starts epochs). Its epoch is that of the last batch (0 for an
    /// empty log). Blocking file I/O.
    pub fn open_replica(
        log_dir: &Path,
        loaded: &LoadedMetadata,
        options: MetadataLogOptions,
    ) -> Result<MetadataLog, MetadataLogError> {
        Ok(Self::open_files(log_dir, loaded, options)?.0)
    }

    /// This node's id (the options').
    pub fn node_id(&self) -> i32 {
        self.options.node_id
    }

    /// Every batch of every segment, in offset order (reads the segments' batch headers).
    pub fn batch_locations(&self) -> Result<Vec<BatchLocation>, MetadataLogError> {
        let mut out = Vec::new();
        for (base, path, _) in self.segments()? {
            let data = fs::read(&path).map_err(io_error(&path))?;
            let data = Bytes::from(data);
            let mut batches = RecordBatches::new(data.clone());
            loop {
                let position = batches.position();
                match batches.next() {
                    None => break,
                    Some(Ok(Batch::V2(batch))) => out.push(BatchLocation {
                        base_offset: batch.base_offset(),
                        last_offset: batch.last_offset(),
                        epoch: batch.header().partition_leader_epoch,
                        segment: base,
                        position: position as u64,
                        size: batch.size() as u64,
                    }),
                    Some(Ok(Batch::Legacy(_))) | Some(Err(_)) => {
                        return Err(MetadataLogError::Corrupt {
                            path: path.clone(),
                            reason: format!("unreadable batch at byte {position}"),
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    /// Reads the batch at `location` (its bytes as on disk).
    pub fn read_batch(&self, location: &BatchLocation) -> Result<Bytes, MetadataLogError> {
        let path = self.dir.join(super::segment_file_name(location.segment));
        let mut file = fs::File::open(&path).map_err(io_error(&path))?;
        file.seek(SeekFrom::Start(location.position))
            .map_err(io_error(&path))?;
        let size = usize::try_from(location.size).map_err(|_| MetadataLogError::Corrupt {
            path: path.clone(),
            reason: format!("a batch of {} bytes", location.size),
        })?;
        let mut buf = vec![0u8; size];
        file.read_exact(&mut buf).map_err(io_error(&path))?;
        Ok(Bytes::from(buf))
    }

    /// Appends an encoded batch of `count` records whose base offset must be
    /// [`MetadataLog::next_offset`], written in `epoch` (not below the current epoch), with
    /// largest timestamp `max_timestamp`, and fsyncs it. A new epoch is recorded in
    /// `leader-epoch-checkpoint` first, as Kafka's `UnifiedLog.append` assigns it.
    pub fn append_batch_at(
        &mut self,
        batch: &[u8],
        base_offset: i64,
        count: i64,
        epoch: i32,
        max_timestamp: i64,
    ) -> Result<BatchLocation, MetadataLogError> {
        if base_offset != self.next_offset || count < 1 {
            return Err(MetadataLogError::Corrupt {
                path: self.active.path.clone(),
                reason: format!(
                    "a batch of {count} records at offset {base_offset} does not continue the \
                     log at offset {}",
                    self.next_offset
                ),
            });
        }
        if epoch < self.epoch {
            return Err(MetadataLogError::Corrupt {
                path: self.active.path.clone(),
                reason: format!(
                    "a batch of epoch {epoch} after one of epoch {}: epochs only grow",
                    self.epoch
                ),
            });
        }
        if self.epochs.last().is_none_or(|(e, _)| *e < epoch) {
            let mut cache = self.epoch_cache();
            cache.assign(epoch, base_offset);
            self.set_epoch_cache(&cache)?;
        }
        self.epoch = epoch;
        let appended = self.write_batch(batch, count, max_timestamp)?;
        Ok(BatchLocation {
            base_offset: appended.base_offset,
            last_offset: appended.last_offset,
            epoch: appended.epoch,
            segment: appended.segment,
            position: appended.position,
            size: appended.size as u64,
        })
    }

    /// Removes every record at `offset` or above (Kafka's `UnifiedLog.truncateTo`): later
    /// segments are deleted, the segment holding `offset` is cut there and becomes the
    /// active one (a batch that straddles `offset` is rewritten with its records below it),
    /// and the leader epoch cache is truncated from the end. Returns the rewritten batch,
    /// if any. `offset` must not be below the log start offset.
    pub fn truncate_to(&mut self, offset: i64) -> Result<Option<BatchLocation>, MetadataLogError> {
        if offset >= self.next_offset {
            return Ok(None);
        }
        let segments = self.segments()?;
        let Some(keep) = segments.iter().rposition(|(base, _, _)| *base <= offset) else {
            return Err(MetadataLogError::Corrupt {
                path: self.dir.clone(),
                reason: format!("cannot truncate to offset {offset}: below the log start"),
            });
        };
        for (base, path, _) in &segments[keep + 1..] {
            fs::remove_file(path).map_err(io_error(path))?;
            for suffix in [OFFSET_INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                let _ = fs::remove_file(index_path(&self.dir, *base, suffix));
            }
        }
        let (base, path, _) = segments[keep].clone();
        let data = Bytes::from(fs::read(&path).map_err(io_error(&path))?);
        // The batch holding `offset`, if it starts below it: rewritten after the cut.
        let mut cut = data.len() as u64;
        let mut straddling = None;
        let mut batches = RecordBatches::new(data.clone());
        loop {
            let position = batches.position() as u64;
            let Some(Ok(Batch::V2(batch))) = batches.next() else {
                break;
            };
            if batch.last_offset() >= offset {
                cut = position;
                if batch.base_offset() < offset {
                    let mut records = Vec::new();
                    for record in batch.records() {
                        let record = record.map_err(|e| MetadataLogError::Corrupt {
                            path: path.clone(),
                            reason: format!("unreadable record at byte {position}: {e}"),
                        })?;
                        if record.offset < offset {
                            records.push(NewRecord::new(
                                record.timestamp,
                                record.key.clone(),
                                record.value.clone(),
                            ));
                        }
                    }
                    let header = batch.header();
                    let rebuilt = RecordBatchBuilder::new()
                        .control(batch.is_control())
                        .base_offset(batch.base_offset())
                        .partition_leader_epoch(header.partition_leader_epoch)
                        .build(&records)
                        .map_err(|e| MetadataLogError::Encode(e.to_string()))?;
                    let max_timestamp = records.iter().map(|r| r.timestamp).max().unwrap_or(-1);
                    straddling = Some((
                        rebuilt,
                        batch.base_offset(),
                        records.len() as i64,
                        header.partition_leader_epoch,
                        max_timestamp,
                    ));
                }
                break;
            }
        }
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io_error(&path))?;
        file.set_len(cut).map_err(io_error(&path))?;
        file.sync_all().map_err(io_error(&path))?;
        drop(file);
        sync_dir(&self.dir);
        let kept = Bytes::from(fs::read(&path).map_err(io_error(&path))?);
        let infos = scan_segment(&path, kept)?;
        let next = infos.last().map_or(base, |b| b.last_offset + 1);
        self.active = ActiveSegment::reopen(
            &self.dir,
            base,
            path.clone(),
            &infos,
            self.options.index_interval_bytes,
        )?;
        self.next_offset = next;
        let mut cache = self.epoch_cache();
        cache.truncate_from_end(next);
        self.set_epoch_cache(&cache)?;
        self.epoch = self.epochs.last().map_or(0, |(e, _)| *e);
        tracing::info!(offset, next_offset = next, "truncated the metadata log");
        let Some((batch, base_offset, count, epoch, max_timestamp)) = straddling else {
            return Ok(None);
        };
        if count == 0 {
            return Ok(None);
        }
        self.append_batch_at(&batch, base_offset, count, epoch, max_timestamp)
            .map(Some)
    }

    /// Deletes every segment and starts an empty one at `offset` (Kafka's
    /// `truncateFullyAndStartAt`, after a follower installed a snapshot ending past its
    /// log). The leader epoch cache is emptied.
    pub fn reset_to(&mut self, offset: i64) -> Result<(), MetadataLogError> {
        let segments = self.segments()?;
        for (base, path, _) in &segments {
            fs::remove_file(path).map_err(io_error(path))?;
            for suffix in [OFFSET_INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                let _ = fs::remove_file(index_path(&self.dir, *base, suffix));
            }
        }
        sync_dir(&self.dir);
        self.active = ActiveSegment::create(&self.dir, offset)?;
        self.next_offset = offset;
        self.set_epoch_cache(&LeaderEpochCache::from_entries(Vec::new()))?;
        tracing::info!(offset, "restarted the metadata log past a snapshot");
        Ok(())
    }

    fn epoch_cache(&self) -> LeaderEpochCache {
        LeaderEpochCache::from_entries(self.epochs.iter().map(|&(epoch, start_offset)| {
            EpochEntry {
                epoch,
                start_offset,
            }
        }))
    }

    fn set_epoch_cache(&mut self, cache: &LeaderEpochCache) -> Result<(), MetadataLogError> {
        self.epochs = cache
            .entries()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect();
        write_leader_epoch_checkpoint(&self.dir, &self.epochs)
    }
}
