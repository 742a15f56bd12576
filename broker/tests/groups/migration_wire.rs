//! The online migration between classic and consumer groups (KIP-848) on the wire, under
//! each `group.consumer.migration.policy`: a ConsumerGroupHeartbeat joining a classic
//! group upgrades it (`upgrade`, `bidirectional`) or is refused with GROUP_ID_NOT_FOUND
//! (`disabled`, `downgrade`, as Kafka's `getOrMaybeCreateConsumerGroup` answers); a
//! classic JoinGroup to a non-empty consumer group joins it whatever the policy (Kafka's
//! `classicGroupJoin`); the group goes back to classic when its last consumer-protocol
//! member leaves only where the policy allows the downgrade.

use bytes::{BufMut, Bytes, BytesMut};
use gregor_protocol::Encodable;
use gregor_protocol::messages::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use gregor_protocol::messages::consumer_group_heartbeat_response::ConsumerGroupHeartbeatResponse;
use gregor_protocol::messages::consumer_protocol_assignment::{
    ConsumerProtocolAssignment, TopicPartition,
};
use gregor_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;

use crate::support::{DataDir, RawClient, TopicSpec};
use crate::wire::*;

fn kip848_fixture() -> DataDir {
    DataDir::builder()
        .topic(TopicSpec::new(TOPIC, PARTITIONS).records(RECORDS))
        .feature("group.version", 1)
        .build()
}

/// A ConsumerProtocolSubscription v1 of [`TOPIC`] (no owned partitions: an eager member).
fn subscription() -> Bytes {
    let body = ConsumerProtocolSubscription {
        topics: vec![TOPIC.into()],
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    buf.put_i16(1);
    body.encode(&mut buf, 1).unwrap();
    buf.freeze()
}

/// A ConsumerProtocolAssignment v1 of every partition of [`TOPIC`].
fn everything() -> Bytes {
    let body = ConsumerProtocolAssignment {
        assigned_partitions: vec![TopicPartition {
            topic: TOPIC.into(),
            partitions: (0..PARTITIONS).collect(),
        }],
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    buf.put_i16(1);
    body.encode(&mut buf, 1).unwrap();
    buf.freeze()
}

fn beat(
    client: &mut RawClient,
    request: &ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    client
        .call(request, 1)
        .unwrap_or_else(|e| panic!("ConsumerGroupHeartbeat: {e}"))
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

/// A dynamic member's leave (epoch -1).
fn leaving(group: &str, member: &str) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest {
        group_id: group.into(),
        member_id: member.into(),
        member_epoch: -1,
        rebalance_timeout_ms: -1,
        ..Default::default()
    }
}

/// The group's type in ListGroups v5 ("classic" or "consumer").
fn group_type(client: &mut RawClient, group: &str) -> String {
    let listed = list(client, 5, &[], &[]);
    listed
        .iter()
        .find(|g| &*g.group_id == group)
        .map(|g| g.group_type.to_string())
        .unwrap_or_else(|| panic!("{group} not listed: {listed:?}"))
}

/// A classic member joined alone (JoinGroup v5) with a consumer subscription and synced
/// with every partition: `(member id, generation)`.
fn classic_alone(client: &mut RawClient, group: &str, metadata: &Bytes) -> (String, i32) {
    let joined = join_new(
        client,
        5,
        join_request(group, "", protocols(&[("range", metadata)])),
    );
    assert_eq!(joined.error_code, error::NONE, "{joined:?}");
    let member = joined.member_id.to_string();
    let all = everything();
    let synced = sync(
        client,
        3,
        &sync_request(group, joined.generation_id, &member, &[(&member, &all)]),
    );
    assert_eq!(synced.error_code, error::NONE, "{synced:?}");
    (member, joined.generation_id)
}

/// What a policy does, seen on the wire.
fn policy_scenario(policy: &str, upgrades: bool, downgrades: bool) {
    let data = kip848_fixture();
    let broker = start(&data, &[("group.consumer.migration.policy", policy)]);
    let mut client = connect(&broker);
    let blob = subscription();

    // A consumer-protocol member joins a classic group with a member.
    let group = format!("upgrade-{policy}");
    let (a, generation) = classic_alone(&mut client, &group, &blob);
    let r = beat(&mut client, &joining(&group, "b"));
    if upgrades {
        assert_eq!(r.error_code, error::NONE, "{policy}: {r:?}");
        // The classic generation is the consumer group's epoch, then the join bumps it.
        assert_eq!(r.member_epoch, generation + 1, "{policy}: {r:?}");
        assert_eq!(group_type(&mut client, &group), "consumer", "{policy}");
        // The classic member must rejoin to give up partitions for b.
        assert_eq!(
            heartbeat(&mut client, 3, &group, generation, &a, None),
            error::REBALANCE_IN_PROGRESS,
            "{policy}"
        );
        let rejoined = join(
            &mut client,
            5,
            &join_request(&group, &a, protocols(&[("range", &blob)])),
        );
        assert_eq!(rejoined.error_code, error::NONE, "{policy}: {rejoined:?}");
        assert_eq!(rejoined.generation_id, generation + 1, "{policy}");
        assert_eq!(&*rejoined.protocol_name.clone().unwrap(), "range");
        let synced = sync(
            &mut client,
            3,
            &sync_request(&group, rejoined.generation_id, &a, &[]),
        );
        assert_eq!(synced.error_code, error::NONE, "{policy}: {synced:?}");
        // b now gets what a released.
        let r = beat(
            &mut client,
            &joining(&group, "b").with_epoch(generation + 1),
        );
        assert_eq!(r.error_code, error::NONE, "{policy}: {r:?}");
        let got = r
            .assignment
            .as_ref()
            .map(|a| a.topic_partitions.iter().map(|t| t.partitions.len()).sum())
            .unwrap_or(0usize);
        assert!(got > 0, "{policy}: b got nothing: {r:?}");
    } else {
        assert_eq!(r.error_code, error::GROUP_ID_NOT_FOUND, "{policy}: {r:?}");
        assert!(
            r.error_message
                .as_deref()
                .is_some_and(|m| m.contains("is not a consumer group")),
            "{policy}: {r:?}"
        );
        // The classic group is untouched.
        assert_eq!(group_type(&mut client, &group), "classic", "{policy}");
        assert_eq!(
            heartbeat(&mut client, 3, &group, generation, &a, None),
            error::NONE,
            "{policy}"
        );
    }

    // A classic member joins a consumer group (whatever the policy), then the last
    // consumer-protocol member leaves.
    let group = format!("downgrade-{policy}");
    let r = beat(&mut client, &joining(&group, "c"));
    assert_eq!((r.error_code, r.member_epoch), (error::NONE, 1), "{r:?}");
    let joined = join_new(
        &mut client,
        5,
        join_request(&group, "", protocols(&[("range", &blob)])),
    );
    assert_eq!(joined.error_code, error::NONE, "{policy}: {joined:?}");
    let d = joined.member_id.to_string();
    assert_eq!(group_type(&mut client, &group), "consumer", "{policy}");
    let r = beat(&mut client, &leaving(&group, "c"));
    assert_eq!((r.error_code, r.member_epoch), (error::NONE, -1), "{r:?}");
    if downgrades {
        assert_eq!(group_type(&mut client, &group), "classic", "{policy}");
        let described = describe(&mut client, 5, &group);
        let members: Vec<&str> = described.members.iter().map(|m| &*m.member_id).collect();
        assert_eq!(members, vec![d.as_str()], "{policy}: {described:?}");
        // The classic group rebalances: d rejoins and is alone, with everything.
        let rejoined = join(
            &mut client,
            5,
            &join_request(&group, &d, protocols(&[("range", &blob)])),
        );
        assert_eq!(rejoined.error_code, error::NONE, "{policy}: {rejoined:?}");
        assert!(
            rejoined.generation_id > joined.generation_id,
            "{rejoined:?}"
        );
        assert_eq!(&*rejoined.leader, d.as_str());
    } else {
        // The consumer group stays, with d alone in it.
        assert_eq!(group_type(&mut client, &group), "consumer", "{policy}");
        assert_eq!(
            heartbeat(&mut client, 3, &group, joined.generation_id, &d, None),
            error::REBALANCE_IN_PROGRESS,
            "{policy}: the group epoch moved past d"
        );
    }
    assert!(
        broker
            .log_text()
            .contains("upgrading the classic group to a consumer group")
            == upgrades,
        "{policy}"
    );
}

/// Sets the epoch of a heartbeat built by [`joining`].
trait WithEpoch {
    fn with_epoch(self, epoch: i32) -> Self;
}

impl WithEpoch for ConsumerGroupHeartbeatRequest {
    fn with_epoch(mut self, epoch: i32) -> Self {
        self.member_epoch = epoch;
        self
    }
}

#[test]
fn policy_bidirectional_upgrades_and_downgrades() {
    policy_scenario("bidirectional", true, true);
}

#[test]
fn policy_upgrade_only_upgrades() {
    policy_scenario("upgrade", true, false);
}

#[test]
fn policy_downgrade_only_downgrades() {
    policy_scenario("downgrade", false, true);
}

#[test]
fn policy_disabled_refuses_the_upgrade_and_keeps_consumer_groups() {
    policy_scenario("disabled", false, false);
}

/// A classic group whose members do not speak the consumer embedded protocol, or whose
/// subscription is malformed, is not upgraded: GROUP_ID_NOT_FOUND.
#[test]
fn groups_that_cannot_be_upgraded_are_refused() {
    let data = kip848_fixture();
    let broker = start(&data, &[]);
    let mut client = connect(&broker);
    // A malformed subscription in a "consumer" group (Kafka's `fromClassicGroup` fails).
    let (_, _) = classic_alone(&mut client, "malformed", &Bytes::from_static(b"\x00"));
    let r = beat(&mut client, &joining("malformed", "b"));
    assert_eq!(r.error_code, error::GROUP_ID_NOT_FOUND, "{r:?}");
    assert!(
        r.error_message
            .as_deref()
            .is_some_and(|m| m.contains("malformed")),
        "{r:?}"
    );
    assert_eq!(group_type(&mut client, "malformed"), "classic");
    // A group of another protocol type (Kafka Connect's).
    let mut request = join_request("connect", "", protocols(&[("default", b"x")]));
    request.protocol_type = "connect".into();
    let joined = join_new(&mut client, 5, request);
    assert_eq!(joined.error_code, error::NONE, "{joined:?}");
    let r = beat(&mut client, &joining("connect", "b"));
    assert_eq!(r.error_code, error::GROUP_ID_NOT_FOUND, "{r:?}");
}
