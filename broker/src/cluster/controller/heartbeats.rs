//! The controller's in-memory view of broker sessions, as Kafka's `BrokerHeartbeatManager`:
//! when each registered broker last heartbeated, the metadata offset it reported, and the
//! offset at which it entered controlled shutdown. None of this is in the metadata log: a
//! controller that starts (or becomes active) gives every registered broker a fresh session,
//! so a broker that was unfenced in the log and never heartbeats again is fenced one session
//! timeout after the start.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One broker's session (Kafka's `BrokerHeartbeatState`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// When the controller last heard from the broker.
    pub last_contact: Instant,
    /// The metadata offset the broker last reported (-1 before its first heartbeat).
    pub metadata_offset: i64,
    /// The log offset at which the broker entered controlled shutdown, -1 if it has not.
    pub controlled_shutdown_offset: i64,
    /// Whether the broker is fenced, as far as the session goes.
    pub fenced: bool,
}

impl Session {
    /// Whether the broker is in controlled shutdown.
    pub fn shutting_down(&self) -> bool {
        self.controlled_shutdown_offset >= 0
    }
}

/// A broker's state as Kafka's `BrokerControlState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlState {
    /// Fenced: leads nothing, in no ISR.
    Fenced,
    /// Unfenced and active.
    Unfenced,
    /// Unfenced, moving its leaderships away before it stops.
    ControlledShutdown,
    /// May stop now (fenced).
    ShutdownNow,
}

impl ControlState {
    /// Whether a broker in this state is fenced.
    pub fn fenced(self) -> bool {
        matches!(self, ControlState::Fenced | ControlState::ShutdownNow)
    }

    /// Whether a broker in this state is in controlled shutdown.
    pub fn in_controlled_shutdown(self) -> bool {
        self == ControlState::ControlledShutdown
    }

    /// Whether a broker in this state should finish shutting down.
    pub fn should_shut_down(self) -> bool {
        self == ControlState::ShutdownNow
    }
}

/// What a heartbeat asks for (the parts of `BrokerHeartbeatRequest` that decide the state).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeartbeatAsk {
    /// `current_metadata_offset`.
    pub current_metadata_offset: i64,
    /// `want_fence`.
    pub want_fence: bool,
    /// `want_shut_down`.
    pub want_shut_down: bool,
}

/// Every registered broker's session (Kafka's `BrokerHeartbeatManager`).
#[derive(Clone, Debug)]
pub struct Heartbeats {
    session_timeout: Duration,
    sessions: BTreeMap<i32, Session>,
    /// The offset of each broker's latest `RegisterBrokerRecord` written by this controller
    /// (Kafka's `registerBrokerRecordOffsets`); a broker registered before the start has its
    /// broker epoch there, the offset of the record that began its incarnation.
    registration_offsets: BTreeMap<i32, i64>,
    /// The quorum epoch these sessions were made for (`None` on a single node, where
    /// there is one controller for the life of the process). A controller that was active
    /// in an earlier epoch must not act on what it knew then: in between, the brokers'
    /// heartbeats went to another controller.
    epoch: Option<i32>,
}

impl Heartbeats {
    /// No sessions; `session_timeout` is `broker.session.timeout.ms`.
    pub fn new(session_timeout: Duration) -> Heartbeats {
        Heartbeats {
            session_timeout,
            sessions: BTreeMap::new(),
            registration_offsets: BTreeMap::new(),
            epoch: None,
        }
    }

    /// No sessions, made for quorum epoch `epoch` (see [`Heartbeats::epoch`]).
    pub fn for_epoch(session_timeout: Duration, epoch: i32) -> Heartbeats {
        Heartbeats {
            epoch: Some(epoch),
            ..Heartbeats::new(session_timeout)
        }
    }

    /// The quorum epoch in which the active controller made these sessions, `None` if
    /// they were not made by an activation (a single node's, or a cluster controller's
    /// before its first activation).
    pub fn epoch(&self) -> Option<i32> {
        self.epoch
    }

    /// The offset of the latest `RegisterBrokerRecord` of `broker` this controller wrote.
    pub fn registration_offset(&self, broker: i32) -> Option<i64> {
        self.registration_offsets.get(&broker).copied()
    }

    /// Records that `broker`'s registration record was written at `offset`.
    pub fn set_registration_offset(&mut self, broker: i32, offset: i64) {
        self.registration_offsets.insert(broker, offset);
    }

    /// The session timeout.
    pub fn session_timeout(&self) -> Duration {
        self.session_timeout
    }

    /// The session of `broker`.
    pub fn session(&self, broker: i32) -> Option<&Session> {
        self.sessions.get(&broker)
    }

    /// Kafka's `register`: a session for `broker` (a fresh one, touched now, keeping the
    /// reported offset only when the fencing changes).
    pub fn register(&mut self, broker: i32, fenced: bool, now: Instant) {
        let metadata_offset = match self.sessions.get(&broker) {
            Some(s) if s.fenced != fenced => s.metadata_offset,
            _ => -1,
        };
        let controlled_shutdown_offset = self
            .sessions
            .get(&broker)
            .map_or(-1, |s| s.controlled_shutdown_offset);
        self.sessions.insert(
            broker,
            Session {
                last_contact: now,
                metadata_offset,
                controlled_shutdown_offset,
                fenced,
            },
        );
        self.touch(broker, fenced, metadata_offset, now);
    }

    /// Forgets `broker` (unregistered, or registered again with a new incarnation).
    pub fn remove(&mut self, broker: i32) {
        self.sessions.remove(&broker);
        self.registration_offsets.remove(&broker);
    }

    /// Kafka's `touch`: the broker was heard from now; a fenced broker leaves controlled
    /// shutdown (on its next heartbeat it is told to stop at once).
    pub fn touch(&mut self, broker: i32, fenced: bool, metadata_offset: i64, now: Instant) {
        if let Some(session) = self.sessions.get_mut(&broker) {
            session.last_contact = now;
            session.metadata_offset = metadata_offset;
            session.fenced = fenced;
            if fenced {
                session.controlled_shutdown_offset = -1;
            }
        }
    }

    /// Kafka's `fence`: the session ends (the broker was fenced by the controller).
    pub fn fence(&mut self, broker: i32) {
        if let Some(session) = self.sessions.get_mut(&broker) {
            session.fenced = true;
            session.controlled_shutdown_offset = -1;
        }
    }

    /// Kafka's `maybeUpdateControlledShutdownOffset`: the offset is kept from the first call.
    pub fn enter_controlled_shutdown(&mut self, broker: i32, offset: i64) {
        if let Some(session) = self.sessions.get_mut(&broker)
            && !session.fenced
            && session.controlled_shutdown_offset < 0
        {
            session.controlled_shutdown_offset = offset;
        }
    }

    /// Kafka's `hasValidSession`: registered, unfenced, heard from within the timeout.
    pub fn has_valid_session(&self, broker: i32, now: Instant) -> bool {
        self.sessions.get(&broker).is_some_and(|s| {
            !s.fenced && now.duration_since(s.last_contact) <= self.session_timeout
        })
    }

    /// Kafka's `findOneStaleBroker`: the unfenced broker heard from least recently, if its
    /// session has expired; `exempt` is never stale (this node's own broker).
    pub fn stale_broker(&self, now: Instant, exempt: i32) -> Option<i32> {
        self.sessions
            .iter()
            .filter(|(id, s)| **id != exempt && !s.fenced)
            .min_by_key(|(_, s)| s.last_contact)
            .filter(|(_, s)| now.duration_since(s.last_contact) > self.session_timeout)
            .map(|(id, _)| *id)
    }

    /// When the next session could expire (the oldest unfenced contact plus the timeout).
    pub fn next_expiry(&self, exempt: i32) -> Option<Instant> {
        self.sessions
            .iter()
            .filter(|(id, s)| **id != exempt && !s.fenced)
            .map(|(_, s)| s.last_contact + self.session_timeout)
            .min()
    }

    /// Kafka's `lowestActiveOffset`: the lowest metadata offset of the unfenced brokers not
    /// in controlled shutdown (`i64::MAX` when there are none).
    pub fn lowest_active_offset(&self) -> i64 {
        self.sessions
            .values()
            .filter(|s| !s.fenced && !s.shutting_down())
            .map(|s| s.metadata_offset)
            .min()
            .unwrap_or(i64::MAX)
    }

    /// Kafka's `currentBrokerState`.
    pub fn current_state(&self, broker: i32) -> Option<ControlState> {
        self.sessions.get(&broker).map(|s| {
            if s.shutting_down() {
                ControlState::ControlledShutdown
            } else if s.fenced {
                ControlState::Fenced
            } else {
                ControlState::Unfenced
            }
        })
    }

    /// Kafka's `calculateNextBrokerState`: (current, next) for a heartbeat of `broker`,
    /// whose registration record is at `registration_offset`; `has_leaderships` tells
    /// whether it still leads a partition. `None` for a broker without a session.
    pub fn next_state(
        &self,
        broker: i32,
        ask: HeartbeatAsk,
        registration_offset: i64,
        has_leaderships: impl Fn() -> bool,
    ) -> Option<(ControlState, ControlState)> {
        let session = self.sessions.get(&broker)?;
        let current = self.current_state(broker)?;
        let next = match current {
            ControlState::Fenced => {
                if ask.want_shut_down {
                    ControlState::ShutdownNow
                } else if !ask.want_fence && ask.current_metadata_offset >= registration_offset {
                    // Unfenced once it has replayed its own registration record.
                    ControlState::Unfenced
                } else {
                    ControlState::Fenced
                }
            }
            ControlState::Unfenced => {
                if ask.want_fence {
                    if ask.want_shut_down {
                        ControlState::ShutdownNow
                    } else {
                        ControlState::Fenced
                    }
                } else if ask.want_shut_down {
                    if has_leaderships() {
                        ControlState::ControlledShutdown
                    } else {
                        ControlState::ShutdownNow
                    }
                } else {
                    ControlState::Unfenced
                }
            }
            ControlState::ControlledShutdown => {
                if has_leaderships() {
                    ControlState::ControlledShutdown
                } else if session.controlled_shutdown_offset <= self.lowest_active_offset() {
                    // Every active broker has seen the records that moved its leaderships.
                    ControlState::ShutdownNow
                } else {
                    ControlState::ControlledShutdown
                }
            }
            ControlState::ShutdownNow => ControlState::ShutdownNow,
        };
        Some((current, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(offset: i64, want_fence: bool, want_shut_down: bool) -> HeartbeatAsk {
        HeartbeatAsk {
            current_metadata_offset: offset,
            want_fence,
            want_shut_down,
        }
    }

    #[test]
    fn unfenced_once_caught_up_with_the_registration() {
        let now = Instant::now();
        let mut h = Heartbeats::new(Duration::from_secs(9));
        h.register(2, true, now);
        let next = h.next_state(2, ask(9, false, false), 10, || false);
        assert_eq!(next, Some((ControlState::Fenced, ControlState::Fenced)));
        let next = h.next_state(2, ask(10, false, false), 10, || false);
        assert_eq!(next, Some((ControlState::Fenced, ControlState::Unfenced)));
        let next = h.next_state(2, ask(10, true, false), 10, || false);
        assert_eq!(next, Some((ControlState::Fenced, ControlState::Fenced)));
        assert_eq!(h.next_state(3, ask(10, false, false), 10, || false), None);
    }

    #[test]
    fn sessions_expire_oldest_first_and_the_exempt_never() {
        let start = Instant::now();
        let mut h = Heartbeats::new(Duration::from_secs(9));
        h.register(1, false, start);
        h.register(2, false, start);
        h.register(3, false, start + Duration::from_secs(5));
        assert_eq!(h.stale_broker(start + Duration::from_secs(9), 1), None);
        assert_eq!(h.stale_broker(start + Duration::from_secs(10), 1), Some(2));
        h.fence(2);
        assert_eq!(h.stale_broker(start + Duration::from_secs(10), 1), None);
        assert_eq!(h.stale_broker(start + Duration::from_secs(15), 1), Some(3));
        assert!(!h.has_valid_session(2, start));
        assert!(h.has_valid_session(3, start + Duration::from_secs(14)));
    }

    #[test]
    fn controlled_shutdown_waits_for_leaderships_and_active_offsets() {
        let now = Instant::now();
        let mut h = Heartbeats::new(Duration::from_secs(9));
        h.register(1, false, now);
        h.register(2, false, now);
        h.touch(1, false, 5, now);
        let next = h.next_state(2, ask(5, false, true), 0, || true);
        assert_eq!(
            next,
            Some((ControlState::Unfenced, ControlState::ControlledShutdown))
        );
        h.enter_controlled_shutdown(2, 7);
        h.touch(2, false, 7, now);
        let next = h.next_state(2, ask(7, false, true), 0, || false);
        // Broker 1 has only reached offset 5.
        assert_eq!(
            next,
            Some((
                ControlState::ControlledShutdown,
                ControlState::ControlledShutdown
            ))
        );
        h.touch(1, false, 7, now);
        let next = h.next_state(2, ask(7, false, true), 0, || false);
        assert_eq!(
            next,
            Some((ControlState::ControlledShutdown, ControlState::ShutdownNow))
        );
        let next = h.next_state(1, ask(7, false, true), 0, || false);
        assert_eq!(
            next,
            Some((ControlState::Unfenced, ControlState::ShutdownNow))
        );
    }
}
