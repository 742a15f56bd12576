//! Topic configs given at creation and honoured by the write path, before and after a
//! restart: `message.timestamp.type=LogAppendTime` stamps batches with the append time,
//! `max.message.bytes` refuses larger batches with MESSAGE_TOO_LARGE.

use bytes::Bytes;
use gregor_protocol::records::{Compression, NewRecord, TimestampType};

use crate::support::{Broker, DataDir};
use crate::wire::{self, error};

const TOPIC: &str = "configured";

/// MESSAGE_TOO_LARGE.
const MESSAGE_TOO_LARGE: i16 = 10;

fn records(n: usize, value_len: usize) -> Vec<NewRecord> {
    (0..n)
        .map(|j| {
            NewRecord::new(
                1_000_000 + j as i64,
                Some(Bytes::from(format!("k{j}"))),
                Some(Bytes::from(vec![b'v'; value_len])),
            )
        })
        .collect()
}

/// Produces a small batch (append time checked) and a batch over the limit (refused).
fn check_configs(broker: &Broker, topic_id: gregor_protocol::Uuid, context: &str) {
    let mut client = wire::connect(broker);
    let before = wire::now_ms();
    let small = wire::batch(&records(3, 100), Compression::None);
    let response = wire::produce_ok(
        &mut client,
        wire::PRODUCE_BY_NAME,
        TOPIC,
        topic_id,
        0,
        small,
    );
    let after = wire::now_ms();
    assert!(
        (before..=after).contains(&response.log_append_time_ms),
        "{context}: log_append_time_ms {} of a LogAppendTime topic, sent between {before} and {after}",
        response.log_append_time_ms
    );
    let big = wire::batch(&records(4, 1000), Compression::None);
    assert!(big.len() > 2000);
    let request = wire::produce_request(TOPIC, topic_id, -1, vec![(0, big)]);
    let refused = wire::produce(&mut client, wire::PRODUCE_BY_NAME, &request)
        .expect("Produce")
        .remove(0);
    assert_eq!(
        refused.error_code, MESSAGE_TOO_LARGE,
        "{context}: a batch over max.message.bytes=2000: {refused:?}"
    );
    let log = wire::fetch_all(&mut client, TOPIC, 0, 0);
    for batch in &log.batches {
        let header = batch.header();
        assert_eq!(
            header.timestamp_type(),
            TimestampType::LogAppendTime,
            "{context}: batch at {} should carry the LogAppendTime attribute",
            header.base_offset
        );
        assert!(
            header.max_timestamp > 1_000_000_000,
            "{context}: batch at {} keeps the producer's timestamp {}",
            header.base_offset,
            header.max_timestamp
        );
        for record in batch.records() {
            let record = record.expect("a record");
            assert_eq!(
                record.timestamp, header.max_timestamp,
                "{context}: record timestamp"
            );
        }
    }
    let last = log.batches.last().expect("a batch");
    assert_eq!(last.base_offset(), response.base_offset);
    assert_eq!(
        last.header().max_timestamp,
        response.log_append_time_ms,
        "{context}"
    );
}

#[test]
fn topic_configs_are_honoured_across_a_restart() {
    let data = DataDir::builder().build();
    let broker = Broker::start(&data);
    let configs = [
        ("message.timestamp.type", "LogAppendTime"),
        ("max.message.bytes", "2000"),
    ];
    let Some((code, message)) = wire::create_topic(&broker, TOPIC, 1, &configs) else {
        println!("note: the broker does not serve CreateTopics yet");
        return;
    };
    assert_eq!(code, error::NONE, "CreateTopics {configs:?}: {message:?}");
    let topic_id = wire::wait_for_topic(&broker, TOPIC, 1, false);
    check_configs(&broker, topic_id, "after creation");
    let mut broker = broker;
    broker.stop();
    let broker = Broker::start(&data);
    check_configs(&broker, topic_id, "after a restart");
}
