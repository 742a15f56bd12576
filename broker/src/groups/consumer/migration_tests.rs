//! The online migration between classic and consumer groups.

use bytes::{BufMut, Bytes, BytesMut};
use gregor_protocol::Encodable;
use gregor_protocol::messages::consumer_protocol_subscription::{
    ConsumerProtocolSubscription, TopicPartition as OwnedPartition,
};
use gregor_protocol::messages::group_metadata_value::{GroupMetadataValue, MemberMetadata};

use super::migration::*;
use super::*;
use crate::groups::group::{ClassicGroup, Protocol};

fn settings(policy: MigrationPolicy) -> ConsumerSettings {
    ConsumerSettings {
        session_timeout_ms: 45_000,
        heartbeat_interval_ms: 5_000,
        max_size: 10,
        assignors: vec!["uniform".into(), "range".into()],
        migration: policy,
        classic_max_size: 10,
    }
}

fn topic_id() -> Uuid {
    Uuid::from_bytes([7; 16])
}

/// One topic `t` of four partitions.
struct Topics;

impl TopicSource for Topics {
    fn meta(&self, name: &str) -> Option<TopicMeta> {
        (name == "t").then_some(TopicMeta::without_racks(name, topic_id(), 4))
    }

    fn names(&self) -> Vec<String> {
        vec!["t".into()]
    }
}

fn subscription(owned: &[i32]) -> Bytes {
    let body = ConsumerProtocolSubscription {
        topics: vec!["t".into()],
        owned_partitions: if owned.is_empty() {
            Vec::new()
        } else {
            vec![OwnedPartition {
                topic: "t".into(),
                partitions: owned.to_vec(),
            }]
        },
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    buf.put_i16(1);
    body.encode(&mut buf, 1).unwrap();
    buf.freeze()
}

fn partitions(a: &Assignment) -> Vec<i32> {
    a.get(&topic_id())
        .map(|s| s.iter().copied().collect())
        .unwrap_or_default()
}

fn blob_partitions(bytes: &Bytes) -> Vec<i32> {
    let a = decode_assignment(bytes).unwrap();
    a.assigned_partitions
        .iter()
        .filter(|tp| &*tp.topic == "t")
        .flat_map(|tp| tp.partitions.clone())
        .collect()
}

fn assignment_blob(ps: &[i32]) -> Bytes {
    let a: Assignment = BTreeMap::from([(topic_id(), ps.iter().copied().collect())]);
    encode_assignment(&a, 1, &Topics)
}

/// A stable classic group at generation 3: `a` holds 0-1 and `b` 2-3.
fn classic_group() -> ClassicGroup {
    let member = |id: &str, ps: &[i32]| MemberMetadata {
        member_id: id.into(),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        rebalance_timeout: 30_000,
        session_timeout: 10_000,
        subscription: subscription(&[]),
        assignment: assignment_blob(ps),
        ..Default::default()
    };
    let value = GroupMetadataValue {
        protocol_type: "consumer".into(),
        generation: 3,
        protocol: Some("range".into()),
        leader: Some("a".into()),
        current_state_timestamp: 0,
        members: vec![member("a", &[0, 1]), member("b", &[2, 3])],
        ..Default::default()
    };
    ClassicGroup::from_record("g", &value)
}

fn classic_join(member: &str, owned: &[i32]) -> ClassicJoin {
    ClassicJoin {
        member_id: member.into(),
        instance_id: None,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: vec![Protocol {
            name: "range".into(),
            metadata: subscription(owned),
        }],
        requires_known_member_id: true,
    }
}

fn consumer_join(member: &str) -> HeartbeatRequest {
    HeartbeatRequest {
        member_id: member.into(),
        member_epoch: 0,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(vec!["t".into()]),
        owned: Some(Assignment::new()),
        ..Default::default()
    }
}

#[test]
fn policies() {
    assert!(MigrationPolicy::parse("Bidirectional").upgrade_enabled());
    assert!(MigrationPolicy::parse("bidirectional").downgrade_enabled());
    assert!(!MigrationPolicy::parse("upgrade").downgrade_enabled());
    assert!(!MigrationPolicy::parse("downgrade").upgrade_enabled());
    assert!(!MigrationPolicy::parse("disabled").upgrade_enabled());
    let classic = classic_group();
    assert!(ConsumerGroup::upgrade_allowed(
        &classic,
        &settings(MigrationPolicy::Upgrade)
    ));
    assert!(!ConsumerGroup::upgrade_allowed(
        &classic,
        &settings(MigrationPolicy::Downgrade)
    ));
}

#[test]
fn a_classic_group_is_upgraded_with_its_members_and_assignment() {
    let classic = classic_group();
    let g = ConsumerGroup::from_classic(&classic, &Topics).unwrap();
    assert_eq!((g.epoch, g.assignment_epoch), (3, 3));
    assert_eq!(partitions(&g.members["a"].assignment.assigned), vec![0, 1]);
    assert_eq!(partitions(&g.target["b"]), vec![2, 3]);
    assert_eq!(g.members["a"].assignment.epoch, 3);
    assert_eq!(
        g.members["a"].classic.as_ref().unwrap().session_timeout_ms,
        10_000
    );
    assert_eq!(g.members["a"].subscribed_topic_names, vec!["t".to_string()]);
    assert_eq!(state_name(&g), "Stable");
    // Kafka's order: subscriptions, epoch, targets, assignment epoch, current assignments.
    let kinds: Vec<&str> = g
        .creation_records(0)
        .iter()
        .map(|r| match r.key {
            gregor_protocol::messages::GroupCoordinatorRecordKey::ConsumerGroupMemberMetadata(_) => "member",
            gregor_protocol::messages::GroupCoordinatorRecordKey::ConsumerGroupMetadata(_) => "epoch",
            gregor_protocol::messages::GroupCoordinatorRecordKey::ConsumerGroupTargetAssignmentMember(_) => "target",
            gregor_protocol::messages::GroupCoordinatorRecordKey::ConsumerGroupTargetAssignmentMetadata(_) => "target-epoch",
            gregor_protocol::messages::GroupCoordinatorRecordKey::ConsumerGroupCurrentMemberAssignment(_) => "current",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            "member",
            "member",
            "epoch",
            "target",
            "target",
            "target-epoch",
            "current",
            "current"
        ]
    );
    // The records replay into the same group, classic metadata included.
    let mut replayed = ConsumerGroup::new("g");
    for r in g.creation_records(0) {
        assert!(replayed.replay(&r));
    }
    assert_eq!(replayed.members, g.members);
    // A malformed embedded protocol is refused.
    let mut bad = GroupMetadataValue {
        protocol_type: "consumer".into(),
        generation: 1,
        protocol: Some("range".into()),
        members: vec![MemberMetadata {
            member_id: "x".into(),
            subscription: Bytes::from_static(&[0]),
            ..Default::default()
        }],
        ..Default::default()
    };
    let err =
        ConsumerGroup::from_classic(&ClassicGroup::from_record("g", &bad), &Topics).unwrap_err();
    assert_eq!(err.0, GROUP_ID_NOT_FOUND);
    bad.protocol_type = "connect".into();
    assert!(!ConsumerGroup::upgrade_allowed(
        &ClassicGroup::from_record("g", &bad),
        &settings(MigrationPolicy::Bidirectional)
    ));
}

#[test]
fn classic_members_rejoin_and_share_with_a_consumer_member() {
    let s = settings(MigrationPolicy::Bidirectional);
    let mut g = ConsumerGroup::from_classic(&classic_group(), &Topics).unwrap();
    let mut changes = Changes::default();
    // The consumer-protocol member joins: epoch 4, nothing free yet.
    let c = g
        .heartbeat(&s, consumer_join("c"), &Topics, 0, &mut changes)
        .unwrap();
    assert_eq!(c.member_epoch, 4);
    let c_target = partitions(&g.target["c"]);
    assert!(!c_target.is_empty());
    // a and b heartbeat at generation 3: they must rejoin.
    assert_eq!(
        g.classic_heartbeat("a", None, 3).unwrap().1,
        REBALANCE_IN_PROGRESS
    );
    assert_eq!(
        g.classic_heartbeat("x", None, 3).unwrap_err().0,
        UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        g.classic_heartbeat("a", None, 2).unwrap_err().0,
        ILLEGAL_GENERATION
    );
    // A consumer member is not a classic one.
    assert_eq!(
        g.classic_heartbeat("c", None, 4).unwrap_err().0,
        UNKNOWN_MEMBER_ID
    );
    // They rejoin eagerly (owning nothing): each moves to epoch 4.
    for m in ["a", "b"] {
        let out = g
            .classic_join(&s, classic_join(m, &[]), &Topics, 0, &mut changes)
            .unwrap();
        assert_eq!(
            out,
            ClassicJoinOutcome::Joined {
                member_id: m.into(),
                generation_id: 4,
                protocol_name: "range".into()
            }
        );
        let blob = g
            .classic_sync(m, None, 4, Some("consumer"), Some("range"), &Topics)
            .unwrap();
        assert_eq!(blob_partitions(&blob), partitions(&g.target[m]));
        assert_eq!(
            g.classic_sync(m, None, 4, Some("consumer"), Some("roundrobin"), &Topics)
                .unwrap_err()
                .0,
            INCONSISTENT_GROUP_PROTOCOL
        );
        assert_eq!(g.classic_heartbeat(m, None, 4).unwrap().1, NONE);
    }
    // c now gets what a and b released.
    let c = g
        .heartbeat(
            &s,
            HeartbeatRequest {
                member_id: "c".into(),
                member_epoch: 4,
                rebalance_timeout_ms: -1,
                owned: Some(Assignment::new()),
                ..Default::default()
            },
            &Topics,
            0,
            &mut changes,
        )
        .unwrap();
    assert_eq!(partitions(c.assignment.as_ref().unwrap()), c_target);
    let mut all: Vec<i32> = ["a", "b", "c"]
        .iter()
        .flat_map(|m| partitions(&g.members[*m].assignment.assigned))
        .collect();
    all.sort();
    assert_eq!(all, vec![0, 1, 2, 3]);
    assert_eq!(state_name(&g), "Stable");
    // A new classic member first gets its id (JoinGroup v4+); another protocol type is
    // refused.
    let out = g
        .classic_join(&s, classic_join("", &[]), &Topics, 0, &mut changes)
        .unwrap();
    assert!(matches!(out, ClassicJoinOutcome::MemberIdRequired(ref id) if !id.is_empty()));
    let mut other = classic_join("", &[]);
    other.protocol_type = "connect".into();
    assert_eq!(
        g.classic_join(&s, other, &Topics, 0, &mut changes)
            .unwrap_err()
            .0,
        INCONSISTENT_GROUP_PROTOCOL
    );
    // Commits of classic members check the generation.
    assert_eq!(g.validate_offset_commit("a", 4, 8), Ok(()));
    assert_eq!(g.validate_offset_commit("a", 3, 8), Err(ILLEGAL_GENERATION));
    assert_eq!(
        g.validate_offset_commit("c", 4, 8),
        Err(UNSUPPORTED_VERSION)
    );
}

#[test]
fn the_group_goes_back_to_classic_when_the_last_consumer_member_leaves() {
    let s = settings(MigrationPolicy::Bidirectional);
    let mut g = ConsumerGroup::from_classic(&classic_group(), &Topics).unwrap();
    let mut changes = Changes::default();
    g.heartbeat(&s, consumer_join("c"), &Topics, 0, &mut changes)
        .unwrap();
    assert!(g.downgrade_allowed("c", &s));
    assert!(
        !g.downgrade_allowed("a", &s),
        "c still uses the consumer protocol"
    );
    assert!(!g.downgrade_allowed("c", &settings(MigrationPolicy::Upgrade)));
    let mut small = settings(MigrationPolicy::Bidirectional);
    small.classic_max_size = 1;
    assert!(!g.downgrade_allowed("c", &small));
    let value = g.to_classic("c", &Topics, 0);
    assert_eq!(value.generation, g.epoch);
    assert_eq!(&*value.protocol_type, "consumer");
    assert_eq!(value.protocol.as_deref(), Some("range"));
    let ids: Vec<&str> = value.members.iter().map(|m| &*m.member_id).collect();
    assert_eq!(ids, vec!["a", "b"]);
    for m in &value.members {
        assert_eq!(
            blob_partitions(&m.assignment),
            partitions(&g.target[&*m.member_id])
        );
        assert_eq!(m.session_timeout, 10_000);
    }
    let classic = ClassicGroup::from_record("g", &value);
    assert_eq!(classic.members().count(), 2);
    assert_eq!(classic.protocol_type(), Some("consumer"));
    // The tombstones remove every member's records and the group's.
    let tombstones = g.all_tombstones();
    assert_eq!(tombstones.len(), 3 * 3 + 2);
    assert!(tombstones.iter().all(|r| r.value.is_none()));
    // A classic member leaving only bumps the epoch.
    let epoch = g.epoch;
    let left = g.classic_leave(
        &[("a".into(), None), ("zz".into(), None)],
        &Topics,
        &mut changes,
    );
    assert_eq!(
        left,
        vec![
            ("a".to_string(), NONE),
            ("zz".to_string(), UNKNOWN_MEMBER_ID)
        ]
    );
    assert_eq!(g.epoch, epoch + 1);
    assert!(!g.members.contains_key("a"));
}
