//! KIP-848 on the wire: ConsumerGroupHeartbeat and ConsumerGroupDescribe with the raw
//! client, Kafka's error codes, member epochs in OffsetCommit/OffsetFetch, consumer groups
//! in ListGroups/DescribeGroups, the session timeout, and the records written to
//! `__consumer_offsets`.

use std::time::Duration;

use gregor_protocol::Uuid;
use gregor_protocol::messages::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use gregor_protocol::messages::consumer_group_describe_response::{
    ConsumerGroupDescribeResponse, DescribedGroup,
};
use gregor_protocol::messages::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use gregor_protocol::messages::consumer_group_heartbeat_response::ConsumerGroupHeartbeatResponse;
use gregor_protocol::messages::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use gregor_protocol::messages::offset_fetch_response::OffsetFetchResponse;
use gregor_protocol::messages::{GroupCoordinatorRecordKey, GroupCoordinatorRecordValue};

use crate::support::{DataDir, RawClient, TopicSpec};
use crate::wire::*;

const FENCED_MEMBER_EPOCH: i16 = 110;
const UNSUPPORTED_ASSIGNOR: i16 = 112;
const STALE_MEMBER_EPOCH: i16 = 113;
const GROUP_MAX_SIZE_REACHED: i16 = 81;
const UNSUPPORTED_VERSION: i16 = 35;

fn kip848_fixture() -> DataDir {
    DataDir::builder()
        .topic(TopicSpec::new(TOPIC, PARTITIONS).records(RECORDS))
        .feature("group.version", 1)
        .build()
}

fn joining(group: &str, member: &str) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest {
        group_id: group.into(),
        member_id: member.into(),
        member_epoch: 0,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(vec![TOPIC.into()]),
        topic_partitions: Some(Vec::new()),
        ..Default::default()
    }
}

fn heartbeat_of(group: &str, member: &str, epoch: i32) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest {
        group_id: group.into(),
        member_id: member.into(),
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        ..Default::default()
    }
}

fn beat(
    client: &mut RawClient,
    request: &ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    client
        .call(request, 1)
        .unwrap_or_else(|e| panic!("ConsumerGroupHeartbeat: {e}"))
}

fn cg_describe(client: &mut RawClient, group: &str) -> DescribedGroup {
    let response: ConsumerGroupDescribeResponse = client
        .call(
            &ConsumerGroupDescribeRequest {
                group_ids: vec![group.into()],
                ..Default::default()
            },
            1,
        )
        .unwrap_or_else(|e| panic!("ConsumerGroupDescribe: {e}"));
    response.groups.into_iter().next().unwrap()
}

fn fetch_as_member(
    client: &mut RawClient,
    group: &str,
    member: &str,
    epoch: i32,
) -> OffsetFetchResponse {
    client
        .call(
            &OffsetFetchRequest {
                groups: vec![OffsetFetchRequestGroup {
                    group_id: group.into(),
                    member_id: Some(member.into()),
                    member_epoch: epoch,
                    topics: Some(vec![OffsetFetchRequestTopics {
                        name: TOPIC.into(),
                        partition_indexes: vec![0],
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
                ..Default::default()
            },
            9,
        )
        .unwrap_or_else(|e| panic!("OffsetFetch: {e}"))
}

#[test]
fn heartbeat_errors_epochs_and_offsets_as_kafka_answers() {
    let data = kip848_fixture();
    let broker = start(&data, &[]);
    let mut client = connect(&broker);
    let group = "cg-wire";

    // A heartbeat (epoch > 0) for a group that does not exist.
    let r = beat(&mut client, &heartbeat_of(group, "m1", 1));
    assert_eq!(r.error_code, error::GROUP_ID_NOT_FOUND, "{r:?}");
    // Joining without a rebalance timeout, without a member id (v1), or with an assignor
    // the broker does not have.
    let mut bad = joining(group, "m1");
    bad.rebalance_timeout_ms = -1;
    assert_eq!(beat(&mut client, &bad).error_code, error::INVALID_REQUEST);
    assert_eq!(
        beat(&mut client, &joining(group, "")).error_code,
        error::INVALID_REQUEST
    );
    let mut bad = joining(group, "m1");
    bad.server_assignor = Some("sticky".into());
    let r = beat(&mut client, &bad);
    assert_eq!(r.error_code, UNSUPPORTED_ASSIGNOR, "{r:?}");
    assert!(
        r.error_message
            .as_deref()
            .unwrap()
            .contains("uniform, range"),
        "{r:?}"
    );

    // The first member gets every partition at epoch 1.
    let r = beat(&mut client, &joining(group, "m1"));
    assert_eq!(r.error_code, error::NONE, "{r:?}");
    assert_eq!(r.member_id.as_deref(), Some("m1"));
    assert_eq!(r.member_epoch, 1);
    assert_eq!(r.heartbeat_interval_ms, 5000);
    let topic = topic_id(&mut client, TOPIC);
    let assignment = r.assignment.expect("the assignment of a join");
    assert_eq!(assignment.topic_partitions.len(), 1);
    assert_eq!(assignment.topic_partitions[0].topic_id, topic);
    assert_eq!(assignment.topic_partitions[0].partitions, vec![0, 1, 2]);
    // A steady heartbeat carries no assignment.
    let r = beat(&mut client, &heartbeat_of(group, "m1", 1));
    assert_eq!((r.error_code, r.member_epoch), (error::NONE, 1));
    assert!(r.assignment.is_none());

    // Epochs from the future, unknown members.
    assert_eq!(
        beat(&mut client, &heartbeat_of(group, "m1", 7)).error_code,
        FENCED_MEMBER_EPOCH
    );
    assert_eq!(
        beat(&mut client, &heartbeat_of(group, "m9", 1)).error_code,
        error::UNKNOWN_MEMBER_ID
    );

    // OffsetCommit v9 and OffsetFetch v9 check the member epoch.
    let stale = commit_request(9, group, 0, "m1", TOPIC, Uuid::nil(), &[(0, 5, -1, None)]);
    assert_eq!(commit(&mut client, 9, &stale), vec![STALE_MEMBER_EPOCH]);
    let good = commit_request(9, group, 1, "m1", TOPIC, Uuid::nil(), &[(0, 5, -1, None)]);
    assert_eq!(commit(&mut client, 9, &good), vec![error::NONE]);
    let unknown = commit_request(9, group, 1, "m9", TOPIC, Uuid::nil(), &[(0, 5, -1, None)]);
    assert_eq!(
        commit(&mut client, 9, &unknown),
        vec![error::UNKNOWN_MEMBER_ID]
    );
    assert_eq!(
        fetch_as_member(&mut client, group, "m1", 0).groups[0].error_code,
        STALE_MEMBER_EPOCH
    );
    let fetched = fetch_as_member(&mut client, group, "m1", 1);
    assert_eq!(fetched.groups[0].error_code, error::NONE);
    assert_eq!(
        fetched.groups[0].topics[0].partitions[0].committed_offset,
        5
    );
    assert_eq!(
        committed(&mut client, group)[0],
        5,
        "admins fetch without a member"
    );

    // ListGroups: a consumer group of type "consumer".
    let listed = list(&mut client, 5, &[], &["consumer"]);
    let ours: Vec<_> = listed.iter().filter(|g| &*g.group_id == group).collect();
    assert_eq!(ours.len(), 1, "{listed:?}");
    assert_eq!(
        (&*ours[0].group_type, &*ours[0].group_state),
        ("consumer", "Stable")
    );
    assert_eq!(&*ours[0].protocol_type, "consumer");
    assert!(
        list(&mut client, 5, &[], &["classic"])
            .iter()
            .all(|g| &*g.group_id != group)
    );
    // DescribeGroups knows only classic groups: as for an unknown group.
    let described = describe(&mut client, 5, group);
    assert_eq!(&*described.group_state, "Dead");
    assert_eq!(
        describe(&mut client, 6, group).error_code,
        error::GROUP_ID_NOT_FOUND
    );
    // A classic member of another protocol type cannot join a non-empty consumer group
    // (Kafka's `throwIfClassicProtocolIsNotSupported`); one of the "consumer" type is
    // first asked for its member id (migration_wire.rs goes on from there).
    let mut other = join_request(group, "", protocols(&[("range", b"x")]));
    other.protocol_type = "connect".into();
    assert_eq!(
        join(&mut client, 5, &other).error_code,
        error::INCONSISTENT_GROUP_PROTOCOL
    );
    let classic = join_request(group, "", protocols(&[("range", b"x")]));
    assert_eq!(
        join(&mut client, 5, &classic).error_code,
        error::MEMBER_ID_REQUIRED
    );

    // ConsumerGroupDescribe.
    let d = cg_describe(&mut client, group);
    assert_eq!(d.error_code, error::NONE, "{d:?}");
    assert_eq!(
        (&*d.group_state, d.group_epoch, d.assignment_epoch),
        ("Stable", 1, 1)
    );
    assert_eq!(&*d.assignor_name, "uniform");
    assert_eq!(d.members.len(), 1);
    let m = &d.members[0];
    assert_eq!((&*m.member_id, m.member_epoch, m.member_type), ("m1", 1, 1));
    assert_eq!(&*m.assignment.topic_partitions[0].topic_name, TOPIC);
    assert_eq!(m.assignment, m.target_assignment);
    assert_eq!(
        cg_describe(&mut client, "nope").error_code,
        error::GROUP_ID_NOT_FOUND
    );

    // A second member waits for m1 to revoke; m1 is told what to keep.
    let r = beat(&mut client, &joining(group, "m2"));
    assert_eq!((r.error_code, r.member_epoch), (error::NONE, 2));
    assert!(r.assignment.unwrap().topic_partitions.is_empty());
    assert_eq!(&*cg_describe(&mut client, group).group_state, "Reconciling");
    let r = beat(&mut client, &heartbeat_of(group, "m1", 1));
    assert_eq!(r.member_epoch, 1, "the epoch stays until the revocation");
    let kept = r.assignment.unwrap().topic_partitions[0].partitions.clone();
    assert_eq!(kept.len(), 2, "{kept:?}");

    // Leaving: epoch -1 back, the group epoch bumps.
    let r = beat(&mut client, &heartbeat_of(group, "m1", -1));
    assert_eq!((r.error_code, r.member_epoch), (error::NONE, -1));
    let r = beat(&mut client, &heartbeat_of(group, "m2", 2));
    assert_eq!(r.member_epoch, 3);
    assert_eq!(
        r.assignment.unwrap().topic_partitions[0].partitions,
        vec![0, 1, 2]
    );
    let r = beat(&mut client, &heartbeat_of(group, "m2", -1));
    assert_eq!(r.member_epoch, -1);
    assert_eq!(&*cg_describe(&mut client, group).group_state, "Empty");
    // An empty consumer group gives way to a classic member, offsets kept.
    let (member, _) = join_and_sync(&mut client, group, b"a");
    assert!(!member.is_empty());
    assert_eq!(committed(&mut client, group)[0], 5);
}

#[test]
fn records_max_size_and_session_timeout() {
    let data = kip848_fixture();
    let broker = start(
        &data,
        &[
            ("group.consumer.max.size", "1"),
            ("group.consumer.session.timeout.ms", "1000"),
            ("group.consumer.heartbeat.interval.ms", "500"),
            // Kafka's bounds (GroupCoordinatorConfig) must admit them.
            ("group.consumer.min.session.timeout.ms", "1000"),
            ("group.consumer.min.heartbeat.interval.ms", "500"),
        ],
    );
    let mut client = connect(&broker);
    let group = "cg-timeout";
    let r = beat(&mut client, &joining(group, "m1"));
    assert_eq!(r.error_code, error::NONE);
    let r = beat(&mut client, &joining(group, "m2"));
    assert_eq!(r.error_code, GROUP_MAX_SIZE_REACHED, "{r:?}");
    // Without heartbeats the session ends and the member is removed.
    wait_until(Duration::from_secs(30), "the session timeout", || {
        cg_describe(&mut client, group).members.is_empty()
    });
    let d = cg_describe(&mut client, group);
    assert_eq!((&*d.group_state, d.group_epoch), ("Empty", 2));

    // The records, in Kafka's order: the member, the group epoch, the target assignment
    // and its epoch, the current assignment; then the removal: tombstones and an epoch.
    let partition = partition_for(group, OFFSETS_PARTITIONS);
    let kinds: Vec<String> = stored_records(data.path(), partition)
        .iter()
        .map(|r| {
            let kind = match (&r.key, &r.value) {
                (GroupCoordinatorRecordKey::ConsumerGroupMemberMetadata(_), _) => "member",
                (
                    GroupCoordinatorRecordKey::ConsumerGroupMetadata(_),
                    Some((GroupCoordinatorRecordValue::ConsumerGroupMetadata(v), 0)),
                ) => {
                    return format!("epoch {}", v.epoch);
                }
                (GroupCoordinatorRecordKey::ConsumerGroupTargetAssignmentMember(_), _) => "target",
                (GroupCoordinatorRecordKey::ConsumerGroupTargetAssignmentMetadata(_), _) => {
                    "target epoch"
                }
                (GroupCoordinatorRecordKey::ConsumerGroupCurrentMemberAssignment(_), _) => {
                    "current"
                }
                other => panic!("{other:?}"),
            };
            format!(
                "{kind}{}",
                if r.value.is_none() { " tombstone" } else { "" }
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "member",
            "epoch 1",
            "target",
            "target epoch",
            "current",
            "current tombstone",
            "target tombstone",
            "member tombstone",
            "epoch 2",
        ]
    );
}

#[test]
fn without_group_version_the_protocol_is_unsupported() {
    let data = fixture();
    let broker = start(&data, &[]);
    let mut client = connect(&broker);
    let r = beat(&mut client, &joining("cg-off", "m1"));
    assert_eq!(r.error_code, UNSUPPORTED_VERSION);
    assert_eq!(
        cg_describe(&mut client, "cg-off").error_code,
        UNSUPPORTED_VERSION
    );
}
