//! Protocol tests of the `gregor` binary over TCP: every served API (ApiVersions, Metadata,
//! DescribeTopicPartitions, Fetch and its sessions) against data directories written with gregor-protocol's
//! own encoders (`support::DataDir`), checked against what the fixture wrote and against
//! Apache Kafka's behaviour (KafkaApis, KRaftMetadataCache, ReplicaManager, FetchSession);
//! then connections (pipelining, concurrency, slow clients), bad input, start-up and
//! shutdown.
//!
//! Tests named `kafka_parity_*` check details where this broker could differ from Kafka
//! without breaking the common clients; the others check behaviour clients rely on.
//!
//! Each test starts its own broker on free ports, so they run in parallel. There are no
//! timing assertions except the lower bound of a Fetch long poll; every wait has a generous
//! timeout.

mod support;

#[path = "protocol/api_versions.rs"]
mod api_versions;
#[path = "protocol/connection_limits.rs"]
mod connection_limits;
#[path = "protocol/connections.rs"]
mod connections;
#[path = "protocol/describe_topic_partitions.rs"]
mod describe_topic_partitions;
#[path = "protocol/fetch.rs"]
mod fetch;
#[path = "protocol/fetch_sessions.rs"]
mod fetch_sessions;
#[path = "protocol/list_offsets_v0.rs"]
mod list_offsets_v0;
#[path = "protocol/listener_security.rs"]
mod listener_security;
#[path = "protocol/metadata.rs"]
mod metadata;
#[path = "protocol/offset_for_leader_epoch.rs"]
mod offset_for_leader_epoch;

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use gregor_protocol::frame::decode_response_header;
use gregor_protocol::messages::api_versions_request::ApiVersionsRequest;
use gregor_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use gregor_protocol::messages::request_header::RequestHeader;
use gregor_protocol::records::{Batch, Record, RecordBatches};
use gregor_protocol::{Decodable, Encodable, Request};
use support::client::Pending;
use support::{Broker, RawClient, WrittenRecord, WrittenTopic};

/// How long to wait for the broker to close a connection or write a log line.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Kafka error codes the tests expect.
mod error {
    pub const NONE: i16 = 0;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const INVALID_REQUEST: i16 = 42;
    pub const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
    pub const UNKNOWN_TOPIC_ID: i16 = 100;
}

/// Kafka's "authorized operations not requested" marker (`-2147483648`).
const OPERATIONS_OMITTED: i32 = i32::MIN;

/// The topic operations Kafka reports without an authorizer
/// (`AclEntry.supportedOperations(TOPIC)`: READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER 7,
/// DESCRIBE 8, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11, as a bit field).
const TOPIC_OPERATIONS: i32 = bits(&[3, 4, 5, 6, 7, 8, 10, 11]);

/// The cluster operations Kafka reports without an authorizer
/// (`AclEntry.supportedOperations(CLUSTER)`: CREATE 5, ALTER 7, DESCRIBE 8,
/// CLUSTER_ACTION 9, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11, IDEMPOTENT_WRITE 12).
const CLUSTER_OPERATIONS: i32 = bits(&[5, 7, 8, 9, 10, 11, 12]);

const fn bits(codes: &[u8]) -> i32 {
    let mut out = 0;
    let mut i = 0;
    while i < codes.len() {
        out |= 1 << codes[i];
        i += 1;
    }
    out
}

/// An ApiVersions request as current clients send it.
fn api_versions_request() -> ApiVersionsRequest {
    ApiVersionsRequest {
        client_software_name: "gregor-protocol-tests".into(),
        client_software_version: "0.1.0".into(),
        ..Default::default()
    }
}

/// A new connection to `broker`.
fn connect(broker: &Broker) -> RawClient {
    RawClient::connect(broker.addr()).expect("connect to the broker")
}

/// Asserts that the broker still answers a fresh client (and that the process is alive).
fn assert_serves_fresh_client(broker: &mut Broker) {
    assert!(
        broker.try_exit().is_none(),
        "the broker exited\n{}",
        broker.log_text()
    );
    let mut client = connect(broker);
    let response = client
        .call(&api_versions_request(), 3)
        .expect("ApiVersions on a fresh connection");
    assert_eq!(response.error_code, error::NONE);
}

/// Decodes a response frame (without its size prefix) to the request `pending`, checking
/// the correlation id and that the body is consumed exactly.
fn decode_frame<R: Request>(mut frame: Bytes, pending: Pending) -> R::Response {
    assert_eq!(pending.api_key, R::API_KEY);
    let header = decode_response_header(&mut frame, pending.api_key, pending.version)
        .unwrap_or_else(|e| panic!("header of the response to {pending:?}: {e}"));
    assert_eq!(
        header.correlation_id, pending.correlation_id,
        "correlation id of the response to {pending:?}"
    );
    let body = R::Response::decode(&mut frame, pending.version)
        .unwrap_or_else(|e| panic!("body of the response to {pending:?}: {e}"));
    assert!(
        frame.is_empty(),
        "{} bytes after the response to {pending:?}",
        frame.len()
    );
    body
}

/// A request frame (size prefix included) with a hand-made header: `header_version` 1
/// (key, version, correlation id, client id) or 2 (the same and an empty tag buffer), then
/// `body` as given.
fn raw_request(
    api_key: i16,
    version: i16,
    correlation_id: i32,
    header_version: i16,
    body: &[u8],
) -> Vec<u8> {
    let header = RequestHeader {
        request_api_key: api_key,
        request_api_version: version,
        correlation_id,
        client_id: Some("gregor-protocol-tests".into()),
        ..Default::default()
    };
    let mut frame = BytesMut::new();
    header
        .encode(&mut frame, header_version)
        .expect("encode a request header");
    frame.extend_from_slice(body);
    let mut out = (frame.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&frame);
    out
}

/// A sessionless consumer Fetch (replica -1, no wait, min 1 byte, 64 MiB in all, full
/// request with session 0 and epoch 0, as the Java consumer sends it).
fn fetch_request(topics: Vec<FetchTopic>) -> FetchRequest {
    FetchRequest {
        replica_id: -1,
        max_wait_ms: 0,
        min_bytes: 1,
        max_bytes: 64 << 20,
        isolation_level: 0,
        // Sessionless (FINAL_EPOCH): the fetch tests read; fetch_sessions.rs tests sessions.
        session_id: 0,
        session_epoch: -1,
        topics,
        ..Default::default()
    }
}

/// The topic of a Fetch request, by name and id (each version encodes the one it has).
fn fetch_topic(topic: &WrittenTopic, partitions: Vec<FetchPartition>) -> FetchTopic {
    FetchTopic {
        topic: topic.name.as_str().into(),
        topic_id: topic.id,
        partitions,
        ..Default::default()
    }
}

/// One partition of a Fetch request.
fn fetch_partition(partition: i32, fetch_offset: i64, partition_max_bytes: i32) -> FetchPartition {
    FetchPartition {
        partition,
        fetch_offset,
        partition_max_bytes,
        ..Default::default()
    }
}

/// One record batch of a Fetch response, decoded and checked (CRC, every record).
#[derive(Debug)]
struct FetchedBatch {
    base_offset: i64,
    last_offset: i64,
    size: usize,
    records: Vec<Record>,
}

/// Every batch of `records`, which must hold only whole, valid v2 batches.
fn fetched_batches(records: &Bytes) -> Vec<FetchedBatch> {
    let mut batches = RecordBatches::new(records.clone());
    let mut out = Vec::new();
    for batch in batches.by_ref() {
        let Batch::V2(batch) = batch.expect("a record batch") else {
            panic!("a legacy message set in a fetch response");
        };
        batch
            .validate()
            .expect("a valid record batch (CRC and records)");
        out.push(FetchedBatch {
            base_offset: batch.base_offset(),
            last_offset: batch.last_offset(),
            size: batch.size(),
            records: batch.records().map(|r| r.expect("a record")).collect(),
        });
    }
    assert!(
        !batches.is_truncated(),
        "the records end in a partial batch"
    );
    assert_eq!(
        out.iter().map(|b| b.size).sum::<usize>(),
        records.len(),
        "batches cover the records"
    );
    out
}

/// Asserts that a fetched record is the record the fixture wrote.
fn assert_same_record(read: &Record, written: &WrittenRecord, context: &str) {
    assert_eq!(read.offset, written.offset, "{context}: offset");
    assert_eq!(
        read.timestamp, written.timestamp,
        "{context}: timestamp of offset {}",
        written.offset
    );
    assert_eq!(
        read.key, written.key,
        "{context}: key of offset {}",
        written.offset
    );
    assert_eq!(
        read.value, written.value,
        "{context}: value of offset {}",
        written.offset
    );
    let headers: Vec<(String, Option<Bytes>)> = read
        .headers
        .iter()
        .map(|h| {
            (
                String::from_utf8(h.key.to_vec()).expect("a UTF-8 header key"),
                h.value.clone(),
            )
        })
        .collect();
    assert_eq!(
        headers, written.headers,
        "{context}: headers of offset {}",
        written.offset
    );
}

/// The peer address the broker sees for `client` (its local address), as it appears in the
/// broker's log lines.
fn peer_of(client: &mut RawClient) -> String {
    client
        .stream()
        .local_addr()
        .expect("local address")
        .to_string()
}

/// Waits for the broker's log line about closing the connection from `peer`, and checks that
/// it contains `why`. The last such line is taken (an ephemeral port may come back).
fn assert_close_logged(broker: &Broker, peer: &str, why: &str) {
    let needle = format!("closing connection from {peer}:");
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    let line = loop {
        let log = broker.log_text();
        if let Some(line) = log.lines().rev().find(|l| l.contains(&needle)) {
            break line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no log line {needle:?}\n--- broker log ---\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        line.contains(why),
        "the log line about {peer} does not say {why:?}: {line}"
    );
}

/// Encodes `body` at `version` into bytes (for hand-made frames).
fn encoded<T: Encodable>(body: &T, version: i16) -> Vec<u8> {
    body.to_bytes(version).expect("encode").to_vec()
}
