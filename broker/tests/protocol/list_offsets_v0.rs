//! ListOffsets v0 (removed by Kafka 4, served as Kafka 3.9 did: `KafkaApis.
//! handleListOffsetRequestV0`, `UnifiedLog.legacyFetchOffsetsBefore`): lists of
//! segment-boundary offsets for latest, earliest and a timestamp, cut to `max_num_offsets`,
//! largest first, against a log of three segments whose file times are set by the test;
//! the log start offset after DeleteRecords; the per-partition errors.

use std::fs::File;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gregor_protocol::error_code as code;
use gregor_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsRequest, DeleteRecordsTopic,
};
use gregor_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};

use crate::support::{Broker, DataDir, RawClient, TopicSpec};

/// Two partitions of 30 records, in segments of 10 (bases 0, 10 and 20).
const TOPIC: &str = "legacy";

/// The modification times given to the segment files 0, 10 and 20 (2001, 2004, 2008).
const SEGMENT_TIMES: [i64; 3] = [1_000_000_000_000, 1_100_000_000_000, 1_200_000_000_000];

/// The fixture, with the segment files' modification times set to [`SEGMENT_TIMES`].
fn fixture() -> DataDir {
    let data = DataDir::builder()
        .topic(
            TopicSpec::new(TOPIC, 2)
                .records(30)
                .batch_records(5)
                .segment_batches(2),
        )
        .build();
    for partition in 0..2 {
        for (base, time) in [0i64, 10, 20].into_iter().zip(SEGMENT_TIMES) {
            let path = data
                .path()
                .join(format!("{TOPIC}-{partition}"))
                .join(format!("{base:020}.log"));
            let file = File::options()
                .write(true)
                .open(&path)
                .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
            let when = UNIX_EPOCH + Duration::from_millis(u64::try_from(time).unwrap());
            file.set_modified(when).expect("set the segment's time");
        }
    }
    data
}

/// One partition's question: (partition, timestamp, max_num_offsets).
type Ask = (i32, i64, i32);

/// Asks at v0 with `replica_id`: (partition, error, offsets) per partition.
fn ask_as(
    client: &mut RawClient,
    replica_id: i32,
    topic: &str,
    asks: &[Ask],
) -> Vec<(i32, i16, Vec<i64>)> {
    let request = ListOffsetsRequest {
        replica_id,
        topics: vec![ListOffsetsTopic {
            name: topic.into(),
            partitions: asks
                .iter()
                .map(|&(partition, timestamp, max)| ListOffsetsPartition {
                    partition_index: partition,
                    timestamp,
                    max_num_offsets: max,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = client.call(&request, 0).expect("ListOffsets v0");
    assert_eq!(response.topics.len(), 1, "{response:?}");
    assert_eq!(&*response.topics[0].name, topic);
    response.topics[0]
        .partitions
        .iter()
        .map(|p| {
            // v0 has neither `timestamp` nor `offset`: they decode as their defaults.
            assert_eq!((p.timestamp, p.offset), (-1, -1), "{p:?}");
            (p.partition_index, p.error_code, p.old_style_offsets.clone())
        })
        .collect()
}

/// Asks at v0 as a consumer.
fn ask(client: &mut RawClient, topic: &str, asks: &[Ask]) -> Vec<(i32, i16, Vec<i64>)> {
    ask_as(client, -1, topic, asks)
}

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

#[test]
fn latest_earliest_and_timestamps_list_segment_boundaries() {
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = RawClient::connect(broker.addr()).expect("connect");
    let [t0, t1, t2] = SEGMENT_TIMES;
    let answers = ask(
        &mut client,
        TOPIC,
        &[
            // Latest: the log end offset first, then the segment bases down to the start.
            (0, -1, 1),
            (0, -1, 3),
            (0, -1, 100),
            (0, -1, 0),
            // Earliest: the first segment only, however many are asked for.
            (0, -2, 5),
            // A timestamp: the last segment modified at or before it, then older ones.
            (0, t1 + 1, 10),
            (0, t1, 1),
            (0, t2, 2),
            (0, t0 - 1, 10),
            // Now is after every segment and the log end.
            (0, now_ms() + 60_000, 2),
        ],
    );
    assert_eq!(
        answers,
        [
            (0, code::NONE, vec![30]),
            (0, code::NONE, vec![30, 20, 10]),
            (0, code::NONE, vec![30, 20, 10, 0]),
            (0, code::NONE, vec![]),
            (0, code::NONE, vec![0]),
            (0, code::NONE, vec![10, 0]),
            (0, code::NONE, vec![10]),
            (0, code::NONE, vec![20, 10]),
            (0, code::NONE, vec![]),
            (0, code::NONE, vec![30, 20]),
        ]
    );
    // A debugging client (replica -2) gets the same: the high watermark is the log end.
    assert_eq!(
        ask_as(&mut client, -2, TOPIC, &[(0, -1, 2)]),
        [(0, code::NONE, vec![30, 20])]
    );
}

#[test]
fn errors_per_partition() {
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = RawClient::connect(broker.addr()).expect("connect");
    assert_eq!(
        ask(
            &mut client,
            TOPIC,
            &[
                // v0 knows no special timestamp below -2 (max timestamp is v7+).
                (0, -3, 1),
                // Kafka 3.9 failed to allocate a negative count: UNKNOWN_SERVER_ERROR.
                (0, -1, -1),
                (7, -1, 1),
                // Duplicates are answered each time at v0.
                (1, -2, 1),
                (1, -2, 1),
            ],
        ),
        [
            (0, code::UNSUPPORTED_VERSION, vec![]),
            (0, code::UNKNOWN_SERVER_ERROR, vec![]),
            (7, code::UNKNOWN_TOPIC_OR_PARTITION, vec![]),
            (1, code::NONE, vec![0]),
            (1, code::NONE, vec![0]),
        ]
    );
    assert_eq!(
        ask(&mut client, "missing", &[(0, -1, 1)]),
        [(0, code::UNKNOWN_TOPIC_OR_PARTITION, vec![])]
    );
}

/// After DeleteRecords to 12 the first segment is gone and the next one starts at the
/// log start offset (Kafka's `max(baseOffset, logStartOffset)`).
#[test]
fn the_log_start_offset_bounds_the_first_entry() {
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = RawClient::connect(broker.addr()).expect("connect");
    let request = DeleteRecordsRequest {
        topics: vec![DeleteRecordsTopic {
            name: TOPIC.into(),
            partitions: vec![DeleteRecordsPartition {
                partition_index: 1,
                offset: 12,
                ..Default::default()
            }],
            ..Default::default()
        }],
        timeout_ms: 10_000,
        ..Default::default()
    };
    let response = client.call(&request, 2).expect("DeleteRecords");
    let p = &response.topics[0].partitions[0];
    assert_eq!((p.error_code, p.low_watermark), (code::NONE, 12));
    assert_eq!(
        ask(
            &mut client,
            TOPIC,
            &[
                (1, -2, 1),
                (1, -1, 10),
                (1, SEGMENT_TIMES[1], 5),
                (0, -2, 1)
            ]
        ),
        [
            (1, code::NONE, vec![12]),
            (1, code::NONE, vec![30, 20, 12]),
            (1, code::NONE, vec![12]),
            (0, code::NONE, vec![0]),
        ]
    );
}
