//! Golden bytes written here from the protocol's facts, field by field, for populated
//! messages: every field has a value, tagged fields are set, nulls and empties appear where
//! the protocol allows them. Each test encodes a value and compares with the bytes, then
//! decodes the bytes and compares with the value.

use bytes::{Bytes, BytesMut};
use gregor_protocol::messages::api_versions_response::*;
use gregor_protocol::messages::describe_topic_partitions_response::*;
use gregor_protocol::messages::fetch_request::*;
use gregor_protocol::messages::fetch_response::*;
use gregor_protocol::messages::metadata_response::*;
use gregor_protocol::messages::produce_request::*;
use gregor_protocol::{ByteString, Decodable, Encodable, Uuid};

/// Hex with spaces and `|` separators for readability.
fn h(text: &str) -> Vec<u8> {
    let digits: String = text.chars().filter(char::is_ascii_hexdigit).collect();
    hex::decode(digits).expect("valid hex")
}

fn check<T: Encodable + Decodable + PartialEq + std::fmt::Debug>(
    value: &T,
    version: i16,
    expected: &[u8],
) {
    let mut buf = BytesMut::new();
    value.encode(&mut buf, version).expect("encode");
    assert_eq!(
        hex::encode(&buf),
        hex::encode(expected),
        "encoding at version {version}"
    );
    assert_eq!(
        value.encoded_len(version),
        expected.len(),
        "encoded_len at version {version}"
    );
    let mut input = Bytes::copy_from_slice(expected);
    let decoded = T::decode(&mut input, version).expect("decode");
    assert!(input.is_empty(), "bytes left after decoding");
    assert_eq!(&decoded, value);
}

const METADATA_VERSION: &str = "6d657461646174612e76657273696f6e"; // "metadata.version"
const EVENTS: &str = "6576656e7473"; // "events"
const LOCALHOST: &str = "6c6f63616c686f7374"; // "localhost"
const TOPIC_ID: &str = "0102030405060708090a0b0c0d0e0f10";

fn topic_id() -> Uuid {
    Uuid::from_bytes([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16])
}

fn api(key: i16, min: i16, max: i16) -> ApiVersion {
    ApiVersion {
        api_key: key,
        min_version: min,
        max_version: max,
        ..Default::default()
    }
}

#[test]
fn api_versions_response_v0() {
    let value = ApiVersionsResponse {
        api_keys: vec![api(0, 0, 11), api(18, 0, 4)],
        ..Default::default()
    };
    let expected = h("0000 | 00000002 | 0000 0000 000b | 0012 0000 0004");
    check(&value, 0, &expected);
}

#[test]
fn api_versions_response_v3_with_features() {
    let value = ApiVersionsResponse {
        api_keys: vec![api(18, 0, 4)],
        supported_features: vec![SupportedFeatureKey {
            name: "metadata.version".into(),
            min_version: 1,
            max_version: 27,
            ..Default::default()
        }],
        finalized_features_epoch: 5,
        finalized_features: vec![FinalizedFeatureKey {
            name: "metadata.version".into(),
            max_version_level: 27,
            min_version_level: 27,
            ..Default::default()
        }],
        ..Default::default()
    };
    let expected = h(&format!(
        "0000 | 02 0012 0000 0004 00 | 00000000 \
         | 03 \
         | 00 17 02 11 {METADATA_VERSION} 0001 001b 00 \
         | 01 08 0000000000000005 \
         | 02 17 02 11 {METADATA_VERSION} 001b 001b 00"
    ));
    check(&value, 3, &expected);
}

#[test]
fn api_versions_response_v4_tags_in_order_defaults_omitted() {
    let value = ApiVersionsResponse {
        api_keys: vec![api(3, 0, 13), api(18, 0, 4)],
        throttle_time_ms: 100,
        finalized_features_epoch: 9,
        zk_migration_ready: true,
        ..Default::default()
    };
    let expected = h("0000 | 03 0003 0000 000d 00 0012 0000 0004 00 | 00000064 \
         | 02 | 01 08 0000000000000009 | 03 01 01");
    check(&value, 4, &expected);
}

#[test]
fn metadata_response_v12() {
    let value = MetadataResponse {
        brokers: vec![MetadataResponseBroker {
            node_id: 1,
            host: "localhost".into(),
            port: 9092,
            rack: None,
            ..Default::default()
        }],
        cluster_id: Some("gregor".into()),
        controller_id: 1,
        topics: vec![MetadataResponseTopic {
            error_code: 0,
            name: Some("events".into()),
            topic_id: topic_id(),
            is_internal: false,
            partitions: vec![MetadataResponsePartition {
                partition_index: 0,
                leader_id: 1,
                leader_epoch: 5,
                replica_nodes: vec![1],
                isr_nodes: vec![1],
                offline_replicas: vec![],
                ..Default::default()
            }],
            topic_authorized_operations: i32::MIN,
            ..Default::default()
        }],
        ..Default::default()
    };
    let expected = h(&format!(
        "00000000 \
         | 02 00000001 0a {LOCALHOST} 00002384 00 00 \
         | 07 677265676f72 | 00000001 \
         | 02 0000 07 {EVENTS} {TOPIC_ID} 00 \
         |    02 0000 00000000 00000001 00000005 02 00000001 02 00000001 01 00 \
         |    80000000 00 \
         | 00"
    ));
    check(&value, 12, &expected);
}

#[test]
fn describe_topic_partitions_response_v0_with_cursor() {
    let value = DescribeTopicPartitionsResponse {
        topics: vec![DescribeTopicPartitionsResponseTopic {
            name: Some("events".into()),
            topic_id: topic_id(),
            partitions: vec![DescribeTopicPartitionsResponsePartition {
                partition_index: 0,
                leader_id: 1,
                leader_epoch: 0,
                replica_nodes: vec![1],
                isr_nodes: vec![1],
                eligible_leader_replicas: None,
                last_known_elr: None,
                ..Default::default()
            }],
            topic_authorized_operations: 0x0df8,
            ..Default::default()
        }],
        next_cursor: Some(Cursor {
            topic_name: "events".into(),
            partition_index: 1,
            ..Default::default()
        }),
        ..Default::default()
    };
    let expected = h(&format!(
        "00000000 \
         | 02 0000 07 {EVENTS} {TOPIC_ID} 00 \
         |    02 0000 00000000 00000001 00000000 02 00000001 02 00000001 00 00 01 00 \
         |    00000df8 00 \
         | 01 07 {EVENTS} 00000001 00 \
         | 00"
    ));
    check(&value, 0, &expected);
}

fn fetch_response() -> FetchResponse {
    FetchResponse {
        responses: vec![FetchableTopicResponse {
            topic_id: topic_id(),
            partitions: vec![
                PartitionData {
                    partition_index: 0,
                    high_watermark: 10,
                    last_stable_offset: 10,
                    log_start_offset: 0,
                    current_leader: LeaderIdAndEpoch {
                        leader_id: 1,
                        leader_epoch: 5,
                        ..Default::default()
                    },
                    aborted_transactions: None,
                    records: Some(Bytes::from_static(&[1, 2, 3, 4])),
                    ..Default::default()
                },
                PartitionData {
                    partition_index: 1,
                    error_code: 1,
                    high_watermark: -1,
                    aborted_transactions: Some(vec![]),
                    // An empty partition: a zero-length records field, never null.
                    records: Some(Bytes::new()),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }],
        node_endpoints: vec![NodeEndpoint {
            node_id: 1,
            host: "localhost".into(),
            port: 9092,
            rack: None,
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn fetch_response_v16() {
    let expected = h(&format!(
        "00000000 0000 00000000 \
         | 02 {TOPIC_ID} 03 \
         |    00000000 0000 000000000000000a 000000000000000a 0000000000000000 00 ffffffff \
         |       05 01020304 | 01 01 09 00000001 00000005 00 \
         |    00000001 0001 ffffffffffffffff ffffffffffffffff ffffffffffffffff 01 ffffffff \
         |       01 | 00 \
         |    00 \
         | 01 00 15 02 00000001 0a {LOCALHOST} 00002384 00 00"
    ));
    check(&fetch_response(), 16, &expected);
}

#[test]
fn fetch_request_v17_with_directory_id() {
    let value = FetchRequest {
        max_wait_ms: 500,
        min_bytes: 1,
        max_bytes: 1 << 20,
        isolation_level: 1,
        session_id: 0,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic_id: topic_id(),
            partitions: vec![FetchPartition {
                partition: 0,
                current_leader_epoch: 5,
                fetch_offset: 100,
                last_fetched_epoch: -1,
                log_start_offset: -1,
                partition_max_bytes: 1 << 20,
                replica_directory_id: Uuid::from_bytes([0xaa; 16]),
                ..Default::default()
            }],
            ..Default::default()
        }],
        rack_id: ByteString::new(),
        ..Default::default()
    };
    let expected = h(&format!(
        "000001f4 00000001 00100000 01 00000000 ffffffff \
         | 02 {TOPIC_ID} 02 \
         |    00000000 00000005 0000000000000064 ffffffff ffffffffffffffff 00100000 \
         |    01 00 10 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa \
         |    00 \
         | 01 | 01 | 00"
    ));
    check(&value, 17, &expected);
}

#[test]
fn produce_request_v11() {
    let value = ProduceRequest {
        transactional_id: None,
        acks: -1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: "events".into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(Bytes::from_static(&[0x0a, 0x0b, 0x0c])),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let expected = h(&format!(
        "00 ffff 00007530 | 02 07 {EVENTS} 02 00000000 04 0a0b0c 00 00 | 00"
    ));
    check(&value, 11, &expected);
}

#[test]
fn strict_encoding_refuses_to_lose_data() {
    // Topic ids do not exist before Fetch v13 and the field is ignorable: dropped silently.
    let without_endpoints = FetchResponse {
        node_endpoints: vec![],
        ..fetch_response()
    };
    let mut buf = BytesMut::new();
    without_endpoints
        .encode(&mut buf, 12)
        .expect("ignorable field is dropped");
    let decoded = FetchResponse::decode(&mut buf.freeze(), 12).unwrap();
    assert_eq!(decoded.responses[0].topic_id, Uuid::nil());
    // Node endpoints are not ignorable and do not exist before v16.
    let err = fetch_response()
        .encode(&mut BytesMut::new(), 15)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "FetchResponse.node_endpoints has a non-default value but version 15 does not have the field"
    );
    // Null names are only allowed from Metadata v12.
    let response = MetadataResponse {
        topics: vec![MetadataResponseTopic {
            name: None,
            ..Default::default()
        }],
        ..Default::default()
    };
    assert!(response.encode(&mut BytesMut::new(), 12).is_ok());
    let err = response.encode(&mut BytesMut::new(), 11).unwrap_err();
    assert!(
        err.to_string()
            .contains("MetadataResponseTopic.name is null"),
        "{err}"
    );
    // A version the message does not have.
    let err = response.encode(&mut BytesMut::new(), 14).unwrap_err();
    assert_eq!(err.to_string(), "MetadataResponse has no version 14");
}

#[test]
fn decode_errors_say_where() {
    let mut buf = BytesMut::new();
    fetch_response().encode(&mut buf, 16).unwrap();
    // The second partition starts at byte 80 (10 header + 1 + 16 topic id + 1 + 70 for the
    // first partition); its high watermark at 86. Cut the frame in the middle of it.
    let mut truncated = buf.freeze().slice(..90);
    let err = FetchResponse::decode(&mut truncated, 16).unwrap_err();
    assert_eq!(err.offset(), Some(86));
    assert_eq!(
        err.path().collect::<Vec<_>>(),
        [
            "FetchResponse.responses",
            "FetchableTopicResponse.partitions",
            "PartitionData.high_watermark"
        ]
    );
}

#[test]
fn serde_json_round_trip() {
    // The `serde` feature: every generated type serializes (for `--json` output in tools).
    let response = fetch_response();
    let json = serde_json::to_string(&response).unwrap();
    assert!(json.contains("\"node_endpoints\""), "{json}");
    let back: FetchResponse = serde_json::from_str(&json).unwrap();
    assert_eq!(back, response);
}
