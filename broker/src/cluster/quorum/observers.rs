//! The observers the quorum's leader has seen (Kafka's `LeaderState.observerStates`): nodes
//! that are not voters and fetch `__cluster_metadata-0` with Kafka's Fetch (broker-only
//! nodes, see [`crate::cluster::observer`]). DescribeQuorum lists them.
//!
//! * Only a fetch the leader answered with records (its position valid) counts; a fetch by
//!   a negative replica id (not a replica) or by a voter does not.
//! * Each observer keeps its fetch offset as its log end offset, the time of its last fetch
//!   and the last time it was caught up, by Kafka's `ReplicaState.updateFollowerState`: a
//!   fetch at or past the leader's log end catches it up now; one at or past the end the
//!   leader had at its previous fetch catches it up as of that previous fetch.
//! * The states belong to one leadership (Kafka makes a new `LeaderState` per election): a
//!   new epoch starts with none. An observer that has not fetched for
//!   [`OBSERVER_SESSION_TIMEOUT_MS`] is forgotten (`clearInactiveObservers`).

use std::collections::BTreeMap;

use uuid::Uuid;

/// Kafka's `LeaderState.OBSERVER_SESSION_TIMEOUT_MS`.
pub const OBSERVER_SESSION_TIMEOUT_MS: i64 = 300_000;

/// What the leader knows of one observer (Kafka's `LeaderState.ReplicaState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObserverState {
    /// `node.id`.
    pub replica_id: i32,
    /// Its metadata log directory id (zero before Fetch v17).
    pub directory_id: Uuid,
    /// Its fetch offset: the end of its copy of the log.
    pub log_end_offset: i64,
    /// When it last fetched (ms since the epoch).
    pub last_fetch_timestamp: i64,
    /// When it last had everything the leader had (-1: never).
    pub last_caught_up_timestamp: i64,
    /// The leader's log end offset at its last fetch.
    last_fetch_leader_end: i64,
}

/// The observers of one leadership.
#[derive(Debug, Default)]
pub struct Observers {
    /// The epoch the states belong to.
    epoch: i32,
    states: BTreeMap<(i32, Uuid), ObserverState>,
}

impl Observers {
    /// Records a valid fetch at `fetch_offset` by `replica_id` (with `directory_id`) at
    /// `now_ms`, answered by the leader of `epoch` whose log ended at `leader_end`.
    pub fn record_fetch(
        &mut self,
        epoch: i32,
        replica_id: i32,
        directory_id: Uuid,
        fetch_offset: i64,
        leader_end: i64,
        now_ms: i64,
    ) {
        if replica_id < 0 {
            return;
        }
        self.start_epoch(epoch);
        let state = self
            .states
            .entry((replica_id, directory_id))
            .or_insert(ObserverState {
                replica_id,
                directory_id,
                log_end_offset: -1,
                last_fetch_timestamp: -1,
                last_caught_up_timestamp: -1,
                last_fetch_leader_end: -1,
            });
        if fetch_offset >= leader_end {
            state.last_caught_up_timestamp = state.last_caught_up_timestamp.max(now_ms);
        } else if state.last_fetch_leader_end > 0 && fetch_offset >= state.last_fetch_leader_end {
            state.last_caught_up_timestamp = state
                .last_caught_up_timestamp
                .max(state.last_fetch_timestamp);
        }
        state.last_fetch_leader_end = leader_end;
        state.last_fetch_timestamp = state.last_fetch_timestamp.max(now_ms);
        state.log_end_offset = fetch_offset;
    }

    /// The observers of the leadership of `epoch` at `now_ms`, by replica id, without the
    /// inactive ones and without `voters` (a node that became a voter is one no more).
    pub fn list(&mut self, epoch: i32, now_ms: i64, voters: &[i32]) -> Vec<ObserverState> {
        self.start_epoch(epoch);
        self.states.retain(|(id, _), state| {
            now_ms - state.last_fetch_timestamp < OBSERVER_SESSION_TIMEOUT_MS
                && !voters.contains(id)
        });
        self.states.values().copied().collect()
    }

    /// Forgets the states of an older leadership.
    fn start_epoch(&mut self, epoch: i32) {
        if epoch != self.epoch {
            self.states.clear();
            self.epoch = epoch;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caught_up_times_follow_kafkas_rule() {
        let mut observers = Observers::default();
        let dir = Uuid::nil();
        // Behind at the first fetch: never caught up yet.
        observers.record_fetch(3, 4, dir, 5, 10, 1_000);
        let [state] = observers.list(3, 1_000, &[1, 2, 3])[..] else {
            panic!("one observer");
        };
        assert_eq!(
            (state.log_end_offset, state.last_fetch_timestamp),
            (5, 1_000)
        );
        assert_eq!(state.last_caught_up_timestamp, -1);
        // Reaches the end the leader had at the previous fetch (the leader moved on):
        // caught up as of that previous fetch.
        observers.record_fetch(3, 4, dir, 10, 12, 2_000);
        assert_eq!(
            observers.list(3, 2_000, &[])[0].last_caught_up_timestamp,
            1_000
        );
        // At the leader's end: caught up now.
        observers.record_fetch(3, 4, dir, 12, 12, 3_000);
        let state = observers.list(3, 3_000, &[])[0];
        assert_eq!(state.last_caught_up_timestamp, 3_000);
        assert_eq!(state.last_fetch_timestamp, 3_000);
    }

    #[test]
    fn non_replicas_voters_old_epochs_and_idle_observers_are_not_listed() {
        let mut observers = Observers::default();
        let dir = Uuid::from_u128(7);
        observers.record_fetch(1, -1, Uuid::nil(), 0, 0, 0);
        observers.record_fetch(1, 5, dir, 0, 0, 0);
        observers.record_fetch(1, 6, Uuid::nil(), 0, 0, 100_000);
        assert_eq!(observers.list(1, 100_000, &[]).len(), 2);
        // Node 5 became a voter.
        let listed = observers.list(1, 100_000, &[5]);
        assert_eq!(listed.iter().map(|s| s.replica_id).collect::<Vec<_>>(), [6]);
        // Five minutes without a fetch.
        assert!(
            observers
                .list(1, 100_000 + OBSERVER_SESSION_TIMEOUT_MS, &[])
                .is_empty()
        );
        // A new leadership starts without observers.
        observers.record_fetch(1, 6, Uuid::nil(), 0, 0, 0);
        assert!(observers.list(2, 0, &[]).is_empty());
    }
}
