//! What a cleaning tracks of transactions while it walks the log in offset order (Kafka's
//! `CleanedTransactionMetadata`): which transactional batches belong to aborted
//! transactions (their records are dropped), and when a transaction marker (control
//! batch) may go.

use std::collections::{BTreeMap, HashMap, HashSet};

use gregor_protocol::records::{BatchHeader, ControlRecordType};

/// One aborted transaction of the log: the input a cleaning gets from the partition's
/// aborted-transaction index (Kafka's `AbortedTxn`, the fields the cleaner needs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AbortedTxn {
    /// The transactional producer.
    pub producer_id: i64,
    /// Offset of the transaction's first record.
    pub first_offset: i64,
    /// Offset of its abort marker.
    pub last_offset: i64,
}

/// Kafka's `CleanedTransactionMetadata`, fed the batches of a cleaning in offset order.
#[derive(Debug, Default)]
pub(crate) struct TransactionMetadata {
    /// Aborted transactions not yet reached, by first offset.
    pending: BTreeMap<(i64, i64), AbortedTxn>,
    /// Producers inside a committed (not aborted) transaction whose data was seen.
    ongoing_committed: HashSet<i64>,
    /// Producers inside an aborted transaction: whether a data batch of it was seen.
    ongoing_aborted: HashMap<i64, bool>,
}

impl TransactionMetadata {
    /// Metadata knowing the aborted transactions `aborted`.
    pub(crate) fn new(aborted: &[AbortedTxn]) -> TransactionMetadata {
        let mut metadata = TransactionMetadata::default();
        for txn in aborted {
            metadata
                .pending
                .insert((txn.first_offset, txn.producer_id), *txn);
        }
        metadata
    }

    /// Kafka's `consumeAbortedTxnsUpTo`: the aborted transactions starting at or before
    /// `offset` become ongoing.
    fn consume_aborted_up_to(&mut self, offset: i64) {
        while let Some((&key, txn)) = self.pending.iter().next() {
            if txn.first_offset > offset {
                break;
            }
            let producer_id = txn.producer_id;
            self.pending.remove(&key);
            self.ongoing_aborted.entry(producer_id).or_insert(false);
        }
    }

    /// Kafka's `onControlBatchRead`: whether the marker batch may be discarded (as far as
    /// transactions go; the delete horizon decides the rest). An abort marker stays while
    /// data of its transaction is still in the log; a commit marker while any of its data
    /// was seen in this pass. `record_type` is the type of the batch's control record.
    pub(crate) fn on_control_batch(
        &mut self,
        header: &BatchHeader,
        record_type: Option<ControlRecordType>,
    ) -> bool {
        self.consume_aborted_up_to(header.last_offset());
        let producer_id = header.producer_id;
        match record_type {
            Some(ControlRecordType::Abort) => match self.ongoing_aborted.remove(&producer_id) {
                // Retain the marker until every batch of the transaction is gone.
                Some(true) => false,
                _ => true,
            },
            Some(ControlRecordType::Commit) => !self.ongoing_committed.remove(&producer_id),
            _ => false,
        }
    }

    /// Kafka's `onBatchRead`: whether a data batch belongs to an aborted transaction (its
    /// records are then discarded).
    pub(crate) fn on_batch(&mut self, header: &BatchHeader) -> bool {
        self.consume_aborted_up_to(header.last_offset());
        if !header.is_transactional() {
            return false;
        }
        match self.ongoing_aborted.get_mut(&header.producer_id) {
            Some(seen) => {
                *seen = true;
                true
            }
            None => {
                self.ongoing_committed.insert(header.producer_id);
                false
            }
        }
    }
}
