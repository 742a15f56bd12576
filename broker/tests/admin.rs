//! The admin APIs of the `gregor` binary over TCP, against Apache Kafka 4.x's answers:
//! CreateTopics, DeleteTopics, CreatePartitions, DeleteRecords, DescribeConfigs,
//! IncrementalAlterConfigs, AlterConfigs (`admin/dynamic_configs.rs`), DescribeCluster and InitProducerId, each at both ends of its
//! version range and on its error paths; then what they change seen through Produce,
//! Fetch, ListOffsets and Metadata, on disk, and after a restart; then the real clients
//! (kafka-python's and confluent-kafka's admin clients, an idempotent producer).
//!
//! Each test starts its own broker on free ports, so they run in parallel.

mod support;

#[path = "admin/features.rs"]
mod features;
#[path = "admin/legacy_versions.rs"]
mod legacy_versions;
#[path = "admin/log_dirs.rs"]
mod log_dirs;
#[path = "admin/metadata_snapshots.rs"]
mod metadata_snapshots;
#[path = "admin/storage_errors.rs"]
mod storage_errors;
#[path = "admin/telemetry.rs"]
mod telemetry;

#[path = "admin/dynamic_configs.rs"]
mod dynamic_configs;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gregor_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsRequest, CreatePartitionsTopic,
};
use gregor_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use gregor_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
};
use gregor_protocol::messages::create_topics_response::{
    CreatableTopicResult, CreateTopicsResponse,
};
use gregor_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsRequest, DeleteRecordsTopic,
};
use gregor_protocol::messages::delete_records_response::DeleteRecordsResponse;
use gregor_protocol::messages::delete_topics_request::{DeleteTopicState, DeleteTopicsRequest};
use gregor_protocol::messages::delete_topics_response::{
    DeletableTopicResult, DeleteTopicsResponse,
};
use gregor_protocol::messages::describe_cluster_request::DescribeClusterRequest;
use gregor_protocol::messages::describe_configs_request::{
    DescribeConfigsRequest, DescribeConfigsResource,
};
use gregor_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use gregor_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use gregor_protocol::messages::fetch_response::PartitionData;
use gregor_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig, IncrementalAlterConfigsRequest,
};
use gregor_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use gregor_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use gregor_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use gregor_protocol::messages::metadata_request::MetadataRequest;
use gregor_protocol::messages::metadata_response::MetadataResponse;
use gregor_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use gregor_protocol::messages::produce_response::PartitionProduceResponse;
use gregor_protocol::records::{Batch, NewRecord, RecordBatchBuilder, RecordBatches};
use gregor_protocol::{ApiKey, Uuid};
use support::{Broker, DataDir, RawClient, advertised_versions, python};

/// Kafka error codes the tests expect.
mod error {
    pub const NONE: i16 = 0;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const REQUEST_TIMED_OUT: i16 = 7;
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub const INVALID_PARTITIONS: i16 = 37;
    pub const INVALID_REPLICATION_FACTOR: i16 = 38;
    pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
    pub const INVALID_CONFIG: i16 = 40;
    pub const INVALID_REQUEST: i16 = 42;
    pub const POLICY_VIOLATION: i16 = 44;
    pub const TOPIC_DELETION_DISABLED: i16 = 73;
    pub const UNKNOWN_TOPIC_ID: i16 = 100;
    pub const MISMATCHED_ENDPOINT_TYPE: i16 = 114;
    pub const UNSUPPORTED_ENDPOINT_TYPE: i16 = 115;
}

/// DescribeConfigs' config sources.
mod source {
    pub const TOPIC_CONFIG: i8 = 1;
    pub const DYNAMIC_BROKER_CONFIG: i8 = 2;
    pub const STATIC_BROKER_CONFIG: i8 = 4;
    pub const DEFAULT_CONFIG: i8 = 5;
}

/// Config resource types.
mod resource {
    pub const TOPIC: i8 = 2;
    pub const BROKER: i8 = 4;
    pub const BROKER_LOGGER: i8 = 8;
    pub const CLIENT_METRICS: i8 = 16;
    pub const GROUP: i8 = 32;
}

/// IncrementalAlterConfigs operations.
mod op {
    pub const SET: i8 = 0;
    pub const DELETE: i8 = 1;
    pub const APPEND: i8 = 2;
    pub const SUBTRACT: i8 = 3;
}

/// Kafka's default message of INVALID_REQUEST.
const INVALID_REQUEST_MESSAGE: &str = "This most likely occurs because of a request being \
    malformed by the client library or the message was sent to an incompatible broker. See \
    the broker logs for more details.";

/// Every cluster operation, as Kafka reports them without an authorizer.
const CLUSTER_OPERATIONS: i32 =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);

/// The timestamps of the records the tests produce (2025-01-01, so that a short
/// `retention.ms` makes them expire at once).
const RECORD_TIMESTAMP: i64 = 1_735_689_600_000;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn start() -> (DataDir, Broker) {
    start_with(&[])
}

fn start_with(extra: &[(&str, &str)]) -> (DataDir, Broker) {
    let data = DataDir::builder().build();
    let broker = Broker::start_with(&data, extra);
    (data, broker)
}

fn connect(broker: &Broker) -> RawClient {
    RawClient::connect(broker.addr()).expect("connect to the broker")
}

fn new_topic(name: &str, partitions: i32, configs: &[(&str, &str)]) -> CreatableTopic {
    CreatableTopic {
        name: name.into(),
        num_partitions: partitions,
        replication_factor: 1,
        assignments: Vec::new(),
        configs: configs
            .iter()
            .map(|(k, v)| CreatableTopicConfig {
                name: (*k).into(),
                value: Some((*v).into()),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn create_request(topics: Vec<CreatableTopic>) -> CreateTopicsRequest {
    CreateTopicsRequest {
        topics,
        timeout_ms: 30_000,
        validate_only: false,
        ..Default::default()
    }
}

fn create_topics(
    client: &mut RawClient,
    version: i16,
    topics: Vec<CreatableTopic>,
) -> CreateTopicsResponse {
    client
        .call(&create_request(topics), version)
        .expect("CreateTopics")
}

/// Creates `name` (replication 1, configs) at the latest version and checks it worked.
fn create_topic(
    client: &mut RawClient,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> CreatableTopicResult {
    let response = create_topics(client, 7, vec![new_topic(name, partitions, configs)]);
    let result = response.topics.into_iter().next().expect("one result");
    assert_eq!(result.error_code, error::NONE, "create {name}: {result:?}");
    result
}

fn find_topic<'a>(results: &'a [CreatableTopicResult], name: &str) -> &'a CreatableTopicResult {
    results
        .iter()
        .find(|t| &*t.name == name)
        .unwrap_or_else(|| panic!("no result for {name} in {results:?}"))
}

fn delete_by_names(
    client: &mut RawClient,
    version: i16,
    names: &[&str],
    timeout_ms: i32,
) -> DeleteTopicsResponse {
    let request = DeleteTopicsRequest {
        topic_names: names.iter().map(|n| (*n).into()).collect(),
        timeout_ms,
        ..Default::default()
    };
    client.call(&request, version).expect("DeleteTopics")
}

fn delete_v6(client: &mut RawClient, topics: &[(Option<&str>, Uuid)]) -> DeleteTopicsResponse {
    let request = DeleteTopicsRequest {
        topics: topics
            .iter()
            .map(|(name, id)| DeleteTopicState {
                name: name.map(Into::into),
                topic_id: *id,
                ..Default::default()
            })
            .collect(),
        timeout_ms: 30_000,
        ..Default::default()
    };
    client.call(&request, 6).expect("DeleteTopics v6")
}

fn deleted<'a>(results: &'a [DeletableTopicResult], name: &str) -> &'a DeletableTopicResult {
    results
        .iter()
        .find(|r| r.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no result for {name} in {results:?}"))
}

/// The topics of a Metadata request for every topic: name -> (id, partition count).
fn topics(client: &mut RawClient) -> BTreeMap<String, (Uuid, usize)> {
    let request = MetadataRequest {
        topics: None,
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    let response: MetadataResponse = client.call(&request, 12).expect("Metadata");
    response
        .topics
        .into_iter()
        .map(|t| {
            (
                t.name.map(|n| n.to_string()).unwrap_or_default(),
                (t.topic_id, t.partitions.len()),
            )
        })
        .collect()
}

/// A batch of `count` records with values of `value_len` bytes.
fn batch(count: usize, value_len: usize) -> Bytes {
    let records: Vec<NewRecord> = (0..count)
        .map(|i| {
            NewRecord::new(
                RECORD_TIMESTAMP + i as i64,
                Some(Bytes::from(format!("key-{i}"))),
                Some(Bytes::from(vec![b'v'; value_len])),
            )
        })
        .collect();
    RecordBatchBuilder::new()
        .build(&records)
        .expect("encode a batch")
}

fn produce(
    client: &mut RawClient,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> PartitionProduceResponse {
    let request = ProduceRequest {
        transactional_id: None,
        acks: -1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index: partition,
                records: Some(records),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = client.call(&request, 9).expect("Produce");
    response.responses[0].partition_responses[0].clone()
}

/// Produces `batches` batches of `per_batch` small records; returns the next offset.
fn produce_batches(
    client: &mut RawClient,
    topic: &str,
    partition: i32,
    batches: usize,
    per_batch: usize,
) -> i64 {
    let mut next = 0;
    for _ in 0..batches {
        let response = produce(client, topic, partition, batch(per_batch, 10));
        assert_eq!(response.error_code, error::NONE, "produce: {response:?}");
        next = response.base_offset + per_batch as i64;
    }
    next
}

fn fetch(client: &mut RawClient, topic: &str, partition: i32, offset: i64) -> PartitionData {
    let request = FetchRequest {
        max_wait_ms: 0,
        min_bytes: 0,
        max_bytes: 10 << 20,
        topics: vec![FetchTopic {
            topic: topic.into(),
            partitions: vec![FetchPartition {
                partition,
                fetch_offset: offset,
                partition_max_bytes: 10 << 20,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = client.call(&request, 12).expect("Fetch");
    response.responses[0].partitions[0].clone()
}

/// The offsets of the records in a fetch answer.
fn fetched_offsets(data: &PartitionData) -> Vec<i64> {
    let Some(records) = data.records.clone() else {
        return Vec::new();
    };
    let mut offsets = Vec::new();
    for batch in RecordBatches::new(records) {
        let Batch::V2(batch) = batch.expect("a batch") else {
            panic!("legacy batch");
        };
        offsets.extend(batch.base_offset()..=batch.last_offset());
    }
    offsets
}

/// ListOffsets: (error, offset) of `timestamp` (-2 earliest, -1 latest).
fn list_offset(client: &mut RawClient, topic: &str, partition: i32, timestamp: i64) -> (i16, i64) {
    let request = ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic {
            name: topic.into(),
            partitions: vec![ListOffsetsPartition {
                partition_index: partition,
                timestamp,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = client.call(&request, 7).expect("ListOffsets");
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.offset)
}

fn delete_records(
    client: &mut RawClient,
    version: i16,
    topics: &[(&str, &[(i32, i64)])],
) -> DeleteRecordsResponse {
    let request = DeleteRecordsRequest {
        topics: topics
            .iter()
            .map(|(name, partitions)| DeleteRecordsTopic {
                name: (*name).into(),
                partitions: partitions
                    .iter()
                    .map(|(index, offset)| DeleteRecordsPartition {
                        partition_index: *index,
                        offset: *offset,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        timeout_ms: 30_000,
        ..Default::default()
    };
    client.call(&request, version).expect("DeleteRecords")
}

/// (error, low watermark) of one partition of a DeleteRecords answer.
fn low_watermark(response: &DeleteRecordsResponse, topic: &str, partition: i32) -> (i16, i64) {
    let p = response
        .topics
        .iter()
        .find(|t| &*t.name == topic)
        .and_then(|t| t.partitions.iter().find(|p| p.partition_index == partition))
        .unwrap_or_else(|| panic!("no result for {topic}-{partition} in {response:?}"));
    (p.error_code, p.low_watermark)
}

fn describe_resource(
    resource_type: i8,
    name: &str,
    keys: Option<&[&str]>,
) -> DescribeConfigsResource {
    DescribeConfigsResource {
        resource_type,
        resource_name: name.into(),
        configuration_keys: keys.map(|keys| keys.iter().map(|k| (*k).into()).collect()),
        ..Default::default()
    }
}

fn describe_configs(
    client: &mut RawClient,
    version: i16,
    resources: Vec<DescribeConfigsResource>,
    synonyms: bool,
    documentation: bool,
) -> Vec<DescribeConfigsResult> {
    let request = DescribeConfigsRequest {
        resources,
        include_synonyms: synonyms,
        include_documentation: documentation,
        ..Default::default()
    };
    client
        .call(&request, version)
        .expect("DescribeConfigs")
        .results
}

/// The configs of one topic (DescribeConfigs v4, with synonyms), by name.
fn topic_configs(
    client: &mut RawClient,
    topic: &str,
) -> BTreeMap<String, DescribeConfigsResourceResult> {
    let results = describe_configs(
        client,
        4,
        vec![describe_resource(resource::TOPIC, topic, None)],
        true,
        false,
    );
    assert_eq!(results[0].error_code, error::NONE, "{results:?}");
    by_name(&results[0])
}

fn by_name(result: &DescribeConfigsResult) -> BTreeMap<String, DescribeConfigsResourceResult> {
    result
        .configs
        .iter()
        .map(|c| (c.name.to_string(), c.clone()))
        .collect()
}

fn value(configs: &BTreeMap<String, DescribeConfigsResourceResult>, key: &str) -> Option<String> {
    configs
        .get(key)
        .unwrap_or_else(|| panic!("no config {key}"))
        .value
        .as_ref()
        .map(|v| v.to_string())
}

fn alter(name: &str, operation: i8, value: Option<&str>) -> AlterableConfig {
    AlterableConfig {
        name: name.into(),
        config_operation: operation,
        value: value.map(Into::into),
        ..Default::default()
    }
}

fn alter_resource(
    resource_type: i8,
    name: &str,
    configs: Vec<AlterableConfig>,
) -> AlterConfigsResource {
    AlterConfigsResource {
        resource_type,
        resource_name: name.into(),
        configs,
        ..Default::default()
    }
}

fn alter_configs(
    client: &mut RawClient,
    version: i16,
    resources: Vec<AlterConfigsResource>,
    validate_only: bool,
) -> Vec<AlterConfigsResourceResponse> {
    let request = IncrementalAlterConfigsRequest {
        resources,
        validate_only,
        ..Default::default()
    };
    client
        .call(&request, version)
        .expect("IncrementalAlterConfigs")
        .responses
}

fn alter_topic(client: &mut RawClient, topic: &str, configs: Vec<AlterableConfig>) {
    let responses = alter_configs(
        client,
        1,
        vec![alter_resource(resource::TOPIC, topic, configs)],
        false,
    );
    assert_eq!(responses[0].error_code, error::NONE, "{responses:?}");
}

fn create_partitions(
    client: &mut RawClient,
    version: i16,
    topics: Vec<CreatePartitionsTopic>,
    validate_only: bool,
    timeout_ms: i32,
) -> Vec<CreatePartitionsTopicResult> {
    let request = CreatePartitionsRequest {
        topics,
        timeout_ms,
        validate_only,
        ..Default::default()
    };
    client
        .call(&request, version)
        .expect("CreatePartitions")
        .results
}

fn grow(name: &str, count: i32, assignments: Option<Vec<Vec<i32>>>) -> CreatePartitionsTopic {
    CreatePartitionsTopic {
        name: name.into(),
        count,
        assignments: assignments.map(|a| {
            a.into_iter()
                .map(|broker_ids| CreatePartitionsAssignment {
                    broker_ids,
                    ..Default::default()
                })
                .collect()
        }),
        ..Default::default()
    }
}

fn grown<'a>(
    results: &'a [CreatePartitionsTopicResult],
    name: &str,
) -> &'a CreatePartitionsTopicResult {
    results
        .iter()
        .find(|r| &*r.name == name)
        .unwrap_or_else(|| panic!("no result for {name} in {results:?}"))
}

/// The partition directories of `topic` in the data directory, sorted.
fn partition_dirs(dir: &Path, topic: &str) -> Vec<String> {
    let mut dirs: Vec<String> = std::fs::read_dir(dir)
        .expect("read the data directory")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| {
            name.strip_prefix(topic)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|n| n.parse::<i32>().is_ok())
        })
        .collect();
    dirs.sort();
    dirs
}

/// Waits until `check` holds (polling), or panics with `what`.
fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------------------
// ApiVersions
// ---------------------------------------------------------------------------------------

#[test]
fn the_admin_apis_are_advertised_with_kafkas_version_ranges() {
    let (_data, broker) = start();
    // Kafka 3.9's floors where Kafka 4 raised them (`admin/legacy_versions.rs`).
    for (api, range) in [
        (ApiKey::CreateTopics, (0, 7)),
        (ApiKey::DeleteTopics, (0, 6)),
        (ApiKey::DeleteRecords, (0, 2)),
        (ApiKey::InitProducerId, (0, 6)),
        (ApiKey::DescribeConfigs, (0, 4)),
        (ApiKey::CreatePartitions, (0, 3)),
        (ApiKey::IncrementalAlterConfigs, (0, 1)),
        (ApiKey::DescribeCluster, (0, 2)),
    ] {
        assert_eq!(
            advertised_versions(broker.addr(), api),
            Some(range),
            "{api:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// CreateTopics
// ---------------------------------------------------------------------------------------

#[test]
fn create_topics_v7_answers_the_id_shape_and_configs_and_the_topic_is_usable() {
    let (data, broker) = start();
    let mut client = connect(&broker);
    let created = create_topic(&mut client, "orders", 3, &[("retention.ms", "3600000")]);
    assert!(!created.topic_id.is_nil());
    assert_eq!(created.error_message, None);
    assert_eq!(created.num_partitions, 3);
    assert_eq!(created.replication_factor, 1);
    assert_eq!(created.topic_config_error_code, error::NONE);
    let configs = created.configs.expect("configs (v5+)");
    let names: Vec<&str> = configs.iter().map(|c| &*c.name).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "configs sorted by name");
    assert!(configs.len() > 30, "every topic config: {names:?}");
    let get = |name: &str| {
        configs
            .iter()
            .find(|c| &*c.name == name)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    assert_eq!(get("retention.ms").value.as_deref(), Some("3600000"));
    assert_eq!(get("retention.ms").config_source, source::TOPIC_CONFIG);
    // server.properties sets log.segment.bytes: segment.bytes comes from there.
    assert_eq!(
        get("segment.bytes").config_source,
        source::STATIC_BROKER_CONFIG
    );
    assert_eq!(get("cleanup.policy").value.as_deref(), Some("delete"));
    assert_eq!(get("cleanup.policy").config_source, source::DEFAULT_CONFIG);
    assert!(configs.iter().all(|c| !c.read_only && !c.is_sensitive));

    // The same id in Metadata, and the partitions on disk.
    assert_eq!(topics(&mut client)["orders"], (created.topic_id, 3));
    assert_eq!(
        partition_dirs(data.path(), "orders"),
        vec!["orders-0", "orders-1", "orders-2"]
    );
    for partition in 0..3 {
        let id = std::fs::read_to_string(
            data.path()
                .join(format!("orders-{partition}"))
                .join("partition.metadata"),
        )
        .expect("partition.metadata");
        assert!(id.contains("topic_id:"), "{id}");
    }

    // Produce and fetch.
    let next = produce_batches(&mut client, "orders", 2, 2, 5);
    assert_eq!(next, 10);
    let fetched = fetch(&mut client, "orders", 2, 0);
    assert_eq!(fetched.error_code, error::NONE);
    assert_eq!(fetched.high_watermark, 10);
    assert_eq!(fetched_offsets(&fetched), (0..10).collect::<Vec<_>>());
}

#[test]
fn create_topics_v2_has_no_shape_and_reports_errors_with_messages() {
    let (_data, broker) = start();
    let mut client = connect(&broker);
    let response = create_topics(&mut client, 2, vec![new_topic("v2-topic", 2, &[])]);
    let result = &response.topics[0];
    assert_eq!(result.error_code, error::NONE);
    assert_eq!(result.error_message, None);
    // Fields of v5+ and v7+ are not on the wire at v2: the decoder leaves the defaults.
    assert_eq!(result.num_partitions, -1);
    assert_eq!(result.replication_factor, -1);
    assert!(result.topic_id.is_nil());
    assert_eq!(topics(&mut client)["v2-topic"].1, 2);

    let response = create_topics(&mut client, 2, vec![new_topic("v2-topic", 2, &[])]);
    assert_eq!(response.topics[0].error_code, error::TOPIC_ALREADY_EXISTS);
    assert_eq!(
        response.topics[0].error_message.as_deref(),
        Some("Topic 'v2-topic' already exists.")
    );
}

#[test]
fn create_topics_refuses_what_kafka_refuses_and_creates_the_rest() {
    let (_data, broker) = start();
    let mut client = connect(&broker);
    let mut manual = new_topic("manual-with-rf", -1, &[]);
    manual.assignments = vec![CreatableReplicaAssignment {
        partition_index: 0,
        broker_ids: vec![1],
        ..Default::default()
    }];
    let mut rf_two = new_topic("rf-two", 1, &[]);
    rf_two.replication_factor = 2;
    let mut defaults = new_topic("defaults", -1, &[]);
    defaults.replication_factor = -1;
    let response = create_topics(
        &mut client,
        7,
        vec![
            new_topic("dup", 1, &[]),
            new_topic("fine", 1, &[]),
            new_topic("dup", 2, &[]),
            new_topic("bad name!", 1, &[]),
            new_topic("zero", 0, &[]),
            rf_two,
            manual,
            new_topic("unknown-config", 1, &[("no.such.option", "1")]),
            new_topic("bad-value", 1, &[("retention.ms", "soon")]),
            new_topic("__cluster_metadata", 1, &[]),
            defaults,
        ],
    );
    let results = &response.topics;
    assert_eq!(results.len(), 10, "{results:?}");
    // The controller's results in request order, then the duplicates, then the refused.
    let order: Vec<&str> = results.iter().map(|r| &*r.name).collect();
    assert_eq!(
        order,
        [
            "fine",
            "bad name!",
            "zero",
            "rf-two",
            "manual-with-rf",
            "unknown-config",
            "bad-value",
            "defaults",
            "dup",
            "__cluster_metadata"
        ]
    );
    let check = |name: &str, code: i16, message: &str| {
        let r = find_topic(results, name);
        assert_eq!(
            (r.error_code, r.error_message.as_deref()),
            (code, Some(message)),
            "{name}"
        );
        assert!(r.topic_id.is_nil());
        assert_eq!((r.num_partitions, r.replication_factor), (-1, -1));
        assert_eq!(r.configs.as_deref(), Some(&[][..]));
    };
    check("dup", error::INVALID_REQUEST, "Duplicate topic name.");
    check(
        "bad name!",
        error::INVALID_TOPIC_EXCEPTION,
        "Topic name \"bad name!\" is illegal, it contains a character other than ASCII \
         alphanumerics, '.', '_' and '-'",
    );
    check(
        "zero",
        error::INVALID_PARTITIONS,
        "Number of partitions was set to an invalid non-positive value.",
    );
    check(
        "rf-two",
        error::INVALID_REPLICATION_FACTOR,
        "Unable to replicate the partition 2 time(s): The target replication factor of 2 \
         cannot be reached because only 1 broker(s) are registered.",
    );
    check(
        "manual-with-rf",
        error::INVALID_REQUEST,
        "A manual partition assignment was specified, but replication factor was not set to -1.",
    );
    check(
        "unknown-config",
        error::INVALID_CONFIG,
        "Unknown topic config name: no.such.option",
    );
    check(
        "bad-value",
        error::INVALID_CONFIG,
        "Invalid value soon for configuration retention.ms: Not a number of type LONG",
    );
    check(
        "__cluster_metadata",
        error::TOPIC_AUTHORIZATION_FAILED,
        "Authorization failed.",
    );
    let fine = find_topic(results, "fine");
    assert_eq!(fine.error_code, error::NONE);
    // -1/-1: the broker's num.partitions (1) and default.replication.factor (1).
    let defaults = find_topic(results, "defaults");
    assert_eq!(
        (
            defaults.error_code,
            defaults.num_partitions,
            defaults.replication_factor
        ),
        (error::NONE, 1, 1)
    );
    let existing = topics(&mut client);
    assert_eq!(
        existing.keys().map(String::as_str).collect::<Vec<_>>(),
        ["defaults", "fine"]
    );
}

#[test]
fn create_topics_validate_only_and_a_passed_deadline_create_nothing() {
    let (data, broker) = start();
    let mut client = connect(&broker);
    let mut request = create_request(vec![new_topic("checked", 2, &[("retention.ms", "1000")])]);
    request.validate_only = true;
    let response = client.call(&request, 7).expect("CreateTopics");
    let result = &response.topics[0];
    assert_eq!(result.error_code, error::NONE);
    assert_eq!((result.num_partitions, result.replication_factor), (2, 1));
    // Kafka draws an id even for a validation.
    assert!(!result.topic_id.is_nil());
    assert!(result.configs.as_ref().is_some_and(|c| !c.is_empty()));

    let mut request = create_request(vec![new_topic("late", 1, &[]), new_topic("late2", 1, &[])]);
    request.timeout_ms = 0;
    let response = client.call(&request, 5).expect("CreateTopics");
    for result in &response.topics {
        assert_eq!(result.error_code, error::REQUEST_TIMED_OUT, "{result:?}");
        assert_eq!(result.error_message, None);
    }
    assert!(topics(&mut client).is_empty());
    assert!(partition_dirs(data.path(), "checked").is_empty());
    assert!(partition_dirs(data.path(), "late").is_empty());
}

#[test]
fn create_topics_with_a_manual_assignment() {
    let (_data, broker) = start();
    let mut client = connect(&broker);
    let mut topic = new_topic("assigned", -1, &[]);
    topic.replication_factor = -1;
    topic.assignments = (0..2)
        .map(|p| CreatableReplicaAssignment {
            partition_index: p,
            broker_ids: vec![1],
            ..Default::default()
        })
        .collect();
    let mut unknown_broker = new_topic("unknown-broker", -1, &[]);
    unknown_broker.replication_factor = -1;
    unknown_broker.assignments = vec![CreatableReplicaAssignment {
        partition_index: 0,
        broker_ids: vec![7],
        ..Default::default()
    }];
    let response = create_topics(&mut client, 6, vec![topic, unknown_broker]);
    let assigned = find_topic(&response.topics, "assigned");
    assert_eq!(
        (assigned.error_code, assigned.num_partitions),
        (error::NONE, 2)
    );
    let unknown = find_topic(&response.topics, "unknown-broker");
    assert_eq!(unknown.error_code, error::INVALID_REPLICA_ASSIGNMENT);
    assert_eq!(
        unknown.error_message.as_deref(),
        Some(
            "The manual partition assignment includes broker 7, but no such broker is registered."
        )
    );
}

#[test]
fn a_topic_created_with_max_message_bytes_refuses_larger_batches() {
    let (_data, broker) = start();
    let mut client = connect(&broker);
    create_topic(&mut client, "small", 1, &[("max.message.bytes", "2000")]);
    let big = produce(&mut client, "small", 0, batch(1, 4000));
    assert_eq!(big.error_code, error::MESSAGE_TOO_LARGE, "{big:?}");
    let fits = produce(&mut client, "small", 0, batch(1, 500));
    assert_eq!(fits.error_code, error::NONE, "{fits:?}");
}

// ---------------------------------------------------------------------------------------
// DeleteTopics
// ---------------------------------------------------------------------------------------

#[test]
fn delete_topics_v1_removes_the_topic_and_its_directories() {
    let (data, broker) = start();
    let mut client = connect(&broker);
    create_topic(&mut client, "doomed", 2, &[]);
    produce_batches(&mut client, "doomed", 0, 1, 3);
    assert_eq!(partition_dirs(data.path(), "doomed").len(), 2);
    let response = delete_by_names(&mut client, 1, &["doomed", "never-was"], 30_000);
    assert_eq!(
        deleted(&response.responses, "doomed").error_code,
        error::NONE
    );
    assert_eq!(
        deleted(&response.responses, "never-was").error_code,
        error::UNKNOWN_TOPIC_OR_PARTITION
    );
    assert!(topics(&mut client).is_empty());
    assert!(partition_dirs(data.path(), "doomed").is_empty());
    // Its partitions are gone for Fetch (which never creates topics).
    let fetched = fetch(&mut client, "doomed", 0, 0);
    assert_eq!(fetched.error_code, error::UNKNOWN_TOPIC_OR_PARTITION);
}

#[test]
fn delete_topics_v5_names_unknown_and_duplicate_topics_with_messages() {
    let (_data, broker) = start();
    let mut client = connect(&broker);
    create_topic(&mut client, "twice", 1, &[]);
    create_topic(&mut client, "once", 1, &[]);
    let response = delete_by_names(&mut client, 5, &["twice", "ghost", "twice", "once"], 30_000);
    let results = &response.responses;
    assert_eq!(results.len(), 3, "{results:?}");
    let twice = deleted(results, "twice");
    assert_eq!(
        (twice.error_code, twice.error_message.as_deref()),
        (error::INVALID_REQUEST, Some("Duplicate topic name."))
    );
    let ghost = deleted(results, "ghost");
    assert_eq!(
        (ghost.error_code, ghost.error_message.as_deref()),
        (
            error::UNKNOWN_TOPIC_OR_PARTITION,
            Some("This server does not host this topic-partition.")
        )
    );
    let once = deleted(results, "once");
    assert_eq!(
        (once.error_code, once.error_message.as_deref()),
        (error::NONE, None)
    );
    assert_eq!(topics(&mut client).keys().collect::<Vec<_>>(), ["twice"]);
}

#[test]
fn delete_topics_v6_by_id_and_by_name() {
    let (_data, broker) = start();
    let mut client = connect(&broker);
    let a = create_topic(&mut client, "by-id", 1, &[]).topic_id;
    let b = create_topic(&mut client, "by-name", 1, &[]).topic_id;
    let c = create_topic(&mut client, "clash", 1, &[]).topic_id;
    let d = create_topic(&mut client, "both", 1, &[]).topic_id;
    let unknown = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
    let response = delete_v6(
        &mut client,
        &[
            (None, a),
            (Some("by-name"), Uuid::nil()),
            (None, unknown),
            (Some("both"), d),
            (None, Uuid::nil()),
            (None, c),
            (Some("clash"), Uuid::nil()),
        ],
    );
    let results = &response.responses;
    let by_id = results.iter().find(|r| r.topic_id == a).expect("by-id");
    assert_eq!(
        (
            by_id.name.as_deref(),
            by_id.error_code,
            by_id.error_message.as_deref()
        ),
        (Some("by-id"), error::NONE, None)
    );
    let by_name = deleted(results, "by-name");
    assert_eq!((by_name.topic_id, by_name.error_code), (b, error::NONE));
    let missing = results
        .iter()
        .find(|r| r.topic_id == unknown)
        .expect("unknown id");
    assert_eq!(
        (
            missing.name.as_deref(),
            missing.error_code,
            missing.error_message.as_deref()
        ),
        (
            None,
            error::UNKNOWN_TOPIC_ID,
            Some("This server does not host this topic ID.")
        )
    );
    let both = deleted(results, "both");
    assert_eq!(
        (both.error_code, both.error_message.as_deref()),
        (
            error::INVALID_REQUEST,
            Some("You may not specify both topic name and topic id.")
        )
    );
    let neither = results
        .iter()
        .find(|r| r.name.is_none() && r.topic_id.is_nil())
        .expect("neither");
    assert_eq!(
        (neither.error_code, neither.error_message.as_deref()),
        (
            error::INVALID_REQUEST,
            Some("Neither topic name nor id were specified.")
        )
    );
    // A name whose id is also given: one answer, and the topic stays.
    let clashes: Vec<&DeletableTopicResult> = results.iter().filter(|r| r.topic_id == c).collect();
    assert_eq!(clashes.len(), 1, "{results:?}");
    assert_eq!(
        (clashes[0].name.as_deref(), clashes[0].error_code),
        (Some("clash"), error::INVALID_REQUEST)
    );
    assert_eq!(
        clashes[0].error_message.as_deref(),
        Some("The provided topic name maps to an ID that was already supplied.")
    );
    assert_eq!(results.len(), 6, "{results:?}");
    let left: Vec<String> = topics(&mut client).into_keys().collect();
    assert_eq!(left, ["both", "clash"]);

    // Ids given twice.
    let response = delete_v6(&mut client, &[(None, d), (None, d)]);
    assert_eq!(response.responses.len(), 1);
    assert_eq!(
        (
            response.responses[0].error_code,
            response.responses[0].error_message.as_deref()
        ),
        (error::INVALID_REQUEST, Some("Duplicate topic id."))
    );
}

#[test]
fn delete_topics_with_a_passed_deadline_deletes_nothing() {
    let (_data, broker) = start();
    let mut client = connect(&broker);
    create_topic(&mut client, "kept", 1, &[]);
    let response = delete_by_names(&mut client, 4, &["kept", "ghost"], 0);
    assert_eq!(response.responses.len(), 2);
    for result in &response.responses {
        assert_eq!(result.error_code, error::REQUEST_TIMED_OUT, "{result:?}");
    }
    assert!(topics(&mut client).contains_key("kept"));
    // An empty request is answered empty, whatever the timeout.
    assert!(delete_by_names(&mut client, 4, &[], 0).responses.is_empty());
}

#[test]
fn delete_topics_refused_when_deletion_is_disabled() {
    let (data, broker) = start_with(&[("delete.topic.enable", "false")]);
    let mut client = connect(&broker);
    create_topic(&mut client, "permanent", 1, &[]);
    for version in [1, 2] {
        let response = delete_by_names(&mut client, version, &["permanent", "ghost"], 30_000);
        assert_eq!(response.responses.len(), 2);
        for result in &response.responses {
            assert_eq!(
                result.error_code,
                error::INVALID_REQUEST,
                "v{version}: {result:?}"
            );
        }
    }
    for version in [3, 5] {
        let response = delete_by_names(&mut client, version, &["permanent"], 30_000);
        assert_eq!(
            response.responses[0].error_code,
            error::TOPIC_DELETION_DISABLED
        );
        assert_eq!(response.responses[0].error_message, None);
    }
    let response = delete_v6(&mut client, &[(Some("permanent"), Uuid::nil())]);
    assert_eq!(
        response.responses[0].error_code,
        error::TOPIC_DELETION_DISABLED
    );
    assert!(topics(&mut client).contains_key("permanent"));
    assert_eq!(partition_dirs(data.path(), "permanent").len(), 1);
}

#[test]
fn created_and_deleted_topics_survive_a_restart() {
    let data = DataDir::builder().build();
    let mut broker = Broker::start(&data);
    let mut client = connect(&broker);
    let kept = create_topic(&mut client, "kept", 2, &[("retention.ms", "86400000")]).topic_id;
    create_topic(&mut client, "dropped", 1, &[]);
    produce_batches(&mut client, "kept", 1, 2, 4);
    produce_batches(&mut client, "dropped", 0, 1, 4);
    let response = delete_by_names(&mut client, 6, &[], 30_000);
    assert!(response.responses.is_empty());
    let response = delete_v6(&mut client, &[(Some("dropped"), Uuid::nil())]);
    assert_eq!(response.responses[0].error_code, error::NONE);
    drop(client);
    broker.stop();

    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let after = topics(&mut client);
    assert_eq!(after.keys().collect::<Vec<_>>(), ["kept"]);
    assert_eq!(after["kept"], (kept, 2));
    assert!(partition_dirs(data.path(), "dropped").is_empty());
    assert_eq!(partition_dirs(data.path(), "kept").len(), 2);
    let configs = topic_configs(&mut client, "kept");
    assert_eq!(value(&configs, "retention.ms").as_deref(), Some("86400000"));
    assert_eq!(configs["retention.ms"].config_source, source::TOPIC_CONFIG);
    let fetched = fetch(&mut client, "kept", 1, 0);
    assert_eq!(fetched_offsets(&fetched), (0..8).collect::<Vec<_>>());
}

// ---------------------------------------------------------------------------------------
// CreatePartitions
// ---------------------------------------------------------------------------------------

#[test]
fn create_partitions_v0_and_v3_add_usable_partitions() {
    let (data, broker) = start();
    let mut client = connect(&broker);
    create_topic(&mut client, "growing", 1, &[]);
    create_topic(&mut client, "placed", 1, &[]);
    let results = create_partitions(
        &mut client,
        0,
        vec![grow("growing", 3, None)],
        false,
        30_000,
    );
    assert_eq!(
        (results[0].error_code, results[0].error_message.as_deref()),
        (error::NONE, None)
    );
    let results = create_partitions(
        &mut client,
        3,
        vec![grow("placed", 2, Some(vec![vec![1]]))],
        false,
        30_000,
    );
    assert_eq!(results[0].error_code, error::NONE, "{results:?}");
    let all = topics(&mut client);
    assert_eq!((all["growing"].1, all["placed"].1), (3, 2));
    assert_eq!(
        partition_dirs(data.path(), "growing"),
        ["growing-0", "growing-1", "growing-2"]
    );
    let response = produce(&mut client, "growing", 2, batch(3, 10));
    assert_eq!(
        (response.error_code, response.base_offset),
        (error::NONE, 0)
    );
    assert_eq!(
        fetched_offsets(&fetch(&mut client, "growing", 2, 0)),
        [0, 1, 2]
    );
}

#[test]
fn create_partitions_refuses_what_kafka_refuses() {
    let (_data, broker) = start();
    let mut client = connect(&broker);
    create_topic(&mut client, "three", 3, &[]);
    create_topic(&mut client, "one", 1, &[]);
    let results = create_partitions(
        &mut client,
        3,
        vec![
            grow("three", 3, None),
            grow("three-less", 2, None),
            grow("dup", 2, None),
            grow("dup", 3, None),
            grow("one", 3, Some(vec![vec![1]])),
        ],
        false,
        30_000,
    );
    // Duplicates come first, as in Kafka.
    assert_eq!(&*results[0].name, "dup");
    let check = |name: &str, code: i16, message: Option<&str>| {
        let r = grown(&results, name);
        assert_eq!(
            (r.error_code, r.error_message.as_deref()),
            (code, message),
            "{name}"
        );
    };
    check("dup", error::INVALID_REQUEST, Some("Duplicate topic name."));
    check(
        "three",
        error::INVALID_PARTITIONS,
        Some("Topic already has 3 partition(s)."),
    );
    // Kafka's controller throws a bare UnknownTopicOrPartitionException: no message.
    check("three-less", error::UNKNOWN_TOPIC_OR_PARTITION, None);
    check(
        "one",
        error::INVALID_REPLICA_ASSIGNMENT,
        Some(
            "Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified.",
        ),
    );
    assert_eq!(results.len(), 4);

    let results = create_partitions(&mut client, 1, vec![grow("three", 2, None)], false, 30_000);
    assert_eq!(
        (results[0].error_code, results[0].error_message.as_deref()),
        (
            error::INVALID_PARTITIONS,
            Some("The topic three currently has 3 partition(s); 2 would not be an increase.")
        )
    );
    let results = create_partitions(
        &mut client,
        2,
        vec![grow("one", 2, Some(vec![vec![9]]))],
        false,
        30_000,
    );
    assert_eq!(results[0].error_code, error::INVALID_REPLICA_ASSIGNMENT);

    // validate_only and a passed deadline change nothing.
    let results = create_partitions(&mut client, 3, vec![grow("one", 5, None)], true, 30_000);
    assert_eq!(results[0].error_code, error::NONE);
    let results = create_partitions(&mut client, 3, vec![grow("one", 5, None)], false, 0);
    assert_eq!(
        (results[0].error_code, results[0].error_message.as_deref()),
        (error::REQUEST_TIMED_OUT, None)
    );
    assert_eq!(topics(&mut client)["one"].1, 1);
}

// ---------------------------------------------------------------------------------------
// DeleteRecords
// ---------------------------------------------------------------------------------------

#[test]
fn delete_records_moves_the_log_start_offset_seen_by_list_offsets_and_fetch() {
    let data = DataDir::builder().build();
    let mut broker = Broker::start(&data);
    let mut client = connect(&broker);
    create_topic(&mut client, "trim", 2, &[]);
    assert_eq!(produce_batches(&mut client, "trim", 0, 4, 5), 20);
    produce_batches(&mut client, "trim", 1, 1, 5);

    let response = delete_records(&mut client, 0, &[("trim", &[(0, 7)])]);
    assert_eq!(low_watermark(&response, "trim", 0), (error::NONE, 7));
    assert_eq!(list_offset(&mut client, "trim", 0, -2), (error::NONE, 7));
    assert_eq!(list_offset(&mut client, "trim", 0, -1), (error::NONE, 20));
    let fetched = fetch(&mut client, "trim", 0, 0);
    assert_eq!(fetched.error_code, error::OFFSET_OUT_OF_RANGE);
    let fetched = fetch(&mut client, "trim", 0, 7);
    assert_eq!(fetched.error_code, error::NONE);
    assert_eq!(fetched.log_start_offset, 7);
    // The batch holding offset 7 starts at 5; the client skips what is below 7.
    assert_eq!(fetched_offsets(&fetched).first(), Some(&5));

    // A lower offset changes nothing; -1 is the high watermark; above it is out of range.
    let response = delete_records(
        &mut client,
        2,
        &[("trim", &[(0, 3), (1, -1)]), ("ghost", &[(0, 1)])],
    );
    assert_eq!(low_watermark(&response, "trim", 0), (error::NONE, 7));
    assert_eq!(low_watermark(&response, "trim", 1), (error::NONE, 5));
    assert_eq!(
        low_watermark(&response, "ghost", 0),
        (error::UNKNOWN_TOPIC_OR_PARTITION, -1)
    );
    let response = delete_records(&mut client, 1, &[("trim", &[(0, 21), (5, 0)])]);
    assert_eq!(
        low_watermark(&response, "trim", 0),
        (error::OFFSET_OUT_OF_RANGE, -1)
    );
    assert_eq!(
        low_watermark(&response, "trim", 5),
        (error::UNKNOWN_TOPIC_OR_PARTITION, -1)
    );
    let response = delete_records(&mut client, 2, &[("trim", &[(0, -2)])]);
    assert_eq!(
        low_watermark(&response, "trim", 0),
        (error::OFFSET_OUT_OF_RANGE, -1)
    );
    // A partition named twice: one answer, for the last offset.
    let response = delete_records(&mut client, 2, &[("trim", &[(0, 12), (0, 15)])]);
    assert_eq!(response.topics[0].partitions.len(), 1);
    assert_eq!(low_watermark(&response, "trim", 0), (error::NONE, 15));
    // All of partition 1 is gone: fetching at the end gives nothing, and the log is empty.
    assert_eq!(list_offset(&mut client, "trim", 1, -2), (error::NONE, 5));
    assert!(fetched_offsets(&fetch(&mut client, "trim", 1, 5)).is_empty());

    // Produce goes on after the new start; a restart keeps it.
    let response = produce(&mut client, "trim", 1, batch(2, 10));
    assert_eq!(
        (response.error_code, response.base_offset),
        (error::NONE, 5)
    );
    assert_eq!(response.log_start_offset, 5);
    drop(client);
    broker.stop();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    assert_eq!(list_offset(&mut client, "trim", 0, -2), (error::NONE, 15));
    assert_eq!(list_offset(&mut client, "trim", 1, -2), (error::NONE, 5));
    assert_eq!(
        fetch(&mut client, "trim", 0, 14).error_code,
        error::OFFSET_OUT_OF_RANGE
    );
}

#[test]
fn delete_records_refuses_internal_and_compacted_topics() {
    let (_data, broker) = start();
    let mut client = connect(&broker);
    create_topic(&mut client, "__consumer_offsets", 1, &[]);
    create_topic(
        &mut client,
        "compacted",
        1,
        &[("cleanup.policy", "compact")],
    );
    create_topic(
        &mut client,
        "both-policies",
        1,
        &[("cleanup.policy", "compact,delete")],
    );
    for topic in ["compacted", "both-policies"] {
        produce_batches(&mut client, topic, 0, 1, 3);
    }
    let response = delete_records(
        &mut client,
        2,
        &[
            ("__consumer_offsets", &[(0, 0)]),
            ("compacted", &[(0, 1)]),
            ("both-policies", &[(0, 1)]),
        ],
    );
    assert_eq!(
        low_watermark(&response, "__consumer_offsets", 0),
        (error::INVALID_TOPIC_EXCEPTION, -1)
    );
    assert_eq!(
        low_watermark(&response, "compacted", 0),
        (error::POLICY_VIOLATION, -1)
    );
    assert_eq!(
        low_watermark(&response, "both-policies", 0),
        (error::NONE, 1)
    );
}

// ---------------------------------------------------------------------------------------
// DescribeConfigs
// ---------------------------------------------------------------------------------------

#[test]
fn describe_configs_v1_and_v4_describe_a_topic() {
    let (_data, broker) = start();
    let mut client = connect(&broker);
    create_topic(&mut client, "described", 1, &[("retention.ms", "1234567")]);

    let results = describe_configs(
        &mut client,
        1,
        vec![describe_resource(resource::TOPIC, "described", None)],
        true,
        false,
    );
    let result = &results[0];
    assert_eq!(
        (result.error_code, result.error_message.as_deref()),
        (error::NONE, Some(""))
    );
    assert_eq!(
        (result.resource_type, &*result.resource_name),
        (resource::TOPIC, "described")
    );
    let configs = by_name(result);
    let retention = &configs["retention.ms"];
    assert_eq!(retention.value.as_deref(), Some("1234567"));
    assert_eq!(retention.config_source, source::TOPIC_CONFIG);
    assert!(!retention.read_only && !retention.is_sensitive);
    let synonyms: Vec<(&str, Option<&str>, i8)> = retention
        .synonyms
        .iter()
        .map(|s| (&*s.name, s.value.as_deref(), s.source))
        .collect();
    // The override, then log.retention.hours from server.properties, then its default.
    assert_eq!(
        synonyms,
        [
            ("retention.ms", Some("1234567"), source::TOPIC_CONFIG),
            (
                "log.retention.hours",
                Some("168"),
                source::STATIC_BROKER_CONFIG
            ),
            ("log.retention.hours", Some("168"), source::DEFAULT_CONFIG),
        ]
    );
    // v1 has no type or documentation on the wire.
    assert_eq!(retention.config_type, 0);
    let segment = &configs["segment.bytes"];
    assert_eq!(segment.config_source, source::STATIC_BROKER_CONFIG);
    assert_eq!(segment.value.as_deref(), Some("1073741824"));

    // v4 with documentation and the keys filter (unknown keys are ignored).
    let results = describe_configs(
        &mut client,
        4,
        vec![describe_resource(
            resource::TOPIC,
            "described",
            Some(&["cleanup.policy", "max.message.bytes", "no.such.key"]),
        )],
        false,
        true,
    );
    let configs = by_name(&results[0]);
    assert_eq!(
        configs.keys().map(String::as_str).collect::<Vec<_>>(),
        ["cleanup.policy", "max.message.bytes"]
    );
    let cleanup = &configs["cleanup.policy"];
    assert_eq!(cleanup.config_type, 7, "LIST");
    assert_eq!(cleanup.config_source, source::DEFAULT_CONFIG);
    assert!(cleanup.synonyms.is_empty(), "not asked for");
    assert!(
        cleanup
            .documentation
            .as_deref()
            .is_some_and(|d| !d.is_empty())
    );
    assert_eq!(configs["max.message.bytes"].config_type, 3, "INT");
    assert_eq!(
        configs["max.message.bytes"].value.as_deref(),
        Some("1048588")
    );

    // Without documentation it is null; an empty key list means every config.
    let results = describe_configs(
        &mut client,
        4,
        vec![describe_resource(resource::TOPIC, "described", Some(&[]))],
        false,
        false,
    );
    assert!(results[0].configs.len() > 30);
    assert!(results[0].configs.iter().all(|c| c.documentation.is_none()));
}

#[test]
fn describe_configs_errors_per_resource_and_for_the_whole_request() {
    let (_data, broker) = start();
    let mut client = connect(&broker);
    let results = describe_configs(
        &mut client,
        4,
        vec![
            describe_resource(resource::TOPIC, "ghost", None),
            describe_resource(resource::TOPIC, "bad/name", None),
            describe_resource(resource::BROKER, "7", None),
            describe_resource(resource::BROKER, "one", None),
            describe_resource(resource::BROKER_LOGGER, "1", None),
            describe_resource(resource::GROUP, "g", None),
            describe_resource(resource::CLIENT_METRICS, "metrics", None),
        ],
        false,
        false,
    );
    let summary: Vec<(i16, Option<&str>)> = results
        .iter()
        .map(|r| (r.error_code, r.error_message.as_deref()))
        .collect();
    assert_eq!(summary[0], (error::UNKNOWN_TOPIC_OR_PARTITION, Some("")));
    assert_eq!(
        summary[1],
        (
            error::INVALID_TOPIC_EXCEPTION,
            Some(
                "Topic name \"bad/name\" is illegal, it contains a character other than ASCII \
                 alphanumerics, '.', '_' and '-'"
            )
        )
    );
    assert_eq!(
        summary[2],
        (
            error::INVALID_REQUEST,
            Some("Unexpected broker id, expected 1 or empty string, but received 7")
        )
    );
    assert_eq!(
        summary[3],
        (
            error::INVALID_REQUEST,
            Some("Broker id must be an integer, but it is: one")
        )
    );
    assert_eq!(summary[4].0, error::INVALID_REQUEST);
    // A group nobody configured is described with the broker's defaults (Kafka 4's
    // GROUP resource, KIP-848).
    assert_eq!(summary[5].0, error::NONE);
    let group_configs: Vec<String> = results[5]
        .configs
        .iter()
        .map(|c| c.name.to_string())
        .collect();
    for name in [
        "consumer.session.timeout.ms",
        "consumer.heartbeat.interval.ms",
    ] {
        assert!(group_configs.iter().any(|c| c == name), "{group_configs:?}");
    }
    // A client-metrics subscription nobody set has no configs.
    assert_eq!(summary[6], (error::NONE, Some("")));
    assert!(
        results
            .iter()
            .enumerate()
            .all(|(i, r)| i == 5 || r.configs.is_empty())
    );

    // An unknown resource type fails every resource of the request.
    let results = describe_configs(
        &mut client,
        2,
        vec![
            describe_resource(resource::BROKER, "1", None),
            describe_resource(99, "x", None),
        ],
        false,
        false,
    );
    for result in &results {
        assert_eq!(
            (result.error_code, result.error_message.as_deref()),
            (error::INVALID_REQUEST, Some(INVALID_REQUEST_MESSAGE))
        );
        assert!(result.configs.is_empty());
    }
    assert_eq!(results[1].resource_type, 99);
}

#[test]
fn describe_configs_describes_this_broker() {
    let data = DataDir::builder()
        .broker_config("log.retention.ms", "7200000")
        .build();
    let broker = Broker::start_with(&data, &[("num.partitions", "4")]);
    let mut client = connect(&broker);
    let results = describe_configs(
        &mut client,
        4,
        vec![describe_resource(resource::BROKER, "1", None)],
        true,
        true,
    );
    assert_eq!(results[0].error_code, error::NONE);
    let configs = by_name(&results[0]);
    let partitions = &configs["num.partitions"];
    assert_eq!(partitions.value.as_deref(), Some("4"));
    assert_eq!(partitions.config_source, source::STATIC_BROKER_CONFIG);
    assert!(partitions.read_only);
    assert_eq!(partitions.config_type, 3, "INT");
    assert!(partitions.documentation.is_some());
    let synonyms: Vec<(&str, Option<&str>, i8)> = partitions
        .synonyms
        .iter()
        .map(|s| (&*s.name, s.value.as_deref(), s.source))
        .collect();
    assert_eq!(
        synonyms,
        [
            ("num.partitions", Some("4"), source::STATIC_BROKER_CONFIG),
            ("num.partitions", Some("1"), source::DEFAULT_CONFIG),
        ]
    );
    // A dynamic config set for this broker in the metadata log.
    let retention = &configs["log.retention.ms"];
    assert_eq!(retention.value.as_deref(), Some("7200000"));
    assert_eq!(retention.config_source, source::DYNAMIC_BROKER_CONFIG);
    assert!(
        !retention.read_only,
        "Kafka can change log.retention.ms dynamically"
    );
    assert!(configs["log.retention.hours"].read_only);
    assert_eq!(
        configs["auto.create.topics.enable"].value.as_deref(),
        Some("true")
    );
    assert_eq!(
        configs["auto.create.topics.enable"].config_source,
        source::DEFAULT_CONFIG
    );
    assert_eq!(configs["node.id"].value.as_deref(), Some("1"));
    assert!(
        configs["message.max.bytes"].config_type == 3 && !configs["message.max.bytes"].read_only
    );
    // Topics created now default to it.
    create_topic(&mut client, "after", 1, &[]);
    let topic = topic_configs(&mut client, "after");
    assert_eq!(value(&topic, "retention.ms").as_deref(), Some("7200000"));
    assert_eq!(
        topic["retention.ms"].config_source,
        source::DYNAMIC_BROKER_CONFIG
    );

    // v1 with a key filter; the cluster-wide default resource has nothing set.
    let results = describe_configs(
        &mut client,
        1,
        vec![
            describe_resource(
                resource::BROKER,
                "1",
                Some(&["log.dirs", "delete.topic.enable"]),
            ),
            describe_resource(resource::BROKER, "", None),
        ],
        false,
        false,
    );
    let configs = by_name(&results[0]);
    assert_eq!(
        configs.keys().map(String::as_str).collect::<Vec<_>>(),
        ["delete.topic.enable", "log.dirs"]
    );
    assert_eq!(
        configs["log.dirs"].value.as_deref(),
        Some(data.path().to_str().expect("utf-8 path"))
    );
    assert!(configs["log.dirs"].synonyms.is_empty());
    assert_eq!(results[1].error_code, error::NONE);
    assert!(results[1].configs.is_empty());
}

// ---------------------------------------------------------------------------------------
// IncrementalAlterConfigs
// ---------------------------------------------------------------------------------------

#[test]
fn incremental_alter_configs_v0_and_v1_change_topic_configs() {
    let (_data, broker) = start();
    let mut client = connect(&broker);
    create_topic(&mut client, "tuned", 1, &[("retention.ms", "1000000")]);

    let responses = alter_configs(
        &mut client,
        0,
        vec![alter_resource(
            resource::TOPIC,
            "tuned",
            vec![
                alter("retention.ms", op::DELETE, None),
                alter("segment.ms", op::SET, Some("3600000")),
                alter("cleanup.policy", op::APPEND, Some("compact")),
            ],
        )],
        false,
    );
    assert_eq!(
        (
            responses[0].error_code,
            responses[0].error_message.as_deref()
        ),
        (error::NONE, None)
    );
    assert_eq!(
        (responses[0].resource_type, &*responses[0].resource_name),
        (resource::TOPIC, "tuned")
    );
    let configs = topic_configs(&mut client, "tuned");
    assert_eq!(
        configs["retention.ms"].config_source,
        source::STATIC_BROKER_CONFIG
    );
    assert_eq!(
        value(&configs, "retention.ms").as_deref(),
        Some("604800000")
    );
    assert_eq!(value(&configs, "segment.ms").as_deref(), Some("3600000"));
    assert_eq!(
        value(&configs, "cleanup.policy").as_deref(),
        Some("delete,compact")
    );

    alter_topic(
        &mut client,
        "tuned",
        vec![alter("cleanup.policy", op::SUBTRACT, Some("delete"))],
    );
    let configs = topic_configs(&mut client, "tuned");
    assert_eq!(
        value(&configs, "cleanup.policy").as_deref(),
        Some("compact")
    );

    // validate_only checks and changes nothing.
    let responses = alter_configs(
        &mut client,
        1,
        vec![alter_resource(
            resource::TOPIC,
            "tuned",
            vec![alter("segment.ms", op::SET, Some("7200000"))],
        )],
        true,
    );
    assert_eq!(responses[0].error_code, error::NONE);
    let configs = topic_configs(&mut client, "tuned");
    assert_eq!(value(&configs, "segment.ms").as_deref(), Some("3600000"));
}

#[test]
fn incremental_alter_configs_errors_in_request_order() {
    let (_data, broker) = start();
    let mut client = connect(&broker);
    create_topic(&mut client, "t", 1, &[]);
    create_topic(&mut client, "twice", 1, &[]);
    let responses = alter_configs(
        &mut client,
        1,
        vec![
            alter_resource(
                resource::TOPIC,
                "twice",
                vec![alter("segment.ms", op::SET, Some("1000"))],
            ),
            alter_resource(
                resource::TOPIC,
                "ghost",
                vec![alter("segment.ms", op::SET, Some("1000"))],
            ),
            alter_resource(
                resource::TOPIC,
                "t",
                vec![alter("retention.ms", op::SET, Some("soon"))],
            ),
            alter_resource(
                resource::TOPIC,
                "t2",
                vec![alter("no.such", op::SET, Some("1"))],
            ),
            alter_resource(
                resource::TOPIC,
                "t3",
                vec![
                    alter("segment.ms", op::SET, Some("1000")),
                    alter("segment.ms", op::DELETE, None),
                ],
            ),
            alter_resource(
                resource::TOPIC,
                "t4",
                vec![alter("segment.ms", op::SET, None)],
            ),
            alter_resource(
                resource::TOPIC,
                "t5",
                vec![alter("segment.ms", 7, Some("1"))],
            ),
            alter_resource(
                resource::TOPIC,
                "t6",
                vec![alter("segment.ms", op::APPEND, Some("1"))],
            ),
            alter_resource(99, "x", vec![]),
            alter_resource(
                resource::BROKER,
                "1",
                vec![alter("log.dirs", op::SET, Some("/elsewhere"))],
            ),
            alter_resource(resource::BROKER, "2", vec![]),
            alter_resource(resource::BROKER_LOGGER, "1", vec![]),
            alter_resource(resource::CLIENT_METRICS, "m", vec![]),
            alter_resource(
                resource::TOPIC,
                "twice",
                vec![alter("segment.ms", op::SET, Some("2000"))],
            ),
        ],
        false,
    );
    let summary: Vec<(&str, i16, Option<&str>)> = responses
        .iter()
        .map(|r| (&*r.resource_name, r.error_code, r.error_message.as_deref()))
        .collect();
    let once = "Each resource must appear at most once.";
    assert_eq!(summary[0], ("twice", error::INVALID_REQUEST, Some(once)));
    assert_eq!(summary[13], ("twice", error::INVALID_REQUEST, Some(once)));
    assert_eq!(
        summary[1],
        (
            "ghost",
            error::UNKNOWN_TOPIC_OR_PARTITION,
            Some("The topic 'ghost' does not exist.")
        )
    );
    assert_eq!(
        summary[2],
        (
            "t",
            error::INVALID_CONFIG,
            Some("Invalid value soon for configuration retention.ms: Not a number of type LONG")
        )
    );
    assert_eq!(summary[3].1, error::INVALID_CONFIG);
    assert_eq!(
        summary[4],
        (
            "t3",
            error::INVALID_REQUEST,
            Some("Error due to duplicate config keys")
        )
    );
    assert_eq!(
        summary[5],
        (
            "t4",
            error::INVALID_REQUEST,
            Some("Null value not supported for : segment.ms")
        )
    );
    assert_eq!(
        summary[6],
        (
            "t5",
            error::INVALID_REQUEST,
            Some("Unknown operations type 7")
        )
    );
    assert_eq!(
        summary[7],
        (
            "t6",
            error::INVALID_CONFIG,
            Some("Can't APPEND to key segment.ms because its type is not LIST.")
        )
    );
    assert_eq!(
        summary[8],
        (
            "x",
            error::INVALID_REQUEST,
            Some("Unknown resource type 99")
        )
    );
    assert_eq!(
        summary[9],
        (
            "1",
            error::INVALID_REQUEST,
            Some("Cannot update these configs dynamically: Set(log.dirs)")
        )
    );
    assert_eq!(
        summary[10],
        (
            "2",
            error::INVALID_REQUEST,
            Some("Unexpected broker id, expected 1, but received 2")
        )
    );
    assert_eq!(summary[11].1, error::INVALID_REQUEST);
    // A client-metrics subscription with no changes is valid (see admin/telemetry.rs).
    assert_eq!(summary[12].1, error::NONE);
    assert_eq!(responses.len(), 14);
    // Nothing was changed on "twice".
    let configs = topic_configs(&mut client, "twice");
    assert_eq!(configs["segment.ms"].config_source, source::DEFAULT_CONFIG);
}

#[test]
fn altered_configs_apply_to_the_partition_logs_at_once() {
    let (_data, broker) = start_with(&[("log.retention.check.interval.ms", "200")]);
    let mut client = connect(&broker);
    create_topic(&mut client, "limits", 1, &[]);
    assert_eq!(
        produce(&mut client, "limits", 0, batch(1, 5000)).error_code,
        error::NONE
    );
    alter_topic(
        &mut client,
        "limits",
        vec![alter("max.message.bytes", op::SET, Some("3000"))],
    );
    let refused = produce(&mut client, "limits", 0, batch(1, 5000));
    assert_eq!(refused.error_code, error::MESSAGE_TOO_LARGE, "{refused:?}");
    alter_topic(
        &mut client,
        "limits",
        vec![alter("max.message.bytes", op::DELETE, None)],
    );
    assert_eq!(
        produce(&mut client, "limits", 0, batch(1, 5000)).error_code,
        error::NONE
    );

    // The records are from 2025: a retention of one second lets them all go.
    assert_eq!(list_offset(&mut client, "limits", 0, -2), (error::NONE, 0));
    alter_topic(
        &mut client,
        "limits",
        vec![alter("retention.ms", op::SET, Some("1000"))],
    );
    wait_until(
        "retention removed the old records",
        Duration::from_secs(30),
        || list_offset(&mut client, "limits", 0, -2) == (error::NONE, 2),
    );
    assert_eq!(
        fetch(&mut client, "limits", 0, 0).error_code,
        error::OFFSET_OUT_OF_RANGE
    );
}

// ---------------------------------------------------------------------------------------
// DescribeCluster
// ---------------------------------------------------------------------------------------

#[test]
fn describe_cluster_v0_to_v2() {
    let data = DataDir::builder().build();
    let broker = Broker::start_with(&data, &[("broker.rack", "rack-a")]);
    let mut client = connect(&broker);
    for version in 0..=2 {
        let request = DescribeClusterRequest {
            include_cluster_authorized_operations: version == 1,
            endpoint_type: 1,
            include_fenced_brokers: version == 2,
            ..Default::default()
        };
        let response = client.call(&request, version).expect("DescribeCluster");
        assert_eq!(response.error_code, error::NONE);
        assert_eq!(response.error_message, None);
        assert_eq!(&*response.cluster_id, data.cluster_id.as_str());
        assert_eq!(response.controller_id, 1);
        assert_eq!(response.endpoint_type, 1);
        assert_eq!(response.brokers.len(), 1);
        let node = &response.brokers[0];
        assert_eq!(
            (
                node.broker_id,
                &*node.host,
                node.port,
                node.rack.as_deref(),
                node.is_fenced
            ),
            (
                1,
                "127.0.0.1",
                i32::from(data.ports.plaintext),
                Some("rack-a"),
                false
            )
        );
        assert_eq!(
            response.cluster_authorized_operations,
            if version == 1 {
                CLUSTER_OPERATIONS
            } else {
                i32::MIN
            }
        );
    }
}

#[test]
fn describe_cluster_refuses_other_endpoint_types() {
    let (_data, broker) = start();
    let mut client = connect(&broker);
    let ask = |client: &mut RawClient, version: i16, endpoint_type: i8| {
        let request = DescribeClusterRequest {
            endpoint_type,
            ..Default::default()
        };
        client.call(&request, version).expect("DescribeCluster")
    };
    let controller = ask(&mut client, 1, 2);
    assert_eq!(controller.error_code, error::MISMATCHED_ENDPOINT_TYPE);
    assert_eq!(
        controller.error_message.as_deref(),
        Some(
            "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of \
             type CONTROLLER"
        )
    );
    assert!(controller.brokers.is_empty());
    assert_eq!(
        (controller.controller_id, &*controller.cluster_id),
        (-1, "")
    );
    let unknown = ask(&mut client, 2, 9);
    assert_eq!(
        (unknown.error_code, unknown.error_message.as_deref()),
        (
            error::UNSUPPORTED_ENDPOINT_TYPE,
            Some("Unsupported endpoint type 9")
        )
    );
}

// ---------------------------------------------------------------------------------------
// InitProducerId
// ---------------------------------------------------------------------------------------

fn init_producer_id(
    client: &mut RawClient,
    version: i16,
    transactional_id: Option<&str>,
    producer: (i64, i16),
) -> (i16, i64, i16) {
    let request = InitProducerIdRequest {
        transactional_id: transactional_id.map(Into::into),
        transaction_timeout_ms: 60_000,
        producer_id: producer.0,
        producer_epoch: producer.1,
        ..Default::default()
    };
    let response = client.call(&request, version).expect("InitProducerId");
    (
        response.error_code,
        response.producer_id,
        response.producer_epoch,
    )
}

#[test]
fn init_producer_id_v0_to_v6_hands_out_unique_ids_across_restarts() {
    let data = DataDir::builder().build();
    let mut broker = Broker::start(&data);
    let mut client = connect(&broker);
    let mut ids = Vec::new();
    for version in 0..=6 {
        let (code, id, epoch) = init_producer_id(&mut client, version, None, (-1, -1));
        assert_eq!((code, epoch), (error::NONE, 0), "v{version}");
        ids.push(id);
    }
    assert_eq!(
        ids,
        (0..7).collect::<Vec<i64>>(),
        "the first block starts at 0"
    );
    // A producer id and epoch (v3+) of a non-transactional producer: a new id all the same.
    let (code, id, _) = init_producer_id(&mut client, 4, None, (ids[0], 0));
    assert_eq!((code, id), (error::NONE, 7));

    // The producer id works for idempotent batches.
    create_topic(&mut client, "idempotent", 1, &[]);
    let records = [NewRecord::new(
        RECORD_TIMESTAMP,
        None,
        Some(Bytes::from_static(b"x")),
    )];
    let idempotent = RecordBatchBuilder::new()
        .producer(id, 0)
        .base_sequence(0)
        .build(&records)
        .expect("batch");
    assert_eq!(
        produce(&mut client, "idempotent", 0, idempotent).error_code,
        error::NONE
    );

    drop(client);
    broker.stop();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let (code, id, _) = init_producer_id(&mut client, 6, None, (-1, -1));
    assert_eq!(
        (code, id),
        (error::NONE, 1000),
        "a restart takes the next block"
    );
}

#[test]
fn init_producer_id_refuses_malformed_requests() {
    let (_data, broker) = start();
    let mut client = connect(&broker);
    assert_eq!(
        init_producer_id(&mut client, 5, Some(""), (-1, -1)),
        (error::INVALID_REQUEST, -1, -1)
    );
    assert_eq!(
        init_producer_id(&mut client, 3, None, (5, -1)),
        (error::INVALID_REQUEST, -1, -1)
    );
    assert_eq!(
        init_producer_id(&mut client, 6, None, (-1, 3)),
        (error::INVALID_REQUEST, -1, -1)
    );
    // A transactional id on a Produce of plain (non-transactional) batches changes nothing:
    // Kafka's KafkaApis looks at the id only for transactional records.
    create_topic(&mut client, "t", 1, &[]);
    let request = ProduceRequest {
        transactional_id: Some("txn-1".into()),
        acks: -1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: "t".into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(batch(1, 10)),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = client.call(&request, 9).expect("Produce");
    assert_eq!(
        response.responses[0].partition_responses[0].error_code,
        error::NONE
    );
}

// ---------------------------------------------------------------------------------------
// Real clients
// ---------------------------------------------------------------------------------------

#[test]
fn kafka_python_admin_client_creates_describes_and_deletes_topics() {
    let (data, broker) = start();
    let Some(output) = python(
        "admin_apis_kafka_python.py",
        &["--bootstrap", &broker.bootstrap(), "--topic", "kp-admin"],
    ) else {
        return;
    };
    output.assert_success();
    let out = output.json();
    assert_eq!(out["created"]["kp-admin"].as_i64(), Some(0), "{out}");
    assert_eq!(out["create_again"]["kp-admin"].as_i64(), Some(36), "{out}");
    assert_eq!(
        out["configs"]["retention.ms"].as_str(),
        Some("3600000"),
        "{out}"
    );
    assert_eq!(
        out["configs"]["cleanup.policy"].as_str(),
        Some("delete"),
        "{out}"
    );
    assert_eq!(out["altered"].as_i64(), Some(0), "{out}");
    assert_eq!(
        out["configs_after"]["retention.ms"].as_str(),
        Some("7200000"),
        "{out}"
    );
    assert_eq!(out["partitions"].as_i64(), Some(0), "{out}");
    assert_eq!(out["partition_count"].as_i64(), Some(3), "{out}");
    assert_eq!(out["cluster"]["controller_id"].as_i64(), Some(1), "{out}");
    assert_eq!(out["cluster"]["brokers"].as_i64(), Some(1), "{out}");
    assert_eq!(
        out["cluster"]["cluster_id"].as_str(),
        Some(data.cluster_id.as_str()),
        "{out}"
    );
    assert_eq!(out["low_watermark"].as_i64(), Some(5), "{out}");
    assert_eq!(out["deleted"]["kp-admin"].as_i64(), Some(0), "{out}");
    assert_eq!(out["delete_again"]["kp-admin"].as_i64(), Some(3), "{out}");
    assert!(partition_dirs(data.path(), "kp-admin").is_empty());
}

#[test]
fn confluent_kafka_admin_client_and_idempotent_producer() {
    let (data, broker) = start();
    let Some(output) = python(
        "admin_apis_confluent.py",
        &["--bootstrap", &broker.bootstrap(), "--topic", "ck-admin"],
    ) else {
        return;
    };
    output.assert_success();
    let out = output.json();
    assert_eq!(out["created"].as_str(), Some("ok"), "{out}");
    assert_eq!(
        out["create_again"].as_str(),
        Some("TOPIC_ALREADY_EXISTS"),
        "{out}"
    );
    assert_eq!(
        out["configs"]["retention.ms"].as_str(),
        Some("3600000"),
        "{out}"
    );
    assert_eq!(
        out["sources"]["retention.ms"].as_str(),
        Some("DYNAMIC_TOPIC_CONFIG"),
        "{out}"
    );
    assert_eq!(out["altered"].as_str(), Some("ok"), "{out}");
    assert_eq!(
        out["configs_after"]["retention.ms"].as_str(),
        Some("7200000"),
        "{out}"
    );
    assert_eq!(out["partitions"].as_str(), Some("ok"), "{out}");
    assert_eq!(out["cluster"]["controller"].as_i64(), Some(1), "{out}");
    assert_eq!(out["cluster"]["nodes"].as_i64(), Some(1), "{out}");
    assert_eq!(out["produced"].as_i64(), Some(20), "{out}");
    assert_eq!(
        out["deleted_records_low_watermark"].as_i64(),
        Some(5),
        "{out}"
    );
    assert_eq!(
        out["broker_configs"].as_i64().map(|n| n > 10),
        Some(true),
        "{out}"
    );
    assert_eq!(out["deleted"].as_str(), Some("ok"), "{out}");
    assert!(partition_dirs(data.path(), "ck-admin").is_empty());
}
