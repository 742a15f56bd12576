//! The requests the write-path tests send with the raw client: Produce, Fetch (whole
//! partitions, every batch decoded and checked), ListOffsets, Metadata, CreateTopics,
//! DeleteTopics, CreatePartitions and DeleteRecords.

use std::time::{Duration, Instant};

use bytes::Bytes;
use gregor_protocol::messages::create_partitions_request::{
    CreatePartitionsRequest, CreatePartitionsTopic,
};
use gregor_protocol::messages::create_topics_request::{
    CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
};
use gregor_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsRequest, DeleteRecordsTopic,
};
use gregor_protocol::messages::delete_topics_request::{DeleteTopicState, DeleteTopicsRequest};
use gregor_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use gregor_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use gregor_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use gregor_protocol::messages::metadata_response::MetadataResponse;
use gregor_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use gregor_protocol::messages::produce_response::PartitionProduceResponse;
use gregor_protocol::records::{
    Batch, Compression, NewRecord, RecordBatch, RecordBatchBuilder, RecordBatches,
};
use gregor_protocol::{ApiKey, Uuid};

use crate::support::{Broker, RawClient, advertised_versions};

/// Kafka error codes the tests look for.
pub mod error {
    pub const NONE: i16 = 0;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
}

/// ListOffsets timestamps with a special meaning.
pub const LATEST: i64 = -1;
/// The log start offset.
pub const EARLIEST: i64 = -2;
/// The record with the largest timestamp (ListOffsets v7+).
pub const MAX_TIMESTAMP: i64 = -3;

/// Produce version of the tests that name topics (v13 names them by id).
pub const PRODUCE_BY_NAME: i16 = 12;
/// Fetch version used to read partitions back (by name, flexible).
pub const FETCH_VERSION: i16 = 12;
/// ListOffsets version (max timestamp needs v7).
pub const LIST_OFFSETS_VERSION: i16 = 8;
/// Metadata version (topic ids from v10).
pub const METADATA_VERSION: i16 = 12;

/// How long the tests wait for metadata to show a new topic or forget a deleted one.
pub const METADATA_WAIT: Duration = Duration::from_secs(30);

/// A new connection to `broker`.
pub fn connect(broker: &Broker) -> RawClient {
    RawClient::connect(broker.addr()).expect("connect to the broker")
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time after 1970")
        .as_millis() as i64
}

/// One encoded v2 batch of `records` (base offset 0, as producers send them).
pub fn batch(records: &[NewRecord], codec: Compression) -> Bytes {
    RecordBatchBuilder::new()
        .compression(codec)
        .build(records)
        .expect("encode a record batch")
}

/// A Produce request for one topic (by name, or by id from v13) with one batch per
/// partition in `data`.
pub fn produce_request(
    topic: &str,
    topic_id: Uuid,
    acks: i16,
    data: Vec<(i32, Bytes)>,
) -> ProduceRequest {
    ProduceRequest {
        transactional_id: None,
        acks,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            topic_id,
            partition_data: data
                .into_iter()
                .map(|(index, records)| PartitionProduceData {
                    index,
                    records: Some(records),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Sends one Produce request and returns the partition responses in request order
/// (panics unless the response names exactly the topic and partitions asked for).
pub fn produce(
    client: &mut RawClient,
    version: i16,
    request: &ProduceRequest,
) -> std::io::Result<Vec<PartitionProduceResponse>> {
    let response = client.call(request, version)?;
    assert_eq!(
        response.responses.len(),
        1,
        "one topic in the Produce v{version} response: {response:?}"
    );
    let topic = response.responses.into_iter().next().expect("one topic");
    let asked: Vec<i32> = request.topic_data[0]
        .partition_data
        .iter()
        .map(|p| p.index)
        .collect();
    let mut out = Vec::new();
    for index in asked {
        let found = topic
            .partition_responses
            .iter()
            .find(|p| p.index == index)
            .unwrap_or_else(|| panic!("no response for partition {index}: {topic:?}"));
        out.push(found.clone());
    }
    Ok(out)
}

/// Produces one batch to one partition with acks=-1; panics on an error code; returns
/// the partition response.
pub fn produce_ok(
    client: &mut RawClient,
    version: i16,
    topic: &str,
    topic_id: Uuid,
    partition: i32,
    records: Bytes,
) -> PartitionProduceResponse {
    let request = produce_request(topic, topic_id, -1, vec![(partition, records)]);
    let response = produce(client, version, &request)
        .expect("Produce request")
        .remove(0);
    assert_eq!(
        response.error_code,
        error::NONE,
        "Produce v{version} to {topic}-{partition}: {response:?}"
    );
    response
}

/// A partition read back with Fetch from an offset to the high watermark.
#[derive(Debug)]
pub struct FetchedLog {
    /// Every batch, in order, CRC and records checked.
    pub batches: Vec<RecordBatch>,
    /// The high watermark of the last response.
    pub high_watermark: i64,
    /// The log start offset of the last response.
    pub log_start_offset: i64,
}

impl FetchedLog {
    /// Every record with its batch's compression, in offset order.
    pub fn records(&self) -> Vec<gregor_protocol::records::Record> {
        self.batches
            .iter()
            .flat_map(|b| b.records().map(|r| r.expect("a record")))
            .collect()
    }
}

/// One partition of a Fetch response: error, high watermark, log start offset, records.
pub fn fetch_once(
    client: &mut RawClient,
    topic: &str,
    partition: i32,
    offset: i64,
    max_bytes: i32,
) -> (i16, i64, i64, Bytes) {
    let request = FetchRequest {
        replica_id: -1,
        max_wait_ms: 0,
        min_bytes: 1,
        max_bytes,
        isolation_level: 0,
        session_id: 0,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: topic.into(),
            partitions: vec![FetchPartition {
                partition,
                fetch_offset: offset,
                partition_max_bytes: max_bytes,
                log_start_offset: -1,
                current_leader_epoch: -1,
                last_fetched_epoch: -1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = client.call(&request, FETCH_VERSION).expect("Fetch request");
    assert_eq!(response.error_code, error::NONE, "Fetch: {response:?}");
    let topic_response = response
        .responses
        .into_iter()
        .next()
        .expect("one topic in the Fetch response");
    let p = topic_response
        .partitions
        .into_iter()
        .next()
        .expect("one partition in the Fetch response");
    (
        p.error_code,
        p.high_watermark,
        p.log_start_offset,
        p.records.unwrap_or_default(),
    )
}

/// Reads `topic`-`partition` from `from` to its high watermark with Fetch requests of at
/// most `max_bytes`, checking that every response holds whole, valid v2 batches (CRC and
/// every record decoded) that follow each other without gaps from `from`.
pub fn fetch_all(client: &mut RawClient, topic: &str, partition: i32, from: i64) -> FetchedLog {
    let max_bytes = 1 << 20;
    let mut batches: Vec<RecordBatch> = Vec::new();
    let mut next = from;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, high_watermark, log_start_offset, records) =
            fetch_once(client, topic, partition, next, max_bytes);
        assert_eq!(
            code,
            error::NONE,
            "Fetch {topic}-{partition} at offset {next}: error {code}"
        );
        let mut iter = RecordBatches::new(records.clone());
        let mut got_any = false;
        for entry in iter.by_ref() {
            let entry = entry.unwrap_or_else(|e| {
                panic!("Fetch {topic}-{partition} at {next}: undecodable batch: {e}")
            });
            let Batch::V2(batch) = entry else {
                panic!("Fetch {topic}-{partition} at {next}: a legacy message set");
            };
            batch.validate().unwrap_or_else(|e| {
                panic!(
                    "Fetch {topic}-{partition} at {next}: invalid batch at offset {}: {e}",
                    batch.base_offset()
                )
            });
            if batches.is_empty() && batch.base_offset() < next && batch.last_offset() >= next {
                // The batch holding the first offset asked for may start before it (a log
                // start offset inside a batch, after DeleteRecords); Kafka sends it whole.
                next = batch.last_offset() + 1;
                got_any = true;
                batches.push(batch);
                continue;
            }
            if batch.last_offset() < next {
                // A batch wholly before the fetch offset would be a broker bug.
                panic!(
                    "Fetch {topic}-{partition} at {next}: batch {}..={} ends before the fetch offset",
                    batch.base_offset(),
                    batch.last_offset()
                );
            }
            assert_eq!(
                batch.base_offset(),
                next,
                "Fetch {topic}-{partition}: the batch after offset {} starts at {} (a gap or an overlap)",
                next - 1,
                batch.base_offset()
            );
            next = batch.last_offset() + 1;
            got_any = true;
            batches.push(batch);
        }
        if next >= high_watermark {
            assert_eq!(
                next, high_watermark,
                "{topic}-{partition}: the last batch ends past the high watermark"
            );
            return FetchedLog {
                batches,
                high_watermark,
                log_start_offset,
            };
        }
        assert!(
            got_any,
            "Fetch {topic}-{partition} at {next} returned no whole batch below the high \
             watermark {high_watermark} ({} bytes, truncated: {})",
            records.len(),
            iter.is_truncated()
        );
        assert!(
            Instant::now() < deadline,
            "reading {topic}-{partition} took too long"
        );
    }
}

/// ListOffsets of one partition: (error code, offset, timestamp).
pub fn list_offset(
    client: &mut RawClient,
    topic: &str,
    partition: i32,
    timestamp: i64,
) -> (i16, i64, i64) {
    let request = ListOffsetsRequest {
        replica_id: -1,
        isolation_level: 0,
        topics: vec![ListOffsetsTopic {
            name: topic.into(),
            partitions: vec![ListOffsetsPartition {
                partition_index: partition,
                current_leader_epoch: -1,
                timestamp,
                ..Default::default()
            }],
            ..Default::default()
        }],
        timeout_ms: 30_000,
        ..Default::default()
    };
    let response = client
        .call(&request, LIST_OFFSETS_VERSION)
        .expect("ListOffsets request");
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.offset, p.timestamp)
}

/// ListOffsets of one partition that must succeed: (offset, timestamp).
pub fn list_offset_ok(
    client: &mut RawClient,
    topic: &str,
    partition: i32,
    timestamp: i64,
) -> (i64, i64) {
    let (code, offset, ts) = list_offset(client, topic, partition, timestamp);
    assert_eq!(
        code,
        error::NONE,
        "ListOffsets {topic}-{partition} timestamp {timestamp}"
    );
    (offset, ts)
}

/// A Metadata request (v12) for `topics`.
pub fn metadata(client: &mut RawClient, topics: &[&str], auto_create: bool) -> MetadataResponse {
    let request = MetadataRequest {
        topics: Some(
            topics
                .iter()
                .map(|name| MetadataRequestTopic {
                    name: Some((*name).into()),
                    ..Default::default()
                })
                .collect(),
        ),
        allow_auto_topic_creation: auto_create,
        ..Default::default()
    };
    client
        .call(&request, METADATA_VERSION)
        .expect("Metadata request")
}

/// Waits until Metadata shows `topic` with `partitions` partitions, each led by a broker;
/// returns its id. `auto_create` asks for auto-creation in the requests.
pub fn wait_for_topic(broker: &Broker, topic: &str, partitions: usize, auto_create: bool) -> Uuid {
    let deadline = Instant::now() + METADATA_WAIT;
    let mut client = connect(broker);
    loop {
        let response = metadata(&mut client, &[topic], auto_create);
        let found = response
            .topics
            .iter()
            .find(|t| t.name.as_deref() == Some(topic));
        if let Some(t) = found
            && t.error_code == error::NONE
            && t.partitions.len() == partitions
            && t.partitions
                .iter()
                .all(|p| p.leader_id >= 0 && p.error_code == 0)
        {
            return t.topic_id;
        }
        assert!(
            Instant::now() < deadline,
            "topic {topic} with {partitions} led partitions did not appear in Metadata: {response:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether the broker advertises `api`.
pub fn serves(broker: &Broker, api: ApiKey) -> bool {
    advertised_versions(broker.addr(), api).is_some()
}

/// The highest version of `api` both the broker and this test know (at most `ours`).
fn version_for(broker: &Broker, api: ApiKey, ours: i16) -> Option<i16> {
    advertised_versions(broker.addr(), api).map(|(_, max)| max.min(ours))
}

/// Creates `topic` with CreateTopics (replication factor 1, `configs`); `None` when the
/// broker does not serve CreateTopics, else the topic's error code and message.
pub fn create_topic(
    broker: &Broker,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> Option<(i16, Option<String>)> {
    let version = version_for(broker, ApiKey::CreateTopics, 7)?;
    let request = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: topic.into(),
            num_partitions: partitions,
            replication_factor: 1,
            configs: configs
                .iter()
                .map(|(k, v)| CreatableTopicConfig {
                    name: (*k).into(),
                    value: Some((*v).into()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        timeout_ms: 30_000,
        validate_only: false,
        ..Default::default()
    };
    let response = connect(broker)
        .call(&request, version)
        .expect("CreateTopics request");
    let result = response
        .topics
        .iter()
        .find(|t| &*t.name == topic)
        .unwrap_or_else(|| panic!("no result for {topic} in {response:?}"));
    Some((
        result.error_code,
        result.error_message.as_ref().map(|m| m.to_string()),
    ))
}

/// The error code Metadata gives for `topic` without auto-creation (0 when it exists).
pub fn topic_error(broker: &Broker, topic: &str) -> i16 {
    let response = metadata(&mut connect(broker), &[topic], false);
    response
        .topics
        .iter()
        .find(|t| t.name.as_deref() == Some(topic))
        .map_or(error::UNKNOWN_TOPIC_OR_PARTITION, |t| t.error_code)
}

/// DeleteRecords of `topic`-`partition` before `offset`; `None` when the broker does not
/// serve it, else the error code and the new low watermark.
pub fn delete_records(
    broker: &Broker,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Option<(i16, i64)> {
    let version = version_for(broker, ApiKey::DeleteRecords, 2)?;
    let request = DeleteRecordsRequest {
        topics: vec![DeleteRecordsTopic {
            name: topic.into(),
            partitions: vec![DeleteRecordsPartition {
                partition_index: partition,
                offset,
                ..Default::default()
            }],
            ..Default::default()
        }],
        timeout_ms: 30_000,
        ..Default::default()
    };
    let response = connect(broker)
        .call(&request, version)
        .expect("DeleteRecords request");
    let p = &response.topics[0].partitions[0];
    Some((p.error_code, p.low_watermark))
}

/// Deletes `topic` with DeleteTopics; `None` when the broker does not serve it, else the
/// topic's error code.
pub fn delete_topic(broker: &Broker, topic: &str) -> Option<i16> {
    let version = version_for(broker, ApiKey::DeleteTopics, 6)?;
    let request = if version >= 6 {
        DeleteTopicsRequest {
            topics: vec![DeleteTopicState {
                name: Some(topic.into()),
                ..Default::default()
            }],
            timeout_ms: 30_000,
            ..Default::default()
        }
    } else {
        DeleteTopicsRequest {
            topic_names: vec![topic.into()],
            timeout_ms: 30_000,
            ..Default::default()
        }
    };
    let response = connect(broker)
        .call(&request, version)
        .expect("DeleteTopics request");
    let result = response
        .responses
        .first()
        .unwrap_or_else(|| panic!("no result in {response:?}"));
    Some(result.error_code)
}

/// Raises `topic` to `count` partitions with CreatePartitions; `None` when the broker does
/// not serve it, else the error code and message.
pub fn create_partitions(
    broker: &Broker,
    topic: &str,
    count: i32,
) -> Option<(i16, Option<String>)> {
    let version = version_for(broker, ApiKey::CreatePartitions, 3)?;
    let request = CreatePartitionsRequest {
        topics: vec![CreatePartitionsTopic {
            name: topic.into(),
            count,
            assignments: None,
            ..Default::default()
        }],
        timeout_ms: 30_000,
        validate_only: false,
        ..Default::default()
    };
    let response = connect(broker)
        .call(&request, version)
        .expect("CreatePartitions request");
    let result = response
        .results
        .first()
        .unwrap_or_else(|| panic!("no result in {response:?}"));
    Some((
        result.error_code,
        result.error_message.as_ref().map(|m| m.to_string()),
    ))
}
