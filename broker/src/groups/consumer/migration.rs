//! The online migration between classic and consumer groups (KIP-848's upgrade path), as
//! Kafka's `GroupMetadataManager` does it, without I/O.
//!
//! * Upgrade: a ConsumerGroupHeartbeat joining a non-empty classic group whose members use
//!   the `consumer` embedded protocol turns it into a consumer group
//!   ([`ConsumerGroup::from_classic`], Kafka's `ConsumerGroup.fromClassicGroup`): every
//!   classic member becomes a member using the classic protocol, at the generation as
//!   its epoch, with its last assignment as both its current and its target assignment.
//! * Members using the classic protocol keep sending JoinGroup, SyncGroup, Heartbeat and
//!   LeaveGroup; the consumer group answers them ([`ConsumerGroup::classic_join`] and the
//!   others here, Kafka's `classicGroup*ToConsumerGroup`). A JoinGroup is their heartbeat
//!   with a subscription; SyncGroup hands them their assigned partitions in the embedded
//!   protocol; Heartbeat answers REBALANCE_IN_PROGRESS when they must rejoin to move on.
//! * Downgrade: when the last member using the consumer protocol leaves and only classic
//!   members remain, the group becomes a classic group again ([`ConsumerGroup::to_classic`],
//!   Kafka's `ClassicGroup.fromConsumerGroup`) which then rebalances.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{BufMut, Bytes, BytesMut};
use gregor_protocol::error_code::*;
use gregor_protocol::messages::consumer_group_member_metadata_value::{
    ClassicMemberMetadata, ClassicProtocol,
};
use gregor_protocol::messages::consumer_protocol_assignment::{self, ConsumerProtocolAssignment};
use gregor_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
use gregor_protocol::messages::group_metadata_value::{GroupMetadataValue, MemberMetadata};
use gregor_protocol::{Decodable, Encodable, Uuid};

use super::assignor::Assignment;
use super::reconcile::{MemberAssignment, MemberState};
use super::records::{self, ConsumerRecord};
use super::{
    Changes, ConsumerGroup, ConsumerMember, ConsumerSettings, HeartbeatRequest, OpError,
    TopicSource,
};
use crate::groups::group::{ClassicGroup, Protocol};

/// The protocol type of the consumer embedded protocol (Kafka's
/// `ConsumerProtocol.PROTOCOL_TYPE`).
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// `group.consumer.migration.policy` (Kafka's `ConsumerGroupMigrationPolicy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrationPolicy {
    /// No online conversion.
    Disabled,
    /// Classic groups may become consumer groups.
    Upgrade,
    /// Consumer groups may become classic groups.
    Downgrade,
    /// Both (Kafka 4's default).
    Bidirectional,
}

impl MigrationPolicy {
    /// The policy of a configuration value (case-insensitive); unknown values (rejected by
    /// the configuration) read as the default.
    pub fn parse(value: &str) -> MigrationPolicy {
        match value.trim().to_ascii_lowercase().as_str() {
            "disabled" => MigrationPolicy::Disabled,
            "upgrade" => MigrationPolicy::Upgrade,
            "downgrade" => MigrationPolicy::Downgrade,
            _ => MigrationPolicy::Bidirectional,
        }
    }

    /// Whether classic groups may be upgraded.
    pub fn upgrade_enabled(self) -> bool {
        matches!(
            self,
            MigrationPolicy::Upgrade | MigrationPolicy::Bidirectional
        )
    }

    /// Whether consumer groups may be downgraded.
    pub fn downgrade_enabled(self) -> bool {
        matches!(
            self,
            MigrationPolicy::Downgrade | MigrationPolicy::Bidirectional
        )
    }
}

/// What a member using the classic protocol joined with (Kafka's
/// `ConsumerGroupMemberMetadataValue.ClassicMemberMetadata`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassicMeta {
    /// Its session timeout.
    pub session_timeout_ms: i32,
    /// Its protocols, in its order of preference.
    pub protocols: Vec<Protocol>,
}

impl ClassicMeta {
    /// The record form.
    pub fn to_record(&self) -> ClassicMemberMetadata {
        ClassicMemberMetadata {
            session_timeout_ms: self.session_timeout_ms,
            supported_protocols: self
                .protocols
                .iter()
                .map(|p| ClassicProtocol {
                    name: p.name.as_str().into(),
                    metadata: p.metadata.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    /// From the record form.
    pub fn from_record(value: &ClassicMemberMetadata) -> ClassicMeta {
        ClassicMeta {
            session_timeout_ms: value.session_timeout_ms,
            protocols: value
                .supported_protocols
                .iter()
                .map(|p| Protocol {
                    name: p.name.to_string(),
                    metadata: p.metadata.clone(),
                })
                .collect(),
        }
    }

    /// The protocol name a JoinGroup answers (Kafka: the member's first).
    pub fn protocol_name(&self) -> &str {
        self.protocols.first().map_or("", |p| p.name.as_str())
    }
}

/// The version of an embedded-protocol blob (its first int16), 0 when too short.
fn blob_version(bytes: &[u8]) -> i16 {
    if bytes.len() < 2 {
        0
    } else {
        i16::from_be_bytes([bytes[0], bytes[1]])
    }
}

/// A ConsumerProtocolSubscription (an int16 version, then the body; a version above the
/// ones known is read as the highest, whose fields are a prefix, as Kafka's
/// `ConsumerProtocol.deserializeSubscription` does).
pub fn decode_subscription(metadata: &Bytes) -> Result<ConsumerProtocolSubscription, String> {
    if metadata.len() < 2 {
        return Err("the subscription is too short".to_string());
    }
    let version = blob_version(metadata).clamp(0, 3);
    ConsumerProtocolSubscription::decode(&mut metadata.slice(2..), version)
        .map_err(|e| format!("malformed subscription: {e}"))
}

/// A ConsumerProtocolAssignment; an empty blob is no partitions.
pub fn decode_assignment(bytes: &Bytes) -> Result<ConsumerProtocolAssignment, String> {
    if bytes.is_empty() {
        return Ok(ConsumerProtocolAssignment::default());
    }
    if bytes.len() < 2 {
        return Err("the assignment is too short".to_string());
    }
    let version = blob_version(bytes).clamp(0, 3);
    ConsumerProtocolAssignment::decode(&mut bytes.slice(2..), version)
        .map_err(|e| format!("malformed assignment: {e}"))
}

/// `assignment` in the embedded protocol at `version` (the version of the member's
/// subscription, as Kafka's `prepareAssignment`), topic ids named through `lookup`.
pub fn encode_assignment(assignment: &Assignment, version: i16, lookup: &dyn TopicSource) -> Bytes {
    let names = id_names(lookup, assignment.keys().copied().collect());
    let version = version.clamp(0, 3);
    let body = ConsumerProtocolAssignment {
        assigned_partitions: assignment
            .iter()
            .filter_map(|(id, ps)| {
                names
                    .get(id)
                    .map(|name| consumer_protocol_assignment::TopicPartition {
                        topic: name.as_str().into(),
                        partitions: ps.iter().copied().collect(),
                    })
            })
            .collect(),
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    if body.encode(&mut buf, version).is_err() {
        // Only an impossible length fails; an empty assignment is then sent.
        buf.truncate(2);
        let _ = ConsumerProtocolAssignment::default().encode(&mut buf, version);
    }
    buf.freeze()
}

/// The names of topic ids, from the topics `lookup` knows.
fn id_names(lookup: &dyn TopicSource, ids: BTreeSet<Uuid>) -> BTreeMap<Uuid, String> {
    if ids.is_empty() {
        return BTreeMap::new();
    }
    lookup
        .names()
        .into_iter()
        .filter_map(|n| {
            lookup
                .meta(&n)
                .filter(|m| ids.contains(&m.id))
                .map(|m| (m.id, n))
        })
        .collect()
}

/// Named partitions as topic ids (unknown topics dropped, as Kafka's `toTopicPartitionMap`).
fn to_assignment<'a>(
    partitions: impl Iterator<Item = (&'a str, &'a [i32])>,
    lookup: &dyn TopicSource,
) -> Assignment {
    let mut a = Assignment::new();
    for (topic, ps) in partitions {
        if let Some(meta) = lookup.meta(topic)
            && !ps.is_empty()
        {
            a.entry(meta.id).or_default().extend(ps.iter().copied());
        }
    }
    a
}

/// A JoinGroup of a classic member to a consumer group, as the coordinator passes it on.
#[derive(Clone, Debug)]
pub struct ClassicJoin {
    /// Member id ("" for a new member).
    pub member_id: String,
    /// `group.instance.id`.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// Protocol type.
    pub protocol_type: String,
    /// Protocols.
    pub protocols: Vec<Protocol>,
    /// Whether a new dynamic member must first get its member id (JoinGroup v4+):
    /// MEMBER_ID_REQUIRED.
    pub requires_known_member_id: bool,
}

/// What a classic JoinGroup to a consumer group answers.
#[derive(Clone, Debug, PartialEq)]
pub enum ClassicJoinOutcome {
    /// MEMBER_ID_REQUIRED with the member id to rejoin with.
    MemberIdRequired(String),
    /// Joined: the member id, its epoch as the generation, and the protocol name.
    Joined {
        /// Member id.
        member_id: String,
        /// Member epoch.
        generation_id: i32,
        /// Protocol name.
        protocol_name: String,
    },
}

impl ConsumerGroup {
    /// Kafka's `validateOnlineUpgrade`: whether `classic` may become a consumer group.
    pub fn upgrade_allowed(classic: &ClassicGroup, settings: &ConsumerSettings) -> bool {
        let group_id = classic.group_id();
        if !settings.migration.upgrade_enabled() {
            tracing::info!(group = %group_id, "cannot upgrade the classic group: the online upgrade is disabled");
            false
        } else if classic.protocol_type() != Some(CONSUMER_PROTOCOL_TYPE) {
            tracing::info!(group = %group_id, "cannot upgrade the classic group: it does not use the consumer embedded protocol");
            false
        } else if classic.members().count() > settings.max_size {
            tracing::info!(group = %group_id, "cannot upgrade the classic group: it has more members than group.consumer.max.size");
            false
        } else {
            true
        }
    }

    /// Kafka's `ConsumerGroup.fromClassicGroup`: the consumer group of a classic group's
    /// members, each at the generation with its last assignment, Stable. A malformed
    /// embedded protocol is GROUP_ID_NOT_FOUND, as Kafka answers it.
    pub fn from_classic(
        classic: &ClassicGroup,
        lookup: &dyn TopicSource,
    ) -> Result<ConsumerGroup, OpError> {
        let group_id = classic.group_id();
        let malformed = |e: String| {
            (
                GROUP_ID_NOT_FOUND,
                format!(
                    "Cannot upgrade the classic group {group_id} to consumer group because the \
                     embedded consumer protocol is malformed: {e}."
                ),
            )
        };
        let generation = classic.generation_id();
        let protocol = classic.protocol_name().unwrap_or("");
        let mut group = ConsumerGroup::new(group_id);
        group.epoch = generation;
        group.assignment_epoch = generation;
        for m in classic.members() {
            let metadata = m
                .protocols
                .iter()
                .find(|p| p.name == protocol)
                .map(|p| p.metadata.clone())
                .unwrap_or_default();
            let subscription = decode_subscription(&metadata).map_err(malformed)?;
            let assignment = decode_assignment(&m.assignment).map_err(malformed)?;
            let assigned = to_assignment(
                assignment
                    .assigned_partitions
                    .iter()
                    .map(|tp| (&*tp.topic, tp.partitions.as_slice())),
                lookup,
            );
            let mut topics: Vec<String> =
                subscription.topics.iter().map(|t| t.to_string()).collect();
            topics.sort();
            topics.dedup();
            let member = ConsumerMember {
                member_id: m.member_id.clone(),
                instance_id: m.group_instance_id.clone(),
                rack_id: subscription.rack_id.as_deref().map(str::to_string),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                subscribed_topic_names: topics,
                subscribed_topic_regex: None,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                server_assignor: None,
                assignment: MemberAssignment {
                    epoch: generation,
                    previous_epoch: generation,
                    state: MemberState::Stable,
                    assigned: assigned.clone(),
                    pending_revocation: Assignment::new(),
                },
                classic: Some(ClassicMeta {
                    session_timeout_ms: m.session_timeout_ms,
                    protocols: m.protocols.clone(),
                }),
            };
            group.target.insert(m.member_id.clone(), assigned);
            group.members.insert(m.member_id.clone(), member);
        }
        Ok(group)
    }

    /// Kafka's `createConsumerGroupRecords`: every member's subscription, the group epoch,
    /// every target assignment, the assignment epoch, every current assignment.
    pub fn creation_records(&self, now_ms: i64) -> Vec<ConsumerRecord> {
        let id = &self.group_id;
        let mut out: Vec<ConsumerRecord> = self
            .members
            .values()
            .map(|m| records::member(id, m))
            .collect();
        out.push(records::epoch(id, self.epoch, self.metadata_hash));
        for m in self.members.keys() {
            let target = self.target.get(m).cloned().unwrap_or_default();
            out.push(records::target(id, m, &target));
        }
        out.push(records::target_epoch(id, self.epoch, now_ms));
        for m in self.members.values() {
            out.push(records::current(id, &m.member_id, &m.assignment));
        }
        out
    }

    /// Kafka's `validateOnlineDowngradeWithFencedMember`: whether the group becomes classic
    /// once `leaving` is gone (every other member uses the classic protocol, some remain,
    /// the policy allows it, and they fit in a classic group).
    pub fn downgrade_allowed(&self, leaving: &str, settings: &ConsumerSettings) -> bool {
        if !self
            .members
            .values()
            .all(|m| m.member_id == leaving || m.classic.is_some())
        {
            return false;
        }
        if self.members.len() <= 1 || !self.members.contains_key(leaving) {
            return false;
        }
        if !settings.migration.downgrade_enabled() {
            tracing::info!(group = %self.group_id, "cannot downgrade the consumer group: the online downgrade is disabled");
            return false;
        }
        if self.members.len() - 1 > settings.classic_max_size {
            tracing::info!(group = %self.group_id, "cannot downgrade the consumer group: it has more members than group.max.size");
            return false;
        }
        true
    }

    /// Kafka's `createGroupTombstoneRecords` of a group with members: every member's
    /// current assignment, target assignment and subscription, then the group's.
    pub fn all_tombstones(&self) -> Vec<ConsumerRecord> {
        let mut out = Vec::new();
        for m in self.members.keys() {
            out.extend(records::member_tombstones(&self.group_id, m));
        }
        for regex in self.regexes.keys() {
            out.push(records::regex_tombstone(&self.group_id, regex));
        }
        out.extend(records::group_tombstones(&self.group_id));
        out
    }

    /// Kafka's `ClassicGroup.fromConsumerGroup` written as its GroupMetadata record: the
    /// members but `leaving`, at the group epoch, the protocol every member supports
    /// (their first common one by preference), each with its target assignment in the
    /// embedded protocol at the version of its subscription.
    pub fn to_classic(
        &self,
        leaving: &str,
        lookup: &dyn TopicSource,
        now_ms: i64,
    ) -> GroupMetadataValue {
        let remaining: Vec<&ConsumerMember> = self
            .members
            .values()
            .filter(|m| m.member_id != leaving)
            .collect();
        let protocols = |m: &ConsumerMember| -> Vec<Protocol> {
            m.classic
                .as_ref()
                .map(|c| c.protocols.clone())
                .unwrap_or_default()
        };
        // Kafka's `selectProtocol`: the candidates all members support, each member
        // voting for its most preferred candidate, the most votes winning.
        let mut candidates: Option<BTreeSet<String>> = None;
        for m in &remaining {
            let names: BTreeSet<String> = protocols(m).into_iter().map(|p| p.name).collect();
            candidates = Some(match candidates {
                None => names,
                Some(c) => c.intersection(&names).cloned().collect(),
            });
        }
        let candidates = candidates.unwrap_or_default();
        let mut votes: BTreeMap<String, usize> = BTreeMap::new();
        for m in &remaining {
            if let Some(p) = protocols(m)
                .into_iter()
                .find(|p| candidates.contains(&p.name))
            {
                *votes.entry(p.name).or_default() += 1;
            }
        }
        let protocol = votes
            .iter()
            .max_by_key(|(name, n)| (**n, std::cmp::Reverse((*name).clone())))
            .map(|(name, _)| name.clone());
        let members = remaining
            .iter()
            .map(|m| {
                let subscription = protocols(m)
                    .into_iter()
                    .find(|p| Some(&p.name) == protocol.as_ref())
                    .map(|p| p.metadata)
                    .unwrap_or_default();
                let target = self.target.get(&m.member_id).cloned().unwrap_or_default();
                let version = blob_version(&subscription);
                MemberMetadata {
                    member_id: m.member_id.as_str().into(),
                    group_instance_id: m.instance_id.as_deref().map(Into::into),
                    client_id: m.client_id.as_str().into(),
                    client_host: m.client_host.as_str().into(),
                    rebalance_timeout: m.rebalance_timeout_ms,
                    session_timeout: m.classic.as_ref().map_or(45_000, |c| c.session_timeout_ms),
                    assignment: encode_assignment(&target, version, lookup),
                    subscription,
                    ..Default::default()
                }
            })
            .collect();
        GroupMetadataValue {
            protocol_type: CONSUMER_PROTOCOL_TYPE.into(),
            generation: self.epoch,
            protocol: protocol.as_deref().map(Into::into),
            leader: None,
            current_state_timestamp: now_ms,
            members,
            ..Default::default()
        }
    }

    /// Kafka's `supportsClassicProtocols`: a member of the consumer protocol type with a
    /// protocol every member using the classic protocol has.
    fn supports_classic_protocols(&self, protocol_type: &str, names: &BTreeSet<&str>) -> bool {
        if protocol_type != CONSUMER_PROTOCOL_TYPE {
            return false;
        }
        let classic: Vec<&ClassicMeta> = self
            .members
            .values()
            .filter_map(|m| m.classic.as_ref())
            .collect();
        if self.members.is_empty() || classic.is_empty() {
            return !names.is_empty();
        }
        names.iter().any(|n| {
            classic
                .iter()
                .all(|c| c.protocols.iter().any(|p| p.name == *n))
        })
    }

    /// JoinGroup of a member using the classic protocol (Kafka's
    /// `classicGroupJoinToConsumerGroup`): the member is created or updated from its
    /// embedded subscription, the group epoch bumped when needed, the target assignment
    /// computed, the member reconciled with the partitions it says it owns.
    pub fn classic_join(
        &mut self,
        settings: &ConsumerSettings,
        request: ClassicJoin,
        lookup: &dyn TopicSource,
        now_ms: i64,
        changes: &mut Changes,
    ) -> Result<ClassicJoinOutcome, OpError> {
        let mut member_id = request.member_id.clone();
        let unknown = member_id.is_empty();
        if unknown {
            member_id = crate::cluster::meta_properties::random_cluster_id();
        }
        if self.members.len() >= settings.max_size && !self.members.contains_key(&member_id) {
            return Err((
                GROUP_MAX_SIZE_REACHED,
                format!(
                    "The consumer group has reached its maximum capacity of {} members.",
                    settings.max_size
                ),
            ));
        }
        let names: BTreeSet<&str> = request.protocols.iter().map(|p| p.name.as_str()).collect();
        if !self.supports_classic_protocols(&request.protocol_type, &names) {
            return Err((
                INCONSISTENT_GROUP_PROTOCOL,
                format!("Member {member_id}'s protocols are not supported."),
            ));
        }
        if unknown && request.requires_known_member_id && request.instance_id.is_none() {
            return Ok(ClassicJoinOutcome::MemberIdRequired(member_id));
        }
        // A dynamic member id the group does not know (the one MEMBER_ID_REQUIRED handed
        // out) creates the member: Kafka's `getOrMaybeSubscribeDynamicConsumerGroupMember`
        // with `createIfNotExists`.
        // The subscription of the member's first protocol (Kafka's `deserializeSubscription`).
        let first = request
            .protocols
            .first()
            .map(|p| p.metadata.clone())
            .unwrap_or_default();
        let subscription = decode_subscription(&first).map_err(|e| {
            (
                INCONSISTENT_GROUP_PROTOCOL,
                format!("Member {member_id}'s subscription is malformed: {e}."),
            )
        })?;
        let owned = to_assignment(
            subscription
                .owned_partitions
                .iter()
                .map(|tp| (&*tp.topic, tp.partitions.as_slice())),
            lookup,
        );
        let beat = HeartbeatRequest {
            member_id: member_id.clone(),
            member_epoch: 0,
            instance_id: request.instance_id.clone(),
            rack_id: subscription.rack_id.as_deref().map(str::to_string),
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            client_id: request.client_id.clone(),
            client_host: request.client_host.clone(),
            subscribed_topic_names: Some(
                subscription.topics.iter().map(|t| t.to_string()).collect(),
            ),
            subscribed_topic_regex: None,
            server_assignor: None,
            owned: Some(owned),
            classic: Some(ClassicMeta {
                session_timeout_ms: request.session_timeout_ms,
                protocols: request.protocols.clone(),
            }),
        };
        let outcome = self.heartbeat(settings, beat, lookup, now_ms, changes)?;
        let protocol_name = self
            .members
            .get(&outcome.member_id)
            .and_then(|m| m.classic.as_ref())
            .map(|c| c.protocol_name().to_string())
            .unwrap_or_default();
        Ok(ClassicJoinOutcome::Joined {
            member_id: outcome.member_id,
            generation_id: outcome.member_epoch,
            protocol_name,
        })
    }

    /// Kafka's `validateConsumerGroupMember` and `throwIfMemberDoesNotUseClassicProtocol`:
    /// the classic member a SyncGroup, Heartbeat or LeaveGroup names.
    fn classic_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<&ConsumerMember, OpError> {
        let member = match instance_id {
            None => self.members.get(member_id).ok_or_else(|| {
                (
                    UNKNOWN_MEMBER_ID,
                    format!(
                        "Member {member_id} is not a member of group {}.",
                        self.group_id
                    ),
                )
            })?,
            Some(instance) => {
                let m = self
                    .members
                    .values()
                    .find(|m| m.instance_id.as_deref() == Some(instance))
                    .ok_or_else(|| {
                        (
                            UNKNOWN_MEMBER_ID,
                            format!(
                                "Member with instance id {instance} is not a member of group {}.",
                                self.group_id
                            ),
                        )
                    })?;
                if !member_id.is_empty() && m.member_id != member_id {
                    return Err((
                        FENCED_INSTANCE_ID,
                        format!(
                            "Static member {member_id} with instance id {instance} was fenced by \
                             member {}.",
                            m.member_id
                        ),
                    ));
                }
                m
            }
        };
        if member.classic.is_none() {
            return Err((
                UNKNOWN_MEMBER_ID,
                format!(
                    "Member {} does not use the classic protocol.",
                    member.member_id
                ),
            ));
        }
        Ok(member)
    }

    fn throw_if_generation_unmatched(
        member: &ConsumerMember,
        generation: i32,
    ) -> Result<(), OpError> {
        if member.assignment.epoch != generation {
            return Err((
                ILLEGAL_GENERATION,
                format!(
                    "The request generation id {generation} is not equal to the member epoch {} \
                     of member {}.",
                    member.assignment.epoch, member.member_id
                ),
            ));
        }
        Ok(())
    }

    /// SyncGroup of a member using the classic protocol (Kafka's
    /// `classicGroupSyncToConsumerGroup`): its assigned partitions in the embedded protocol
    /// at the version of its subscription. ILLEGAL_GENERATION for another generation,
    /// INCONSISTENT_GROUP_PROTOCOL for another protocol, REBALANCE_IN_PROGRESS when the
    /// group moved on and the member must rejoin.
    pub fn classic_sync(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        lookup: &dyn TopicSource,
    ) -> Result<Bytes, OpError> {
        let member = self.classic_member(member_id, instance_id)?;
        Self::throw_if_generation_unmatched(member, generation_id)?;
        let classic = member.classic.as_ref().expect("checked by classic_member");
        let name = classic.protocol_name();
        if protocol_type.is_some_and(|t| t != CONSUMER_PROTOCOL_TYPE) {
            return Err((
                INCONSISTENT_GROUP_PROTOCOL,
                format!(
                    "The protocol type {} from member {member_id} request is not equal to the \
                     group protocol type {CONSUMER_PROTOCOL_TYPE}.",
                    protocol_type.unwrap_or("")
                ),
            ));
        }
        if protocol_name.is_some_and(|n| n != name) {
            return Err((
                INCONSISTENT_GROUP_PROTOCOL,
                format!(
                    "The protocol name {} from member {member_id} request is not equal to the \
                     protocol name {name} returned in the join response.",
                    protocol_name.unwrap_or("")
                ),
            ));
        }
        // Kafka's `throwIfRebalanceInProgress`: a member still revoking finishes first.
        if self.epoch > member.assignment.epoch
            && member.assignment.state != MemberState::UnrevokedPartitions
        {
            return Err((
                REBALANCE_IN_PROGRESS,
                format!(
                    "A new rebalance is triggered in group {} and member {} should rejoin to \
                     catch up.",
                    self.group_id, member.member_id
                ),
            ));
        }
        let version = classic
            .protocols
            .first()
            .map_or(0, |p| blob_version(&p.metadata));
        Ok(encode_assignment(
            &member.assignment.assigned,
            version,
            lookup,
        ))
    }

    /// Heartbeat of a member using the classic protocol (Kafka's
    /// `classicGroupHeartbeatToConsumerGroup`): REBALANCE_IN_PROGRESS when the member must
    /// rejoin (the group epoch moved past it, it has partitions to revoke, or partitions
    /// it waits for were released). Returns the member id (for its session timer).
    pub fn classic_heartbeat(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(String, i16), OpError> {
        let member = self.classic_member(member_id, instance_id)?;
        Self::throw_if_generation_unmatched(member, generation_id)?;
        let a = &member.assignment;
        let rejoin = a.epoch < self.epoch
            || a.state == MemberState::UnrevokedPartitions
            || (a.state == MemberState::UnreleasedPartitions
                && !self.waiting_on_unreleased_partition(member));
        Ok((
            member.member_id.clone(),
            if rejoin { REBALANCE_IN_PROGRESS } else { NONE },
        ))
    }

    /// Kafka's `waitingOnUnreleasedPartition`: whether a partition of the member's target
    /// it does not have yet is still held by another member.
    fn waiting_on_unreleased_partition(&self, member: &ConsumerMember) -> bool {
        let Some(target) = self.target.get(&member.member_id) else {
            return false;
        };
        target.iter().any(|(topic, ps)| {
            ps.iter().any(|p| {
                !member
                    .assignment
                    .assigned
                    .get(topic)
                    .is_some_and(|a| a.contains(p))
                    && self.partition_epoch(topic, *p) != -1
            })
        })
    }

    /// LeaveGroup of members using the classic protocol (Kafka's
    /// `classicGroupLeaveToConsumerGroup`): each is removed (its error otherwise), then the
    /// group epoch bumped once. Returns each member's (member id, error).
    pub fn classic_leave(
        &mut self,
        members: &[(String, Option<String>)],
        lookup: &dyn TopicSource,
        changes: &mut Changes,
    ) -> Vec<(String, i16)> {
        let mut out = Vec::new();
        let mut removed = false;
        for (member_id, instance_id) in members {
            match self
                .classic_member(member_id, instance_id.as_deref())
                .map(|m| m.member_id.clone())
            {
                Ok(id) => {
                    tracing::info!(group = %self.group_id, member = %id, "classic member left the consumer group");
                    self.members.remove(&id);
                    self.target.remove(&id);
                    changes
                        .records
                        .extend(records::member_tombstones(&self.group_id, &id));
                    changes
                        .timers
                        .push(super::TimerChange::CancelAll(id.clone()));
                    removed = true;
                    out.push((id, NONE));
                }
                Err((code, _)) => out.push((member_id.clone(), code)),
            }
        }
        if removed {
            self.refresh_regexes(lookup, crate::groups::group::now_ms(), changes);
            let hash = super::metadata_hash(&self.subscription_metadata(lookup));
            self.epoch += 1;
            self.metadata_hash = hash;
            changes
                .records
                .push(records::epoch(&self.group_id, self.epoch, hash));
        }
        out
    }
}
