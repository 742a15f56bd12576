//! Codec framing: xerial and raw snappy, LZ4 frames, multi-member gzip, zstd without size.

use std::io::Write;

use bytes::{BufMut, Bytes, BytesMut};

use super::*;

fn payload() -> Vec<u8> {
    (0..100_000u32)
        .flat_map(|i| (i % 251).to_le_bytes())
        .collect()
}

#[test]
fn snappy_xerial_framing_by_hand_decodes() {
    let data = payload();
    // Header: magic, version 1, compatible version 1; then blocks of uneven sizes.
    let mut framed = vec![
        0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1,
    ];
    for chunk in data.chunks(50_000) {
        let block = snap::raw::Encoder::new().compress_vec(chunk).unwrap();
        framed.put_i32(block.len() as i32);
        framed.extend_from_slice(&block);
    }
    let out = decompress(Compression::Snappy, &framed, usize::MAX).unwrap();
    assert_eq!(out, data);

    // Two concatenated xerial streams (each with its header) decode as one.
    let mut twice = framed.clone();
    twice.extend_from_slice(&framed);
    let out = decompress(Compression::Snappy, &twice, usize::MAX).unwrap();
    assert_eq!(out.len(), 2 * data.len());

    // A block that runs past the end is an error, not a panic.
    framed.truncate(framed.len() - 3);
    assert!(matches!(
        decompress(Compression::Snappy, &framed, usize::MAX),
        Err(RecordsError::Decompression { .. })
    ));
}

#[test]
fn snappy_raw_block_decodes() {
    let data = payload();
    let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
    assert_eq!(
        decompress(Compression::Snappy, &raw, usize::MAX).unwrap(),
        data
    );
}

#[test]
fn snappy_encodes_xerial_like_java() {
    let data = payload();
    let mut out = BytesMut::new();
    compress(Compression::Snappy, &data, &mut out).unwrap();
    assert_eq!(
        &out[..16],
        &[
            0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1
        ]
    );
    // Blocks hold at most 32 KiB each.
    let mut pos = 16;
    let mut blocks = 0;
    while pos < out.len() {
        let len = i32::from_be_bytes(out[pos..pos + 4].try_into().unwrap()) as usize;
        let block = &out[pos + 4..pos + 4 + len];
        assert!(snap::raw::decompress_len(block).unwrap() <= 32 * 1024);
        pos += 4 + len;
        blocks += 1;
    }
    assert_eq!(blocks, data.len().div_ceil(32 * 1024));
    assert_eq!(
        decompress(Compression::Snappy, &out, usize::MAX).unwrap(),
        data
    );
}

#[test]
fn librdkafka_style_raw_snappy_batch() {
    // librdkafka compresses the records section as a single raw snappy block.
    let records: Vec<NewRecord> = (0..20).map(sample).collect();
    let plain = RecordBatch::parse(RecordBatchBuilder::new().build(&records).unwrap()).unwrap();
    let raw = snap::raw::Encoder::new()
        .compress_vec(&plain.records_bytes())
        .unwrap();
    let batch = RecordBatch::parse(raw_batch(2, 20, 19, &raw)).unwrap();
    batch.validate().unwrap();
    let decoded = all_records(&batch);
    assert_eq!(decoded.len(), 20);
    for (got, want) in decoded.iter().zip(&records) {
        assert_eq!(got.key, want.key);
        assert_eq!(got.value, want.value);
        assert_eq!(got.headers, want.headers);
    }
}

#[test]
fn lz4_frame_as_kafka_writes_it() {
    let data = payload();
    let mut out = BytesMut::new();
    compress(Compression::Lz4, &data, &mut out).unwrap();
    assert_eq!(&out[..4], &[0x04, 0x22, 0x4d, 0x18]); // frame magic
    let flg = out[4];
    assert_eq!(flg & 0xc0, 0x40, "version 01");
    assert_eq!(flg & 0x20, 0x20, "independent blocks");
    assert_eq!(flg & 0x1d, 0, "no checksums, content size or dictionary");
    assert_eq!(out[5], 0x40, "64 KiB blocks");
    // Our XXH32 agrees with lz4_flex's header checksum.
    assert_eq!(
        (super::super::legacy::xxh32_short(&out[4..6]) >> 8) as u8,
        out[6]
    );
    assert_eq!(
        decompress(Compression::Lz4, &out, usize::MAX).unwrap(),
        data
    );
}

#[test]
fn xxh32_known_values() {
    // Reference values of XXH32 with seed 0.
    assert_eq!(super::super::legacy::xxh32_short(b""), 0x02cc_5d05);
    assert_eq!(super::super::legacy::xxh32_short(b"a"), 0x550d_7456);
    assert_eq!(super::super::legacy::xxh32_short(b"abc"), 0x32d1_53ff);
}

#[test]
fn gzip_multiple_members() {
    let mut both = Vec::new();
    for part in [&b"hello "[..], &b"world"[..]] {
        let mut encoder = flate2::write::GzEncoder::new(&mut both, flate2::Compression::fast());
        encoder.write_all(part).unwrap();
        encoder.finish().unwrap();
    }
    assert_eq!(
        &decompress(Compression::Gzip, &both, 100).unwrap()[..],
        b"hello world"
    );
}

#[test]
fn zstd_frame_without_content_size() {
    let data = payload();
    let mut packed = Vec::new();
    let mut encoder = zstd::stream::write::Encoder::new(&mut packed, 1).unwrap();
    encoder.include_contentsize(false).unwrap();
    encoder.write_all(&data).unwrap();
    encoder.finish().unwrap();
    assert_eq!(
        zstd::zstd_safe::get_frame_content_size(&packed)
            .ok()
            .flatten(),
        None
    );
    assert_eq!(
        decompress(Compression::Zstd, &packed, usize::MAX).unwrap(),
        data
    );
    // And ours records the size.
    let mut ours = BytesMut::new();
    compress(Compression::Zstd, &data, &mut ours).unwrap();
    assert_eq!(
        zstd::zstd_safe::get_frame_content_size(&ours)
            .ok()
            .flatten(),
        Some(data.len() as u64)
    );
}

#[test]
fn every_codec_round_trips_and_shares_decompressed_buffer() {
    for id in 0..5 {
        let codec = Compression::from_id(id).unwrap();
        assert_eq!(codec.id(), id);
        let bytes = sample_batch(30, codec);
        let batch = RecordBatch::parse(bytes).unwrap();
        batch.validate().unwrap();
        let records = all_records(&batch);
        assert_eq!(records.len(), 30);
        assert_eq!(records[29].offset, 129);
        assert_eq!(records[7].key, Some(Bytes::from("key-7")));
    }
    assert_eq!(Compression::from_id(5), None);
    assert_eq!(Compression::Zstd.to_string(), "zstd");
}
