//! What a new metadata image changes for this broker's own replicas, against the image
//! before it (Kafka's `TopicsDelta.localChanges` / `TopicDelta.localChanges`): the
//! partitions it now leads, those it now follows, and those it no longer holds. Pure: it
//! compares two images and touches nothing; [`super::publisher`] acts on the answer.
//!
//! Topics are told apart by id, not by name, as Kafka's `TopicsDelta` does: a topic
//! deleted and created again under the same name is a removal of every local partition of
//! the old id and new partitions of the new one.

use uuid::Uuid;

use super::image::{MetadataImage, PartitionImage, TopicImage};
use crate::replication::Leadership;

/// A partition this broker leads in the new image (new to it, or changed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalLeader {
    /// The topic name.
    pub topic: String,
    /// The topic id.
    pub topic_id: Uuid,
    /// The partition index.
    pub partition: i32,
    /// Epochs, ISR and replicas, for [`crate::replication::ReplicaManager::become_leader`].
    pub leadership: Leadership,
}

/// A partition this broker follows in the new image (new to it, or changed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalFollower {
    /// The topic name.
    pub topic: String,
    /// The topic id.
    pub topic_id: Uuid,
    /// The partition index.
    pub partition: i32,
    /// The leader's broker id ([`super::image::NO_LEADER`] when it has none).
    pub leader_id: i32,
    /// The leader epoch.
    pub leader_epoch: i32,
}

/// A partition this broker held a replica of and holds no more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalRemoval {
    /// The topic name.
    pub topic: String,
    /// The id of the topic the replica belonged to.
    pub topic_id: Uuid,
    /// The partition index.
    pub partition: i32,
    /// Whether the topic itself went (deleted, possibly created again with a new id), as
    /// opposed to this broker's replica being reassigned away.
    pub topic_deleted: bool,
    /// Whether this broker led the partition in the old image (coordinators resign it).
    pub was_leader: bool,
    /// The leader epoch in the old image.
    pub leader_epoch: i32,
}

/// Everything [`local_changes`] found, removals first in the order they must be applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalChanges {
    /// Replicas to stop and delete.
    pub removed: Vec<LocalRemoval>,
    /// Partitions to lead.
    pub leaders: Vec<LocalLeader>,
    /// Partitions to follow.
    pub followers: Vec<LocalFollower>,
}

impl LocalChanges {
    /// Whether nothing changed for this broker.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.leaders.is_empty() && self.followers.is_empty()
    }
}

/// The changes to broker `broker_id`'s replicas from `previous` to `next` (pass an empty
/// image as `previous` for the first image: every local partition then gets its role).
///
/// As Kafka's `TopicDelta.localChanges`: a partition whose replicas no longer include this
/// broker, but did, is removed; one it leads or follows is reported when it is new to
/// the broker or its partition epoch changed (every change of a partition's record bumps
/// it: leader, ISR, replicas). Partitions are in (topic, partition) order.
pub fn local_changes(
    previous: &MetadataImage,
    next: &MetadataImage,
    broker_id: i32,
) -> LocalChanges {
    let mut changes = LocalChanges::default();
    // Topics of the old image gone from the new one (by id): every local replica goes.
    let mut gone: Vec<&TopicImage> = previous
        .topics()
        .filter(|t| next.topic_by_id(&t.id).is_none())
        .collect();
    gone.sort_by(|a, b| a.name.cmp(&b.name));
    for topic in gone {
        for (index, partition) in &topic.partitions {
            if partition.replicas.contains(&broker_id) {
                changes
                    .removed
                    .push(removal(topic, *index, partition, true, broker_id));
            }
        }
    }
    let mut topics: Vec<&TopicImage> = next.topics().collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    for topic in topics {
        let before = previous.topic_by_id(&topic.id);
        for (index, partition) in &topic.partitions {
            let old = before.and_then(|t| t.partition(*index));
            if !partition.replicas.contains(&broker_id) {
                if let Some(old) = old.filter(|old| old.replicas.contains(&broker_id)) {
                    changes
                        .removed
                        .push(removal(topic, *index, old, false, broker_id));
                }
                continue;
            }
            if old.is_some_and(|old| {
                old.partition_epoch == partition.partition_epoch
                    && old.replicas.contains(&broker_id)
            }) {
                continue;
            }
            if partition.leader == broker_id {
                changes.leaders.push(LocalLeader {
                    topic: topic.name.clone(),
                    topic_id: topic.id,
                    partition: *index,
                    leadership: Leadership {
                        leader_epoch: partition.leader_epoch,
                        partition_epoch: partition.partition_epoch,
                        isr: partition.isr.clone(),
                        replicas: partition.replicas.clone(),
                    },
                });
            } else {
                changes.followers.push(LocalFollower {
                    topic: topic.name.clone(),
                    topic_id: topic.id,
                    partition: *index,
                    leader_id: partition.leader,
                    leader_epoch: partition.leader_epoch,
                });
            }
        }
    }
    changes
}

fn removal(
    topic: &TopicImage,
    index: i32,
    old: &PartitionImage,
    topic_deleted: bool,
    broker_id: i32,
) -> LocalRemoval {
    LocalRemoval {
        topic: topic.name.clone(),
        topic_id: topic.id,
        partition: index,
        topic_deleted,
        was_leader: old.leader == broker_id,
        leader_epoch: old.leader_epoch,
    }
}
