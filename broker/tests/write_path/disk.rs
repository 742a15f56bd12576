//! What the broker left on disk: a partition's segments in Kafka's layout, their offset and
//! time indexes checked against Kafka's rules, and the damage the recovery tests do.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use gregor_protocol::records::{Batch, RecordBatches};

/// One batch of a segment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskBatch {
    /// Byte position in the file.
    pub position: u64,
    /// Size in bytes.
    pub size: u64,
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

/// The directory of `topic`-`partition` in the log directory `data`.
pub fn partition_dir(data: &Path, topic: &str, partition: i32) -> PathBuf {
    data.join(format!("{topic}-{partition}"))
}

/// Base offsets of the segments (`<20 digits>.log`) in `dir`, in order.
pub fn segment_bases(dir: &Path) -> Vec<i64> {
    let mut bases: Vec<i64> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".log")?;
            (stem.len() == 20).then(|| stem.parse().ok())?
        })
        .collect();
    bases.sort_unstable();
    bases
}

/// The path of a segment file (`ext`: `log`, `index` or `timeindex`).
pub fn segment_file(dir: &Path, base: i64, ext: &str) -> PathBuf {
    dir.join(format!("{base:020}.{ext}"))
}

/// Every batch of the segment `base` in `dir`, each checked (v2, CRC, records); panics on
/// anything else, including a partial batch at the end.
pub fn read_segment(dir: &Path, base: i64) -> Vec<DiskBatch> {
    let path = segment_file(dir, base, "log");
    let bytes =
        Bytes::from(fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())));
    let mut iter = RecordBatches::new(bytes.clone());
    let mut out = Vec::new();
    for entry in iter.by_ref() {
        let entry = entry.unwrap_or_else(|e| panic!("{}: undecodable batch: {e}", path.display()));
        let Batch::V2(batch) = entry else {
            panic!("{}: a legacy message set", path.display());
        };
        batch.validate().unwrap_or_else(|e| {
            panic!(
                "{}: invalid batch at position {}: {e}",
                path.display(),
                batch.position()
            )
        });
        out.push(DiskBatch {
            position: batch.position() as u64,
            size: batch.size() as u64,
            base_offset: batch.base_offset(),
            last_offset: batch.last_offset(),
            max_timestamp: batch.header().max_timestamp,
        });
    }
    assert!(
        !iter.is_truncated(),
        "{}: ends in a partial batch ({} bytes left)",
        path.display(),
        iter.remaining().len()
    );
    out
}

/// Checks every segment of a partition directory as Kafka would find it: segments named
/// by their first offset and following each other without gaps, whole valid batches, and
/// offset and time indexes that are whole numbers of entries and agree with the segment
/// (Kafka's `LogSegment` rules). Returns the batches of all segments.
pub fn check_partition_dir(dir: &Path) -> Vec<(i64, Vec<DiskBatch>)> {
    let bases = segment_bases(dir);
    assert!(!bases.is_empty(), "{}: no segment", dir.display());
    let mut out = Vec::new();
    let mut expected_next: Option<i64> = None;
    for &base in &bases {
        let batches = read_segment(dir, base);
        if let Some(first) = batches.first() {
            assert!(
                first.base_offset >= base,
                "{}: segment {base} starts with offset {}",
                dir.display(),
                first.base_offset
            );
        }
        if let Some(next) = expected_next
            && let Some(first) = batches.first()
        {
            assert_eq!(
                first.base_offset,
                next,
                "{}: segment {base} does not continue the previous one",
                dir.display()
            );
        }
        if let Some(last) = batches.last() {
            expected_next = Some(last.last_offset + 1);
        }
        check_offset_index(dir, base, &batches);
        check_time_index(dir, base, &batches);
        out.push((base, batches));
    }
    out
}

fn read_index(dir: &Path, base: i64, ext: &str) -> Option<Vec<u8>> {
    let path = segment_file(dir, base, ext);
    match fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("read {}: {e}", path.display()),
    }
}

/// `.index`: 8-byte entries (relative offset, position), offsets and positions strictly
/// increasing, each position the start of a batch and each offset in that batch (Kafka
/// writes the batch's last offset).
fn check_offset_index(dir: &Path, base: i64, batches: &[DiskBatch]) {
    let path = segment_file(dir, base, "index");
    let Some(bytes) = read_index(dir, base, "index") else {
        panic!("{} is missing", path.display());
    };
    assert_eq!(
        bytes.len() % 8,
        0,
        "{}: {} bytes, not a whole number of entries",
        path.display(),
        bytes.len()
    );
    let mut previous: Option<(i64, u32)> = None;
    for (n, entry) in bytes.chunks_exact(8).enumerate() {
        let offset = base + i64::from(i32::from_be_bytes(entry[0..4].try_into().expect("4")));
        let position = u32::from_be_bytes(entry[4..8].try_into().expect("4"));
        let batch = batches
            .iter()
            .find(|b| b.position == u64::from(position))
            .unwrap_or_else(|| {
                panic!(
                    "{} entry {n} ({offset}, {position}): no batch starts at position {position}",
                    path.display()
                )
            });
        assert!(
            (batch.base_offset..=batch.last_offset).contains(&offset),
            "{} entry {n} ({offset}, {position}): the batch there holds {}..={}",
            path.display(),
            batch.base_offset,
            batch.last_offset
        );
        if let Some((prev_offset, prev_position)) = previous {
            assert!(
                offset > prev_offset && position > prev_position,
                "{} entry {n} ({offset}, {position}) does not follow ({prev_offset}, {prev_position})",
                path.display()
            );
        }
        previous = Some((offset, position));
    }
}

/// `.timeindex`: 12-byte entries (timestamp, relative offset), timestamps strictly and
/// offsets weakly increasing, each entry the largest timestamp so far and an offset of the
/// batch that reached it.
fn check_time_index(dir: &Path, base: i64, batches: &[DiskBatch]) {
    let path = segment_file(dir, base, "timeindex");
    let Some(bytes) = read_index(dir, base, "timeindex") else {
        panic!("{} is missing", path.display());
    };
    assert_eq!(
        bytes.len() % 12,
        0,
        "{}: {} bytes, not a whole number of entries",
        path.display(),
        bytes.len()
    );
    let mut previous: Option<(i64, i64)> = None;
    for (n, entry) in bytes.chunks_exact(12).enumerate() {
        let timestamp = i64::from_be_bytes(entry[0..8].try_into().expect("8"));
        let offset = base + i64::from(i32::from_be_bytes(entry[8..12].try_into().expect("4")));
        let at = batches
            .iter()
            .position(|b| (b.base_offset..=b.last_offset).contains(&offset))
            .unwrap_or_else(|| {
                panic!(
                    "{} entry {n} ({timestamp}, {offset}): no batch holds offset {offset}",
                    path.display()
                )
            });
        let max_so_far = batches[..=at]
            .iter()
            .map(|b| b.max_timestamp)
            .max()
            .expect("a batch");
        assert!(
            batches[at].max_timestamp == timestamp && max_so_far == timestamp,
            "{} entry {n} ({timestamp}, {offset}): the batch there has max timestamp {}, the \
             largest so far is {max_so_far}",
            path.display(),
            batches[at].max_timestamp
        );
        if let Some((prev_ts, prev_offset)) = previous {
            assert!(
                timestamp > prev_ts && offset >= prev_offset,
                "{} entry {n} ({timestamp}, {offset}) does not follow ({prev_ts}, {prev_offset})",
                path.display()
            );
        }
        previous = Some((timestamp, offset));
    }
    // A segment rolled by Kafka ends with an entry for its largest timestamp
    // (`onBecomeInactiveSegment`), but one rebuilt by recovery need not (its
    // `LogSegment.recover` adds none), so that last entry is not required.
}

/// Cuts the active segment of `dir` in the middle of its last batch; returns that batch.
pub fn truncate_last_batch(dir: &Path) -> DiskBatch {
    let base = *segment_bases(dir).last().expect("a segment");
    let last = *read_segment(dir, base)
        .last()
        .expect("a batch in the active segment");
    let path = segment_file(dir, base, "log");
    let file = OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open the segment");
    file.set_len(last.position + last.size / 2)
        .expect("truncate the segment");
    last
}

/// Flips one byte inside the records of the batch `from_end` batches before the last of
/// the active segment (0: the last batch), which breaks its CRC; returns that batch.
pub fn corrupt_batch(dir: &Path, from_end: usize) -> DiskBatch {
    let base = *segment_bases(dir).last().expect("a segment");
    let batches = read_segment(dir, base);
    assert!(
        batches.len() > from_end,
        "not enough batches in the active segment"
    );
    let target = batches[batches.len() - 1 - from_end];
    let path = segment_file(dir, base, "log");
    let mut bytes = fs::read(&path).expect("read the segment");
    // Past the 61-byte header: somewhere in the records.
    let at = (target.position + 61 + (target.size - 61) / 2) as usize;
    bytes[at] ^= 0x5a;
    fs::write(&path, bytes).expect("write the segment");
    target
}

/// The offset a Kafka checkpoint file in `data` (e.g. `recovery-point-offset-checkpoint`)
/// holds for `topic`-`partition`, if the file and the entry exist.
pub fn checkpoint_offset(data: &Path, file: &str, topic: &str, partition: i32) -> Option<i64> {
    let text = fs::read_to_string(data.join(file)).ok()?;
    text.lines().skip(2).find_map(|line| {
        let mut parts = line.split(' ');
        let (t, p, o) = (parts.next()?, parts.next()?, parts.next()?);
        (t == topic && p.parse::<i32>().ok()? == partition)
            .then(|| o.parse().ok())
            .flatten()
    })
}

/// Kafka's clean shutdown marker in a log directory.
pub const CLEAN_SHUTDOWN_MARKER: &str = ".kafka_cleanshutdown";

/// Flips one byte inside the records of batch `index` of segment `base` in `dir`;
/// returns that batch.
pub fn corrupt_batch_in(dir: &Path, base: i64, index: usize) -> DiskBatch {
    let target = read_segment(dir, base)[index];
    let path = segment_file(dir, base, "log");
    let mut bytes = fs::read(&path).expect("read the segment");
    let at = (target.position + 61 + (target.size - 61) / 2) as usize;
    bytes[at] ^= 0x5a;
    fs::write(&path, bytes).expect("write the segment");
    target
}
