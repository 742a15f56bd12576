//! OffsetDelete (API key 47): a group's committed offsets removed per partition, with
//! Kafka's errors, written as tombstones to `__consumer_offsets` so that a restart does not
//! bring them back; then kafka-python's `delete_group_offsets`.

use gregor_protocol::error_code as code;
use gregor_protocol::messages::GroupCoordinatorRecordKey;
use gregor_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
use gregor_protocol::messages::offset_delete_request::{
    OffsetDeleteRequest, OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use gregor_protocol::messages::offset_delete_response::OffsetDeleteResponse;
use gregor_protocol::{Encodable, Uuid};

use crate::support::{
    DataDir, Json, JsonExt, RawClient, TopicSpec, advertised_versions, python_with_timeout,
};
use crate::wire::*;

/// A second topic of the fixture, which the consumers below do not subscribe to.
const OTHER: &str = "other";

/// [`TOPIC`] as in [`fixture`] and [`OTHER`] with 2 partitions.
fn two_topics() -> DataDir {
    DataDir::builder()
        .topic(TopicSpec::new(TOPIC, PARTITIONS).records(RECORDS))
        .topic(TopicSpec::new(OTHER, 2).records(4))
        .build()
}

/// An OffsetDelete v0 of `topics` (name, partitions).
fn delete(client: &mut RawClient, group: &str, topics: &[(&str, &[i32])]) -> OffsetDeleteResponse {
    let request = OffsetDeleteRequest {
        group_id: group.into(),
        topics: topics
            .iter()
            .map(|(name, partitions)| OffsetDeleteRequestTopic {
                name: (*name).into(),
                partitions: partitions
                    .iter()
                    .map(|p| OffsetDeleteRequestPartition {
                        partition_index: *p,
                    })
                    .collect(),
            })
            .collect(),
    };
    client.call(&request, 0).expect("OffsetDelete v0")
}

/// The answer as (topic, [(partition, error)]).
fn results(response: &OffsetDeleteResponse) -> Vec<(String, Vec<(i32, i16)>)> {
    response
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| (p.partition_index, p.error_code))
                .collect();
            (t.name.to_string(), partitions)
        })
        .collect()
}

/// Commits `offsets` (partition, offset) of `topic` for `group` (OffsetCommit v8).
fn commit_offsets(
    client: &mut RawClient,
    group: &str,
    member: (&str, i32),
    topic: &str,
    offsets: &[(i32, i64)],
) {
    let offsets: Vec<(i32, i64, i32, Option<&str>)> =
        offsets.iter().map(|(p, o)| (*p, *o, 0, None)).collect();
    let request = commit_request(8, group, member.1, member.0, topic, Uuid::nil(), &offsets);
    let errors = commit(client, 8, &request);
    assert!(errors.iter().all(|e| *e == code::NONE), "{errors:?}");
}

/// The committed offsets of `group` in `topic`'s first `partitions` partitions.
fn committed_in(client: &mut RawClient, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let indexes: Vec<i32> = (0..partitions).collect();
    let (error, topics) = fetch(client, 8, group, Some(&[(topic, Uuid::nil(), &indexes)]));
    assert_eq!(error, code::NONE);
    topics[0].1.iter().map(|p| p.offset).collect()
}

/// The offset tombstones of `group` in its `__consumer_offsets` partition: (topic,
/// partition) in log order.
fn offset_tombstones(data: &DataDir, group: &str) -> Vec<(String, i32)> {
    stored_records(data.path(), partition_for(group, OFFSETS_PARTITIONS))
        .into_iter()
        .filter_map(|r| match (&r.key, &r.value) {
            (GroupCoordinatorRecordKey::OffsetCommit(k), None) if &*k.group == group => {
                Some((k.topic.to_string(), k.partition))
            }
            _ => None,
        })
        .collect()
}

/// A consumer-protocol subscription (version 0 of the format, as Kafka's coordinator
/// reads it) to `topics`.
fn subscription(topics: &[&str]) -> Vec<u8> {
    let subscription = ConsumerProtocolSubscription {
        topics: topics.iter().map(|t| (*t).into()).collect(),
        ..Default::default()
    };
    let mut bytes = vec![0, 0];
    bytes.extend_from_slice(&subscription.to_bytes(0).expect("encode a subscription"));
    bytes
}

/// Joins `group` alone with `protocol_type` and one "range" protocol of `metadata`, and
/// syncs: (member id, generation).
fn join_stable(
    client: &mut RawClient,
    group: &str,
    protocol_type: &str,
    metadata: &[u8],
) -> (String, i32) {
    let mut request = join_request(group, "", protocols(&[("range", metadata)]));
    request.protocol_type = protocol_type.into();
    let joined = join_new(client, 5, request);
    assert_eq!(joined.error_code, code::NONE, "{joined:?}");
    let member = joined.member_id.to_string();
    let mut sync_req = sync_request(group, joined.generation_id, &member, &[(&member, b"")]);
    sync_req.protocol_type = Some(protocol_type.into());
    let synced = sync(client, 3, &sync_req);
    assert_eq!(synced.error_code, code::NONE, "{synced:?}");
    (member, joined.generation_id)
}

#[test]
fn offset_delete_is_advertised_at_v0() {
    let data = fixture();
    let broker = start(&data, &[]);
    assert_eq!(
        advertised_versions(broker.addr(), gregor_protocol::ApiKey::OffsetDelete),
        Some((0, 0))
    );
}

/// A simple group's offsets: deleted partitions read back as -1, the others stay, the
/// tombstones are in `__consumer_offsets` (null values) and a restart keeps them deleted.
/// Unknown topics and partitions get UNKNOWN_TOPIC_OR_PARTITION first, in Kafka's order.
#[test]
fn deleted_offsets_stay_deleted_across_a_restart() {
    let data = two_topics();
    let mut broker = start(&data, &[]);
    let mut client = connect(&broker);
    let group = "simple";
    commit_offsets(
        &mut client,
        group,
        ("", -1),
        TOPIC,
        &[(0, 5), (1, 6), (2, 7)],
    );
    commit_offsets(&mut client, group, ("", -1), OTHER, &[(0, 1), (1, 2)]);

    let response = delete(
        &mut client,
        group,
        &[(TOPIC, &[0, 2, 9]), ("missing", &[0]), (OTHER, &[1])],
    );
    assert_eq!(response.error_code, code::NONE);
    assert_eq!(
        results(&response),
        [
            (
                TOPIC.to_string(),
                vec![
                    (9, code::UNKNOWN_TOPIC_OR_PARTITION),
                    (0, code::NONE),
                    (2, code::NONE)
                ]
            ),
            (
                "missing".to_string(),
                vec![(0, code::UNKNOWN_TOPIC_OR_PARTITION)]
            ),
            (OTHER.to_string(), vec![(1, code::NONE)]),
        ]
    );
    assert_eq!(committed_in(&mut client, group, TOPIC, 3), [-1, 6, -1]);
    assert_eq!(committed_in(&mut client, group, OTHER, 2), [1, -1]);
    assert_eq!(
        offset_tombstones(&data, group),
        [
            (TOPIC.to_string(), 0),
            (TOPIC.to_string(), 2),
            (OTHER.to_string(), 1)
        ]
    );

    // A partition without a committed offset: no error, nothing written.
    let response = delete(&mut client, group, &[(TOPIC, &[0])]);
    assert_eq!(
        results(&response),
        [(TOPIC.to_string(), vec![(0, code::NONE)])]
    );
    assert_eq!(offset_tombstones(&data, group).len(), 3);

    broker.stop();
    let broker = start(&data, &[]);
    let mut client = connect(&broker);
    assert_eq!(committed_in(&mut client, group, TOPIC, 3), [-1, 6, -1]);
    assert_eq!(committed_in(&mut client, group, OTHER, 2), [1, -1]);
    // The group still exists (it has an offset left) and its offsets can still go.
    let response = delete(&mut client, group, &[(TOPIC, &[1]), (OTHER, &[0])]);
    assert_eq!(response.error_code, code::NONE);
    assert_eq!(committed_in(&mut client, group, TOPIC, 3), [-1, -1, -1]);
    assert_eq!(committed_in(&mut client, group, OTHER, 2), [-1, -1]);
}

/// Errors of the whole request: the response has the code and no topics.
#[test]
fn unknown_and_invalid_groups() {
    let data = fixture();
    let broker = start(&data, &[]);
    let mut client = connect(&broker);
    let response = delete(&mut client, "nobody", &[(TOPIC, &[0]), ("missing", &[0])]);
    assert_eq!(response.error_code, code::GROUP_ID_NOT_FOUND);
    assert!(response.topics.is_empty(), "{response:?}");
    let response = delete(&mut client, "", &[(TOPIC, &[0])]);
    assert_eq!(response.error_code, code::INVALID_GROUP_ID);
    assert!(response.topics.is_empty(), "{response:?}");
    // No topics at all: the group is still checked.
    let response = delete(&mut client, "nobody", &[]);
    assert_eq!(response.error_code, code::GROUP_ID_NOT_FOUND);
}

/// An active consumer group keeps the offsets of the topics its members subscribe to
/// (GROUP_SUBSCRIBED_TO_TOPIC for each of their partitions) and loses the others; once the
/// member leaves, the rest can go. A group whose subscriptions cannot be read counts as
/// subscribed to everything; an active group of another protocol type is NON_EMPTY_GROUP.
#[test]
fn active_groups_keep_the_offsets_of_subscribed_topics() {
    let data = two_topics();
    let broker = start(&data, &[]);
    let mut client = connect(&broker);

    let group = "active";
    let (member, generation) = join_stable(&mut client, group, "consumer", &subscription(&[TOPIC]));
    commit_offsets(
        &mut client,
        group,
        (&member, generation),
        TOPIC,
        &[(0, 3), (1, 4)],
    );
    commit_offsets(&mut client, group, (&member, generation), OTHER, &[(0, 1)]);
    let response = delete(&mut client, group, &[(TOPIC, &[0, 1]), (OTHER, &[0])]);
    assert_eq!(response.error_code, code::NONE);
    assert_eq!(
        results(&response),
        [
            (
                TOPIC.to_string(),
                vec![
                    (0, code::GROUP_SUBSCRIBED_TO_TOPIC),
                    (1, code::GROUP_SUBSCRIBED_TO_TOPIC)
                ]
            ),
            (OTHER.to_string(), vec![(0, code::NONE)]),
        ]
    );
    assert_eq!(committed_in(&mut client, group, TOPIC, 3), [3, 4, -1]);
    assert_eq!(committed_in(&mut client, group, OTHER, 2), [-1, -1]);
    assert_eq!(state(&mut client, group), "Stable");

    // The member leaves: the group is empty and nothing is subscribed any more.
    assert_eq!(leave(&mut client, 1, group, &member), code::NONE);
    assert_eq!(state(&mut client, group), "Empty");
    let response = delete(&mut client, group, &[(TOPIC, &[0, 1])]);
    assert_eq!(
        results(&response),
        [(TOPIC.to_string(), vec![(0, code::NONE), (1, code::NONE)])]
    );
    assert_eq!(committed_in(&mut client, group, TOPIC, 3), [-1, -1, -1]);

    // Metadata that is not a consumer subscription: every topic counts as subscribed.
    let group = "opaque";
    let (member, generation) = join_stable(&mut client, group, "consumer", b"not parsable");
    commit_offsets(&mut client, group, (&member, generation), OTHER, &[(1, 9)]);
    let response = delete(&mut client, group, &[(OTHER, &[1])]);
    assert_eq!(
        results(&response),
        [(
            OTHER.to_string(),
            vec![(1, code::GROUP_SUBSCRIBED_TO_TOPIC)]
        )]
    );
    assert_eq!(committed_in(&mut client, group, OTHER, 2), [-1, 9]);

    // Another protocol type with a member: the whole request fails.
    let group = "connectors";
    let (member, generation) = join_stable(&mut client, group, "connect", b"whatever");
    commit_offsets(&mut client, group, (&member, generation), OTHER, &[(0, 2)]);
    let response = delete(&mut client, group, &[(OTHER, &[0])]);
    assert_eq!(response.error_code, code::NON_EMPTY_GROUP);
    assert!(response.topics.is_empty());
    assert_eq!(committed_in(&mut client, group, OTHER, 2), [2, -1]);
}

/// A group left without offsets and members is deleted by the periodic clean-up (Kafka 4's
/// coordinator does not delete it in the OffsetDelete itself).
#[test]
fn a_group_left_without_offsets_is_deleted_by_the_cleanup() {
    let data = fixture();
    let broker = start(&data, &[("offsets.retention.check.interval.ms", "300")]);
    let mut client = connect(&broker);
    let group = "short";
    commit_offsets(&mut client, group, ("", -1), TOPIC, &[(0, 1)]);
    let response = delete(&mut client, group, &[(TOPIC, &[0])]);
    assert_eq!(response.error_code, code::NONE);
    wait_until(
        std::time::Duration::from_secs(30),
        "the empty group to be deleted",
        || describe(&mut client, 6, group).error_code == code::GROUP_ID_NOT_FOUND,
    );
    let response = delete(&mut client, group, &[(TOPIC, &[0])]);
    assert_eq!(response.error_code, code::GROUP_ID_NOT_FOUND);
    // The group's tombstone followed the offset's.
    let records = stored_records(data.path(), partition_for(group, OFFSETS_PARTITIONS));
    let last = records.last().expect("records");
    assert!(
        matches!(&last.key, GroupCoordinatorRecordKey::GroupMetadata(k) if &*k.group == group)
            && last.value.is_none(),
        "{last:?}"
    );
}

/// kafka-python's `KafkaAdminClient.delete_group_offsets`.
#[test]
fn kafka_python_deletes_group_offsets() {
    let data = two_topics();
    let mut broker = start(&data, &[]);
    let mut client = connect(&broker);
    let group = "py-admin";
    commit_offsets(&mut client, group, ("", -1), TOPIC, &[(0, 5), (1, 6)]);
    commit_offsets(&mut client, group, ("", -1), OTHER, &[(0, 2)]);
    let bootstrap = broker.bootstrap();
    let run = |group: &str, delete: &str| {
        python_with_timeout(
            "offset_delete_kafka_python.py",
            &[
                "--bootstrap",
                bootstrap.as_str(),
                "--group",
                group,
                "--delete",
                delete,
                "--timeout",
                "60",
            ],
            std::time::Duration::from_secs(120),
        )
    };
    let Some(output) = run(group, &format!("{TOPIC}:0;{OTHER}:0;missing:3")) else {
        return;
    };
    output.assert_success();
    let json = output.json();
    let results = json.field("results");
    assert_eq!(
        results.field(&format!("{TOPIC}:0")).as_str(),
        Some("NoError")
    );
    assert_eq!(
        results.field(&format!("{OTHER}:0")).as_str(),
        Some("NoError")
    );
    assert_eq!(
        results.field("missing:3").as_str(),
        Some("UnknownTopicOrPartitionError")
    );
    let remaining = json.field("remaining");
    assert_eq!(remaining.field(&format!("{TOPIC}:1")).as_i64(), Some(6));
    assert!(
        matches!(remaining, Json::Object(map) if map.len() == 1),
        "{remaining}"
    );

    let output = run("nobody", &format!("{TOPIC}:0")).expect("the clients");
    output.assert_success();
    assert_eq!(
        output.json().field("error").as_str(),
        Some("GroupIdNotFoundError")
    );

    broker.stop();
    let broker = start(&data, &[]);
    let mut client = connect(&broker);
    assert_eq!(committed_in(&mut client, group, TOPIC, 3), [-1, 6, -1]);
    assert_eq!(committed_in(&mut client, group, OTHER, 2), [-1, -1]);
}
