//! Which partitions of a coordinator's internal topic (`__consumer_offsets`,
//! `__transaction_state`) this broker coordinates. On a single node it coordinates every
//! one; in a cluster only those it leads, from the metadata publisher's
//! `onElection`/`onResignation` (Kafka's `CoordinatorRuntime` scheduling loads and
//! unloads, `TransactionStateManager.loadTransactionsForTxnTopicPartition` /
//! `removeTransactionsForTxnTopicPartition`), the others answered `NOT_COORDINATOR`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::storage::unpoison;

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
