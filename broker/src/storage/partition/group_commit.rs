//! Group commit of a partition's flushes (issue 14): with `flush.messages=1` every acks=-1
//! Produce syncs before it is answered, and concurrent producers to one partition share
//! the `fdatasync`s.
//!
//! A flush that finds a sync in flight which started after its own append was written (the
//! sync's log end offset reaches the flush's) waits for that sync instead of issuing one; a
//! flush whose data no sync in flight covers starts its own at once, alongside the others,
//! so no append waits for a sync that does not cover it (a single lock around the syncs
//! would make it wait for one first). Each sync covers every append written when it
//! started. A failed sync wakes its waiters, which then sync for themselves.

use std::sync::{Condvar, Mutex};

use super::super::unpoison;

/// The syncs in flight of one partition.
#[derive(Debug, Default)]
pub(super) struct GroupCommit {
    state: Mutex<InFlight>,
    done: Condvar,
}

#[derive(Debug, Default)]
struct InFlight {
    /// The largest log end offset a sync in flight covers (or the recovery point).
    covered: i64,
    /// Syncs in flight.
    count: usize,
}

/// What a flush does after [`GroupCommit::join`].
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Turn {
    /// Its data is synced (by another flush).
    Covered,
    /// It syncs, then calls [`GroupCommit::finish`].
    Lead,
}

impl GroupCommit {
    /// For a flush of the appends below `wanted`: waits while a sync in flight covers them,
    /// and registers a sync up to `end()` (at least `wanted`) when none does.
    /// `recovery_point()` is the offset below which everything is synced.
    pub(super) fn join(
        &self,
        wanted: i64,
        recovery_point: impl Fn() -> i64,
        end: impl Fn() -> i64,
    ) -> Turn {
        let mut state = unpoison(self.state.lock());
        loop {
            if recovery_point() >= wanted {
                return Turn::Covered;
            }
            if state.count > 0 && state.covered >= wanted {
                state = unpoison(self.done.wait(state));
                continue;
            }
            state.covered = state.covered.max(end().max(wanted));
            state.count += 1;
            return Turn::Lead;
        }
    }

    /// Ends a sync registered by [`Self::join`] and wakes the flushes waiting for one.
    pub(super) fn finish(&self, synced: bool, recovery_point: i64) {
        let mut state = unpoison(self.state.lock());
        state.count -= 1;
        if !synced || state.count == 0 {
            // A failed sync covers nothing: its waiters sync for themselves (a sync still in
            // flight with a higher end may then be repeated, never skipped).
            state.covered = recovery_point;
        }
        drop(state);
        self.done.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::thread;
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_flush_covered_by_a_sync_in_flight_waits_for_it_and_others_lead() {
        let commit = Arc::new(GroupCommit::default());
        let recovery_point = Arc::new(AtomicI64::new(0));
        let rp = || recovery_point.load(Ordering::Acquire);
        // A sync of everything below 10 is in flight.
        assert_eq!(commit.join(10, rp, || 10), Turn::Lead);
        // A flush of offsets below 20 is not covered by it: it leads at once.
        assert_eq!(commit.join(20, rp, || 20), Turn::Lead);
        // One below 15 is covered by the second sync: it waits for it.
        let waiter = {
            let (commit, recovery_point) = (commit.clone(), recovery_point.clone());
            thread::spawn(move || commit.join(15, || recovery_point.load(Ordering::Acquire), || 25))
        };
        thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "the covered flush waits");
        recovery_point.store(10, Ordering::Release);
        commit.finish(true, 10);
        thread::sleep(Duration::from_millis(50));
        assert!(
            !waiter.is_finished(),
            "the first sync does not cover offset 14"
        );
        recovery_point.store(20, Ordering::Release);
        commit.finish(true, 20);
        assert_eq!(waiter.join().expect("waiter"), Turn::Covered);
    }

    #[test]
    fn waiters_of_a_failed_sync_lead_their_own() {
        let commit = Arc::new(GroupCommit::default());
        let rp = || 0;
        assert_eq!(commit.join(10, rp, || 10), Turn::Lead);
        let waiter = {
            let commit = commit.clone();
            thread::spawn(move || commit.join(5, || 0, || 12))
        };
        thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished());
        commit.finish(false, 0);
        assert_eq!(waiter.join().expect("waiter"), Turn::Lead);
        commit.finish(true, 12);
    }
}
