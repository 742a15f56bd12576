//! Pipelined connections (issue 14, phase 2): the broker overlaps a connection's requests
//! (a Produce's sync with the next request) but answers them in request order, appends one
//! connection's produces to a partition in request order, and a Fetch or Metadata behind a
//! Produce sees the log as after it.

use bytes::Bytes;
use gregor_protocol::ApiKey;
use gregor_protocol::messages::api_versions_request::ApiVersionsRequest;
use gregor_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use gregor_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use gregor_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use gregor_protocol::messages::produce_request::ProduceRequest;
use gregor_protocol::records::{NewRecord, RecordBatchBuilder};

use crate::records;
use crate::support::{Broker, DataDir, RawClient, advertised_versions, python_with_timeout};
use crate::wire::{self, error};

const TOPIC: &str = "pipelined";

/// One idempotent batch of 3 records, sequence `3 * n`.
fn batch(producer: Option<(i64, i16)>, n: usize) -> Bytes {
    let records: Vec<NewRecord> = (0..3)
        .map(|j| NewRecord::new(wire::now_ms(), None, Some(Bytes::from(format!("b{n}-{j}")))))
        .collect();
    let mut builder = RecordBatchBuilder::new();
    if let Some((pid, epoch)) = producer {
        builder = builder.producer(pid, epoch).base_sequence(3 * n as i32);
    }
    builder.build(&records).expect("encode a batch")
}

fn init_producer(client: &mut RawClient, broker: &Broker) -> Option<(i64, i16)> {
    let (_, max) = advertised_versions(broker.addr(), ApiKey::InitProducerId)?;
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
    Some((init.producer_id, init.producer_epoch))
}

fn produce(topic_id: uuid::Uuid, records: Bytes) -> ProduceRequest {
    wire::produce_request(TOPIC, topic_id, -1, vec![(0, records)])
}

/// A Fetch of partition 0 from offset 0 (no waiting).
fn fetch() -> FetchRequest {
    FetchRequest {
        replica_id: -1,
        max_wait_ms: 0,
        min_bytes: 1,
        max_bytes: 1 << 20,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: TOPIC.into(),
            partitions: vec![FetchPartition {
                partition: 0,
                fetch_offset: 0,
                partition_max_bytes: 1 << 20,
                log_start_offset: -1,
                current_leader_epoch: -1,
                last_fetched_epoch: -1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Sends `count` Produce requests of one partition in one write, then reads the answers:
/// each in request order (the client checks the correlation ids) and at the offset the
/// request order gives; the log holds the batches in that order.
fn pipelined_produces_land_in_order(props: &[(&str, &str)], idempotent: bool) {
    let data = DataDir::builder().build();
    let broker = Broker::start_with(&data, props);
    let topic_id = wire::wait_for_topic(&broker, TOPIC, 1, true);
    let mut client = wire::connect(&broker);
    let producer = if idempotent {
        match init_producer(&mut client, &broker) {
            Some(producer) => Some(producer),
            None => {
                println!("note: the broker does not serve InitProducerId");
                return;
            }
        }
    } else {
        None
    };
    let count = 60;
    let requests: Vec<(ProduceRequest, i16)> = (0..count)
        .map(|n| (produce(topic_id, batch(producer, n)), wire::PRODUCE_BY_NAME))
        .collect();
    client
        .send_all(&requests)
        .expect("send the pipelined requests");
    for n in 0..count {
        let response = client
            .recv::<ProduceRequest>()
            .expect("a Produce response")
            .body;
        let partition = &response.responses[0].partition_responses[0];
        assert_eq!(
            (partition.error_code, partition.base_offset),
            (error::NONE, 3 * n as i64),
            "request {n} of {count}: {partition:?}"
        );
    }
    let log = wire::fetch_all(&mut client, TOPIC, 0, 0);
    let values: Vec<Bytes> = log
        .records()
        .into_iter()
        .map(|r| r.value.expect("a value"))
        .collect();
    let expected: Vec<Bytes> = (0..count)
        .flat_map(|n| (0..3).map(move |j| Bytes::from(format!("b{n}-{j}"))))
        .collect();
    assert_eq!(values, expected, "the batches in request order");
}

#[test]
fn pipelined_idempotent_produces_with_flushes_land_in_request_order() {
    pipelined_produces_land_in_order(&[("log.flush.interval.messages", "1")], true);
}

#[test]
fn pipelined_produces_in_the_page_cache_land_in_request_order() {
    pipelined_produces_land_in_order(&[], false);
}

/// Produce, Fetch, Metadata, ApiVersions interleaved without waiting: answered in request
/// order, and each Fetch sees exactly the produces sent before it (the next Produce starts
/// only once the Fetch is done; the Fetch only once the Produce before it appended).
#[test]
fn a_mixed_pipeline_keeps_request_order() {
    let data = DataDir::builder().build();
    let broker = Broker::start_with(&data, &[("log.flush.interval.messages", "1")]);
    let topic_id = wire::wait_for_topic(&broker, TOPIC, 1, true);
    let mut client = wire::connect(&broker);
    let rounds = 8;
    for n in 0..rounds {
        client
            .send(&produce(topic_id, batch(None, n)), wire::PRODUCE_BY_NAME)
            .expect("send Produce");
        client
            .send(&fetch(), wire::FETCH_VERSION)
            .expect("send Fetch");
        client
            .send(
                &MetadataRequest {
                    topics: Some(vec![MetadataRequestTopic {
                        name: Some(TOPIC.into()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                },
                wire::METADATA_VERSION,
            )
            .expect("send Metadata");
        client
            .send(&ApiVersionsRequest::default(), 2)
            .expect("send ApiVersions");
    }
    for n in 0..rounds {
        let produced = client.recv::<ProduceRequest>().expect("Produce").body;
        let partition = &produced.responses[0].partition_responses[0];
        assert_eq!(
            (partition.error_code, partition.base_offset),
            (error::NONE, 3 * n as i64),
            "round {n}: {partition:?}"
        );
        let fetched = client.recv::<FetchRequest>().expect("Fetch").body;
        let p = &fetched.responses[0].partitions[0];
        assert_eq!(p.error_code, error::NONE, "round {n}: {p:?}");
        assert_eq!(
            p.high_watermark,
            3 * (n as i64 + 1),
            "round {n}: the Fetch sees the produces before it and none after"
        );
        let metadata = client.recv::<MetadataRequest>().expect("Metadata").body;
        assert_eq!(metadata.topics.len(), 1, "round {n}: {metadata:?}");
        let versions = client
            .recv::<ApiVersionsRequest>()
            .expect("ApiVersions")
            .body;
        assert_eq!(versions.error_code, error::NONE);
    }
}

/// A connection closing with requests in flight: the broker drops them and keeps serving
/// others; what was acknowledged is there.
#[test]
fn a_connection_closing_mid_pipeline_leaves_the_broker_serving() {
    let data = DataDir::builder().build();
    let broker = Broker::start_with(&data, &[("log.flush.interval.messages", "1")]);
    let topic_id = wire::wait_for_topic(&broker, TOPIC, 1, true);
    {
        let mut client = wire::connect(&broker);
        let requests: Vec<(ProduceRequest, i16)> = (0..20)
            .map(|n| (produce(topic_id, batch(None, n)), wire::PRODUCE_BY_NAME))
            .collect();
        client.send_all(&requests).expect("send");
        // Dropped without reading a response.
    }
    let mut client = wire::connect(&broker);
    let response = wire::produce_ok(
        &mut client,
        wire::PRODUCE_BY_NAME,
        TOPIC,
        topic_id,
        0,
        batch(None, 1000),
    );
    let log = wire::fetch_all(&mut client, TOPIC, 0, 0);
    // The dropped connection's requests may still be appended around this one (its
    // requests in flight finish their append): whole batches only, this one among them.
    let records = log.records();
    assert_eq!(records.len() as i64, log.high_watermark, "{log:?}");
    assert_eq!(log.high_watermark % 3, 0, "whole batches only");
    assert!(log.high_watermark <= 3 * 21, "{}", log.high_watermark);
    let first = records[response.base_offset as usize].value.clone();
    assert_eq!(first.as_deref(), Some(&b"b1000-0"[..]));
}

/// confluent-kafka's idempotent producer with five requests in flight and many small
/// batches to one partition: every record acknowledged once, at offsets in send order.
#[test]
fn confluent_idempotent_producer_with_five_in_flight_keeps_order() {
    let data = DataDir::builder().build();
    let broker = Broker::start_with(
        &data,
        &[
            ("num.partitions", "1"),
            ("log.flush.interval.messages", "1"),
        ],
    );
    let topic = "pipelined-confluent";
    let count = 20_000;
    let base_ts = wire::now_ms() - 60_000;
    let (bootstrap, count_arg, base) = (broker.bootstrap(), count.to_string(), base_ts.to_string());
    let Some(out) = python_with_timeout(
        "produce_confluent.py",
        &[
            "--bootstrap",
            &bootstrap,
            "--timeout",
            "200",
            "--topic",
            topic,
            "--count",
            &count_arg,
            "--tag",
            topic,
            "--base-ts",
            &base,
            "--idempotence",
            "--max-in-flight",
            "5",
            "--linger-ms",
            "0",
            "--batch-size",
            "2048",
        ],
        std::time::Duration::from_secs(240),
    ) else {
        return;
    };
    out.assert_success();
    println!("{}", out.stderr.trim());
    let acks = records::parse_acks(&out);
    let counts = records::check_acks("confluent-kafka", &acks, count);
    assert_eq!(
        counts.get(&0),
        Some(&(count as i64)),
        "one partition: {counts:?}"
    );
    let mut client = wire::connect(&broker);
    let log = wire::fetch_all(&mut client, topic, 0, 0);
    assert_eq!(log.high_watermark, count as i64);
    let mut batches = 0;
    for (offset, record) in log.records().into_iter().enumerate() {
        if let Some(value) = record.value.filter(|v| !v.is_empty()) {
            let prefix = format!("{topic}-{offset}:");
            assert!(
                value.starts_with(prefix.as_bytes()),
                "offset {offset} holds another record"
            );
        }
        batches += 1;
    }
    println!("{batches} records in {} batches", log.batches.len());
}
