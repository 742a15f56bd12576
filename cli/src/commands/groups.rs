//! `gregorctl groups list|describe` (kafka-consumer-groups.sh), and the classic consumer
//! group membership `consume --group` uses: FindCoordinator, JoinGroup, SyncGroup (this
//! member assigns with the range assignor when it leads), Heartbeat, OffsetFetch,
//! OffsetCommit, LeaveGroup.

use gregor_protocol::error_code::MEMBER_ID_REQUIRED;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use gregor_protocol::messages::consumer_protocol_assignment::{self, ConsumerProtocolAssignment};
use gregor_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
use gregor_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use gregor_protocol::messages::describe_groups_response::DescribedGroup;
use gregor_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use gregor_protocol::messages::heartbeat_request::HeartbeatRequest;
use gregor_protocol::messages::join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol};
use gregor_protocol::messages::leave_group_request::{LeaveGroupRequest, MemberIdentity};
use gregor_protocol::messages::list_groups_request::ListGroupsRequest;
use gregor_protocol::messages::list_groups_response::ListedGroup;
use gregor_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use gregor_protocol::messages::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use gregor_protocol::messages::sync_group_request::{SyncGroupRequest, SyncGroupRequestAssignment};
use gregor_protocol::{ApiKey, Decodable, Encodable, Message};
use serde::Serialize;

use super::{Context, LATEST, list_offsets};
use crate::client::cluster::TopicInfo;
use crate::client::{Cluster, Connection, Error, Result};
use crate::output::{self, Table};

pub use gregor_protocol::error_code::REBALANCE_IN_PROGRESS;
/// The only assignor this member offers.
const RANGE: &str = "range";

/// The group subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// List the groups of every broker (ListGroups).
    List,
    /// Members, assignments, committed offsets and lag of a group.
    Describe(DescribeArgs),
}

/// `groups describe`.
#[derive(clap::Args, Debug)]
pub struct DescribeArgs {
    /// The group id.
    #[arg(long)]
    pub group: String,
}

/// Runs a group subcommand.
pub async fn run(context: &Context, command: &Command) -> Result<()> {
    match command {
        Command::List => list(context).await,
        Command::Describe(args) => describe(context, args).await,
    }
}

async fn list(context: &Context) -> Result<()> {
    let cluster = context.cluster().await?;
    let metadata = cluster.metadata(Some(&[])).await?;
    let mut groups: BTreeMap<String, ListedGroup> = BTreeMap::new();
    for broker in &metadata.brokers {
        let connection = cluster.broker(broker.node_id).await?;
        let response = connection.send(&ListGroupsRequest::default()).await?;
        Error::check(response.error_code, None, || {
            format!("list groups on broker {}", broker.node_id)
        })?;
        for group in response.groups {
            groups.insert(group.group_id.to_string(), group);
        }
    }
    if context.json {
        let list: Vec<&ListedGroup> = groups.values().collect();
        return output::json_pretty(&list);
    }
    let mut table = Table::new(&["GROUP", "PROTOCOL-TYPE", "STATE", "TYPE"]);
    for group in groups.values() {
        table.row(vec![
            group.group_id.to_string(),
            group.protocol_type.to_string(),
            non_empty(&group.group_state),
            non_empty(&group.group_type),
        ]);
    }
    table.print()
}

fn non_empty(text: &str) -> String {
    if text.is_empty() {
        "-".into()
    } else {
        text.into()
    }
}

/// A committed offset, with the log end and lag when known.
#[derive(Clone, Debug, Serialize)]
pub struct CommittedOffset {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The committed offset (-1 for none).
    pub committed_offset: i64,
    /// The log end offset.
    pub log_end_offset: Option<i64>,
    /// `log_end_offset - committed_offset`.
    pub lag: Option<i64>,
}

#[derive(Serialize)]
struct Described<'a> {
    group: &'a DescribedGroup,
    offsets: &'a [CommittedOffset],
}

async fn describe(context: &Context, args: &DescribeArgs) -> Result<()> {
    let cluster = context.cluster().await?;
    let coordinator = find_coordinator(&cluster, &args.group).await?;
    let response = coordinator
        .send(&DescribeGroupsRequest {
            groups: vec![args.group.as_str().into()],
            ..Default::default()
        })
        .await?;
    let Some(group) = response.groups.into_iter().next() else {
        return Err(Error::Protocol(
            "DescribeGroups answered without a group".into(),
        ));
    };
    Error::check(group.error_code, group.error_message.as_deref(), || {
        format!("describe group {:?}", args.group)
    })?;
    cluster.metadata(None).await?;
    let mut offsets = fetch_committed(&cluster, &coordinator, &args.group, None).await?;
    // Log end offsets and lag, per topic.
    let mut by_topic: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, o) in offsets.iter().enumerate() {
        by_topic.entry(o.topic.clone()).or_default().push(i);
    }
    for (topic, indexes) in by_topic {
        let Ok(info) = cluster.topic(&topic, false).await else {
            continue;
        };
        let partitions: Vec<i32> = indexes.iter().map(|&i| offsets[i].partition).collect();
        if let Ok(ends) = list_offsets(&cluster, &info, &partitions, LATEST).await {
            for i in indexes {
                if let Some(end) = ends.get(&offsets[i].partition) {
                    offsets[i].log_end_offset = Some(end.offset);
                    if offsets[i].committed_offset >= 0 {
                        offsets[i].lag = Some(end.offset - offsets[i].committed_offset);
                    }
                }
            }
        }
    }
    if context.json {
        return output::json_pretty(&Described {
            group: &group,
            offsets: &offsets,
        });
    }
    output::line(&format!(
        "group {}  state {}  protocol {} ({})  members {}",
        group.group_id,
        non_empty(&group.group_state),
        non_empty(&group.protocol_data),
        non_empty(&group.protocol_type),
        group.members.len()
    ))?;
    let mut members = Table::new(&["MEMBER-ID", "CLIENT-ID", "HOST", "ASSIGNMENT"]);
    for m in &group.members {
        let assignment = decode_assignment(&m.member_assignment)
            .map(|a| {
                a.assigned_partitions
                    .iter()
                    .map(|tp| format!("{}:{}", tp.topic, output::id_list(&tp.partitions)))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_else(|_| "-".into());
        members.row(vec![
            m.member_id.to_string(),
            m.client_id.to_string(),
            m.client_host.to_string(),
            assignment,
        ]);
    }
    if !members.is_empty() {
        members.print()?;
    }
    let mut table = Table::new(&[
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
    ]);
    for o in &offsets {
        let show = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
        table.row(vec![
            o.topic.clone(),
            o.partition.to_string(),
            if o.committed_offset < 0 {
                "-".into()
            } else {
                o.committed_offset.to_string()
            },
            show(o.log_end_offset),
            show(o.lag),
        ]);
    }
    table.print()
}

/// The coordinator of `group` (FindCoordinator, key type 0).
pub async fn find_coordinator(cluster: &Cluster, group: &str) -> Result<Arc<Connection>> {
    let connection = cluster.any();
    let version = connection.version(ApiKey::FindCoordinator)?;
    let request = if version >= 4 {
        FindCoordinatorRequest {
            coordinator_keys: vec![group.into()],
            ..Default::default()
        }
    } else {
        FindCoordinatorRequest {
            key: group.into(),
            ..Default::default()
        }
    };
    let response = connection
        .dispatch_at(&request, version)
        .await?
        .wait()
        .await?;
    let (code, message, node) = match response.coordinators.first() {
        Some(c) if version >= 4 => (c.error_code, c.error_message.clone(), c.node_id),
        _ => (
            response.error_code,
            response.error_message.clone(),
            response.node_id,
        ),
    };
    Error::check(code, message.as_deref(), || {
        format!("find the coordinator of group {group:?}")
    })?;
    cluster.broker(node).await
}

/// Committed offsets of `group` (all topics, or the partitions of `only`).
pub async fn fetch_committed(
    cluster: &Cluster,
    coordinator: &Connection,
    group: &str,
    only: Option<(&TopicInfo, &[i32])>,
) -> Result<Vec<CommittedOffset>> {
    let version = coordinator.version(ApiKey::OffsetFetch)?;
    let request = if version >= 8 {
        OffsetFetchRequest {
            groups: vec![OffsetFetchRequestGroup {
                group_id: group.into(),
                topics: only.map(|(topic, partitions)| {
                    vec![OffsetFetchRequestTopics {
                        name: topic.name.as_str().into(),
                        topic_id: topic.id,
                        partition_indexes: partitions.to_vec(),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }],
            ..Default::default()
        }
    } else {
        OffsetFetchRequest {
            group_id: group.into(),
            topics: only.map(|(topic, partitions)| {
                vec![OffsetFetchRequestTopic {
                    name: topic.name.as_str().into(),
                    partition_indexes: partitions.to_vec(),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        }
    };
    let response = coordinator
        .dispatch_at(&request, version)
        .await?
        .wait()
        .await?;
    let context = || format!("fetch the committed offsets of group {group:?}");
    let mut out = Vec::new();
    if version >= 8 {
        for g in &response.groups {
            Error::check(g.error_code, None, context)?;
            for t in &g.topics {
                let name = if t.name.is_empty() {
                    cluster
                        .topic_name(&t.topic_id)
                        .unwrap_or_else(|| output::kafka_uuid(&t.topic_id))
                } else {
                    t.name.to_string()
                };
                for p in &t.partitions {
                    Error::check(p.error_code, None, context)?;
                    out.push(CommittedOffset {
                        topic: name.clone(),
                        partition: p.partition_index,
                        committed_offset: p.committed_offset,
                        log_end_offset: None,
                        lag: None,
                    });
                }
            }
        }
    } else {
        Error::check(response.error_code, None, context)?;
        for t in &response.topics {
            for p in &t.partitions {
                Error::check(p.error_code, None, context)?;
                out.push(CommittedOffset {
                    topic: t.name.to_string(),
                    partition: p.partition_index,
                    committed_offset: p.committed_offset,
                    log_end_offset: None,
                    lag: None,
                });
            }
        }
    }
    Ok(out)
}

/// Encodes a consumer protocol struct with its int16 version prefix.
fn encode_versioned<T: Encodable>(value: &T, version: i16) -> Result<Bytes> {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    value
        .encode(&mut buf, version)
        .map_err(|e| Error::Protocol(format!("cannot encode the consumer protocol: {e}")))?;
    Ok(buf.freeze())
}

/// Decodes a consumer protocol struct after its int16 version prefix (newer versions than
/// ours are read at our highest: they only append fields).
fn decode_versioned<T: Decodable + Message>(bytes: &Bytes) -> Result<T> {
    let mut buf = bytes.clone();
    if buf.len() < 2 {
        return Err(Error::Protocol(format!(
            "{} shorter than its version",
            T::NAME
        )));
    }
    let version = i16::from_be_bytes([buf[0], buf[1]]);
    let _ = bytes::Buf::get_i16(&mut buf);
    let version = version.clamp(T::VALID_VERSIONS.min, T::VALID_VERSIONS.max);
    T::decode(&mut buf, version)
        .map_err(|e| Error::Protocol(format!("cannot decode a {}: {e}", T::NAME)))
}

/// A member's assignment from SyncGroup or DescribeGroups.
pub fn decode_assignment(bytes: &Bytes) -> Result<ConsumerProtocolAssignment> {
    if bytes.is_empty() {
        return Ok(ConsumerProtocolAssignment::default());
    }
    decode_versioned(bytes)
}

/// The range assignor: per topic, partitions in order split into contiguous ranges over
/// the members subscribed to it (sorted by member id), the first members taking one extra.
pub fn range_assign(
    subscriptions: &BTreeMap<String, Vec<String>>,
    partitions: &BTreeMap<String, Vec<i32>>,
) -> BTreeMap<String, BTreeMap<String, Vec<i32>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<i32>>> = subscriptions
        .keys()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect();
    for (topic, topic_partitions) in partitions {
        let members: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if members.is_empty() {
            continue;
        }
        let per = topic_partitions.len() / members.len();
        let extra = topic_partitions.len() % members.len();
        let mut start = 0;
        for (i, member) in members.iter().enumerate() {
            let count = per + usize::from(i < extra);
            let assigned = topic_partitions[start..start + count].to_vec();
            start += count;
            if !assigned.is_empty() {
                out.entry((*member).clone())
                    .or_default()
                    .insert(topic.clone(), assigned);
            }
        }
    }
    out
}

/// A member of a classic consumer group, subscribed to one topic.
pub struct GroupMember {
    /// The group id.
    pub group: String,
    /// The coordinator.
    pub coordinator: Arc<Connection>,
    /// Our member id.
    pub member_id: String,
    /// The generation we joined.
    pub generation: i32,
    /// The partitions assigned to us.
    pub assigned: Vec<i32>,
}

/// Session timeout of the membership (Kafka's default session.timeout.ms).
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(45);
/// How often to heartbeat (Kafka's default heartbeat.interval.ms).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(3);

impl GroupMember {
    /// Joins `group` for `topic` and gets this member's partitions.
    pub async fn join(cluster: &Cluster, group: &str, topic: &TopicInfo) -> Result<GroupMember> {
        let coordinator = find_coordinator(cluster, group).await?;
        let subscription = encode_versioned(
            &ConsumerProtocolSubscription {
                topics: vec![topic.name.as_str().into()],
                ..Default::default()
            },
            0,
        )?;
        let mut member_id = String::new();
        for _attempt in 0..10 {
            let join = JoinGroupRequest {
                group_id: group.into(),
                session_timeout_ms: SESSION_TIMEOUT.as_millis() as i32,
                rebalance_timeout_ms: 60_000,
                member_id: member_id.as_str().into(),
                protocol_type: "consumer".into(),
                protocols: vec![JoinGroupRequestProtocol {
                    name: RANGE.into(),
                    metadata: subscription.clone(),
                    ..Default::default()
                }],
                ..Default::default()
            };
            // The coordinator holds JoinGroup until the rebalance completes.
            let response = coordinator
                .dispatch(&join)
                .await?
                .extend_timeout(Duration::from_secs(60))
                .wait()
                .await?;
            if response.error_code == MEMBER_ID_REQUIRED {
                member_id = response.member_id.to_string();
                continue;
            }
            Error::check(response.error_code, None, || {
                format!("join group {group:?}")
            })?;
            member_id = response.member_id.to_string();
            let generation = response.generation_id;
            let assignments = if *response.leader == *member_id {
                leader_assignments(&response.members, topic)?
            } else {
                Vec::new()
            };
            let sync = SyncGroupRequest {
                group_id: group.into(),
                generation_id: generation,
                member_id: member_id.as_str().into(),
                protocol_type: Some("consumer".into()),
                protocol_name: Some(RANGE.into()),
                assignments,
                ..Default::default()
            };
            let synced = coordinator
                .dispatch(&sync)
                .await?
                .extend_timeout(Duration::from_secs(60))
                .wait()
                .await?;
            if synced.error_code == REBALANCE_IN_PROGRESS {
                continue;
            }
            Error::check(synced.error_code, None, || format!("sync group {group:?}"))?;
            let assignment = decode_assignment(&synced.assignment)?;
            let assigned = assignment
                .assigned_partitions
                .iter()
                .filter(|tp| *tp.topic == *topic.name)
                .flat_map(|tp| tp.partitions.iter().copied())
                .collect();
            return Ok(GroupMember {
                group: group.to_string(),
                coordinator,
                member_id,
                generation,
                assigned,
            });
        }
        Err(Error::Protocol(format!(
            "group {group:?} kept rebalancing; gave up joining after 10 attempts"
        )))
    }

    /// One heartbeat; `Ok(false)` when the group is rebalancing (rejoin).
    pub async fn heartbeat(&self) -> Result<bool> {
        let response = self
            .coordinator
            .send(&HeartbeatRequest {
                group_id: self.group.as_str().into(),
                generation_id: self.generation,
                member_id: self.member_id.as_str().into(),
                ..Default::default()
            })
            .await?;
        if response.error_code == REBALANCE_IN_PROGRESS {
            return Ok(false);
        }
        Error::check(response.error_code, None, || {
            format!("heartbeat to group {:?}", self.group)
        })?;
        Ok(true)
    }

    /// Commits `offsets` (partition to the next offset to read).
    pub async fn commit(&self, topic: &TopicInfo, offsets: &BTreeMap<i32, i64>) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let request = OffsetCommitRequest {
            group_id: self.group.as_str().into(),
            generation_id_or_member_epoch: self.generation,
            member_id: self.member_id.as_str().into(),
            topics: vec![OffsetCommitRequestTopic {
                name: topic.name.as_str().into(),
                topic_id: topic.id,
                partitions: offsets
                    .iter()
                    .map(
                        |(&partition_index, &committed_offset)| OffsetCommitRequestPartition {
                            partition_index,
                            committed_offset,
                            ..Default::default()
                        },
                    )
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let response = self.coordinator.send(&request).await?;
        for t in &response.topics {
            for p in &t.partitions {
                Error::check(p.error_code, None, || {
                    format!("commit offsets of group {:?}", self.group)
                })?;
            }
        }
        Ok(())
    }

    /// Leaves the group (errors are not interesting at this point).
    pub async fn leave(&self) {
        let Ok(version) = self.coordinator.version(ApiKey::LeaveGroup) else {
            return;
        };
        let request = if version >= 3 {
            LeaveGroupRequest {
                group_id: self.group.as_str().into(),
                members: vec![MemberIdentity {
                    member_id: self.member_id.as_str().into(),
                    ..Default::default()
                }],
                ..Default::default()
            }
        } else {
            LeaveGroupRequest {
                group_id: self.group.as_str().into(),
                member_id: self.member_id.as_str().into(),
                ..Default::default()
            }
        };
        if let Ok(pending) = self.coordinator.dispatch_at(&request, version).await {
            let _ = pending.wait().await;
        }
    }
}

/// As the leader: the range assignment of every member's subscription to `topic`.
fn leader_assignments(
    members: &[gregor_protocol::messages::join_group_response::JoinGroupResponseMember],
    topic: &TopicInfo,
) -> Result<Vec<SyncGroupRequestAssignment>> {
    let mut subscriptions = BTreeMap::new();
    for m in members {
        let subscription: ConsumerProtocolSubscription = decode_versioned(&m.metadata)?;
        subscriptions.insert(
            m.member_id.to_string(),
            subscription
                .topics
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>(),
        );
    }
    let partitions = BTreeMap::from([(
        topic.name.clone(),
        topic.partitions.keys().copied().collect::<Vec<_>>(),
    )]);
    range_assign(&subscriptions, &partitions)
        .into_iter()
        .map(|(member, topics)| {
            let assignment = ConsumerProtocolAssignment {
                assigned_partitions: topics
                    .into_iter()
                    .map(
                        |(topic, partitions)| consumer_protocol_assignment::TopicPartition {
                            topic: topic.into(),
                            partitions,
                        },
                    )
                    .collect(),
                ..Default::default()
            };
            Ok(SyncGroupRequestAssignment {
                member_id: member.into(),
                assignment: encode_versioned(&assignment, 0)?,
                ..Default::default()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_assignor_splits_contiguously() {
        let subs = BTreeMap::from([
            ("a".to_string(), vec!["t".to_string()]),
            ("b".to_string(), vec!["t".to_string()]),
            ("c".to_string(), vec!["other".to_string()]),
        ]);
        let parts = BTreeMap::from([("t".to_string(), vec![0, 1, 2, 3, 4])]);
        let out = range_assign(&subs, &parts);
        assert_eq!(out["a"]["t"], vec![0, 1, 2]);
        assert_eq!(out["b"]["t"], vec![3, 4]);
        assert!(out["c"].is_empty());
    }

    #[test]
    fn consumer_protocol_round_trips_with_version_prefix() {
        let assignment = ConsumerProtocolAssignment {
            assigned_partitions: vec![consumer_protocol_assignment::TopicPartition {
                topic: "t".into(),
                partitions: vec![1, 2],
            }],
            ..Default::default()
        };
        let bytes = encode_versioned(&assignment, 0).unwrap();
        assert_eq!(&bytes[..2], &[0, 0]);
        assert_eq!(decode_assignment(&bytes).unwrap(), assignment);
        assert_eq!(
            decode_assignment(&Bytes::new()).unwrap(),
            ConsumerProtocolAssignment::default()
        );
    }
}
