//! `controller_mutation_rate` (KIP-599) with the real binary: CreateTopics, CreatePartitions
//! and DeleteTopics of a client with a quota of 1 partition mutation per second (a burst of
//! 11 with Kafka's default window) get THROTTLING_QUOTA_EXCEEDED for the topic that comes
//! once the bucket is empty, with a throttle time, at the strict versions; the permissive
//! (older) versions accept and throttle; a client without a quota is untouched.

use gregor_protocol::error_code as error;
use gregor_protocol::messages::create_partitions_request::{
    CreatePartitionsRequest, CreatePartitionsTopic,
};
use gregor_protocol::messages::create_topics_request::{CreatableTopic, CreateTopicsRequest};
use gregor_protocol::messages::create_topics_response::CreateTopicsResponse;
use gregor_protocol::messages::delete_topics_request::{DeleteTopicState, DeleteTopicsRequest};

use super::support::{Broker, DataDir, RawClient};
use super::{Entity, alter, entry};

/// Kafka's message of THROTTLING_QUOTA_EXCEEDED.
const THROTTLED: &str = "The throttling quota has been exceeded.";
/// The burst of a quota of 1 with 11 samples of 1 s: 11 partitions, in milliseconds of
/// throttling per partition beyond it.
const MS_PER_PARTITION: i32 = 1000;

/// A broker where client `limited` of the anonymous user has a quota of 1.
fn broker_with_quota() -> (DataDir, Broker) {
    let data = DataDir::builder().build();
    let broker = Broker::start(&data);
    let mut admin = RawClient::connect(broker.addr()).unwrap();
    let limited: Entity = vec![("user", Some("ANONYMOUS")), ("client-id", Some("limited"))];
    let set = alter(
        &mut admin,
        1,
        vec![entry(&limited, &[("controller_mutation_rate", Some(1.0))])],
        false,
    );
    assert_eq!(set.entries[0].error_code, error::NONE, "{set:?}");
    (data, broker)
}

/// A new connection (a throttled one is muted for the throttle time) with `client_id`.
fn client(broker: &Broker, client_id: &str) -> RawClient {
    let mut client = RawClient::connect(broker.addr()).unwrap();
    client.set_client_id(Some(client_id));
    client
}

fn create(
    client: &mut RawClient,
    version: i16,
    topics: &[(&str, i32)],
    validate_only: bool,
) -> CreateTopicsResponse {
    let request = CreateTopicsRequest {
        topics: topics
            .iter()
            .map(|(name, partitions)| CreatableTopic {
                name: (*name).into(),
                num_partitions: *partitions,
                replication_factor: 1,
                ..Default::default()
            })
            .collect(),
        timeout_ms: 30_000,
        validate_only,
        ..Default::default()
    };
    client.call(&request, version).expect("CreateTopics")
}

fn codes(response: &CreateTopicsResponse) -> Vec<(String, i16, Option<String>)> {
    response
        .topics
        .iter()
        .map(|t| {
            (
                t.name.to_string(),
                t.error_code,
                t.error_message.as_deref().map(str::to_string),
            )
        })
        .collect()
}

fn topic_exists(broker: &Broker, name: &str) -> bool {
    use gregor_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
    let mut client = RawClient::connect(broker.addr()).unwrap();
    let response = client
        .call(
            &MetadataRequest {
                topics: Some(vec![MetadataRequestTopic {
                    name: Some(name.into()),
                    ..Default::default()
                }]),
                allow_auto_topic_creation: false,
                ..Default::default()
            },
            12,
        )
        .expect("Metadata");
    response.topics[0].error_code == error::NONE
}

#[test]
fn strict_create_topics_refuses_the_topics_past_the_burst_with_a_throttle_time() {
    let (_data, broker) = broker_with_quota();
    // Within the quota: created, no throttling.
    let mut limited = client(&broker, "limited");
    let small = create(&mut limited, 7, &[("small", 5)], false);
    assert_eq!(codes(&small), vec![("small".into(), error::NONE, None)]);
    assert_eq!(small.throttle_time_ms, 0);
    // 6 tokens left: the first topic takes the bucket to -14 (strict: checked before it
    // is taken), the second is refused and not created.
    let burst = create(&mut limited, 7, &[("big", 20), ("after", 1)], false);
    assert_eq!(
        codes(&burst),
        vec![
            ("big".into(), error::NONE, None),
            (
                "after".into(),
                error::THROTTLING_QUOTA_EXCEEDED,
                Some(THROTTLED.into())
            ),
        ]
    );
    assert!(burst.throttle_time_ms > 0, "{burst:?}");
    assert!(burst.throttle_time_ms <= 14 * MS_PER_PARTITION, "{burst:?}");
    assert!(topic_exists(&broker, "big"));
    assert!(!topic_exists(&broker, "after"));
    // Another connection of the same client shares the bucket; validate_only counts too
    // (Kafka's controller asks the quota before it drops the records).
    let mut again = client(&broker, "limited");
    let refused = create(&mut again, 6, &[("later", 1)], true);
    assert_eq!(
        refused.topics[0].error_code,
        error::THROTTLING_QUOTA_EXCEEDED
    );
    assert!(refused.throttle_time_ms > 0);
    // A client without a quota is not limited.
    let mut other = client(&broker, "other");
    let free = create(&mut other, 7, &[("free", 50)], false);
    assert_eq!(codes(&free), vec![("free".into(), error::NONE, None)]);
    assert_eq!(free.throttle_time_ms, 0);
}

#[test]
fn permissive_create_topics_accepts_everything_and_throttles() {
    let (_data, broker) = broker_with_quota();
    let mut limited = client(&broker, "limited");
    // v5 predates THROTTLING_QUOTA_EXCEEDED: both topics are created, the response says
    // how long to wait for the bucket to be back at zero (21 partitions over 11 tokens).
    let response = create(&mut limited, 5, &[("one", 20), ("two", 1)], false);
    assert_eq!(
        codes(&response),
        vec![
            ("one".into(), error::NONE, None),
            ("two".into(), error::NONE, None)
        ]
    );
    assert!(response.throttle_time_ms > 0, "{response:?}");
    assert!(response.throttle_time_ms <= 10 * MS_PER_PARTITION);
    assert!(topic_exists(&broker, "two"));
}

#[test]
fn strict_create_partitions_and_delete_topics_are_charged_too() {
    let (_data, broker) = broker_with_quota();
    let mut other = client(&broker, "other");
    let made = create(
        &mut other,
        7,
        &[("grow", 1), ("gone", 30), ("kept", 1)],
        false,
    );
    assert!(made.topics.iter().all(|t| t.error_code == error::NONE));

    let grow = |client: &mut RawClient, count: i32| {
        let request = CreatePartitionsRequest {
            topics: vec![CreatePartitionsTopic {
                name: "grow".into(),
                count,
                assignments: None,
                ..Default::default()
            }],
            timeout_ms: 30_000,
            validate_only: false,
            ..Default::default()
        };
        client.call(&request, 3).expect("CreatePartitions")
    };
    // 19 partitions added: the bucket goes from 11 to -8.
    let mut limited = client(&broker, "limited");
    let grown = grow(&mut limited, 20);
    assert_eq!(grown.results[0].error_code, error::NONE, "{grown:?}");
    assert_eq!(grown.throttle_time_ms, 0);
    let mut limited = client(&broker, "limited");
    let refused = grow(&mut limited, 21);
    assert_eq!(
        refused.results[0].error_code,
        error::THROTTLING_QUOTA_EXCEEDED
    );
    assert_eq!(refused.results[0].error_message.as_deref(), Some(THROTTLED));
    assert!(refused.throttle_time_ms > 0);

    // DeleteTopics v6 (strict): refused while the bucket is below zero; the topic stays.
    let delete = |client: &mut RawClient, name: &str| {
        let request = DeleteTopicsRequest {
            topics: vec![DeleteTopicState {
                name: Some(name.into()),
                ..Default::default()
            }],
            timeout_ms: 30_000,
            ..Default::default()
        };
        client.call(&request, 6).expect("DeleteTopics")
    };
    let mut limited = client(&broker, "limited");
    let kept = delete(&mut limited, "kept");
    assert_eq!(
        kept.responses[0].error_code,
        error::THROTTLING_QUOTA_EXCEEDED
    );
    assert_eq!(kept.responses[0].error_message.as_deref(), Some(THROTTLED));
    assert!(kept.throttle_time_ms > 0);
    assert!(topic_exists(&broker, "kept"));
    // Without a quota the deletion goes through.
    let mut other = client(&broker, "other");
    let gone = delete(&mut other, "gone");
    assert_eq!(gone.responses[0].error_code, error::NONE);
    assert_eq!(gone.throttle_time_ms, 0);
    assert!(!topic_exists(&broker, "gone"));
}
