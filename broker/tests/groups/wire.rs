//! The requests the group tests send with the raw client, the broker they run against, and
//! the reading of `__consumer_offsets` from disk.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gregor_protocol::Uuid;
use gregor_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use gregor_protocol::messages::describe_groups_response::DescribedGroup;
use gregor_protocol::messages::heartbeat_request::HeartbeatRequest;
use gregor_protocol::messages::join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol};
use gregor_protocol::messages::join_group_response::JoinGroupResponse;
use gregor_protocol::messages::leave_group_request::LeaveGroupRequest;
use gregor_protocol::messages::list_groups_request::ListGroupsRequest;
use gregor_protocol::messages::list_groups_response::ListedGroup;
use gregor_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use gregor_protocol::messages::metadata_response::MetadataResponseTopic;
use gregor_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use gregor_protocol::messages::offset_commit_response::OffsetCommitResponse;
use gregor_protocol::messages::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use gregor_protocol::messages::offset_fetch_response::OffsetFetchResponse;
use gregor_protocol::messages::sync_group_request::{SyncGroupRequest, SyncGroupRequestAssignment};
use gregor_protocol::messages::sync_group_response::SyncGroupResponse;
use gregor_protocol::messages::{GroupCoordinatorRecordKey, GroupCoordinatorRecordValue};
use gregor_protocol::records::{Batch, RecordBatches};

use crate::support::{Broker, DataDir, RawClient, TopicSpec};

/// Kafka error codes the tests look for.
pub mod error {
    pub const NONE: i16 = 0;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub const INVALID_GROUP_ID: i16 = 24;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const INVALID_SESSION_TIMEOUT: i16 = 26;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const INVALID_REQUEST: i16 = 42;
    pub const NON_EMPTY_GROUP: i16 = 68;
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    pub const MEMBER_ID_REQUIRED: i16 = 79;
    pub const FENCED_INSTANCE_ID: i16 = 82;
    pub const UNKNOWN_TOPIC_ID: i16 = 100;
}

/// The topic of the fixture.
pub const TOPIC: &str = "events";
/// Its partitions.
pub const PARTITIONS: i32 = 3;
/// Records per partition.
pub const RECORDS: usize = 20;
/// Partitions of `__consumer_offsets` in these tests.
pub const OFFSETS_PARTITIONS: i32 = 5;
/// The `__consumer_offsets` topic.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Kafka's "authorized operations not requested" marker.
pub const OPERATIONS_OMITTED: i32 = i32::MIN;

/// Broker settings of the tests: no initial rebalance delay (each test that wants one
/// sets it), 5 offsets partitions, session timeouts from 1 s.
pub const PROPS: &[(&str, &str)] = &[
    ("group.initial.rebalance.delay.ms", "0"),
    ("offsets.topic.num.partitions", "5"),
    ("group.min.session.timeout.ms", "1000"),
    ("group.max.session.timeout.ms", "60000"),
    ("num.partitions", "3"),
];

/// A data directory with [`TOPIC`]: [`PARTITIONS`] partitions of [`RECORDS`] records.
pub fn fixture() -> DataDir {
    DataDir::builder()
        .topic(TopicSpec::new(TOPIC, PARTITIONS).records(RECORDS))
        .build()
}

/// The broker on `data` with [`PROPS`] and `extra`.
pub fn start(data: &DataDir, extra: &[(&str, &str)]) -> Broker {
    let mut props: Vec<(&str, &str)> = PROPS.to_vec();
    props.extend_from_slice(extra);
    Broker::start_with(data, &props)
}

/// A raw client connected to `broker`.
pub fn connect(broker: &Broker) -> RawClient {
    RawClient::connect(broker.addr()).expect("connect to the broker")
}

/// Polls `check` every 50 ms until it is true; panics with `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Protocols with their metadata.
pub fn protocols(entries: &[(&str, &[u8])]) -> Vec<JoinGroupRequestProtocol> {
    entries
        .iter()
        .map(|(name, metadata)| JoinGroupRequestProtocol {
            name: (*name).into(),
            metadata: Bytes::copy_from_slice(metadata),
            ..Default::default()
        })
        .collect()
}

/// A JoinGroup of a "consumer" member (session and rebalance timeouts 10 s).
pub fn join_request(
    group: &str,
    member_id: &str,
    protocols: Vec<JoinGroupRequestProtocol>,
) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: group.into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        member_id: member_id.into(),
        protocol_type: "consumer".into(),
        protocols,
        ..Default::default()
    }
}

/// Sends a JoinGroup and waits for its answer.
pub fn join(client: &mut RawClient, version: i16, request: &JoinGroupRequest) -> JoinGroupResponse {
    client
        .call(request, version)
        .unwrap_or_else(|e| panic!("JoinGroup v{version}: {e}"))
}

/// Joins as a new member, answering MEMBER_ID_REQUIRED (v4+) with the given member id.
pub fn join_new(
    client: &mut RawClient,
    version: i16,
    mut request: JoinGroupRequest,
) -> JoinGroupResponse {
    let first = join(client, version, &request);
    if first.error_code != error::MEMBER_ID_REQUIRED {
        return first;
    }
    assert!(version >= 4, "MEMBER_ID_REQUIRED at JoinGroup v{version}");
    request.member_id = first.member_id.clone();
    join(client, version, &request)
}

/// A SyncGroup of a "consumer"/"range" member.
pub fn sync_request(
    group: &str,
    generation: i32,
    member_id: &str,
    assignments: &[(&str, &[u8])],
) -> SyncGroupRequest {
    SyncGroupRequest {
        group_id: group.into(),
        generation_id: generation,
        member_id: member_id.into(),
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments: assignments
            .iter()
            .map(|(member, assignment)| SyncGroupRequestAssignment {
                member_id: (*member).into(),
                assignment: Bytes::copy_from_slice(assignment),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// Sends a SyncGroup and waits for its answer.
pub fn sync(client: &mut RawClient, version: i16, request: &SyncGroupRequest) -> SyncGroupResponse {
    client
        .call(request, version)
        .unwrap_or_else(|e| panic!("SyncGroup v{version}: {e}"))
}

/// A Heartbeat's error code.
pub fn heartbeat(
    client: &mut RawClient,
    version: i16,
    group: &str,
    generation: i32,
    member_id: &str,
    instance: Option<&str>,
) -> i16 {
    client
        .call(
            &HeartbeatRequest {
                group_id: group.into(),
                generation_id: generation,
                member_id: member_id.into(),
                group_instance_id: instance.map(Into::into),
                ..Default::default()
            },
            version,
        )
        .unwrap_or_else(|e| panic!("Heartbeat v{version}: {e}"))
        .error_code
}

/// A LeaveGroup v0-v2 of one member: its error code.
pub fn leave(client: &mut RawClient, version: i16, group: &str, member_id: &str) -> i16 {
    assert!(version < 3);
    client
        .call(
            &LeaveGroupRequest {
                group_id: group.into(),
                member_id: member_id.into(),
                ..Default::default()
            },
            version,
        )
        .unwrap_or_else(|e| panic!("LeaveGroup v{version}: {e}"))
        .error_code
}

/// Joins `group` alone (v5) and syncs `assignment`: `(member id, generation)`.
pub fn join_and_sync(client: &mut RawClient, group: &str, assignment: &[u8]) -> (String, i32) {
    let joined = join_new(
        client,
        5,
        join_request(group, "", protocols(&[("range", b"subscription")])),
    );
    assert_eq!(joined.error_code, error::NONE, "{joined:?}");
    let member = joined.member_id.to_string();
    let synced = sync(
        client,
        3,
        &sync_request(
            group,
            joined.generation_id,
            &member,
            &[(&member, assignment)],
        ),
    );
    assert_eq!(synced.error_code, error::NONE, "{synced:?}");
    (member, joined.generation_id)
}

/// The topic's metadata (Metadata v12, with its id).
pub fn topic_metadata(client: &mut RawClient, topic: &str) -> MetadataResponseTopic {
    let response = client
        .call(
            &MetadataRequest {
                topics: Some(vec![MetadataRequestTopic {
                    name: Some(topic.into()),
                    ..Default::default()
                }]),
                allow_auto_topic_creation: false,
                ..Default::default()
            },
            12,
        )
        .expect("Metadata");
    response.topics.into_iter().next().expect("one topic")
}

/// The id of `topic`.
pub fn topic_id(client: &mut RawClient, topic: &str) -> Uuid {
    let topic = topic_metadata(client, topic);
    assert_eq!(topic.error_code, error::NONE, "{topic:?}");
    topic.topic_id
}

/// An OffsetCommit of `offsets` (partition, offset, leader epoch, metadata) of one topic
/// (by id from v10).
#[allow(clippy::too_many_arguments)]
pub fn commit_request(
    version: i16,
    group: &str,
    generation: i32,
    member_id: &str,
    topic: &str,
    topic_id: Uuid,
    offsets: &[(i32, i64, i32, Option<&str>)],
) -> OffsetCommitRequest {
    OffsetCommitRequest {
        group_id: group.into(),
        generation_id_or_member_epoch: generation,
        member_id: member_id.into(),
        retention_time_ms: -1,
        topics: vec![OffsetCommitRequestTopic {
            name: if version < 10 {
                topic.into()
            } else {
                Default::default()
            },
            topic_id: if version >= 10 { topic_id } else { Uuid::nil() },
            partitions: offsets
                .iter()
                .map(
                    |(partition, offset, epoch, metadata)| OffsetCommitRequestPartition {
                        partition_index: *partition,
                        committed_offset: *offset,
                        committed_leader_epoch: *epoch,
                        committed_metadata: metadata.map(Into::into),
                        ..Default::default()
                    },
                )
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Sends an OffsetCommit; the error of every partition, in order.
pub fn commit(client: &mut RawClient, version: i16, request: &OffsetCommitRequest) -> Vec<i16> {
    let response: OffsetCommitResponse = client
        .call(request, version)
        .unwrap_or_else(|e| panic!("OffsetCommit v{version}: {e}"));
    response
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

/// One partition of an OffsetFetch answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    pub error_code: i16,
}

/// An OffsetFetch of one group: `topics` as (name, id, partitions), `None` for all. The
/// group error and the partitions, per topic name (or id, as a string, from v10).
pub fn fetch(
    client: &mut RawClient,
    version: i16,
    group: &str,
    topics: Option<&[(&str, Uuid, &[i32])]>,
) -> (i16, Vec<(String, Vec<Fetched>)>) {
    let request = if version >= 8 {
        OffsetFetchRequest {
            groups: vec![OffsetFetchRequestGroup {
                group_id: group.into(),
                topics: topics.map(|topics| {
                    topics
                        .iter()
                        .map(|(name, id, partitions)| OffsetFetchRequestTopics {
                            name: if version < 10 {
                                (*name).into()
                            } else {
                                Default::default()
                            },
                            topic_id: if version >= 10 { *id } else { Uuid::nil() },
                            partition_indexes: partitions.to_vec(),
                            ..Default::default()
                        })
                        .collect()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }
    } else {
        OffsetFetchRequest {
            group_id: group.into(),
            topics: topics.map(|topics| {
                topics
                    .iter()
                    .map(|(name, _, partitions)| OffsetFetchRequestTopic {
                        name: (*name).into(),
                        partition_indexes: partitions.to_vec(),
                        ..Default::default()
                    })
                    .collect()
            }),
            ..Default::default()
        }
    };
    let response: OffsetFetchResponse = client
        .call(&request, version)
        .unwrap_or_else(|e| panic!("OffsetFetch v{version}: {e}"));
    if version >= 8 {
        assert_eq!(response.groups.len(), 1, "{response:?}");
        let group_answer = &response.groups[0];
        assert_eq!(&*group_answer.group_id, group);
        let topics = group_answer
            .topics
            .iter()
            .map(|t| {
                let name = if version >= 10 {
                    t.topic_id.to_string()
                } else {
                    t.name.to_string()
                };
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| Fetched {
                        partition: p.partition_index,
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p.metadata.as_deref().map(str::to_string),
                        error_code: p.error_code,
                    })
                    .collect();
                (name, partitions)
            })
            .collect();
        (group_answer.error_code, topics)
    } else {
        let topics = response
            .topics
            .iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| Fetched {
                        partition: p.partition_index,
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p.metadata.as_deref().map(str::to_string),
                        error_code: p.error_code,
                    })
                    .collect();
                (t.name.to_string(), partitions)
            })
            .collect();
        (response.error_code, topics)
    }
}

/// The committed offsets of `group` in [`TOPIC`] (OffsetFetch v8), -1 where none.
pub fn committed(client: &mut RawClient, group: &str) -> Vec<i64> {
    let partitions: Vec<i32> = (0..PARTITIONS).collect();
    let (error, topics) = fetch(client, 8, group, Some(&[(TOPIC, Uuid::nil(), &partitions)]));
    assert_eq!(error, error::NONE);
    topics[0].1.iter().map(|p| p.offset).collect()
}

/// DescribeGroups of one group.
pub fn describe(client: &mut RawClient, version: i16, group: &str) -> DescribedGroup {
    let response = client
        .call(
            &DescribeGroupsRequest {
                groups: vec![group.into()],
                include_authorized_operations: version >= 3,
                ..Default::default()
            },
            version,
        )
        .unwrap_or_else(|e| panic!("DescribeGroups v{version}: {e}"));
    assert_eq!(response.groups.len(), 1);
    response.groups.into_iter().next().unwrap()
}

/// The state of `group` (DescribeGroups v5).
pub fn state(client: &mut RawClient, group: &str) -> String {
    describe(client, 5, group).group_state.to_string()
}

/// ListGroups with filters (states need v4+, types v5+).
pub fn list(
    client: &mut RawClient,
    version: i16,
    states: &[&str],
    types: &[&str],
) -> Vec<ListedGroup> {
    let response = client
        .call(
            &ListGroupsRequest {
                states_filter: states.iter().map(|s| (*s).into()).collect(),
                types_filter: types.iter().map(|s| (*s).into()).collect(),
                ..Default::default()
            },
            version,
        )
        .unwrap_or_else(|e| panic!("ListGroups v{version}: {e}"));
    assert_eq!(response.error_code, error::NONE);
    response.groups
}

/// Java's `String.hashCode`.
pub fn java_hash(text: &str) -> i32 {
    text.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The `__consumer_offsets` partition of `group` (Kafka's `Utils.abs(hashCode) % n`).
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    let hash = java_hash(group);
    (if hash == i32::MIN { 0 } else { hash.abs() }) % partitions
}

/// One record of `__consumer_offsets` as stored: the key, and the value with its version
/// (`None` for a tombstone).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRecord {
    pub offset: i64,
    pub key: GroupCoordinatorRecordKey,
    pub value: Option<(GroupCoordinatorRecordValue, i16)>,
}

/// Every record of partition `partition` of `__consumer_offsets` in the data directory
/// (decoded from the segment files).
pub fn stored_records(data_dir: &Path, partition: i32) -> Vec<StoredRecord> {
    let dir = data_dir.join(format!("{OFFSETS_TOPIC}-{partition}"));
    let mut segments: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segments.sort();
    let mut out = Vec::new();
    for segment in segments {
        let bytes = Bytes::from(std::fs::read(&segment).expect("read a segment"));
        for batch in RecordBatches::new(bytes) {
            let Batch::V2(batch) = batch.expect("a batch") else {
                panic!("a legacy message in {}", segment.display());
            };
            batch.verify_crc().expect("batch CRC");
            assert!(!batch.is_transactional() && !batch.is_control());
            for record in batch.records() {
                let record = record.expect("a record");
                let mut key = record.key.clone().expect("a key");
                let record_type = i16::from_be_bytes([key[0], key[1]]);
                let decoded_key = GroupCoordinatorRecordKey::decode(&mut key).expect("the key");
                assert!(key.is_empty(), "bytes after the key");
                let value = record.value.clone().map(|mut value| {
                    let decoded = GroupCoordinatorRecordValue::decode(record_type, &mut value)
                        .expect("the value");
                    assert!(value.is_empty(), "bytes after the value");
                    decoded
                });
                out.push(StoredRecord {
                    offset: record.offset,
                    key: decoded_key,
                    value,
                });
            }
        }
    }
    out
}
