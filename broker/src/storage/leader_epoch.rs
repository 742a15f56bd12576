//! The leader epoch cache of one partition (Kafka's `LeaderEpochFileCache`), persisted in
//! the partition directory's `leader-epoch-checkpoint`:
//!
//! ```text
//! 0              version
//! 2              number of entries
//! 0 0            <leader epoch> <start offset>, one line each, epochs and offsets rising
//! 3 1200
//! ```
//!
//! Each entry says where the partition's log first has a batch of that leader epoch. It is
//! what OffsetForLeaderEpoch answers from (KIP-101, KIP-320): the end offset of an epoch is
//! the start offset of the next epoch in the cache, or the log end offset for the latest.
//!
//! How the broker keeps it, as Kafka's `UnifiedLog` does:
//!
//! * an append whose batch carries an epoch newer than the latest adds an entry at the
//!   batch's base offset (and the file is rewritten before the append returns);
//! * raising the log start offset (DeleteRecords, retention) truncates it from the start:
//!   entries wholly below the new start go, the last of them moves up to it;
//! * when the log is opened, the entries starting in segments opened from their index
//!   files come from the file, as Kafka's `LogLoader` trusts it, but only once the batch
//!   headers read anyway (each such segment's first batch and those after its last index
//!   entry) agree with it: a file that disagrees (stale after a failed write, damaged) is
//!   not trusted and every segment is scanned. The entries of scanned segments are
//!   rebuilt from their batch headers (so a missing file is repaired, and a torn tail cut
//!   off takes its epochs with it). The cache is then truncated to the log start and end
//!   offsets as Kafka's `LogLoader` truncates the file's;
//! * a leader epoch in the metadata newer than the cache's latest is recorded at the log
//!   end offset when a lookup first sees it, as Kafka's `Partition.makeLeader` records it
//!   when the broker becomes leader (before anything is written in it).

use std::io;
use std::path::Path;

/// The file name, in each partition directory.
pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

/// Kafka's `UNDEFINED_EPOCH`: no epoch (a batch without one, or an unknown answer).
pub const UNDEFINED_EPOCH: i32 = -1;

/// Kafka's `UNDEFINED_EPOCH_OFFSET`: no end offset.
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

/// One entry: the epoch and the first offset written in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochEntry {
    /// The leader epoch.
    pub epoch: i32,
    /// The first offset of the log in that epoch.
    pub start_offset: i64,
}

/// The entries of one partition, epochs and start offsets strictly rising.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// A cache of `entries`, assigned one by one (so non-monotonic input is repaired as
    /// Kafka's `assign` repairs it).
    pub fn from_entries(entries: impl IntoIterator<Item = EpochEntry>) -> LeaderEpochCache {
        let mut cache = LeaderEpochCache::default();
        for entry in entries {
            cache.assign(entry.epoch, entry.start_offset);
        }
        cache
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// The latest entry, if any.
    pub fn latest(&self) -> Option<EpochEntry> {
        self.entries.last().copied()
    }

    /// The latest epoch, if any.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.latest().map(|e| e.epoch)
    }

    /// The epoch of the entry covering `offset` (the last one starting at or below it), if
    /// any.
    pub fn epoch_at(&self, offset: i64) -> Option<i32> {
        self.entries
            .iter()
            .take_while(|e| e.start_offset <= offset)
            .last()
            .map(|e| e.epoch)
    }

    /// Kafka's `assign`: records that `epoch` starts at `start_offset`. Negative epochs or
    /// offsets (batches without an epoch) are ignored; an entry for the latest epoch at or
    /// after its start changes nothing. Otherwise entries that conflict with the new one
    /// (an epoch not older, or a start not earlier) are removed first. True if it changed.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || start_offset < 0 {
            return false;
        }
        if self
            .latest()
            .is_some_and(|l| l.epoch == epoch && l.start_offset <= start_offset)
        {
            return false;
        }
        let mut removed = Vec::new();
        while self
            .entries
            .last()
            .is_some_and(|l| l.epoch >= epoch || l.start_offset >= start_offset)
        {
            removed.push(self.entries.pop().expect("just seen"));
        }
        if removed.len() > 1
            || removed
                .first()
                .is_some_and(|r| r.start_offset != start_offset)
        {
            tracing::warn!(
                epoch,
                start_offset,
                ?removed,
                "a new leader epoch entry truncated conflicting entries"
            );
        }
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        true
    }

    /// Kafka's `truncateFromStart`: entries starting at or below `start_offset` are removed
    /// but for the last of them, which then starts at `start_offset`. True if it changed.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let below = self
            .entries
            .iter()
            .take_while(|e| e.start_offset <= start_offset)
            .count();
        if below == 0 {
            return false;
        }
        let epoch = self.entries[below - 1].epoch;
        let unchanged = below == 1 && self.entries[0].start_offset == start_offset;
        self.entries.drain(..below - 1);
        self.entries[0] = EpochEntry {
            epoch,
            start_offset,
        };
        !unchanged
    }

    /// Kafka's `truncateFromEnd`: removes the entries starting at or after `end_offset`.
    /// True if it changed.
    pub fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < end_offset);
        self.entries.len() != before
    }

    /// Kafka's `endOffsetFor`: the largest epoch not above `requested` and the offset where
    /// it ends, given the log end offset `log_end_offset`:
    ///
    /// * `UNDEFINED_EPOCH` asked, or an epoch above every known one: `(-1, -1)`;
    /// * the latest epoch: it and the log end offset (it is still being written);
    /// * an epoch older than every known one: the requested epoch with the first entry's
    ///   start (what came before is deleted);
    /// * otherwise the newest epoch at or below the requested one, ending where the next
    ///   known epoch starts.
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> (i32, i64) {
        if requested == UNDEFINED_EPOCH {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        }
        if self.latest_epoch() == Some(requested) {
            return (requested, log_end_offset);
        }
        let Some(higher) = self.entries.iter().find(|e| e.epoch > requested) else {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        };
        match self.entries.iter().rev().find(|e| e.epoch <= requested) {
            Some(floor) => (floor.epoch, higher.start_offset),
            None => (requested, higher.start_offset),
        }
    }
}

/// Reads `leader-epoch-checkpoint` from `partition_dir`: `Ok(None)` if it does not exist,
/// an `InvalidData` error if it is not in Kafka's format (version 0, a count, that many
/// `epoch offset` lines).
pub fn read_checkpoint(partition_dir: &Path) -> io::Result<Option<Vec<EpochEntry>>> {
    super::checkpoint::read_entries(&partition_dir.join(LEADER_EPOCH_CHECKPOINT), |line| {
        let mut fields = line.split_whitespace();
        let (Some(epoch), Some(offset), None) = (fields.next(), fields.next(), fields.next())
        else {
            return Err("malformed leader-epoch-checkpoint line");
        };
        Ok(EpochEntry {
            epoch: epoch.parse().map_err(|_| "malformed epoch")?,
            start_offset: offset.parse().map_err(|_| "malformed offset")?,
        })
    })
}

/// Writes `leader-epoch-checkpoint` in `partition_dir` as Kafka's `CheckpointFile` does:
/// to `<name>.tmp`, synced, renamed over the old file, the directory synced. A directory
/// that no longer exists (the partition was deleted) is not recreated: `NotFound`.
pub fn write_checkpoint(partition_dir: &Path, entries: &[EpochEntry]) -> io::Result<()> {
    let mut text = format!("0\n{}\n", entries.len());
    for entry in entries {
        text.push_str(&format!("{} {}\n", entry.epoch, entry.start_offset));
    }
    super::checkpoint::write_atomically(
        &partition_dir.join(LEADER_EPOCH_CHECKPOINT),
        text.as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
        LeaderEpochCache::from_entries(entries.iter().map(|&(epoch, start_offset)| EpochEntry {
            epoch,
            start_offset,
        }))
    }

    fn pairs(cache: &LeaderEpochCache) -> Vec<(i32, i64)> {
        cache
            .entries()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect()
    }

    #[test]
    fn assign_keeps_the_first_offset_of_each_epoch() {
        let mut c = LeaderEpochCache::default();
        assert!(c.assign(0, 0));
        assert!(!c.assign(0, 10));
        assert!(c.assign(2, 20));
        assert!(!c.assign(-1, 30));
        assert!(!c.assign(2, 25));
        assert_eq!(pairs(&c), [(0, 0), (2, 20)]);
    }

    #[test]
    fn assign_removes_conflicting_entries() {
        // An older epoch at a later offset replaces the newer ones, as Kafka's assign does.
        let mut c = cache(&[(0, 0), (2, 20), (4, 40)]);
        assert!(c.assign(3, 30));
        assert_eq!(pairs(&c), [(0, 0), (2, 20), (3, 30)]);
        // A newer epoch at an earlier start removes the entries starting at or after it.
        assert!(c.assign(5, 20));
        assert_eq!(pairs(&c), [(0, 0), (5, 20)]);
        // The same epoch at an earlier offset moves its start back.
        assert!(c.assign(5, 10));
        assert_eq!(pairs(&c), [(0, 0), (5, 10)]);
    }

    #[test]
    fn end_offsets_follow_kafka() {
        let c = cache(&[(1, 10), (3, 30), (6, 60)]);
        assert_eq!(c.end_offset_for(UNDEFINED_EPOCH, 100), (-1, -1));
        assert_eq!(c.end_offset_for(6, 100), (6, 100));
        assert_eq!(c.end_offset_for(3, 100), (3, 60));
        // An epoch the partition never had: the newest one below it, ending at the next.
        assert_eq!(c.end_offset_for(4, 100), (3, 60));
        assert_eq!(c.end_offset_for(2, 100), (1, 30));
        // Older than every entry: the requested epoch, ending where the first starts.
        assert_eq!(c.end_offset_for(0, 100), (0, 10));
        // Newer than every entry.
        assert_eq!(c.end_offset_for(7, 100), (-1, -1));
        assert_eq!(LeaderEpochCache::default().end_offset_for(0, 5), (-1, -1));
    }

    #[test]
    fn truncation_from_the_start_and_the_end() {
        let mut c = cache(&[(0, 0), (1, 100), (2, 200)]);
        assert!(!c.truncate_from_start(-5));
        assert!(c.truncate_from_start(150));
        assert_eq!(pairs(&c), [(1, 150), (2, 200)]);
        assert!(!c.truncate_from_start(150));
        assert!(c.truncate_from_start(200));
        assert_eq!(pairs(&c), [(2, 200)]);
        assert!(c.truncate_from_start(250));
        assert_eq!(pairs(&c), [(2, 250)]);

        let mut c = cache(&[(0, 0), (1, 100), (2, 200)]);
        assert!(!c.truncate_from_end(201));
        assert!(c.truncate_from_end(200));
        assert_eq!(pairs(&c), [(0, 0), (1, 100)]);
        assert!(c.truncate_from_end(0));
        assert!(c.entries().is_empty());
    }

    #[test]
    fn the_epoch_covering_an_offset() {
        let c = cache(&[(1, 10), (3, 30)]);
        assert_eq!(c.epoch_at(9), None);
        assert_eq!(c.epoch_at(10), Some(1));
        assert_eq!(c.epoch_at(29), Some(1));
        assert_eq!(c.epoch_at(30), Some(3));
        assert_eq!(c.epoch_at(i64::MAX), Some(3));
        assert_eq!(LeaderEpochCache::default().epoch_at(0), None);
    }

    #[test]
    fn the_file_round_trips_and_bad_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_checkpoint(dir.path()).unwrap().is_none());
        let entries = [
            EpochEntry {
                epoch: 0,
                start_offset: 0,
            },
            EpochEntry {
                epoch: 4,
                start_offset: 1234,
            },
        ];
        write_checkpoint(dir.path(), &entries).unwrap();
        let text = fs::read_to_string(dir.path().join(LEADER_EPOCH_CHECKPOINT)).unwrap();
        assert_eq!(text, "0\n2\n0 0\n4 1234\n");
        assert_eq!(read_checkpoint(dir.path()).unwrap().unwrap(), entries);
        for bad in [
            "1\n0\n",
            "0\n2\n0 0\n",
            "0\n1\n0\n",
            "0\n1\nx 0\n",
            "0\n1\n0 0\n1 1\n",
        ] {
            fs::write(dir.path().join(LEADER_EPOCH_CHECKPOINT), bad).unwrap();
            let error = read_checkpoint(dir.path()).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{bad:?}");
        }
        let gone = dir.path().join("gone");
        assert!(write_checkpoint(&gone, &entries).is_err());
        assert!(!gone.exists());
    }
}
