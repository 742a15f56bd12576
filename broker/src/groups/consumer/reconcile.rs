//! Reconciliation of a member's current assignment towards its target (Kafka's
//! `CurrentAssignmentBuilder`): partitions are revoked before new ones are given, a
//! partition still held by another member at an older epoch is not given until it is
//! released, and the member's epoch moves to the target epoch only once it has revoked
//! what it had to.

use std::collections::{BTreeMap, BTreeSet};

use gregor_protocol::Uuid;

use super::assignor::Assignment;

/// A member's reconciliation state (Kafka's `MemberState`, with its record values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberState {
    /// Reconciled to its epoch.
    Stable,
    /// Waiting for the member to revoke partitions.
    UnrevokedPartitions,
    /// Waiting for partitions other members still hold.
    UnreleasedPartitions,
    /// A state this broker does not know (from a newer coordinator's record).
    Unknown,
}

impl MemberState {
    /// The value in ConsumerGroupCurrentMemberAssignmentValue.State.
    pub fn value(self) -> i8 {
        match self {
            MemberState::Stable => 0,
            MemberState::UnrevokedPartitions => 1,
            MemberState::UnreleasedPartitions => 2,
            MemberState::Unknown => 127,
        }
    }

    /// The state of a record value.
    pub fn from_value(value: i8) -> MemberState {
        match value {
            0 => MemberState::Stable,
            1 => MemberState::UnrevokedPartitions,
            2 => MemberState::UnreleasedPartitions,
            _ => MemberState::Unknown,
        }
    }
}

/// The assignment side of a member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberAssignment {
    /// Epoch of the member.
    pub epoch: i32,
    /// The epoch before the last bump.
    pub previous_epoch: i32,
    /// State.
    pub state: MemberState,
    /// Partitions the member holds (or is given).
    pub assigned: Assignment,
    /// Partitions the member must give up.
    pub pending_revocation: Assignment,
}

impl MemberAssignment {
    /// A new member's: epoch 0, nothing assigned.
    pub fn new() -> MemberAssignment {
        MemberAssignment {
            epoch: 0,
            previous_epoch: 0,
            state: MemberState::Stable,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
        }
    }

    /// Kafka's `isReconciledTo`: stable at `epoch`.
    pub fn is_reconciled_to(&self, epoch: i32) -> bool {
        self.state == MemberState::Stable && self.epoch == epoch
    }

    fn with_epoch(&self, epoch: i32) -> (i32, i32) {
        // Kafka's `updateMemberEpoch`: the previous epoch follows the current one.
        (epoch, self.epoch)
    }
}

impl Default for MemberAssignment {
    fn default() -> Self {
        MemberAssignment::new()
    }
}

/// The error when the member cannot be reconciled: it must rejoin (FENCED_MEMBER_EPOCH).
#[derive(Debug, PartialEq, Eq)]
pub struct Fenced;

/// Whether the member (owning `owned`, `None` when the heartbeat did not say) still owns
/// any partition of `revoking`. Not knowing counts as owning, as Kafka does.
fn owns_any(owned: Option<&Assignment>, revoking: &Assignment) -> bool {
    let Some(owned) = owned else {
        return true;
    };
    owned.iter().any(|(topic, partitions)| {
        revoking
            .get(topic)
            .is_some_and(|r| partitions.iter().any(|p| r.contains(p)))
    })
}

/// One step of reconciliation. `partition_epoch(topic, partition)` is the epoch of the
/// member currently holding the partition, -1 when none (Kafka's `currentPartitionEpoch`).
pub fn reconcile(
    member: &MemberAssignment,
    target_epoch: i32,
    target: &Assignment,
    owned: Option<&Assignment>,
    partition_epoch: &dyn Fn(&Uuid, i32) -> i32,
) -> Result<MemberAssignment, Fenced> {
    match member.state {
        MemberState::Stable => {
            if member.epoch != target_epoch {
                Ok(next(
                    member,
                    member.epoch,
                    &member.assigned,
                    target_epoch,
                    target,
                    owned,
                    partition_epoch,
                ))
            } else {
                Ok(member.clone())
            }
        }
        MemberState::UnrevokedPartitions => {
            if owns_any(owned, &member.pending_revocation) {
                return Ok(member.clone());
            }
            Ok(next(
                member,
                member.epoch + 1,
                &member.assigned,
                target_epoch,
                target,
                owned,
                partition_epoch,
            ))
        }
        MemberState::UnreleasedPartitions => Ok(next(
            member,
            member.epoch,
            &member.assigned,
            target_epoch,
            target,
            owned,
            partition_epoch,
        )),
        MemberState::Unknown => {
            if owned.is_none_or(|o| !o.is_empty()) {
                return Err(Fenced);
            }
            Ok(next(
                member,
                target_epoch,
                &member.assigned,
                target_epoch,
                target,
                owned,
                partition_epoch,
            ))
        }
    }
}

/// Kafka's `computeNextAssignment`.
fn next(
    member: &MemberAssignment,
    member_epoch: i32,
    current: &Assignment,
    target_epoch: i32,
    target: &Assignment,
    owned: Option<&Assignment>,
    partition_epoch: &dyn Fn(&Uuid, i32) -> i32,
) -> MemberAssignment {
    let mut unreleased = false;
    let mut assigned = Assignment::new();
    let mut revoking = Assignment::new();
    let mut to_assign = Assignment::new();
    let topics: BTreeSet<Uuid> = target.keys().chain(current.keys()).copied().collect();
    let empty = BTreeSet::new();
    for topic in topics {
        let goal = target.get(&topic).unwrap_or(&empty);
        let have = current.get(&topic).unwrap_or(&empty);
        let keep: BTreeSet<i32> = have.intersection(goal).copied().collect();
        let revoke: BTreeSet<i32> = have.difference(&keep).copied().collect();
        let mut give: BTreeSet<i32> = goal.difference(&keep).copied().collect();
        let before = give.len();
        give.retain(|p| partition_epoch(&topic, *p) == -1);
        unreleased |= give.len() != before;
        if !keep.is_empty() {
            assigned.insert(topic, keep);
        }
        if !revoke.is_empty() {
            revoking.insert(topic, revoke);
        }
        if !give.is_empty() {
            to_assign.insert(topic, give);
        }
    }
    let build = |epoch: i32, state: MemberState, assigned: Assignment, pending: Assignment| {
        let (epoch, previous) = member.with_epoch(epoch);
        MemberAssignment {
            epoch,
            previous_epoch: previous,
            state,
            assigned,
            pending_revocation: pending,
        }
    };
    if !revoking.is_empty() && owns_any(owned, &revoking) {
        build(
            member_epoch,
            MemberState::UnrevokedPartitions,
            assigned,
            revoking,
        )
    } else if !to_assign.is_empty() {
        for (topic, partitions) in to_assign {
            assigned.entry(topic).or_default().extend(partitions);
        }
        let state = if unreleased {
            MemberState::UnreleasedPartitions
        } else {
            MemberState::Stable
        };
        build(target_epoch, state, assigned, BTreeMap::new())
    } else if unreleased {
        build(
            target_epoch,
            MemberState::UnreleasedPartitions,
            assigned,
            BTreeMap::new(),
        )
    } else {
        build(target_epoch, MemberState::Stable, assigned, BTreeMap::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Uuid {
        Uuid::from_bytes([7; 16])
    }

    fn a(ps: &[i32]) -> Assignment {
        if ps.is_empty() {
            return Assignment::new();
        }
        BTreeMap::from([(t(), ps.iter().copied().collect())])
    }

    fn free(_: &Uuid, _: i32) -> i32 {
        -1
    }

    fn stable(epoch: i32, ps: &[i32]) -> MemberAssignment {
        MemberAssignment {
            epoch,
            previous_epoch: epoch - 1,
            state: MemberState::Stable,
            assigned: a(ps),
            pending_revocation: Assignment::new(),
        }
    }

    #[test]
    fn new_member_gets_free_partitions_at_the_target_epoch() {
        let m = MemberAssignment::new();
        let next = reconcile(&m, 3, &a(&[0, 1]), Some(&a(&[])), &free).unwrap();
        assert_eq!(next.epoch, 3);
        assert_eq!(next.previous_epoch, 0);
        assert_eq!(next.state, MemberState::Stable);
        assert_eq!(next.assigned, a(&[0, 1]));
    }

    #[test]
    fn revoke_before_assign() {
        let m = stable(2, &[0, 1, 2]);
        // Target: keep 0, give up 1 and 2, gain 3.
        let step = reconcile(&m, 3, &a(&[0, 3]), Some(&a(&[0, 1, 2])), &free).unwrap();
        assert_eq!(step.state, MemberState::UnrevokedPartitions);
        assert_eq!(
            step.epoch, 2,
            "the epoch stays until the revocation is done"
        );
        assert_eq!(step.assigned, a(&[0]));
        assert_eq!(step.pending_revocation, a(&[1, 2]));
        // Still owning 1: no progress.
        let same = reconcile(&step, 3, &a(&[0, 3]), Some(&a(&[0, 1])), &free).unwrap();
        assert_eq!(same, step);
        // Unknown ownership (not sent): no progress either.
        assert_eq!(reconcile(&step, 3, &a(&[0, 3]), None, &free).unwrap(), step);
        // Revoked: the new partition is given and the epoch bumps.
        let done = reconcile(&step, 3, &a(&[0, 3]), Some(&a(&[0])), &free).unwrap();
        assert_eq!(done.state, MemberState::Stable);
        assert_eq!((done.epoch, done.previous_epoch), (3, 2));
        assert_eq!(done.assigned, a(&[0, 3]));
        assert!(done.pending_revocation.is_empty());
    }

    #[test]
    fn partitions_held_elsewhere_wait_until_released() {
        let m = stable(1, &[0]);
        let held = |_: &Uuid, p: i32| if p == 1 { 1 } else { -1 };
        let step = reconcile(&m, 2, &a(&[0, 1, 2]), Some(&a(&[0])), &held).unwrap();
        assert_eq!(step.state, MemberState::UnreleasedPartitions);
        assert_eq!(step.epoch, 2);
        assert_eq!(step.assigned, a(&[0, 2]));
        assert!(!step.is_reconciled_to(2));
        // Released: the member gets it and becomes stable.
        let done = reconcile(&step, 2, &a(&[0, 1, 2]), Some(&a(&[0, 2])), &free).unwrap();
        assert_eq!(done.state, MemberState::Stable);
        assert_eq!(done.assigned, a(&[0, 1, 2]));
        assert!(done.is_reconciled_to(2));
    }

    #[test]
    fn a_member_that_does_not_own_revoked_partitions_moves_on_at_once() {
        let m = stable(4, &[0, 1]);
        let next = reconcile(&m, 5, &a(&[1]), Some(&a(&[1])), &free).unwrap();
        assert_eq!(next.state, MemberState::Stable);
        assert_eq!(next.epoch, 5);
        assert_eq!(next.assigned, a(&[1]));
    }

    #[test]
    fn unknown_state_fences_unless_the_member_owns_nothing() {
        let mut m = stable(4, &[0]);
        m.state = MemberState::Unknown;
        assert_eq!(
            reconcile(&m, 5, &a(&[0]), Some(&a(&[0])), &free),
            Err(Fenced)
        );
        assert_eq!(reconcile(&m, 5, &a(&[0]), None, &free), Err(Fenced));
        let next = reconcile(&m, 5, &a(&[0]), Some(&a(&[])), &free).unwrap();
        assert!(next.is_reconciled_to(5));
    }

    #[test]
    fn state_values_round_trip() {
        for s in [
            MemberState::Stable,
            MemberState::UnrevokedPartitions,
            MemberState::UnreleasedPartitions,
            MemberState::Unknown,
        ] {
            assert_eq!(MemberState::from_value(s.value()), s);
        }
    }
}
