//! Recovery with damage: after a kill -9, the active segment is cut in the middle of its
//! last batch, or a byte of a batch is flipped; on restart the broker serves every batch
//! before the damage and none from it on, and appends new batches at the right offset.

use std::path::Path;

use bytes::Bytes;
use gregor_protocol::records::{Compression, Header, NewRecord, RecordBatch};

use crate::disk::{self, DiskBatch};
use crate::support::{Broker, DataDir};
use crate::wire::{self, error};

const TOPIC: &str = "damaged";

/// Batches produced before the crash.
const BATCHES: usize = 30;

fn records(n: usize) -> Vec<NewRecord> {
    let now = wire::now_ms();
    (0..1 + n % 6)
        .map(|j| {
            let mut value = format!("batch-{n}-record-{j}:").into_bytes();
            value.extend((0..(n * 53 + j * 101) % 700).map(|x| (x ^ n) as u8));
            NewRecord {
                timestamp: now + j as i64,
                key: Some(Bytes::from(format!("k{n}-{j}"))),
                value: Some(Bytes::from(value)),
                headers: vec![Header::new("n", Some(Bytes::from(n.to_string())))],
            }
        })
        .collect()
}

fn codec(n: usize) -> Compression {
    [
        Compression::None,
        Compression::Gzip,
        Compression::Lz4,
        Compression::Zstd,
        Compression::Snappy,
    ][n % 5]
}

fn same_records(batch: &RecordBatch, sent: &[NewRecord]) -> bool {
    let got: Vec<_> = batch.records().map(|r| r.expect("a record")).collect();
    got.len() == sent.len()
        && got.iter().zip(sent).all(|(g, s)| {
            g.key == s.key
                && g.value == s.value
                && g.timestamp == s.timestamp
                && g.headers == s.headers
        })
}

/// Produces [`BATCHES`] batches, kills the broker, applies `damage` to the partition
/// directory (it returns the damaged batch), restarts, and checks what is served.
fn recover_from(name: &str, damage: impl Fn(&Path) -> DiskBatch) {
    let data = DataDir::builder().build();
    let mut broker = Broker::start(&data);
    let created = wire::create_topic(&broker, TOPIC, 1, &[]);
    if let Some((code, message)) = &created {
        assert_eq!(*code, error::NONE, "CreateTopics: {message:?}");
    }
    let topic_id = wire::wait_for_topic(&broker, TOPIC, 1, created.is_none());
    let mut client = wire::connect(&broker);
    let mut sent: Vec<(i64, Vec<NewRecord>)> = Vec::new();
    for n in 0..BATCHES {
        let batch = records(n);
        // The oldest Produce versions: v3, and v7 for zstd (KIP-110).
        let version = if codec(n) == Compression::Zstd { 7 } else { 3 };
        let response = wire::produce_ok(
            &mut client,
            version,
            TOPIC,
            topic_id,
            0,
            wire::batch(&batch, codec(n)),
        );
        sent.push((response.base_offset, batch));
    }
    drop(client);
    broker.kill9();

    let dir = disk::partition_dir(data.path(), TOPIC, 0);
    let damaged = damage(&dir);
    let kept: Vec<&(i64, Vec<NewRecord>)> = sent
        .iter()
        .filter(|(base, _)| *base < damaged.base_offset)
        .collect();
    assert!(
        kept.len() < sent.len(),
        "{name}: the damaged batch at {} was not one of ours",
        damaged.base_offset
    );

    let broker = Broker::start(&data);
    let mut client = wire::connect(&broker);
    let log = wire::fetch_all(&mut client, TOPIC, 0, 0);
    assert_eq!(
        log.high_watermark,
        damaged.base_offset,
        "{name}: after recovery the log should end where the damaged batch began ({} batches \
         fetched)",
        log.batches.len()
    );
    assert_eq!(
        log.batches.len(),
        kept.len(),
        "{name}: batches served after recovery"
    );
    for (got, (base, batch)) in log.batches.iter().zip(&kept) {
        assert_eq!(
            got.base_offset(),
            *base,
            "{name}: batch offsets after recovery"
        );
        assert!(
            same_records(got, batch),
            "{name}: batch at {base} changed by recovery"
        );
    }
    assert_eq!(
        wire::list_offset_ok(&mut client, TOPIC, 0, wire::LATEST).0,
        damaged.base_offset,
        "{name}: ListOffsets latest after recovery"
    );
    let (code, ..) = wire::fetch_once(&mut client, TOPIC, 0, damaged.base_offset + 1, 1 << 20);
    assert_eq!(
        code,
        error::OFFSET_OUT_OF_RANGE,
        "{name}: Fetch past the recovered end"
    );
    disk::check_partition_dir(&dir);

    // New appends go where the damaged batch was.
    let batch = records(1000);
    let response = wire::produce_ok(
        &mut client,
        wire::PRODUCE_BY_NAME,
        TOPIC,
        topic_id,
        0,
        wire::batch(&batch, Compression::Zstd),
    );
    assert_eq!(
        response.base_offset, damaged.base_offset,
        "{name}: base offset of the first append after recovery"
    );
    let log = wire::fetch_all(&mut client, TOPIC, 0, 0);
    let last = log.batches.last().expect("a batch");
    assert_eq!(last.base_offset(), damaged.base_offset);
    assert!(
        same_records(last, &batch),
        "{name}: the new batch read back"
    );
    assert_eq!(log.high_watermark, damaged.base_offset + batch.len() as i64);
    let mut broker = broker;
    broker.stop();
    disk::check_partition_dir(&dir);
    println!(
        "{name}: damaged batch at offset {} (position {}, {} bytes); {} batches kept",
        damaged.base_offset,
        damaged.position,
        damaged.size,
        kept.len()
    );
}

#[test]
fn recovery_truncates_a_torn_last_batch() {
    recover_from("torn last batch", disk::truncate_last_batch);
}

#[test]
fn recovery_drops_a_corrupt_last_batch() {
    recover_from("corrupt last batch", |dir| disk::corrupt_batch(dir, 0));
}

#[test]
fn recovery_drops_everything_from_a_corrupt_batch_on() {
    recover_from("corrupt batch in the middle", |dir| {
        disk::corrupt_batch(dir, 12)
    });
}
