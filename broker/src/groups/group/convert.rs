//! The classic side of the online migration (KIP-848): a classic group giving way to the
//! consumer group it is upgraded to, and one rebuilt from a downgraded consumer group.

use gregor_protocol::error_code::REBALANCE_IN_PROGRESS;
use gregor_protocol::messages::group_metadata_value::GroupMetadataValue;

use super::{ClassicGroup, GroupConfig, join_error, sync_error};

impl ClassicGroup {
    /// After an upgrade is written: the waiting JoinGroup and SyncGroup requests are
    /// answered REBALANCE_IN_PROGRESS (Kafka's `convertToConsumerGroup` completes every
    /// future so that the members rejoin, now to the consumer group), the timers stop and
    /// the classic part is emptied; the offsets and the consumer part stay.
    pub fn clear_for_upgrade(&mut self) {
        for m in self.members.values_mut() {
            if let Some(tx) = m.awaiting_join.take() {
                let _ = tx.send(join_error(&m.member_id, REBALANCE_IN_PROGRESS));
            }
            if let Some(tx) = m.awaiting_sync.take() {
                let _ = tx.send(sync_error(REBALANCE_IN_PROGRESS));
            }
        }
        self.cancel_all_timers();
        let mut fresh = ClassicGroup::new(&self.group_id);
        fresh.offsets = std::mem::take(&mut self.offsets);
        fresh.consumer = self.consumer.take();
        *self = fresh;
    }

    /// After a downgrade is written: the group becomes the classic group of `value` (its
    /// GroupMetadata record) with the offsets kept, its members' heartbeats scheduled, and
    /// a rebalance started (Kafka's `convertToClassicGroup` then `prepareRebalance`).
    pub fn adopt_downgrade(&mut self, config: &GroupConfig, value: &GroupMetadataValue) {
        let mut group = ClassicGroup::from_record(&self.group_id, value);
        group.offsets = std::mem::take(&mut self.offsets);
        self.cancel_all_timers();
        *self = group;
        self.schedule_loaded_heartbeats(config);
        if !self.members.is_empty() {
            self.prepare_rebalance(
                config,
                &format!(
                    "Downgrade group {} from consumer to classic.",
                    self.group_id
                ),
            );
        }
    }
}
