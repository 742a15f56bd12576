//! A classic group's committed offsets: commit validation, retention expiry (Kafka's
//! `OffsetMetadataManager.cleanupExpiredOffsets` with the classic group's
//! `offsetExpirationCondition`), OffsetDelete, topic deletion and the group's own deletion.

use super::*;

impl ClassicGroup {
    // ----- offsets -----

    /// Kafka's `validateOffsetCommit` for a non-transactional commit.
    pub fn validate_offset_commit(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), i16> {
        if self.state == GroupState::Dead {
            return Err(COORDINATOR_NOT_AVAILABLE);
        }
        if generation_id < 0 && self.state == GroupState::Empty {
            return Ok(());
        }
        if generation_id >= 0 || !member_id.is_empty() || instance_id.is_some() {
            self.validate_member(member_id, instance_id)?;
            if generation_id != self.generation_id {
                return Err(ILLEGAL_GENERATION);
            }
        } else if self.state != GroupState::Empty {
            return Err(UNKNOWN_MEMBER_ID);
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(REBALANCE_IN_PROGRESS);
        }
        Ok(())
    }

    /// An offset commit keeps the committing member's session alive (Stable and
    /// PreparingRebalance).
    pub fn on_offset_commit(&mut self, member_id: &str) {
        if matches!(
            self.state,
            GroupState::Stable | GroupState::PreparingRebalance
        ) {
            self.reschedule_member_heartbeat(member_id);
        }
    }

    /// Queues offset records and their application once written.
    pub fn commit(&mut self, offsets: Vec<(String, i32, OffsetAndMetadata)>) {
        if offsets.is_empty() {
            return;
        }
        for (topic, partition, value) in &offsets {
            self.effects.records.push(Record::Offset {
                topic: topic.clone(),
                partition: *partition,
                value: Some(value.clone()),
            });
        }
        self.effects.after_append = Some(AfterAppend::Commit(offsets));
    }

    /// The committed offset of a partition.
    pub fn offset(&self, topic: &str, partition: i32) -> Option<&OffsetAndMetadata> {
        self.offsets.get(topic)?.get(&partition)
    }

    /// Removes a committed offset.
    pub fn remove_offset(&mut self, topic: &str, partition: i32) {
        if let Some(partitions) = self.offsets.get_mut(topic) {
            partitions.remove(&partition);
            if partitions.is_empty() {
                self.offsets.remove(topic);
            }
        }
    }

    /// The topics the members subscribe to, when the group uses the consumer protocol and
    /// every subscription parses (Kafka's `computeSubscribedTopics`).
    pub(super) fn subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if self.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) {
            return None;
        }
        if self.members.is_empty() {
            return Some(BTreeSet::new());
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for member in self.members.values() {
            let metadata = member.metadata(Some(protocol));
            if metadata.len() < 2 {
                return None;
            }
            // An int16 version, then the subscription; version 0 is the prefix of every
            // version.
            let subscription =
                ConsumerProtocolSubscription::decode(&mut metadata.slice(2..), 0).ok()?;
            topics.extend(subscription.topics.iter().map(|t| t.to_string()));
        }
        Some(topics)
    }

    /// Queues tombstones for the offsets that expired (Kafka's `cleanupExpiredOffsets`);
    /// true when the group has no offsets left once they are gone.
    pub fn expire_offsets(&mut self, now_ms: i64, retention_ms: i64) -> bool {
        let uses_consumer = self.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE);
        let subscribed = self.subscribed_topics();
        // The base timestamp of the retention period, or no expiration at all.
        let base: Option<BaseTimestamp> = match &self.protocol_type {
            Some(_) if self.state == GroupState::Empty => {
                let state_ts = self.state_timestamp;
                Some(Box::new(move |o: &OffsetAndMetadata| {
                    state_ts.unwrap_or(o.commit_timestamp_ms)
                }))
            }
            Some(_)
                if uses_consumer && subscribed.is_some() && self.state == GroupState::Stable =>
            {
                Some(Box::new(|o: &OffsetAndMetadata| o.commit_timestamp_ms))
            }
            Some(_) => None,
            None => Some(Box::new(|o: &OffsetAndMetadata| o.commit_timestamp_ms)),
        };
        // A consumer group (KIP-848): the offsets of topics it subscribes to stay, the
        // others expire from their commit time (Kafka's `ConsumerGroup`
        // `offsetExpirationCondition` and `isSubscribedToTopic`).
        let (uses_consumer, subscribed, base) = match self.consumer.as_deref() {
            Some(consumer) => (
                true,
                Some(consumer.subscribed_topics()),
                Some(Box::new(|o: &OffsetAndMetadata| o.commit_timestamp_ms) as BaseTimestamp),
            ),
            None => (uses_consumer, subscribed, base),
        };
        let Some(base) = base else {
            return self.offsets.is_empty();
        };
        let mut expired = Vec::new();
        let mut all_expired = true;
        for (topic, partitions) in &self.offsets {
            let is_subscribed = subscribed
                .as_ref()
                .map_or(uses_consumer, |s| s.contains(topic));
            if is_subscribed {
                all_expired = false;
                continue;
            }
            for (partition, offset) in partitions {
                let is_expired = match offset.expire_timestamp_ms {
                    Some(expire) => now_ms >= expire,
                    None => now_ms - base(offset) >= retention_ms,
                };
                if is_expired {
                    expired.push((topic.clone(), *partition));
                } else {
                    all_expired = false;
                }
            }
        }
        if !expired.is_empty() {
            tracing::info!(
                group = %self.group_id,
                "expiring {} committed offsets",
                expired.len()
            );
            self.queue_offset_tombstones(expired);
        }
        all_expired
    }

    /// Queues a tombstone for each of `partitions`' committed offsets and their removal
    /// from the group once the tombstones are written; false if there are none.
    pub(super) fn queue_offset_tombstones(&mut self, partitions: Vec<(String, i32)>) -> bool {
        if partitions.is_empty() {
            return false;
        }
        for (topic, partition) in &partitions {
            self.effects.records.push(Record::Offset {
                topic: topic.clone(),
                partition: *partition,
                value: None,
            });
        }
        self.effects.after_append = Some(AfterAppend::Expire(partitions));
        true
    }

    /// Queues tombstones for the offsets of deleted topics (Kafka's `onTopicsDeleted`);
    /// false if the group has none.
    pub fn delete_topic_offsets(&mut self, topics: &[String]) -> bool {
        let deleted: Vec<(String, i32)> = topics
            .iter()
            .filter_map(|topic| Some((topic, self.offsets.get(topic)?)))
            .flat_map(|(topic, partitions)| partitions.keys().map(|p| (topic.clone(), *p)))
            .collect();
        self.queue_offset_tombstones(deleted)
    }

    /// Kafka's `ClassicGroup.validateOffsetDelete`: a dead group is `GROUP_ID_NOT_FOUND`; a
    /// group with members that does not use the consumer protocol is `NON_EMPTY_GROUP`
    /// (its coordinator cannot tell which topics it uses).
    pub fn validate_offset_delete(&self) -> Result<(), i16> {
        match self.state {
            GroupState::Dead => Err(GROUP_ID_NOT_FOUND),
            GroupState::Stable
            | GroupState::PreparingRebalance
            | GroupState::CompletingRebalance
                if self.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) =>
            {
                Err(NON_EMPTY_GROUP)
            }
            _ => Ok(()),
        }
    }

    /// Kafka's `ClassicGroup.isSubscribedToTopic`: whether a member's consumer-protocol
    /// subscription names `topic`. When the subscriptions are not known (not parsed, or no
    /// protocol chosen yet) a consumer-protocol group counts as subscribed to everything,
    /// any other group to nothing.
    ///
    /// Kafka caches the subscriptions when a generation starts; this reads the members'
    /// current metadata for the selected protocol, which is the same between rebalances.
    pub fn is_subscribed_to_topic(&self, topic: &str) -> bool {
        if let Some(consumer) = self.consumer.as_deref() {
            return consumer.is_subscribed_to_topic(topic);
        }
        match self.subscribed_topics() {
            Some(topics) => topics.contains(topic),
            None => self.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE),
        }
    }

    /// Queues tombstones for the committed offsets among `partitions` (the others have
    /// nothing to delete) and their removal once written; false if there are none.
    pub fn delete_offsets(&mut self, partitions: &[(String, i32)]) -> bool {
        let deleted: Vec<(String, i32)> = partitions
            .iter()
            .filter(|(topic, partition)| self.offset(topic, *partition).is_some())
            .cloned()
            .collect();
        self.queue_offset_tombstones(deleted)
    }

    /// Kafka's `validateDeleteGroup`.
    pub fn validate_delete(&self) -> Result<(), i16> {
        if self.consumer.as_ref().is_some_and(|c| !c.is_empty()) {
            return Err(NON_EMPTY_GROUP);
        }
        match self.state {
            GroupState::Dead => Err(GROUP_ID_NOT_FOUND),
            GroupState::Stable
            | GroupState::PreparingRebalance
            | GroupState::CompletingRebalance => Err(NON_EMPTY_GROUP),
            GroupState::Empty => Ok(()),
        }
    }

    /// The tombstones that delete the group: every offset, then the group.
    pub fn deletion_records(&self) -> Vec<Record> {
        let mut records: Vec<Record> = self
            .offsets
            .iter()
            .flat_map(|(topic, partitions)| {
                partitions.keys().map(move |partition| Record::Offset {
                    topic: topic.clone(),
                    partition: *partition,
                    value: None,
                })
            })
            .collect();
        match &self.consumer {
            Some(_) => records.extend(
                crate::groups::consumer::records::group_tombstones(&self.group_id)
                    .into_iter()
                    .map(|r| Record::Consumer(Box::new(r))),
            ),
            None => records.push(Record::GroupTombstone),
        }
        records
    }
}
