//! Idempotent produce (KIP-98) through the raw client, once InitProducerId is served: a
//! retried batch (same producer id, epoch and sequence) is acknowledged with its first
//! offset and not appended again; a sequence gap is refused.

use bytes::Bytes;
use gregor_protocol::ApiKey;
use gregor_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use gregor_protocol::records::{NewRecord, RecordBatchBuilder};

use crate::support::{Broker, DataDir, advertised_versions};
use crate::wire::{self, error};

const TOPIC: &str = "idempotent";

/// OUT_OF_ORDER_SEQUENCE_NUMBER.
const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;

fn idempotent_batch(producer_id: i64, epoch: i16, sequence: i32, n: usize) -> Bytes {
    let records: Vec<NewRecord> = (0..n)
        .map(|j| {
            NewRecord::new(
                wire::now_ms(),
                Some(Bytes::from(format!("seq-{sequence}-{j}"))),
                Some(Bytes::from(format!("value-{sequence}-{j}"))),
            )
        })
        .collect();
    RecordBatchBuilder::new()
        .producer(producer_id, epoch)
        .base_sequence(sequence)
        .build(&records)
        .expect("encode an idempotent batch")
}

#[test]
fn idempotent_retries_are_not_appended_twice() {
    let data = DataDir::builder().build();
    let broker = Broker::start(&data);
    let Some((_, max)) = advertised_versions(broker.addr(), ApiKey::InitProducerId) else {
        println!("note: the broker does not serve InitProducerId yet");
        return;
    };
    let topic_id = wire::wait_for_topic(&broker, TOPIC, 1, true);
    let mut client = wire::connect(&broker);
    let init = client
        .call(
            &InitProducerIdRequest {
                transactional_id: None,
                transaction_timeout_ms: 60_000,
                producer_id: -1,
                producer_epoch: -1,
                ..Default::default()
            },
            max.min(4),
        )
        .expect("InitProducerId");
    assert_eq!(init.error_code, error::NONE, "InitProducerId: {init:?}");
    let (pid, epoch) = (init.producer_id, init.producer_epoch);
    assert!(pid >= 0, "producer id {pid}");

    let first = idempotent_batch(pid, epoch, 0, 5);
    let response = wire::produce_ok(
        &mut client,
        wire::PRODUCE_BY_NAME,
        TOPIC,
        topic_id,
        0,
        first.clone(),
    );
    assert_eq!(response.base_offset, 0);
    // The same batch again, as a producer retries after a lost response.
    let request = wire::produce_request(TOPIC, topic_id, -1, vec![(0, first)]);
    let retried = wire::produce(&mut client, wire::PRODUCE_BY_NAME, &request)
        .expect("Produce")
        .remove(0);
    let second = idempotent_batch(pid, epoch, 5, 3);
    let next = wire::produce_ok(
        &mut client,
        wire::PRODUCE_BY_NAME,
        TOPIC,
        topic_id,
        0,
        second,
    );
    let gap = idempotent_batch(pid, epoch, 20, 2);
    let request = wire::produce_request(TOPIC, topic_id, -1, vec![(0, gap)]);
    let gapped = wire::produce(&mut client, wire::PRODUCE_BY_NAME, &request)
        .expect("Produce")
        .remove(0);
    let log = wire::fetch_all(&mut client, TOPIC, 0, 0);
    println!(
        "retry: {:?} base {}; next: base {}; gap: {:?}; high watermark {}",
        retried.error_code,
        retried.base_offset,
        next.base_offset,
        gapped.error_code,
        log.high_watermark
    );
    assert_eq!(
        (retried.error_code, retried.base_offset),
        (error::NONE, 0),
        "a retried idempotent batch: Kafka answers with the offset it was first appended at"
    );
    assert_eq!(next.base_offset, 5, "the batch after the retry");
    assert_eq!(
        gapped.error_code, OUT_OF_ORDER_SEQUENCE_NUMBER,
        "a sequence gap (expected 8, got 20)"
    );
    assert_eq!(
        log.high_watermark, 8,
        "5 + 3 records, the retry not appended"
    );
}

/// InitProducerId on `client`: the new producer's id and epoch.
fn init_producer(client: &mut crate::support::RawClient, max: i16) -> (i64, i16) {
    let init = client
        .call(
            &InitProducerIdRequest {
                transactional_id: None,
                transaction_timeout_ms: 60_000,
                producer_id: -1,
                producer_epoch: -1,
                ..Default::default()
            },
            max.min(4),
        )
        .expect("InitProducerId");
    assert_eq!(init.error_code, error::NONE, "InitProducerId: {init:?}");
    (init.producer_id, init.producer_epoch)
}

/// The `<offset>.snapshot` files of partition 0 of `topic`, by name.
fn snapshot_files(data: &DataDir, topic: &str) -> Vec<String> {
    let dir = data.path().join(format!("{topic}-0"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("partition dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".snapshot"))
        .collect();
    names.sort();
    names
}

/// Produces one batch and returns (error code, base offset).
fn send(client: &mut crate::support::RawClient, topic_id: uuid::Uuid, batch: Bytes) -> (i16, i64) {
    let request = wire::produce_request(TOPIC_RESTART, topic_id, -1, vec![(0, batch)]);
    let response = wire::produce(client, wire::PRODUCE_BY_NAME, &request)
        .expect("Produce")
        .remove(0);
    (response.error_code, response.base_offset)
}

const TOPIC_RESTART: &str = "idempotent-restart";

/// DescribeProducers on partition 0: (id, epoch, last sequence, last timestamp,
/// coordinator epoch, current transaction start offset) of each producer.
fn describe_producers(
    client: &mut crate::support::RawClient,
) -> Vec<(i64, i32, i32, i64, i32, i64)> {
    use gregor_protocol::messages::describe_producers_request::{
        DescribeProducersRequest, TopicRequest,
    };
    let request = DescribeProducersRequest {
        topics: vec![TopicRequest {
            name: TOPIC_RESTART.into(),
            partition_indexes: vec![0],
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = client.call(&request, 0).expect("DescribeProducers");
    let partition = &response.topics[0].partitions[0];
    assert_eq!(partition.error_code, error::NONE);
    partition
        .active_producers
        .iter()
        .map(|p| {
            (
                p.producer_id,
                p.producer_epoch,
                p.last_sequence,
                p.last_timestamp,
                p.coordinator_epoch,
                p.current_txn_start_offset,
            )
        })
        .collect()
}

#[test]
fn producer_state_survives_restarts_through_snapshots() {
    let data = DataDir::builder().build();
    let mut broker = Broker::start(&data);
    let Some((_, max)) = advertised_versions(broker.addr(), ApiKey::InitProducerId) else {
        println!("note: the broker does not serve InitProducerId yet");
        return;
    };
    let topic_id = wire::wait_for_topic(&broker, TOPIC_RESTART, 1, true);
    let mut client = wire::connect(&broker);
    let (pid, epoch) = init_producer(&mut client, max);
    for (seq, n) in [(0, 5), (5, 3), (8, 2)] {
        let (code, _) = send(&mut client, topic_id, idempotent_batch(pid, epoch, seq, n));
        assert_eq!(code, error::NONE);
    }
    let last = idempotent_batch(pid, epoch, 8, 2);
    let described = describe_producers(&mut client);
    assert_eq!(described.len(), 1);
    assert_eq!((described[0].0, described[0].2), (pid, 9));
    drop(client);
    // A clean stop (SIGTERM) writes the snapshot at the log end offset.
    broker.stop();
    assert_eq!(
        snapshot_files(&data, TOPIC_RESTART),
        ["00000000000000000010.snapshot"]
    );
    let mut broker = Broker::start(&data);
    let topic_id = wire::wait_for_topic(&broker, TOPIC_RESTART, 1, false);
    let mut client = wire::connect(&broker);
    assert_eq!(
        describe_producers(&mut client),
        described,
        "the same state after a restart"
    );
    // The last batch is still a duplicate, answered with its offset; as in Kafka, the
    // snapshot kept only the last batch, so an older retry is out of order.
    assert_eq!(send(&mut client, topic_id, last), (error::NONE, 8));
    assert_eq!(
        send(&mut client, topic_id, idempotent_batch(pid, epoch, 5, 3)).0,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    let next = idempotent_batch(pid, epoch, 10, 4);
    assert_eq!(send(&mut client, topic_id, next.clone()), (error::NONE, 10));
    assert_eq!(
        send(&mut client, topic_id, idempotent_batch(pid, epoch, 16, 1)).0,
        OUT_OF_ORDER_SEQUENCE_NUMBER,
        "sequences are still checked"
    );
    drop(client);
    // kill -9: no snapshot at the end; the batches after the last snapshot are replayed.
    broker.kill9();
    assert_eq!(
        snapshot_files(&data, TOPIC_RESTART),
        ["00000000000000000010.snapshot"]
    );
    let broker = Broker::start(&data);
    let topic_id = wire::wait_for_topic(&broker, TOPIC_RESTART, 1, false);
    let mut client = wire::connect(&broker);
    assert_eq!(send(&mut client, topic_id, next), (error::NONE, 10));
    assert_eq!(
        send(&mut client, topic_id, idempotent_batch(pid, epoch, 14, 2)),
        (error::NONE, 14)
    );
    let log = wire::fetch_all(&mut client, TOPIC_RESTART, 0, 0);
    assert_eq!(log.high_watermark, 16, "no retry appended twice");
    // The recovery snapshotted the log end again.
    assert!(
        snapshot_files(&data, TOPIC_RESTART).contains(&"00000000000000000014.snapshot".to_owned()),
        "{:?}",
        snapshot_files(&data, TOPIC_RESTART)
    );
}
