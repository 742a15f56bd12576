//! Consumer groups of the next-generation protocol (KIP-848): Kafka's `ConsumerGroup` and
//! the heartbeat of its `GroupMetadataManager`, without I/O.
//!
//! * The group epoch bumps whenever the group changes in a way that needs a new
//!   assignment: a member joins or leaves, a subscription changes, or the subscribed
//!   topics' metadata (topic ids, partition counts) changes; that last is compared at
//!   every heartbeat against the metadata image.
//! * The target assignment is computed by the broker ([`assignor`]) in the heartbeat that
//!   first sees a group epoch above the assignment epoch.
//! * Each member reconciles towards its target one heartbeat at a time ([`reconcile`]):
//!   revoke first, then receive what others released.
//! * Every change is a record of `__consumer_offsets` ([`records`]); an operation works on a
//!   copy of the group which replaces the group once its records are written, as Kafka's
//!   coordinator applies records only when they are committed.
//!
//! * Static members (`group.instance.id`): a leave with epoch -2 keeps the member and its
//!   partitions until it comes back under a new member id (which takes them over) or its
//!   session ends.
//!
//! * Regular-expression subscriptions (`subscribed_topic_regex`, whole names, internal
//!   topics never matched): resolved against the image at each heartbeat, the resolution
//!   kept as ConsumerGroupRegularExpression records; a topic created later is picked up.
//!
//! * The online migration between classic and consumer groups ([`migration`]): a
//!   ConsumerGroupHeartbeat upgrades a classic group, the classic members stay as members
//!   using the classic protocol, and the group goes back to classic when the last
//!   consumer-protocol member leaves (`group.consumer.migration.policy`).

pub mod api;
pub mod assignor;
pub mod classic_api;
pub mod metadata_hash;
pub mod migration;
pub mod reconcile;
pub mod records;

use std::collections::{BTreeMap, BTreeSet};

use gregor_protocol::Uuid;
use gregor_protocol::error_code::*;

use self::assignor::{Assignment, MemberSpec};
use self::reconcile::{MemberAssignment, MemberState};
use self::records::ConsumerRecord;

/// The group type of consumer groups in ListGroups and DescribeGroups.
pub const CONSUMER_GROUP_TYPE: &str = "consumer";
/// The epoch a member sends to leave.
pub const LEAVE_GROUP_MEMBER_EPOCH: i32 = -1;
/// The epoch a static member sends to leave for a while.
pub const LEAVE_GROUP_STATIC_MEMBER_EPOCH: i32 = -2;
/// The first ConsumerGroupHeartbeat version where the consumer chooses its member id
/// (KIP-1082).
pub const CONSUMER_GENERATED_MEMBER_ID_VERSION: i16 = 1;

/// The coordinator's consumer-group settings.
#[derive(Clone, Debug)]
pub struct ConsumerSettings {
    /// `group.consumer.session.timeout.ms`.
    pub session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms`.
    pub heartbeat_interval_ms: i32,
    /// `group.consumer.max.size`.
    pub max_size: usize,
    /// `group.consumer.assignors`: names, the first the default.
    pub assignors: Vec<String>,
    /// `group.consumer.migration.policy`.
    pub migration: migration::MigrationPolicy,
    /// `group.max.size`: the most members a classic group may have (a downgrade's bound).
    pub classic_max_size: usize,
}

/// An error of an operation: Kafka's code and message.
pub type OpError = (i16, String);

/// One member.
#[derive(Clone, Debug, PartialEq)]
pub struct ConsumerMember {
    /// Member id.
    pub member_id: String,
    /// `group.instance.id`.
    pub instance_id: Option<String>,
    /// Rack.
    pub rack_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Subscribed topic names (sorted, as Kafka keeps them).
    pub subscribed_topic_names: Vec<String>,
    /// Subscribed regular expression.
    pub subscribed_topic_regex: Option<String>,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// The assignor the member asks for.
    pub server_assignor: Option<String>,
    /// Epochs, state and partitions.
    pub assignment: MemberAssignment,
    /// For a member using the classic protocol: its session timeout and protocols.
    pub classic: Option<migration::ClassicMeta>,
}

impl ConsumerMember {
    /// A member that has not joined yet.
    pub fn new(member_id: &str) -> ConsumerMember {
        ConsumerMember {
            member_id: member_id.to_string(),
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            subscribed_topic_names: Vec::new(),
            subscribed_topic_regex: None,
            rebalance_timeout_ms: -1,
            server_assignor: None,
            assignment: MemberAssignment::new(),
            classic: None,
        }
    }

    fn metadata_equals(&self, other: &ConsumerMember) -> bool {
        self.instance_id == other.instance_id
            && self.rack_id == other.rack_id
            && self.client_id == other.client_id
            && self.client_host == other.client_host
            && self.subscribed_topic_names == other.subscribed_topic_names
            && self.subscribed_topic_regex == other.subscribed_topic_regex
            && self.rebalance_timeout_ms == other.rebalance_timeout_ms
            && self.server_assignor == other.server_assignor
            && self.classic == other.classic
    }
}

/// The metadata of a subscribed topic that the assignment depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TopicMeta {
    /// Topic id.
    pub id: Uuid,
    /// Partition count.
    pub partitions: i32,
    /// Kafka's hash of the topic's id, name, partitions and racks (KIP-1101,
    /// [`metadata_hash::topic_hash`]).
    pub hash: i64,
}

impl TopicMeta {
    /// The metadata of topic `name` whose replicas' brokers have no racks.
    pub fn without_racks(name: &str, id: Uuid, partitions: i32) -> TopicMeta {
        let hash = metadata_hash::hash_topic(name, id, partitions, |_| Vec::new());
        TopicMeta {
            id,
            partitions,
            hash,
        }
    }
}

/// What a group sees of the cluster's topics: their metadata and, for regular-expression
/// subscriptions, their names and the image offset they come from.
pub trait TopicSource {
    /// The metadata of a topic, `None` if it does not exist.
    fn meta(&self, name: &str) -> Option<TopicMeta>;
    /// Every topic name (for regular expressions).
    fn names(&self) -> Vec<String> {
        Vec::new()
    }
    /// The metadata image offset (the version of a resolved regular expression).
    fn version(&self) -> i64 {
        -1
    }
}

impl<F: Fn(&str) -> Option<TopicMeta>> TopicSource for F {
    fn meta(&self, name: &str) -> Option<TopicMeta> {
        self(name)
    }
}

/// Kafka's internal topics, never matched by a regular expression.
const INTERNAL_TOPICS: &[&str] = &[
    "__consumer_offsets",
    "__transaction_state",
    "__share_group_state",
];

/// A subscription pattern (RE2/J syntax, which Rust's `regex` shares for what matters
/// here), matching whole topic names as Java's `Matcher.matches`.
pub fn compile_regex(regex: &str) -> Result<regex::Regex, OpError> {
    regex::Regex::new(&format!("^(?:{regex})$")).map_err(|e| {
        (
            INVALID_REGULAR_EXPRESSION,
            format!("SubscribedTopicRegex `{regex}` is not a valid regular expression: {e}."),
        )
    })
}

/// One consumer group.
#[derive(Clone, Debug, Default)]
pub struct ConsumerGroup {
    /// Group id.
    pub group_id: String,
    /// Group epoch.
    pub epoch: i32,
    /// Epoch of the target assignment.
    pub assignment_epoch: i32,
    /// Hash of the subscribed topics' metadata when the epoch last changed for it.
    pub metadata_hash: i64,
    /// Members by id.
    pub members: BTreeMap<String, ConsumerMember>,
    /// Target assignment by member id.
    pub target: BTreeMap<String, Assignment>,
    /// Resolved regular expressions: the topics each matches.
    pub regexes: BTreeMap<String, BTreeSet<String>>,
    /// Running session and revocation timers (not part of the state proper).
    pub timers: api::ConsumerTimers,
}

/// Kafka's `ConsumerGroupState` names.
pub fn state_name(group: &ConsumerGroup) -> &'static str {
    if group.members.is_empty() {
        "Empty"
    } else if group.epoch > group.assignment_epoch {
        "Assigning"
    } else if group
        .members
        .values()
        .any(|m| !m.assignment.is_reconciled_to(group.assignment_epoch))
    {
        "Reconciling"
    } else {
        "Stable"
    }
}

/// The group's metadata hash over its subscribed topics (KIP-1101): Kafka's
/// `computeGroupHash` of each topic's `computeTopicHash`, so a group written by Kafka reads
/// back without an epoch bump.
pub fn metadata_hash(topics: &BTreeMap<String, TopicMeta>) -> i64 {
    metadata_hash::group_hash(topics.iter().map(|(name, meta)| (name.as_str(), meta.hash)))
}

/// A heartbeat as the handler passes it on.
#[derive(Clone, Debug, Default)]
pub struct HeartbeatRequest {
    /// Member id.
    pub member_id: String,
    /// Member epoch.
    pub member_epoch: i32,
    /// Instance id, or null.
    pub instance_id: Option<String>,
    /// Rack, or null.
    pub rack_id: Option<String>,
    /// Rebalance timeout, -1 unchanged.
    pub rebalance_timeout_ms: i32,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Subscribed topics, null unchanged.
    pub subscribed_topic_names: Option<Vec<String>>,
    /// Subscribed regular expression, null unchanged ("" for none).
    pub subscribed_topic_regex: Option<String>,
    /// Assignor, null unchanged.
    pub server_assignor: Option<String>,
    /// Owned partitions by topic id, null unchanged.
    pub owned: Option<Assignment>,
    /// A classic member's JoinGroup: its session timeout and protocols.
    pub classic: Option<migration::ClassicMeta>,
}

/// What a heartbeat answers.
#[derive(Clone, Debug, PartialEq)]
pub struct HeartbeatOutcome {
    /// Member id.
    pub member_id: String,
    /// Member epoch.
    pub member_epoch: i32,
    /// The assignment, when it is sent.
    pub assignment: Option<Assignment>,
}

/// Timer changes an operation asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum TimerChange {
    /// (Re)start a member's session timeout.
    Session(String),
    /// Start the revocation deadline of a member at an epoch.
    Rebalance(String, i32, i32),
    /// Cancel a member's revocation deadline.
    CancelRebalance(String),
    /// Cancel every timer of a member.
    CancelAll(String),
}

/// The result of an operation on a copy of the group.
#[derive(Debug, Default)]
pub struct Changes {
    /// Records to write.
    pub records: Vec<ConsumerRecord>,
    /// Timers to change once written.
    pub timers: Vec<TimerChange>,
}

impl ConsumerGroup {
    /// A new, empty group.
    pub fn new(group_id: &str) -> ConsumerGroup {
        ConsumerGroup {
            group_id: group_id.to_string(),
            ..Default::default()
        }
    }

    /// Whether the group has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The subscribed topic names of all members.
    pub fn subscribed_topics(&self) -> BTreeSet<String> {
        let mut topics: BTreeSet<String> = self
            .members
            .values()
            .flat_map(|m| m.subscribed_topic_names.iter().cloned())
            .collect();
        for m in self.members.values() {
            if let Some(matched) = m
                .subscribed_topic_regex
                .as_ref()
                .and_then(|r| self.regexes.get(r))
            {
                topics.extend(matched.iter().cloned());
            }
        }
        topics
    }

    /// The topics one member subscribes to: its names and what its regex matches.
    fn member_topics(&self, m: &ConsumerMember) -> BTreeSet<String> {
        let mut topics: BTreeSet<String> = m.subscribed_topic_names.iter().cloned().collect();
        if let Some(matched) = m
            .subscribed_topic_regex
            .as_ref()
            .and_then(|r| self.regexes.get(r))
        {
            topics.extend(matched.iter().cloned());
        }
        topics
    }

    /// Resolves the members' regular expressions against the topics (Kafka resolves them
    /// in the background and writes ConsumerGroupRegularExpression records; this resolves
    /// them at each heartbeat): a record for each new or changed resolution, a tombstone
    /// for each no member uses any more. The group epoch follows from the topics' hash.
    fn refresh_regexes(&mut self, topics: &dyn TopicSource, now_ms: i64, changes: &mut Changes) {
        let used: BTreeSet<String> = self
            .members
            .values()
            .filter_map(|m| m.subscribed_topic_regex.clone())
            .collect();
        let gone: Vec<String> = self
            .regexes
            .keys()
            .filter(|r| !used.contains(*r))
            .cloned()
            .collect();
        for regex in gone {
            self.regexes.remove(&regex);
            changes
                .records
                .push(records::regex_tombstone(&self.group_id, &regex));
        }
        if used.is_empty() {
            return;
        }
        let names = topics.names();
        for regex in used {
            let Ok(pattern) = compile_regex(&regex) else {
                continue;
            };
            let matched: BTreeSet<String> = names
                .iter()
                .filter(|t| !INTERNAL_TOPICS.contains(&t.as_str()) && pattern.is_match(t))
                .cloned()
                .collect();
            if self.regexes.get(&regex) != Some(&matched) {
                changes.records.push(records::regex(
                    &self.group_id,
                    &regex,
                    &matched,
                    topics.version(),
                    now_ms,
                ));
                self.regexes.insert(regex, matched);
            }
        }
    }

    fn subscription_metadata(&self, lookup: &dyn TopicSource) -> BTreeMap<String, TopicMeta> {
        self.subscribed_topics()
            .into_iter()
            .filter_map(|t| lookup.meta(&t).map(|m| (t, m)))
            .collect()
    }

    /// The epoch of the member holding (or revoking) a partition, -1 when none.
    fn partition_epoch(&self, topic: &Uuid, partition: i32) -> i32 {
        for m in self.members.values() {
            let a = &m.assignment;
            if a.assigned
                .get(topic)
                .is_some_and(|p| p.contains(&partition))
                || a.pending_revocation
                    .get(topic)
                    .is_some_and(|p| p.contains(&partition))
            {
                return a.epoch;
            }
        }
        -1
    }

    /// The assignor the group uses: the one most members ask for, else the default.
    pub fn assignor(&self, settings: &ConsumerSettings) -> String {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = &m.server_assignor {
                *counts.entry(a.as_str()).or_default() += 1;
            }
        }
        counts
            .iter()
            .max_by_key(|(name, n)| (**n, std::cmp::Reverse(**name)))
            .map(|(name, _)| name.to_string())
            .or_else(|| settings.assignors.first().cloned())
            .unwrap_or_else(|| assignor::UNIFORM.to_string())
    }

    /// Kafka's `validateOffsetCommit` for a non-transactional commit of a consumer group.
    pub fn validate_offset_commit(
        &self,
        member_id: &str,
        member_epoch: i32,
        version: i16,
    ) -> Result<(), i16> {
        if member_epoch < 0 && self.members.is_empty() {
            return Ok(());
        }
        let member = self.members.get(member_id).ok_or(UNKNOWN_MEMBER_ID)?;
        if version < 9 && member.classic.is_none() {
            // Members of the consumer protocol must commit with v9+ (member epochs).
            return Err(UNSUPPORTED_VERSION);
        }
        if member_epoch != member.assignment.epoch {
            // Kafka's `validateMemberEpoch`: a member using the classic protocol has a
            // generation, hence ILLEGAL_GENERATION.
            return Err(if member.classic.is_some() {
                ILLEGAL_GENERATION
            } else {
                STALE_MEMBER_EPOCH
            });
        }
        Ok(())
    }

    /// TxnOffsetCommit of a consumer group: Kafka's `validateOffsetCommit` with
    /// `isTransactional`, a stale epoch answered ILLEGAL_GENERATION (TxnOffsetCommit has no
    /// STALE_MEMBER_EPOCH; Kafka's `OffsetMetadataManager` translates it).
    pub fn validate_txn_offset_commit(
        &self,
        member_id: &str,
        member_epoch: i32,
    ) -> Result<(), i16> {
        if member_epoch < 0 && self.members.is_empty() {
            return Ok(());
        }
        let member = self.members.get(member_id).ok_or(UNKNOWN_MEMBER_ID)?;
        if member_epoch != member.assignment.epoch {
            return Err(ILLEGAL_GENERATION);
        }
        Ok(())
    }

    /// Kafka's `validateOffsetFetch` (`member_id` `None` with epoch -1: admin).
    pub fn validate_offset_fetch(
        &self,
        member_id: Option<&str>,
        member_epoch: i32,
    ) -> Result<(), i16> {
        if member_id.is_none() && member_epoch < 0 {
            return Ok(());
        }
        let member = self
            .members
            .get(member_id.unwrap_or(""))
            .ok_or(UNKNOWN_MEMBER_ID)?;
        if member_epoch != member.assignment.epoch {
            return Err(STALE_MEMBER_EPOCH);
        }
        Ok(())
    }

    /// Whether a member subscribes to `topic` (OffsetDelete and offset expiry).
    pub fn is_subscribed_to_topic(&self, topic: &str) -> bool {
        self.subscribed_topics().contains(topic)
    }

    /// Checks a heartbeat's fields (Kafka's `throwIfConsumerGroupHeartbeatRequestIsInvalid`).
    pub fn validate_request(
        group_id: &str,
        request: &HeartbeatRequest,
        version: i16,
        settings: &ConsumerSettings,
    ) -> Result<(), OpError> {
        let invalid = |m: &str| Err((INVALID_REQUEST, m.to_string()));
        let blank = |s: &Option<String>| s.as_deref().is_some_and(|v| v.trim().is_empty());
        if group_id.trim().is_empty() {
            return invalid("GroupId can't be empty.");
        }
        if blank(&request.instance_id) {
            return invalid("InstanceId can't be empty.");
        }
        if blank(&request.rack_id) {
            return invalid("RackId can't be empty.");
        }
        if let Some(regex) = request
            .subscribed_topic_regex
            .as_deref()
            .filter(|r| !r.is_empty())
        {
            compile_regex(regex)?;
        }
        if version >= CONSUMER_GENERATED_MEMBER_ID_VERSION && request.member_id.trim().is_empty() {
            return invalid("MemberId can't be empty.");
        }
        let epoch = request.member_epoch;
        if epoch > 0 || epoch == LEAVE_GROUP_MEMBER_EPOCH {
            if request.member_id.trim().is_empty() {
                return invalid("MemberId can't be empty.");
            }
        } else if epoch == 0 {
            if request.rebalance_timeout_ms == -1 {
                return invalid("RebalanceTimeoutMs must be provided in first request.");
            }
            if request.owned.as_ref().is_none_or(|o| !o.is_empty()) {
                return invalid("TopicPartitions must be empty when (re-)joining.");
            }
            if request
                .subscribed_topic_names
                .as_ref()
                .is_none_or(|t| t.is_empty())
                && request
                    .subscribed_topic_regex
                    .as_ref()
                    .is_none_or(|r| r.is_empty())
            {
                return invalid(
                    "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.",
                );
            }
        } else if epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
            if request.member_id.trim().is_empty() {
                return invalid("MemberId can't be empty.");
            }
            if request.instance_id.is_none() {
                return invalid("InstanceId can't be null.");
            }
        } else {
            return invalid("MemberEpoch is invalid.");
        }
        if let Some(name) = &request.server_assignor
            && !settings.assignors.contains(name)
        {
            return Err((
                UNSUPPORTED_ASSIGNOR,
                format!(
                    "ServerAssignor {name} is not supported. Supported assignors: {}.",
                    settings.assignors.join(", ")
                ),
            ));
        }
        Ok(())
    }

    /// A heartbeat of a joining or known member (epoch >= 0), applied to `self` (a copy the
    /// caller installs once `changes` are written). Kafka's `consumerGroupHeartbeat`.
    pub fn heartbeat(
        &mut self,
        settings: &ConsumerSettings,
        mut request: HeartbeatRequest,
        lookup: &dyn TopicSource,
        now_ms: i64,
        changes: &mut Changes,
    ) -> Result<HeartbeatOutcome, OpError> {
        let group_id = self.group_id.clone();
        let joining = request.member_epoch == 0;
        if self.members.len() >= settings.max_size
            && (request.member_id.is_empty() || !self.members.contains_key(&request.member_id))
        {
            return Err((
                GROUP_MAX_SIZE_REACHED,
                format!(
                    "The consumer group has reached its maximum capacity of {} members.",
                    settings.max_size
                ),
            ));
        }
        if request.member_id.is_empty() {
            // v0: the coordinator names the member (Kafka's `Uuid.randomUuid().toString()`,
            // URL-safe base64).
            request.member_id = crate::cluster::meta_properties::random_cluster_id();
        }
        let member_id = request.member_id.clone();
        if let Some(instance) = request.instance_id.clone() {
            // A known member using the classic protocol rejoins (JoinGroup) without the
            // replacement of a joining static member (Kafka creates only unknown ones).
            let rejoining = request.classic.is_some() && self.members.contains_key(&member_id);
            self.static_member(&member_id, &instance, joining && !rejoining, changes)?;
        }
        let old = match self.members.get(&member_id) {
            Some(m) => m.clone(),
            None if joining => ConsumerMember::new(&member_id),
            None => {
                return Err((
                    UNKNOWN_MEMBER_ID,
                    format!("Member {member_id} is not a member of group {group_id}."),
                ));
            }
        };
        // Kafka's `throwIfConsumerGroupMemberEpochIsInvalid`. Epoch 0 is a (re)join and is
        // never fenced, even for a member known at a higher epoch (KAFKA-19233: a fenced
        // member rejoins with its member id and epoch 0).
        if !joining {
            let current = old.assignment.epoch;
            let received = request.member_epoch;
            let fenced = if received > current {
                true
            } else if received < current {
                received != old.assignment.previous_epoch
                    || !is_subset(request.owned.as_ref(), &old.assignment.assigned)
            } else {
                false
            };
            if fenced {
                return Err((
                    FENCED_MEMBER_EPOCH,
                    format!(
                        "The consumer group member has a {} member epoch ({received}) than the \
                         one known by the group coordinator ({current}). The member must \
                         abandon all its partitions and rejoin.",
                        if received > current {
                            "greater"
                        } else {
                            "smaller"
                        }
                    ),
                ));
            }
        }
        // 1. The member's metadata.
        let mut member = old.clone();
        if let Some(i) = request.instance_id.clone() {
            member.instance_id = Some(i);
        }
        if let Some(r) = request.rack_id.clone() {
            member.rack_id = Some(r);
        }
        if request.rebalance_timeout_ms != -1 {
            member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        }
        if let Some(a) = request.server_assignor.clone() {
            member.server_assignor = Some(a);
        }
        if let Some(mut topics) = request.subscribed_topic_names.clone() {
            topics.sort();
            topics.dedup();
            member.subscribed_topic_names = topics;
        }
        if let Some(regex) = request.subscribed_topic_regex.clone() {
            // "" clears a regex subscription.
            member.subscribed_topic_regex = Some(regex).filter(|r| !r.is_empty());
        }
        member.client_id = request.client_id.clone();
        member.client_host = request.client_host.clone();
        if let Some(classic) = request.classic.clone() {
            member.classic = Some(classic);
            // Kafka's `maybeUpdateServerAssignorName(Optional.empty())`: classic members
            // ask for no server assignor.
        }
        let is_new = !self.members.contains_key(&member_id);
        let mut bump = false;
        if is_new || !member.metadata_equals(&old) {
            changes.records.push(records::member(&group_id, &member));
            bump |= member.subscribed_topic_names != old.subscribed_topic_names
                || member.subscribed_topic_regex != old.subscribed_topic_regex
                || is_new;
        }
        self.members.insert(member_id.clone(), member.clone());
        self.refresh_regexes(lookup, now_ms, changes);
        let metadata = self.subscription_metadata(lookup);
        let hash = metadata_hash(&metadata);
        if hash != self.metadata_hash {
            bump = true;
        }
        if bump {
            self.epoch += 1;
            self.metadata_hash = hash;
            changes
                .records
                .push(records::epoch(&group_id, self.epoch, hash));
            tracing::info!(group = %group_id, "bumped the group epoch to {}", self.epoch);
        }
        // 2. The target assignment.
        if self.epoch > self.assignment_epoch {
            self.update_target(settings, &metadata, now_ms, changes);
        }
        // 3. Reconciliation.
        let target = self.target.get(&member_id).cloned().unwrap_or_default();
        let before = member.assignment.clone();
        let mut after = before.clone();
        if !before.is_reconciled_to(self.assignment_epoch) {
            let group: &ConsumerGroup = self;
            after = reconcile::reconcile(
                &before,
                self.assignment_epoch,
                &target,
                request.owned.as_ref(),
                &|t, p| group.partition_epoch(t, p),
            )
            .map_err(|_| {
                (
                    FENCED_MEMBER_EPOCH,
                    "The consumer group member is in a unknown state. The member must \
                     abandon all its partitions and rejoin."
                        .to_string(),
                )
            })?;
            if after != before {
                changes
                    .records
                    .push(records::current(&group_id, &member_id, &after));
                if member.classic.is_some() {
                    // Members using the classic protocol have no revocation deadline
                    // (Kafka's `maybeReconcile`): they rejoin.
                } else if after.state == MemberState::UnrevokedPartitions {
                    changes.timers.push(TimerChange::Rebalance(
                        member_id.clone(),
                        after.epoch,
                        member.rebalance_timeout_ms,
                    ));
                } else {
                    changes
                        .timers
                        .push(TimerChange::CancelRebalance(member_id.clone()));
                }
            }
        }
        if let Some(m) = self.members.get_mut(&member_id) {
            m.assignment = after.clone();
        }
        changes.timers.push(TimerChange::Session(member_id.clone()));
        let full = joining
            || (request.rebalance_timeout_ms != -1
                && (request.subscribed_topic_names.is_some()
                    || request.subscribed_topic_regex.is_some())
                && request.owned.is_some());
        let assignment =
            (full || after.assigned != before.assigned).then(|| after.assigned.clone());
        let _ = settings.heartbeat_interval_ms;
        Ok(HeartbeatOutcome {
            member_id,
            member_epoch: after.epoch,
            assignment,
        })
    }

    /// The member of `instance` (static membership, KIP-345 in KIP-848's form): Kafka's
    /// `getOrMaybeSubscribeStaticConsumerGroupMember`. Joining, a static member that left
    /// for a while (epoch -2) is replaced by the new member id, which takes over its
    /// assignment (tombstones for the old id, records for the new one); one still in the
    /// group is UNRELEASED_INSTANCE_ID. Otherwise the instance must be known
    /// (UNKNOWN_MEMBER_ID) and held by this member id (FENCED_INSTANCE_ID).
    fn static_member(
        &mut self,
        member_id: &str,
        instance: &str,
        joining: bool,
        changes: &mut Changes,
    ) -> Result<(), OpError> {
        let group_id = self.group_id.clone();
        let existing = self
            .members
            .values()
            .find(|m| m.instance_id.as_deref() == Some(instance))
            .cloned();
        if !joining {
            let Some(existing) = existing else {
                return Err((
                    UNKNOWN_MEMBER_ID,
                    format!("Instance id {instance} is unknown."),
                ));
            };
            if existing.member_id != member_id {
                return Err((
                    FENCED_INSTANCE_ID,
                    format!(
                        "Static member {member_id} with instance id {instance} was fenced by \
                         member {}.",
                        existing.member_id
                    ),
                ));
            }
            return Ok(());
        }
        let Some(existing) = existing else {
            return Ok(());
        };
        if existing.assignment.epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH {
            return Err((
                UNRELEASED_INSTANCE_ID,
                format!(
                    "Static member {member_id} with instance id {instance} cannot join the group \
                     because the instance id is owned by {} member.",
                    existing.member_id
                ),
            ));
        }
        // Kafka's `replaceMember`: the old id's records go, the new id's come.
        let old_id = existing.member_id.clone();
        let mut replacement = existing;
        replacement.member_id = member_id.to_string();
        replacement.assignment.epoch = 0;
        replacement.assignment.previous_epoch = 0;
        self.members.remove(&old_id);
        let target = self.target.remove(&old_id).unwrap_or_default();
        changes
            .records
            .extend(records::member_tombstones(&group_id, &old_id));
        changes.timers.push(TimerChange::CancelAll(old_id.clone()));
        changes
            .records
            .push(records::member(&group_id, &replacement));
        changes
            .records
            .push(records::target(&group_id, member_id, &target));
        changes.records.push(records::current(
            &group_id,
            member_id,
            &replacement.assignment,
        ));
        self.target.insert(member_id.to_string(), target);
        self.members.insert(member_id.to_string(), replacement);
        tracing::info!(
            group = %group_id,
            "static member {instance} rejoins as {member_id}, replacing {old_id}"
        );
        Ok(())
    }

    /// A leave (epoch -1, or -2 for a static member that comes back): Kafka's
    /// `consumerGroupLeave`. Returns the epoch to answer with.
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        member_epoch: i32,
        lookup: &dyn TopicSource,
        changes: &mut Changes,
    ) -> Result<i32, OpError> {
        let group_id = self.group_id.clone();
        let target_id = match instance_id {
            None => {
                if !self.members.contains_key(member_id) {
                    return Err((
                        UNKNOWN_MEMBER_ID,
                        format!("Member {member_id} is not a member of group {group_id}."),
                    ));
                }
                member_id.to_string()
            }
            Some(instance) => {
                self.static_member(member_id, instance, false, changes)?;
                member_id.to_string()
            }
        };
        if instance_id.is_some() && member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
            // Kafka's `consumerGroupStaticMemberGroupLeave`: the member stays, at epoch -2,
            // keeping its partitions until it comes back or its session ends.
            let member = self.members.get_mut(&target_id).expect("checked above");
            member.assignment.epoch = LEAVE_GROUP_STATIC_MEMBER_EPOCH;
            member.assignment.pending_revocation.clear();
            let assignment = member.assignment.clone();
            changes
                .records
                .push(records::current(&group_id, &target_id, &assignment));
            tracing::info!(group = %group_id, member = %target_id, "static member left for now");
            return Ok(LEAVE_GROUP_STATIC_MEMBER_EPOCH);
        }
        tracing::info!(group = %group_id, member = %target_id, "member left the consumer group");
        self.fence(&target_id, lookup, changes);
        Ok(member_epoch)
    }

    /// Kafka's `TargetAssignmentBuilder`: a new target for every member at the group
    /// epoch; records for the members whose target changed, then the assignment epoch.
    fn update_target(
        &mut self,
        settings: &ConsumerSettings,
        metadata: &BTreeMap<String, TopicMeta>,
        now_ms: i64,
        changes: &mut Changes,
    ) {
        let specs: BTreeMap<String, MemberSpec> = self
            .members
            .values()
            .map(|m| {
                let topics = self
                    .member_topics(m)
                    .iter()
                    .filter_map(|t| metadata.get(t).map(|meta| meta.id))
                    .collect();
                (
                    m.member_id.clone(),
                    MemberSpec {
                        instance_id: m.instance_id.clone(),
                        topics,
                        current: self.target.get(&m.member_id).cloned().unwrap_or_default(),
                    },
                )
            })
            .collect();
        let counts: BTreeMap<Uuid, i32> = metadata.values().map(|m| (m.id, m.partitions)).collect();
        let name = self.assignor(settings);
        let result = assignor::assign(&name, &specs, &counts);
        for (member_id, assignment) in result {
            if self.target.get(&member_id) != Some(&assignment) {
                changes
                    .records
                    .push(records::target(&self.group_id, &member_id, &assignment));
                self.target.insert(member_id, assignment);
            }
        }
        self.assignment_epoch = self.epoch;
        changes
            .records
            .push(records::target_epoch(&self.group_id, self.epoch, now_ms));
    }

    /// Removes a member (leave, session or rebalance timeout) and bumps the group epoch:
    /// Kafka's `consumerGroupFenceMember`. False if there is no such member.
    pub fn fence(
        &mut self,
        member_id: &str,
        lookup: &dyn TopicSource,
        changes: &mut Changes,
    ) -> bool {
        if self.members.remove(member_id).is_none() {
            return false;
        }
        self.target.remove(member_id);
        changes
            .records
            .extend(records::member_tombstones(&self.group_id, member_id));
        self.refresh_regexes(lookup, crate::groups::group::now_ms(), changes);
        let hash = metadata_hash(&self.subscription_metadata(lookup));
        self.epoch += 1;
        self.metadata_hash = hash;
        changes
            .records
            .push(records::epoch(&self.group_id, self.epoch, hash));
        changes
            .timers
            .push(TimerChange::CancelAll(member_id.to_string()));
        true
    }
}

/// Whether every owned partition is in `assigned` (Kafka's `isSubset`; nothing owned
/// given is a subset).
fn is_subset(owned: Option<&Assignment>, assigned: &Assignment) -> bool {
    let Some(owned) = owned else {
        return false;
    };
    owned
        .iter()
        .all(|(t, ps)| ps.is_empty() || assigned.get(t).is_some_and(|a| ps.is_subset(a)))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod migration_tests;
