//! The metadata publisher: the local changes between two images (pure), and images fed
//! through a watch channel into a publisher over a real broker's logs, roles and
//! coordinators.

use gregor_protocol::MetadataRecord;
use gregor_protocol::messages::partition_change_record::PartitionChangeRecord;
use gregor_protocol::messages::partition_record::PartitionRecord;
use gregor_protocol::messages::remove_topic_record::RemoveTopicRecord;
use gregor_protocol::messages::topic_record::TopicRecord;
use uuid::Uuid;

use super::image::MetadataImage;
use super::local_changes::{LocalChanges, LocalFollower, LocalRemoval, local_changes};

const ME: i32 = 1;

fn id(n: u64) -> Uuid {
    Uuid::from_u64_pair(0xfeed, n)
}

fn topic(name: &str, topic_id: Uuid) -> MetadataRecord {
    MetadataRecord::Topic(TopicRecord {
        name: name.to_string().into(),
        topic_id,
        ..Default::default()
    })
}

fn partition(topic_id: Uuid, index: i32, replicas: &[i32], leader: i32) -> MetadataRecord {
    MetadataRecord::Partition(PartitionRecord {
        partition_id: index,
        topic_id,
        replicas: replicas.to_vec(),
        isr: replicas.to_vec(),
        leader,
        leader_epoch: 0,
        partition_epoch: 0,
        ..Default::default()
    })
}

fn change(
    topic_id: Uuid,
    index: i32,
    edit: impl FnOnce(&mut PartitionChangeRecord),
) -> MetadataRecord {
    let mut record = PartitionChangeRecord {
        partition_id: index,
        topic_id,
        leader: super::image::NO_LEADER_CHANGE,
        leader_recovery_state: -1,
        ..Default::default()
    };
    edit(&mut record);
    MetadataRecord::PartitionChange(record)
}

fn remove_topic(topic_id: Uuid) -> MetadataRecord {
    MetadataRecord::RemoveTopic(RemoveTopicRecord {
        topic_id,
        ..Default::default()
    })
}

/// `base` with `records` applied after it.
fn with(base: &MetadataImage, records: &[MetadataRecord]) -> MetadataImage {
    let mut next = base.clone();
    let start = next.last_offset() + 1;
    for (n, record) in records.iter().enumerate() {
        next.apply(start + n as i64, record).expect("apply");
    }
    next
}

fn leaders(changes: &LocalChanges) -> Vec<(&str, i32, i32)> {
    changes
        .leaders
        .iter()
        .map(|l| (l.topic.as_str(), l.partition, l.leadership.leader_epoch))
        .collect()
}

fn followers(changes: &LocalChanges) -> Vec<(&str, i32, i32, i32)> {
    changes
        .followers
        .iter()
        .map(|f| (f.topic.as_str(), f.partition, f.leader_id, f.leader_epoch))
        .collect()
}

#[test]
fn the_first_image_gives_every_local_partition_its_role() {
    let image = with(
        &MetadataImage::empty(),
        &[
            topic("a", id(1)),
            partition(id(1), 0, &[1, 2], 1),
            partition(id(1), 1, &[2, 1], 2),
            partition(id(1), 2, &[2, 3], 2),
            topic("b", id(2)),
            partition(id(2), 0, &[3], 3),
        ],
    );
    let changes = local_changes(&MetadataImage::empty(), &image, ME);
    assert_eq!(leaders(&changes), vec![("a", 0, 0)]);
    assert_eq!(followers(&changes), vec![("a", 1, 2, 0)]);
    assert!(changes.removed.is_empty());
    assert_eq!(changes.leaders[0].leadership.replicas, vec![1, 2]);
    assert_eq!(changes.leaders[0].leadership.isr, vec![1, 2]);
    assert_eq!(changes.leaders[0].topic_id, id(1));
    // The same image again changes nothing.
    assert!(local_changes(&image, &image, ME).is_empty());
}

#[test]
fn a_leader_becomes_a_follower_and_a_follower_a_leader_with_the_epoch_bumped() {
    let before = with(
        &MetadataImage::empty(),
        &[
            topic("a", id(1)),
            partition(id(1), 0, &[1, 2], 1),
            partition(id(1), 1, &[1, 2], 2),
        ],
    );
    let after = with(
        &before,
        &[
            change(id(1), 0, |c| c.leader = 2),
            change(id(1), 1, |c| c.leader = 1),
        ],
    );
    let changes = local_changes(&before, &after, ME);
    assert_eq!(leaders(&changes), vec![("a", 1, 1)]);
    assert_eq!(followers(&changes), vec![("a", 0, 2, 1)]);
    assert!(changes.removed.is_empty());
}

#[test]
fn an_isr_change_is_a_new_leadership_and_other_brokers_changes_are_nothing() {
    let before = with(
        &MetadataImage::empty(),
        &[
            topic("a", id(1)),
            partition(id(1), 0, &[1, 2, 3], 1),
            partition(id(1), 1, &[2, 3], 2),
        ],
    );
    let after = with(
        &before,
        &[
            change(id(1), 0, |c| c.isr = Some(vec![1, 2])),
            change(id(1), 1, |c| c.leader = 3),
        ],
    );
    let changes = local_changes(&before, &after, ME);
    assert_eq!(leaders(&changes), vec![("a", 0, 0)]);
    assert_eq!(changes.leaders[0].leadership.isr, vec![1, 2]);
    assert_eq!(changes.leaders[0].leadership.partition_epoch, 1);
    assert!(changes.followers.is_empty());
    assert!(changes.removed.is_empty());
}

#[test]
fn a_replica_reassigned_away_is_removed_and_one_reassigned_here_is_new() {
    let before = with(
        &MetadataImage::empty(),
        &[
            topic("a", id(1)),
            partition(id(1), 0, &[1, 2], 1),
            partition(id(1), 1, &[2, 3], 2),
        ],
    );
    let after = with(
        &before,
        &[
            change(id(1), 0, |c| {
                c.replicas = Some(vec![2, 3]);
                c.isr = Some(vec![2, 3]);
                c.leader = 2;
            }),
            change(id(1), 1, |c| {
                c.replicas = Some(vec![2, 3, 1]);
            }),
        ],
    );
    let changes = local_changes(&before, &after, ME);
    assert_eq!(
        changes.removed,
        vec![LocalRemoval {
            topic: "a".into(),
            topic_id: id(1),
            partition: 0,
            topic_deleted: false,
            was_leader: true,
            leader_epoch: 0,
        }]
    );
    assert_eq!(
        changes.followers,
        vec![LocalFollower {
            topic: "a".into(),
            topic_id: id(1),
            partition: 1,
            leader_id: 2,
            leader_epoch: 0,
        }]
    );
    assert!(changes.leaders.is_empty());
}

#[test]
fn a_deleted_topic_removes_only_its_local_replicas() {
    let before = with(
        &MetadataImage::empty(),
        &[
            topic("a", id(1)),
            partition(id(1), 0, &[1, 2], 2),
            partition(id(1), 1, &[2, 3], 2),
        ],
    );
    let after = with(&before, &[remove_topic(id(1))]);
    let changes = local_changes(&before, &after, ME);
    assert_eq!(
        changes.removed,
        vec![LocalRemoval {
            topic: "a".into(),
            topic_id: id(1),
            partition: 0,
            topic_deleted: true,
            was_leader: false,
            leader_epoch: 0,
        }]
    );
    assert!(changes.leaders.is_empty() && changes.followers.is_empty());
}

#[test]
fn a_topic_recreated_under_the_same_name_is_a_removal_and_a_new_partition() {
    let before = with(
        &MetadataImage::empty(),
        &[topic("a", id(1)), partition(id(1), 0, &[1], 1)],
    );
    let after = with(
        &before,
        &[
            remove_topic(id(1)),
            topic("a", id(2)),
            partition(id(2), 0, &[1], 1),
        ],
    );
    let changes = local_changes(&before, &after, ME);
    assert_eq!(changes.removed.len(), 1);
    assert_eq!(
        (
            changes.removed[0].topic_id,
            changes.removed[0].topic_deleted
        ),
        (id(1), true)
    );
    assert_eq!(leaders(&changes), vec![("a", 0, 0)]);
    assert_eq!(changes.leaders[0].topic_id, id(2));
}

#[test]
fn added_partitions_are_new_and_the_old_ones_unchanged() {
    let before = with(
        &MetadataImage::empty(),
        &[topic("a", id(1)), partition(id(1), 0, &[1, 2], 1)],
    );
    let after = with(
        &before,
        &[
            partition(id(1), 1, &[2, 1], 2),
            partition(id(1), 2, &[1, 3], 1),
            partition(id(1), 3, &[2, 3], 2),
        ],
    );
    let changes = local_changes(&before, &after, ME);
    assert_eq!(leaders(&changes), vec![("a", 2, 0)]);
    assert_eq!(followers(&changes), vec![("a", 1, 2, 0)]);
    assert!(changes.removed.is_empty());
}

#[test]
fn a_partition_without_a_leader_is_followed_with_no_leader() {
    let before = with(
        &MetadataImage::empty(),
        &[topic("a", id(1)), partition(id(1), 0, &[1, 2], 1)],
    );
    let after = with(&before, &[change(id(1), 0, |c| c.leader = -1)]);
    let changes = local_changes(&before, &after, ME);
    assert_eq!(followers(&changes), vec![("a", 0, -1, 1)]);
}
