//! The transaction index (`<base offset>.txnindex`): Kafka's `TransactionIndex` and
//! `AbortedTxn`.
//!
//! One file per segment, holding an entry for every aborted transaction whose abort marker
//! was written in that segment (the transaction itself may start in an earlier one). Each
//! entry is 34 bytes, big-endian, with no header:
//!
//! ```text
//! version: i16 (0) | producer_id: i64 | first_offset: i64 | last_offset: i64 | last_stable_offset: i64
//! ```
//!
//! `last_offset` is the marker's offset; `last_stable_offset` is the partition's LSO just
//! after the abort (the first offset of the oldest transaction still ongoing, else the
//! marker's offset + 1). Entries are in increasing `last_offset` order. As in Kafka, the
//! file is only created by the first abort in its segment: a missing file is an empty
//! index.
//!
//! The partition keeps each segment's entries in memory as well (they are few: one per
//! aborted transaction), so READ_COMMITTED fetches never read the file; it is read when the
//! log is opened after a clean stop, rebuilt from the batches after an unclean one
//! (Kafka's `LogSegment.recover`), appended to by abort markers and deleted with its
//! segment.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::checkpoint;

/// Suffix of transaction index files.
pub(crate) const TXN_INDEX_SUFFIX: &str = "txnindex";

/// Size of one entry (Kafka's `AbortedTxn.TOTAL_SIZE`).
pub const ABORTED_TXN_SIZE: usize = 34;

/// The entry version written (Kafka's `AbortedTxn.CURRENT_VERSION`).
pub const ABORTED_TXN_VERSION: i16 = 0;

/// One aborted transaction (Kafka's `AbortedTxn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AbortedTxn {
    /// The producer that aborted it.
    pub producer_id: i64,
    /// Offset of its first batch in this partition.
    pub first_offset: i64,
    /// Offset of its abort marker.
    pub last_offset: i64,
    /// The last stable offset right after the abort (see the module documentation).
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    /// The 34 bytes of the entry, version 0.
    pub fn encode(&self) -> [u8; ABORTED_TXN_SIZE] {
        let mut out = [0u8; ABORTED_TXN_SIZE];
        out[0..2].copy_from_slice(&ABORTED_TXN_VERSION.to_be_bytes());
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        out
    }

    /// Decodes one entry; an entry of a newer version than 0 is an error, as Kafka's
    /// reader refuses it.
    pub fn decode(bytes: &[u8; ABORTED_TXN_SIZE]) -> Result<AbortedTxn, TxnIndexError> {
        let version = i16::from_be_bytes([bytes[0], bytes[1]]);
        if version > ABORTED_TXN_VERSION {
            return Err(TxnIndexError::UnknownVersion(version));
        }
        let at = |from: usize| i64::from_be_bytes(bytes[from..from + 8].try_into().expect("8"));
        Ok(AbortedTxn {
            producer_id: at(2),
            first_offset: at(10),
            last_offset: at(18),
            last_stable_offset: at(26),
        })
    }
}

/// Why a transaction index file is not usable (Kafka's `CorruptIndexException` and the
/// reader's checks); the index is then rebuilt from the segment's batches.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TxnIndexError {
    /// Reading or writing the file failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The file's size is not a whole number of 34-byte entries (a torn append).
    #[error("size {0} is not a multiple of {ABORTED_TXN_SIZE} bytes")]
    PartialEntry(u64),
    /// An entry of a version this broker does not know.
    #[error("unexpected aborted transaction version {0}, current version is {ABORTED_TXN_VERSION}")]
    UnknownVersion(i16),
    /// Kafka's `sanityCheck`: an entry ends before the segment starts.
    #[error("last offset of aborted transaction {txn:?} is less than start offset {start_offset}")]
    BeforeSegment {
        /// The entry.
        txn: AbortedTxn,
        /// The segment's base offset.
        start_offset: i64,
    },
    /// Entries whose last offsets do not increase (Kafka refuses such appends).
    #[error("last offset {last_offset} of an aborted transaction does not follow {previous}")]
    NotIncreasing {
        /// The entry's last offset.
        last_offset: i64,
        /// The previous entry's last offset.
        previous: i64,
    },
    /// An entry whose first offset is after its last.
    #[error("aborted transaction {0:?} has inconsistent offsets")]
    Inconsistent(AbortedTxn),
}

/// The `.txnindex` file of the segment starting at `base_offset` in partition directory
/// `dir`.
pub fn txn_index_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{base_offset:020}.{TXN_INDEX_SUFFIX}"))
}

/// Decodes and checks the entries of a segment's index (`bytes`: the whole file).
pub fn decode_entries(bytes: &[u8], start_offset: i64) -> Result<Vec<AbortedTxn>, TxnIndexError> {
    if bytes.len() % ABORTED_TXN_SIZE != 0 {
        return Err(TxnIndexError::PartialEntry(bytes.len() as u64));
    }
    let mut entries = Vec::with_capacity(bytes.len() / ABORTED_TXN_SIZE);
    for chunk in bytes.chunks_exact(ABORTED_TXN_SIZE) {
        let txn = AbortedTxn::decode(chunk.try_into().expect("34 bytes"))?;
        check_next(entries.last(), &txn, start_offset)?;
        entries.push(txn);
    }
    Ok(entries)
}

/// The checks an entry passes after `previous` in the index of a segment starting at
/// `start_offset`: Kafka's `sanityCheck` and `append` rules, and consistent offsets.
pub fn check_next(
    previous: Option<&AbortedTxn>,
    txn: &AbortedTxn,
    start_offset: i64,
) -> Result<(), TxnIndexError> {
    if txn.last_offset < start_offset {
        return Err(TxnIndexError::BeforeSegment {
            txn: *txn,
            start_offset,
        });
    }
    if txn.first_offset > txn.last_offset {
        return Err(TxnIndexError::Inconsistent(*txn));
    }
    if let Some(previous) = previous
        && previous.last_offset >= txn.last_offset
    {
        return Err(TxnIndexError::NotIncreasing {
            last_offset: txn.last_offset,
            previous: previous.last_offset,
        });
    }
    Ok(())
}

/// Reads and checks the index of the segment starting at `start_offset`; a missing file
/// is an empty index.
pub fn read_txn_index(dir: &Path, start_offset: i64) -> Result<Vec<AbortedTxn>, TxnIndexError> {
    match fs::read(txn_index_path(dir, start_offset)) {
        Ok(bytes) => decode_entries(&bytes, start_offset),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(error) => Err(error.into()),
    }
}

/// Replaces the index of the segment starting at `start_offset` with `entries` (synced);
/// without entries the file is removed, as Kafka only creates it for an abort.
pub fn write_txn_index(dir: &Path, start_offset: i64, entries: &[AbortedTxn]) -> io::Result<()> {
    let path = txn_index_path(dir, start_offset);
    if entries.is_empty() {
        return match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(error),
        };
    }
    let mut bytes = Vec::with_capacity(entries.len() * ABORTED_TXN_SIZE);
    for txn in entries {
        bytes.extend_from_slice(&txn.encode());
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)?;
    file.write_all(&bytes)?;
    file.sync_data()
}

/// Appends one entry at the end of the index of the segment starting at `start_offset`
/// (creating the file), after `existing` (the entries already in it), and syncs it: an
/// abort is acknowledged only once its entry is durable, as the LSO it moves is.
pub fn append_txn_index(
    dir: &Path,
    start_offset: i64,
    existing: &[AbortedTxn],
    txn: &AbortedTxn,
) -> Result<(), TxnIndexError> {
    check_next(existing.last(), txn, start_offset)?;
    let path = txn_index_path(dir, start_offset);
    let created = !path.exists();
    let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
    // A torn earlier append would misalign every later entry: cut it off first.
    let expected = (existing.len() * ABORTED_TXN_SIZE) as u64;
    if file.metadata()?.len() != expected {
        file.set_len(expected)?;
    }
    file.write_all(&txn.encode())?;
    file.sync_data()?;
    if created {
        checkpoint::sync_dir(dir)?;
    }
    Ok(())
}

/// Kafka's `TransactionIndex.truncateTo`: the entries whose marker is below `offset`.
pub fn truncate_entries(entries: &mut Vec<AbortedTxn>, offset: i64) {
    let keep = entries.partition_point(|txn| txn.last_offset < offset);
    entries.truncate(keep);
}

/// Kafka's `TransactionIndex.collectAbortedTxns` on one segment's entries: appends to
/// `found` those overlapping `[fetch_offset, upper_bound_offset)` and returns whether the
/// search is complete (an entry's last stable offset reached the upper bound, so no later
/// abort can overlap the range).
pub fn collect_aborted(
    entries: &[AbortedTxn],
    fetch_offset: i64,
    upper_bound_offset: i64,
    found: &mut Vec<AbortedTxn>,
) -> bool {
    for txn in entries {
        if txn.last_offset >= fetch_offset && txn.first_offset < upper_bound_offset {
            found.push(*txn);
        }
        if txn.last_stable_offset >= upper_bound_offset {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: lso,
        }
    }

    #[test]
    fn entries_are_kafkas_34_bytes() {
        let entry = txn(0x0102_0304_0506_0708, 5, 0x1_0000_0000, 11);
        let golden: [u8; 34] = [
            0, 0, // version 0
            1, 2, 3, 4, 5, 6, 7, 8, // producer id
            0, 0, 0, 0, 0, 0, 0, 5, // first offset
            0, 0, 0, 1, 0, 0, 0, 0, // last offset
            0, 0, 0, 0, 0, 0, 0, 11, // last stable offset
        ];
        assert_eq!(entry.encode(), golden);
        assert_eq!(AbortedTxn::decode(&golden).unwrap(), entry);
        let mut newer = golden;
        newer[1] = 1;
        assert!(matches!(
            AbortedTxn::decode(&newer),
            Err(TxnIndexError::UnknownVersion(1))
        ));
    }

    #[test]
    fn files_round_trip_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let entries = [txn(1, 100, 105, 106), txn(2, 101, 110, 111)];
        assert!(read_txn_index(dir.path(), 100).unwrap().is_empty());
        append_txn_index(dir.path(), 100, &[], &entries[0]).unwrap();
        append_txn_index(dir.path(), 100, &entries[..1], &entries[1]).unwrap();
        let path = txn_index_path(dir.path(), 100);
        assert_eq!(path.file_name().unwrap(), "00000000000000000100.txnindex");
        assert_eq!(fs::metadata(&path).unwrap().len(), 68);
        assert_eq!(read_txn_index(dir.path(), 100).unwrap(), entries);
        // Not increasing: refused, the file unchanged.
        assert!(matches!(
            append_txn_index(dir.path(), 100, &entries, &txn(3, 100, 110, 111)),
            Err(TxnIndexError::NotIncreasing { .. })
        ));
        assert_eq!(fs::metadata(&path).unwrap().len(), 68);
        // A torn tail is a partial entry; an entry before the segment is corrupt.
        let mut bytes = fs::read(&path).unwrap();
        bytes.push(0);
        assert!(matches!(
            decode_entries(&bytes, 100),
            Err(TxnIndexError::PartialEntry(69))
        ));
        assert!(matches!(
            decode_entries(&bytes[..68], 106),
            Err(TxnIndexError::BeforeSegment { .. })
        ));
        // An append after a torn entry cuts it off first.
        fs::write(&path, &bytes).unwrap();
        append_txn_index(dir.path(), 100, &entries, &txn(3, 111, 120, 121)).unwrap();
        assert_eq!(read_txn_index(dir.path(), 100).unwrap().len(), 3);
        write_txn_index(dir.path(), 100, &entries[..1]).unwrap();
        assert_eq!(read_txn_index(dir.path(), 100).unwrap(), entries[..1]);
        write_txn_index(dir.path(), 100, &[]).unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn truncation_and_collection() {
        let mut entries = vec![txn(1, 0, 4, 5), txn(2, 3, 8, 9), txn(3, 10, 12, 13)];
        let mut found = Vec::new();
        // [5, 9): the second overlaps (its LSO 9 reaches the bound: complete).
        assert!(collect_aborted(&entries, 5, 9, &mut found));
        assert_eq!(found, [entries[1]]);
        found.clear();
        // [0, 100): all, and the search goes on into later segments.
        assert!(!collect_aborted(&entries, 0, 100, &mut found));
        assert_eq!(found.len(), 3);
        truncate_entries(&mut entries, 8);
        assert_eq!(entries.len(), 1);
        truncate_entries(&mut entries, 0);
        assert!(entries.is_empty());
    }
}
