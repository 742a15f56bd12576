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
