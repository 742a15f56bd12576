//! Up-conversion of Produce v0-v2 legacy message sets (issue 11) against the plain v2
//! validation of the same records, in the same run: 1,000 records of a 10-byte key and a
//! 100-byte value, as a magic 1 set (plain messages, or one wrapper of gzip or lz4) through
//! `validate_legacy_records`, and as one v2 batch of the same codec through
//! `validate_records` (the Produce v3+ path, which keeps a batch as it came). Both with the
//! topic's `compression.type=producer`. Throughput counts the records' key and value bytes,
//! the same figure for both, so the MiB/s compare directly.
//!
//! `cargo bench -p gregor-broker --bench legacy_produce`

#![allow(missing_docs)] // criterion_group! generates undocumented items.

#[path = "../tests/legacy_produce/messages.rs"]
mod messages;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gregor_broker::storage::{LogConfig, validate_legacy_records, validate_records};
use gregor_protocol::records::{Compression, NewRecord, RecordBatchBuilder};

const RECORDS: usize = 1000;
const VALUE_BYTES: usize = 100;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn bench(c: &mut Criterion) {
    let now = now();
    let keys: Vec<Vec<u8>> = (0..RECORDS)
        .map(|i| format!("key-{i:06}").into_bytes())
        .collect();
    // Mildly compressible values (a counter in each), as real payloads are.
    let values: Vec<Vec<u8>> = (0..RECORDS)
        .map(|i| {
            let mut v = format!("value-{i:08}-").into_bytes();
            v.resize(VALUE_BYTES, b'a' + (i % 26) as u8);
            v
        })
        .collect();
    let payload: u64 = keys.iter().chain(&values).map(|b| b.len() as u64).sum();
    let config = LogConfig::default();
    let mut group = c.benchmark_group("legacy_produce");
    group.throughput(Throughput::Bytes(payload));
    for codec in [Compression::None, Compression::Gzip, Compression::Lz4] {
        let rows: Vec<messages::Row<'_>> = (0..RECORDS)
            .map(|i| {
                (
                    now - 1000 + i as i64,
                    Some(&keys[i][..]),
                    Some(&values[i][..]),
                )
            })
            .collect();
        let legacy = Bytes::from(messages::message_set(1, codec, &rows));
        let records: Vec<NewRecord> = rows
            .iter()
            .map(|(ts, k, v)| {
                NewRecord::new(
                    *ts,
                    k.map(Bytes::copy_from_slice),
                    v.map(Bytes::copy_from_slice),
                )
            })
            .collect();
        let v2 = RecordBatchBuilder::new()
            .compression(codec)
            .build(&records)
            .expect("batch");
        // Sanity: both paths accept their input and describe the same records.
        let converted = validate_legacy_records(legacy.clone(), &config, now).expect("legacy");
        let plain = validate_records(v2.clone(), &config, now).expect("v2");
        assert_eq!(converted.record_count(), plain.record_count());
        group.bench_function(format!("upconvert magic 1 {codec}"), |b| {
            b.iter(|| validate_legacy_records(legacy.clone(), &config, now).expect("legacy"))
        });
        group.bench_function(format!("validate v2 {codec}"), |b| {
            b.iter(|| validate_records(v2.clone(), &config, now).expect("v2"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
