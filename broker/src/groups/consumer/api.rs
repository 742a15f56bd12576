//! The coordinator side of consumer groups: ConsumerGroupHeartbeat and
//! ConsumerGroupDescribe over the groups of [`GroupCoordinator`], their records written
//! to `__consumer_offsets`, and the session and revocation timers.
//!
//! A consumer group lives in the same [`GroupCell`] as a classic group would (one id, one
//! namespace, one lock), as the `consumer` part of that cell's group; the committed offsets
//! stay where the classic code keeps them, so OffsetCommit/OffsetFetch, OffsetDelete,
//! expiry and deletion work for both kinds.

use std::sync::Arc;
use std::time::Duration;

use gregor_protocol::error_code::*;

use super::{
    Changes, ConsumerGroup, ConsumerSettings, HeartbeatOutcome, HeartbeatRequest,
    LEAVE_GROUP_MEMBER_EPOCH, LEAVE_GROUP_STATIC_MEMBER_EPOCH, OpError, TimerChange, TopicMeta,
    TopicSource,
};
use crate::broker::Broker;
use crate::groups::group::{self, ClassicGroup, Record, now_ms};
use crate::groups::{GroupCell, GroupCoordinator};

/// What timers of a consumer group a fired task may act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimerKind {
    /// The session timeout.
    Session,
    /// The revocation deadline at an epoch.
    Rebalance(i32),
}

/// The running timers of a consumer group: by member, the token and task of each kind.
#[derive(Clone, Debug, Default)]
pub struct ConsumerTimers {
    entries: std::collections::HashMap<(String, bool), (u64, tokio::task::AbortHandle)>,
}

impl ConsumerTimers {
    fn cancel(&mut self, member_id: &str, session: bool) {
        if let Some((_, abort)) = self.entries.remove(&(member_id.to_string(), session)) {
            abort.abort();
        }
    }

    /// Cancels every timer.
    pub fn cancel_all(&mut self) {
        for (_, (_, abort)) in self.entries.drain() {
            abort.abort();
        }
    }
}

static NEXT_TOKEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// The metadata image's topics, as a group sees them.
pub(in crate::groups) struct ImageTopics(Arc<crate::cluster::image::MetadataImage>);

impl TopicSource for ImageTopics {
    fn meta(&self, name: &str) -> Option<TopicMeta> {
        self.0.topic(name).map(|t| TopicMeta {
            id: t.id,
            partitions: t.partitions.len() as i32,
            hash: super::metadata_hash::topic_hash(t, &self.0),
        })
    }

    fn names(&self) -> Vec<String> {
        self.0.topics().map(|t| t.name.clone()).collect()
    }

    fn version(&self) -> i64 {
        self.0.last_offset()
    }
}

/// The image's view of the topics for the assignment.
fn lookup(broker: &Broker) -> ImageTopics {
    image_topics(broker)
}

/// The image's view of the topics (for the classic members' APIs too).
pub(in crate::groups) fn image_topics(broker: &Broker) -> ImageTopics {
    ImageTopics(broker.image())
}

impl GroupCoordinator {
    /// The consumer-group settings.
    pub fn consumer_settings(&self) -> ConsumerSettings {
        self.consumer.clone()
    }

    /// The session timeout and heartbeat interval of consumer group `group_id`: its group
    /// configs (`consumer.session.timeout.ms`, `consumer.heartbeat.interval.ms`, resource
    /// type GROUP in the metadata image) over the broker's defaults, as Kafka's
    /// `GroupMetadataManager.consumerGroupSessionTimeoutMs` reads them at each use.
    pub fn consumer_group_timeouts(&self, group_id: &str) -> crate::group_config::GroupTimeouts {
        let bounds = crate::group_config::Bounds {
            session_timeout_ms: self.consumer.session_timeout_ms,
            heartbeat_interval_ms: self.consumer.heartbeat_interval_ms,
            ..Default::default()
        };
        match self.broker() {
            Some(broker) => {
                let image = broker.image();
                crate::group_config::timeouts(
                    image.config(crate::cluster::ConfigResource::GROUP, group_id),
                    &bounds,
                )
            }
            None => crate::group_config::timeouts(None, &bounds),
        }
    }

    /// ConsumerGroupHeartbeat: the outcome, or Kafka's error code and message.
    pub async fn consumer_group_heartbeat(
        &self,
        group_id: &str,
        request: HeartbeatRequest,
        version: i16,
    ) -> Result<HeartbeatOutcome, OpError> {
        ConsumerGroup::validate_request(group_id, &request, version, &self.consumer)?;
        if let Some(code) = self.coordinator_error(group_id) {
            return Err((code, String::new()));
        }
        let broker = self
            .broker()
            .ok_or((COORDINATOR_NOT_AVAILABLE, "no broker".to_string()))?;
        let not_found = || {
            (
                GROUP_ID_NOT_FOUND,
                format!("Consumer group {group_id} not found."),
            )
        };
        let not_consumer = || {
            (
                GROUP_ID_NOT_FOUND,
                format!("Group {group_id} is not a consumer group"),
            )
        };
        let leaving = request.member_epoch == LEAVE_GROUP_MEMBER_EPOCH
            || request.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH;
        let joining = request.member_epoch == 0;
        let cell = if joining {
            self.get_or_create(group_id).0
        } else {
            self.get(group_id).ok_or_else(not_found)?
        };
        let mut holder = cell.state.lock().await;
        let mut extra: Vec<Record> = Vec::new();
        let mut upgraded = false;
        let lookup = lookup(&broker);
        let current = match holder.consumer.as_deref() {
            Some(c) => c.clone(),
            None if joining && holder.members().next().is_none() && holder.is_empty() => {
                // Kafka's `maybeDeleteEmptyClassicGroup`: an empty classic group gives
                // way (its metadata deleted, its offsets kept).
                if holder.protocol_type().is_some() {
                    extra.push(Record::GroupTombstone);
                }
                ConsumerGroup::new(group_id)
            }
            None if joining && ConsumerGroup::upgrade_allowed(&holder, &self.consumer) => {
                // Kafka's `convertToConsumerGroup`: the classic group's tombstone, then the
                // records of the consumer group its members make.
                let group = ConsumerGroup::from_classic(&holder, &lookup)?;
                extra.push(Record::GroupTombstone);
                extra.extend(
                    group
                        .creation_records(now_ms())
                        .into_iter()
                        .map(|r| Record::Consumer(Box::new(r))),
                );
                upgraded = true;
                tracing::info!(group = %group_id, "upgrading the classic group to a consumer group");
                group
            }
            None => return Err(not_consumer()),
        };
        let mut copy = current;
        let mut changes = Changes::default();
        if upgraded {
            changes
                .timers
                .extend(copy.members.keys().map(|m| TimerChange::Session(m.clone())));
        }
        if request.member_epoch == LEAVE_GROUP_MEMBER_EPOCH
            && copy.downgrade_allowed(&request.member_id, &self.consumer)
        {
            let member_id = request.member_id.clone();
            self.downgrade(&cell, &mut holder, &copy, &member_id, &lookup)
                .await?;
            return Ok(HeartbeatOutcome {
                member_id,
                member_epoch: LEAVE_GROUP_MEMBER_EPOCH,
                assignment: None,
            });
        }
        let outcome = if leaving {
            let epoch = copy.leave(
                &request.member_id,
                request.instance_id.as_deref(),
                request.member_epoch,
                &lookup,
                &mut changes,
            )?;
            HeartbeatOutcome {
                member_id: request.member_id.clone(),
                member_epoch: epoch,
                assignment: None,
            }
        } else {
            copy.heartbeat(&self.consumer, request, &lookup, now_ms(), &mut changes)?
        };
        let mut records = extra;
        records.extend(
            changes
                .records
                .into_iter()
                .map(|r| Record::Consumer(Box::new(r))),
        );
        if !records.is_empty()
            && let Err(code) = self.append(group_id, &records).await
        {
            return Err((group::group_metadata_append_error(code), String::new()));
        }
        if upgraded {
            holder.clear_for_upgrade();
        }
        self.install(&cell, &mut holder, copy, changes.timers);
        Ok(outcome)
    }

    /// Kafka's `convertToClassicGroup` when `leaving` goes: the consumer group's tombstones
    /// and the classic group's GroupMetadata record written, then the classic group in
    /// place, rebalancing.
    pub(in crate::groups) async fn downgrade(
        &self,
        cell: &Arc<GroupCell>,
        holder: &mut ClassicGroup,
        group: &ConsumerGroup,
        leaving: &str,
        lookup: &ImageTopics,
    ) -> Result<(), OpError> {
        let group_id = group.group_id.clone();
        let value = group.to_classic(leaving, lookup, now_ms());
        let mut records: Vec<Record> = group
            .all_tombstones()
            .into_iter()
            .map(|r| Record::Consumer(Box::new(r)))
            .collect();
        records.push(Record::GroupMetadata(value.clone()));
        if let Err(code) = self.append(&group_id, &records).await {
            return Err((group::group_metadata_append_error(code), String::new()));
        }
        tracing::info!(group = %group_id, "downgraded the consumer group to a classic group as {leaving} left");
        if let Some(mut old) = holder.consumer.take() {
            old.timers.cancel_all();
        }
        holder.adopt_downgrade(&self.config, &value);
        self.finish(cell, holder).await;
        Ok(())
    }

    /// Puts `group` in place of the holder's consumer group and applies timer changes.
    pub(in crate::groups) fn install(
        &self,
        cell: &Arc<GroupCell>,
        holder: &mut ClassicGroup,
        mut group: ConsumerGroup,
        timers: Vec<TimerChange>,
    ) {
        if let Some(old) = holder.consumer.take() {
            group.timers = old.timers;
        }
        for change in timers {
            match change {
                TimerChange::Session(member) => {
                    // A member using the classic protocol keeps its JoinGroup's timeout.
                    let ms = group
                        .members
                        .get(&member)
                        .and_then(|m| m.classic.as_ref())
                        .map_or_else(
                            || {
                                self.consumer_group_timeouts(&group.group_id)
                                    .session_timeout_ms
                            },
                            |c| c.session_timeout_ms,
                        );
                    self.start_timer(cell, &mut group, &member, TimerKind::Session, ms);
                }
                TimerChange::Rebalance(member, epoch, ms) => {
                    self.start_timer(cell, &mut group, &member, TimerKind::Rebalance(epoch), ms);
                }
                TimerChange::CancelRebalance(member) => group.timers.cancel(&member, false),
                TimerChange::CancelAll(member) => {
                    group.timers.cancel(&member, true);
                    group.timers.cancel(&member, false);
                }
            }
        }
        holder.consumer = Some(Box::new(group));
    }

    fn start_timer(
        &self,
        cell: &Arc<GroupCell>,
        group: &mut ConsumerGroup,
        member_id: &str,
        kind: TimerKind,
        delay_ms: i32,
    ) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Some(broker) = self.broker.get().cloned() else {
            return;
        };
        let session = kind == TimerKind::Session;
        let token = NEXT_TOKEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let weak = Arc::downgrade(cell);
        let member = member_id.to_string();
        let task = runtime.spawn(async move {
            tokio::time::sleep(Duration::from_millis(delay_ms.max(0) as u64)).await;
            let (Some(broker), Some(cell)) = (broker.upgrade(), weak.upgrade()) else {
                return;
            };
            broker
                .groups
                .consumer_timer_fired(&cell, &member, kind, token)
                .await;
        });
        group.timers.cancel(member_id, session);
        group.timers.entries.insert(
            (member_id.to_string(), session),
            (token, task.abort_handle()),
        );
    }

    async fn consumer_timer_fired(
        &self,
        cell: &Arc<GroupCell>,
        member_id: &str,
        kind: TimerKind,
        token: u64,
    ) {
        let Some(broker) = self.broker() else {
            return;
        };
        let mut holder = cell.state.lock().await;
        let Some(group) = holder.consumer.as_deref_mut() else {
            return;
        };
        let session = kind == TimerKind::Session;
        let key = (member_id.to_string(), session);
        match group.timers.entries.get(&key) {
            Some((t, _)) if *t == token => {
                group.timers.entries.remove(&key);
            }
            _ => return,
        }
        if let TimerKind::Rebalance(epoch) = kind
            && group
                .members
                .get(member_id)
                .is_none_or(|m| m.assignment.epoch != epoch)
        {
            return;
        }
        let mut copy = group.clone();
        let mut changes = Changes::default();
        let lookup = lookup(&broker);
        if copy.downgrade_allowed(member_id, &self.consumer) {
            if let Err((code, _)) = self
                .downgrade(cell, &mut holder, &copy, member_id, &lookup)
                .await
            {
                tracing::warn!(group = %copy.group_id, "cannot downgrade as {member_id} expired: write error {code}");
            }
            return;
        }
        if !copy.fence(member_id, &lookup, &mut changes) {
            return;
        }
        tracing::info!(
            group = %copy.group_id,
            member = %member_id,
            "member fenced from the consumer group: its {} expired",
            if session { "session" } else { "rebalance timeout" }
        );
        let group_id = copy.group_id.clone();
        let records: Vec<Record> = changes
            .records
            .into_iter()
            .map(|r| Record::Consumer(Box::new(r)))
            .collect();
        if let Err(code) = self.append(&group_id, &records).await {
            tracing::warn!(group = %group_id, "cannot fence {member_id}: write error {code}");
            return;
        }
        self.install(cell, &mut holder, copy, changes.timers);
    }

    /// Before a classic JoinGroup: a consumer group of the id must give way. An empty one is
    /// deleted (its records tombstoned, its offsets kept), as Kafka's
    /// `getOrMaybeCreateClassicGroup` does; a non-empty one is INCONSISTENT_GROUP_PROTOCOL
    /// (the caller sends a JoinGroup to a non-empty one to the consumer group).
    pub(in crate::groups) async fn give_way_to_classic(
        &self,
        holder: &mut ClassicGroup,
    ) -> Result<(), i16> {
        let Some(group) = holder.consumer.as_deref() else {
            return Ok(());
        };
        if !group.is_empty() {
            return Err(INCONSISTENT_GROUP_PROTOCOL);
        }
        let group_id = group.group_id.clone();
        let records: Vec<Record> = super::records::group_tombstones(&group_id)
            .into_iter()
            .map(|r| Record::Consumer(Box::new(r)))
            .collect();
        self.append(&group_id, &records)
            .await
            .map_err(group::group_metadata_append_error)?;
        if let Some(mut old) = holder.consumer.take() {
            old.timers.cancel_all();
        }
        Ok(())
    }

    /// OffsetFetch v9+ of a consumer group: Kafka's `ConsumerGroup.validateOffsetFetch`
    /// (STALE_MEMBER_EPOCH, UNKNOWN_MEMBER_ID); other groups are not checked here.
    pub async fn validate_consumer_offset_fetch(
        &self,
        group_id: &str,
        member_id: Option<&str>,
        member_epoch: i32,
    ) -> Result<(), i16> {
        let Some(cell) = self.get(group_id) else {
            return Ok(());
        };
        let holder = cell.state.lock().await;
        match holder.consumer.as_deref() {
            Some(group) => group.validate_offset_fetch(member_id, member_epoch),
            None => Ok(()),
        }
    }

    /// ConsumerGroupDescribe of one group: the group, or the error code and message.
    pub async fn describe_consumer_group(
        &self,
        group_id: &str,
    ) -> Result<(ConsumerGroup, String), OpError> {
        let cell = self
            .get(group_id)
            .ok_or_else(|| (GROUP_ID_NOT_FOUND, format!("Group {group_id} not found.")))?;
        let holder = cell.state.lock().await;
        match holder.consumer.as_deref() {
            Some(g) => Ok((g.clone(), g.assignor(&self.consumer))),
            None => Err((
                GROUP_ID_NOT_FOUND,
                format!("Group {group_id} is not a consumer group."),
            )),
        }
    }

    /// Starts the session timers of the consumer groups loaded at start-up (Kafka's
    /// `onLoaded` schedules every member's session timeout).
    pub(in crate::groups) fn start_loaded_consumer_group(
        &self,
        cell: &Arc<GroupCell>,
        holder: &mut ClassicGroup,
    ) {
        let Some(group) = holder.consumer.take() else {
            return;
        };
        let timers = group
            .members
            .keys()
            .map(|m| TimerChange::Session(m.clone()))
            .collect();
        self.install(cell, holder, *group, timers);
    }
}
