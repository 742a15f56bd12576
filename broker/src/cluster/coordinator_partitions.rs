//! Which partitions of a coordinator's internal topic (`__consumer_offsets`,
//! `__transaction_state`) this broker coordinates. On a single node it coordinates every
//! one; in a cluster only those it leads, from the metadata publisher's
//! `onElection`/`onResignation` (Kafka's `CoordinatorRuntime` scheduling loads and
//! unloads, `TransactionStateManager.loadTransactionsForTxnTopicPartition` /
//! `removeTransactionsForTxnTopicPartition`), the others answered `NOT_COORDINATOR`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use gregor_protocol::error_code;

use crate::replication::{ReplicaManager, Role};
use crate::storage::unpoison;

/// How long a group coordinator's write waits for the ISR (Kafka's
/// `offsets.commit.timeout.ms` default).
pub const OFFSETS_WRITE_TIMEOUT: Duration = Duration::from_millis(5_000);
/// How long a transaction coordinator's write waits for the ISR (Kafka's
/// `TransactionStateManager` appends with `request.timeout.ms`, 30 s by default).
pub const TRANSACTION_WRITE_TIMEOUT: Duration = Duration::from_millis(30_000);

/// Before a coordinator's write to its partition: the coordinators write with
/// `acks=all` (Kafka's `CoordinatorRuntime` and `appendTransactionToLog` append with
/// `requiredAcks = -1`), so a replicated partition refuses it as an `acks=all` produce
/// would (NOT_ENOUGH_REPLICAS under `min.insync.replicas`, NOT_LEADER_OR_FOLLOWER on a
/// follower). A partition without a role (a single node) takes it.
pub fn check_write(replicas: &ReplicaManager, topic: &str, partition: i32) -> Result<(), i16> {
    match replicas.role(topic, partition) {
        None => Ok(()),
        Some(Role::Follower { .. }) => Err(error_code::NOT_LEADER_OR_FOLLOWER),
        Some(Role::Leader(leader)) => leader.check_acks_all(),
    }
}

/// After a coordinator's write ending before `end_offset`: waits until the ISR has it
/// (at most `timeout`), so that what the coordinator answers survives the loss of its
/// broker. Immediate for a partition without a role (a single node).
pub async fn wait_replicated(
    replicas: &ReplicaManager,
    topic: &str,
    partition: i32,
    end_offset: i64,
    timeout: Duration,
) -> Result<(), i16> {
    let Some(leader) = replicas.leader(topic, partition) else {
        return Ok(());
    };
    replicas.after_leader_append(topic, partition);
    match crate::replication::acks::wait_for_isr(&leader, end_offset, timeout).await {
        error_code::NONE => Ok(()),
        code => Err(code),
    }
}

/// The coordinated partitions and the leader epoch each was elected in (see the module
/// docs).
#[derive(Debug, Default)]
pub struct CoordinatorPartitions {
    /// `None`: every partition (single node).
    owned: Mutex<Option<BTreeMap<i32, i32>>>,
}

impl CoordinatorPartitions {
    /// Every partition is coordinated here (the single-node broker).
    pub fn all() -> CoordinatorPartitions {
        CoordinatorPartitions::default()
    }

    /// From now on only elected partitions are (cluster mode, before the first image);
    /// partitions already elected stay.
    pub fn only_elected(&self) {
        unpoison(self.owned.lock()).get_or_insert_with(BTreeMap::new);
    }

    /// Whether `partition` is coordinated here.
    pub fn owns(&self, partition: i32) -> bool {
        unpoison(self.owned.lock())
            .as_ref()
            .is_none_or(|owned| owned.contains_key(&partition))
    }

    /// Kafka's `onElection(partition, epoch)`: true when the partition must be loaded now
    /// (it was not coordinated here); an older epoch than the one held is ignored, the
    /// same or a newer one only recorded.
    pub fn elect(&self, partition: i32, leader_epoch: i32) -> bool {
        let mut owned = unpoison(self.owned.lock());
        let owned = owned.get_or_insert_with(BTreeMap::new);
        match owned.get(&partition) {
            Some(&held) if held >= leader_epoch => false,
            Some(_) => {
                owned.insert(partition, leader_epoch);
                false
            }
            None => {
                owned.insert(partition, leader_epoch);
                true
            }
        }
    }

    /// Kafka's `onResignation(partition, epoch)`: true when the partition was coordinated
    /// here and must be unloaded; a resignation of an epoch older than the one elected in
    /// is ignored (a late notice of an earlier term).
    pub fn resign(&self, partition: i32, leader_epoch: Option<i32>) -> bool {
        let mut owned = unpoison(self.owned.lock());
        let owned = owned.get_or_insert_with(BTreeMap::new);
        match (owned.get(&partition), leader_epoch) {
            (None, _) => false,
            (Some(&held), Some(epoch)) if epoch < held => false,
            (Some(_), _) => {
                owned.remove(&partition);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_node_owns_everything_until_told_otherwise() {
        let owned = CoordinatorPartitions::all();
        assert!(owned.owns(3));
        owned.only_elected();
        assert!(!owned.owns(3));
        assert!(owned.elect(3, 1));
        assert!(owned.owns(3));
        assert!(!owned.elect(3, 1), "already loaded");
        assert!(!owned.resign(3, Some(0)), "an older epoch's resignation");
        assert!(owned.owns(3));
        assert!(owned.resign(3, Some(2)));
        assert!(!owned.owns(3));
        assert!(!owned.resign(3, None), "not held");
    }
}
