//! The consumer-group records of `__consumer_offsets` (types 3-8 of Kafka's
//! group-coordinator records, all at version 0), built from and replayed into a
//! [`ConsumerGroup`](super::ConsumerGroup).
//!
//! Kafka 4.1+ keeps the subscribed topics' metadata as a hash in
//! ConsumerGroupMetadataValue (KIP-1101) and no longer writes
//! ConsumerGroupPartitionMetadata; this does the same (Kafka's XXH3 layout, see
//! [`super::metadata_hash()`]), and ignores PartitionMetadata records when replaying.

use gregor_protocol::messages::consumer_group_current_member_assignment_key::ConsumerGroupCurrentMemberAssignmentKey;
use gregor_protocol::messages::consumer_group_current_member_assignment_value::{
    ConsumerGroupCurrentMemberAssignmentValue, TopicPartitions as CurrentTopicPartitions,
};
use gregor_protocol::messages::consumer_group_member_metadata_key::ConsumerGroupMemberMetadataKey;
use gregor_protocol::messages::consumer_group_member_metadata_value::ConsumerGroupMemberMetadataValue;
use gregor_protocol::messages::consumer_group_metadata_key::ConsumerGroupMetadataKey;
use gregor_protocol::messages::consumer_group_metadata_value::ConsumerGroupMetadataValue;
use gregor_protocol::messages::consumer_group_regular_expression_key::ConsumerGroupRegularExpressionKey;
use gregor_protocol::messages::consumer_group_regular_expression_value::ConsumerGroupRegularExpressionValue;
use gregor_protocol::messages::consumer_group_target_assignment_member_key::ConsumerGroupTargetAssignmentMemberKey;
use gregor_protocol::messages::consumer_group_target_assignment_member_value::{
    ConsumerGroupTargetAssignmentMemberValue, TopicPartition,
};
use gregor_protocol::messages::consumer_group_target_assignment_metadata_key::ConsumerGroupTargetAssignmentMetadataKey;
use gregor_protocol::messages::consumer_group_target_assignment_metadata_value::ConsumerGroupTargetAssignmentMetadataValue;
use gregor_protocol::messages::{GroupCoordinatorRecordKey, GroupCoordinatorRecordValue};

use super::assignor::Assignment;
use super::reconcile::{MemberAssignment, MemberState};
use super::{ConsumerGroup, ConsumerMember};

/// The version every consumer-group value is written at.
pub const VALUE_VERSION: i16 = 0;

/// One consumer-group record: its key and its value (`None`: a tombstone).
#[derive(Clone, Debug, PartialEq)]
pub struct ConsumerRecord {
    /// The key.
    pub key: GroupCoordinatorRecordKey,
    /// The value, `None` for a tombstone.
    pub value: Option<GroupCoordinatorRecordValue>,
}

fn current_partitions(a: &Assignment) -> Vec<CurrentTopicPartitions> {
    a.iter()
        .map(|(topic, ps)| CurrentTopicPartitions {
            topic_id: *topic,
            partitions: ps.iter().copied().collect(),
            ..Default::default()
        })
        .collect()
}

fn from_current(list: &[CurrentTopicPartitions]) -> Assignment {
    let mut a = Assignment::new();
    for tp in list {
        if !tp.partitions.is_empty() {
            a.entry(tp.topic_id)
                .or_default()
                .extend(tp.partitions.iter().copied());
        }
    }
    a
}

/// ConsumerGroupMetadata: the group epoch and the metadata hash.
pub fn epoch(group_id: &str, epoch: i32, metadata_hash: i64) -> ConsumerRecord {
    ConsumerRecord {
        key: GroupCoordinatorRecordKey::ConsumerGroupMetadata(ConsumerGroupMetadataKey {
            group_id: group_id.into(),
        }),
        value: Some(GroupCoordinatorRecordValue::ConsumerGroupMetadata(
            ConsumerGroupMetadataValue {
                epoch,
                metadata_hash,
                ..Default::default()
            },
        )),
    }
}

/// ConsumerGroupMemberMetadata of `member`.
pub fn member(group_id: &str, member: &ConsumerMember) -> ConsumerRecord {
    ConsumerRecord {
        key: member_key(group_id, &member.member_id),
        value: Some(GroupCoordinatorRecordValue::ConsumerGroupMemberMetadata(
            ConsumerGroupMemberMetadataValue {
                instance_id: member.instance_id.as_deref().map(Into::into),
                rack_id: member.rack_id.as_deref().map(Into::into),
                client_id: member.client_id.as_str().into(),
                client_host: member.client_host.as_str().into(),
                subscribed_topic_names: member
                    .subscribed_topic_names
                    .iter()
                    .map(|t| t.as_str().into())
                    .collect(),
                subscribed_topic_regex: member.subscribed_topic_regex.as_deref().map(Into::into),
                rebalance_timeout_ms: member.rebalance_timeout_ms,
                server_assignor: member.server_assignor.as_deref().map(Into::into),
                classic_member_metadata: member
                    .classic
                    .as_ref()
                    .map(super::migration::ClassicMeta::to_record),
                ..Default::default()
            },
        )),
    }
}

fn member_key(group_id: &str, member_id: &str) -> GroupCoordinatorRecordKey {
    GroupCoordinatorRecordKey::ConsumerGroupMemberMetadata(ConsumerGroupMemberMetadataKey {
        group_id: group_id.into(),
        member_id: member_id.into(),
    })
}

fn target_key(group_id: &str, member_id: &str) -> GroupCoordinatorRecordKey {
    GroupCoordinatorRecordKey::ConsumerGroupTargetAssignmentMember(
        ConsumerGroupTargetAssignmentMemberKey {
            group_id: group_id.into(),
            member_id: member_id.into(),
        },
    )
}

fn current_key(group_id: &str, member_id: &str) -> GroupCoordinatorRecordKey {
    GroupCoordinatorRecordKey::ConsumerGroupCurrentMemberAssignment(
        ConsumerGroupCurrentMemberAssignmentKey {
            group_id: group_id.into(),
            member_id: member_id.into(),
        },
    )
}

/// ConsumerGroupTargetAssignmentMember: a member's target assignment.
pub fn target(group_id: &str, member_id: &str, assignment: &Assignment) -> ConsumerRecord {
    ConsumerRecord {
        key: target_key(group_id, member_id),
        value: Some(
            GroupCoordinatorRecordValue::ConsumerGroupTargetAssignmentMember(
                ConsumerGroupTargetAssignmentMemberValue {
                    topic_partitions: assignment
                        .iter()
                        .map(|(topic, ps)| TopicPartition {
                            topic_id: *topic,
                            partitions: ps.iter().copied().collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                },
            ),
        ),
    }
}

/// ConsumerGroupTargetAssignmentMetadata: the epoch of the target assignment.
pub fn target_epoch(group_id: &str, epoch: i32, now_ms: i64) -> ConsumerRecord {
    ConsumerRecord {
        key: GroupCoordinatorRecordKey::ConsumerGroupTargetAssignmentMetadata(
            ConsumerGroupTargetAssignmentMetadataKey {
                group_id: group_id.into(),
            },
        ),
        value: Some(
            GroupCoordinatorRecordValue::ConsumerGroupTargetAssignmentMetadata(
                ConsumerGroupTargetAssignmentMetadataValue {
                    assignment_epoch: epoch,
                    assignment_timestamp: now_ms,
                    ..Default::default()
                },
            ),
        ),
    }
}

/// ConsumerGroupCurrentMemberAssignment: a member's epochs, state and partitions.
pub fn current(group_id: &str, member_id: &str, a: &MemberAssignment) -> ConsumerRecord {
    ConsumerRecord {
        key: current_key(group_id, member_id),
        value: Some(
            GroupCoordinatorRecordValue::ConsumerGroupCurrentMemberAssignment(
                ConsumerGroupCurrentMemberAssignmentValue {
                    member_epoch: a.epoch,
                    previous_member_epoch: a.previous_epoch,
                    state: a.state.value(),
                    assigned_partitions: current_partitions(&a.assigned),
                    partitions_pending_revocation: current_partitions(&a.pending_revocation),
                    ..Default::default()
                },
            ),
        ),
    }
}

/// The tombstones that remove a member, in Kafka's order (`removeMember`): current
/// assignment, target assignment, metadata.
pub fn member_tombstones(group_id: &str, member_id: &str) -> Vec<ConsumerRecord> {
    [
        current_key(group_id, member_id),
        target_key(group_id, member_id),
        member_key(group_id, member_id),
    ]
    .into_iter()
    .map(|key| ConsumerRecord { key, value: None })
    .collect()
}

/// ConsumerGroupRegularExpression: what a regular expression resolved to, at which image
/// offset, when.
pub fn regex(
    group_id: &str,
    regex: &str,
    topics: &std::collections::BTreeSet<String>,
    version: i64,
    now_ms: i64,
) -> ConsumerRecord {
    ConsumerRecord {
        key: regex_key(group_id, regex),
        value: Some(GroupCoordinatorRecordValue::ConsumerGroupRegularExpression(
            ConsumerGroupRegularExpressionValue {
                topics: topics.iter().map(|t| t.as_str().into()).collect(),
                version,
                timestamp: now_ms,
                ..Default::default()
            },
        )),
    }
}

/// The tombstone of a regular expression no member uses any more.
pub fn regex_tombstone(group_id: &str, regex: &str) -> ConsumerRecord {
    ConsumerRecord {
        key: regex_key(group_id, regex),
        value: None,
    }
}

fn regex_key(group_id: &str, regex: &str) -> GroupCoordinatorRecordKey {
    GroupCoordinatorRecordKey::ConsumerGroupRegularExpression(ConsumerGroupRegularExpressionKey {
        group_id: group_id.into(),
        regular_expression: regex.into(),
    })
}

/// The tombstones that delete an empty group (Kafka's `createGroupTombstoneRecords`):
/// target assignment metadata, then group metadata.
pub fn group_tombstones(group_id: &str) -> Vec<ConsumerRecord> {
    [
        GroupCoordinatorRecordKey::ConsumerGroupTargetAssignmentMetadata(
            ConsumerGroupTargetAssignmentMetadataKey {
                group_id: group_id.into(),
            },
        ),
        GroupCoordinatorRecordKey::ConsumerGroupMetadata(ConsumerGroupMetadataKey {
            group_id: group_id.into(),
        }),
    ]
    .into_iter()
    .map(|key| ConsumerRecord { key, value: None })
    .collect()
}

/// The group id of a consumer-group key, `None` for other keys.
pub fn group_of(key: &GroupCoordinatorRecordKey) -> Option<String> {
    use GroupCoordinatorRecordKey as K;
    Some(match key {
        K::ConsumerGroupMetadata(k) => k.group_id.to_string(),
        K::ConsumerGroupPartitionMetadata(k) => k.group_id.to_string(),
        K::ConsumerGroupMemberMetadata(k) => k.group_id.to_string(),
        K::ConsumerGroupTargetAssignmentMetadata(k) => k.group_id.to_string(),
        K::ConsumerGroupTargetAssignmentMember(k) => k.group_id.to_string(),
        K::ConsumerGroupCurrentMemberAssignment(k) => k.group_id.to_string(),
        K::ConsumerGroupRegularExpression(k) => k.group_id.to_string(),
        _ => return None,
    })
}

impl ConsumerGroup {
    /// Applies one replayed record (Kafka's `GroupMetadataManager.replay` for types 3-8);
    /// returns false when the record deletes the group.
    pub fn replay(&mut self, record: &ConsumerRecord) -> bool {
        use GroupCoordinatorRecordKey as K;
        use GroupCoordinatorRecordValue as V;
        match (&record.key, &record.value) {
            (K::ConsumerGroupMetadata(_), Some(V::ConsumerGroupMetadata(v))) => {
                self.epoch = v.epoch;
                self.metadata_hash = v.metadata_hash;
            }
            (K::ConsumerGroupMetadata(_), None) => return false,
            (K::ConsumerGroupMemberMetadata(k), Some(V::ConsumerGroupMemberMetadata(v))) => {
                let m = self
                    .members
                    .entry(k.member_id.to_string())
                    .or_insert_with(|| ConsumerMember::new(&k.member_id));
                m.instance_id = v.instance_id.as_deref().map(str::to_string);
                m.rack_id = v.rack_id.as_deref().map(str::to_string);
                m.client_id = v.client_id.to_string();
                m.client_host = v.client_host.to_string();
                m.subscribed_topic_names = v
                    .subscribed_topic_names
                    .iter()
                    .map(|t| t.to_string())
                    .collect();
                m.subscribed_topic_regex = v.subscribed_topic_regex.as_deref().map(str::to_string);
                m.rebalance_timeout_ms = v.rebalance_timeout_ms;
                m.server_assignor = v.server_assignor.as_deref().map(str::to_string);
                m.classic = v
                    .classic_member_metadata
                    .as_ref()
                    .map(super::migration::ClassicMeta::from_record);
            }
            (K::ConsumerGroupMemberMetadata(k), None) => {
                self.members.remove(&*k.member_id);
            }
            (
                K::ConsumerGroupTargetAssignmentMetadata(_),
                Some(V::ConsumerGroupTargetAssignmentMetadata(v)),
            ) => self.assignment_epoch = v.assignment_epoch,
            (K::ConsumerGroupTargetAssignmentMetadata(_), None) => self.assignment_epoch = 0,
            (
                K::ConsumerGroupTargetAssignmentMember(k),
                Some(V::ConsumerGroupTargetAssignmentMember(v)),
            ) => {
                let mut a = Assignment::new();
                for tp in &v.topic_partitions {
                    if !tp.partitions.is_empty() {
                        a.entry(tp.topic_id)
                            .or_default()
                            .extend(tp.partitions.iter().copied());
                    }
                }
                self.target.insert(k.member_id.to_string(), a);
            }
            (K::ConsumerGroupTargetAssignmentMember(k), None) => {
                self.target.remove(&*k.member_id);
            }
            (
                K::ConsumerGroupCurrentMemberAssignment(k),
                Some(V::ConsumerGroupCurrentMemberAssignment(v)),
            ) => {
                // Kafka's replay creates the member on any of its records.
                let m = self
                    .members
                    .entry(k.member_id.to_string())
                    .or_insert_with(|| ConsumerMember::new(&k.member_id));
                {
                    m.assignment = MemberAssignment {
                        epoch: v.member_epoch,
                        previous_epoch: v.previous_member_epoch,
                        state: MemberState::from_value(v.state),
                        assigned: from_current(&v.assigned_partitions),
                        pending_revocation: from_current(&v.partitions_pending_revocation),
                    };
                }
            }
            (K::ConsumerGroupCurrentMemberAssignment(k), None) => {
                if let Some(m) = self.members.get_mut(&*k.member_id) {
                    m.assignment = MemberAssignment::new();
                }
            }
            (K::ConsumerGroupRegularExpression(k), Some(V::ConsumerGroupRegularExpression(v))) => {
                self.regexes.insert(
                    k.regular_expression.to_string(),
                    v.topics.iter().map(|t| t.to_string()).collect(),
                );
            }
            (K::ConsumerGroupRegularExpression(k), None) => {
                self.regexes.remove(&*k.regular_expression);
            }
            // PartitionMetadata (replaced by the hash) and mismatched pairs.
            _ => {}
        }
        true
    }
}

/// Decodes a consumer-group record (types 3-8) read back from `__consumer_offsets`.
pub fn decode(
    key: &bytes::Bytes,
    value: Option<&bytes::Bytes>,
) -> Result<Option<crate::groups::records::Decoded>, String> {
    let parsed = GroupCoordinatorRecordKey::decode(&mut key.clone()).map_err(|e| e.to_string())?;
    let Some(group) = group_of(&parsed) else {
        return Ok(None);
    };
    let value = match value {
        None => None,
        Some(bytes) => {
            let (value, _) =
                GroupCoordinatorRecordValue::decode(parsed.record_type(), &mut bytes.clone())
                    .map_err(|e| e.to_string())?;
            Some(value)
        }
    };
    Ok(Some(crate::groups::records::Decoded::Consumer {
        group,
        record: Box::new(ConsumerRecord { key: parsed, value }),
    }))
}
