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
//!
//! By concern: `rebalance` (JoinGroup and the rebalance), `membership` (SyncGroup,
//! heartbeats, LeaveGroup, expiry, DescribeGroups), `offsets` (commits, retention,
//! deletion); the group's fields, timers and shared helpers stay here.

mod convert;
mod membership;
mod offsets;
mod rebalance;

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
