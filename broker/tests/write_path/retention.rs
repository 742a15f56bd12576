//! Retention: with a small `retention.ms` and small segments, segments whose records are
//! all older than the limit are deleted, and ListOffsets earliest and the Fetch log start
//! offset advance to the first segment left.

use std::time::{Duration, Instant};

use bytes::Bytes;
use gregor_protocol::records::{Compression, NewRecord};

use crate::disk;
use crate::support::{Broker, DataDir};
use crate::wire::{self, error};

const TOPIC: &str = "short-lived";

/// `retention.ms`: five minutes; old records are stamped an hour ago.
const RETENTION_MS: &str = "300000";

/// Kafka 4's smallest `segment.bytes` (KIP-1030).
const SEGMENT_BYTES: &str = "1048576";

fn batch(first: usize, timestamp: i64) -> (Bytes, usize) {
    let records: Vec<NewRecord> = (0..20)
        .map(|j| {
            let n = first + j;
            let mut value = format!("record-{n}:").into_bytes();
            value.extend((0..8000).map(|x| (x * 7 + n) as u8));
            NewRecord::new(
                timestamp,
                Some(Bytes::from(format!("key-{n}"))),
                Some(Bytes::from(value)),
            )
        })
        .collect();
    (wire::batch(&records, Compression::None), records.len())
}

#[test]
fn retention_deletes_old_segments_and_advances_the_log_start_offset() {
    let data = DataDir::builder().build();
    let base_props = [
        ("log.retention.check.interval.ms", "300"),
        ("log.segment.bytes", SEGMENT_BYTES),
    ];
    let broker = Broker::start_with(&data, &base_props);
    let topic_configs = [
        ("retention.ms", RETENTION_MS),
        ("segment.bytes", SEGMENT_BYTES),
    ];
    let (broker, props): (Broker, Vec<(&str, &str)>) =
        match wire::create_topic(&broker, TOPIC, 1, &topic_configs) {
            Some((code, message)) => {
                assert_eq!(
                    code,
                    error::NONE,
                    "CreateTopics with {topic_configs:?}: {message:?}"
                );
                (broker, base_props.to_vec())
            }
            None => {
                println!(
                    "note: CreateTopics not served: retention.ms comes from the broker's \
                     log.retention.ms, the topic is auto-created"
                );
                let mut broker = broker;
                broker.stop();
                let mut props = base_props.to_vec();
                props.push(("log.retention.ms", RETENTION_MS));
                (Broker::start_with(&data, &props), props)
            }
        };
    let topic_id = wire::wait_for_topic(&broker, TOPIC, 1, true);
    let mut client = wire::connect(&broker);

    // ~160 KB batches: 40 stamped an hour ago fill several 1 MiB segments, then 10
    // stamped now.
    let old = wire::now_ms() - 3_600_000;
    let mut next = 0usize;
    for _ in 0..40 {
        let (records, n) = batch(next, old);
        wire::produce_ok(
            &mut client,
            wire::PRODUCE_BY_NAME,
            TOPIC,
            topic_id,
            0,
            records,
        );
        next += n;
    }
    let first_new = next as i64;
    for _ in 0..10 {
        let (records, n) = batch(next, wire::now_ms());
        wire::produce_ok(
            &mut client,
            wire::PRODUCE_BY_NAME,
            TOPIC,
            topic_id,
            0,
            records,
        );
        next += n;
    }
    let end = next as i64;
    let dir = disk::partition_dir(data.path(), TOPIC, 0);

    // The segment holding the first new record is the first that must stay.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (earliest, keep) = loop {
        let bases = disk::segment_bases(&dir);
        let keep = *bases
            .iter()
            .rev()
            .find(|&&b| b <= first_new)
            .unwrap_or_else(|| panic!("the segment of offset {first_new} is gone: {bases:?}"));
        let (earliest, _) = wire::list_offset_ok(&mut client, TOPIC, 0, wire::EARLIEST);
        if earliest == keep && bases.first() == Some(&keep) {
            break (earliest, keep);
        }
        assert!(
            Instant::now() < deadline,
            "retention did not delete the old segments within 30 s: segments {bases:?}, \
             ListOffsets earliest {earliest}, first new record at {first_new}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(keep > 0, "no segment was old enough to delete");
    for ext in ["log", "index", "timeindex"] {
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .expect("list the partition directory")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| {
                name.ends_with(&format!(".{ext}"))
                    && name[..20].parse::<i64>().is_ok_and(|b| b < keep)
            })
            .collect();
        assert!(
            leftovers.is_empty(),
            "files of deleted segments left: {leftovers:?}"
        );
    }

    // Fetch: below the log start is out of range; from it, everything to the end, and the
    // response carries the new log start offset.
    let (code, _, _, _) = wire::fetch_once(&mut client, TOPIC, 0, 0, 1 << 20);
    assert_eq!(
        code,
        error::OFFSET_OUT_OF_RANGE,
        "Fetch at offset 0 after retention"
    );
    let log = wire::fetch_all(&mut client, TOPIC, 0, earliest);
    assert_eq!(
        log.log_start_offset, earliest,
        "Fetch log_start_offset after retention"
    );
    assert_eq!(log.high_watermark, end);
    let records = log.records();
    assert_eq!(records.first().map(|r| r.offset), Some(earliest));
    for record in &records {
        let value = record.value.as_ref().expect("a value");
        assert!(
            value.starts_with(format!("record-{}:", record.offset).as_bytes()),
            "offset {} holds {:?}",
            record.offset,
            String::from_utf8_lossy(&value[..value.len().min(20)])
        );
    }
    // By timestamp: the oldest timestamp now finds the log start.
    assert_eq!(
        wire::list_offset_ok(&mut client, TOPIC, 0, old - 1).0,
        earliest,
        "ListOffsets by a timestamp before every record"
    );
    // A produce response reports the new log start offset.
    let (records, n) = batch(next, wire::now_ms());
    let response = wire::produce_ok(
        &mut client,
        wire::PRODUCE_BY_NAME,
        TOPIC,
        topic_id,
        0,
        records,
    );
    assert_eq!(response.base_offset, end);
    assert_eq!(
        response.log_start_offset, earliest,
        "Produce log_start_offset after retention"
    );
    let end = end + n as i64;
    drop(client);

    // After a clean restart the log still starts there.
    let mut broker = broker;
    broker.stop();
    let broker = Broker::start_with(&data, &props);
    let mut client = wire::connect(&broker);
    assert_eq!(
        wire::list_offset_ok(&mut client, TOPIC, 0, wire::EARLIEST).0,
        earliest,
        "ListOffsets earliest after a restart"
    );
    let log = wire::fetch_all(&mut client, TOPIC, 0, earliest);
    assert_eq!(log.log_start_offset, earliest);
    assert_eq!(log.high_watermark, end);
    println!(
        "retention: {} of {end} records deleted in segments before {keep}",
        earliest
    );

    // DeleteRecords moves the log start offset to any offset, inside a batch too; past the
    // high watermark it is refused.
    let target = earliest + 25;
    let Some((code, low_watermark)) = wire::delete_records(&broker, TOPIC, 0, target) else {
        println!("note: the broker does not serve DeleteRecords yet");
        return;
    };
    assert_eq!(
        (code, low_watermark),
        (error::NONE, target),
        "DeleteRecords before {target}"
    );
    assert_eq!(
        wire::delete_records(&broker, TOPIC, 0, end + 1),
        Some((error::OFFSET_OUT_OF_RANGE, -1)),
        "DeleteRecords past the high watermark {end}"
    );
    assert_eq!(
        wire::list_offset_ok(&mut client, TOPIC, 0, wire::EARLIEST).0,
        target,
        "ListOffsets earliest after DeleteRecords"
    );
    let (code, ..) = wire::fetch_once(&mut client, TOPIC, 0, target - 1, 1 << 20);
    assert_eq!(
        code,
        error::OFFSET_OUT_OF_RANGE,
        "Fetch below the log start"
    );
    let log = wire::fetch_all(&mut client, TOPIC, 0, target);
    assert_eq!(
        log.log_start_offset, target,
        "Fetch log_start_offset after DeleteRecords"
    );
    assert_eq!(log.high_watermark, end);
    drop(client);
    let mut broker = broker;
    broker.stop();
    let broker = Broker::start_with(&data, &props);
    let mut client = wire::connect(&broker);
    assert_eq!(
        wire::list_offset_ok(&mut client, TOPIC, 0, wire::EARLIEST).0,
        target,
        "ListOffsets earliest after DeleteRecords and a restart"
    );
    let log = wire::fetch_all(&mut client, TOPIC, 0, target);
    assert_eq!(log.log_start_offset, target);
    assert_eq!(log.high_watermark, end);
}
