//! The one listing of a partition directory an open makes: its entries read once and
//! classified (segments, producer snapshots, transaction indexes, leftovers of interrupted
//! operations), instead of one directory pass per kind of file.

use std::fs;
use std::path::{Path, PathBuf};

use super::DELETED_SUFFIX;
use crate::storage::StorageError;
use crate::storage::cleaner::{CLEANED_SUFFIX, SWAP_SUFFIX};
use crate::storage::producer_snapshot::parse_snapshot_file_name;
use crate::storage::segment::parse_segment_file_name;
use crate::storage::txn_index::TXN_INDEX_SUFFIX;

/// Suffix of a producer snapshot a crash left half-written.
const SNAPSHOT_TEMP_SUFFIX: &str = ".snapshot.tmp";

/// What a partition directory holds, as an open needs it.
#[derive(Debug, Default)]
pub(super) struct Listing {
    /// The `<20 digits>.log` segment files that are files (symbolic links followed, as
    /// Kafka does), sorted by base offset.
    pub(super) segments: Vec<(i64, PathBuf)>,
    /// The offsets of the `<20 digits>.snapshot` producer snapshot files, sorted.
    pub(super) snapshots: Vec<i64>,
    /// The base offsets that have a `.txnindex` file, sorted (a segment without one has no
    /// aborted transaction).
    pub(super) txn_indexes: Vec<i64>,
    /// Whether the directory holds what an interrupted operation leaves (`*.deleted`,
    /// `*.cleaned`, `*.swap`, `*.snapshot.tmp`): the open then clears them up with the
    /// passes made for that and lists again.
    pub(super) leftovers: bool,
}

impl Listing {
    /// Lists `part_dir` once. Only entries whose type the listing does not give (symbolic
    /// links, file systems without `d_type`) are looked at further.
    pub(super) fn read(part_dir: &Path) -> Result<Listing, StorageError> {
        let mut listing = Listing::default();
        let entries = fs::read_dir(part_dir).map_err(|e| StorageError::io(part_dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| StorageError::io(part_dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
            if name.ends_with(DELETED_SUFFIX)
                || name.ends_with(CLEANED_SUFFIX)
                || name.ends_with(SWAP_SUFFIX)
                || name.ends_with(SNAPSHOT_TEMP_SUFFIX)
            {
                listing.leftovers = true;
                continue;
            }
            if let Some(base) = parse_segment_file_name(name) {
                let path = entry.path();
                if is_file(&entry, &path)? {
                    listing.segments.push((base, path));
                }
            } else if let Some(offset) = parse_snapshot_file_name(name) {
                let path = entry.path();
                if is_file(&entry, &path).unwrap_or(false) {
                    listing.snapshots.push(offset);
                }
            } else if let Some(base) = name
                .strip_suffix(TXN_INDEX_SUFFIX)
                .and_then(|stem| stem.strip_suffix('.'))
                .filter(|digits| digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|digits| digits.parse::<i64>().ok())
            {
                listing.txn_indexes.push(base);
            }
        }
        listing.segments.sort_unstable_by_key(|(base, _)| *base);
        listing.snapshots.sort_unstable();
        listing.txn_indexes.sort_unstable();
        Ok(listing)
    }

    /// Whether the segment at `base_offset` has a transaction index file.
    pub(super) fn has_txn_index(&self, base_offset: i64) -> bool {
        self.txn_indexes.binary_search(&base_offset).is_ok()
    }
}

/// Whether a directory entry is a file, following a symbolic link.
fn is_file(entry: &fs::DirEntry, path: &Path) -> Result<bool, StorageError> {
    match entry.file_type() {
        Ok(kind) if kind.is_file() => Ok(true),
        Ok(kind) if kind.is_dir() => Ok(false),
        _ => fs::metadata(path)
            .map(|m| m.is_file())
            .map_err(|e| StorageError::io(path, e)),
    }
}
