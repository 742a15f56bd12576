//! Start-up recovery. With damage: after a kill -9, the active segment is cut in the
//! middle of its last batch, ends in zeros or a garbage header, or a byte of a batch is
//! flipped; on restart the broker serves every batch before the damage and none from it
//! on, and appends new batches at the right offset; the same for the metadata log. Without
//! damage: logs that do not start at offset 0 are served and continued.

use std::path::Path;

use bytes::Bytes;
use gregor_protocol::Uuid;
use gregor_protocol::messages::describe_topic_partitions_request::{
    DescribeTopicPartitionsRequest, TopicRequest,
};
use gregor_protocol::records::{Batch, Compression, Header, NewRecord, RecordBatch, RecordBatches};

use crate::disk::{self, DiskBatch};
use crate::support::{Broker, DataDir, TopicSpec};
use crate::wire::{self, error};

const TOPIC: &str = "damaged";

/// Batches produced before the crash.
const BATCHES: usize = 30;

/// The records of batch `n`: 1 to 6, stamped `base_ts + 10 n + j` (later batches later).
fn records(base_ts: i64, n: usize) -> Vec<NewRecord> {
    (0..1 + n % 6)
        .map(|j| {
            let mut value = format!("batch-{n}-record-{j}:").into_bytes();
            value.extend((0..(n * 53 + j * 101) % 700).map(|x| (x ^ n) as u8));
            NewRecord {
                timestamp: base_ts + 10 * n as i64 + j as i64,
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
    let base_ts = wire::now_ms() - 3_600_000;
    for n in 0..BATCHES {
        let batch = records(base_ts, n);
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
    let end = sent
        .last()
        .map_or(0, |(base, batch)| base + batch.len() as i64);
    assert!(
        kept.len() < sent.len() || damaged.base_offset == end,
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
    // Timestamps: the largest is the last record kept, and nothing is found at or after
    // the first timestamp of the damaged batch.
    let (last_base, last_batch) = kept.last().expect("a batch kept");
    let last = last_batch.last().expect("a record");
    assert_eq!(
        wire::list_offset_ok(&mut client, TOPIC, 0, wire::MAX_TIMESTAMP),
        (*last_base + last_batch.len() as i64 - 1, last.timestamp),
        "{name}: ListOffsets max timestamp after recovery"
    );
    if let Some(damaged_n) = sent
        .iter()
        .position(|(base, _)| *base == damaged.base_offset)
    {
        assert_eq!(
            wire::list_offset_ok(&mut client, TOPIC, 0, base_ts + 10 * damaged_n as i64),
            (-1, -1),
            "{name}: ListOffsets for the damaged batch's timestamp after recovery"
        );
    }
    let (code, ..) = wire::fetch_once(&mut client, TOPIC, 0, damaged.base_offset + 1, 1 << 20);
    assert_eq!(
        code,
        error::OFFSET_OUT_OF_RANGE,
        "{name}: Fetch past the recovered end"
    );
    disk::check_partition_dir(&dir);

    // New appends go where the damaged batch was.
    let batch = records(base_ts, 1000);
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

/// Appends `bytes` to the active segment; returns a pseudo batch for them (at the end).
fn append_to_active(dir: &Path, bytes: &[u8]) -> DiskBatch {
    use std::io::Write as _;
    let base = *disk::segment_bases(dir).last().expect("a segment");
    let last = *disk::read_segment(dir, base).last().expect("a batch");
    let path = disk::segment_file(dir, base, "log");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open the segment");
    file.write_all(bytes).expect("append to the segment");
    DiskBatch {
        position: last.position + last.size,
        size: bytes.len() as u64,
        base_offset: last.last_offset + 1,
        last_offset: last.last_offset,
        max_timestamp: -1,
    }
}

#[test]
fn recovery_drops_a_partial_batch_header_at_the_end() {
    // The first 7 bytes of a batch header: the base offset, cut short.
    recover_from("partial header at the end", |dir| {
        append_to_active(dir, &[0, 0, 0, 0, 0, 0, 0x01])
    });
}

#[test]
fn recovery_drops_zeros_after_the_last_batch() {
    // What a file system can leave after a crash: the file extended with zeros.
    recover_from("zeros after the last batch", |dir| {
        append_to_active(dir, &[0; 4096])
    });
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

/// A corrupt batch in the first of several segments: Kafka recovers every segment from
/// the recovery point on, truncates at the first corrupt batch and deletes the segments
/// after it (`LogLoader.recoverLog`).
#[test]
fn recovery_truncates_at_a_corrupt_batch_in_an_older_segment() {
    let data = DataDir::builder().build();
    let props = [("log.segment.bytes", "1048576")];
    let mut broker = Broker::start_with(&data, &props);
    let created = wire::create_topic(&broker, TOPIC, 1, &[]);
    if let Some((code, message)) = &created {
        assert_eq!(*code, error::NONE, "CreateTopics: {message:?}");
    }
    let topic_id = wire::wait_for_topic(&broker, TOPIC, 1, created.is_none());
    let mut client = wire::connect(&broker);
    let mut sent: Vec<(i64, Vec<NewRecord>)> = Vec::new();
    let base_ts = wire::now_ms() - 3_600_000;
    // ~100 KB batches: about ten per 1 MiB segment, three segments or more.
    for n in 0..32 {
        let batch: Vec<NewRecord> = (0..10)
            .map(|j| {
                let mut value = format!("batch-{n}-record-{j}:").into_bytes();
                value.extend((0..10_000).map(|x| (x * 13 + n + j) as u8));
                NewRecord::new(
                    base_ts + 10 * n as i64 + j as i64,
                    Some(Bytes::from(format!("k{n}-{j}"))),
                    Some(Bytes::from(value)),
                )
            })
            .collect();
        let response = wire::produce_ok(
            &mut client,
            wire::PRODUCE_BY_NAME,
            TOPIC,
            topic_id,
            0,
            wire::batch(&batch, Compression::None),
        );
        sent.push((response.base_offset, batch));
    }
    drop(client);
    broker.kill9();
    assert!(
        !data.path().join(disk::CLEAN_SHUTDOWN_MARKER).exists(),
        "a clean shutdown marker after kill -9"
    );

    let dir = disk::partition_dir(data.path(), TOPIC, 0);
    let bases = disk::segment_bases(&dir);
    assert!(bases.len() >= 3, "segments: {bases:?}");
    let damaged = disk::corrupt_batch_in(&dir, bases[0], 4);
    let recovery_point =
        disk::checkpoint_offset(data.path(), "recovery-point-offset-checkpoint", TOPIC, 0);
    if recovery_point.is_some_and(|rp| rp > damaged.last_offset) {
        // Kafka does not look at segments wholly below the recovery point.
        println!(
            "note: the recovery point {recovery_point:?} covers the damaged batch at {}: \
             nothing to check",
            damaged.base_offset
        );
        return;
    }

    let broker = Broker::start_with(&data, &props);
    let mut client = wire::connect(&broker);
    let log = wire::fetch_all(&mut client, TOPIC, 0, 0);
    assert_eq!(
        log.high_watermark, damaged.base_offset,
        "the log should end where the corrupt batch of the first segment began (recovery \
         point {recovery_point:?})"
    );
    let kept: Vec<_> = sent
        .iter()
        .filter(|(base, _)| *base < damaged.base_offset)
        .collect();
    assert_eq!(log.batches.len(), kept.len());
    for (got, (base, batch)) in log.batches.iter().zip(&kept) {
        assert_eq!(got.base_offset(), *base);
        assert!(
            same_records(got, batch),
            "batch at {base} changed by recovery"
        );
    }
    assert_eq!(
        disk::segment_bases(&dir),
        vec![bases[0]],
        "the segments after the corrupt batch should be deleted"
    );
    disk::check_partition_dir(&dir);
    let batch = records(base_ts, 2000);
    let response = wire::produce_ok(
        &mut client,
        wire::PRODUCE_BY_NAME,
        TOPIC,
        topic_id,
        0,
        wire::batch(&batch, Compression::Lz4),
    );
    assert_eq!(response.base_offset, damaged.base_offset);
    let mut broker = broker;
    broker.stop();
    assert!(
        data.path().join(disk::CLEAN_SHUTDOWN_MARKER).exists(),
        "no clean shutdown marker after a clean stop"
    );
    disk::check_partition_dir(&dir);
}

/// After a clean stop, the index files of older segments are lost or damaged (an operator,
/// a backup tool): the broker rebuilds them at start-up (Kafka rebuilds a missing index and
/// one that fails its sanity check) and answers ListOffsets by timestamp correctly.
#[test]
fn damaged_index_files_are_rebuilt_after_a_clean_stop() {
    let data = DataDir::builder().build();
    let props = [("log.segment.bytes", "1048576")];
    let mut broker = Broker::start_with(&data, &props);
    let created = wire::create_topic(&broker, TOPIC, 1, &[]);
    if let Some((code, message)) = &created {
        assert_eq!(*code, error::NONE, "CreateTopics: {message:?}");
    }
    let topic_id = wire::wait_for_topic(&broker, TOPIC, 1, created.is_none());
    let mut client = wire::connect(&broker);
    let base_ts = wire::now_ms() - 3_600_000;
    let mut firsts = Vec::new();
    for n in 0..36 {
        let batch: Vec<NewRecord> = (0..10)
            .map(|j| {
                let mut value = format!("batch-{n}-record-{j}:").into_bytes();
                value.extend((0..10_000).map(|x| (x * 13 + n + j) as u8));
                NewRecord::new(
                    base_ts + 100 * n as i64 + j as i64,
                    Some(Bytes::from(format!("k{n}-{j}"))),
                    Some(Bytes::from(value)),
                )
            })
            .collect();
        let response = wire::produce_ok(
            &mut client,
            wire::PRODUCE_BY_NAME,
            TOPIC,
            topic_id,
            0,
            wire::batch(&batch, Compression::None),
        );
        firsts.push((response.base_offset, base_ts + 100 * n as i64));
    }
    drop(client);
    broker.stop();
    let dir = disk::partition_dir(data.path(), TOPIC, 0);
    let bases = disk::segment_bases(&dir);
    assert!(bases.len() >= 3, "segments: {bases:?}");
    // Segment 0: no index files at all.
    std::fs::remove_file(disk::segment_file(&dir, bases[0], "index")).expect("remove .index");
    std::fs::remove_file(disk::segment_file(&dir, bases[0], "timeindex"))
        .expect("remove .timeindex");
    // Segment 1: an offset index entry pointing past the file, a time index entry claiming
    // a far-future timestamp at the segment's first offset.
    let index = disk::segment_file(&dir, bases[1], "index");
    let mut bytes = std::fs::read(&index).expect("read .index");
    bytes.extend_from_slice(&500i32.to_be_bytes());
    bytes.extend_from_slice(&50_000_000u32.to_be_bytes());
    std::fs::write(&index, bytes).expect("write .index");
    let timeindex = disk::segment_file(&dir, bases[1], "timeindex");
    let mut bogus = (base_ts + 1_000_000_000).to_be_bytes().to_vec();
    bogus.extend_from_slice(&0i32.to_be_bytes());
    std::fs::write(&timeindex, bogus).expect("write .timeindex");

    let broker = Broker::start_with(&data, &props);
    let mut client = wire::connect(&broker);
    for &(offset, ts) in &firsts {
        assert_eq!(
            wire::list_offset_ok(&mut client, TOPIC, 0, ts),
            (offset, ts),
            "ListOffsets for timestamp {ts} after the index files were damaged"
        );
    }
    let (last_offset, last_ts) = *firsts.last().expect("a batch");
    assert_eq!(
        wire::list_offset_ok(&mut client, TOPIC, 0, wire::MAX_TIMESTAMP),
        (last_offset + 9, last_ts + 9),
        "ListOffsets max timestamp after the index files were damaged"
    );
    let log = wire::fetch_all(&mut client, TOPIC, 0, 0);
    assert_eq!(log.high_watermark, last_offset + 10);
    disk::check_partition_dir(&dir);
    drop(client);
    let mut broker = broker;
    broker.stop();
    disk::check_partition_dir(&dir);
}

/// Reads the ids and partition counts DescribeTopicPartitions v0 gives for `topics`.
fn describe_topics(broker: &Broker, topics: &[&str]) -> Vec<(String, i16, Uuid, usize)> {
    let request = DescribeTopicPartitionsRequest {
        topics: topics
            .iter()
            .map(|name| TopicRequest {
                name: (*name).into(),
                ..Default::default()
            })
            .collect(),
        response_partition_limit: 2000,
        ..Default::default()
    };
    let response = wire::connect(broker)
        .call(&request, 0)
        .expect("DescribeTopicPartitions v0");
    response
        .topics
        .iter()
        .map(|t| {
            (
                t.name.as_deref().unwrap_or_default().to_string(),
                t.error_code,
                t.topic_id,
                t.partitions.len(),
            )
        })
        .collect()
}

/// The base offsets of the metadata log's batches, over all its segments.
fn metadata_log_offsets(data: &Path) -> Vec<(i64, i64)> {
    let dir = data.join("__cluster_metadata-0");
    disk::segment_bases(&dir)
        .into_iter()
        .flat_map(|base| disk::read_segment(&dir, base))
        .map(|b| (b.base_offset, b.last_offset))
        .collect()
}

/// The layout the "Build your own Kafka" course writes, which real Kafka 4.0 serves: a
/// metadata log whose first batch is at offset 1 (in `00000000000000000000.log`), and
/// partition logs whose first batch is past 0 (a segment named 0 starting at offset 1, as
/// compaction leaves it; a segment named 40 after retention). Kafka's log start offset is
/// the base offset of the first segment (`LogLoader`); only gaps and overlaps *between*
/// batches of the metadata log are errors.
#[test]
fn logs_that_do_not_start_at_offset_zero_are_served() {
    let data = DataDir::builder()
        .metadata_first_offset(1)
        .topic(
            TopicSpec::new("compacted", 2)
                .records(30)
                .batch_records(7)
                .first_offset(1),
        )
        .topic(
            TopicSpec::new("retained", 1)
                .records(25)
                .batch_records(5)
                .segment_batches(2)
                .first_offset(40)
                .first_segment_base(40),
        )
        .build();
    assert_eq!(metadata_log_offsets(data.path())[0].0, 1);
    let mut broker = Broker::start(&data);

    let versions = crate::support::api_versions(broker.addr()).expect("ApiVersions");
    assert_eq!(versions.error_code, error::NONE, "ApiVersions");
    assert!(!versions.api_keys.is_empty(), "ApiVersions lists the APIs");

    let described = describe_topics(&broker, &["compacted", "retained"]);
    let expected: Vec<_> = ["compacted", "retained"]
        .iter()
        .map(|name| {
            let topic = data.topic(name);
            (
                name.to_string(),
                error::NONE,
                topic.id,
                topic.partitions.len(),
            )
        })
        .collect();
    assert_eq!(described, expected, "DescribeTopicPartitions");

    let mut client = wire::connect(&broker);
    for topic in &data.topics {
        for partition in &topic.partitions {
            let at = format!("{}-{}", topic.name, partition.index);
            let start = partition.log_start_offset();
            let end = partition.end_offset();
            assert_eq!(
                wire::list_offset_ok(&mut client, &topic.name, partition.index, wire::EARLIEST).0,
                start,
                "{at}: ListOffsets earliest is the first segment's base offset"
            );
            assert_eq!(
                wire::list_offset_ok(&mut client, &topic.name, partition.index, wire::LATEST).0,
                end,
                "{at}: ListOffsets latest"
            );
            // Fetch at the log start offset gets the first batch, past it (Kafka serves
            // the first batch at or after the fetch offset).
            let (code, _, log_start, records) =
                wire::fetch_once(&mut client, &topic.name, partition.index, start, 1 << 20);
            assert_eq!(code, error::NONE, "{at}: Fetch at the log start offset");
            assert_eq!(log_start, start, "{at}: Fetch log start offset");
            let Some(Ok(Batch::V2(first))) = RecordBatches::new(records).next() else {
                panic!("{at}: no v2 batch fetched at the log start offset");
            };
            assert_eq!(
                first.base_offset(),
                partition.first_offset,
                "{at}: first batch fetched"
            );
            let log = wire::fetch_all(
                &mut client,
                &topic.name,
                partition.index,
                partition.first_offset,
            );
            assert_eq!(log.log_start_offset, start, "{at}: Fetch log start offset");
            assert_eq!(log.high_watermark, end, "{at}: Fetch high watermark");
            let records = log.records();
            assert_eq!(records.len(), partition.records.len(), "{at}: records");
            for (got, written) in records.iter().zip(&partition.records) {
                assert_eq!(
                    (got.offset, &got.key, &got.value),
                    (written.offset, &written.key, &written.value),
                    "{at}: record"
                );
            }
            if start > 0 {
                let (code, ..) = wire::fetch_once(
                    &mut client,
                    &topic.name,
                    partition.index,
                    start - 1,
                    1 << 20,
                );
                assert_eq!(
                    code,
                    error::OFFSET_OUT_OF_RANGE,
                    "{at}: Fetch below the log start"
                );
            }
            let batch = records_for(&at);
            let response = wire::produce_ok(
                &mut client,
                wire::PRODUCE_BY_NAME,
                &topic.name,
                topic.id,
                partition.index,
                wire::batch(&batch, Compression::Lz4),
            );
            assert_eq!(response.base_offset, end, "{at}: Produce base offset");
        }
    }

    // The metadata log's appender continues after the last batch: a new topic survives a
    // restart, and the log on disk has no gap.
    let created = wire::create_topic(&broker, "after", 1, &[]);
    if let Some((code, message)) = &created {
        assert_eq!(*code, error::NONE, "CreateTopics: {message:?}");
    }
    let after_id = wire::wait_for_topic(&broker, "after", 1, created.is_none());
    drop(client);
    broker.stop();
    let offsets = metadata_log_offsets(data.path());
    let fixture_end = *data.metadata_batches.last().expect("batches");
    assert_eq!(offsets[0].0, 1, "the metadata log still starts at offset 1");
    for pair in offsets.windows(2) {
        assert_eq!(
            pair[1].0,
            pair[0].1 + 1,
            "metadata log batches follow each other: {offsets:?}"
        );
    }
    assert!(
        offsets.iter().any(|(base, _)| *base == fixture_end),
        "the first batch appended is at the fixture's end offset {fixture_end}: {offsets:?}"
    );

    let broker = Broker::start(&data);
    let described = describe_topics(&broker, &["compacted", "retained", "after"]);
    // Topics come sorted by name.
    assert_eq!(
        described[0],
        ("after".to_string(), error::NONE, after_id, 1),
        "the topic created on the course's log, after a restart"
    );
    assert_eq!(
        described[1..],
        expected[..],
        "DescribeTopicPartitions after a restart"
    );
    let mut client = wire::connect(&broker);
    for topic in &data.topics {
        for partition in &topic.partitions {
            let log = wire::fetch_all(
                &mut client,
                &topic.name,
                partition.index,
                partition.first_offset,
            );
            assert_eq!(log.high_watermark, partition.end_offset() + 3);
        }
    }
}

/// Three records tagged with `tag`.
fn records_for(tag: &str) -> Vec<NewRecord> {
    (0..3)
        .map(|i| {
            NewRecord::new(
                wire::now_ms(),
                Some(Bytes::from(format!("{tag}-{i}"))),
                Some(Bytes::from(format!("produced after start-up {i}"))),
            )
        })
        .collect()
}

#[test]
fn recovery_drops_a_garbage_header_at_the_end() {
    // A header that is not one: a wrong magic byte and a length past the end of the file.
    let mut header = vec![0u8; 61];
    header[..8].copy_from_slice(&77i64.to_be_bytes());
    header[8..12].copy_from_slice(&0x7f00_0000i32.to_be_bytes());
    header[16] = 0xc3;
    recover_from("garbage header at the end", |dir| {
        append_to_active(dir, &header)
    });
}

/// kill -9 in the middle of a metadata log append leaves bytes that are not a batch at the
/// end of its last segment: the broker starts (Kafka's `LogSegment.recover` truncates at
/// the first invalid batch, and Kafka recovers the metadata log at every start), says what
/// it dropped at WARN, keeps every batch before it and appends after it.
#[test]
fn a_garbage_tail_of_the_metadata_log_is_truncated_after_kill9() {
    let mut wrong_magic = vec![0u8; 40];
    wrong_magic[..8].copy_from_slice(&1_000i64.to_be_bytes());
    wrong_magic[8..12].copy_from_slice(&500i32.to_be_bytes());
    wrong_magic[16] = 0x7b;
    let mut past_the_end = wrong_magic.clone();
    past_the_end[8..12].copy_from_slice(&0x4000_0000i32.to_be_bytes());
    past_the_end[16] = 2;
    for (what, garbage) in [
        ("a wrong magic byte", wrong_magic),
        ("a length past the end of the file", past_the_end),
    ] {
        let data = DataDir::builder()
            .topic(TopicSpec::new("before", 2).records(10))
            .build();
        let mut broker = Broker::start(&data);
        let created = wire::create_topic(&broker, "acked", 1, &[]);
        let Some((code, message)) = created else {
            println!("note: CreateTopics is not served: nothing to check");
            return;
        };
        assert_eq!(code, error::NONE, "CreateTopics: {message:?}");
        let acked_id = wire::wait_for_topic(&broker, "acked", 1, false);
        broker.kill9();

        let dir = data.path().join("__cluster_metadata-0");
        let base = *disk::segment_bases(&dir)
            .last()
            .expect("a metadata segment");
        let segment = disk::segment_file(&dir, base, "log");
        let good = metadata_log_offsets(data.path());
        let good_len = std::fs::metadata(&segment).expect("the segment").len();
        {
            use std::io::Write as _;
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&segment)
                .expect("open the metadata segment");
            file.write_all(&garbage).expect("append garbage");
        }

        let mut broker = Broker::start(&data);
        let line = broker
            .wait_for_log(
                "truncated the damaged tail of the metadata log",
                METADATA_LOG_WAIT,
            )
            .unwrap_or_else(|| {
                panic!(
                    "{what}: no WARN about the truncation\n{}",
                    broker.log_text()
                )
            });
        assert!(line.contains("WARN"), "{what}: {line}");
        assert!(
            line.contains(&format!("position={good_len}"))
                && line.contains(&format!("dropped_bytes={}", garbage.len())),
            "{what}: the log line names the position and the bytes dropped: {line}"
        );
        let described = describe_topics(&broker, &["acked", "before"]);
        assert_eq!(
            described,
            vec![
                ("acked".to_string(), error::NONE, acked_id, 1),
                (
                    "before".to_string(),
                    error::NONE,
                    data.topic("before").id,
                    2
                ),
            ],
            "{what}: the topics after recovery"
        );
        let created = wire::create_topic(&broker, "later", 3, &[]);
        assert_eq!(
            created.map(|c| c.0),
            Some(error::NONE),
            "{what}: CreateTopics"
        );
        let later_id = wire::wait_for_topic(&broker, "later", 3, false);
        broker.stop();

        let offsets = metadata_log_offsets(data.path());
        assert_eq!(
            offsets[..good.len()],
            good[..],
            "{what}: every batch before the garbage is kept"
        );
        for pair in offsets.windows(2) {
            assert_eq!(pair[1].0, pair[0].1 + 1, "{what}: no gap: {offsets:?}");
        }
        let broker = Broker::start(&data);
        let described = describe_topics(&broker, &["acked", "later"]);
        assert_eq!(
            described,
            vec![
                ("acked".to_string(), error::NONE, acked_id, 1),
                ("later".to_string(), error::NONE, later_id, 3),
            ],
            "{what}: the topics after a second restart"
        );
    }
}

/// How long to wait for the broker's log line about the metadata log.
const METADATA_LOG_WAIT: std::time::Duration = std::time::Duration::from_secs(30);
