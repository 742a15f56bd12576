//! The streaming (skip key/value) record iterator against the buffered one.

use bytes::{Bytes, BytesMut};

use super::*;

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// A batch of `codec` whose records section is replaced by `section` compressed with it.
fn batch_with_section(codec: Compression, count: i32, section: &[u8]) -> Bytes {
    let template = sample_batch(1, codec);
    let mut out = BytesMut::from(&template[..61]);
    compress(codec, section, &mut out).unwrap();
    let length = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&length.to_be_bytes());
    out[23..27].copy_from_slice(&(count - 1).to_be_bytes());
    out[57..61].copy_from_slice(&count.to_be_bytes());
    let mut bytes = out.to_vec();
    fix_crc(&mut bytes);
    Bytes::from(bytes)
}

/// The uncompressed records section of a batch.
fn section_of(batch: &Bytes) -> Vec<u8> {
    RecordBatch::parse(batch.clone())
        .unwrap()
        .section()
        .unwrap()
        .as_bytes()
        .to_vec()
}

#[test]
fn summaries_match_the_buffered_records_for_every_codec() {
    for codec in CODECS {
        let batch = RecordBatch::parse(sample_batch(40, codec)).unwrap();
        let records = all_records(&batch);
        let summaries: Vec<RecordSummary> = batch
            .skip_key_value_records(DEFAULT_MAX_DECOMPRESSED_SIZE)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(summaries.len(), records.len(), "{codec}");
        for (summary, record) in summaries.iter().zip(&records) {
            assert_eq!(summary.offset, record.offset);
            assert_eq!(summary.timestamp, record.timestamp);
            assert_eq!(summary.offset_delta, record.offset_delta);
            assert_eq!(summary.key_len, record.key.as_ref().map(|k| k.len()));
            assert_eq!(summary.value_len, record.value.as_ref().map(|v| v.len()));
            assert_eq!(summary.header_count, record.headers.len());
            assert!(summary.has_key());
        }
    }
}

#[test]
fn a_huge_value_is_skipped_not_held_and_the_limit_applies() {
    let value = Bytes::from(vec![0u8; 8 << 20]);
    let records = [NewRecord {
        timestamp: 1,
        key: None,
        value: Some(value),
        headers: Vec::new(),
    }];
    for codec in [Compression::Gzip, Compression::Lz4, Compression::Zstd] {
        let bytes = RecordBatchBuilder::new()
            .compression(codec)
            .build(&records)
            .unwrap();
        assert!(bytes.len() < 1 << 20, "{codec}: {}", bytes.len());
        let batch = RecordBatch::parse(bytes).unwrap();
        let summary = batch
            .skip_key_value_records(usize::MAX)
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(summary.value_len, Some(8 << 20));
        assert!(!summary.has_key());
        let errors: Vec<_> = batch.skip_key_value_records(1 << 20).collect();
        assert!(
            matches!(
                errors[..],
                [Err(RecordsError::DecompressedTooLarge { limit, .. })] if limit == 1 << 20
            ),
            "{codec}: {errors:?}"
        );
    }
}

#[test]
fn zeros_that_inflate_hugely_stop_at_the_first_record() {
    // 64 MiB of zeros: the first record has length 0, an empty body.
    let zeros = vec![0u8; 64 << 20];
    for codec in [Compression::Gzip, Compression::Zstd, Compression::Lz4] {
        let batch = RecordBatch::parse(batch_with_section(codec, 1, &zeros)).unwrap();
        batch.verify_crc().unwrap();
        let items: Vec<_> = batch
            .skip_key_value_records(DEFAULT_MAX_DECOMPRESSED_SIZE)
            .collect();
        assert!(
            matches!(
                items[..],
                [Err(RecordsError::MalformedRecord {
                    reason: "empty record body",
                    ..
                })]
            ),
            "{codec}: {items:?}"
        );
    }
}

#[test]
fn count_mismatches_and_trailing_bytes_are_reported_like_the_buffered_iterator() {
    for codec in CODECS {
        let section = section_of(&sample_batch(3, codec));
        // Declares 4 records, holds 3.
        let short = RecordBatch::parse(batch_with_section(codec, 4, &section)).unwrap();
        let items: Vec<_> = short.skip_key_value_records(usize::MAX).collect();
        assert!(
            matches!(
                items[3],
                Err(RecordsError::RecordCountMismatch {
                    declared: 4,
                    found: 3,
                    ..
                })
            ),
            "{codec}: {items:?}"
        );
        // Declares 2 records, holds 3.
        let long = RecordBatch::parse(batch_with_section(codec, 2, &section)).unwrap();
        let items: Vec<_> = long.skip_key_value_records(usize::MAX).collect();
        assert!(
            matches!(
                items[..],
                [
                    Ok(_),
                    Ok(_),
                    Err(RecordsError::TrailingRecordBytes { declared: 2, .. })
                ]
            ),
            "{codec}: {items:?}"
        );
        // Cut inside the last record.
        let cut = RecordBatch::parse(batch_with_section(codec, 3, &section[..section.len() - 2]))
            .unwrap();
        let streamed: Vec<_> = cut.skip_key_value_records(usize::MAX).collect();
        assert!(
            matches!(streamed[2], Err(RecordsError::TruncatedRecord { .. })),
            "{codec}: {streamed:?}"
        );
    }
}

#[test]
fn every_prefix_and_corruption_errors_instead_of_panicking() {
    let section = section_of(&sample_batch(5, Compression::None));
    for codec in [Compression::None, Compression::Zstd] {
        for cut in 0..section.len() {
            let batch = RecordBatch::parse(batch_with_section(codec, 5, &section[..cut])).unwrap();
            let items: Vec<_> = batch.skip_key_value_records(usize::MAX).collect();
            assert!(items.last().unwrap().is_err(), "{codec} cut at {cut}");
        }
        for at in 0..section.len() {
            let mut bad = section.clone();
            bad[at] ^= 0xff;
            let batch = RecordBatch::parse(batch_with_section(codec, 5, &bad)).unwrap();
            // Same verdict as the buffered iterator.
            let streamed = batch
                .skip_key_value_records(usize::MAX)
                .collect::<Result<Vec<_>, _>>()
                .is_ok();
            let buffered = batch
                .section()
                .unwrap()
                .iter()
                .collect::<Result<Vec<_>, _>>()
                .is_ok();
            assert_eq!(streamed, buffered, "{codec} flipped byte {at}");
        }
    }
}

#[test]
fn corrupt_compressed_data_is_a_decompression_error() {
    let mut bytes = sample_batch(10, Compression::Gzip).to_vec();
    let len = bytes.len();
    for b in &mut bytes[61 + 10..len - 8] {
        *b = 0xff;
    }
    fix_crc(&mut bytes);
    let batch = RecordBatch::parse(Bytes::from(bytes)).unwrap();
    let items: Vec<_> = batch.skip_key_value_records(usize::MAX).collect();
    assert!(
        matches!(items.last(), Some(Err(RecordsError::Decompression { .. }))),
        "{items:?}"
    );
}

#[test]
fn damaged_compressed_bytes_get_the_buffered_verdict_for_every_codec() {
    for codec in CODECS {
        let good = sample_batch(5, codec);
        for at in 61..good.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut bad = good.to_vec();
                bad[at] ^= flip;
                fix_crc(&mut bad);
                let batch = RecordBatch::parse(Bytes::from(bad)).unwrap();
                let streamed: Vec<_> = batch.skip_key_value_records(1 << 20).collect();
                let streamed_ok = streamed.iter().all(Result::is_ok) && streamed.len() == 5;
                let buffered_ok = batch
                    .section_with_limit(1 << 20)
                    .is_ok_and(|section| section.iter().collect::<Result<Vec<_>, _>>().is_ok());
                assert_eq!(
                    streamed_ok, buffered_ok,
                    "{codec}: byte {at} ^ {flip:#x}: {streamed:?}"
                );
            }
        }
    }
}

/// 60 records of about 1 KB with headers: more than the 16 KiB read buffer once
/// decompressed, so some records straddle a refill and take the byte-by-byte path.
fn straddling_batch(codec: Compression) -> Bytes {
    let records: Vec<NewRecord> = (0..60)
        .map(|i| NewRecord {
            timestamp: 1_700_000_000_000 + i,
            key: (i % 3 != 0).then(|| Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(vec![
                b'a' + (i % 26) as u8;
                900 + i as usize * 7
            ])),
            headers: vec![Header::new(
                Bytes::from_static(b"trace"),
                (i % 2 == 0).then(|| Bytes::from(vec![i as u8; 40])),
            )],
        })
        .collect();
    RecordBatchBuilder::new()
        .compression(codec)
        .build(&records)
        .unwrap()
}

#[test]
fn records_straddling_the_read_buffer_match_and_fail_alike() {
    for codec in CODECS {
        let good = straddling_batch(codec);
        let batch = RecordBatch::parse(good.clone()).unwrap();
        let records = all_records(&batch);
        let summaries: Vec<RecordSummary> = batch
            .skip_key_value_records(usize::MAX)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(summaries.len(), 60);
        for (summary, record) in summaries.iter().zip(&records) {
            assert_eq!(summary.offset, record.offset, "{codec}");
            assert_eq!(summary.key_len, record.key.as_ref().map(|k| k.len()));
            assert_eq!(summary.value_len, record.value.as_ref().map(|v| v.len()));
            assert_eq!(summary.header_count, 1);
        }
        // Damage in the decompressed records: the same verdict as the buffered iterator.
        let section = section_of(&good);
        for at in (0..section.len()).step_by(331) {
            let mut bad = section.clone();
            bad[at] ^= 0x40;
            let batch = RecordBatch::parse(batch_with_section(codec, 60, &bad)).unwrap();
            let streamed = batch
                .skip_key_value_records(usize::MAX)
                .collect::<Result<Vec<_>, _>>()
                .is_ok();
            let buffered = batch
                .section()
                .unwrap()
                .iter()
                .collect::<Result<Vec<_>, _>>()
                .is_ok();
            assert_eq!(streamed, buffered, "{codec}: flipped byte {at}");
        }
    }
}
