//! What a leader knows of one follower replica (Kafka's `Replica` and `ReplicaState`): the
//! offsets of its last fetch and when it last caught up with the leader's log end offset,
//! from which the ISR is decided.

/// A follower's fetch state on the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicaState {
    /// The follower's log start offset (from its fetch; -1 unknown).
    pub log_start_offset: i64,
    /// The follower's log end offset: the fetch offset of its last fetch (-1 unknown).
    pub log_end_offset: i64,
    /// The leader's log end offset when the last fetch was received.
    pub last_fetch_leader_log_end_offset: i64,
    /// When the last fetch was received (ms).
    pub last_fetch_time_ms: i64,
    /// The latest time at which the follower had everything the leader had (ms).
    pub last_caught_up_time_ms: i64,
    /// The broker epoch of the last fetch (`ReplicaState.ReplicaEpoch`; -1 unknown).
    pub broker_epoch: i64,
}

impl ReplicaState {
    /// The state of a follower nothing is known of.
    pub const EMPTY: ReplicaState = ReplicaState {
        log_start_offset: -1,
        log_end_offset: -1,
        last_fetch_leader_log_end_offset: 0,
        last_fetch_time_ms: 0,
        last_caught_up_time_ms: 0,
        broker_epoch: -1,
    };

    /// Kafka's `isCaughtUp`: the follower has the leader's log end offset, or had it less
    /// than `max_lag_ms` ago.
    pub fn is_caught_up(&self, leader_end_offset: i64, now_ms: i64, max_lag_ms: i64) -> bool {
        self.log_end_offset == leader_end_offset
            || now_ms.saturating_sub(self.last_caught_up_time_ms) <= max_lag_ms
    }

    /// Kafka's `updateFetchStateOrThrow` (the broker epoch check is the caller's): a fetch
    /// at `fetch_offset` received at `now_ms` when the leader's log ended at
    /// `leader_end_offset`. A fetch reaching the leader's end catches the follower up now;
    /// one reaching the end the leader had at the previous fetch catches it up as of that
    /// fetch (so a follower always a little behind a busy leader still counts as caught
    /// up, the ISR's meaning: at most `replica.lag.time.max.ms` behind).
    pub fn update_fetch_state(
        &mut self,
        fetch_offset: i64,
        log_start_offset: i64,
        now_ms: i64,
        leader_end_offset: i64,
        broker_epoch: i64,
    ) {
        let caught_up = if fetch_offset >= leader_end_offset {
            self.last_caught_up_time_ms.max(now_ms)
        } else if fetch_offset >= self.last_fetch_leader_log_end_offset {
            self.last_caught_up_time_ms.max(self.last_fetch_time_ms)
        } else {
            self.last_caught_up_time_ms
        };
        *self = ReplicaState {
            log_start_offset,
            log_end_offset: fetch_offset,
            last_fetch_leader_log_end_offset: leader_end_offset
                .max(self.last_fetch_leader_log_end_offset),
            last_fetch_time_ms: now_ms,
            last_caught_up_time_ms: caught_up,
            broker_epoch,
        };
    }

    /// Kafka's `resetReplicaState` when this broker becomes (or stays) leader: a follower
    /// in the ISR counts as caught up now, one outside it as never, so it neither holds
    /// the high watermark back nor returns to the ISR before it fetches.
    pub fn reset(&mut self, now_ms: i64, leader_end_offset: i64, new_leader: bool, in_sync: bool) {
        let caught_up = if in_sync { now_ms } else { 0 };
        *self = if new_leader {
            ReplicaState {
                last_fetch_leader_log_end_offset: -1,
                last_caught_up_time_ms: caught_up,
                ..ReplicaState::EMPTY
            }
        } else {
            ReplicaState {
                last_fetch_leader_log_end_offset: leader_end_offset,
                last_fetch_time_ms: caught_up,
                last_caught_up_time_ms: caught_up,
                ..*self
            }
        };
    }
}
