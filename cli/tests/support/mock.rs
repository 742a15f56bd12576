//! [`MockBroker`]: a small in-process Kafka broker for the client paths the real broker
//! does not serve yet (Produce, groups). It speaks every version of the generated types
//! (so gregorctl negotiates the newest: topic ids in Produce v13 and Fetch v13+), keeps
//! record batches in memory with offsets assigned as a leader does, and runs a one-member
//! classic group coordinator. Not a Kafka: just enough to check gregorctl's requests.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use gregor_protocol::frame::{decode_request_header, encode_response};
use gregor_protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};
use gregor_protocol::messages::describe_groups_response::{
    DescribeGroupsResponse, DescribedGroup, DescribedGroupMember,
};
use gregor_protocol::messages::fetch_response::{
    FetchResponse, FetchableTopicResponse, PartitionData,
};
use gregor_protocol::messages::find_coordinator_response::{Coordinator, FindCoordinatorResponse};
use gregor_protocol::messages::heartbeat_response::HeartbeatResponse;
use gregor_protocol::messages::join_group_response::{JoinGroupResponse, JoinGroupResponseMember};
use gregor_protocol::messages::leave_group_response::LeaveGroupResponse;
use gregor_protocol::messages::list_groups_response::{ListGroupsResponse, ListedGroup};
use gregor_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
};
use gregor_protocol::messages::metadata_response::{
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use gregor_protocol::messages::offset_commit_response::{
    OffsetCommitResponse, OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use gregor_protocol::messages::offset_fetch_response::{
    OffsetFetchResponse, OffsetFetchResponseGroup, OffsetFetchResponsePartition,
    OffsetFetchResponsePartitions, OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use gregor_protocol::messages::produce_response::{
    PartitionProduceResponse, ProduceResponse, TopicProduceResponse,
};
use gregor_protocol::messages::sync_group_response::SyncGroupResponse;
use gregor_protocol::records::{RecordBatch, set_base_offset};
use gregor_protocol::{ApiKey, RequestBody, ResponseBody, Uuid};

/// One partition's log: batches with their base and last offsets.
#[derive(Default)]
struct Log {
    batches: Vec<(i64, i64, Bytes)>,
    next: i64,
}

#[derive(Default)]
struct Group {
    members: BTreeMap<String, (Bytes, Bytes)>,
    generation: i32,
    committed: BTreeMap<(String, i32), i64>,
}

#[derive(Default)]
struct State {
    /// Advertised ranges replacing the full ones: (api, min, max).
    overrides: Vec<(ApiKey, i16, i16)>,
    topics: BTreeMap<String, (Uuid, Vec<Log>)>,
    groups: BTreeMap<String, Group>,
    next_member: u32,
}

/// The mock broker; stops accepting when dropped (connections end with the test).
pub struct MockBroker {
    state: Arc<Mutex<State>>,
    /// `127.0.0.1:<port>`.
    pub bootstrap: String,
}

impl MockBroker {
    /// Starts with these topics (name, partition count).
    pub fn start(topics: &[(&str, usize)]) -> MockBroker {
        MockBroker::start_with_versions(topics, &[])
    }

    /// Like [`MockBroker::start`], advertising `(api, min, max)` instead of the full range
    /// for these APIs (an ApiVersions request above its max gets UNSUPPORTED_VERSION and
    /// a v0 body, as KIP-511 brokers answer).
    pub fn start_with_versions(
        topics: &[(&str, usize)],
        overrides: &[(ApiKey, i16, i16)],
    ) -> MockBroker {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the mock broker");
        let port = listener.local_addr().expect("an address").port();
        let mut state = State {
            overrides: overrides.to_vec(),
            ..State::default()
        };
        for (i, (name, partitions)) in topics.iter().enumerate() {
            let logs = (0..*partitions).map(|_| Log::default()).collect();
            state
                .topics
                .insert(name.to_string(), (Uuid::from_u128(1000 + i as u128), logs));
        }
        let state = Arc::new(Mutex::new(state));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || serve(stream, state, port));
            }
        });
        MockBroker {
            state,
            bootstrap: format!("127.0.0.1:{port}"),
        }
    }

    /// Records stored in a topic, all partitions.
    pub fn stored(&self, topic: &str) -> i64 {
        let state = self.state.lock().unwrap();
        state.topics[topic].1.iter().map(|l| l.next).sum()
    }
}

fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>, port: u16) {
    loop {
        let mut size = [0u8; 4];
        if stream.read_exact(&mut size).is_err() {
            return;
        }
        let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
        if stream.read_exact(&mut frame).is_err() {
            return;
        }
        let mut frame = Bytes::from(frame);
        let (api, header) = decode_request_header(&mut frame).expect("a request header");
        let version = header.request_api_version;
        let body = RequestBody::decode(api, version, &mut frame)
            .unwrap_or_else(|e| panic!("mock: cannot decode {} v{version}: {e}", api.name()));
        let Some((response, body_version)) = handle(&state, port, version, body) else {
            continue; // acks=0
        };
        let mut out = BytesMut::new();
        encode_response(
            &mut out,
            api,
            body_version,
            header.correlation_id,
            &response,
        )
        .unwrap_or_else(|e| panic!("mock: cannot encode {} v{version}: {e}", api.name()));
        if stream.write_all(&out).is_err() {
            return;
        }
    }
}

/// The response and the version to encode its body at.
fn handle(
    state: &Mutex<State>,
    port: u16,
    version: i16,
    body: RequestBody,
) -> Option<(ResponseBody, i16)> {
    let mut state = state.lock().unwrap();
    let advertised = |api: ApiKey, overrides: &[(ApiKey, i16, i16)]| {
        overrides
            .iter()
            .find(|o| o.0 == api)
            .map_or((api.valid_versions().min, api.valid_versions().max), |o| {
                (o.1, o.2)
            })
    };
    if let RequestBody::ApiVersions(_) = &body {
        let (_, max) = advertised(ApiKey::ApiVersions, &state.overrides);
        if version > max {
            let response = ApiVersionsResponse {
                error_code: 35,
                api_keys: vec![ApiVersion {
                    api_key: ApiKey::ApiVersions.key(),
                    min_version: 0,
                    max_version: max,
                    ..Default::default()
                }],
                ..Default::default()
            };
            return Some((response.into(), 0));
        }
    }
    let state = &mut *state;
    let by_id = |state: &State, id: &Uuid| {
        state
            .topics
            .iter()
            .find(|(_, (tid, _))| tid == id)
            .map(|(name, _)| name.clone())
    };
    let response: ResponseBody = match body {
        RequestBody::ApiVersions(_) => ApiVersionsResponse {
            api_keys: [
                ApiKey::Produce,
                ApiKey::Fetch,
                ApiKey::ListOffsets,
                ApiKey::Metadata,
                ApiKey::OffsetCommit,
                ApiKey::OffsetFetch,
                ApiKey::FindCoordinator,
                ApiKey::JoinGroup,
                ApiKey::Heartbeat,
                ApiKey::LeaveGroup,
                ApiKey::SyncGroup,
                ApiKey::DescribeGroups,
                ApiKey::ListGroups,
                ApiKey::ApiVersions,
            ]
            .iter()
            .map(|api| {
                let (min, max) = advertised(*api, &state.overrides);
                ApiVersion {
                    api_key: api.key(),
                    min_version: min,
                    max_version: max,
                    ..Default::default()
                }
            })
            .collect(),
            ..Default::default()
        }
        .into(),
        RequestBody::Metadata(request) => {
            let wanted: Option<Vec<String>> = request.topics.map(|topics| {
                topics
                    .iter()
                    .filter_map(|t| t.name.as_deref().map(str::to_string))
                    .collect()
            });
            MetadataResponse {
                brokers: vec![MetadataResponseBroker {
                    node_id: 0,
                    host: "127.0.0.1".into(),
                    port: i32::from(port),
                    ..Default::default()
                }],
                cluster_id: Some("mock".into()),
                controller_id: 0,
                topics: state
                    .topics
                    .iter()
                    .filter(|(name, _)| wanted.as_ref().is_none_or(|w| w.contains(name)))
                    .map(|(name, (id, logs))| MetadataResponseTopic {
                        name: Some(name.as_str().into()),
                        topic_id: *id,
                        partitions: (0..logs.len() as i32)
                            .map(|p| MetadataResponsePartition {
                                partition_index: p,
                                leader_id: 0,
                                replica_nodes: vec![0],
                                isr_nodes: vec![0],
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }
            .into()
        }
        RequestBody::Produce(request) => {
            let acks = request.acks;
            let mut responses = Vec::new();
            for topic in request.topic_data {
                let name = if topic.name.is_empty() {
                    by_id(state, &topic.topic_id).expect("a known topic id")
                } else {
                    topic.name.to_string()
                };
                let logs = &mut state.topics.get_mut(&name).expect("a known topic").1;
                let mut partitions = Vec::new();
                for data in topic.partition_data {
                    let log = &mut logs[data.index as usize];
                    let mut bytes = BytesMut::from(&data.records.expect("records")[..]);
                    let base = log.next;
                    set_base_offset(&mut bytes, base).expect("a batch");
                    let batch = RecordBatch::parse(bytes.freeze()).expect("one valid batch");
                    batch.validate().expect("a valid batch");
                    log.next = batch.next_offset();
                    log.batches
                        .push((base, batch.last_offset(), batch.as_bytes().clone()));
                    partitions.push(PartitionProduceResponse {
                        index: data.index,
                        base_offset: base,
                        log_append_time_ms: -1,
                        ..Default::default()
                    });
                }
                responses.push(TopicProduceResponse {
                    name: name.as_str().into(),
                    topic_id: topic.topic_id,
                    partition_responses: partitions,
                    ..Default::default()
                });
            }
            if acks == 0 {
                return None;
            }
            ProduceResponse {
                responses,
                ..Default::default()
            }
            .into()
        }
        RequestBody::ListOffsets(request) => ListOffsetsResponse {
            topics: request
                .topics
                .iter()
                .map(|t| ListOffsetsTopicResponse {
                    name: t.name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| {
                            let log = &state.topics[&*t.name].1[p.partition_index as usize];
                            ListOffsetsPartitionResponse {
                                partition_index: p.partition_index,
                                offset: if p.timestamp == -2 { 0 } else { log.next },
                                timestamp: -1,
                                ..Default::default()
                            }
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        RequestBody::Fetch(request) => FetchResponse {
            responses: request
                .topics
                .iter()
                .map(|t| {
                    let name = if t.topic.is_empty() {
                        by_id(state, &t.topic_id).expect("a known topic id")
                    } else {
                        t.topic.to_string()
                    };
                    let logs = &state.topics[&name].1;
                    FetchableTopicResponse {
                        topic: name.as_str().into(),
                        topic_id: t.topic_id,
                        partitions: t
                            .partitions
                            .iter()
                            .map(|p| {
                                let log = &logs[p.partition as usize];
                                let mut records = BytesMut::new();
                                for (_, last, bytes) in &log.batches {
                                    if *last < p.fetch_offset {
                                        continue;
                                    }
                                    let room = p.partition_max_bytes.max(0) as usize;
                                    if !records.is_empty() && records.len() + bytes.len() > room {
                                        break;
                                    }
                                    records.extend_from_slice(bytes);
                                }
                                PartitionData {
                                    partition_index: p.partition,
                                    high_watermark: log.next,
                                    last_stable_offset: log.next,
                                    log_start_offset: 0,
                                    records: Some(records.freeze()),
                                    ..Default::default()
                                }
                            })
                            .collect(),
                        ..Default::default()
                    }
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        RequestBody::FindCoordinator(request) => {
            let keys = if version >= 4 {
                request.coordinator_keys.clone()
            } else {
                vec![request.key.clone()]
            };
            if version >= 4 {
                FindCoordinatorResponse {
                    coordinators: keys
                        .iter()
                        .map(|k| Coordinator {
                            key: k.clone(),
                            node_id: 0,
                            host: "127.0.0.1".into(),
                            port: i32::from(port),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }
                .into()
            } else {
                FindCoordinatorResponse {
                    node_id: 0,
                    host: "127.0.0.1".into(),
                    port: i32::from(port),
                    ..Default::default()
                }
                .into()
            }
        }
        RequestBody::JoinGroup(request) => {
            if request.member_id.is_empty() && version >= 4 {
                state.next_member += 1;
                let response = JoinGroupResponse {
                    error_code: 79,
                    member_id: format!("member-{}", state.next_member).into(),
                    ..Default::default()
                };
                return Some((response.into(), version));
            }
            let member = if request.member_id.is_empty() {
                state.next_member += 1;
                format!("member-{}", state.next_member)
            } else {
                request.member_id.to_string()
            };
            let group = state
                .groups
                .entry(request.group_id.to_string())
                .or_default();
            group.generation += 1;
            let metadata = request.protocols[0].metadata.clone();
            group.members.clear();
            group
                .members
                .insert(member.clone(), (metadata.clone(), Bytes::new()));
            JoinGroupResponse {
                generation_id: group.generation,
                protocol_type: Some("consumer".into()),
                protocol_name: Some(request.protocols[0].name.clone()),
                leader: member.as_str().into(),
                member_id: member.as_str().into(),
                members: vec![JoinGroupResponseMember {
                    member_id: member.as_str().into(),
                    metadata,
                    ..Default::default()
                }],
                ..Default::default()
            }
            .into()
        }
        RequestBody::SyncGroup(request) => {
            let group = state
                .groups
                .get_mut(&*request.group_id)
                .expect("a joined group");
            for assignment in &request.assignments {
                if let Some(member) = group.members.get_mut(&*assignment.member_id) {
                    member.1 = assignment.assignment.clone();
                }
            }
            SyncGroupResponse {
                protocol_type: Some("consumer".into()),
                protocol_name: Some("range".into()),
                assignment: group
                    .members
                    .get(&*request.member_id)
                    .map(|m| m.1.clone())
                    .unwrap_or_default(),
                ..Default::default()
            }
            .into()
        }
        RequestBody::Heartbeat(_) => HeartbeatResponse::default().into(),
        RequestBody::LeaveGroup(request) => {
            if let Some(group) = state.groups.get_mut(&*request.group_id) {
                group.members.clear();
            }
            LeaveGroupResponse::default().into()
        }
        RequestBody::OffsetCommit(request) => {
            let names: Vec<String> = request
                .topics
                .iter()
                .map(|t| {
                    if t.name.is_empty() {
                        by_id(state, &t.topic_id).expect("a known topic id")
                    } else {
                        t.name.to_string()
                    }
                })
                .collect();
            let group = state
                .groups
                .entry(request.group_id.to_string())
                .or_default();
            let mut topics = Vec::new();
            for (t, name) in request.topics.iter().zip(names) {
                for p in &t.partitions {
                    group
                        .committed
                        .insert((name.clone(), p.partition_index), p.committed_offset);
                }
                topics.push(OffsetCommitResponseTopic {
                    name: t.name.clone(),
                    topic_id: t.topic_id,
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| OffsetCommitResponsePartition {
                            partition_index: p.partition_index,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                });
            }
            OffsetCommitResponse {
                topics,
                ..Default::default()
            }
            .into()
        }
        RequestBody::OffsetFetch(request) => {
            let group_id = if version >= 8 {
                request.groups[0].group_id.to_string()
            } else {
                request.group_id.to_string()
            };
            let committed: Vec<((String, i32), i64)> = state
                .groups
                .get(&group_id)
                .map(|g| g.committed.iter().map(|(k, v)| (k.clone(), *v)).collect())
                .unwrap_or_default();
            let mut by_topic: BTreeMap<String, Vec<(i32, i64)>> = BTreeMap::new();
            for ((topic, p), offset) in committed {
                by_topic.entry(topic).or_default().push((p, offset));
            }
            if version >= 8 {
                OffsetFetchResponse {
                    groups: vec![OffsetFetchResponseGroup {
                        group_id: group_id.as_str().into(),
                        topics: by_topic
                            .iter()
                            .map(|(t, ps)| OffsetFetchResponseTopics {
                                name: t.as_str().into(),
                                topic_id: state.topics.get(t).map(|x| x.0).unwrap_or_default(),
                                partitions: ps
                                    .iter()
                                    .map(|(p, o)| OffsetFetchResponsePartitions {
                                        partition_index: *p,
                                        committed_offset: *o,
                                        committed_leader_epoch: -1,
                                        ..Default::default()
                                    })
                                    .collect(),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }
                .into()
            } else {
                OffsetFetchResponse {
                    topics: by_topic
                        .iter()
                        .map(|(t, ps)| OffsetFetchResponseTopic {
                            name: t.as_str().into(),
                            partitions: ps
                                .iter()
                                .map(|(p, o)| OffsetFetchResponsePartition {
                                    partition_index: *p,
                                    committed_offset: *o,
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }
                .into()
            }
        }
        RequestBody::DescribeGroups(request) => DescribeGroupsResponse {
            groups: request
                .groups
                .iter()
                .map(|g| match state.groups.get(&**g) {
                    Some(group) => DescribedGroup {
                        group_id: g.clone(),
                        group_state: if group.members.is_empty() {
                            "Empty"
                        } else {
                            "Stable"
                        }
                        .into(),
                        protocol_type: "consumer".into(),
                        protocol_data: "range".into(),
                        members: group
                            .members
                            .iter()
                            .map(|(id, (_, assignment))| DescribedGroupMember {
                                member_id: id.as_str().into(),
                                client_id: "gregorctl".into(),
                                client_host: "/127.0.0.1".into(),
                                member_assignment: assignment.clone(),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    },
                    None => DescribedGroup {
                        group_id: g.clone(),
                        group_state: "Dead".into(),
                        error_code: 69,
                        ..Default::default()
                    },
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        RequestBody::ListGroups(_) => ListGroupsResponse {
            groups: state
                .groups
                .iter()
                .map(|(id, g)| ListedGroup {
                    group_id: id.as_str().into(),
                    protocol_type: "consumer".into(),
                    group_state: if g.members.is_empty() {
                        "Empty"
                    } else {
                        "Stable"
                    }
                    .into(),
                    group_type: "classic".into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        other => panic!("mock: no handler for {}", other.api_key().name()),
    };
    Some((response, version))
}
