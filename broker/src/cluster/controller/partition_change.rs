//! [`PartitionChangeBuilder`]: the `PartitionChangeRecord` that moves a partition to a target
//! ISR and elects its leader, as Kafka's `PartitionChangeBuilder` builds it (without
//! eligible leader replicas, which this controller never enables).
//!
//! Kafka's rules kept here:
//! * the leader stays if it is still a valid leader (in the target ISR and acceptable:
//!   registered, unfenced, not in controlled shutdown); else the first valid replica in
//!   replica order; a PREFERRED election first tries the first replica;
//! * with UNCLEAN election (`unclean.leader.election.enable`), when no ISR member can lead,
//!   the first acceptable replica leads, the ISR becomes that replica alone and the leader
//!   recovery state RECOVERING (data may have been lost);
//! * otherwise no leader (-1, `NO_LEADER`);
//! * an empty target ISR is not written: the last ISR member stays in the ISR (Kafka keeps
//!   it so that it can lead again when it comes back, unless ELR is on);
//! * a change of leader bumps the leader epoch (the image's merge does it); an ISR shrink
//!   does not from `metadata.version` 3.6 (`isLeaderEpochBumpRequiredOnIsrShrink`), which
//!   every level this controller writes is;
//! * a reassignment completes inside any change (Kafka's `completeReassignmentIfNeeded`,
//!   see `reassignment.rs`): once the target ISR, less the replicas being removed,
//!   holds every replica that stays, the removed replicas leave the replica set and the
//!   ISR and the adding/removing lists are cleared; the leader is then elected from the
//!   new replica set (a removed leader hands over);
//! * a new replica set that drops a replica bumps the leader epoch even without a new
//!   leader (`triggerLeaderEpochBumpForReplicaReassignmentIfNeeded`); a changed replica
//!   set carries its directories (a kept replica keeps its own, a new one gets the
//!   broker's default, Kafka's `defaultDir`);
//! * no record at all when nothing changes.

use gregor_protocol::messages::partition_change_record::PartitionChangeRecord;
use uuid::Uuid;

use super::super::image::{
    DIRECTORY_UNASSIGNED, LeaderRecoveryState, NO_LEADER, NO_LEADER_CHANGE, PartitionImage,
};

/// `PartitionChangeRecord` version at the `metadata.version` this controller writes
/// (Kafka's `partitionChangeRecordVersion`: 2 with ELR support, 4.0-IV1 and later).
pub const PARTITION_CHANGE_RECORD_VERSION: i16 = 2;

/// How to elect a leader (Kafka's `PartitionChangeBuilder.Election`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Election {
    /// Prefer the first replica.
    Preferred,
    /// Keep the partition online from the ISR.
    Online,
    /// Keep it online even with a leader from outside the ISR.
    Unclean,
}

/// Builds one partition's change (see the module docs).
pub struct PartitionChangeBuilder<'a> {
    partition: &'a PartitionImage,
    topic_id: Uuid,
    partition_id: i32,
    acceptable: &'a dyn Fn(i32) -> bool,
    election: Election,
    target_isr: Vec<i32>,
    target_leader_recovery_state: LeaderRecoveryState,
    target_replicas: Vec<i32>,
    target_removing: Vec<i32>,
    target_adding: Vec<i32>,
    default_dir: Option<&'a dyn Fn(i32) -> Uuid>,
}

impl<'a> PartitionChangeBuilder<'a> {
    /// A builder for `partition` whose acceptable leaders are those `acceptable` accepts;
    /// the target ISR starts as the current one, the election as ONLINE.
    pub fn new(
        partition: &'a PartitionImage,
        topic_id: Uuid,
        partition_id: i32,
        acceptable: &'a dyn Fn(i32) -> bool,
    ) -> PartitionChangeBuilder<'a> {
        PartitionChangeBuilder {
            partition,
            topic_id,
            partition_id,
            acceptable,
            election: Election::Online,
            target_isr: partition.isr.clone(),
            target_leader_recovery_state: partition.leader_recovery_state,
            target_replicas: partition.replicas.clone(),
            target_removing: partition.removing_replicas.clone(),
            target_adding: partition.adding_replicas.clone(),
            default_dir: None,
        }
    }

    /// Sets the target replica set (a reassignment starting or reverted).
    pub fn target_replicas(mut self, replicas: Vec<i32>) -> Self {
        self.target_replicas = replicas;
        self
    }

    /// Sets the target list of replicas being removed.
    pub fn target_removing(mut self, removing: Vec<i32>) -> Self {
        self.target_removing = removing;
        self
    }

    /// Sets the target list of replicas being added.
    pub fn target_adding(mut self, adding: Vec<i32>) -> Self {
        self.target_adding = adding;
        self
    }

    /// Sets the directory of a replica new to the partition (Kafka's `defaultDir`); without
    /// it a new replica's directory is `UNASSIGNED`.
    pub fn default_dir(mut self, default_dir: &'a dyn Fn(i32) -> Uuid) -> Self {
        self.default_dir = Some(default_dir);
        self
    }

    /// Sets the election type.
    pub fn election(mut self, election: Election) -> Self {
        self.election = election;
        self
    }

    /// Sets the target ISR.
    pub fn target_isr(mut self, isr: Vec<i32>) -> Self {
        self.target_isr = isr;
        self
    }

    /// Sets the target leader recovery state (AlterPartition).
    pub fn target_leader_recovery_state(mut self, state: LeaderRecoveryState) -> Self {
        self.target_leader_recovery_state = state;
        self
    }

    fn is_valid_new_leader(&self, replica: i32) -> bool {
        self.target_isr.contains(&replica) && (self.acceptable)(replica)
    }

    /// Kafka's `electLeader`: the leader and whether the election was unclean.
    fn elect_leader(&self) -> (i32, bool) {
        let replicas = &self.target_replicas;
        if self.election == Election::Preferred {
            if let Some(&preferred) = replicas.first()
                && self.is_valid_new_leader(preferred)
            {
                return (preferred, false);
            }
            if self.is_valid_new_leader(self.partition.leader) {
                return (self.partition.leader, false);
            }
            return replicas
                .iter()
                .skip(1)
                .copied()
                .find(|r| self.is_valid_new_leader(*r))
                .map_or((NO_LEADER, false), |r| (r, false));
        }
        if self.is_valid_new_leader(self.partition.leader) {
            return (self.partition.leader, false);
        }
        if let Some(leader) = replicas
            .iter()
            .copied()
            .find(|r| self.is_valid_new_leader(*r))
        {
            return (leader, false);
        }
        if self.election == Election::Unclean
            && let Some(leader) = replicas.iter().copied().find(|r| (self.acceptable)(*r))
        {
            return (leader, true);
        }
        (NO_LEADER, false)
    }

    /// Kafka's `completeReassignmentIfNeeded` (`PartitionReassignmentReplicas
    /// .maybeCompleteReassignment`): when the target ISR, without the replicas being
    /// removed, is not empty and holds every remaining replica, the reassignment is done.
    fn complete_reassignment_if_needed(&mut self) {
        if self.target_removing.is_empty() && self.target_adding.is_empty() {
            return;
        }
        let removing = &self.target_removing;
        let isr: Vec<i32> = self
            .target_isr
            .iter()
            .copied()
            .filter(|r| !removing.contains(r))
            .collect();
        let replicas: Vec<i32> = self
            .target_replicas
            .iter()
            .copied()
            .filter(|r| !removing.contains(r))
            .collect();
        if isr.is_empty() || replicas.is_empty() || !replicas.iter().all(|r| isr.contains(r)) {
            return;
        }
        self.target_isr = isr;
        self.target_replicas = replicas;
        self.target_removing = Vec::new();
        self.target_adding = Vec::new();
    }

    /// The replica set, directories and reassignment lists of the record (Kafka's
    /// `setAssignmentChanges`).
    fn set_assignment_changes(&self, record: &mut PartitionChangeRecord) {
        if !self.target_replicas.is_empty() && self.target_replicas != self.partition.replicas {
            let directories: Vec<Uuid> = self
                .target_replicas
                .iter()
                .map(|replica| {
                    let kept = self
                        .partition
                        .replicas
                        .iter()
                        .position(|r| r == replica)
                        .and_then(|i| self.partition.directories.get(i).copied());
                    kept.unwrap_or_else(|| {
                        self.default_dir
                            .map_or(DIRECTORY_UNASSIGNED, |default_dir| default_dir(*replica))
                    })
                })
                .collect();
            if directories != self.partition.directories {
                record.directories = Some(directories);
            }
            record.replicas = Some(self.target_replicas.clone());
        }
        if self.target_removing != self.partition.removing_replicas {
            record.removing_replicas = Some(self.target_removing.clone());
        }
        if self.target_adding != self.partition.adding_replicas {
            record.adding_replicas = Some(self.target_adding.clone());
        }
    }

    /// The change, or `None` when nothing changes.
    pub fn build(mut self) -> Option<PartitionChangeRecord> {
        self.complete_reassignment_if_needed();
        let mut record = PartitionChangeRecord {
            partition_id: self.partition_id,
            topic_id: self.topic_id,
            isr: None,
            leader: NO_LEADER_CHANGE,
            replicas: None,
            removing_replicas: None,
            adding_replicas: None,
            leader_recovery_state: -1,
            directories: None,
            eligible_leader_replicas: None,
            last_known_elr: None,
            ..Default::default()
        };
        let (leader, unclean) = self.elect_leader();
        if leader != self.partition.leader {
            record.leader = leader;
            if unclean {
                tracing::info!(
                    topic_id = %self.topic_id,
                    partition = self.partition_id,
                    leader,
                    "unclean leader election"
                );
                record.isr = Some(vec![leader]);
                if self.partition.leader_recovery_state != LeaderRecoveryState::Recovering {
                    record.leader_recovery_state = LeaderRecoveryState::Recovering.as_i8();
                }
            }
        }
        // Kafka's `triggerLeaderEpochBumpForReplicaReassignmentIfNeeded`: a replica set
        // losing a member gets a new leader epoch, so that the replica leaving is fenced.
        if record.leader == NO_LEADER_CHANGE
            && !self
                .partition
                .replicas
                .iter()
                .all(|r| self.target_replicas.contains(r))
        {
            record.leader = self.partition.leader;
        }
        if record.isr.is_none()
            && !self.target_isr.is_empty()
            && self.target_isr != self.partition.isr
        {
            record.isr = Some(self.target_isr.clone());
        }
        self.set_assignment_changes(&mut record);
        if self.target_leader_recovery_state != self.partition.leader_recovery_state {
            record.leader_recovery_state = self.target_leader_recovery_state.as_i8();
        }
        let no_op = record.isr.is_none()
            && record.leader == NO_LEADER_CHANGE
            && record.leader_recovery_state == -1
            && record.replicas.is_none()
            && record.removing_replicas.is_none()
            && record.adding_replicas.is_none()
            && record.directories.is_none();
        (!no_op).then_some(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(replicas: &[i32], isr: &[i32], leader: i32) -> PartitionImage {
        PartitionImage {
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            removing_replicas: Vec::new(),
            adding_replicas: Vec::new(),
            leader,
            leader_recovery_state: LeaderRecoveryState::Recovered,
            leader_epoch: 3,
            partition_epoch: 5,
            directories: Vec::new(),
            eligible_leader_replicas: Vec::new(),
            last_known_elr: Vec::new(),
        }
    }

    #[test]
    fn fencing_the_leader_elects_the_next_isr_member() {
        let p = partition(&[2, 1, 3], &[2, 1, 3], 2);
        let alive = |b: i32| b != 2;
        let record = PartitionChangeBuilder::new(&p, Uuid::nil(), 0, &alive)
            .target_isr(vec![1, 3])
            .build()
            .unwrap();
        assert_eq!(record.leader, 1);
        assert_eq!(record.isr, Some(vec![1, 3]));
        let merged = p.merge(&record).unwrap();
        assert_eq!((merged.leader_epoch, merged.partition_epoch), (4, 6));
    }

    #[test]
    fn the_last_isr_member_stays_and_the_partition_goes_offline() {
        let p = partition(&[2, 1], &[2], 2);
        let alive = |b: i32| b != 2;
        let record = PartitionChangeBuilder::new(&p, Uuid::nil(), 0, &alive)
            .target_isr(vec![])
            .build()
            .unwrap();
        assert_eq!((record.leader, record.isr.clone()), (NO_LEADER, None));
        let unclean = PartitionChangeBuilder::new(&p, Uuid::nil(), 0, &alive)
            .target_isr(vec![])
            .election(Election::Unclean)
            .build()
            .unwrap();
        assert_eq!(unclean.leader, 1);
        assert_eq!(unclean.isr, Some(vec![1]));
        assert_eq!(
            unclean.leader_recovery_state,
            LeaderRecoveryState::Recovering.as_i8()
        );
    }

    #[test]
    fn preferred_election_and_no_ops() {
        let p = partition(&[1, 2, 3], &[1, 2, 3], 2);
        let all = |_: i32| true;
        let record = PartitionChangeBuilder::new(&p, Uuid::nil(), 0, &all)
            .election(Election::Preferred)
            .build()
            .unwrap();
        assert_eq!(record.leader, 1);
        assert!(
            PartitionChangeBuilder::new(&p, Uuid::nil(), 0, &all)
                .build()
                .is_none()
        );
        let not_one = |b: i32| b != 1;
        assert!(
            PartitionChangeBuilder::new(&p, Uuid::nil(), 0, &not_one)
                .election(Election::Preferred)
                .build()
                .is_none()
        );
    }
}
