//! Tests of the storage module: segment files written with `RecordBatchBuilder` into
//! temporary directories, then opened and read.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use gregor_protocol::records::{Batch, NewRecord, RecordBatchBuilder, RecordBatches};

use super::*;

const TOPIC: &str = "t";

/// A v2 batch of `count` records (values of `value_len` bytes), timestamps from `ts`.
fn batch(base: i64, count: usize, value_len: usize, ts: i64) -> Vec<u8> {
    let records: Vec<NewRecord> = (0..count)
        .map(|i| {
            NewRecord::new(
                ts + i as i64,
                Some(Bytes::from(format!("key-{base}-{i}"))),
                Some(Bytes::from(vec![b'a' + (i % 26) as u8; value_len])),
            )
        })
        .collect();
    RecordBatchBuilder::new()
        .base_offset(base)
        .build(&records)
        .expect("batch")
        .to_vec()
}

/// A batch as written into a test segment.
#[derive(Clone, Debug)]
struct Written {
    base: i64,
    last: i64,
    bytes: Vec<u8>,
}

/// Writes `<dir>/<base>.log` holding `batches`; returns the file's bytes.
fn write_segment(dir: &Path, base: i64, batches: &[Written]) -> Vec<u8> {
    let bytes: Vec<u8> = batches
        .iter()
        .flat_map(|b| b.bytes.iter().copied())
        .collect();
    fs::write(dir.join(segment_file_name(base)), &bytes).expect("write segment");
    bytes
}

/// Batches with the given (record count, value size) shapes, offsets chained from `base`.
fn chain(base: i64, shapes: &[(usize, usize)]) -> Vec<Written> {
    let mut next = base;
    shapes
        .iter()
        .map(|&(count, value_len)| {
            let written = Written {
                base: next,
                last: next + count as i64 - 1,
                bytes: batch(next, count, value_len, 1_000 + next),
            };
            next += count as i64;
            written
        })
        .collect()
}

/// The standard three-segment log:
/// segment 0: [0..=2] [3] [4..=8] [9..=10]; segment 11: [11..=14] [15, 20 KB] [16..=18];
/// segment 19: [19..=20] [21..=30].
struct Standard {
    _tmp: tempfile::TempDir,
    log_dir: PathBuf,
    segments: Vec<(i64, Vec<Written>)>,
    files: Vec<Vec<u8>>,
}

impl Standard {
    fn new() -> Standard {
        let tmp = tempfile::tempdir().expect("tempdir");
        let log_dir = tmp.path().to_owned();
        let part_dir = log_dir.join("t-0");
        fs::create_dir(&part_dir).expect("mkdir");
        let segments = vec![
            (0, chain(0, &[(3, 10), (1, 100), (5, 50), (2, 10)])),
            (11, chain(11, &[(4, 30), (1, 20_000), (3, 10)])),
            (19, chain(19, &[(2, 10), (10, 200)])),
        ];
        let files = segments
            .iter()
            .map(|(base, batches)| write_segment(&part_dir, *base, batches))
            .collect();
        // Files Kafka keeps next to the segments: ignored.
        for name in [
            "00000000000000000000.index",
            "00000000000000000000.timeindex",
            "00000000000000000011.snapshot",
            "leader-epoch-checkpoint",
            "partition.metadata",
            "00000000000000000005.log.deleted",
            "0.log",
        ] {
            fs::write(part_dir.join(name), b"not a segment").expect("write");
        }
        fs::create_dir(part_dir.join("00000000000000000099.log")).expect("mkdir");
        Standard {
            _tmp: tmp,
            log_dir,
            segments,
            files,
        }
    }

    fn open(&self) -> PartitionLog {
        PartitionLog::open(&self.log_dir, TOPIC, 0).expect("open")
    }

    fn batches(&self) -> Vec<Written> {
        self.segments
            .iter()
            .flat_map(|(_, batches)| batches.iter().cloned())
            .collect()
    }

    /// The batch holding `offset`.
    fn batch_at(&self, offset: i64) -> Written {
        self.batches()
            .into_iter()
            .find(|b| b.base <= offset && offset <= b.last)
            .expect("batch")
    }
}

/// Kafka's read rule, computed naively over the flat list of batches.
fn model_read(batches: &[Written], fetch_offset: i64, max_bytes: usize, min_one: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for b in batches.iter().filter(|b| b.last >= fetch_offset) {
        if out.len() + b.bytes.len() <= max_bytes {
            out.extend_from_slice(&b.bytes);
        } else {
            if out.is_empty() && min_one {
                out.extend_from_slice(&b.bytes);
            }
            break;
        }
    }
    out
}

/// (base offset, last offset) of each batch in `records`, checking they are whole.
fn batch_offsets(records: &Bytes) -> Vec<(i64, i64)> {
    let mut batches = RecordBatches::new(records.clone());
    let offsets = batches
        .by_ref()
        .map(|b| match b.expect("batch parses") {
            Batch::V2(b) => {
                b.validate().expect("valid batch");
                (b.base_offset(), b.last_offset())
            }
            Batch::Legacy(m) => (m.offset, m.offset),
        })
        .collect();
    assert!(!batches.is_truncated(), "a read returned a partial batch");
    offsets
}

#[test]
fn opens_segments_and_offsets() {
    let fx = Standard::new();
    let log = fx.open();
    assert_eq!(log.topic(), TOPIC);
    assert_eq!(log.partition(), 0);
    assert_eq!(log.name(), "t-0");
    assert_eq!(log.dir(), fx.log_dir.join("t-0"));
    assert_eq!(log.log_start_offset(), 0);
    assert_eq!(log.log_end_offset(), 31);
    assert_eq!(log.high_watermark(), 31);
    assert_eq!(log.last_stable_offset(), 31);
    assert!(log.torn_tail().is_none());
    let segments = log.segments();
    let summary: Vec<_> = segments
        .iter()
        .map(|s| (s.base_offset, s.next_offset, s.batch_count, s.size))
        .collect();
    assert_eq!(
        summary,
        vec![
            (0, 11, 4, fx.files[0].len() as u64),
            (11, 19, 3, fx.files[1].len() as u64),
            (19, 31, 2, fx.files[2].len() as u64),
        ]
    );
    // Max timestamps: batch base 9 has records at 1009 and 1010.
    assert_eq!(segments[0].max_timestamp, 1_010);
    assert_eq!(segments[2].max_timestamp, 1_021 + 9);
    assert_eq!(
        segments[1].path,
        fx.log_dir.join("t-0/00000000000000000011.log")
    );
}

#[test]
fn index_entries_match_the_files() {
    let fx = Standard::new();
    let log = fx.open();
    for (base, batches) in &fx.segments {
        let mut position = 0u32;
        for written in batches {
            for offset in written.base..=written.last {
                let entry = log.find_batch(offset).expect("entry");
                assert_eq!(entry.base_offset, written.base);
                assert_eq!(entry.last_offset, written.last);
                assert_eq!(entry.position, position, "segment {base}");
                assert_eq!(entry.size as usize, written.bytes.len());
                assert_eq!(entry.max_timestamp, 1_000 + written.last);
                assert_eq!(entry.magic, 2);
            }
            position += written.bytes.len() as u32;
        }
    }
    assert_eq!(log.find_batch(31), None);
}

#[test]
fn reads_at_batch_bases_return_the_file_bytes() {
    let fx = Standard::new();
    let log = fx.open();
    // One batch exactly.
    let first = &fx.segments[0].1[0];
    let read = log.read(0, first.bytes.len(), false).expect("read");
    assert_eq!(read.records.as_ref(), first.bytes.as_slice());
    assert_eq!(read.high_watermark, 31);
    assert_eq!(read.log_start_offset, 0);
    assert_eq!(read.last_stable_offset, 31);
    // The whole log in one read: the three files, back to back.
    let all = log.read(0, usize::MAX, false).expect("read");
    let files: Vec<u8> = fx.files.concat();
    assert_eq!(all.records.as_ref(), files.as_slice());
    assert_eq!(batch_offsets(&all.records).len(), 9);
    // From the base of each segment to the end: that segment's file onwards.
    for (i, (base, _)) in fx.segments.iter().enumerate() {
        let read = log.read(*base, usize::MAX, false).expect("read");
        assert_eq!(read.records.as_ref(), fx.files[i..].concat().as_slice());
    }
}

#[test]
fn reads_inside_a_batch_return_the_whole_batch() {
    let fx = Standard::new();
    let log = fx.open();
    for offset in [1, 2, 5, 8, 10, 12, 17, 20, 25, 30] {
        let containing = fx.batch_at(offset);
        let read = log
            .read(offset, containing.bytes.len(), true)
            .expect("read");
        assert_eq!(
            read.records.as_ref(),
            containing.bytes.as_slice(),
            "offset {offset}"
        );
        let offsets = batch_offsets(&read.records);
        assert_eq!(offsets, vec![(containing.base, containing.last)]);
        assert!(containing.base <= offset && offset <= containing.last);
    }
}

#[test]
fn reads_span_segments() {
    let fx = Standard::new();
    let log = fx.open();
    // From the middle of the last batch of segment 0 into segment 19.
    let b9 = fx.batch_at(9);
    let b11 = fx.batch_at(11);
    let b15 = fx.batch_at(15);
    let b16 = fx.batch_at(16);
    let b19 = fx.batch_at(19);
    let max =
        b9.bytes.len() + b11.bytes.len() + b15.bytes.len() + b16.bytes.len() + b19.bytes.len();
    let read = log.read(10, max, false).expect("read");
    let expected = [b9.bytes, b11.bytes, b15.bytes, b16.bytes, b19.bytes].concat();
    assert_eq!(read.records.as_ref(), expected.as_slice());
    assert_eq!(
        batch_offsets(&read.records),
        vec![(9, 10), (11, 14), (15, 15), (16, 18), (19, 20)]
    );
    // The same bytes as the files: the tail of segment 0 and the head of the others.
    let tail0 = &fx.files[0][fx.files[0].len() - fx.batch_at(9).bytes.len()..];
    assert!(read.records.starts_with(tail0));
}

#[test]
fn max_bytes_limits_whole_batches() {
    let fx = Standard::new();
    let log = fx.open();
    let b0 = fx.batch_at(0).bytes.len();
    let b3 = fx.batch_at(3).bytes.len();
    let two = log.read(0, b0 + b3, false).expect("read");
    assert_eq!(batch_offsets(&two.records), vec![(0, 2), (3, 3)]);
    let one = log.read(0, b0 + b3 - 1, false).expect("read");
    assert_eq!(batch_offsets(&one.records), vec![(0, 2)]);
    assert_eq!(one.records.len(), b0);
    // Nothing fits: empty, or the first batch whole with min_one_message.
    let none = log.read(0, b0 - 1, false).expect("read");
    assert!(none.records.is_empty());
    assert_eq!(none.high_watermark, 31);
    let forced = log.read(0, 0, true).expect("read");
    assert_eq!(batch_offsets(&forced.records), vec![(0, 2)]);
}

#[test]
fn a_batch_larger_than_max_bytes() {
    let fx = Standard::new();
    let log = fx.open();
    let big = fx.batch_at(15);
    assert!(big.bytes.len() > 20_000);
    let read = log.read(15, 1_000, true).expect("read");
    assert_eq!(read.records.as_ref(), big.bytes.as_slice());
    assert!(log.read(15, 1_000, false).expect("read").records.is_empty());
    // Before it, the read stops at it rather than exceed max_bytes.
    let b11 = fx.batch_at(11);
    let read = log.read(11, b11.bytes.len() + 1_000, true).expect("read");
    assert_eq!(batch_offsets(&read.records), vec![(11, 14)]);
    // With room for it, it comes with the rest.
    let read = log.read(11, 100_000, false).expect("read");
    assert_eq!(
        batch_offsets(&read.records),
        vec![(11, 14), (15, 15), (16, 18), (19, 20), (21, 30)]
    );
}

#[test]
fn reads_match_the_model_everywhere() {
    let fx = Standard::new();
    let log = fx.open();
    let batches = fx.batches();
    let sizes: Vec<usize> = batches.iter().map(|b| b.bytes.len()).collect();
    let mut limits = vec![
        0,
        1,
        60,
        61,
        200,
        1_000,
        20_000,
        25_000,
        100_000,
        usize::MAX,
    ];
    limits.extend(sizes.iter().copied());
    limits.extend(sizes.windows(2).map(|w| w[0] + w[1]));
    limits.extend(sizes.windows(2).map(|w| w[0] + w[1] - 1));
    for fetch in 0..31 {
        for &max in &limits {
            for min_one in [false, true] {
                let read = log.read(fetch, max, min_one).expect("read");
                let expected = model_read(&batches, fetch, max, min_one);
                assert_eq!(
                    read.records.as_ref(),
                    expected.as_slice(),
                    "fetch {fetch} max {max} min_one {min_one}"
                );
                assert!(
                    read.records.len() <= max
                        || (min_one && batch_offsets(&read.records).len() == 1)
                );
            }
        }
    }
}

#[test]
fn offsets_out_of_range_and_at_the_end() {
    let fx = Standard::new();
    let log = fx.open();
    let at_end = log.read(31, 1_000, true).expect("read at the end");
    assert!(at_end.records.is_empty());
    assert_eq!((at_end.high_watermark, at_end.log_start_offset), (31, 0));
    for offset in [32, 1_000, i64::MAX, -1, i64::MIN] {
        match log.read(offset, 1_000, true) {
            Err(ReadError::OffsetOutOfRange { log_start, log_end }) => {
                assert_eq!((log_start, log_end), (0, 31));
            }
            other => panic!("offset {offset}: {other:?}"),
        }
    }
}

#[test]
fn log_start_offset_raised() {
    let fx = Standard::new();
    let log = fx.open();
    assert_eq!(log.advance_log_start_offset(5).expect("advance"), 5);
    assert_eq!(log.advance_log_start_offset(2).expect("lower: kept"), 5);
    assert_eq!(log.log_start_offset(), 5);
    assert!(matches!(
        log.read(4, 1_000, true),
        Err(ReadError::OffsetOutOfRange {
            log_start: 5,
            log_end: 31
        })
    ));
    // The start is inside batch 4..=8: that batch is returned whole.
    let read = log.read(5, 1, true).expect("read");
    assert_eq!(batch_offsets(&read.records), vec![(4, 8)]);
    assert_eq!(read.log_start_offset, 5);
    assert!(matches!(
        log.advance_log_start_offset(32),
        Err(StorageError::OffsetOutOfRange {
            offset: 32,
            log_start: 5,
            log_end: 31
        })
    ));
    assert_eq!(
        log.advance_log_start_offset(31)
            .expect("advance to the end"),
        31
    );
    assert!(log.read(31, 100, true).expect("read").records.is_empty());
}

#[test]
fn gap_between_segments_returns_the_next_batch() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("t-0");
    fs::create_dir(&dir).expect("mkdir");
    write_segment(&dir, 0, &chain(0, &[(5, 10), (5, 10)]));
    write_segment(&dir, 10, &[]);
    let later = chain(20, &[(3, 10)]);
    write_segment(&dir, 20, &later);
    let log = PartitionLog::open(tmp.path(), TOPIC, 0).expect("open");
    assert_eq!(log.log_end_offset(), 23);
    assert!(log.torn_tail().is_none());
    for fetch in [10, 12, 19, 20, 22] {
        let read = log.read(fetch, 10_000, false).expect("read");
        assert_eq!(
            read.records.as_ref(),
            later[0].bytes.as_slice(),
            "fetch {fetch}"
        );
    }
    assert_eq!(log.find_batch(12).map(|b| b.base_offset), Some(20));
}

#[test]
fn reads_cross_at_most_max_segments() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("t-0");
    fs::create_dir(&dir).expect("mkdir");
    let mut all = Vec::new();
    for i in 0..(MAX_SEGMENTS_PER_READ as i64 + 4) {
        let written = chain(i * 2, &[(2, 5)]);
        write_segment(&dir, i * 2, &written);
        all.extend(written);
    }
    let log = PartitionLog::open(tmp.path(), TOPIC, 0).expect("open");
    assert_eq!(log.segments().len(), MAX_SEGMENTS_PER_READ + 4);
    let read = log.read(1, usize::MAX, false).expect("read");
    let expected: Vec<u8> = all[..MAX_SEGMENTS_PER_READ]
        .iter()
        .flat_map(|b| b.bytes.clone())
        .collect();
    assert_eq!(read.records.as_ref(), expected.as_slice());
    let next = log
        .read(2 * MAX_SEGMENTS_PER_READ as i64, usize::MAX, false)
        .expect("read");
    assert_eq!(batch_offsets(&next.records).len(), 4);
}

#[test]
fn many_batches_every_offset() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("many-0");
    fs::create_dir(&dir).expect("mkdir");
    let shapes: Vec<(usize, usize)> = (0..600).map(|i| (1 + i % 7, (i * 37) % 300)).collect();
    let batches = chain(0, &shapes);
    for chunk in batches.chunks(150) {
        write_segment(&dir, chunk[0].base, chunk);
    }
    let log = PartitionLog::open(tmp.path(), "many", 0).expect("open");
    let end = batches.last().expect("batches").last + 1;
    assert_eq!(log.log_end_offset(), end);
    assert_eq!(log.segments().len(), 4);
    for fetch in 0..end {
        let containing = batches
            .iter()
            .find(|b| b.base <= fetch && fetch <= b.last)
            .expect("batch");
        let read = log.read(fetch, 1, true).expect("read");
        assert_eq!(read.records.as_ref(), containing.bytes.as_slice());
        let read = log.read(fetch, 4_096, false).expect("read");
        assert_eq!(
            read.records.as_ref(),
            model_read(&batches, fetch, 4_096, false).as_slice()
        );
    }
}

#[test]
fn torn_tail_is_not_served() {
    let fx = Standard::new();
    let part_dir = fx.log_dir.join("t-0");
    let last_segment = part_dir.join(segment_file_name(19));
    let partial = batch(31, 3, 100, 0);
    let mut file = fx.files[2].clone();
    file.extend_from_slice(&partial[..partial.len() / 2]);
    fs::write(&last_segment, &file).expect("write");

    let log = fx.open();
    assert_eq!(log.log_end_offset(), 31);
    let torn = log.torn_tail().expect("torn tail reported");
    assert_eq!(torn.segment_base_offset, 19);
    assert_eq!(torn.path, last_segment);
    assert_eq!(torn.position, fx.files[2].len() as u64);
    assert_eq!(torn.file_len, file.len() as u64);
    assert_eq!(torn.reason, "batch cut short by the end of the file");
    assert!(torn.dropped_segments.is_empty());
    let all = log.read(0, usize::MAX, true).expect("read");
    assert_eq!(all.records.as_ref(), fx.files.concat().as_slice());
    assert!(
        log.read(31, usize::MAX, true)
            .expect("read")
            .records
            .is_empty()
    );
    assert!(matches!(
        log.read(32, 10, true),
        Err(ReadError::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.segments()[2].size, fx.files[2].len() as u64);
}

#[test]
fn torn_partial_header_and_zeros() {
    for (tail, reason) in [
        (
            vec![0u8, 0, 0, 0, 0],
            "partial batch header at the end of the file",
        ),
        (vec![0u8; 4_096], "zeros (preallocated or unwritten space)"),
        (
            batch(11, 1, 1, 0)[..40].to_vec(),
            "batch cut short by the end of the file",
        ),
    ] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("t-0");
        fs::create_dir(&dir).expect("mkdir");
        let batches = chain(0, &[(5, 10), (6, 10)]);
        let mut bytes = write_segment(&dir, 0, &batches);
        let valid = bytes.len();
        bytes.extend_from_slice(&tail);
        fs::write(dir.join(segment_file_name(0)), &bytes).expect("write");
        let log = PartitionLog::open(tmp.path(), TOPIC, 0).expect("open");
        assert_eq!(log.log_end_offset(), 11);
        let torn = log.torn_tail().expect("torn");
        assert_eq!((torn.position, torn.reason), (valid as u64, reason));
        let all = log.read(0, usize::MAX, true).expect("read");
        assert_eq!(all.records.len(), valid);
    }
}

#[test]
fn non_chaining_batches_end_the_log() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("t-0");
    fs::create_dir(&dir).expect("mkdir");
    let mut batches = chain(0, &[(5, 10), (5, 10)]);
    // A batch whose offsets go back.
    batches.push(Written {
        base: 3,
        last: 3,
        bytes: batch(3, 1, 10, 0),
    });
    batches.extend(chain(10, &[(1, 10)]));
    let bytes = write_segment(&dir, 0, &batches);
    let log = PartitionLog::open(tmp.path(), TOPIC, 0).expect("open");
    assert_eq!(log.log_end_offset(), 10);
    let torn = log.torn_tail().expect("torn");
    assert_eq!(torn.reason, "offsets do not increase");
    assert_eq!(torn.file_len, bytes.len() as u64);
    let read = log.read(0, usize::MAX, false).expect("read");
    assert_eq!(batch_offsets(&read.records), vec![(0, 4), (5, 9)]);
}

#[test]
fn torn_middle_segment_drops_later_segments_and_append_recovers() {
    let fx = Standard::new();
    let part_dir = fx.log_dir.join("t-0");
    // Cut the big batch of segment 11 short.
    let b11 = fx.batch_at(11).bytes.len();
    let cut = &fx.files[1][..b11 + 100];
    fs::write(part_dir.join(segment_file_name(11)), cut).expect("write");
    let log = fx.open();
    assert_eq!(log.log_end_offset(), 15);
    let torn = log.torn_tail().expect("torn");
    assert_eq!(torn.segment_base_offset, 11);
    assert_eq!(torn.position, b11 as u64);
    assert_eq!(
        torn.dropped_segments,
        vec![part_dir.join(segment_file_name(19))]
    );
    assert_eq!(log.segments().len(), 2);
    assert!(matches!(
        log.read(16, 10, true),
        Err(ReadError::OffsetOutOfRange { log_end: 15, .. })
    ));

    // Opening truncated the torn bytes and removed the later segment, as Kafka's recovery.
    let on_disk = fs::read(part_dir.join(segment_file_name(11))).expect("read");
    assert_eq!(on_disk.as_slice(), &fx.files[1][..b11]);
    assert!(!part_dir.join(segment_file_name(19)).exists());
    assert!(!part_dir.join("00000000000000000019.index").exists());
    assert_eq!(
        log.open_report().truncated_bytes,
        100 + fx.files[2].len() as u64
    );

    // Appends continue at the torn position.
    let mut new_batch = batch(0, 2, 10, 5_000);
    let info = log.append_batch(&mut new_batch).expect("append");
    assert_eq!(
        (info.base_offset, info.last_offset, info.log_end_offset),
        (15, 16, 17)
    );
    let on_disk = fs::read(part_dir.join(segment_file_name(11))).expect("read");
    assert_eq!(on_disk.len(), b11 + new_batch.len());
    assert_eq!(&on_disk[..b11], &fx.files[1][..b11]);
    assert_eq!(&on_disk[b11..], new_batch.as_slice());

    let reopened = fx.open();
    assert!(reopened.torn_tail().is_none());
    assert_eq!(reopened.log_end_offset(), 17);
    let read = reopened.read(15, usize::MAX, false).expect("read");
    assert_eq!(read.records.as_ref(), new_batch.as_slice());
    assert_eq!(batch_offsets(&read.records), vec![(15, 16)]);
}

#[test]
fn damage_in_a_middle_segment_after_a_clean_shutdown_deletes_nothing() {
    let fx = Standard::new();
    let part_dir = fx.log_dir.join("t-0");
    // Garbage where the second batch of segment 11 starts: its magic byte (offset 16).
    let b11 = fx.batch_at(11).bytes.len();
    let mut damaged = fx.files[1].clone();
    damaged[b11 + 16] = 0x7b;
    fs::write(part_dir.join(segment_file_name(11)), &damaged).expect("write");
    super::checkpoint::write_clean_shutdown(&fx.log_dir, 1).expect("marker");
    let Err(err) = PartitionLog::open(&fx.log_dir, TOPIC, 0) else {
        panic!("a damaged middle segment is refused after a clean shutdown");
    };
    assert!(
        matches!(
            &err,
            StorageError::DamagedAfterCleanShutdown { position, later_segments: 1, .. }
                if *position == b11 as u64
        ),
        "{err}"
    );
    // Nothing was truncated or deleted.
    let on_disk = fs::read(part_dir.join(segment_file_name(11))).expect("read");
    assert_eq!(on_disk, damaged);
    assert_eq!(
        fs::read(part_dir.join(segment_file_name(19))).expect("read"),
        fx.files[2]
    );
    // Without the marker (as after kill -9) recovery truncates there, as Kafka's does.
    fs::remove_file(fx.log_dir.join(super::checkpoint::CLEAN_SHUTDOWN_FILE)).expect("rm");
    let log = fx.open();
    assert_eq!(log.log_end_offset(), 15);
    assert!(!part_dir.join(segment_file_name(19)).exists());
}

/// A legacy message set entry (magic 0 or 1); the CRC is not checked by the storage.
fn legacy(offset: i64, magic: i8, attributes: i8, timestamp: i64, value: &[u8]) -> Vec<u8> {
    let mut message = BytesMut::new();
    message.put_u32(0); // crc
    message.put_i8(magic);
    message.put_i8(attributes);
    if magic == 1 {
        message.put_i64(timestamp);
    }
    message.put_i32(-1); // null key
    message.put_i32(value.len() as i32);
    message.put_slice(value);
    let mut entry = BytesMut::new();
    entry.put_i64(offset);
    entry.put_i32(message.len() as i32);
    entry.put_slice(&message);
    entry.to_vec()
}

#[test]
fn legacy_message_sets_are_served_as_they_are() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("old-0");
    fs::create_dir(&dir).expect("mkdir");
    let entries = [
        legacy(0, 0, 0, -1, b"zero"),
        legacy(1, 1, 0, 500, b"one"),
        legacy(2, 1, 0, 600, b"two"),
        batch(3, 3, 10, 700),
        // A gzip wrapper whose offset is its last inner message's (6..=8 inside).
        legacy(8, 1, 1, 900, b"compressed inner messages"),
        batch(9, 1, 10, 1_000),
    ];
    let bytes: Vec<u8> = entries.concat();
    fs::write(dir.join(segment_file_name(0)), &bytes).expect("write");
    // The test messages carry no valid CRC: open as after a clean shutdown (no recovery).
    fs::write(tmp.path().join(CLEAN_SHUTDOWN_FILE), b"").expect("marker");
    let log = PartitionLog::open(tmp.path(), "old", 0).expect("open");
    assert_eq!(log.open_report().verified_segments, 0);
    assert!(log.torn_tail().is_none());
    assert_eq!(log.log_end_offset(), 10);
    let entry = |o| log.find_batch(o).expect("entry");
    assert_eq!((entry(0).magic, entry(0).max_timestamp), (0, -1));
    assert_eq!((entry(1).magic, entry(1).max_timestamp), (1, 500));
    assert_eq!(
        (entry(7).base_offset, entry(7).last_offset, entry(7).magic),
        (6, 8, 1)
    );
    assert_eq!(log.segments()[0].max_timestamp, 1_000);

    let all = log.read(0, usize::MAX, false).expect("read");
    assert_eq!(all.records.as_ref(), bytes.as_slice());
    let read = log
        .read(1, entries[1].len() + entries[2].len(), false)
        .expect("read");
    assert_eq!(
        read.records.as_ref(),
        [entries[1].clone(), entries[2].clone()].concat().as_slice()
    );
    let read = log.read(7, 1, true).expect("read");
    assert_eq!(read.records.as_ref(), entries[4].as_slice());
    match RecordBatches::new(read.records).next() {
        Some(Ok(Batch::Legacy(message))) => assert_eq!((message.offset, message.magic), (8, 1)),
        other => panic!("{other:?}"),
    }
    let read = log.read(4, usize::MAX, false).expect("read");
    assert_eq!(read.records.as_ref(), entries[3..].concat().as_slice());
}

#[test]
fn empty_logs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("empty-0");
    fs::create_dir(&dir).expect("mkdir");
    fs::write(dir.join("partition.metadata"), b"version: 0\n").expect("write");
    fs::write(dir.join("leader-epoch-checkpoint"), b"0\n0\n").expect("write");
    let log = PartitionLog::open(tmp.path(), "empty", 0).expect("open");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    assert!(log.segments().is_empty());
    let read = log.read(0, 1_000, true).expect("read");
    assert!(read.records.is_empty());
    assert_eq!(
        (
            read.high_watermark,
            read.log_start_offset,
            read.last_stable_offset
        ),
        (0, 0, 0)
    );
    assert!(matches!(
        log.read(1, 10, true),
        Err(ReadError::OffsetOutOfRange {
            log_start: 0,
            log_end: 0
        })
    ));
    assert!(matches!(
        log.read(-1, 10, true),
        Err(ReadError::OffsetOutOfRange { .. })
    ));
    // The first append creates the first segment.
    let mut b = batch(0, 4, 10, 0);
    assert_eq!(log.append_batch(&mut b).expect("append").log_end_offset, 4);
    assert!(dir.join(segment_file_name(0)).is_file());
    assert_eq!(
        log.read(0, 1_000, true).expect("read").records.as_ref(),
        b.as_slice()
    );

    // An empty segment after retention: start = end = its base offset.
    let dir = tmp.path().join("empty-1");
    fs::create_dir(&dir).expect("mkdir");
    write_segment(&dir, 100, &[]);
    let log = PartitionLog::open(tmp.path(), "empty", 1).expect("open");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (100, 100));
    assert!(log.read(100, 10, true).expect("read").records.is_empty());
    assert!(matches!(
        log.read(99, 10, true),
        Err(ReadError::OffsetOutOfRange {
            log_start: 100,
            log_end: 100
        })
    ));

    // A missing directory is an error.
    assert!(matches!(
        PartitionLog::open(tmp.path(), "missing", 0),
        Err(StorageError::Io { .. })
    ));
}

#[test]
fn appends_and_rolls_persist() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = PartitionLog::create(tmp.path(), "app", 3).expect("create");
    let dir = tmp.path().join("app-3");
    assert!(dir.join(segment_file_name(0)).is_file());
    let mut appended = Vec::new();
    for i in 0..30 {
        if i % 10 == 0 && i > 0 {
            let base = log.roll_segment().expect("roll");
            assert_eq!(base, log.log_end_offset());
            assert_eq!(log.roll_segment().expect("roll again: no-op"), base);
        }
        // Base offsets in the input are ignored: the log assigns them.
        let mut b = batch(12_345, 1 + i % 3, 20, i as i64);
        let before = log.log_end_offset();
        let info = log.append_batch(&mut b).expect("append");
        assert_eq!(info.base_offset, before);
        assert_eq!(info.last_offset, before + (i % 3) as i64);
        assert_eq!(info.log_end_offset, info.last_offset + 1);
        appended.push(b);
    }
    log.flush().expect("flush");
    let end = log.log_end_offset();
    assert_eq!(log.segments().len(), 3);
    let all = log.read(0, usize::MAX, false).expect("read");
    assert_eq!(all.records.as_ref(), appended.concat().as_slice());
    let offsets = batch_offsets(&all.records);
    assert_eq!(offsets.len(), 30);
    assert!(offsets.windows(2).all(|w| w[1].0 == w[0].1 + 1));

    drop(log);
    let reopened = PartitionLog::open(tmp.path(), "app", 3).expect("reopen");
    assert_eq!(reopened.log_end_offset(), end);
    assert_eq!(reopened.segments().len(), 3);
    assert_eq!(
        reopened.read(0, usize::MAX, false).expect("read").records,
        all.records
    );
    // Appends continue in the last segment.
    let mut b = batch(0, 1, 1, 0);
    assert_eq!(
        reopened.append_batch(&mut b).expect("append").base_offset,
        end
    );
    assert_eq!(reopened.segments().len(), 3);

    // Invalid input.
    let mut short = vec![0u8; 30];
    assert!(matches!(
        reopened.append_batch(&mut short),
        Err(StorageError::InvalidBatch(_))
    ));
    let mut two = [batch(0, 1, 1, 0), batch(1, 1, 1, 0)].concat();
    assert!(matches!(
        reopened.append_batch(&mut two),
        Err(StorageError::InvalidBatch(_))
    ));
    let mut old = legacy(0, 1, 0, 0, &[0u8; 60]);
    assert!(matches!(
        reopened.append_batch(&mut old),
        Err(StorageError::InvalidBatch(_))
    ));
    assert_eq!(reopened.log_end_offset(), end + 1);
}

#[tokio::test]
async fn watch_fires_on_append() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(PartitionLog::create(tmp.path(), "w", 0).expect("create"));
    let mut receiver = log.subscribe();
    assert_eq!(*receiver.borrow(), 0);
    // Nothing yet.
    assert!(
        tokio::time::timeout(Duration::from_millis(50), receiver.changed())
            .await
            .is_err()
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(20), log.changed(0))
            .await
            .is_err()
    );

    let waiter = {
        let log = Arc::clone(&log);
        tokio::spawn(async move { log.changed(0).await })
    };
    let appender = {
        let log = Arc::clone(&log);
        tokio::task::spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(20));
            log.append_batch(&mut batch(0, 3, 10, 0)).expect("append")
        })
    };
    let woke = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("woken")
        .expect("task");
    assert_eq!(woke, 3);
    assert_eq!(appender.await.expect("task").log_end_offset, 3);
    tokio::time::timeout(Duration::from_secs(5), receiver.changed())
        .await
        .expect("receiver woken")
        .expect("sender alive");
    assert_eq!(*receiver.borrow_and_update(), 3);
    // Already past what the caller saw: immediate.
    assert_eq!(log.changed(0).await, 3);

    // The async read goes through the blocking pool.
    let read = log.read_async(1, 1, true).await.expect("read");
    assert_eq!(batch_offsets(&read.records), vec![(0, 2)]);
    assert!(matches!(
        log.read_async(4, 1, true).await,
        Err(ReadError::OffsetOutOfRange {
            log_start: 0,
            log_end: 3
        })
    ));
}

#[test]
fn readers_run_while_appending() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(PartitionLog::create(tmp.path(), "busy", 0).expect("create"));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..4u64)
        .map(|seed| {
            let log = Arc::clone(&log);
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                let mut reads = 0;
                while !done.load(std::sync::atomic::Ordering::Acquire) || reads < 50 {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let end = log.log_end_offset();
                    let fetch = if end == 0 {
                        0
                    } else {
                        (state % (end as u64 + 1)) as i64
                    };
                    let max = (state >> 32) as usize % 20_000;
                    let read = log.read(fetch, max, true).expect("in range");
                    let offsets = batch_offsets(&read.records);
                    assert!(read.high_watermark >= end);
                    if fetch < end {
                        let (first_base, first_last) = offsets[0];
                        assert!(first_base <= fetch && fetch <= first_last);
                    }
                    assert!(offsets.windows(2).all(|w| w[1].0 == w[0].1 + 1));
                    if let Some(last) = offsets.last() {
                        assert!(last.1 < read.high_watermark);
                    }
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for i in 0..600 {
        if i % 150 == 149 {
            log.roll_segment().expect("roll");
        }
        log.append_batch(&mut batch(0, 1 + i % 5, (i * 13) % 500, i as i64))
            .expect("append");
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    for reader in readers {
        assert!(reader.join().expect("reader") >= 50);
    }
    assert_eq!(log.segments().len(), 5);
}

/// A log dir layout with odd names; returns (tempdir, log dirs).
fn manager_fixture() -> (tempfile::TempDir, Vec<PathBuf>) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    for (dir, name, batches) in [
        (&a, "my-topic.v2-10", chain(0, &[(3, 10), (2, 10)])),
        (&a, "a-b-c-0", chain(0, &[(1, 10)])),
        (&a, "topic--1", vec![]),
        (&a, "__cluster_metadata-0", chain(0, &[(1, 10)])),
        (&a, "foo-0.0123456789abcdef0123456789abcdef-delete", vec![]),
        (&a, "foo-1.0123456789abcdef0123456789abcdef-stray", vec![]),
        (&a, "foo-2.0123456789abcdef0123456789abcdef-future", vec![]),
        (&a, "lost+found", vec![]),
        (&a, "noseparator", vec![]),
        (&a, "topic-", vec![]),
        (&a, "-5", vec![]),
        (&a, "topic-+1", vec![]),
        (&a, "topic-99999999999", vec![]),
        (&b, "other-3", chain(0, &[(7, 10)])),
        (&b, "a-b-c-0", chain(0, &[(2, 10)])),
    ] {
        let part = dir.join(name);
        fs::create_dir_all(&part).expect("mkdir");
        if !batches.is_empty() {
            write_segment(&part, 0, &batches);
        }
    }
    for file in ["meta.properties", "recovery-point-offset-checkpoint", "x-0"] {
        fs::write(a.join(file), b"0\n").expect("write");
    }
    (tmp, vec![a, b])
}

#[test]
fn log_manager_discovers_partitions() {
    let (tmp, dirs) = manager_fixture();
    let manager = LogManager::open(&dirs).expect("open");
    assert_eq!(manager.log_dirs(), dirs.as_slice());
    assert_eq!(
        manager.partitions(),
        vec![
            ("a-b-c".to_owned(), 0),
            ("my-topic.v2".to_owned(), 10),
            ("other".to_owned(), 3),
            ("topic-".to_owned(), 1),
        ]
    );
    assert_eq!(manager.len(), 4);
    let log = manager.get("my-topic.v2", 10).expect("my-topic.v2-10");
    assert_eq!(
        (log.topic(), log.partition(), log.log_end_offset()),
        ("my-topic.v2", 10, 5)
    );
    assert_eq!(log.log_dir(), dirs[0]);
    // The copy in the first log dir wins; the duplicate is reported.
    assert_eq!(
        manager.get("a-b-c", 0).expect("a-b-c-0").log_end_offset(),
        1
    );
    assert_eq!(
        manager.get("other", 3).expect("other-3").log_end_offset(),
        7
    );
    assert_eq!(
        manager.get("topic-", 1).expect("topic--1").log_end_offset(),
        0
    );
    assert!(manager.get("__cluster_metadata", 0).is_none());
    assert!(manager.get("foo", 0).is_none());
    assert!(manager.get("my-topic.v2", 1).is_none());

    let mut reported: Vec<String> = manager
        .errors()
        .iter()
        .map(|e| {
            e.path
                .strip_prefix(tmp.path())
                .expect("inside")
                .display()
                .to_string()
        })
        .collect();
    reported.sort();
    assert_eq!(
        reported,
        vec![
            "a/-5",
            "a/lost+found",
            "a/noseparator",
            "a/topic-",
            "a/topic-+1",
            "a/topic-99999999999",
            "b/a-b-c-0"
        ]
    );
    assert!(manager.errors().iter().any(|e| matches!(
        &e.error,
        StorageError::DuplicatePartition { topic, partition: 0, .. } if topic == "a-b-c"
    )));
}

#[test]
fn parses_partition_directory_names() {
    assert_eq!(
        parse_partition_dir_name("my-topic.v2-10"),
        Some(("my-topic.v2", 10))
    );
    assert_eq!(parse_partition_dir_name("a-b-c-0"), Some(("a-b-c", 0)));
    assert_eq!(
        parse_partition_dir_name("x_y-2147483647"),
        Some(("x_y", i32::MAX))
    );
    assert_eq!(parse_partition_dir_name("topic--1"), Some(("topic-", 1)));
    for bad in [
        "",
        "-",
        "-0",
        "t-",
        "t",
        "t-+1",
        "t- 1",
        "t-2147483648",
        "t-1x",
        "..-0",
        ".-0",
        "héllo-0",
        "a b-0",
        "lost+found",
    ] {
        assert_eq!(parse_partition_dir_name(bad), None, "{bad:?}");
    }
    let long = "x".repeat(249);
    assert!(parse_partition_dir_name(&format!("{long}-0")).is_some());
    assert!(parse_partition_dir_name(&format!("{long}x-0")).is_none());
}

#[test]
fn log_manager_create_and_remove() {
    let (_tmp, dirs) = manager_fixture();
    let manager = LogManager::open(&dirs).expect("open");
    // Log dir b holds fewer partitions (1 against 3): new logs go there.
    let log = manager.create("new.topic", 2).expect("create");
    assert_eq!(log.log_dir(), dirs[1]);
    assert!(
        dirs[1]
            .join("new.topic-2")
            .join(segment_file_name(0))
            .is_file()
    );
    assert!(Arc::ptr_eq(
        &log,
        &manager.get("new.topic", 2).expect("get")
    ));
    assert!(Arc::ptr_eq(
        &log,
        &manager.create("new.topic", 2).expect("again")
    ));
    log.append_batch(&mut batch(0, 2, 10, 0)).expect("append");
    assert_eq!(manager.len(), 5);

    assert!(matches!(
        manager.create("bad name", 0),
        Err(StorageError::InvalidTopic(_))
    ));
    assert!(matches!(
        manager.create("__cluster_metadata", 0),
        Err(StorageError::InvalidTopic(_))
    ));
    assert!(matches!(
        manager.create("ok", -1),
        Err(StorageError::InvalidPartition(-1))
    ));

    // Reopening finds it with its data.
    let again = LogManager::open(&dirs).expect("reopen");
    assert_eq!(
        again.get("new.topic", 2).expect("found").log_end_offset(),
        2
    );
    drop(again);

    let removed = manager
        .remove("new.topic", 2)
        .expect("remove")
        .expect("was there");
    assert!(Arc::ptr_eq(&removed, &log));
    assert!(manager.get("new.topic", 2).is_none());
    assert!(!dirs[1].join("new.topic-2").exists());
    let leftovers: Vec<_> = fs::read_dir(&dirs[1])
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .filter(|n| n.to_string_lossy().starts_with("new.topic"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Reads of the removed log still work on the open files; appends fail.
    assert_eq!(
        batch_offsets(&removed.read(0, 1_000, true).expect("read").records),
        vec![(0, 1)]
    );
    assert!(matches!(
        removed.append_batch(&mut batch(0, 1, 1, 0)),
        Err(StorageError::Deleted { .. })
    ));
    assert!(manager.remove("new.topic", 2).expect("remove").is_none());
    assert_eq!(manager.len(), 4);
}

#[test]
fn log_manager_log_dir_problems() {
    assert!(matches!(
        LogManager::open(&[]),
        Err(StorageError::NoLogDirs)
    ));
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("a-file");
    fs::write(&file, b"x").expect("write");
    assert!(matches!(
        LogManager::open(std::slice::from_ref(&file)),
        Err(StorageError::Io { .. })
    ));
    // A missing log dir is created; an unusable one is reported, the others used.
    let fresh = tmp.path().join("fresh/logs");
    let manager = LogManager::open(&[file.clone(), fresh.clone()]).expect("open");
    assert!(fresh.is_dir());
    assert_eq!(manager.log_dirs(), std::slice::from_ref(&fresh));
    assert!(manager.is_empty());
    assert_eq!(manager.errors().len(), 1);
    assert_eq!(manager.errors()[0].path, file);
    let log = manager.create("t", 0).expect("create");
    assert_eq!(log.dir(), fresh.join("t-0"));
}
