//! A partition this broker leads (the leader half of Kafka's `Partition`): its followers'
//! fetch state, the ISR decisions (`maybeExpandIsr`, `maybeShrinkIsr`) proposed to the
//! controller, the high watermark (`maybeIncrementLeaderHW`) and what `acks=all` produces
//! wait for (`checkEnoughReplicasReachOffset`).
//!
//! Rules, as Kafka's:
//! * A follower joins the ISR once its log end offset reaches the high watermark and the
//!   start of the current leader epoch (a replica must hold something of this epoch: else
//!   committed data between the high watermark and the log end could be lost if it became
//!   leader) and it is not fenced or shutting down (the caller's `eligible`).
//! * A follower in the ISR leaves it when it has not caught up with the leader's log end
//!   offset for `replica.lag.time.max.ms` ([`ReplicaState::is_caught_up`]).
//! * One ISR change is in flight at a time; meanwhile the high watermark counts the larger
//!   of the committed and proposed ISRs (KIP-497's maximal ISR), which is the safe side.
//! * The high watermark is the smallest log end offset of the maximal ISR and of the
//!   followers caught up enough to join it (so a follower about to join is waited for),
//!   and does not move while the ISR is smaller than `min.insync.replicas` (KIP-966).
//! * The effective `min.insync.replicas` is at most the replica count.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};

use gregor_protocol::{Uuid, error_code};
use tokio::sync::{oneshot, watch};

use super::alter_partition::{AlterPartitionSender, CommittedIsr, IsrChange, IsrChangeRequest};
use super::replica::ReplicaState;
use crate::storage::{PartitionLog, unpoison};

/// Wall-clock milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The ISR change in flight, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Inflight {
    /// Adding a replica: the proposal is the larger set.
    Expand(Vec<i32>),
    /// Removing replicas: the committed set is the larger one.
    Shrink(Vec<i32>),
}

/// What the metadata says of a partition this broker leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leadership {
    /// The partition's leader epoch.
    pub leader_epoch: i32,
    /// The partition epoch (bumped by every change of the partition's record).
    pub partition_epoch: i32,
    /// The in-sync replicas, this broker among them.
    pub isr: Vec<i32>,
    /// Every assigned replica.
    pub replicas: Vec<i32>,
}

#[derive(Debug)]
struct LeaderState {
    leading: bool,
    leadership: Leadership,
    inflight: Option<Inflight>,
    followers: BTreeMap<i32, ReplicaState>,
    /// The log end offset when this epoch began (Kafka's `leaderEpochStartOffsetOpt`).
    epoch_start_offset: i64,
}

impl LeaderState {
    /// The ISR the high watermark waits for (committed, or with the replica being added).
    fn maximal_isr(&self) -> &[i32] {
        match &self.inflight {
            Some(Inflight::Expand(proposed)) => proposed,
            _ => &self.leadership.isr,
        }
    }
}

/// A partition this broker leads. Shared as `Arc<LeaderPartition>`; its methods take a
/// short internal lock and never block on I/O.
#[derive(Debug)]
pub struct LeaderPartition {
    topic: String,
    topic_id: Uuid,
    partition: i32,
    local_id: i32,
    local_broker_epoch: i64,
    lag_time_max_ms: i64,
    log: Arc<PartitionLog>,
    state: Mutex<LeaderState>,
    /// Bumped at every ISR or leadership change, so `acks=all` waiters look again.
    changes: watch::Sender<u64>,
    alter: Option<AlterPartitionSender>,
    /// This partition, for the tasks applying the controller's answers.
    me: Weak<LeaderPartition>,
}

/// What a follower's fetch did to the partition (from [`LeaderPartition::on_follower_fetch`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowerFetchOutcome {
    /// The high watermark moved (waiting `acks=all` produces may complete).
    pub high_watermark_moved: bool,
    /// An ISR expansion was proposed to the controller.
    pub expansion_proposed: bool,
}

impl LeaderPartition {
    /// Takes the lead of `log`'s partition (Kafka's `Partition.makeLeader`): records the
    /// new epoch as starting at the log end offset in the leader epoch cache, resets each
    /// follower's state (in the ISR: caught up now; outside it: never), and makes the high
    /// watermark follow the log end offset when this broker is the only replica, else
    /// tries to advance it over the ISR.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        topic: &str,
        topic_id: Uuid,
        partition: i32,
        local_id: i32,
        local_broker_epoch: i64,
        lag_time_max_ms: i64,
        log: Arc<PartitionLog>,
        leadership: Leadership,
        alter: Option<AlterPartitionSender>,
        now_ms: i64,
    ) -> Arc<LeaderPartition> {
        let (changes, _) = watch::channel(0);
        let leader = Arc::new_cyclic(|me| LeaderPartition {
            topic: topic.to_owned(),
            topic_id,
            partition,
            local_id,
            local_broker_epoch,
            lag_time_max_ms,
            log,
            state: Mutex::new(LeaderState {
                leading: true,
                leadership: leadership.clone(),
                inflight: None,
                followers: BTreeMap::new(),
                epoch_start_offset: 0,
            }),
            changes,
            alter,
            me: me.clone(),
        });
        leader.update_leadership(leadership, now_ms);
        leader.spawn_append_watch();
        leader
    }

    /// Kafka calls `maybeIncrementLeaderHW` after every leader append; here a task does it
    /// whenever the log end offset moves, whoever appended (Produce, transaction markers,
    /// the coordinators' own partitions). It ends when the partition is dropped or this
    /// broker stops leading it. Outside a tokio runtime (unit tests of the rules) nothing
    /// is spawned: callers advance the high watermark themselves.
    fn spawn_append_watch(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut ends = self.log.subscribe();
        let me = self.me.clone();
        runtime.spawn(async move {
            while ends.changed().await.is_ok() {
                let Some(leader) = me.upgrade() else {
                    return;
                };
                if !leader.is_leading() {
                    return;
                }
                leader.maybe_increment_high_watermark(now_ms());
            }
        });
    }

    /// New metadata for the partition while this broker still leads it (a new epoch, an
    /// ISR the controller committed, a reassignment): a newer leader epoch resets the
    /// followers as a new leader does, a committed partition epoch ends the change in
    /// flight. Blocking when the epoch cache's file is written.
    pub fn update_leadership(&self, leadership: Leadership, now_ms: i64) {
        let end = self.log.log_end_offset();
        {
            let mut state = unpoison(self.state.lock());
            let new_epoch = leadership.leader_epoch != state.leadership.leader_epoch
                || state.followers.is_empty();
            if new_epoch {
                state.epoch_start_offset = end;
            }
            if leadership.partition_epoch >= state.leadership.partition_epoch {
                state.inflight = None;
            }
            let followers: Vec<i32> = leadership
                .replicas
                .iter()
                .copied()
                .filter(|&id| id != self.local_id)
                .collect();
            state.followers.retain(|id, _| followers.contains(id));
            for id in followers {
                let in_sync = leadership.isr.contains(&id);
                let replica = state.followers.entry(id).or_insert(ReplicaState::EMPTY);
                replica.reset(now_ms, end, new_epoch, in_sync);
            }
            state.leading = true;
            state.leadership = leadership.clone();
        }
        // Kafka's `makeLeader` caches the new epoch at the log end offset, so that a
        // follower with a later diverging epoch truncates to the right place.
        self.log
            .end_offset_for_epoch(leadership.leader_epoch, leadership.leader_epoch);
        let alone = leadership.replicas.iter().all(|&id| id == self.local_id);
        self.log.set_hw_follows_leo(alone);
        self.maybe_increment_high_watermark(now_ms);
        self.changes.send_modify(|n| *n += 1);
    }

    /// This broker no longer leads the partition (it became a follower, or the partition
    /// went away): waiting produces complete with NOT_LEADER_OR_FOLLOWER.
    pub fn resign(&self) {
        unpoison(self.state.lock()).leading = false;
        self.changes.send_modify(|n| *n += 1);
    }

    /// Whether this broker still leads the partition.
    pub fn is_leading(&self) -> bool {
        unpoison(self.state.lock()).leading
    }

    /// The partition's log.
    pub fn log(&self) -> &Arc<PartitionLog> {
        &self.log
    }

    /// The topic name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partition index.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The leader epoch this broker leads in.
    pub fn leader_epoch(&self) -> i32 {
        unpoison(self.state.lock()).leadership.leader_epoch
    }

    /// The committed ISR.
    pub fn isr(&self) -> Vec<i32> {
        unpoison(self.state.lock()).leadership.isr.clone()
    }

    /// The ISR the high watermark counts (the committed one, or the proposed one while an
    /// expansion is in flight).
    pub fn maximal_isr(&self) -> Vec<i32> {
        unpoison(self.state.lock()).maximal_isr().to_vec()
    }

    /// Whether an ISR change waits for the controller.
    pub fn has_inflight_change(&self) -> bool {
        unpoison(self.state.lock()).inflight.is_some()
    }

    /// What the leader knows of follower `id`.
    pub fn replica_state(&self, id: i32) -> Option<ReplicaState> {
        unpoison(self.state.lock()).followers.get(&id).copied()
    }

    /// Whether `id` is an assigned replica of the partition (a follower fetch from any
    /// other broker is refused).
    pub fn is_replica(&self, id: i32) -> bool {
        unpoison(self.state.lock())
            .leadership
            .replicas
            .contains(&id)
    }

    /// A receiver woken at every ISR or leadership change.
    pub fn subscribe_changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Kafka's `effectiveMinIsr`: the topic's `min.insync.replicas`, at most the replica
    /// count.
    fn effective_min_isr(&self, state: &LeaderState) -> usize {
        let min = usize::try_from(self.log.config().min_insync_replicas).unwrap_or(1);
        min.min(state.leadership.replicas.len().max(1))
    }

    /// Kafka's `appendRecordsToLeader` check for `acks=all`: NOT_ENOUGH_REPLICAS when the
    /// ISR is smaller than the effective `min.insync.replicas` (nothing is appended then);
    /// NOT_LEADER_OR_FOLLOWER once this broker no longer leads.
    pub fn check_acks_all(&self) -> Result<(), i16> {
        let state = unpoison(self.state.lock());
        if !state.leading {
            return Err(error_code::NOT_LEADER_OR_FOLLOWER);
        }
        if state.leadership.isr.len() < self.effective_min_isr(&state) {
            return Err(error_code::NOT_ENOUGH_REPLICAS);
        }
        Ok(())
    }

    /// Kafka's `checkEnoughReplicasReachOffset` for an `acks=all` append ending before
    /// `required_offset`: `Some(NONE)` once the high watermark reached it,
    /// `Some(NOT_ENOUGH_REPLICAS_AFTER_APPEND)` if it did but the ISR shrank below
    /// `min.insync.replicas` meanwhile, `Some(NOT_LEADER_OR_FOLLOWER)` once this broker no
    /// longer leads, `None` while it must wait.
    pub fn acks_all_outcome(&self, required_offset: i64) -> Option<i16> {
        let state = unpoison(self.state.lock());
        if !state.leading {
            return Some(error_code::NOT_LEADER_OR_FOLLOWER);
        }
        if self.log.high_watermark() < required_offset {
            return None;
        }
        if state.maximal_isr().len() < self.effective_min_isr(&state) {
            Some(error_code::NOT_ENOUGH_REPLICAS_AFTER_APPEND)
        } else {
            Some(error_code::NONE)
        }
    }

    /// Kafka's `updateFollowerFetchState`: follower `id` fetched from `fetch_offset` (its
    /// log end offset) at `now_ms` with broker epoch `broker_epoch`. Records it, proposes
    /// the follower's return to the ISR if it qualifies (`eligible`: not fenced, not
    /// shutting down, its broker epoch current) and advances the high watermark.
    ///
    /// Not an assigned replica: `Err(UNKNOWN_LEADER_EPOCH)`, as Kafka answers a fetch from
    /// a replica it does not know (the follower's metadata may be newer).
    pub fn on_follower_fetch(
        &self,
        id: i32,
        broker_epoch: i64,
        fetch_offset: i64,
        log_start_offset: i64,
        now_ms: i64,
        eligible: bool,
    ) -> Result<FollowerFetchOutcome, i16> {
        let leader_end = self.log.log_end_offset();
        let previous_end = {
            let mut state = unpoison(self.state.lock());
            if !state.leading {
                return Err(error_code::NOT_LEADER_OR_FOLLOWER);
            }
            let Some(replica) = state.followers.get_mut(&id) else {
                return Err(error_code::UNKNOWN_LEADER_EPOCH);
            };
            let previous_end = replica.log_end_offset;
            replica.update_fetch_state(
                fetch_offset,
                log_start_offset,
                now_ms,
                leader_end,
                broker_epoch,
            );
            previous_end
        };
        let expansion_proposed = eligible && self.maybe_expand_isr(id);
        let high_watermark_moved =
            previous_end != fetch_offset && self.maybe_increment_high_watermark(now_ms);
        Ok(FollowerFetchOutcome {
            high_watermark_moved,
            expansion_proposed,
        })
    }

    /// Kafka's `maybeExpandIsr`: proposes `id`'s return to the ISR when no change is in
    /// flight, it is not in the ISR and its log end offset reached both the high watermark
    /// and the start of the current leader epoch. Returns whether it proposed.
    fn maybe_expand_isr(&self, id: i32) -> bool {
        let high_watermark = self.log.high_watermark();
        let change = {
            let mut state = unpoison(self.state.lock());
            let Some(replica) = state.followers.get(&id).copied() else {
                return false;
            };
            let in_sync = replica.log_end_offset >= high_watermark
                && replica.log_end_offset >= state.epoch_start_offset;
            if state.inflight.is_some() || state.leadership.isr.contains(&id) || !in_sync {
                return false;
            }
            let mut proposed = state.leadership.isr.clone();
            proposed.push(id);
            let change = self.isr_change(&state, &proposed);
            state.inflight = Some(Inflight::Expand(proposed));
            change
        };
        tracing::info!(
            topic = %self.topic,
            partition = self.partition,
            replica = id,
            isr = ?change.new_isr(),
            "proposing to expand the ISR"
        );
        self.submit(change);
        true
    }

    /// Kafka's `maybeShrinkIsr` (run every half `replica.lag.time.max.ms`): proposes an
    /// ISR without the followers that have not caught up for `replica.lag.time.max.ms`,
    /// when no change is in flight. Returns the proposed ISR if it proposed one.
    pub fn maybe_shrink_isr(&self, now_ms: i64) -> Option<Vec<i32>> {
        let leader_end = self.log.log_end_offset();
        let change = {
            let mut state = unpoison(self.state.lock());
            if !state.leading || state.inflight.is_some() {
                return None;
            }
            let out_of_sync: Vec<i32> = state
                .leadership
                .isr
                .iter()
                .copied()
                .filter(|&id| id != self.local_id)
                .filter(|id| {
                    state.followers.get(id).is_none_or(|replica| {
                        !replica.is_caught_up(leader_end, now_ms, self.lag_time_max_ms)
                    })
                })
                .collect();
            if out_of_sync.is_empty() {
                return None;
            }
            let proposed: Vec<i32> = state
                .leadership
                .isr
                .iter()
                .copied()
                .filter(|id| !out_of_sync.contains(id))
                .collect();
            let change = self.isr_change(&state, &proposed);
            tracing::info!(
                topic = %self.topic,
                partition = self.partition,
                isr = ?state.leadership.isr,
                proposed = ?proposed,
                ?out_of_sync,
                high_watermark = self.log.high_watermark(),
                log_end_offset = leader_end,
                "proposing to shrink the ISR"
            );
            state.inflight = Some(Inflight::Shrink(proposed.clone()));
            change
        };
        let proposed = change.new_isr();
        self.submit(change);
        Some(proposed)
    }

    /// The AlterPartition entry proposing `isr`.
    fn isr_change(&self, state: &LeaderState, isr: &[i32]) -> IsrChange {
        IsrChange {
            broker_id: self.local_id,
            broker_epoch: self.local_broker_epoch,
            topic_id: self.topic_id,
            topic: self.topic.clone(),
            partition: self.partition,
            leader_epoch: state.leadership.leader_epoch,
            new_isr_with_epochs: isr
                .iter()
                .map(|&id| {
                    let epoch = state.followers.get(&id).map_or(-1, |r| r.broker_epoch);
                    (id, epoch)
                })
                .collect(),
            leader_recovery_state: 0,
            partition_epoch: state.leadership.partition_epoch,
        }
    }

    /// Sends `change` to the controller side; its answer is applied by a task (called
    /// inside a tokio runtime). Without a channel (no controller to ask yet) the change
    /// stays in flight until new metadata ends it.
    fn submit(&self, change: IsrChange) {
        let Some(alter) = &self.alter else {
            return;
        };
        let (reply, answer) = oneshot::channel();
        let proposed = change.new_isr();
        if alter.send(IsrChangeRequest { change, reply }).is_err() {
            unpoison(self.state.lock()).inflight = None;
            return;
        }
        let me = self.me.clone();
        tokio::spawn(async move {
            let answer = answer.await;
            if let Some(leader) = me.upgrade() {
                leader.on_alter_partition_answer(
                    &proposed,
                    answer.unwrap_or(Err(error_code::REQUEST_TIMED_OUT)),
                );
            }
        });
    }

    /// Kafka's `handleAlterPartitionUpdate`: the controller committed the partition (its
    /// ISR and partition epoch become the leader's, the high watermark may move) or refused
    /// the change (it is dropped; the next fetch or shrink check proposes again).
    pub fn on_alter_partition_answer(&self, proposed: &[i32], answer: Result<CommittedIsr, i16>) {
        {
            let mut state = unpoison(self.state.lock());
            let ours = match &state.inflight {
                Some(Inflight::Expand(isr) | Inflight::Shrink(isr)) => isr == proposed,
                None => false,
            };
            if !ours {
                return;
            }
            state.inflight = None;
            match answer {
                Ok(committed) if committed.leader_epoch == state.leadership.leader_epoch => {
                    if committed.partition_epoch >= state.leadership.partition_epoch {
                        tracing::info!(
                            topic = %self.topic,
                            partition = self.partition,
                            isr = ?committed.isr,
                            partition_epoch = committed.partition_epoch,
                            "the ISR changed"
                        );
                        state.leadership.isr = committed.isr;
                        state.leadership.partition_epoch = committed.partition_epoch;
                    }
                }
                Ok(committed) => {
                    tracing::info!(
                        topic = %self.topic,
                        partition = self.partition,
                        leader_epoch = committed.leader_epoch,
                        "an ISR change was answered for another leader epoch"
                    );
                }
                Err(code) => {
                    tracing::info!(
                        topic = %self.topic,
                        partition = self.partition,
                        error = %gregor_protocol::ErrorCode::from(code),
                        "the controller refused an ISR change"
                    );
                }
            }
        }
        self.maybe_increment_high_watermark(now_ms());
        self.changes.send_modify(|n| *n += 1);
    }

    /// Kafka's `maybeIncrementLeaderHW`: the smallest log end offset among this broker and
    /// the followers of the maximal ISR or caught up enough to join it; not while the ISR
    /// is below the effective `min.insync.replicas`. Returns whether it moved.
    pub fn maybe_increment_high_watermark(&self, now_ms: i64) -> bool {
        if self.log.hw_follows_leo() {
            return false;
        }
        let leader_end = self.log.log_end_offset();
        let target = {
            let state = unpoison(self.state.lock());
            if !state.leading || state.leadership.isr.len() < self.effective_min_isr(&state) {
                return false;
            }
            let maximal = state.maximal_isr();
            let mut target = leader_end;
            for (id, replica) in &state.followers {
                let counts = maximal.contains(id)
                    || replica.is_caught_up(leader_end, now_ms, self.lag_time_max_ms);
                if counts && replica.log_end_offset < target {
                    target = replica.log_end_offset;
                }
            }
            target
        };
        self.log.maybe_increment_high_watermark(target).is_some()
    }
}
