//! Re-compressing batches: every codec pair keeps the header and the records, the limits
//! on input and output hold.

use bytes::Bytes;

use super::*;

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// An idempotent, transactional batch with a leader epoch, many records (so snappy and lz4
/// write several blocks) and headers.
fn source(codec: Compression) -> Bytes {
    let records: Vec<NewRecord> = (0..2_000).map(sample).collect();
    let mut batch = RecordBatchBuilder::new()
        .base_offset(42)
        .partition_leader_epoch(7)
        .producer(1234, 5)
        .base_sequence(77)
        .transactional(true)
        .compression(codec)
        .build(&records)
        .unwrap()
        .to_vec();
    set_partition_leader_epoch(&mut batch, 7).unwrap();
    Bytes::from(batch)
}

#[test]
fn every_codec_pair_keeps_header_and_records() {
    for from in CODECS {
        let original = RecordBatch::parse(source(from)).unwrap();
        let expected = all_records(&original);
        for to in CODECS {
            for level in [None, Some(1), Some(9)] {
                let bytes = original
                    .recompress(to, level, DEFAULT_MAX_DECOMPRESSED_SIZE, 64 << 20)
                    .unwrap();
                let batch = RecordBatch::parse(bytes).unwrap();
                batch.validate().unwrap();
                assert_eq!(batch.compression(), to, "{from} -> {to}");
                let (a, b) = (original.header(), batch.header());
                assert_eq!(
                    (
                        b.base_offset,
                        b.partition_leader_epoch,
                        b.last_offset_delta,
                        b.base_timestamp,
                        b.max_timestamp,
                        b.producer_id,
                        b.producer_epoch,
                        b.base_sequence,
                        b.record_count,
                        b.is_transactional(),
                        b.is_control(),
                        b.timestamp_type(),
                    ),
                    (
                        a.base_offset,
                        a.partition_leader_epoch,
                        a.last_offset_delta,
                        a.base_timestamp,
                        a.max_timestamp,
                        a.producer_id,
                        a.producer_epoch,
                        a.base_sequence,
                        a.record_count,
                        a.is_transactional(),
                        a.is_control(),
                        a.timestamp_type(),
                    ),
                    "{from} -> {to}"
                );
                assert_eq!(all_records(&batch), expected, "{from} -> {to}");
            }
        }
    }
}

#[test]
fn the_output_limit_stops_compression() {
    let original = RecordBatch::parse(source(Compression::Zstd)).unwrap();
    let uncompressed = original
        .recompress(
            Compression::None,
            None,
            DEFAULT_MAX_DECOMPRESSED_SIZE,
            usize::MAX,
        )
        .unwrap();
    let limit = uncompressed.len() - 1;
    let error = original
        .recompress(
            Compression::None,
            None,
            DEFAULT_MAX_DECOMPRESSED_SIZE,
            limit,
        )
        .unwrap_err();
    assert_eq!(
        error,
        RecordsError::RecompressedTooLarge {
            codec: Compression::None,
            limit
        }
    );
    // Exactly at the limit is fine.
    let exact = original
        .recompress(
            Compression::None,
            None,
            DEFAULT_MAX_DECOMPRESSED_SIZE,
            uncompressed.len(),
        )
        .unwrap();
    assert_eq!(exact, uncompressed);
}

#[test]
fn the_input_limit_holds_and_bad_data_is_an_error() {
    let original = RecordBatch::parse(source(Compression::Gzip)).unwrap();
    let error = original
        .recompress(Compression::Lz4, None, 1000, usize::MAX)
        .unwrap_err();
    assert_eq!(
        error,
        RecordsError::DecompressedTooLarge {
            codec: Compression::Gzip,
            limit: 1000
        }
    );
    // A gzip batch whose compressed bytes are garbage (CRC fixed so it parses).
    let mut bytes = source(Compression::Gzip).to_vec();
    for byte in &mut bytes[RECORD_BATCH_OVERHEAD + 10..RECORD_BATCH_OVERHEAD + 40] {
        *byte ^= 0x5a;
    }
    fix_crc(&mut bytes);
    let broken = RecordBatch::parse(Bytes::from(bytes)).unwrap();
    let error = broken
        .recompress(
            Compression::Zstd,
            None,
            DEFAULT_MAX_DECOMPRESSED_SIZE,
            usize::MAX,
        )
        .unwrap_err();
    assert!(
        matches!(
            error,
            RecordsError::Decompression {
                codec: Compression::Gzip,
                ..
            }
        ),
        "{error:?}"
    );
}
