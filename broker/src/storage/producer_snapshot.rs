//! Producer state snapshot files (`<offset>.snapshot`) in Kafka's format, as Kafka's
//! `ProducerStateManager.writeSnapshot`/`readSnapshot` and `SnapshotFile` write and read them.
//!
//! ```text
//! <20-digit offset>.snapshot          the producer state of the log up to (excluding) offset
//!   0   Version                int16  1
//!   2   Crc                    uint32 CRC32C of every byte from offset 6 to the end
//!   6   ProducerEntries count  int32  (the generated ProducerSnapshot message, version 1,
//!                                       not flexible: a plain int32 array length)
//!   10  ProducerEntries        46 bytes each:
//!         ProducerId int64, Epoch int16, LastSequence int32, LastOffset int64,
//!         OffsetDelta int32, Timestamp int64, CoordinatorEpoch int32,
//!         CurrentTxnFirstOffset int64
//! ```
//!
//! The layout is Kafka's `storage/src/main/resources/message/ProducerSnapshot.json`. Each
//! entry holds only the producer's **last** batch (LastSequence, LastOffset and OffsetDelta,
//! its last offset minus its first), never the five the live state retains: after a restart
//! from a snapshot only each producer's last batch is recognised as a duplicate, as in
//! Kafka. An entry without a batch has LastOffset -1 (LastSequence -1, OffsetDelta 0);
//! CurrentTxnFirstOffset is -1 without an ongoing transaction.
//!
//! Kafka writes the file in place (`FileChannel` with `CREATE, WRITE`) and relies on the CRC
//! to reject a torn one at load. This module writes `<name>.tmp`, syncs it, renames it over
//! the final name and syncs the directory, so a snapshot is either whole or absent; the
//! bytes are the same. The snapshot an open takes at the log end is written without the
//! syncs and synced later ([`write_snapshot_with`], [`sync_snapshot`]). Leftover `.snapshot.tmp` files are removed when the log is opened.
//!
//! A snapshot that fails to decode (unknown version, short, trailing bytes, CRC mismatch) is
//! [`SnapshotError::Corrupt`]: the log deletes it and tries the next older one, then falls
//! back to the log itself (Kafka's `loadFromSnapshot` on `CorruptSnapshotException`).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::checkpoint;
use super::validate::crc32c;

/// Suffix of producer state snapshot files (Kafka's `PRODUCER_SNAPSHOT_FILE_SUFFIX`).
pub const SNAPSHOT_SUFFIX: &str = ".snapshot";
/// Suffix of a snapshot being written (renamed to [`SNAPSHOT_SUFFIX`] once synced).
const TEMP_SUFFIX: &str = ".snapshot.tmp";
/// The only snapshot version (`ProducerSnapshot` `validVersions: 1`).
pub const SNAPSHOT_VERSION: i16 = 1;
/// Where the CRC sits (after the version).
const CRC_AT: usize = 2;
/// Where the CRC'd bytes start (Kafka's `PRODUCER_ENTRIES_OFFSET`).
const ENTRIES_AT: usize = 6;
/// Bytes of one encoded entry.
const ENTRY_SIZE: usize = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8;
/// Largest snapshot file read (about 23 million producers): a larger file is treated as
/// corrupt rather than read into memory.
const MAX_SNAPSHOT_BYTES: u64 = 1 << 30;

/// One producer's entry in a snapshot file, field for field (Kafka's generated
/// `ProducerSnapshot.ProducerEntry`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotEntry {
    /// The producer id.
    pub producer_id: i64,
    /// The producer's current epoch.
    pub epoch: i16,
    /// Sequence of the last record of its last batch (-1 without a batch).
    pub last_sequence: i32,
    /// Offset of the last record of its last batch (-1 without a batch).
    pub last_offset: i64,
    /// The last batch's last offset minus its first offset (0 without a batch).
    pub offset_delta: i32,
    /// The max timestamp of its last batch (Kafka's `lastTimestamp`).
    pub timestamp: i64,
    /// The epoch of the last transaction coordinator that wrote a marker (-1 if none).
    pub coordinator_epoch: i32,
    /// First offset of the ongoing transaction (-1 if none).
    pub current_txn_first_offset: i64,
}

/// A snapshot file that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The bytes are not a valid snapshot (Kafka's `CorruptSnapshotException`).
    #[error("corrupt producer snapshot: {0}")]
    Corrupt(String),
}

/// The file name of the snapshot at `offset`: 20 zero-padded digits and `.snapshot`, as
/// Kafka's `LogFileUtils.producerSnapshotFile` names it.
pub fn snapshot_file_name(offset: i64) -> String {
    format!("{offset:020}{SNAPSHOT_SUFFIX}")
}

/// The path of the snapshot at `offset` in partition directory `dir`.
pub(crate) fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(snapshot_file_name(offset))
}

/// The offset a snapshot file name (exactly 20 digits and `.snapshot`) encodes.
pub(crate) fn parse_snapshot_file_name(name: &str) -> Option<i64> {
    let digits = name.strip_suffix(SNAPSHOT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Encodes a snapshot of `entries` (Kafka's `writeSnapshot` bytes).
pub fn encode(entries: &[SnapshotEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ENTRIES_AT + 4 + entries.len() * ENTRY_SIZE);
    out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    let count = i32::try_from(entries.len()).unwrap_or(i32::MAX);
    out.extend_from_slice(&count.to_be_bytes());
    for e in entries.iter().take(count as usize) {
        out.extend_from_slice(&e.producer_id.to_be_bytes());
        out.extend_from_slice(&e.epoch.to_be_bytes());
        out.extend_from_slice(&e.last_sequence.to_be_bytes());
        out.extend_from_slice(&e.last_offset.to_be_bytes());
        out.extend_from_slice(&e.offset_delta.to_be_bytes());
        out.extend_from_slice(&e.timestamp.to_be_bytes());
        out.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
        out.extend_from_slice(&e.current_txn_first_offset.to_be_bytes());
    }
    let crc = crc32c(&out[ENTRIES_AT..]);
    out[CRC_AT..ENTRIES_AT].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Decodes a snapshot (Kafka's `readSnapshot`): version 1, the CRC over everything after
/// it, then exactly the entries the count announces. The count is checked against the bytes
/// present before anything is allocated.
pub fn decode(bytes: &[u8]) -> Result<Vec<SnapshotEntry>, SnapshotError> {
    let corrupt = |what: String| SnapshotError::Corrupt(what);
    if bytes.len() < ENTRIES_AT + 4 {
        return Err(corrupt(format!(
            "{} bytes, shorter than a snapshot header",
            bytes.len()
        )));
    }
    let version = i16::from_be_bytes([bytes[0], bytes[1]]);
    if version != SNAPSHOT_VERSION {
        return Err(corrupt(format!("unknown snapshot version {version}")));
    }
    let stored = u32::from_be_bytes(bytes[CRC_AT..ENTRIES_AT].try_into().expect("4 bytes"));
    let computed = crc32c(&bytes[ENTRIES_AT..]);
    if stored != computed {
        return Err(corrupt(format!(
            "CRC is no longer valid (stored {stored}, computed {computed})"
        )));
    }
    let count = i32::from_be_bytes(bytes[ENTRIES_AT..ENTRIES_AT + 4].try_into().expect("4"));
    let body = &bytes[ENTRIES_AT + 4..];
    let count =
        usize::try_from(count).map_err(|_| corrupt(format!("negative entry count {count}")))?;
    if count.checked_mul(ENTRY_SIZE) != Some(body.len()) {
        return Err(corrupt(format!(
            "{count} entries announced, {} bytes of entries",
            body.len()
        )));
    }
    let mut entries = Vec::with_capacity(count);
    for raw in body.chunks_exact(ENTRY_SIZE) {
        let mut at = 0;
        let mut take = |n: usize| {
            let field = &raw[at..at + n];
            at += n;
            field
        };
        let i64_of = |b: &[u8]| i64::from_be_bytes(b.try_into().expect("8 bytes"));
        let i32_of = |b: &[u8]| i32::from_be_bytes(b.try_into().expect("4 bytes"));
        let entry = SnapshotEntry {
            producer_id: i64_of(take(8)),
            epoch: i16::from_be_bytes(take(2).try_into().expect("2 bytes")),
            last_sequence: i32_of(take(4)),
            last_offset: i64_of(take(8)),
            offset_delta: i32_of(take(4)),
            timestamp: i64_of(take(8)),
            coordinator_epoch: i32_of(take(4)),
            current_txn_first_offset: i64_of(take(8)),
        };
        if entry.last_offset >= 0 && entry.offset_delta < 0 {
            // Kafka would load it and compute a first offset above the last: refused.
            return Err(corrupt(format!(
                "producer {} has a negative offset delta {}",
                entry.producer_id, entry.offset_delta
            )));
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// Writes the snapshot at `offset` in partition directory `dir`: to `<name>.tmp`, synced,
/// renamed over `<name>`, directory synced. Returns the file's path.
#[cfg(test)]
pub(crate) fn write_snapshot(
    dir: &Path,
    offset: i64,
    entries: &[SnapshotEntry],
) -> io::Result<PathBuf> {
    write_snapshot_with(dir, offset, entries, true)
}

/// [`write_snapshot`] with `sync` false: written to `<name>.tmp` and renamed, nothing
/// synced (Kafka's `takeSnapshot(false)`); [`sync_snapshot`] makes it durable later. A
/// power loss before that leaves it whole, absent, or failing its CRC (then deleted at load
/// and an older one used), never wrong.
pub(crate) fn write_snapshot_with(
    dir: &Path,
    offset: i64,
    entries: &[SnapshotEntry],
    sync: bool,
) -> io::Result<PathBuf> {
    let path = snapshot_path(dir, offset);
    let temp = dir.join(format!("{offset:020}{TEMP_SUFFIX}"));
    let bytes = encode(entries);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)?;
        file.write_all(&bytes)?;
        if sync {
            file.sync_all()?;
        }
        fs::rename(&temp, &path)?;
        if sync {
            checkpoint::sync_dir(dir)?;
        }
        Ok(())
    })();
    if let Err(error) = result {
        let _ = fs::remove_file(&temp);
        return Err(error);
    }
    Ok(path)
}

/// Syncs the snapshot at `offset` in `dir` written by [`write_snapshot_with`] without a
/// sync, and the directory (its rename). Returns whether it still existed (one deleted
/// since needs nothing).
pub(crate) fn sync_snapshot(dir: &Path, offset: i64) -> io::Result<bool> {
    match fs::File::open(snapshot_path(dir, offset)) {
        Ok(file) => file.sync_all()?,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(error) => return Err(error),
    }
    checkpoint::sync_dir(dir)?;
    Ok(true)
}

/// Reads and decodes the snapshot file at `path`. A file that is not a valid snapshot (or
/// larger than any snapshot this broker would read) is an `InvalidData` error.
pub(crate) fn read_snapshot(path: &Path) -> io::Result<Vec<SnapshotEntry>> {
    let len = fs::metadata(path)?.len();
    if len > MAX_SNAPSHOT_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            SnapshotError::Corrupt(format!("{len} bytes, larger than any snapshot read")),
        ));
    }
    let bytes = fs::read(path)?;
    decode(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The offsets of the snapshot files in partition directory `dir`, ascending (regular
/// files only, as Kafka's `listSnapshotFiles`).
pub(crate) fn list_snapshots(dir: &Path) -> io::Result<Vec<i64>> {
    let mut offsets = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Some(offset) = entry
            .file_name()
            .to_str()
            .and_then(parse_snapshot_file_name)
        else {
            continue;
        };
        if fs::metadata(entry.path()).is_ok_and(|m| m.is_file()) {
            offsets.push(offset);
        }
    }
    offsets.sort_unstable();
    Ok(offsets)
}

/// Removes leftover `.snapshot.tmp` files (writes a crash interrupted) from `dir`.
pub(crate) fn remove_temp_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().ends_with(TEMP_SUFFIX) {
            let path = entry.path();
            match fs::remove_file(&path) {
                Ok(()) => tracing::debug!(file = %path.display(), "removed an unfinished snapshot"),
                Err(error) => {
                    tracing::warn!(file = %path.display(), %error, "could not remove an unfinished snapshot")
                }
            }
        }
    }
}

/// Deletes the snapshot at `offset` from `dir` if it exists (Kafka's `deleteIfExists`);
/// returns whether there was one.
pub(crate) fn delete_snapshot(dir: &Path, offset: i64) -> io::Result<bool> {
    let path = snapshot_path(dir, offset);
    match fs::remove_file(&path) {
        Ok(()) => {
            tracing::debug!(file = %path.display(), "deleted a producer state snapshot");
            Ok(true)
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

/// Deletes the snapshots of `dir` at the given offsets, logging failures (a snapshot left
/// behind is only a stale file: the next open ignores or deletes it).
pub(crate) fn delete_snapshots(dir: &Path, offsets: impl IntoIterator<Item = i64>) {
    for offset in offsets {
        if let Err(error) = delete_snapshot(dir, offset) {
            tracing::warn!(
                file = %snapshot_path(dir, offset).display(),
                %error,
                "could not delete a producer state snapshot"
            );
        }
    }
}

/// The newest usable snapshot of `dir` at or below `at_most` (Kafka's `loadFromSnapshot`):
/// snapshots that are corrupt are deleted and the next older one tried; one that cannot be
/// read for another reason is skipped (and kept). `None` when no snapshot is usable.
pub(crate) fn load_latest(
    dir: &Path,
    offsets: &[i64],
    at_most: i64,
) -> Option<(i64, Vec<SnapshotEntry>)> {
    for &offset in offsets.iter().rev().filter(|&&o| o <= at_most) {
        let path = snapshot_path(dir, offset);
        match read_snapshot(&path) {
            Ok(entries) => {
                tracing::debug!(
                    file = %path.display(),
                    producers = entries.len(),
                    "loading producer state from a snapshot"
                );
                return Some((offset, entries));
            }
            Err(error) if error.kind() == io::ErrorKind::InvalidData => {
                tracing::warn!(file = %path.display(), %error, "deleting a corrupt producer snapshot");
                delete_snapshots(dir, [offset]);
            }
            Err(error) => {
                tracing::warn!(file = %path.display(), %error, "skipping an unreadable producer snapshot");
            }
        }
    }
    None
}

/// Whether the snapshot at `offset` exists in `dir`.
#[cfg(test)]
pub(crate) fn exists(dir: &Path, offset: i64) -> bool {
    snapshot_path(dir, offset).is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: i64) -> SnapshotEntry {
        SnapshotEntry {
            producer_id: id,
            epoch: 3,
            last_sequence: 41,
            last_offset: 1_000 + id,
            offset_delta: 4,
            timestamp: 1_700_000_000_000,
            coordinator_epoch: -1,
            current_txn_first_offset: -1,
        }
    }

    #[test]
    fn round_trip() {
        for entries in [vec![], vec![entry(1)], vec![entry(7), entry(2), entry(9)]] {
            let bytes = encode(&entries);
            assert_eq!(bytes.len(), 10 + 46 * entries.len());
            assert_eq!(decode(&bytes).expect("valid"), entries);
        }
    }

    /// A file written byte by byte from Kafka's ProducerSnapshot.json layout.
    #[test]
    fn golden_bytes_from_kafkas_layout() {
        let mut body = Vec::new();
        body.extend_from_slice(&1i32.to_be_bytes()); // one entry
        body.extend_from_slice(&0x0102_0304_0506_0708i64.to_be_bytes()); // ProducerId
        body.extend_from_slice(&5i16.to_be_bytes()); // Epoch
        body.extend_from_slice(&99i32.to_be_bytes()); // LastSequence
        body.extend_from_slice(&123_456i64.to_be_bytes()); // LastOffset
        body.extend_from_slice(&9i32.to_be_bytes()); // OffsetDelta
        body.extend_from_slice(&1_699_999_999_999i64.to_be_bytes()); // Timestamp
        body.extend_from_slice(&7i32.to_be_bytes()); // CoordinatorEpoch
        body.extend_from_slice(&123_000i64.to_be_bytes()); // CurrentTxnFirstOffset
        let crc = crc32c::crc32c(&body);
        let mut file = vec![0x00, 0x01];
        file.extend_from_slice(&crc.to_be_bytes());
        file.extend_from_slice(&body);
        let expected = SnapshotEntry {
            producer_id: 0x0102_0304_0506_0708,
            epoch: 5,
            last_sequence: 99,
            last_offset: 123_456,
            offset_delta: 9,
            timestamp: 1_699_999_999_999,
            coordinator_epoch: 7,
            current_txn_first_offset: 123_000,
        };
        assert_eq!(decode(&file).expect("Kafka's bytes"), vec![expected]);
        assert_eq!(
            encode(&[expected]),
            file,
            "written exactly as Kafka writes it"
        );
        // An empty snapshot: version, CRC of the zero count, the count.
        let empty = encode(&[]);
        assert_eq!(&empty[..2], &[0, 1]);
        assert_eq!(&empty[2..6], &crc32c::crc32c(&[0, 0, 0, 0]).to_be_bytes());
        assert_eq!(&empty[6..], &[0, 0, 0, 0]);
    }

    #[test]
    fn corrupt_snapshots_are_refused() {
        let good = encode(&[entry(1), entry(2)]);
        let mut flipped = good.clone();
        flipped[20] ^= 0x40;
        let mut bad_crc = good.clone();
        bad_crc[3] ^= 1;
        let mut version = good.clone();
        version[1] = 2;
        let mut trailing = good.clone();
        trailing.push(0);
        for (what, bytes) in [
            ("flipped", flipped),
            ("crc", bad_crc),
            ("version", version),
            ("trailing", trailing),
            ("truncated", good[..good.len() - 1].to_vec()),
            ("header only", good[..8].to_vec()),
            ("empty", Vec::new()),
        ] {
            assert!(
                matches!(decode(&bytes), Err(SnapshotError::Corrupt(_))),
                "{what}"
            );
        }
        // A count larger than the bytes present, with a valid CRC: refused, not allocated.
        let mut huge = vec![0, 1, 0, 0, 0, 0];
        huge.extend_from_slice(&i32::MAX.to_be_bytes());
        let crc = crc32c::crc32c(&huge[6..]);
        huge[2..6].copy_from_slice(&crc.to_be_bytes());
        assert!(decode(&huge).is_err());
    }

    #[test]
    fn names() {
        assert_eq!(snapshot_file_name(1234), "00000000000000001234.snapshot");
        assert_eq!(
            parse_snapshot_file_name("00000000000000001234.snapshot"),
            Some(1234)
        );
        for other in [
            "1234.snapshot",
            "00000000000000001234.snapshot.tmp",
            "00000000000000001234.snapshot.deleted",
            "00000000000000001234.log",
        ] {
            assert_eq!(parse_snapshot_file_name(other), None, "{other}");
        }
    }

    #[test]
    fn files_load_newest_valid_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dir = dir.path();
        write_snapshot(dir, 10, &[entry(1)]).expect("write");
        write_snapshot(dir, 20, &[entry(2)]).expect("write");
        write_snapshot(dir, 30, &[entry(3)]).expect("write");
        fs::write(dir.join("00000000000000000040.snapshot.tmp"), b"half").expect("tmp");
        assert_eq!(list_snapshots(dir).expect("list"), [10, 20, 30]);
        remove_temp_files(dir);
        assert!(!dir.join("00000000000000000040.snapshot.tmp").exists());
        // Corrupt the newest: it is deleted and the next older one loaded.
        let path = snapshot_path(dir, 30);
        let mut bytes = fs::read(&path).expect("read");
        bytes[12] ^= 0xff;
        fs::write(&path, bytes).expect("corrupt");
        let offsets = list_snapshots(dir).expect("list");
        assert_eq!(load_latest(dir, &offsets, 100), Some((20, vec![entry(2)])));
        assert!(!exists(dir, 30));
        // Bounded: the newest at or below the bound.
        assert_eq!(load_latest(dir, &offsets, 19), Some((10, vec![entry(1)])));
        // Truncated files fall back too, and nothing usable is None.
        for offset in [10, 20] {
            let path = snapshot_path(dir, offset);
            let bytes = fs::read(&path).expect("read");
            fs::write(&path, &bytes[..bytes.len() - 3]).expect("truncate");
        }
        let offsets = list_snapshots(dir).expect("list");
        assert_eq!(load_latest(dir, &offsets, 100), None);
        assert_eq!(list_snapshots(dir).expect("list"), Vec::<i64>::new());
    }
}
