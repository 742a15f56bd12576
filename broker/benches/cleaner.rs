//! Log cleaner throughput: one cleaning of a 64 MiB compacted log (10,000 keys, each
//! updated about 50 times, 100-byte values, 8 MiB segments) against copying the same
//! segment files, measured in the same run (the copy reads and writes every byte once: the
//! I/O ceiling of a cleaning that keeps everything).
//!
//! `cargo bench -p gregor-broker --bench cleaner`

#![allow(missing_docs)] // criterion_group! generates undocumented items.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use gregor_broker::storage::cleaner::{Cleaner, Throttler};
use gregor_broker::storage::{LogConfig, PartitionLog};
use gregor_protocol::records::{NewRecord, RecordBatchBuilder};

const TOPIC: &str = "bench";
const LOG_BYTES: usize = 64 << 20;
const KEYS: usize = 10_000;
const VALUE_BYTES: usize = 100;
const RECORDS_PER_BATCH: usize = 100;
/// Kafka's default `log.cleaner.dedupe.buffer.size` for one thread.
const DEDUPE_BUFFER: usize = 128 << 20;

fn config() -> LogConfig {
    let mut config = LogConfig {
        segment_bytes: 8 << 20,
        ..LogConfig::default()
    };
    config.cleanup_policy.compact = true;
    config.cleanup_policy.delete = false;
    config
}

/// Writes the dirty log once into `dir`; its size in bytes.
fn write_template(dir: &Path) -> u64 {
    let log = PartitionLog::create_with_config(dir, TOPIC, 0, config()).expect("create");
    let value = Bytes::from(vec![b'v'; VALUE_BYTES]);
    let mut written = 0;
    let mut i = 0usize;
    while written < LOG_BYTES {
        let records: Vec<NewRecord> = (0..RECORDS_PER_BATCH)
            .map(|_| {
                i += 1;
                NewRecord::new(
                    0,
                    Some(Bytes::from(format!("key-{:05}", i % KEYS))),
                    Some(value.clone()),
                )
            })
            .collect();
        let mut batch = RecordBatchBuilder::new()
            .build(&records)
            .expect("batch")
            .to_vec();
        written += batch.len();
        log.append_batch(&mut batch).expect("append");
    }
    log.roll_segment().expect("roll");
    log.close().expect("close");
    partition_bytes(dir)
}

fn partition_dir(dir: &Path) -> std::path::PathBuf {
    dir.join(format!("{TOPIC}-0"))
}

fn partition_bytes(dir: &Path) -> u64 {
    fs::read_dir(partition_dir(dir))
        .expect("read dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .sum()
}

/// A copy of the template's partition directory in a new temporary log directory.
fn copy_of(template: &Path) -> tempfile::TempDir {
    let target = tempfile::tempdir().expect("tempdir");
    let to = partition_dir(target.path());
    fs::create_dir_all(&to).expect("mkdir");
    for entry in fs::read_dir(partition_dir(template))
        .expect("read")
        .flatten()
    {
        fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
    target
}

fn bench(c: &mut Criterion) {
    let template = tempfile::tempdir().expect("tempdir");
    let bytes = write_template(template.path());
    let mut group = c.benchmark_group("cleaner");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("copy segment files (ceiling)", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("tempdir"),
            |target| {
                let to = partition_dir(target.path());
                fs::create_dir_all(&to).expect("mkdir");
                for entry in fs::read_dir(partition_dir(template.path()))
                    .expect("read")
                    .flatten()
                {
                    if entry.file_name().to_string_lossy().ends_with(".log") {
                        fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
                    }
                }
                target
            },
            BatchSize::PerIteration,
        );
    });
    let mut cleaner = Cleaner::new(
        DEDUPE_BUFFER,
        0.9,
        1 << 20,
        Arc::new(Throttler::new(f64::MAX)),
    );
    group.bench_function("clean 64 MiB, 10,000 keys", |b| {
        b.iter_batched(
            || {
                let dir = copy_of(template.path());
                let log =
                    PartitionLog::open_with_config(dir.path(), TOPIC, 0, config()).expect("open");
                (dir, Arc::new(log))
            },
            |(dir, log)| {
                let plan = log.clean_now(&mut cleaner, i64::MAX / 4).expect("clean");
                assert!(plan.stats.messages_written < plan.stats.messages_read);
                (dir, log)
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
    eprintln!(
        "dirty log {bytes} bytes; dedupe buffer {} MiB",
        DEDUPE_BUFFER >> 20
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
