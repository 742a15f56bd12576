//! One classic group: its members, its state machine and its committed offsets, as
//! Kafka's `ClassicGroup` and the classic half of `GroupMetadataManager` keep them.
//!
//! States: `Empty -> PreparingRebalance -> CompletingRebalance -> Stable`, back to
//! `PreparingRebalance` on any membership change, and `Dead` once deleted. The operations
//! here are synchronous: they change the group, complete the members' waiting JoinGroup and
//! SyncGroup responses (oneshot channels), and leave their side effects in [`Effects`]
//! (records to write to `__consumer_offsets`, timers to start, and what to do once the
//! records are written), which the coordinator carries out while it still holds the
//! group's lock.

mod convert;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gregor_protocol::ByteString;
use gregor_protocol::Decodable;
use gregor_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
use gregor_protocol::messages::group_metadata_value::{GroupMetadataValue, MemberMetadata};
use gregor_protocol::messages::join_group_response::{JoinGroupResponse, JoinGroupResponseMember};
use gregor_protocol::messages::sync_group_response::SyncGroupResponse;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use gregor_protocol::error_code::NONE;
use gregor_protocol::error_code::*;

/// Kafka's `ConsumerProtocol.PROTOCOL_TYPE`.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// How long a new member's JoinGroup may wait (Kafka's `classicGroupNewMemberJoinTimeoutMs`).
pub const NEW_MEMBER_JOIN_TIMEOUT_MS: i32 = 5 * 60 * 1000;

/// The coordinator settings the state machine uses.
#[derive(Clone, Debug)]
pub struct GroupConfig {
    /// `group.initial.rebalance.delay.ms`.
    pub initial_rebalance_delay_ms: i32,
    /// `group.max.size`.
    pub max_size: usize,
    /// The timeout of a new member's first JoinGroup.
    pub new_member_join_timeout_ms: i32,
}

/// The state of a classic group, named as Kafka names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members (possibly committed offsets).
    Empty,
    /// Waiting for the members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// Deleted.
    Dead,
}

impl GroupState {
    /// Kafka's name (`ClassicGroupState.toString()`), as DescribeGroups and ListGroups send.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    fn valid_previous(self) -> &'static [GroupState] {
        use GroupState::*;
        match self {
            Empty => &[PreparingRebalance],
            PreparingRebalance => &[Stable, CompletingRebalance, Empty],
            CompletingRebalance => &[PreparingRebalance],
            Stable => &[CompletingRebalance],
            Dead => &[Stable, PreparingRebalance, CompletingRebalance, Empty, Dead],
        }
    }
}

/// A committed offset (Kafka's `OffsetAndMetadata`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetAndMetadata {
    /// The offset.
    pub committed_offset: i64,
    /// The leader epoch of the record at the offset, if the client sent one.
    pub leader_epoch: Option<i32>,
    /// The client's metadata string.
    pub metadata: String,
    /// When it was committed.
    pub commit_timestamp_ms: i64,
    /// When it expires (OffsetCommit v2-v4 with a retention time).
    pub expire_timestamp_ms: Option<i64>,
}

/// One protocol a member supports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Protocol {
    /// Its name (an assignor for consumers).
    pub name: String,
    /// Its metadata (a consumer's subscription).
    pub metadata: Bytes,
}

/// A member of a classic group.
#[derive(Debug)]
pub struct Member {
    /// The member id.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// The client id of its JoinGroup.
    pub client_id: String,
    /// `/<address>` of its JoinGroup.
    pub client_host: String,
    /// Its rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// Its session timeout.
    pub session_timeout_ms: i32,
    /// Its protocol type.
    pub protocol_type: String,
    /// Its protocols in order of preference.
    pub protocols: Vec<Protocol>,
    /// The assignment the leader gave it.
    pub assignment: Bytes,
    awaiting_join: Option<oneshot::Sender<JoinGroupResponse>>,
    awaiting_sync: Option<oneshot::Sender<SyncGroupResponse>>,
    is_new: bool,
}

impl Member {
    fn metadata(&self, protocol: Option<&str>) -> Bytes {
        protocol
            .and_then(|name| self.protocols.iter().find(|p| p.name == name))
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }

    fn matches(&self, protocols: &[Protocol]) -> bool {
        protocols.len() == self.protocols.len()
            && protocols.iter().all(|p| {
                self.protocols
                    .iter()
                    .any(|mine| mine.name == p.name && mine.metadata == p.metadata)
            })
    }

    fn vote(&self, candidates: &BTreeSet<&str>) -> Option<String> {
        self.protocols
            .iter()
            .find(|p| candidates.contains(p.name.as_str()))
            .map(|p| p.name.clone())
    }

    fn has_satisfied_heartbeat(&self) -> bool {
        if self.is_new {
            false
        } else {
            self.awaiting_join.is_some() || self.awaiting_sync.is_some()
        }
    }

    /// True while its JoinGroup waits.
    pub fn is_awaiting_join(&self) -> bool {
        self.awaiting_join.is_some()
    }
}

/// The timers of a group (one of each key at a time, as Kafka's timer keys).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TimerKey {
    /// A member's session (or a new member's join) timeout.
    Heartbeat(String),
    /// The end of the join phase (initial delay or rebalance timeout).
    Join,
    /// The end of the sync phase.
    Sync,
}

/// What a timer does when it fires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimerAction {
    /// Remove the member unless it satisfied its heartbeat.
    ExpireHeartbeat(String),
    /// Complete the join phase.
    CompleteJoin,
    /// The initial rebalance delay passed: complete or extend it.
    InitialRebalance {
        /// The delay that passed.
        delay_ms: i32,
        /// What is left of the rebalance timeout.
        remaining_ms: i32,
    },
    /// Remove the members that did not send SyncGroup.
    ExpireSync {
        /// The generation the timer was set for.
        generation: i32,
    },
}

/// A timer to start.
#[derive(Debug)]
pub struct ScheduledTimer {
    /// Its key.
    pub key: TimerKey,
    /// Its token (a timer runs only if its token is still the key's).
    pub token: u64,
    /// Its delay.
    pub delay_ms: u64,
    /// What it does.
    pub action: TimerAction,
}

#[derive(Debug)]
struct TimerEntry {
    token: u64,
    abort: Option<AbortHandle>,
}

/// A record for `__consumer_offsets`.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// The group's metadata (GroupMetadataValue v3).
    GroupMetadata(GroupMetadataValue),
    /// Deletes the group's metadata.
    GroupTombstone,
    /// A committed offset, or its deletion (`None`).
    Offset {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The offset, `None` for a tombstone.
        value: Option<OffsetAndMetadata>,
    },
    /// A consumer-group (KIP-848) record.
    Consumer(Box<super::consumer::records::ConsumerRecord>),
}

/// What to do once the records of an operation are written (Kafka's append futures).
#[derive(Debug)]
pub enum AfterAppend {
    /// The leader's SyncGroup: install the assignment (or fail the rebalance).
    LeaderSync {
        /// The generation synced.
        generation: i32,
        /// Every member's assignment.
        assignment: BTreeMap<String, Bytes>,
    },
    /// A known static member rejoined a stable group with a new member id.
    StaticJoin(StaticJoin),
    /// A new group's first record: on failure, answer the waiting join.
    NewGroup,
    /// Offsets committed: apply them.
    Commit(Vec<(String, i32, OffsetAndMetadata)>),
    /// Offsets expired: remove them.
    Expire(Vec<(String, i32)>),
}

/// See [`AfterAppend::StaticJoin`].
#[derive(Debug)]
pub struct StaticJoin {
    new_member_id: String,
    old_member_id: String,
    instance_id: String,
    old_protocols: Vec<Protocol>,
    old_rebalance_timeout_ms: i32,
    old_session_timeout_ms: i32,
    current_leader: Option<String>,
    supports_skip_assignment: bool,
}

/// The side effects of an operation.
#[derive(Debug, Default)]
pub struct Effects {
    /// Records to append (in one batch).
    pub records: Vec<Record>,
    /// Timers to start.
    pub timers: Vec<ScheduledTimer>,
    /// What to do once `records` are written.
    pub after_append: Option<AfterAppend>,
}

/// A JoinGroup, as the coordinator hands it to the group.
#[derive(Clone, Debug)]
pub struct JoinRequest {
    /// The member id ("" on the first join).
    pub member_id: String,
    /// `group.instance.id`.
    pub group_instance_id: Option<String>,
    /// Client id from the request header.
    pub client_id: String,
    /// `/<address>` of the client.
    pub client_host: String,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Rebalance timeout (the session timeout for v0).
    pub rebalance_timeout_ms: i32,
    /// Protocol type.
    pub protocol_type: String,
    /// Protocols.
    pub protocols: Vec<Protocol>,
    /// The request version.
    pub version: i16,
    /// The client's reason (v8+).
    pub reason: Option<String>,
}

/// A SyncGroup, as the coordinator hands it to the group.
#[derive(Clone, Debug)]
pub struct SyncRequest {
    /// Generation.
    pub generation_id: i32,
    /// Member id.
    pub member_id: String,
    /// `group.instance.id`.
    pub group_instance_id: Option<String>,
    /// Protocol type (v5+).
    pub protocol_type: Option<String>,
    /// Protocol name (v5+).
    pub protocol_name: Option<String>,
    /// The leader's assignments.
    pub assignments: Vec<(String, Bytes)>,
}

/// A SyncGroup answered now, or later.
#[derive(Debug)]
pub enum SyncOutcome {
    /// The answer.
    Done(SyncGroupResponse),
    /// Wait for the answer.
    Wait(oneshot::Receiver<SyncGroupResponse>),
}

/// The outcome for one member of a LeaveGroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeftMember {
    /// Member id as sent.
    pub member_id: String,
    /// `group.instance.id` as sent.
    pub group_instance_id: Option<String>,
    /// Its error.
    pub error_code: i16,
}

/// A member as DescribeGroups shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// `group.instance.id`.
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Its metadata for the group's protocol (empty unless Stable).
    pub metadata: Bytes,
    /// Its assignment (empty unless Stable).
    pub assignment: Bytes,
}

/// A group as DescribeGroups shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupDescription {
    /// State name.
    pub state: &'static str,
    /// Protocol type ("" if none).
    pub protocol_type: String,
    /// Protocol name ("" unless Stable).
    pub protocol: String,
    /// Members.
    pub members: Vec<MemberDescription>,
}

/// The start of an offset's retention period.
type BaseTimestamp = Box<dyn Fn(&OffsetAndMetadata) -> i64>;

static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn bs(text: &str) -> ByteString {
    ByteString::from(text)
}

/// One classic group.
#[derive(Debug)]
pub struct ClassicGroup {
    group_id: String,
    state: GroupState,
    previous_state: GroupState,
    state_timestamp: Option<i64>,
    generation_id: i32,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    leader_id: Option<String>,
    members: BTreeMap<String, Member>,
    static_members: HashMap<String, String>,
    pending_join: BTreeSet<String>,
    pending_sync: BTreeSet<String>,
    new_member_added: bool,
    /// Committed offsets by topic and partition.
    pub offsets: BTreeMap<String, BTreeMap<i32, OffsetAndMetadata>>,
    /// The consumer group (KIP-848) of this id, when it is one; the classic part is then
    /// empty and only holds the offsets.
    pub consumer: Option<Box<super::consumer::ConsumerGroup>>,
    timers: HashMap<TimerKey, TimerEntry>,
    effects: Effects,
}

impl ClassicGroup {
    /// A new, empty group.
    pub fn new(group_id: &str) -> ClassicGroup {
        ClassicGroup {
            group_id: group_id.to_string(),
            state: GroupState::Empty,
            previous_state: GroupState::Empty,
            state_timestamp: Some(now_ms()),
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending_join: BTreeSet::new(),
            pending_sync: BTreeSet::new(),
            new_member_added: false,
            offsets: BTreeMap::new(),
            consumer: None,
            timers: HashMap::new(),
            effects: Effects::default(),
        }
    }

    /// The group as a GroupMetadata record left it (Kafka's replay): Stable with its
    /// members, or Empty.
    pub fn from_record(group_id: &str, value: &GroupMetadataValue) -> ClassicGroup {
        let mut group = ClassicGroup::new(group_id);
        group.state = if value.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        group.generation_id = value.generation;
        group.protocol_type =
            Some(value.protocol_type.to_string()).filter(|t: &String| !t.is_empty());
        group.protocol_name = value.protocol.as_deref().map(str::to_string);
        group.leader_id = value.leader.as_deref().map(str::to_string);
        group.state_timestamp = Some(value.current_state_timestamp).filter(|t| *t != -1);
        for m in &value.members {
            let member = Member {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.as_deref().map(str::to_string),
                client_id: m.client_id.to_string(),
                client_host: m.client_host.to_string(),
                rebalance_timeout_ms: if m.rebalance_timeout == -1 {
                    m.session_timeout
                } else {
                    m.rebalance_timeout
                },
                session_timeout_ms: m.session_timeout,
                protocol_type: value.protocol_type.to_string(),
                protocols: vec![Protocol {
                    name: value.protocol.as_deref().unwrap_or("").to_string(),
                    metadata: m.subscription.clone(),
                }],
                assignment: m.assignment.clone(),
                awaiting_join: None,
                awaiting_sync: None,
                is_new: false,
            };
            if let Some(instance) = &member.group_instance_id {
                group
                    .static_members
                    .insert(instance.clone(), member.member_id.clone());
            }
            group.members.insert(member.member_id.clone(), member);
        }
        if group.leader_id.is_none() {
            group.leader_id = group.members.keys().next().cloned();
        }
        group
    }

    // ----- accessors -----

    /// The group id.
    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    /// The state.
    pub fn state(&self) -> GroupState {
        self.state
    }

    /// The generation.
    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }

    /// The protocol type, if any member ever joined.
    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    /// The protocol chosen for the current generation.
    pub fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }

    /// The leader's member id.
    pub fn leader(&self) -> Option<&str> {
        self.leader_id.as_deref()
    }

    /// The members.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// The member ids of members that are yet to complete their first join.
    pub fn pending_members(&self) -> impl Iterator<Item = &String> {
        self.pending_join.iter()
    }

    /// Whether the group has no members (Kafka's `isEmpty`: the Empty state).
    pub fn is_empty(&self) -> bool {
        self.state == GroupState::Empty && self.consumer.as_ref().is_none_or(|c| c.is_empty())
    }

    /// True for a group that only holds offsets committed without group management.
    pub fn is_simple(&self) -> bool {
        self.protocol_type.is_none() && self.members.is_empty() && self.generation_id == 0
    }

    /// The side effects accumulated since the last call.
    pub fn take_effects(&mut self) -> Effects {
        std::mem::take(&mut self.effects)
    }

    // ----- timers -----

    fn schedule(&mut self, key: TimerKey, delay_ms: i64, action: TimerAction) {
        let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        let entry = TimerEntry { token, abort: None };
        if let Some(old) = self.timers.insert(key.clone(), entry)
            && let Some(abort) = old.abort
        {
            abort.abort();
        }
        self.effects.timers.push(ScheduledTimer {
            key,
            token,
            delay_ms: delay_ms.max(0) as u64,
            action,
        });
    }

    fn cancel(&mut self, key: &TimerKey) {
        if let Some(old) = self.timers.remove(key)
            && let Some(abort) = old.abort
        {
            abort.abort();
        }
    }

    /// Cancels every timer (the group is going away).
    pub fn cancel_all_timers(&mut self) {
        for (_, entry) in self.timers.drain() {
            if let Some(abort) = entry.abort {
                abort.abort();
            }
        }
    }

    /// Records the task of a started timer (aborted at once if the timer was replaced).
    pub fn set_timer_task(&mut self, key: &TimerKey, token: u64, abort: AbortHandle) {
        match self.timers.get_mut(key) {
            Some(entry) if entry.token == token => entry.abort = Some(abort),
            _ => abort.abort(),
        }
    }

    /// Claims a fired timer: true (and the timer forgotten) if it is still current.
    pub fn claim_timer(&mut self, key: &TimerKey, token: u64) -> bool {
        match self.timers.get(key) {
            Some(entry) if entry.token == token => {
                self.timers.remove(key);
                true
            }
            _ => false,
        }
    }

    /// Runs a fired timer's action.
    pub fn on_timer(&mut self, config: &GroupConfig, action: TimerAction) {
        match action {
            TimerAction::ExpireHeartbeat(member_id) => self.expire_heartbeat(config, &member_id),
            TimerAction::CompleteJoin => self.complete_join(),
            TimerAction::InitialRebalance {
                delay_ms,
                remaining_ms,
            } => self.try_complete_initial_rebalance(config, delay_ms, remaining_ms),
            TimerAction::ExpireSync { generation } => self.expire_sync(config, generation),
        }
    }

    fn reschedule_heartbeat(&mut self, member_id: &str, timeout_ms: i32) {
        self.schedule(
            TimerKey::Heartbeat(member_id.to_string()),
            i64::from(timeout_ms),
            TimerAction::ExpireHeartbeat(member_id.to_string()),
        );
    }

    fn reschedule_member_heartbeat(&mut self, member_id: &str) {
        if let Some(timeout) = self.members.get(member_id).map(|m| m.session_timeout_ms) {
            self.reschedule_heartbeat(member_id, timeout);
        }
    }

    /// Starts the session timers of every member (after loading the group).
    pub fn schedule_loaded_heartbeats(&mut self, config: &GroupConfig) {
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            self.reschedule_member_heartbeat(&id);
        }
        if self.members.len() > config.max_size {
            self.prepare_rebalance(config, "freshly-loaded group is over capacity");
        }
    }

    // ----- membership bookkeeping (Kafka's ClassicGroup) -----

    fn transition(&mut self, to: GroupState) {
        debug_assert!(
            to.valid_previous().contains(&self.state),
            "group {} cannot go from {:?} to {to:?}",
            self.group_id,
            self.state
        );
        self.previous_state = self.state;
        self.state = to;
        self.state_timestamp = Some(now_ms());
    }

    /// Marks the group deleted.
    pub fn mark_dead(&mut self) {
        self.transition(GroupState::Dead);
        self.cancel_all_timers();
    }

    fn is_leader(&self, member_id: &str) -> bool {
        self.leader_id.as_deref() == Some(member_id)
    }

    fn num_awaiting_join(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.is_awaiting_join())
            .count()
    }

    fn has_all_members_joined(&self) -> bool {
        self.members.len() == self.num_awaiting_join() && self.pending_join.is_empty()
    }

    fn rebalance_timeout_ms(&self) -> i32 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0)
            .max(0)
    }

    fn can_rebalance(&self) -> bool {
        GroupState::PreparingRebalance
            .valid_previous()
            .contains(&self.state)
    }

    fn protocol_support(&self, name: &str) -> usize {
        self.members
            .values()
            .filter(|m| m.protocols.iter().any(|p| p.name == name))
            .count()
    }

    fn supports_protocols(&self, protocol_type: &str, protocols: &[Protocol]) -> bool {
        if self.state == GroupState::Empty {
            !protocol_type.is_empty() && !protocols.is_empty()
        } else {
            self.protocol_type.as_deref() == Some(protocol_type)
                && protocols
                    .iter()
                    .any(|p| self.protocol_support(&p.name) == self.members.len())
        }
    }

    /// Kafka's vote: every member votes for its most preferred protocol among those all
    /// members support; the most votes win, ties going to the leader's preference.
    fn select_protocol(&self) -> Option<String> {
        let candidates: BTreeSet<&str> = self
            .members
            .values()
            .flat_map(|m| m.protocols.iter().map(|p| p.name.as_str()))
            .filter(|name| self.protocol_support(name) == self.members.len())
            .collect();
        let mut votes: BTreeMap<String, usize> = BTreeMap::new();
        for member in self.members.values() {
            if let Some(choice) = member.vote(&candidates) {
                *votes.entry(choice).or_default() += 1;
            }
        }
        let best = votes.values().copied().max()?;
        let leader_order: Vec<&str> = self
            .leader_id
            .as_deref()
            .and_then(|id| self.members.get(id))
            .map(|m| m.protocols.iter().map(|p| p.name.as_str()).collect())
            .unwrap_or_default();
        let mut tied: Vec<&String> = votes
            .iter()
            .filter(|(_, count)| **count == best)
            .map(|(name, _)| name)
            .collect();
        tied.sort_by_key(|name| {
            leader_order
                .iter()
                .position(|l| *l == name.as_str())
                .unwrap_or(usize::MAX)
        });
        tied.first().map(|name| (*name).clone())
    }

    fn add(&mut self, member: Member) {
        if let Some(instance) = &member.group_instance_id {
            self.static_members
                .insert(instance.clone(), member.member_id.clone());
        }
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if self.leader_id.is_none() {
            self.leader_id = Some(member.member_id.clone());
        }
        self.pending_join.remove(&member.member_id);
        self.members.insert(member.member_id.clone(), member);
    }

    fn remove(&mut self, member_id: &str) {
        if let Some(removed) = self.members.remove(member_id)
            && let Some(instance) = &removed.group_instance_id
        {
            self.static_members.remove(instance);
        }
        if self.is_leader(member_id) {
            self.leader_id = self.members.keys().next().cloned();
        }
        self.pending_join.remove(member_id);
        self.pending_sync.remove(member_id);
    }

    fn validate_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), i16> {
        if let Some(instance) = instance_id {
            match self.static_members.get(instance) {
                None => return Err(UNKNOWN_MEMBER_ID),
                Some(existing) if existing != member_id => {
                    tracing::info!(
                        group = %self.group_id,
                        "member {member_id} with group instance id {instance} is fenced by \
                         existing member {existing}"
                    );
                    return Err(FENCED_INSTANCE_ID);
                }
                Some(_) => {}
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(UNKNOWN_MEMBER_ID);
        }
        Ok(())
    }

    fn current_members(&self) -> Vec<JoinGroupResponseMember> {
        let protocol = self.protocol_name.as_deref();
        self.members
            .values()
            .map(|m| JoinGroupResponseMember {
                member_id: bs(&m.member_id),
                group_instance_id: m.group_instance_id.as_deref().map(bs),
                metadata: m.metadata(protocol),
                ..Default::default()
            })
            .collect()
    }

    fn join_response(
        &self,
        member_id: &str,
        with_members: bool,
        leader: Option<&str>,
        skip_assignment: bool,
    ) -> JoinGroupResponse {
        JoinGroupResponse {
            error_code: NONE,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.as_deref().map(bs),
            protocol_name: self.protocol_name.as_deref().map(bs),
            leader: bs(leader.unwrap_or("")),
            skip_assignment,
            member_id: bs(member_id),
            members: if with_members {
                self.current_members()
            } else {
                Vec::new()
            },
            ..Default::default()
        }
    }

    fn complete_join_future(&mut self, member_id: &str, response: JoinGroupResponse) -> bool {
        match self
            .members
            .get_mut(member_id)
            .and_then(|m| m.awaiting_join.take())
        {
            Some(tx) => {
                let _ = tx.send(response);
                true
            }
            None => false,
        }
    }

    fn complete_sync_future(&mut self, member_id: &str, response: SyncGroupResponse) -> bool {
        match self
            .members
            .get_mut(member_id)
            .and_then(|m| m.awaiting_sync.take())
        {
            Some(tx) => {
                let _ = tx.send(response);
                true
            }
            None => false,
        }
    }

    /// The GroupMetadata record of the group with `assignment` (Kafka's
    /// `newGroupMetadataRecord`).
    fn metadata_record(&self, assignment: &BTreeMap<String, Bytes>) -> Record {
        let protocol = self.protocol_name.as_deref();
        let members = self
            .members
            .values()
            .map(|m| MemberMetadata {
                member_id: bs(&m.member_id),
                group_instance_id: m.group_instance_id.as_deref().map(bs),
                client_id: bs(&m.client_id),
                client_host: bs(&m.client_host),
                rebalance_timeout: m.rebalance_timeout_ms,
                session_timeout: m.session_timeout_ms,
                subscription: m.metadata(protocol),
                assignment: assignment.get(&m.member_id).cloned().unwrap_or_default(),
                ..Default::default()
            })
            .collect();
        Record::GroupMetadata(GroupMetadataValue {
            protocol_type: bs(self.protocol_type.as_deref().unwrap_or("")),
            generation: self.generation_id,
            protocol: protocol.map(bs),
            leader: self.leader_id.as_deref().map(bs),
            current_state_timestamp: self.state_timestamp.unwrap_or(-1),
            members,
            ..Default::default()
        })
    }

    /// The record of a newly created group (Kafka's `newEmptyGroupMetadataRecord`).
    pub fn new_group_record(&self) -> Record {
        Record::GroupMetadata(GroupMetadataValue {
            protocol_type: bs(""),
            generation: 0,
            protocol: None,
            leader: None,
            current_state_timestamp: self.state_timestamp.unwrap_or(-1),
            members: Vec::new(),
            ..Default::default()
        })
    }

    /// Writes the record of a newly created group, unless the operation writes one.
    pub fn write_new_group_record(&mut self) {
        if self.effects.records.is_empty() {
            let record = self.new_group_record();
            self.effects.records.push(record);
            self.effects.after_append = Some(AfterAppend::NewGroup);
        }
    }

    fn group_assignment(&self) -> BTreeMap<String, Bytes> {
        self.members
            .values()
            .map(|m| (m.member_id.clone(), m.assignment.clone()))
            .collect()
    }

    // ----- JoinGroup -----

    /// Whether the group takes one more joining member (Kafka's `acceptJoiningMember`).
    fn accept_joining_member(&self, config: &GroupConfig, member_id: &str) -> bool {
        match self.state {
            GroupState::Empty | GroupState::Dead => true,
            GroupState::PreparingRebalance => {
                self.members
                    .get(member_id)
                    .is_some_and(Member::is_awaiting_join)
                    || self.num_awaiting_join() < config.max_size
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.members.contains_key(member_id) || self.members.len() < config.max_size
            }
        }
    }

    /// JoinGroup. The response goes to `tx`, now or when the join phase completes.
    pub fn join(
        &mut self,
        config: &GroupConfig,
        request: JoinRequest,
        tx: oneshot::Sender<JoinGroupResponse>,
    ) {
        let member_id = request.member_id.clone();
        if !self.accept_joining_member(config, &member_id) {
            self.remove(&member_id);
            let _ = tx.send(join_error("", GROUP_MAX_SIZE_REACHED));
        } else if member_id.is_empty() {
            self.join_new_member(config, request, tx);
        } else {
            self.join_existing_member(config, request, tx);
        }
    }

    fn join_new_member(
        &mut self,
        config: &GroupConfig,
        request: JoinRequest,
        tx: oneshot::Sender<JoinGroupResponse>,
    ) {
        if self.state == GroupState::Dead {
            let _ = tx.send(join_error("", COORDINATOR_NOT_AVAILABLE));
        } else if !self.supports_protocols(&request.protocol_type, &request.protocols) {
            let _ = tx.send(join_error("", INCONSISTENT_GROUP_PROTOCOL));
        } else {
            let prefix = request
                .group_instance_id
                .as_deref()
                .unwrap_or(&request.client_id);
            let new_member_id = format!("{prefix}-{}", uuid::Uuid::new_v4());
            match request.group_instance_id.clone() {
                Some(instance) => match self.static_members.get(&instance).cloned() {
                    Some(existing) => {
                        tracing::info!(
                            group = %self.group_id,
                            "static member {instance} rejoins with an unknown member id in \
                             state {}; replacing member {existing} with {new_member_id}",
                            self.state.name()
                        );
                        self.update_static_member(config, request, existing, new_member_id, tx);
                    }
                    None => {
                        self.add_member_then_rebalance(config, request, new_member_id, tx);
                    }
                },
                None if request.version >= 4 => {
                    tracing::info!(
                        group = %self.group_id,
                        "dynamic member with unknown member id joins in state {}; asking it \
                         to rejoin as {new_member_id}",
                        self.state.name()
                    );
                    self.pending_join.insert(new_member_id.clone());
                    self.reschedule_heartbeat(&new_member_id, request.session_timeout_ms);
                    let _ = tx.send(join_error(&new_member_id, MEMBER_ID_REQUIRED));
                }
                None => self.add_member_then_rebalance(config, request, new_member_id, tx),
            }
        }
    }

    fn join_existing_member(
        &mut self,
        config: &GroupConfig,
        request: JoinRequest,
        tx: oneshot::Sender<JoinGroupResponse>,
    ) {
        let member_id = request.member_id.clone();
        if self.state == GroupState::Dead {
            let _ = tx.send(join_error(&member_id, COORDINATOR_NOT_AVAILABLE));
            return;
        }
        if !self.supports_protocols(&request.protocol_type, &request.protocols) {
            let _ = tx.send(join_error(&member_id, INCONSISTENT_GROUP_PROTOCOL));
            return;
        }
        if self.pending_join.contains(&member_id) {
            if request.group_instance_id.is_some() {
                // Kafka treats this as a broker bug (IllegalStateException).
                let _ = tx.send(join_error(&member_id, UNKNOWN_SERVER_ERROR_CODE));
                return;
            }
            tracing::info!(
                group = %self.group_id,
                "pending member {member_id} joins in state {}",
                self.state.name()
            );
            self.add_member_then_rebalance(config, request, member_id, tx);
            return;
        }
        if let Err(code) = self.validate_member(&member_id, request.group_instance_id.as_deref()) {
            let _ = tx.send(join_error(&member_id, code));
            return;
        }
        let reason = join_reason(&request);
        let matches = self.members[&member_id].matches(&request.protocols);
        match self.state {
            GroupState::PreparingRebalance => {
                self.update_member_then_rebalance(
                    config,
                    &request,
                    tx,
                    &format!("member {member_id} is joining during PreparingRebalance; {reason}"),
                );
            }
            GroupState::CompletingRebalance => {
                if matches {
                    // It may have missed the JoinGroup response: answer it again.
                    let with_members = self.is_leader(&member_id);
                    let response =
                        self.join_response(&member_id, with_members, self.leader(), false);
                    let _ = tx.send(response);
                } else {
                    self.update_member_then_rebalance(
                        config,
                        &request,
                        tx,
                        &format!(
                            "updating metadata for member {member_id} during \
                             CompletingRebalance; {reason}"
                        ),
                    );
                }
            }
            GroupState::Stable => {
                if self.is_leader(&member_id) {
                    self.update_member_then_rebalance(
                        config,
                        &request,
                        tx,
                        &format!("leader {member_id} re-joining group during Stable; {reason}"),
                    );
                } else if !matches {
                    self.update_member_then_rebalance(
                        config,
                        &request,
                        tx,
                        &format!(
                            "updating metadata for member {member_id} during Stable; {reason}"
                        ),
                    );
                } else {
                    let response = self.join_response(&member_id, false, self.leader(), false);
                    let _ = tx.send(response);
                }
            }
            GroupState::Empty | GroupState::Dead => {
                tracing::warn!(
                    group = %self.group_id,
                    "rejoining member {member_id} in unexpected state {}",
                    self.state.name()
                );
                let _ = tx.send(join_error(&member_id, UNKNOWN_MEMBER_ID));
            }
        }
    }

    fn update_member_then_rebalance(
        &mut self,
        config: &GroupConfig,
        request: &JoinRequest,
        tx: oneshot::Sender<JoinGroupResponse>,
        reason: &str,
    ) {
        if let Some(member) = self.members.get_mut(&request.member_id) {
            member.protocols = request.protocols.clone();
            member.rebalance_timeout_ms = request.rebalance_timeout_ms;
            member.session_timeout_ms = request.session_timeout_ms;
            member.awaiting_join = Some(tx);
        }
        self.maybe_prepare_rebalance_or_complete_join(config, reason);
    }

    fn add_member_then_rebalance(
        &mut self,
        config: &GroupConfig,
        request: JoinRequest,
        member_id: String,
        tx: oneshot::Sender<JoinGroupResponse>,
    ) {
        let reason = format!(
            "adding new member {member_id} with group instance id {:?}; {}",
            request.group_instance_id,
            join_reason(&request)
        );
        let member = Member {
            member_id: member_id.clone(),
            group_instance_id: request.group_instance_id,
            client_id: request.client_id,
            client_host: request.client_host,
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            session_timeout_ms: request.session_timeout_ms,
            protocol_type: request.protocol_type,
            protocols: request.protocols,
            assignment: Bytes::new(),
            awaiting_join: Some(tx),
            awaiting_sync: None,
            is_new: true,
        };
        if self.state == GroupState::PreparingRebalance && self.previous_state == GroupState::Empty
        {
            self.new_member_added = true;
        }
        self.add(member);
        // New members cannot heartbeat while their JoinGroup is parked: time the join out.
        self.reschedule_heartbeat(&member_id, config.new_member_join_timeout_ms);
        self.maybe_prepare_rebalance_or_complete_join(config, &reason);
    }

    fn update_static_member(
        &mut self,
        config: &GroupConfig,
        request: JoinRequest,
        old_member_id: String,
        new_member_id: String,
        tx: oneshot::Sender<JoinGroupResponse>,
    ) {
        let instance = request.group_instance_id.clone().unwrap_or_default();
        let current_leader = self.leader_id.clone();
        self.replace_static_member(&instance, &old_member_id, &new_member_id);
        self.reschedule_member_heartbeat(&new_member_id);
        let Some(member) = self.members.get_mut(&new_member_id) else {
            return;
        };
        let old_protocols = std::mem::replace(&mut member.protocols, request.protocols.clone());
        let old_rebalance_timeout_ms = std::mem::replace(
            &mut member.rebalance_timeout_ms,
            request.rebalance_timeout_ms,
        );
        let old_session_timeout_ms =
            std::mem::replace(&mut member.session_timeout_ms, request.session_timeout_ms);
        member.awaiting_join = Some(tx);
        let reason = join_reason(&request);
        match self.state {
            GroupState::Stable => {
                let selected = self.select_protocol();
                if self.protocol_name.is_some() && self.protocol_name == selected {
                    tracing::info!(
                        group = %self.group_id,
                        "static member {instance} joins during Stable without changing the \
                         protocol: no rebalance"
                    );
                    let record = self.metadata_record(&self.group_assignment());
                    self.effects.records.push(record);
                    self.effects.after_append = Some(AfterAppend::StaticJoin(StaticJoin {
                        new_member_id,
                        old_member_id,
                        instance_id: instance,
                        old_protocols,
                        old_rebalance_timeout_ms,
                        old_session_timeout_ms,
                        current_leader,
                        supports_skip_assignment: request.version >= 9,
                    }));
                } else {
                    self.maybe_prepare_rebalance_or_complete_join(
                        config,
                        &format!(
                            "static member {new_member_id} with instance id {instance} joined \
                             with a change of protocol; {reason}"
                        ),
                    );
                }
            }
            GroupState::CompletingRebalance => {
                self.prepare_rebalance(
                    config,
                    &format!(
                        "updating metadata for static member {new_member_id} with instance id \
                         {instance}; {reason}"
                    ),
                );
            }
            GroupState::PreparingRebalance => self.maybe_complete_join_phase(),
            GroupState::Empty | GroupState::Dead => {
                tracing::error!(
                    group = %self.group_id,
                    "static member {instance} rejoined a group in state {}",
                    self.state.name()
                );
            }
        }
    }

    fn replace_static_member(&mut self, instance: &str, old_member_id: &str, new_member_id: &str) {
        let Some(mut old) = self.members.remove(old_member_id) else {
            return;
        };
        if let Some(tx) = old.awaiting_join.take() {
            let _ = tx.send(JoinGroupResponse {
                error_code: FENCED_INSTANCE_ID,
                member_id: bs(old_member_id),
                protocol_name: None,
                protocol_type: None,
                leader: bs(""),
                ..Default::default()
            });
        }
        if let Some(tx) = old.awaiting_sync.take() {
            let _ = tx.send(SyncGroupResponse {
                error_code: FENCED_INSTANCE_ID,
                ..Default::default()
            });
        }
        let replacement = Member {
            member_id: new_member_id.to_string(),
            awaiting_join: None,
            awaiting_sync: None,
            is_new: false,
            ..old
        };
        self.members.insert(new_member_id.to_string(), replacement);
        if self.is_leader(old_member_id) {
            self.leader_id = Some(new_member_id.to_string());
        }
        self.static_members
            .insert(instance.to_string(), new_member_id.to_string());
    }

    fn maybe_prepare_rebalance_or_complete_join(&mut self, config: &GroupConfig, reason: &str) {
        if self.can_rebalance() {
            self.prepare_rebalance(config, reason);
        } else {
            self.maybe_complete_join_phase();
        }
    }

    fn maybe_complete_join_phase(&mut self) {
        if self.state == GroupState::PreparingRebalance
            && self.previous_state != GroupState::Empty
            && self.has_all_members_joined()
        {
            self.complete_join();
        }
    }

    fn prepare_rebalance(&mut self, config: &GroupConfig, reason: &str) {
        if self.state == GroupState::CompletingRebalance {
            self.reset_and_propagate_assignment_with_error(REBALANCE_IN_PROGRESS);
        }
        self.pending_sync.clear();
        self.cancel(&TimerKey::Sync);
        let initial = self.state == GroupState::Empty;
        if initial {
            let delay_ms = config.initial_rebalance_delay_ms;
            let remaining_ms = (self.rebalance_timeout_ms() - delay_ms).max(0);
            self.schedule(
                TimerKey::Join,
                i64::from(delay_ms),
                TimerAction::InitialRebalance {
                    delay_ms,
                    remaining_ms,
                },
            );
        }
        let old_state = self.state;
        self.transition(GroupState::PreparingRebalance);
        tracing::info!(
            group = %self.group_id,
            "preparing to rebalance group in state {} with old generation {} (reason: {reason})",
            old_state.name(),
            self.generation_id
        );
        if !initial {
            if self.has_all_members_joined() {
                self.complete_join();
            } else {
                let timeout = self.rebalance_timeout_ms();
                self.schedule(
                    TimerKey::Join,
                    i64::from(timeout),
                    TimerAction::CompleteJoin,
                );
            }
        }
    }

    fn try_complete_initial_rebalance(
        &mut self,
        config: &GroupConfig,
        delay_ms: i32,
        remaining_ms: i32,
    ) {
        if self.new_member_added && remaining_ms != 0 {
            self.new_member_added = false;
            let new_delay_ms = config.initial_rebalance_delay_ms.min(remaining_ms);
            let new_remaining_ms = (remaining_ms - delay_ms).max(0);
            self.schedule(
                TimerKey::Join,
                i64::from(new_delay_ms),
                TimerAction::InitialRebalance {
                    delay_ms: new_delay_ms,
                    remaining_ms: new_remaining_ms,
                },
            );
        } else {
            self.complete_join();
        }
    }

    /// Completes the join phase (Kafka's `completeClassicGroupJoin`).
    fn complete_join(&mut self) {
        self.cancel(&TimerKey::Join);
        if self.state != GroupState::PreparingRebalance {
            // Kafka only reaches this in PreparingRebalance; a stale timer is harmless.
            return;
        }
        let not_rejoined: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.is_awaiting_join() && m.group_instance_id.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for id in &not_rejoined {
            self.remove(id);
            self.cancel(&TimerKey::Heartbeat(id.clone()));
        }
        if !not_rejoined.is_empty() {
            tracing::info!(
                group = %self.group_id,
                "removed dynamic members who have not rejoined: {not_rejoined:?}"
            );
        }
        if !self.maybe_elect_new_joined_leader() && !self.members.is_empty() {
            tracing::error!(
                group = %self.group_id,
                "could not complete rebalance because no members rejoined"
            );
            let timeout = self.rebalance_timeout_ms();
            self.schedule(
                TimerKey::Join,
                i64::from(timeout),
                TimerAction::CompleteJoin,
            );
            return;
        }
        self.init_next_generation();
        if self.state == GroupState::Empty {
            tracing::info!(
                group = %self.group_id,
                "group with generation {} is now empty",
                self.generation_id
            );
            let record = self.metadata_record(&BTreeMap::new());
            self.effects.records.push(record);
            return;
        }
        tracing::info!(
            group = %self.group_id,
            "stabilized group generation {} with {} members (protocol {:?})",
            self.generation_id,
            self.members.len(),
            self.protocol_name
        );
        let ids: Vec<String> = self.members.keys().cloned().collect();
        let leader = self.leader_id.clone();
        for id in ids {
            let with_members = self.is_leader(&id);
            let response = self.join_response(&id, with_members, leader.as_deref(), false);
            self.complete_join_future(&id, response);
            self.reschedule_member_heartbeat(&id);
            if let Some(member) = self.members.get_mut(&id) {
                member.is_new = false;
            }
            self.pending_sync.insert(id);
        }
        let timeout = self.rebalance_timeout_ms();
        let generation = self.generation_id;
        self.schedule(
            TimerKey::Sync,
            i64::from(timeout),
            TimerAction::ExpireSync { generation },
        );
    }

    fn maybe_elect_new_joined_leader(&mut self) -> bool {
        let Some(leader) = self.leader_id.clone() else {
            return false;
        };
        if self
            .members
            .get(&leader)
            .is_some_and(Member::is_awaiting_join)
        {
            return true;
        }
        match self
            .members
            .values()
            .find(|m| m.is_awaiting_join())
            .map(|m| m.member_id.clone())
        {
            Some(new_leader) => {
                tracing::info!(
                    group = %self.group_id,
                    "leader {leader} failed to join before the rebalance timeout; member \
                     {new_leader} is the new leader"
                );
                self.leader_id = Some(new_leader);
                true
            }
            None => false,
        }
    }

    fn init_next_generation(&mut self) {
        self.generation_id = self.generation_id.wrapping_add(1);
        if self.members.is_empty() {
            self.protocol_name = None;
            self.transition(GroupState::Empty);
        } else {
            self.protocol_name = self.select_protocol();
            self.transition(GroupState::CompletingRebalance);
        }
        self.pending_sync.clear();
    }

    fn reset_and_propagate_assignment_with_error(&mut self, error: i16) {
        for member in self.members.values_mut() {
            member.assignment = Bytes::new();
        }
        self.propagate_assignment(error);
    }

    fn set_and_propagate_assignment(&mut self, assignment: &BTreeMap<String, Bytes>) {
        for member in self.members.values_mut() {
            member.assignment = assignment
                .get(&member.member_id)
                .cloned()
                .unwrap_or_default();
        }
        self.propagate_assignment(NONE);
    }

    fn propagate_assignment(&mut self, error: i16) {
        let (protocol_name, protocol_type) = if error == NONE {
            (self.protocol_name.clone(), self.protocol_type.clone())
        } else {
            (None, None)
        };
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let assignment = self.members[&id].assignment.clone();
            let response = SyncGroupResponse {
                error_code: error,
                protocol_type: protocol_type.as_deref().map(bs),
                protocol_name: protocol_name.as_deref().map(bs),
                assignment,
                ..Default::default()
            };
            if self.complete_sync_future(&id, response) {
                self.reschedule_member_heartbeat(&id);
            }
        }
    }

    // ----- timers' handlers -----

    fn expire_heartbeat(&mut self, config: &GroupConfig, member_id: &str) {
        if self.state == GroupState::Dead {
            return;
        }
        if self.pending_join.contains(member_id) {
            tracing::info!(
                group = %self.group_id,
                "pending member {member_id} removed after its session timeout"
            );
            self.remove(member_id);
            if self.state == GroupState::PreparingRebalance && self.has_all_members_joined() {
                self.complete_join();
            }
            return;
        }
        let Some(member) = self.members.get(member_id) else {
            return;
        };
        if member.has_satisfied_heartbeat() {
            return;
        }
        tracing::info!(group = %self.group_id, "member {member_id} has failed (session timeout); removing it");
        self.remove_member_and_update_group(
            config,
            member_id,
            &format!("removing member {member_id} on heartbeat expiration"),
        );
    }

    fn remove_member_and_update_group(
        &mut self,
        config: &GroupConfig,
        member_id: &str,
        reason: &str,
    ) {
        self.complete_join_future(member_id, join_error("", UNKNOWN_MEMBER_ID));
        self.remove(member_id);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance_or_complete_join(config, reason);
            }
            GroupState::PreparingRebalance if self.has_all_members_joined() => {
                self.complete_join();
            }
            _ => {}
        }
    }

    fn expire_sync(&mut self, config: &GroupConfig, generation: i32) {
        if generation != self.generation_id {
            return;
        }
        if matches!(
            self.state,
            GroupState::CompletingRebalance | GroupState::Stable
        ) && !self.pending_sync.is_empty()
        {
            let pending: Vec<String> = self.pending_sync.iter().cloned().collect();
            for id in &pending {
                self.remove(id);
                self.cancel(&TimerKey::Heartbeat(id.clone()));
            }
            self.prepare_rebalance(
                config,
                &format!("removing {pending:?} on pending sync request expiration"),
            );
        }
    }

    // ----- SyncGroup -----

    fn remove_pending_sync_member(&mut self, member_id: &str) {
        self.pending_sync.remove(member_id);
        let done = match self.state {
            GroupState::Dead | GroupState::Empty | GroupState::PreparingRebalance => true,
            GroupState::CompletingRebalance | GroupState::Stable => self.pending_sync.is_empty(),
        };
        if done {
            self.cancel(&TimerKey::Sync);
        }
    }

    /// SyncGroup (the group exists and is not Empty).
    pub fn sync(&mut self, request: SyncRequest) -> SyncOutcome {
        if self.state == GroupState::Dead {
            return SyncOutcome::Done(sync_error(COORDINATOR_NOT_AVAILABLE));
        }
        if let Err(code) =
            self.validate_member(&request.member_id, request.group_instance_id.as_deref())
        {
            return SyncOutcome::Done(sync_error(code));
        }
        if request.generation_id != self.generation_id {
            return SyncOutcome::Done(sync_error(ILLEGAL_GENERATION));
        }
        let inconsistent = |sent: &Option<String>, ours: &Option<String>| matches!((sent, ours), (Some(a), Some(b)) if a != b);
        if inconsistent(&request.protocol_type, &self.protocol_type)
            || inconsistent(&request.protocol_name, &self.protocol_name)
        {
            return SyncOutcome::Done(sync_error(INCONSISTENT_GROUP_PROTOCOL));
        }
        let member_id = request.member_id.clone();
        match self.state {
            GroupState::PreparingRebalance => SyncOutcome::Done(sync_error(REBALANCE_IN_PROGRESS)),
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(member) = self.members.get_mut(&member_id) {
                    member.awaiting_sync = Some(tx);
                }
                self.remove_pending_sync_member(&member_id);
                if self.is_leader(&member_id) {
                    tracing::info!(
                        group = %self.group_id,
                        "assignment received from leader {member_id} for generation {}; the \
                         group has {} members, {} of them static",
                        self.generation_id,
                        self.members.len(),
                        self.static_members.len()
                    );
                    let mut assignment: BTreeMap<String, Bytes> =
                        request.assignments.into_iter().collect();
                    let missing: Vec<String> = self
                        .members
                        .keys()
                        .filter(|id| !assignment.contains_key(*id))
                        .cloned()
                        .collect();
                    if !missing.is_empty() {
                        tracing::warn!(
                            group = %self.group_id,
                            "setting empty assignments for members {missing:?} of generation {}",
                            self.generation_id
                        );
                    }
                    for id in missing {
                        assignment.insert(id, Bytes::new());
                    }
                    let record = self.metadata_record(&assignment);
                    self.effects.records.push(record);
                    self.effects.after_append = Some(AfterAppend::LeaderSync {
                        generation: self.generation_id,
                        assignment,
                    });
                }
                SyncOutcome::Wait(rx)
            }
            GroupState::Stable => {
                self.remove_pending_sync_member(&member_id);
                let assignment = self.members[&member_id].assignment.clone();
                SyncOutcome::Done(SyncGroupResponse {
                    error_code: NONE,
                    protocol_type: self.protocol_type.as_deref().map(bs),
                    protocol_name: self.protocol_name.as_deref().map(bs),
                    assignment,
                    ..Default::default()
                })
            }
            GroupState::Empty | GroupState::Dead => {
                SyncOutcome::Done(sync_error(UNKNOWN_MEMBER_ID))
            }
        }
    }

    /// Runs what waited for the operation's records to be written (`result` is the append's
    /// outcome as a coordinator error code).
    pub fn after_append(
        &mut self,
        config: &GroupConfig,
        continuation: AfterAppend,
        result: Result<(), i16>,
    ) {
        match continuation {
            AfterAppend::LeaderSync {
                generation,
                assignment,
            } => {
                if self.state != GroupState::CompletingRebalance || self.generation_id != generation
                {
                    return;
                }
                match result {
                    Ok(()) => {
                        self.set_and_propagate_assignment(&assignment);
                        self.transition(GroupState::Stable);
                    }
                    Err(code) => {
                        let error = group_metadata_append_error(code);
                        self.reset_and_propagate_assignment_with_error(error);
                        self.maybe_prepare_rebalance_or_complete_join(
                            config,
                            &format!("error {error} when storing the group assignment"),
                        );
                    }
                }
            }
            AfterAppend::StaticJoin(join) => self.after_static_join(join, result),
            AfterAppend::NewGroup => {
                if let Err(code) = result {
                    let error = group_metadata_append_error(code);
                    tracing::warn!(group = %self.group_id, "failed to write the metadata of the new group: {error}");
                    let ids: Vec<String> = self.members.keys().cloned().collect();
                    for id in ids {
                        self.complete_join_future(&id, join_error(&id, error));
                    }
                }
            }
            AfterAppend::Commit(offsets) => {
                if result.is_ok() {
                    for (topic, partition, offset) in offsets {
                        self.offsets
                            .entry(topic)
                            .or_default()
                            .insert(partition, offset);
                    }
                }
            }
            AfterAppend::Expire(expired) => {
                if result.is_ok() {
                    for (topic, partition) in expired {
                        self.remove_offset(&topic, partition);
                    }
                }
            }
        }
    }

    fn after_static_join(&mut self, join: StaticJoin, result: Result<(), i16>) {
        match result {
            Err(code) => {
                tracing::warn!(
                    group = %self.group_id,
                    "failed to persist static member {} ({}): reverting to member {}",
                    join.new_member_id,
                    join.instance_id,
                    join.old_member_id
                );
                let tx = self
                    .members
                    .get_mut(&join.new_member_id)
                    .and_then(|m| m.awaiting_join.take());
                if let Some(member) = self.members.get_mut(&join.new_member_id) {
                    member.protocols = join.old_protocols;
                    member.rebalance_timeout_ms = join.old_rebalance_timeout_ms;
                    member.session_timeout_ms = join.old_session_timeout_ms;
                }
                self.replace_static_member(
                    &join.instance_id,
                    &join.new_member_id,
                    &join.old_member_id,
                );
                self.reschedule_member_heartbeat(&join.old_member_id);
                if let Some(tx) = tx {
                    let mut response =
                        self.join_response("", false, join.current_leader.as_deref(), false);
                    response.error_code = group_metadata_append_error(code);
                    let _ = tx.send(response);
                }
            }
            Ok(()) if join.supports_skip_assignment => {
                let is_leader = self.is_leader(&join.new_member_id);
                let response =
                    self.join_response(&join.new_member_id, is_leader, self.leader(), is_leader);
                self.complete_join_future(&join.new_member_id, response);
            }
            Ok(()) => {
                let response = self.join_response(
                    &join.new_member_id,
                    false,
                    join.current_leader.as_deref(),
                    false,
                );
                self.complete_join_future(&join.new_member_id, response);
            }
        }
    }

    // ----- Heartbeat -----

    /// Heartbeat.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> i16 {
        if self.state == GroupState::Dead {
            return COORDINATOR_NOT_AVAILABLE;
        }
        if let Err(code) = self.validate_member(member_id, instance_id) {
            return code;
        }
        if generation_id != self.generation_id {
            return ILLEGAL_GENERATION;
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => UNKNOWN_MEMBER_ID,
            GroupState::PreparingRebalance => {
                self.reschedule_member_heartbeat(member_id);
                REBALANCE_IN_PROGRESS
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.reschedule_member_heartbeat(member_id);
                NONE
            }
        }
    }

    // ----- LeaveGroup -----

    /// LeaveGroup: the group-level error, and each member's outcome.
    pub fn leave(
        &mut self,
        config: &GroupConfig,
        members: Vec<(String, Option<String>, Option<String>)>,
    ) -> (i16, Vec<LeftMember>) {
        if self.state == GroupState::Dead {
            return (COORDINATOR_NOT_AVAILABLE, Vec::new());
        }
        let mut responses = Vec::with_capacity(members.len());
        for (member_id, instance_id, reason) in members {
            let reason = reason.unwrap_or_else(|| "not provided".to_string());
            let error_code = if member_id.is_empty() {
                match instance_id
                    .as_deref()
                    .and_then(|i| self.static_members.get(i).cloned())
                {
                    Some(existing) => {
                        self.remove_current_member(&existing, &reason);
                        NONE
                    }
                    None => UNKNOWN_MEMBER_ID,
                }
            } else if self.pending_join.contains(&member_id) {
                self.remove(&member_id);
                self.cancel(&TimerKey::Heartbeat(member_id.clone()));
                tracing::info!(
                    group = %self.group_id,
                    "pending member {member_id} has left the group; client reason: {reason}"
                );
                NONE
            } else {
                match self.validate_member(&member_id, instance_id.as_deref()) {
                    Ok(()) => {
                        self.remove_current_member(&member_id, &reason);
                        NONE
                    }
                    Err(code) => code,
                }
            };
            responses.push(LeftMember {
                member_id,
                group_instance_id: instance_id,
                error_code,
            });
        }
        let left: Vec<&str> = responses
            .iter()
            .filter(|r| r.error_code == NONE)
            .map(|r| r.member_id.as_str())
            .collect();
        if !left.is_empty() {
            let reason = format!(
                "explicit `LeaveGroup` request for ({}) members",
                left.join(", ")
            );
            match self.state {
                GroupState::Stable | GroupState::CompletingRebalance => {
                    self.maybe_prepare_rebalance_or_complete_join(config, &reason);
                }
                GroupState::PreparingRebalance => self.maybe_complete_join_phase(),
                _ => {}
            }
        }
        (NONE, responses)
    }

    fn remove_current_member(&mut self, member_id: &str, reason: &str) {
        self.cancel(&TimerKey::Heartbeat(member_id.to_string()));
        tracing::info!(
            group = %self.group_id,
            "member {member_id} has left the group through an explicit LeaveGroup; client \
             reason: {reason}"
        );
        self.complete_join_future(member_id, join_error("", UNKNOWN_MEMBER_ID));
        self.remove(member_id);
    }

    // ----- offsets -----

    /// Kafka's `validateOffsetCommit` for a non-transactional commit.
    pub fn validate_offset_commit(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), i16> {
        if self.state == GroupState::Dead {
            return Err(COORDINATOR_NOT_AVAILABLE);
        }
        if generation_id < 0 && self.state == GroupState::Empty {
            return Ok(());
        }
        if generation_id >= 0 || !member_id.is_empty() || instance_id.is_some() {
            self.validate_member(member_id, instance_id)?;
            if generation_id != self.generation_id {
                return Err(ILLEGAL_GENERATION);
            }
        } else if self.state != GroupState::Empty {
            return Err(UNKNOWN_MEMBER_ID);
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(REBALANCE_IN_PROGRESS);
        }
        Ok(())
    }

    /// An offset commit keeps the committing member's session alive (Stable and
    /// PreparingRebalance).
    pub fn on_offset_commit(&mut self, member_id: &str) {
        if matches!(
            self.state,
            GroupState::Stable | GroupState::PreparingRebalance
        ) {
            self.reschedule_member_heartbeat(member_id);
        }
    }

    /// Queues offset records and their application once written.
    pub fn commit(&mut self, offsets: Vec<(String, i32, OffsetAndMetadata)>) {
        if offsets.is_empty() {
            return;
        }
        for (topic, partition, value) in &offsets {
            self.effects.records.push(Record::Offset {
                topic: topic.clone(),
                partition: *partition,
                value: Some(value.clone()),
            });
        }
        self.effects.after_append = Some(AfterAppend::Commit(offsets));
    }

    /// The committed offset of a partition.
    pub fn offset(&self, topic: &str, partition: i32) -> Option<&OffsetAndMetadata> {
        self.offsets.get(topic)?.get(&partition)
    }

    /// Removes a committed offset.
    pub fn remove_offset(&mut self, topic: &str, partition: i32) {
        if let Some(partitions) = self.offsets.get_mut(topic) {
            partitions.remove(&partition);
            if partitions.is_empty() {
                self.offsets.remove(topic);
            }
        }
    }

    /// The topics the members subscribe to, when the group uses the consumer protocol and
    /// every subscription parses (Kafka's `computeSubscribedTopics`).
    fn subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if self.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) {
            return None;
        }
        if self.members.is_empty() {
            return Some(BTreeSet::new());
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for member in self.members.values() {
            let metadata = member.metadata(Some(protocol));
            if metadata.len() < 2 {
                return None;
            }
            // An int16 version, then the subscription; version 0 is the prefix of every
            // version.
            let subscription =
                ConsumerProtocolSubscription::decode(&mut metadata.slice(2..), 0).ok()?;
            topics.extend(subscription.topics.iter().map(|t| t.to_string()));
        }
        Some(topics)
    }

    /// Queues tombstones for the offsets that expired (Kafka's `cleanupExpiredOffsets`);
    /// true when the group has no offsets left once they are gone.
    pub fn expire_offsets(&mut self, now_ms: i64, retention_ms: i64) -> bool {
        let uses_consumer = self.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE);
        let subscribed = self.subscribed_topics();
        // The base timestamp of the retention period, or no expiration at all.
        let base: Option<BaseTimestamp> = match &self.protocol_type {
            Some(_) if self.state == GroupState::Empty => {
                let state_ts = self.state_timestamp;
                Some(Box::new(move |o: &OffsetAndMetadata| {
                    state_ts.unwrap_or(o.commit_timestamp_ms)
                }))
            }
            Some(_)
                if uses_consumer && subscribed.is_some() && self.state == GroupState::Stable =>
            {
                Some(Box::new(|o: &OffsetAndMetadata| o.commit_timestamp_ms))
            }
            Some(_) => None,
            None => Some(Box::new(|o: &OffsetAndMetadata| o.commit_timestamp_ms)),
        };
        // A consumer group (KIP-848): the offsets of topics it subscribes to stay, the
        // others expire from their commit time (Kafka's `ConsumerGroup`
        // `offsetExpirationCondition` and `isSubscribedToTopic`).
        let (uses_consumer, subscribed, base) = match self.consumer.as_deref() {
            Some(consumer) => (
                true,
                Some(consumer.subscribed_topics()),
                Some(Box::new(|o: &OffsetAndMetadata| o.commit_timestamp_ms) as BaseTimestamp),
            ),
            None => (uses_consumer, subscribed, base),
        };
        let Some(base) = base else {
            return self.offsets.is_empty();
        };
        let mut expired = Vec::new();
        let mut all_expired = true;
        for (topic, partitions) in &self.offsets {
            let is_subscribed = subscribed
                .as_ref()
                .map_or(uses_consumer, |s| s.contains(topic));
            if is_subscribed {
                all_expired = false;
                continue;
            }
            for (partition, offset) in partitions {
                let is_expired = match offset.expire_timestamp_ms {
                    Some(expire) => now_ms >= expire,
                    None => now_ms - base(offset) >= retention_ms,
                };
                if is_expired {
                    expired.push((topic.clone(), *partition));
                } else {
                    all_expired = false;
                }
            }
        }
        if !expired.is_empty() {
            tracing::info!(
                group = %self.group_id,
                "expiring {} committed offsets",
                expired.len()
            );
            self.queue_offset_tombstones(expired);
        }
        all_expired
    }

    /// Queues a tombstone for each of `partitions`' committed offsets and their removal
    /// from the group once the tombstones are written; false if there are none.
    fn queue_offset_tombstones(&mut self, partitions: Vec<(String, i32)>) -> bool {
        if partitions.is_empty() {
            return false;
        }
        for (topic, partition) in &partitions {
            self.effects.records.push(Record::Offset {
                topic: topic.clone(),
                partition: *partition,
                value: None,
            });
        }
        self.effects.after_append = Some(AfterAppend::Expire(partitions));
        true
    }

    /// Queues tombstones for the offsets of deleted topics (Kafka's `onTopicsDeleted`);
    /// false if the group has none.
    pub fn delete_topic_offsets(&mut self, topics: &[String]) -> bool {
        let deleted: Vec<(String, i32)> = topics
            .iter()
            .filter_map(|topic| Some((topic, self.offsets.get(topic)?)))
            .flat_map(|(topic, partitions)| partitions.keys().map(|p| (topic.clone(), *p)))
            .collect();
        self.queue_offset_tombstones(deleted)
    }

    /// Kafka's `ClassicGroup.validateOffsetDelete`: a dead group is `GROUP_ID_NOT_FOUND`; a
    /// group with members that does not use the consumer protocol is `NON_EMPTY_GROUP`
    /// (its coordinator cannot tell which topics it uses).
    pub fn validate_offset_delete(&self) -> Result<(), i16> {
        match self.state {
            GroupState::Dead => Err(GROUP_ID_NOT_FOUND),
            GroupState::Stable
            | GroupState::PreparingRebalance
            | GroupState::CompletingRebalance
                if self.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) =>
            {
                Err(NON_EMPTY_GROUP)
            }
            _ => Ok(()),
        }
    }

    /// Kafka's `ClassicGroup.isSubscribedToTopic`: whether a member's consumer-protocol
    /// subscription names `topic`. When the subscriptions are not known (not parsed, or no
    /// protocol chosen yet) a consumer-protocol group counts as subscribed to everything,
    /// any other group to nothing.
    ///
    /// Kafka caches the subscriptions when a generation starts; this reads the members'
    /// current metadata for the selected protocol, which is the same between rebalances.
    pub fn is_subscribed_to_topic(&self, topic: &str) -> bool {
        if let Some(consumer) = self.consumer.as_deref() {
            return consumer.is_subscribed_to_topic(topic);
        }
        match self.subscribed_topics() {
            Some(topics) => topics.contains(topic),
            None => self.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE),
        }
    }

    /// Queues tombstones for the committed offsets among `partitions` (the others have
    /// nothing to delete) and their removal once written; false if there are none.
    pub fn delete_offsets(&mut self, partitions: &[(String, i32)]) -> bool {
        let deleted: Vec<(String, i32)> = partitions
            .iter()
            .filter(|(topic, partition)| self.offset(topic, *partition).is_some())
            .cloned()
            .collect();
        self.queue_offset_tombstones(deleted)
    }

    /// Kafka's `validateDeleteGroup`.
    pub fn validate_delete(&self) -> Result<(), i16> {
        if self.consumer.as_ref().is_some_and(|c| !c.is_empty()) {
            return Err(NON_EMPTY_GROUP);
        }
        match self.state {
            GroupState::Dead => Err(GROUP_ID_NOT_FOUND),
            GroupState::Stable
            | GroupState::PreparingRebalance
            | GroupState::CompletingRebalance => Err(NON_EMPTY_GROUP),
            GroupState::Empty => Ok(()),
        }
    }

    /// The tombstones that delete the group: every offset, then the group.
    pub fn deletion_records(&self) -> Vec<Record> {
        let mut records: Vec<Record> = self
            .offsets
            .iter()
            .flat_map(|(topic, partitions)| {
                partitions.keys().map(move |partition| Record::Offset {
                    topic: topic.clone(),
                    partition: *partition,
                    value: None,
                })
            })
            .collect();
        match &self.consumer {
            Some(_) => records.extend(
                super::consumer::records::group_tombstones(&self.group_id)
                    .into_iter()
                    .map(|r| Record::Consumer(Box::new(r))),
            ),
            None => records.push(Record::GroupTombstone),
        }
        records
    }

    /// DescribeGroups' view of the group.
    pub fn describe(&self) -> GroupDescription {
        let stable = self.state == GroupState::Stable;
        let protocol = self.protocol_name.as_deref();
        GroupDescription {
            state: self.state.name(),
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol: if stable {
                protocol.unwrap_or("").to_string()
            } else {
                String::new()
            },
            members: self
                .members
                .values()
                .map(|m| MemberDescription {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if stable {
                        m.metadata(protocol)
                    } else {
                        Bytes::new()
                    },
                    assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
        }
    }
}

const UNKNOWN_SERVER_ERROR_CODE: i16 = gregor_protocol::error_code::UNKNOWN_SERVER_ERROR;

/// A JoinGroup error response.
pub fn join_error(member_id: &str, code: i16) -> JoinGroupResponse {
    JoinGroupResponse {
        error_code: code,
        generation_id: -1,
        protocol_type: None,
        protocol_name: None,
        leader: bs(""),
        member_id: bs(member_id),
        ..Default::default()
    }
}

/// A SyncGroup error response.
pub fn sync_error(code: i16) -> SyncGroupResponse {
    SyncGroupResponse {
        error_code: code,
        ..Default::default()
    }
}

fn join_reason(request: &JoinRequest) -> String {
    format!(
        "client reason: {}",
        request.reason.as_deref().unwrap_or("not provided")
    )
}

/// Kafka's `appendGroupMetadataErrorToResponseError`: what a failed write of group
/// metadata tells the members.
pub fn group_metadata_append_error(code: i16) -> i16 {
    use crate::storage::{MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE};
    use gregor_protocol::error_code::*;
    match code {
        UNKNOWN_TOPIC_OR_PARTITION
        | REQUEST_TIMED_OUT
        | NOT_ENOUGH_REPLICAS
        | NOT_ENOUGH_REPLICAS_AFTER_APPEND => COORDINATOR_NOT_AVAILABLE,
        NOT_LEADER_OR_FOLLOWER | KAFKA_STORAGE_ERROR => NOT_COORDINATOR,
        MESSAGE_TOO_LARGE | RECORD_LIST_TOO_LARGE => UNKNOWN_SERVER_ERROR,
        other => other,
    }
}

/// What a failed write of offsets tells the committer (Kafka's mapping in
/// `GroupCoordinatorService.commitOffsets`).
pub fn offset_commit_append_error(code: i16) -> i16 {
    use crate::storage::{MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE};
    use gregor_protocol::error_code::*;
    match code {
        UNKNOWN_TOPIC_OR_PARTITION
        | REQUEST_TIMED_OUT
        | NOT_ENOUGH_REPLICAS
        | NOT_ENOUGH_REPLICAS_AFTER_APPEND => COORDINATOR_NOT_AVAILABLE,
        NOT_LEADER_OR_FOLLOWER | KAFKA_STORAGE_ERROR => NOT_COORDINATOR,
        MESSAGE_TOO_LARGE | RECORD_LIST_TOO_LARGE => INVALID_COMMIT_OFFSET_SIZE,
        other => other,
    }
}
