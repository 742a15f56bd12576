//! Down-conversion speed (Fetch v0-3, issue 11): one partition's worth of v2 batches
//! turned into magic 1 and magic 0 message sets by
//! [`gregor_protocol::records::legacy_write::down_convert`], next to what a v4+ fetch does
//! with the same bytes, in the same run:
//!
//! * `copy`: the v2 bytes copied once into a new buffer (a v4+ fetch copies none: the
//!   ceiling of any work on them);
//! * `read`: every batch parsed, decompressed and every record's key and value touched
//!   (a consumer's reading, the least a conversion must do);
//! * `to_magic_1` / `to_magic_0`: every batch down-converted (`down_convert_batch`), as
//!   Fetch v2-3 / v0-1 do batch by batch (a fetch answer stops at the size of the data
//!   read, see `down_convert`; here all of the input is converted).
//!
//! Input per codec (none, gzip, snappy, lz4): 64 batches of 100 records (key 16 bytes,
//! value 200 bytes of text-like data, two headers), about 1.3 MiB uncompressed. Throughput
//! is in bytes of the v2 input. `cargo bench --bench down_convert` (about a minute).

#![allow(missing_docs)] // criterion_group! generates undocumented items.

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gregor_protocol::records::legacy_write::{down_convert, down_convert_batch};
use gregor_protocol::records::{
    Batch, Compression, Header, NewRecord, RecordBatchBuilder, RecordBatches,
};

const BATCHES: i64 = 64;
const RECORDS: i64 = 100;

/// Text-like values: words from a small vocabulary, so the codecs compress as on real data.
fn value(i: i64) -> Vec<u8> {
    const WORDS: [&str; 12] = [
        "order",
        "id",
        "user",
        "amount",
        "currency",
        "EUR",
        "status",
        "shipped",
        "ts",
        "sku",
        "warehouse",
        "note",
    ];
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(200);
    while out.len() < 200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(WORDS[(x % 12) as usize].as_bytes());
        out.extend_from_slice(format!("={} ", x % 1000).as_bytes());
    }
    out.truncate(200);
    out
}

fn partition(codec: Compression) -> Bytes {
    let mut out = BytesMut::new();
    for b in 0..BATCHES {
        let records: Vec<NewRecord> = (0..RECORDS)
            .map(|r| {
                let i = b * RECORDS + r;
                let mut record = NewRecord::new(
                    1_700_000_000_000 + i,
                    Some(format!("key-{i:012}").into_bytes().into()),
                    Some(value(i).into()),
                );
                record.headers = vec![
                    Header::new("source", Some(Bytes::from_static(b"bench"))),
                    Header::new("seq", Some(i.to_string().into_bytes().into())),
                ];
                record
            })
            .collect();
        let batch = RecordBatchBuilder::new()
            .base_offset(b * RECORDS)
            .compression(codec)
            .build(&records)
            .expect("a batch");
        out.extend_from_slice(&batch);
    }
    out.freeze()
}

/// What a consumer does with the v2 bytes: every record's key and value touched.
fn read(records: &Bytes) -> usize {
    let mut sum = 0usize;
    for batch in RecordBatches::new(records.clone()) {
        let Batch::V2(batch) = batch.expect("a batch") else {
            unreachable!()
        };
        let section = batch.section().expect("records");
        for record in section.iter() {
            let record = record.expect("a record");
            sum += record.key.map_or(0, <[u8]>::len) + record.value.map_or(0, |v| v[0] as usize);
        }
    }
    sum
}

/// Every batch of `records` converted to `magic`, one after the other into one buffer.
fn convert_all(records: &Bytes, magic: i8) -> BytesMut {
    let mut out = BytesMut::new();
    for batch in RecordBatches::new(records.clone()) {
        let batch = batch.expect("a batch");
        let bytes = &records[batch.position()..batch.position() + batch.size()];
        down_convert_batch(&batch, bytes, magic, 0, &mut out).expect("convert");
    }
    out
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("down_convert");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
    ] {
        let input = partition(codec);
        group.throughput(Throughput::Bytes(input.len() as u64));
        let name = format!("{codec:?}").to_lowercase();
        let v1 = convert_all(&input, 1);
        let v0 = convert_all(&input, 0);
        // A fetch answer is exactly the size of the data read (the first batch is smaller).
        let answer = down_convert(&input, 1, 0).expect("convert");
        assert_eq!(answer.len(), input.len());
        println!(
            "down_convert/{name}: v2 input {} bytes, magic 1 {} bytes, magic 0 {} bytes",
            input.len(),
            v1.len(),
            v0.len()
        );
        group.bench_function(format!("{name}/copy"), |b| {
            b.iter(|| BytesMut::from(black_box(&input[..])))
        });
        group.bench_function(format!("{name}/read"), |b| {
            b.iter(|| read(black_box(&input)))
        });
        group.bench_function(format!("{name}/to_magic_1"), |b| {
            b.iter(|| convert_all(black_box(&input), 1))
        });
        group.bench_function(format!("{name}/to_magic_0"), |b| {
            b.iter(|| convert_all(black_box(&input), 0))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
