//! Malformed input gives the right error, never a panic.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::golden::golden;
use super::*;

fn edited(bytes: &Bytes, edit: impl FnOnce(&mut [u8])) -> Bytes {
    let mut copy = bytes.to_vec();
    edit(&mut copy);
    Bytes::from(copy)
}

/// The first error of iterating `batch`, the same by value and by reference.
fn first_error(batch: &RecordBatch) -> RecordsError {
    let owned = batch.records().find_map(Result::err).expect("an error");
    let section = batch.section().unwrap();
    let borrowed = section.iter().find_map(Result::err).expect("an error");
    assert_eq!(owned, borrowed);
    owned
}

#[test]
fn corrupt_crc() {
    let bad = edited(&golden(), |b| b[72] ^= 0x01); // a byte of the value
    let batch = RecordBatch::parse(bad).unwrap();
    let error = batch.validate().unwrap_err();
    assert!(
        matches!(
            error,
            RecordsError::CrcMismatch {
                position: 0,
                stored: 0x15dd_06f6,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("CRC mismatch"));
    // A flipped stored CRC is caught too.
    let bad = edited(&golden(), |b| b[20] ^= 0x80);
    assert!(matches!(
        RecordBatch::parse(bad).unwrap().verify_crc(),
        Err(RecordsError::CrcMismatch { .. })
    ));
}

#[test]
fn bad_magic() {
    let bad = edited(&golden(), |b| b[16] = 3);
    assert_eq!(
        RecordBatch::parse(bad.clone()).unwrap_err(),
        RecordsError::BadMagic {
            position: 0,
            magic: 3
        }
    );
    let mut buf = golden().to_vec();
    buf.extend_from_slice(&bad);
    let results: Vec<_> = RecordBatches::new(Bytes::from(buf)).collect();
    assert_eq!(results.len(), 2);
    assert!(results[0].is_ok());
    assert_eq!(
        results[1].as_ref().unwrap_err(),
        &RecordsError::BadMagic {
            position: 82,
            magic: 3
        }
    );
    // Legacy magic is not a v2 batch.
    let legacy = edited(&golden(), |b| b[16] = 1);
    assert!(matches!(
        RecordBatch::parse(legacy),
        Err(RecordsError::BadMagic { magic: 1, .. })
    ));
}

#[test]
fn truncated_buffers() {
    let full = golden();
    assert!(matches!(
        RecordBatch::parse(full.slice(..10)),
        Err(RecordsError::Truncated {
            position: 0,
            needed: 17,
            available: 10
        })
    ));
    assert!(matches!(
        RecordBatch::parse(full.slice(..40)),
        Err(RecordsError::Truncated {
            needed: 61,
            available: 40,
            ..
        })
    ));
    assert_eq!(
        RecordBatch::parse(full.slice(..70)).unwrap_err(),
        RecordsError::BatchLengthMismatch {
            position: 0,
            declared: 82,
            available: 70
        }
    );
    let mut longer = full.to_vec();
    longer.push(0);
    assert!(matches!(
        RecordBatch::parse(Bytes::from(longer)),
        Err(RecordsError::BatchLengthMismatch {
            declared: 82,
            available: 83,
            ..
        })
    ));
    let short_length = edited(&full, |b| b[8..12].copy_from_slice(&48i32.to_be_bytes()));
    assert!(matches!(
        RecordBatch::parse(short_length),
        Err(RecordsError::InvalidBatchLength { length: 48, .. })
    ));
}

#[test]
fn trailing_partial_batch_ends_iteration() {
    let full = golden();
    for cut in [1, 11, 12, 16, 17, 60, 81] {
        let mut buf = full.to_vec();
        buf.extend_from_slice(&full[..cut]);
        let mut batches = RecordBatches::new(Bytes::from(buf));
        assert!(matches!(batches.next(), Some(Ok(Batch::V2(_)))));
        assert!(batches.next().is_none(), "cut {cut}");
        assert!(batches.is_truncated(), "cut {cut}");
        assert_eq!(batches.remaining().len(), cut);
        assert_eq!(batches.position(), 82);
    }
    let mut batches = RecordBatches::new(Bytes::new());
    assert!(batches.next().is_none());
    assert!(!batches.is_truncated());
}

#[test]
fn record_count_mismatch() {
    let three = sample_batch(3, Compression::None);
    let more = edited(&three, |b| {
        b[57..61].copy_from_slice(&4i32.to_be_bytes());
        b[23..27].copy_from_slice(&3i32.to_be_bytes());
        fix_crc(b);
    });
    let batch = RecordBatch::parse(more).unwrap();
    assert_eq!(batch.records().filter(Result::is_ok).count(), 3);
    let error = first_error(&batch);
    assert!(
        matches!(
            error,
            RecordsError::RecordCountMismatch { declared: 4, found: 3, location }
                if location.record_index == 3 && location.position == batch.size() && !location.decompressed
        ),
        "{error}"
    );
    assert!(batch.validate().is_err());

    let fewer = edited(&three, |b| {
        b[57..61].copy_from_slice(&2i32.to_be_bytes());
        fix_crc(b);
    });
    let batch = RecordBatch::parse(fewer).unwrap();
    let error = first_error(&batch);
    assert!(
        matches!(error, RecordsError::TrailingRecordBytes { declared: 2, .. }),
        "{error}"
    );

    let negative = edited(&three, |b| {
        b[57..61].copy_from_slice(&(-1i32).to_be_bytes())
    });
    assert!(matches!(
        RecordBatch::parse(negative),
        Err(RecordsError::InvalidRecordCount { count: -1, .. })
    ));

    // Also inside a compressed batch, where positions refer to the decompressed data.
    let zstd = sample_batch(3, Compression::Zstd);
    let more = edited(&zstd, |b| {
        b[57..61].copy_from_slice(&4i32.to_be_bytes());
        fix_crc(b);
    });
    let error = first_error(&RecordBatch::parse(more).unwrap());
    assert!(
        matches!(error, RecordsError::RecordCountMismatch { location, .. } if location.decompressed),
        "{error}"
    );
    assert!(error.to_string().contains("decompressed"));
}

#[test]
fn offset_delta_beyond_last_offset_delta() {
    let two = sample_batch(2, Compression::None);
    let bad = edited(&two, |b| {
        b[23..27].copy_from_slice(&0i32.to_be_bytes());
        fix_crc(b);
    });
    let batch = RecordBatch::parse(bad).unwrap();
    let error = first_error(&batch);
    assert!(
        matches!(
            error,
            RecordsError::OffsetDeltaOutOfRange { offset_delta: 1, last_offset_delta: 0, location }
                if location.record_index == 1
        ),
        "{error}"
    );
}

#[test]
fn truncated_and_malformed_records() {
    // Record length 21 (zig-zag 0x2a) where 20 bytes follow.
    let long = edited(&golden(), |b| {
        b[61] = 0x2a;
        fix_crc(b);
    });
    let error = first_error(&RecordBatch::parse(long).unwrap());
    assert_eq!(
        error,
        RecordsError::TruncatedRecord {
            location: RecordLocation {
                batch_position: 0,
                record_index: 0,
                position: 61,
                decompressed: false
            },
            length: 22,
            available: 21,
        }
    );
    // Key length 63 inside a 20-byte record.
    let key = edited(&golden(), |b| b[65] = 0x7e);
    assert!(matches!(
        first_error(&RecordBatch::parse(key).unwrap()),
        RecordsError::MalformedRecord {
            reason: "key runs past the record",
            ..
        }
    ));
    // Header count 2 with one header present.
    let headers = edited(&golden(), |b| b[75] = 0x04);
    assert!(matches!(
        first_error(&RecordBatch::parse(headers).unwrap()),
        RecordsError::MalformedRecord { .. }
    ));
    // A huge header count must not allocate: it fails on the data instead.
    let section = [0x14, 0, 0, 0, 1, 1, 0xfe, 0xff, 0xff, 0xff, 0x07];
    let batch = RecordBatch::parse(raw_batch(0, 1, 0, &section)).unwrap();
    assert!(matches!(
        first_error(&batch),
        RecordsError::MalformedRecord { .. }
    ));
    // Record length shorter than its fields.
    let short = edited(&golden(), |b| {
        b[61] = 0x26;
        fix_crc(b);
    });
    assert!(matches!(
        first_error(&RecordBatch::parse(short).unwrap()),
        RecordsError::MalformedRecord { .. }
    ));
}

#[test]
fn unknown_codec() {
    let bad = edited(&golden(), |b| b[22] = 5);
    assert!(matches!(
        RecordBatch::parse(bad),
        Err(RecordsError::UnknownCompression { codec: 5, .. })
    ));
}

#[test]
fn decompression_bomb_with_explicit_limit() {
    let zeros = vec![0u8; 2 << 20];
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let mut packed = BytesMut::new();
        compress(codec, &zeros, &mut packed).unwrap();
        assert_eq!(
            decompress(codec, &packed, 1 << 20).unwrap_err(),
            RecordsError::DecompressedTooLarge {
                codec,
                limit: 1 << 20
            },
            "{codec}"
        );
        assert_eq!(decompress(codec, &packed, 2 << 20).unwrap().len(), 2 << 20);
        let batch = RecordBatch::parse(raw_batch(codec.id().into(), 1, 0, &packed)).unwrap();
        let error = batch
            .records_with_limit(1 << 20)
            .next()
            .unwrap()
            .unwrap_err();
        assert_eq!(
            error,
            RecordsError::DecompressedTooLarge {
                codec,
                limit: 1 << 20
            }
        );
        assert!(batch.validate_with_limit(1 << 20).is_err());
    }
}

#[test]
fn decompression_bomb_with_default_limit() {
    use std::io::Write;
    // 300 MiB of zeros in about 10 KiB of zstd, streamed so the input is never held.
    let mut packed = Vec::new();
    let mut encoder = zstd::stream::write::Encoder::new(&mut packed, 3).unwrap();
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..300 {
        encoder.write_all(&chunk).unwrap();
    }
    encoder.finish().unwrap();
    assert!(packed.len() < 64 * 1024);
    let batch = RecordBatch::parse(raw_batch(4, 1, 0, &packed)).unwrap();
    let error = batch.records().next().unwrap().unwrap_err();
    assert_eq!(
        error,
        RecordsError::DecompressedTooLarge {
            codec: Compression::Zstd,
            limit: DEFAULT_MAX_DECOMPRESSED_SIZE
        }
    );
}

#[test]
fn snappy_claimed_length_is_checked_before_allocating() {
    // A raw snappy block whose varint header claims 4 GiB - 1: refused even without a
    // limit, before anything is allocated.
    let block = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
    assert!(matches!(
        decompress(Compression::Snappy, &block, usize::MAX),
        Err(RecordsError::Decompression { .. })
    ));
    // A plausible claim over the limit is refused by the limit.
    let mut packed = BytesMut::new();
    compress(Compression::Snappy, &[7u8; 100_000], &mut packed).unwrap();
    let raw = snap::raw::Encoder::new()
        .compress_vec(&[7u8; 100_000])
        .unwrap();
    for data in [&packed[..], &raw[..]] {
        assert!(matches!(
            decompress(Compression::Snappy, data, 50_000),
            Err(RecordsError::DecompressedTooLarge { limit: 50_000, .. })
        ));
    }
}

#[test]
fn garbage_compressed_section() {
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let batch =
            RecordBatch::parse(raw_batch(codec.id().into(), 1, 0, b"not compressed")).unwrap();
        let error = batch.records().next().unwrap().unwrap_err();
        assert!(
            matches!(error, RecordsError::Decompression { .. }),
            "{codec}: {error}"
        );
    }
}

#[test]
fn writer_dropped_without_finish_leaves_output_unchanged() {
    let mut out = BytesMut::from(&b"prefix"[..]);
    {
        let mut writer = RecordBatchBuilder::new().writer(&mut out);
        writer.append(&sample(1)).unwrap();
    }
    assert_eq!(&out[..], b"prefix");
}

#[test]
fn explicit_offset_deltas_must_increase() {
    let mut out = BytesMut::new();
    let mut writer = RecordBatchBuilder::new().writer(&mut out);
    writer.append_with_offset_delta(3, &sample(0)).unwrap();
    assert_eq!(
        writer.append_with_offset_delta(3, &sample(1)).unwrap_err(),
        RecordsError::OffsetDeltaNotIncreasing {
            offset_delta: 3,
            previous: 3
        }
    );
    assert_eq!(writer.append(&sample(2)).unwrap(), 4);
    writer.finish().unwrap();
    let batch = RecordBatch::parse(out.freeze()).unwrap();
    batch.validate().unwrap();
    let offsets: Vec<i64> = all_records(&batch).iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [3, 4]);
    assert_eq!(batch.header().last_offset_delta, 4);
}

#[test]
fn in_place_rewrites_on_non_v2_fail() {
    let mut legacy = legacy_entry(0, 1, 0, 0, None, Some(&[0u8; 64]));
    assert!(matches!(
        set_base_offset(&mut legacy, 1),
        Err(RecordsError::BadMagic { magic: 1, .. })
    ));
    assert!(matches!(
        set_partition_leader_epoch(&mut [0u8; 20], 1),
        Err(RecordsError::Truncated { .. })
    ));
}

fn exercise(buf: Bytes) {
    let mut batches = RecordBatches::new(buf);
    for batch in batches.by_ref() {
        match batch {
            Ok(Batch::V2(batch)) => {
                let _ = batch.validate();
                let owned: Vec<_> = batch.records_with_limit(1 << 20).collect();
                if let Ok(section) = batch.section_with_limit(1 << 20) {
                    let borrowed: Vec<_> = section.iter().collect();
                    assert_eq!(owned.len(), borrowed.len());
                    for (a, b) in owned.iter().zip(&borrowed) {
                        match (a, b) {
                            (Ok(a), Ok(b)) => {
                                assert_eq!(a.key.as_deref(), b.key);
                                assert_eq!(a.headers.len(), b.headers().count());
                                let _ = a.control_key();
                            }
                            (Err(a), Err(b)) => assert_eq!(a, b),
                            _ => panic!("owned and borrowed iteration disagree"),
                        }
                    }
                }
            }
            Ok(Batch::Legacy(message)) => {
                let _ = message.verify_crc();
                let _ = message.messages_with_limit(1 << 20);
            }
            Err(error) => {
                let _ = error.to_string();
            }
        }
    }
    let _ = batches.is_truncated();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random edits and truncations of valid batches never panic.
    #[test]
    fn mutated_batches_never_panic(
        codec in 0u8..5,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        keep_crc in any::<bool>(),
    ) {
        let codec = Compression::from_id(codec).unwrap();
        let mut bytes = sample_batch(4, codec).to_vec();
        for (at, value) in edits {
            let at = at.index(bytes.len());
            bytes[at] = value;
        }
        if keep_crc {
            fix_crc(&mut bytes);
        }
        let cut = cut.index(bytes.len() + 1);
        bytes.truncate(cut);
        exercise(Bytes::from(bytes));
    }

    /// Arbitrary bytes never panic, whatever magic they claim.
    #[test]
    fn random_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..300), magic in 0u8..3) {
        if bytes.len() > 16 {
            bytes[16] = magic;
            let length = (bytes.len() - 12) as i32;
            bytes[8..12].copy_from_slice(&length.to_be_bytes());
        }
        exercise(Bytes::from(bytes));
    }
}
