//! Fetch (key 1) at v4 (by name, not flexible), v11, v12 (first flexible), v13 (by topic
//! id), v16, v17 and v18: reading every record of a multi-segment, multi-partition topic,
//! batches containing the fetch offset, byte limits (the broker's `fetch.max.bytes` too) and
//! KIP-74, a partition named twice, empty partitions, offsets, errors, isolation levels,
//! long polling and full requests naming sessions. Compared with
//! KafkaApis.handleFetchRequest, ReplicaManager.readFromLog and FetchManager.newContext.

use std::fs;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gregor_protocol::messages::fetch_request::{FetchRequest, FetchTopic};
use gregor_protocol::messages::fetch_response::{FetchResponse, PartitionData};
use gregor_protocol::records::{Compression, NewRecord};
use gregor_protocol::{Encodable, Uuid};

use crate::support::{Broker, DataDir, RawClient, TopicSpec, WrittenTopic, random_uuid};
use crate::{
    FetchedBatch, assert_same_record, connect, decode_frame, error, fetch_partition, fetch_request,
    fetch_topic, fetched_batches,
};

/// The versions tested.
const VERSIONS: &[i16] = &[4, 11, 12, 13, 16, 17, 18];

/// Size of each value of topic `big` (one record per batch).
const BIG_VALUE: usize = 40_000;

/// `records`: 3 partitions of 1000, 600 and 450 records in batches of 50, over many 16 KiB
/// segments; partition 0 uncompressed, 1 lz4, 2 zstd, gzip, snappy and none in turn.
/// `empty`: one partition without records. `big`: 2 partitions of 6 records of 40 KB, one
/// record a batch.
fn fixture() -> DataDir {
    let data = DataDir::builder()
        .topic(
            TopicSpec::new("records", 3)
                .partition_records(0, 1000)
                .partition_records(1, 600)
                .partition_records(2, 450)
                .batch_records(50)
                .segment_bytes(16 * 1024)
                .partition_compression(1, &[Compression::Lz4])
                .partition_compression(
                    2,
                    &[
                        Compression::Zstd,
                        Compression::Gzip,
                        Compression::Snappy,
                        Compression::None,
                    ],
                ),
        )
        .topic(TopicSpec::new("empty", 1))
        .topic(
            TopicSpec::new("big", 2)
                .records(6)
                .batch_records(1)
                .generator(big_record),
        )
        .build();
    for p in &data.topic("records").partitions {
        assert!(
            p.segments.len() >= 3,
            "partition {}: {:?}",
            p.index,
            p.segments
        );
    }
    data
}

fn big_record(partition: i32, i: usize) -> NewRecord {
    let mut state = (partition as u64) << 32 | i as u64;
    let value: Vec<u8> = (0..BIG_VALUE)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            b'a' + (state >> 59) as u8 % 26
        })
        .collect();
    NewRecord::new(
        1_735_689_600_000 + i as i64,
        Some(Bytes::from(format!("big-{partition}-{i}"))),
        Some(Bytes::from(value)),
    )
}

/// Sends `request` at `version` and returns the response.
fn call(client: &mut RawClient, request: &FetchRequest, version: i16) -> FetchResponse {
    let response = client
        .call(request, version)
        .unwrap_or_else(|e| panic!("Fetch v{version}: {e}"));
    assert_eq!(response.throttle_time_ms, 0, "v{version}");
    if version >= 16 {
        assert!(
            response.node_endpoints.is_empty(),
            "v{version}: node endpoints"
        );
    }
    response
}

/// The partition `partition` of topic `topic` in `response`, checking how the topic is named
/// at `version` (by name before v13, by id from v13).
fn partition_of<'a>(
    response: &'a FetchResponse,
    version: i16,
    topic: &WrittenTopic,
    partition: i32,
) -> &'a PartitionData {
    let mut found = None;
    for t in &response.responses {
        let matches = if version >= 13 {
            assert_eq!(&*t.topic, "", "v{version}: topics are named by id");
            t.topic_id == topic.id
        } else {
            assert_eq!(
                t.topic_id,
                Uuid::nil(),
                "v{version}: no topic ids before v13"
            );
            *t.topic == *topic.name
        };
        if matches {
            for p in t
                .partitions
                .iter()
                .filter(|p| p.partition_index == partition)
            {
                assert!(
                    found.is_none(),
                    "v{version}: {}-{partition} twice",
                    topic.name
                );
                found = Some(p);
            }
        }
    }
    found.unwrap_or_else(|| {
        panic!(
            "v{version}: {}-{partition} missing from {:?}",
            topic.name, response.responses
        )
    })
}

/// Checks the offsets of a successful partition read against the fixture.
fn check_offsets(version: i16, topic: &WrittenTopic, p: &PartitionData) {
    let at = format!("v{version} {}-{}", topic.name, p.partition_index);
    assert_eq!(p.error_code, error::NONE, "{at}");
    let end = topic.partitions[p.partition_index as usize].end_offset();
    assert_eq!(p.high_watermark, end, "{at}: high watermark");
    assert_eq!(
        p.last_stable_offset, end,
        "{at}: last stable offset (no transactions)"
    );
    if version >= 5 {
        assert_eq!(p.log_start_offset, 0, "{at}: log start offset");
    }
    if version >= 11 {
        assert_eq!(p.preferred_read_replica, -1, "{at}: preferred read replica");
    }
    // READ_UNCOMMITTED: Kafka leaves aborted_transactions null.
    assert_eq!(p.aborted_transactions, None, "{at}: aborted transactions");
    assert!(p.records.is_some(), "{at}: records must never be null");
}

/// The batches of a successful partition read.
fn batches(p: &PartitionData) -> Vec<FetchedBatch> {
    fetched_batches(p.records.as_ref().expect("non-null records"))
}

#[test]
fn every_record_of_every_partition_at_every_version() {
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let topic = data.topic("records");
    for &version in VERSIONS {
        let mut next: Vec<i64> = vec![0; topic.partitions.len()];
        let mut read: Vec<Vec<gregor_protocol::records::Record>> = vec![Vec::new(); next.len()];
        let mut rounds = 0;
        while next
            .iter()
            .zip(&topic.partitions)
            .any(|(n, p)| *n < p.end_offset())
        {
            rounds += 1;
            assert!(rounds < 500, "v{version}: no progress at {next:?}");
            let partitions = next
                .iter()
                .enumerate()
                .map(|(i, offset)| fetch_partition(i as i32, *offset, 24 * 1024))
                .collect();
            let mut request = fetch_request(vec![fetch_topic(topic, partitions)]);
            request.max_bytes = 48 * 1024;
            let response = call(&mut client, &request, version);
            assert_eq!(response.error_code, error::NONE, "v{version}");
            assert_eq!(response.session_id, 0, "v{version}: sessionless");
            for (i, offset) in next.iter_mut().enumerate() {
                let p = partition_of(&response, version, topic, i as i32);
                check_offsets(version, topic, p);
                let batches = batches(p);
                if *offset == p.high_watermark {
                    assert!(
                        batches.is_empty(),
                        "v{version}: data past the high watermark"
                    );
                }
                for (n, batch) in batches.iter().enumerate() {
                    if n == 0 {
                        assert!(
                            batch.base_offset <= *offset && *offset <= batch.last_offset,
                            "v{version} p{i}: first batch {}..={} does not contain {offset}",
                            batch.base_offset,
                            batch.last_offset
                        );
                    }
                    for record in &batch.records {
                        if record.offset >= *offset {
                            assert_eq!(record.offset, *offset, "v{version} p{i}: a gap");
                            read[i].push(record.clone());
                            *offset += 1;
                        }
                    }
                }
            }
        }
        for (i, p) in topic.partitions.iter().enumerate() {
            assert_eq!(read[i].len(), p.records.len(), "v{version} p{i}");
            for (record, written) in read[i].iter().zip(&p.records) {
                assert_same_record(record, written, &format!("v{version} records-{i}"));
            }
        }
        // The byte limits made the reads span several requests (about 150 KB per partition).
        assert!(rounds >= 5, "v{version}: only {rounds} rounds");
    }
}

#[test]
fn an_offset_inside_a_batch_returns_the_whole_batch() {
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let topic = data.topic("records");
    for &version in &[4, 12, 13, 18] {
        for (partition, offset) in [(0, 75), (0, 999), (1, 51), (2, 449), (2, 120)] {
            let request = fetch_request(vec![fetch_topic(
                topic,
                vec![fetch_partition(partition, offset, 1 << 20)],
            )]);
            let response = call(&mut client, &request, version);
            let p = partition_of(&response, version, topic, partition);
            check_offsets(version, topic, p);
            let batches = batches(p);
            let first = batches.first().expect("a batch");
            // Batches of 50 records: the one holding `offset` starts at its multiple of 50.
            let base = offset / 50 * 50;
            assert_eq!(
                (first.base_offset, first.last_offset),
                (
                    base,
                    (base + 49).min(topic.partitions[partition as usize].end_offset() - 1)
                ),
                "v{version} p{partition} at {offset}"
            );
            let written = &topic.partitions[partition as usize].records;
            for (record, written) in first.records.iter().zip(&written[base as usize..]) {
                assert_same_record(record, written, &format!("v{version} p{partition}"));
            }
        }
    }
}

#[test]
fn partition_max_bytes_and_max_bytes_are_respected() {
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let topic = data.topic("records");
    for &version in &[4, 12, 13, 18] {
        // partition_max_bytes: at most that much from each partition, whole batches.
        for limit in [9_000, 20_000, 40_000] {
            let partitions = (0..3).map(|i| fetch_partition(i, 0, limit)).collect();
            let response = call(
                &mut client,
                &fetch_request(vec![fetch_topic(topic, partitions)]),
                version,
            );
            for i in 0..3 {
                let p = partition_of(&response, version, topic, i);
                check_offsets(version, topic, p);
                let records = p.records.as_ref().unwrap();
                assert!(
                    records.len() <= limit as usize,
                    "v{version} p{i}: {} bytes above partition_max_bytes {limit}",
                    records.len()
                );
                let batches = batches(p);
                assert!(
                    !batches.is_empty(),
                    "v{version} p{i}: nothing within {limit} bytes"
                );
                assert_eq!(batches[0].base_offset, 0);
            }
        }
        // max_bytes: at most that much in all.
        for max_bytes in [10_000, 30_000] {
            let partitions = (0..3).map(|i| fetch_partition(i, 0, 1 << 20)).collect();
            let mut request = fetch_request(vec![fetch_topic(topic, partitions)]);
            request.max_bytes = max_bytes;
            let response = call(&mut client, &request, version);
            let mut total = 0;
            for i in 0..3 {
                let p = partition_of(&response, version, topic, i);
                check_offsets(version, topic, p);
                let batches = batches(p);
                if let Some(first) = batches.first() {
                    assert_eq!(first.base_offset, 0);
                }
                total += p.records.as_ref().unwrap().len();
            }
            assert!(
                total > 0,
                "v{version}: nothing within max_bytes {max_bytes}"
            );
            assert!(
                total <= max_bytes as usize,
                "v{version}: {total} bytes above max_bytes {max_bytes}"
            );
        }
    }
}

#[test]
fn kip_74_the_first_batch_comes_whole_even_when_larger_than_the_limits() {
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let big = data.topic("big");
    for &version in VERSIONS {
        // Both limits far below one batch: the first partition with data gets its first batch
        // whole, and nothing more; the next partition gets nothing (ReplicaManager.readFromLog
        // stops ignoring the limits once a partition returned data).
        for (partition_max_bytes, max_bytes) in
            [(100, 64 << 20), (1 << 20, 100), (100, 100), (0, 0)]
        {
            let request = FetchRequest {
                max_bytes,
                ..fetch_request(vec![fetch_topic(
                    big,
                    vec![
                        fetch_partition(0, 2, partition_max_bytes),
                        fetch_partition(1, 0, partition_max_bytes),
                    ],
                )])
            };
            let response = call(&mut client, &request, version);
            let at = format!(
                "v{version} partition_max_bytes {partition_max_bytes} max_bytes {max_bytes}"
            );
            let p0 = partition_of(&response, version, big, 0);
            check_offsets(version, big, p0);
            let batches0 = batches(p0);
            assert_eq!(
                batches0.len(),
                1,
                "{at}: partition 0 gets exactly one batch"
            );
            assert_eq!(batches0[0].base_offset, 2, "{at}");
            assert!(batches0[0].size > BIG_VALUE, "{at}");
            assert_same_record(&batches0[0].records[0], &big.partitions[0].records[2], &at);
            let p1 = partition_of(&response, version, big, 1);
            check_offsets(version, big, p1);
            assert_eq!(
                p1.records.as_ref().map(Bytes::len),
                Some(0),
                "{at}: partition 1 must get nothing once partition 0 returned data"
            );
        }
        // When the first partition has nothing (at its high watermark), the first batch of the
        // next one comes whole.
        let request = fetch_request(vec![fetch_topic(
            big,
            vec![fetch_partition(0, 6, 100), fetch_partition(1, 5, 100)],
        )]);
        let response = call(&mut client, &request, version);
        let p0 = partition_of(&response, version, big, 0);
        check_offsets(version, big, p0);
        assert_eq!(p0.records.as_ref().map(Bytes::len), Some(0), "v{version}");
        let p1 = partition_of(&response, version, big, 1);
        check_offsets(version, big, p1);
        let batches1 = batches(p1);
        assert_eq!(batches1.len(), 1, "v{version}");
        assert_eq!(batches1[0].base_offset, 5, "v{version}");
    }
}

/// The raw response frame (without size prefix) to `request`, and its decoded body.
fn raw_call(
    client: &mut RawClient,
    request: &FetchRequest,
    version: i16,
) -> (Bytes, FetchResponse) {
    let (pending, frame) = client.encode(request, version);
    client.send_raw(&frame).unwrap();
    let raw = client.read_frame().unwrap();
    let body = decode_frame::<FetchRequest>(raw.clone(), pending);
    (raw, body)
}

#[test]
fn an_empty_partition_returns_zero_length_records_never_null() {
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let empty = data.topic("empty");
    let records = data.topic("records");
    for &version in VERSIONS {
        for (topic, offset) in [(empty, 0), (records, 1000)] {
            let request = fetch_request(vec![fetch_topic(
                topic,
                vec![fetch_partition(0, offset, 1 << 20)],
            )]);
            let (raw, response) = raw_call(&mut client, &request, version);
            let p = partition_of(&response, version, topic, 0);
            check_offsets(version, topic, p);
            assert_eq!(
                p.records.as_ref().map(Bytes::len),
                Some(0),
                "v{version} {}",
                topic.name
            );
            // One topic, one partition: `records` is the last field. Before v12 an int32
            // length, 0 (null would be -1); from v12 a compact length + 1 (1, null would be 0)
            // followed by the empty tag buffers of the partition, the topic and the response.
            let tail: &[u8] = if version >= 12 {
                &[1, 0, 0, 0]
            } else {
                &[0, 0, 0, 0]
            };
            assert_eq!(
                &raw[raw.len() - 4..],
                tail,
                "v{version} {}: the records field on the wire",
                topic.name
            );
        }
    }
}

/// The fixture's `records` topic with its first `drop` segments of partition 0 deleted, as
/// retention leaves a partition: the log start offset is the base of the first segment left.
fn trimmed(data: &DataDir, drop: usize) -> i64 {
    let p0 = &data.topic("records").partitions[0];
    for base in &p0.segments[..drop] {
        fs::remove_file(p0.dir.join(format!("{base:020}.log"))).expect("remove a segment");
    }
    let start = p0.segments[drop];
    let checkpoint = fs::read_to_string(data.path().join("log-start-offset-checkpoint")).unwrap();
    fs::write(
        data.path().join("log-start-offset-checkpoint"),
        checkpoint.replace("records 0 0\n", &format!("records 0 {start}\n")),
    )
    .unwrap();
    start
}

#[test]
fn watermarks_log_start_offset_and_out_of_range_offsets() {
    let data = fixture();
    let start = trimmed(&data, 2);
    assert!(start > 0);
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let topic = data.topic("records");
    let end = topic.partitions[0].end_offset();
    for &version in VERSIONS {
        // At the log start offset: the records from there.
        let request = fetch_request(vec![fetch_topic(
            topic,
            vec![fetch_partition(0, start, 1 << 20)],
        )]);
        let response = call(&mut client, &request, version);
        let p = partition_of(&response, version, topic, 0);
        assert_eq!(p.error_code, error::NONE, "v{version}");
        assert_eq!(
            (p.high_watermark, p.last_stable_offset),
            (end, end),
            "v{version}"
        );
        if version >= 5 {
            assert_eq!(p.log_start_offset, start, "v{version}: log start offset");
        }
        let batches = batches(p);
        assert_eq!(batches[0].base_offset, start, "v{version}");
        assert_same_record(
            &batches[0].records[0],
            &topic.partitions[0].records[start as usize],
            "trimmed",
        );
        // Below the log start, and above the log end: OFFSET_OUT_OF_RANGE.
        for offset in [0, start - 1, end + 1, i64::MAX, -1] {
            let request = fetch_request(vec![fetch_topic(
                topic,
                vec![fetch_partition(0, offset, 1 << 20)],
            )]);
            let response = call(&mut client, &request, version);
            assert_eq!(response.error_code, error::NONE, "v{version}");
            let p = partition_of(&response, version, topic, 0);
            assert_eq!(
                p.error_code,
                error::OFFSET_OUT_OF_RANGE,
                "v{version} at {offset}"
            );
            assert_eq!(
                p.records.as_ref().map(Bytes::len),
                Some(0),
                "v{version} at {offset}"
            );
        }
        // The other partitions are whole.
        let request = fetch_request(vec![fetch_topic(
            topic,
            vec![fetch_partition(1, 0, 1 << 20)],
        )]);
        let response = call(&mut client, &request, version);
        check_offsets(version, topic, partition_of(&response, version, topic, 1));
    }
}

#[test]
fn kafka_parity_out_of_range_reports_unknown_offsets() {
    // ReplicaManager.readFromLog turns OffsetOutOfRangeException into a LogReadResult with
    // highWatermark, leaderLogStartOffset = -1 and no last stable offset (-1 on the wire), as
    // for every partition-level error (outside tiered storage).
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let topic = data.topic("records");
    for &version in &[4, 12, 13, 18] {
        let request = fetch_request(vec![fetch_topic(
            topic,
            vec![fetch_partition(0, 5000, 1 << 20)],
        )]);
        let response = call(&mut client, &request, version);
        let p = partition_of(&response, version, topic, 0);
        assert_eq!(p.error_code, error::OFFSET_OUT_OF_RANGE, "v{version}");
        let expected_start = if version >= 5 { -1 } else { p.log_start_offset };
        assert_eq!(
            (p.high_watermark, p.last_stable_offset, p.log_start_offset),
            (-1, -1, expected_start),
            "v{version}: offsets of an OFFSET_OUT_OF_RANGE partition"
        );
    }
}

#[test]
fn unknown_topics_partitions_and_topic_ids() {
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let records = data.topic("records");
    let ghost = WrittenTopic {
        name: "no-such-topic".to_string(),
        id: random_uuid(),
        partitions: Vec::new(),
        configs: Vec::new(),
    };
    for &version in VERSIONS {
        let request = fetch_request(vec![
            fetch_topic(
                records,
                vec![fetch_partition(0, 0, 4096), fetch_partition(99, 0, 4096)],
            ),
            fetch_topic(&ghost, vec![fetch_partition(0, 0, 4096)]),
        ]);
        let response = call(&mut client, &request, version);
        assert_eq!(response.error_code, error::NONE, "v{version}");
        // The known partition is served.
        let p = partition_of(&response, version, records, 0);
        check_offsets(version, records, p);
        assert!(!batches(p).is_empty(), "v{version}");
        // An unknown partition of a known topic: UNKNOWN_TOPIC_OR_PARTITION.
        let unknown = [
            (
                partition_of(&response, version, records, 99),
                error::UNKNOWN_TOPIC_OR_PARTITION,
            ),
            // An unknown topic: by name UNKNOWN_TOPIC_OR_PARTITION, by id UNKNOWN_TOPIC_ID.
            (
                partition_of(&response, version, &ghost, 0),
                if version >= 13 {
                    error::UNKNOWN_TOPIC_ID
                } else {
                    error::UNKNOWN_TOPIC_OR_PARTITION
                },
            ),
        ];
        for (p, code) in unknown {
            let at = format!("v{version} partition {}", p.partition_index);
            assert_eq!(p.error_code, code, "{at}");
            // FetchResponse.partitionResponse: -1 offsets, empty (not null) records.
            assert_eq!(p.high_watermark, -1, "{at}");
            assert_eq!(p.last_stable_offset, -1, "{at}");
            if version >= 5 {
                assert_eq!(p.log_start_offset, -1, "{at}");
            }
            assert_eq!(p.records.as_ref().map(Bytes::len), Some(0), "{at}");
        }
    }
}

#[test]
fn read_committed_gets_an_empty_aborted_transactions_list() {
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let topic = data.topic("records");
    for &version in VERSIONS {
        for isolation_level in [0i8, 1] {
            let request = FetchRequest {
                isolation_level,
                ..fetch_request(vec![fetch_topic(
                    topic,
                    vec![fetch_partition(0, 0, 4096), fetch_partition(1, 600, 4096)],
                )])
            };
            let response = call(&mut client, &request, version);
            for partition in [0, 1] {
                let p = partition_of(&response, version, topic, partition);
                assert_eq!(p.error_code, error::NONE);
                let expected = (isolation_level == 1).then(Vec::new);
                assert_eq!(
                    p.aborted_transactions, expected,
                    "v{version} isolation {isolation_level} p{partition}"
                );
                assert!(p.records.is_some());
            }
        }
    }
}

#[test]
fn long_poll_waits_up_to_max_wait_for_min_bytes() {
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let empty = data.topic("empty");
    let records = data.topic("records");
    for &version in &[4, 12, 18] {
        // Nothing to read: the broker waits max_wait_ms, then answers with nothing.
        // Some data, below min_bytes: it waits, then answers with what there is.
        for (topic, offset) in [(empty, 0), (records, 990)] {
            let request = FetchRequest {
                max_wait_ms: 300,
                min_bytes: 10 << 20,
                ..fetch_request(vec![fetch_topic(
                    topic,
                    vec![fetch_partition(0, offset, 1 << 20)],
                )])
            };
            let started = Instant::now();
            let response = call(&mut client, &request, version);
            let took = started.elapsed();
            assert!(
                took >= Duration::from_millis(250) && took < Duration::from_secs(5),
                "v{version} {}: answered after {took:?} (max_wait_ms 300)",
                topic.name
            );
            let p = partition_of(&response, version, topic, 0);
            check_offsets(version, topic, p);
            let got: usize = batches(p)
                .iter()
                .flat_map(|b| &b.records)
                .filter(|r| r.offset >= offset)
                .count();
            assert_eq!(
                got as i64,
                topic.partitions[0].end_offset() - offset,
                "v{version} {}: what there is",
                topic.name
            );
        }
    }
}

/// A full request for the first batch of `records-0`, with the given session fields.
fn session_request(records: &WrittenTopic, session_id: i32, session_epoch: i32) -> FetchRequest {
    FetchRequest {
        session_id,
        session_epoch,
        ..fetch_request(vec![fetch_topic(
            records,
            vec![fetch_partition(0, 0, 4096)],
        )])
    }
}

#[test]
fn incremental_requests_for_unknown_sessions_get_session_not_found_and_full_requests_still_work() {
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let records = data.topic("records");
    // Fetch sessions exist from v7.
    for &version in &[11, 12, 13, 16, 17, 18] {
        // An incremental request (epoch > 0) for a session the broker does not have.
        let response = call(&mut client, &session_request(records, 12345, 3), version);
        assert_eq!(
            response.error_code,
            error::FETCH_SESSION_ID_NOT_FOUND,
            "v{version}"
        );
        assert_eq!(response.session_id, 0, "v{version}");
        assert!(
            response.responses.is_empty(),
            "v{version}: {:?}",
            response.responses
        );
        // The consumer starts over with a full request: served, with a new session for
        // epoch 0 and without one for epoch -1.
        for epoch in [0, -1] {
            let response = call(&mut client, &session_request(records, 0, epoch), version);
            assert_eq!(response.error_code, error::NONE, "v{version} epoch {epoch}");
            assert_eq!(
                response.session_id != 0,
                epoch == 0,
                "v{version} epoch {epoch}: session {}",
                response.session_id
            );
            let p = partition_of(&response, version, records, 0);
            check_offsets(version, records, p);
            assert!(!batches(p).is_empty(), "v{version} epoch {epoch}");
        }
    }
}

#[test]
fn kafka_parity_full_request_naming_a_session_is_served() {
    // FetchManager.newContext: a request with epoch 0 (INITIAL) or -1 (FINAL) is a full
    // request whatever its session id; the named session, if any, is closed and the request
    // is served (a new session, or none for FINAL). Only an incremental request (epoch > 0)
    // for an unknown session gets FETCH_SESSION_ID_NOT_FOUND.
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let records = data.topic("records");
    for &version in &[11, 13, 18] {
        for epoch in [0, -1] {
            let response = call(
                &mut client,
                &session_request(records, 12345, epoch),
                version,
            );
            assert_eq!(
                response.error_code,
                error::NONE,
                "v{version}: a full request (session 12345, epoch {epoch}) must be served"
            );
            check_offsets(
                version,
                records,
                partition_of(&response, version, records, 0),
            );
        }
    }
}

#[test]
fn kafka_parity_incremental_request_without_session_is_session_not_found() {
    // Session id 0 with epoch > 0 is not a full request; FetchManager.newContext finds no
    // session 0 and answers FETCH_SESSION_ID_NOT_FOUND (70), not INVALID_FETCH_SESSION_EPOCH.
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let records = data.topic("records");
    let response = call(&mut client, &session_request(records, 0, 1), 12);
    assert_eq!(response.error_code, error::FETCH_SESSION_ID_NOT_FOUND);
    assert!(response.responses.is_empty());
}

#[test]
fn every_topic_of_a_request_is_answered_in_one_response() {
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let records = data.topic("records");
    let empty = data.topic("empty");
    let big = data.topic("big");
    for &version in VERSIONS {
        let topics: Vec<FetchTopic> = vec![
            fetch_topic(records, vec![fetch_partition(2, 100, 1 << 20)]),
            fetch_topic(empty, vec![fetch_partition(0, 0, 1 << 20)]),
            fetch_topic(
                big,
                vec![
                    fetch_partition(1, 3, 1 << 20),
                    fetch_partition(0, 0, 1 << 20),
                ],
            ),
        ];
        let request = fetch_request(topics);
        assert!(request.encoded_len(version) > 0);
        let response = call(&mut client, &request, version);
        let count: usize = response.responses.iter().map(|t| t.partitions.len()).sum();
        assert_eq!(count, 4, "v{version}");
        let p = partition_of(&response, version, records, 2);
        check_offsets(version, records, p);
        let got: Vec<i64> = batches(p)
            .iter()
            .flat_map(|b| &b.records)
            .map(|r| r.offset)
            .collect();
        assert_eq!(got, (100..450).collect::<Vec<_>>(), "v{version}");
        check_offsets(version, empty, partition_of(&response, version, empty, 0));
        for (partition, from) in [(1, 3), (0, 0)] {
            let p = partition_of(&response, version, big, partition);
            check_offsets(version, big, p);
            let batches = batches(p);
            assert_eq!(batches.len(), 6 - from, "v{version} big-{partition}");
            for (batch, written) in batches
                .iter()
                .zip(&big.partitions[partition as usize].records[from..])
            {
                assert_same_record(&batch.records[0], written, "big");
            }
        }
    }
}

/// A Fetch request for `partition` of `topic` from `offset` (for the connection tests).
pub fn simple_fetch(topic: &WrittenTopic, partition: i32, offset: i64) -> FetchRequest {
    fetch_request(vec![fetch_topic(
        topic,
        vec![fetch_partition(partition, offset, 1 << 20)],
    )])
}

/// Checks a response to [`simple_fetch`] at `version` and returns the records read.
pub fn check_simple_fetch(
    response: &FetchResponse,
    version: i16,
    topic: &WrittenTopic,
    partition: i32,
    offset: i64,
) -> usize {
    assert_eq!(response.error_code, error::NONE);
    let p = partition_of(response, version, topic, partition);
    check_offsets(version, topic, p);
    let mut n = 0;
    for batch in batches(p) {
        for record in batch.records.iter().filter(|r| r.offset >= offset) {
            assert_same_record(
                record,
                &topic.partitions[partition as usize].records[record.offset as usize],
                "simple fetch",
            );
            n += 1;
        }
    }
    n
}

#[test]
fn kafka_parity_a_partition_named_twice_is_answered_once_with_its_last_offset() {
    // Kafka's FetchRequest.fetchData puts the partitions into a LinkedHashMap keyed by topic
    // and partition: a repeated partition keeps the place of its first mention and takes
    // the offset and limit of its last; FetchResponse.toMessage groups consecutive
    // partitions of one topic.
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let records = data.topic("records");
    let empty = data.topic("empty");
    for &version in VERSIONS {
        let topics = vec![
            fetch_topic(
                records,
                vec![
                    fetch_partition(0, 0, 1 << 20),
                    fetch_partition(1, 0, 1 << 20),
                ],
            ),
            fetch_topic(
                records,
                vec![
                    fetch_partition(0, 900, 1 << 20),
                    fetch_partition(1, 500, 9_000),
                    fetch_partition(0, 900, 1 << 20),
                ],
            ),
            fetch_topic(empty, vec![fetch_partition(0, 0, 1 << 20)]),
            fetch_topic(records, vec![fetch_partition(2, 100, 1 << 20)]),
        ];
        let response = call(&mut client, &fetch_request(topics), version);
        let layout: Vec<Vec<i32>> = response
            .responses
            .iter()
            .map(|t| t.partitions.iter().map(|p| p.partition_index).collect())
            .collect();
        assert_eq!(layout, vec![vec![0, 1], vec![0], vec![2]], "v{version}");
        let first = |p: &PartitionData| batches(p)[0].base_offset;
        let p0 = &response.responses[0].partitions[0];
        check_offsets(version, records, p0);
        assert_eq!(first(p0), 900, "v{version}: the last offset asked for wins");
        let p1 = &response.responses[0].partitions[1];
        check_offsets(version, records, p1);
        assert_eq!(first(p1), 500, "v{version}");
        assert!(p1.records.as_ref().unwrap().len() <= 9_000, "v{version}");
        check_offsets(version, empty, &response.responses[1].partitions[0]);
        let p2 = &response.responses[2].partitions[0];
        check_offsets(version, records, p2);
        assert_eq!(first(p2), 100, "v{version}");
        for (t, topic) in response.responses.iter().zip([records, empty, records]) {
            if version >= 13 {
                assert_eq!(t.topic_id, topic.id, "v{version}");
            } else {
                assert_eq!(*t.topic, *topic.name, "v{version}");
            }
        }
    }
}

#[test]
fn the_broker_fetch_max_bytes_caps_the_request_max_bytes() {
    let data = fixture();
    let broker = Broker::start_with(&data, &[("fetch.max.bytes", "20000")]);
    let mut client = connect(&broker);
    let topic = data.topic("records");
    for &version in &[4, 12, 13, 18] {
        let partitions = (0..3).map(|i| fetch_partition(i, 0, 1 << 20)).collect();
        let mut request = fetch_request(vec![fetch_topic(topic, partitions)]);
        request.max_bytes = i32::MAX;
        let response = call(&mut client, &request, version);
        let mut total = 0;
        for i in 0..3 {
            let p = partition_of(&response, version, topic, i);
            check_offsets(version, topic, p);
            total += p.records.as_ref().unwrap().len();
        }
        assert!(total > 0, "v{version}: nothing at all");
        assert!(
            total <= 20_000,
            "v{version}: {total} bytes above fetch.max.bytes 20000"
        );
    }
}

/// Transactional data written through the storage API (the coordinator that would write
/// it through Produce and WriteTxnMarkers is not there yet), then served by the broker:
/// READ_COMMITTED Fetch stops at the LSO and lists the aborted transaction, ListOffsets
/// with isolation 1 answers the LSO as the latest offset.
#[test]
fn read_committed_stops_at_the_last_stable_offset() {
    use gregor_broker::storage::PartitionLog;
    use gregor_protocol::messages::list_offsets_request::{
        ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
    };
    use gregor_protocol::records::RecordBatchBuilder;

    let data = DataDir::builder().topic(TopicSpec::new("txn", 1)).build();
    {
        let log = PartitionLog::open(data.path(), "txn", 0).expect("open the log");
        let txn = |pid: i64| {
            let mut batch = RecordBatchBuilder::new()
                .producer(pid, 0)
                .base_sequence(0)
                .transactional(true)
                .build(&[NewRecord::new(1_000, None, Some(Bytes::from_static(b"v")))])
                .expect("batch")
                .to_vec();
            log.append_batch(&mut batch).expect("append");
        };
        txn(1); // 0
        txn(2); // 1
        log.append_txn_marker(2, 0, 0, false, 0, 1_000)
            .expect("abort at 2");
        log.append_txn_marker(1, 0, 0, true, 0, 1_000)
            .expect("commit at 3");
        txn(3); // 4, ongoing
        assert_eq!((log.last_stable_offset(), log.high_watermark()), (4, 5));
        log.close().expect("close");
    }
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let topic = data.topic("txn");
    for &version in VERSIONS {
        for isolation_level in [0i8, 1] {
            let request = FetchRequest {
                isolation_level,
                ..fetch_request(vec![fetch_topic(
                    topic,
                    vec![fetch_partition(0, 0, 1 << 20)],
                )])
            };
            let response = call(&mut client, &request, version);
            let p = partition_of(&response, version, topic, 0);
            let at = format!("v{version} isolation {isolation_level}");
            assert_eq!(p.error_code, error::NONE, "{at}");
            assert_eq!((p.high_watermark, p.last_stable_offset), (5, 4), "{at}");
            let records = p.records.as_ref().expect("records");
            let bases: Vec<i64> = fetched_batches(records)
                .iter()
                .map(|b| b.base_offset)
                .collect();
            if isolation_level == 1 {
                assert_eq!(bases, [0, 1, 2, 3], "{at}");
                let aborted: Vec<(i64, i64)> = p
                    .aborted_transactions
                    .as_ref()
                    .expect("a list")
                    .iter()
                    .map(|t| (t.producer_id, t.first_offset))
                    .collect();
                assert_eq!(aborted, [(2, 1)], "{at}");
            } else {
                assert_eq!(bases, [0, 1, 2, 3, 4], "{at}");
                assert_eq!(p.aborted_transactions, None, "{at}");
            }
        }
    }
    for (isolation_level, latest) in [(0i8, 5), (1, 4)] {
        let request = ListOffsetsRequest {
            replica_id: -1,
            isolation_level,
            topics: vec![ListOffsetsTopic {
                name: "txn".into(),
                partitions: vec![ListOffsetsPartition {
                    partition_index: 0,
                    current_leader_epoch: -1,
                    timestamp: -1,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let response = client.call(&request, 7).expect("ListOffsets");
        let p = &response.topics[0].partitions[0];
        assert_eq!(
            (p.error_code, p.offset),
            (error::NONE, latest),
            "isolation {isolation_level}"
        );
    }
}
