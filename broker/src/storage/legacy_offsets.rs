//! ListOffsets v0's answer (removed by Kafka 4, served as Kafka 3.9 did): a list of
//! offsets for a timestamp, built from segment boundaries rather than batch timestamps
//! (Kafka 3.9's `UnifiedLog.legacyFetchOffsetsBefore`).
//!
//! Each segment contributes its base offset (at least the log start offset) with the
//! modification time of its `.log` file; a non-empty active segment adds the log end
//! offset with the current time. The answer starts at the last entry (latest, -1), the
//! first (earliest, -2), or the last entry modified at or before the timestamp, and lists
//! up to `max_num_offsets` entries from there towards the start of the log, largest first.

use std::fs;
use std::path::Path;
use std::time::UNIX_EPOCH;

use super::PartitionLog;

/// ListOffsets' "latest" timestamp.
const LATEST: i64 = -1;
/// ListOffsets' "earliest" timestamp.
const EARLIEST: i64 = -2;

/// Why a legacy lookup has no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegacyOffsetsError {
    /// A negative `max_num_offsets`: Kafka 3.9 failed allocating the result array
    /// (`NegativeArraySizeException`) and answered `UNKNOWN_SERVER_ERROR`.
    NegativeCount,
}

/// The modification time of `path` in milliseconds; 0 when it cannot be read (as Java's
/// `File.lastModified`).
fn modified_ms(path: &Path) -> i64 {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The offsets answered for `timestamp` from `entries` (offset and time, in log order),
/// at most `max_num_offsets` of them, largest first.
pub(crate) fn offsets_before(
    entries: &[(i64, i64)],
    timestamp: i64,
    max_num_offsets: i32,
) -> Result<Vec<i64>, LegacyOffsetsError> {
    if max_num_offsets < 0 {
        return Err(LegacyOffsetsError::NegativeCount);
    }
    // The index of the entry to start from; `None` when every entry is newer.
    let start = match timestamp {
        LATEST => entries.len().checked_sub(1),
        EARLIEST => (!entries.is_empty()).then_some(0),
        at => entries.iter().rposition(|&(_, time)| time <= at),
    };
    let Some(start) = start else {
        return Ok(Vec::new());
    };
    let count = usize::try_from(max_num_offsets)
        .unwrap_or(usize::MAX)
        .min(start + 1);
    let mut offsets: Vec<i64> = entries[start + 1 - count..=start]
        .iter()
        .map(|&(offset, _)| offset)
        .collect();
    // Largest first, as Kafka sorts the result.
    offsets.sort_unstable_by(|a, b| b.cmp(a));
    Ok(offsets)
}

impl PartitionLog {
    /// ListOffsets v0: up to `max_num_offsets` segment-boundary offsets at or before
    /// `timestamp` (or -1 latest, -2 earliest), largest first; see the module docs.
    /// `now_ms` is the time given to a non-empty active segment's end.
    pub fn legacy_offsets_before(
        &self,
        timestamp: i64,
        max_num_offsets: i32,
        now_ms: i64,
    ) -> Result<Vec<i64>, LegacyOffsetsError> {
        let segments = self.segments();
        let log_start = self.log_start_offset();
        let log_end = self.log_end_offset();
        let mut entries: Vec<(i64, i64)> = segments
            .iter()
            .map(|s| (s.base_offset.max(log_start), modified_ms(&s.path)))
            .collect();
        if segments.last().is_some_and(|s| s.size > 0) {
            entries.push((log_end, now_ms));
        }
        offsets_before(&entries, timestamp, max_num_offsets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three segments (bases 0, 10, 20 modified at 100, 200, 300) and the active end 25.
    const ENTRIES: [(i64, i64); 4] = [(0, 100), (10, 200), (20, 300), (25, 400)];

    #[test]
    fn latest_and_earliest() {
        assert_eq!(offsets_before(&ENTRIES, LATEST, 1), Ok(vec![25]));
        assert_eq!(offsets_before(&ENTRIES, LATEST, 3), Ok(vec![25, 20, 10]));
        assert_eq!(
            offsets_before(&ENTRIES, LATEST, 100),
            Ok(vec![25, 20, 10, 0])
        );
        assert_eq!(offsets_before(&ENTRIES, EARLIEST, 1), Ok(vec![0]));
        assert_eq!(offsets_before(&ENTRIES, EARLIEST, 5), Ok(vec![0]));
    }

    #[test]
    fn by_timestamp() {
        assert_eq!(offsets_before(&ENTRIES, 250, 10), Ok(vec![10, 0]));
        assert_eq!(offsets_before(&ENTRIES, 300, 1), Ok(vec![20]));
        assert_eq!(offsets_before(&ENTRIES, 99, 10), Ok(vec![]));
        assert_eq!(offsets_before(&ENTRIES, i64::MAX, 2), Ok(vec![25, 20]));
    }

    #[test]
    fn counts() {
        assert_eq!(offsets_before(&ENTRIES, LATEST, 0), Ok(vec![]));
        assert_eq!(
            offsets_before(&ENTRIES, LATEST, -1),
            Err(LegacyOffsetsError::NegativeCount)
        );
        assert_eq!(offsets_before(&[], LATEST, 1), Ok(vec![]));
        assert_eq!(offsets_before(&[], EARLIEST, 1), Ok(vec![]));
    }
}
