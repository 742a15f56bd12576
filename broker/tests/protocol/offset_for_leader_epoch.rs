//! OffsetForLeaderEpoch v0-v4 (Kafka's `ReplicaManager.lastOffsetForLeaderEpoch` and
//! `LeaderEpochFileCache.endOffsetFor`) against logs written in several leader epochs:
//! end offsets of known, unknown, older and newer epochs, current-leader-epoch fencing,
//! unknown topics and partitions, the cache after appends, DeleteRecords and a restart.

use bytes::Bytes;
use gregor_protocol::ApiKey;
use gregor_protocol::error_code as code;
use gregor_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsRequest, DeleteRecordsTopic,
};
use gregor_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderEpochRequest, OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use gregor_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use gregor_protocol::records::{NewRecord, RecordBatchBuilder};

use crate::support::{Broker, DataDir, RawClient, TopicSpec, advertised_versions};

/// A topic whose 2 partitions hold 30 records in batches of 5: epoch 0 at 0, epoch 2 at
/// 10, epoch 5 at 20; the leader epoch in the metadata is 5.
const TOPIC: &str = "epochs";

fn fixture() -> DataDir {
    DataDir::builder()
        .topic(
            TopicSpec::new(TOPIC, 2)
                .records(30)
                .batch_records(5)
                .leader_epochs(&[(0, 0), (2, 10), (5, 20)]),
        )
        .build()
}

/// One partition's question: (partition, current leader epoch, leader epoch).
type Ask = (i32, i32, i32);

/// Asks about `asks` of `topic` at `version`: (partition, error, leader epoch, end offset).
fn ask(
    client: &mut RawClient,
    version: i16,
    topic: &str,
    asks: &[Ask],
) -> Vec<(i32, i16, i32, i64)> {
    let request = OffsetForLeaderEpochRequest {
        replica_id: if version >= 3 { -1 } else { -2 },
        topics: vec![OffsetForLeaderTopic {
            topic: topic.into(),
            partitions: asks
                .iter()
                .map(|&(partition, current, epoch)| OffsetForLeaderPartition {
                    partition,
                    current_leader_epoch: current,
                    leader_epoch: epoch,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = client
        .call(&request, version)
        .unwrap_or_else(|e| panic!("OffsetForLeaderEpoch v{version}: {e}"));
    assert_eq!(response.throttle_time_ms, 0);
    assert_eq!(response.topics.len(), 1, "{response:?}");
    assert_eq!(&*response.topics[0].topic, topic);
    response.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition, p.error_code, p.leader_epoch, p.end_offset))
        .collect()
}

fn produce(client: &mut RawClient, partition: i32, count: usize) {
    let records: Vec<NewRecord> = (0..count)
        .map(|i| NewRecord::new(1_700_000_000_000 + i as i64, None, Some(Bytes::from("v"))))
        .collect();
    let batch = RecordBatchBuilder::new().build(&records).expect("batch");
    let request = ProduceRequest {
        acks: -1,
        timeout_ms: 10_000,
        topic_data: vec![TopicProduceData {
            name: TOPIC.into(),
            partition_data: vec![PartitionProduceData {
                index: partition,
                records: Some(batch),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = client.call(&request, 9).expect("Produce");
    let p = &response.responses[0].partition_responses[0];
    assert_eq!(p.error_code, code::NONE, "{p:?}");
}

#[test]
fn offset_for_leader_epoch_is_advertised_at_v0_to_v4() {
    let data = fixture();
    let broker = Broker::start(&data);
    assert_eq!(
        advertised_versions(broker.addr(), ApiKey::OffsetForLeaderEpoch),
        Some((0, 4))
    );
}

/// The end offset of each epoch at every version, as `LeaderEpochFileCache.endOffsetFor`
/// computes it. v0 and v1 (Kafka 3.9's, removed by Kafka 4) answer alike; a v0 response
/// has no leader epoch, so it decodes as -1.
#[test]
fn end_offsets_of_known_unknown_older_and_newer_epochs() {
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = RawClient::connect(broker.addr()).expect("connect");
    for version in 0..=4 {
        // v0-v1 cannot carry the current leader epoch (v2+): -1 there.
        let current = if version >= 2 { 5 } else { -1 };
        let answers = ask(
            &mut client,
            version,
            TOPIC,
            &[
                // The latest epoch: the log end offset.
                (0, -1, 5),
                // A closed epoch: where the next one starts.
                (0, -1, 0),
                (0, -1, 2),
                // An epoch the partition never had: the newest one below it.
                (1, -1, 1),
                (1, -1, 4),
                // Newer than every epoch, and "no epoch".
                (1, -1, 6),
                (1, -1, -1),
                // With the current leader epoch given.
                (1, current, 2),
            ],
        );
        let expected = [
            (0, code::NONE, 5, 30),
            (0, code::NONE, 0, 10),
            (0, code::NONE, 2, 20),
            (1, code::NONE, 0, 10),
            (1, code::NONE, 2, 20),
            (1, code::NONE, -1, -1),
            (1, code::NONE, -1, -1),
            (1, code::NONE, 2, 20),
        ];
        let expected: Vec<_> = expected
            .into_iter()
            .map(|(p, e, epoch, end)| (p, e, if version == 0 { -1 } else { epoch }, end))
            .collect();
        assert_eq!(answers, expected, "v{version}");
    }
}

/// `current_leader_epoch` fencing, unknown topics and partitions.
#[test]
fn fencing_and_unknown_partitions() {
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = RawClient::connect(broker.addr()).expect("connect");
    for version in 2..=4 {
        assert_eq!(
            ask(
                &mut client,
                version,
                TOPIC,
                &[(0, 4, 2), (0, 6, 2), (7, -1, 2)]
            ),
            [
                (0, code::FENCED_LEADER_EPOCH, -1, -1),
                (0, code::UNKNOWN_LEADER_EPOCH, -1, -1),
                (7, code::UNKNOWN_TOPIC_OR_PARTITION, -1, -1),
            ],
            "v{version}"
        );
        assert_eq!(
            ask(&mut client, version, "missing", &[(0, -1, 0)]),
            [(0, code::UNKNOWN_TOPIC_OR_PARTITION, -1, -1)]
        );
    }
}

/// Appends extend the latest epoch; DeleteRecords truncates the cache from the start (an
/// epoch wholly deleted answers with the log start offset); a restart rebuilds the same
/// cache and the checkpoint file says so.
#[test]
fn appends_delete_records_and_a_restart() {
    let data = fixture();
    let mut broker = Broker::start(&data);
    let mut client = RawClient::connect(broker.addr()).expect("connect");
    produce(&mut client, 0, 4);
    assert_eq!(
        ask(&mut client, 4, TOPIC, &[(0, 5, 5)]),
        [(0, code::NONE, 5, 34)]
    );
    let request = DeleteRecordsRequest {
        topics: vec![DeleteRecordsTopic {
            name: TOPIC.into(),
            partitions: vec![DeleteRecordsPartition {
                partition_index: 0,
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
    let checkpoint = data
        .path()
        .join(format!("{TOPIC}-0"))
        .join("leader-epoch-checkpoint");
    assert_eq!(
        std::fs::read_to_string(&checkpoint).unwrap(),
        "0\n2\n2 12\n5 20\n"
    );
    let expected = [
        (0, code::NONE, 0, 12),
        (0, code::NONE, 2, 20),
        (0, code::NONE, 5, 34),
    ];
    assert_eq!(
        ask(&mut client, 3, TOPIC, &[(0, -1, 0), (0, -1, 2), (0, -1, 5)]),
        expected
    );

    broker.stop();
    // The file is rebuilt from the batches at start-up: a damaged one changes nothing.
    std::fs::write(&checkpoint, "0\n1\n9 999\n").unwrap();
    let broker = Broker::start(&data);
    let mut client = RawClient::connect(broker.addr()).expect("connect");
    assert_eq!(
        ask(&mut client, 3, TOPIC, &[(0, -1, 0), (0, -1, 2), (0, -1, 5)]),
        expected
    );
    assert_eq!(
        std::fs::read_to_string(&checkpoint).unwrap(),
        "0\n2\n2 12\n5 20\n"
    );
}

/// A leader epoch in the metadata newer than the last batch's (a leader elected after the
/// last write) starts at the log end offset, as Kafka's leader election records it; new
/// batches are written in it.
#[test]
fn a_newer_leader_epoch_starts_at_the_log_end() {
    let data = DataDir::builder()
        .topic(
            TopicSpec::new(TOPIC, 1)
                .records(20)
                .batch_records(5)
                .leader_epochs(&[(0, 0), (3, 10)])
                .leader_epoch(7),
        )
        .build();
    let broker = Broker::start(&data);
    let mut client = RawClient::connect(broker.addr()).expect("connect");
    assert_eq!(
        ask(
            &mut client,
            4,
            TOPIC,
            &[(0, 7, 3), (0, 7, 5), (0, 7, 7), (0, 3, 3)]
        ),
        [
            (0, code::NONE, 3, 20),
            (0, code::NONE, 3, 20),
            (0, code::NONE, 7, 20),
            (0, code::FENCED_LEADER_EPOCH, -1, -1),
        ]
    );
    produce(&mut client, 0, 3);
    assert_eq!(
        ask(&mut client, 4, TOPIC, &[(0, 7, 3), (0, 7, 7)]),
        [(0, code::NONE, 3, 20), (0, code::NONE, 7, 23)]
    );
    let checkpoint = data
        .path()
        .join(format!("{TOPIC}-0"))
        .join("leader-epoch-checkpoint");
    assert_eq!(
        std::fs::read_to_string(&checkpoint).unwrap(),
        "0\n3\n0 0\n3 10\n7 20\n"
    );
}

/// An empty partition (no batch yet): the current epoch ends at 0.
#[test]
fn an_empty_partition() {
    let data = DataDir::builder().topic(TopicSpec::new(TOPIC, 1)).build();
    let broker = Broker::start(&data);
    let mut client = RawClient::connect(broker.addr()).expect("connect");
    assert_eq!(
        ask(&mut client, 2, TOPIC, &[(0, 0, 0), (0, -1, 1)]),
        [(0, code::NONE, 0, 0), (0, code::NONE, -1, -1)]
    );
}
