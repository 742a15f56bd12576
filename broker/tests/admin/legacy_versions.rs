//! The admin API versions Kafka 4 dropped (KIP-896) and Kafka 3.9 served: CreateTopics
//! v0-v1, DeleteTopics v0, DescribeConfigs v0, DescribeLogDirs v0, AlterReplicaLogDirs v0,
//! answered as Kafka 3.9 answered them; then `legacy.api.versions.enable=false`, which
//! serves every API from Kafka 4's floor and refuses older requests as Kafka 4 does.

use std::time::Duration;

use gregor_protocol::ApiKey;
use gregor_protocol::messages::alter_replica_log_dirs_request::{
    AlterReplicaLogDir, AlterReplicaLogDirTopic, AlterReplicaLogDirsRequest,
};
use gregor_protocol::messages::create_topics_response::CreatableTopicResult;
use gregor_protocol::messages::describe_log_dirs_request::DescribeLogDirsRequest;
use gregor_protocol::messages::describe_log_dirs_response::DescribeLogDirsResponse;

use super::support::{Broker, DataDir, RawClient, advertised_versions, api_versions};
use super::{
    by_name, connect, create_request, create_topic, create_topics, delete_by_names,
    describe_configs, describe_resource, error, find_topic, new_topic, resource, source, start,
    start_with, topics, wait_until,
};

/// The APIs this file extends, with the ranges served by default (Kafka 3.9's floors,
/// Kafka 4.3's tops) and Kafka 4's floor.
const EXTENDED: &[(ApiKey, (i16, i16), i16)] = &[
    (ApiKey::CreateTopics, (0, 7), 2),
    (ApiKey::DeleteTopics, (0, 6), 1),
    (ApiKey::DescribeConfigs, (0, 4), 1),
    (ApiKey::AlterReplicaLogDirs, (0, 2), 1),
    (ApiKey::DescribeLogDirs, (0, 5), 1),
];

const LEGACY_OFF: &[(&str, &str)] = &[("legacy.api.versions.enable", "false")];

#[test]
fn create_topics_v0_and_v1_create_topics_and_v1_validates_only() {
    let (_data, broker) = start();
    let mut client = connect(&broker);

    // v0: created, and the result has no error message on the wire (nor a throttle time).
    let response = create_topics(&mut client, 0, vec![new_topic("old-v0", 2, &[])]);
    assert_eq!(response.throttle_time_ms, 0);
    let created = find_topic(&response.topics, "old-v0");
    assert_eq!(created.error_code, error::NONE, "{created:?}");
    assert_eq!(topics(&mut client)["old-v0"].1, 2, "two partitions");

    // A failure at v0 carries the code only; v1 adds Kafka's message.
    let twice = || vec![new_topic("dup", 1, &[]), new_topic("dup", 1, &[])];
    let response = create_topics(&mut client, 0, twice());
    let dup = find_topic(&response.topics, "dup");
    assert_eq!(dup.error_code, error::INVALID_REQUEST);
    assert_eq!(
        dup.error_message,
        CreatableTopicResult::default().error_message,
        "no error message in v0"
    );
    let response = create_topics(&mut client, 1, twice());
    let dup = find_topic(&response.topics, "dup");
    assert_eq!(
        (dup.error_code, dup.error_message.as_deref()),
        (error::INVALID_REQUEST, Some("Duplicate topic name."))
    );
    // An existing topic at v1: Kafka's TOPIC_ALREADY_EXISTS with its message.
    let response = create_topics(&mut client, 1, vec![new_topic("old-v0", 1, &[])]);
    let exists = find_topic(&response.topics, "old-v0");
    assert_eq!(exists.error_code, error::TOPIC_ALREADY_EXISTS);
    assert!(
        exists
            .error_message
            .as_deref()
            .is_some_and(|m| m.contains("old-v0")),
        "{exists:?}"
    );

    // v1 validate_only: checked, answered, not created; then created for real.
    let mut request = create_request(vec![new_topic("old-v1", 3, &[("retention.ms", "1000")])]);
    request.validate_only = true;
    let response = client.call(&request, 1).expect("CreateTopics v1");
    assert_eq!(
        find_topic(&response.topics, "old-v1").error_code,
        error::NONE
    );
    assert!(!topics(&mut client).contains_key("old-v1"));
    // A bad config is refused by validate_only as by a real creation.
    let mut bad = create_request(vec![new_topic("old-v1", 1, &[("retention.ms", "soon")])]);
    bad.validate_only = true;
    let response = client.call(&bad, 1).expect("CreateTopics v1");
    assert_eq!(
        find_topic(&response.topics, "old-v1").error_code,
        error::INVALID_CONFIG
    );
    request.validate_only = false;
    let response = client.call(&request, 1).expect("CreateTopics v1");
    assert_eq!(
        find_topic(&response.topics, "old-v1").error_code,
        error::NONE
    );
    assert_eq!(topics(&mut client)["old-v1"].1, 3);
}

#[test]
fn delete_topics_v0_deletes_by_name() {
    let (_data, broker) = start();
    let mut client = connect(&broker);
    create_topic(&mut client, "doomed", 1, &[]);
    let response = delete_by_names(&mut client, 0, &["doomed", "never-was"], 30_000);
    assert_eq!(response.throttle_time_ms, 0, "no throttle time in v0");
    let codes: Vec<(Option<&str>, i16)> = response
        .responses
        .iter()
        .map(|r| (r.name.as_deref(), r.error_code))
        .collect();
    assert!(codes.contains(&(Some("doomed"), error::NONE)), "{codes:?}");
    assert!(
        codes.contains(&(Some("never-was"), error::UNKNOWN_TOPIC_OR_PARTITION)),
        "{codes:?}"
    );
    assert!(!topics(&mut client).contains_key("doomed"));
}

#[test]
fn delete_topics_v0_with_deletion_disabled_gets_invalid_request() {
    // v0 predates TOPIC_DELETION_DISABLED (v3+), as v1 and v2 do.
    let (_data, broker) = start_with(&[("delete.topic.enable", "false")]);
    let mut client = connect(&broker);
    create_topic(&mut client, "kept", 1, &[]);
    let response = delete_by_names(&mut client, 0, &["kept"], 30_000);
    assert_eq!(response.responses[0].error_code, error::INVALID_REQUEST);
    assert!(topics(&mut client).contains_key("kept"));
}

#[test]
fn describe_configs_v0_says_which_values_are_defaults() {
    let data = DataDir::builder()
        .broker_config("log.retention.ms", "7200000")
        .build();
    let broker = Broker::start_with(&data, &[("num.partitions", "4")]);
    let mut client = connect(&broker);
    create_topic(
        &mut client,
        "described",
        1,
        &[("cleanup.policy", "compact")],
    );

    let results = describe_configs(
        &mut client,
        0,
        vec![describe_resource(resource::TOPIC, "described", None)],
        false,
        false,
    );
    assert_eq!(results[0].error_code, error::NONE);
    let configs = by_name(&results[0]);
    // Overridden on the topic.
    let cleanup = &configs["cleanup.policy"];
    assert_eq!(cleanup.value.as_deref(), Some("compact"));
    assert!(!cleanup.is_default, "set on the topic");
    // Kafka's default.
    let max_bytes = &configs["max.message.bytes"];
    assert_eq!(max_bytes.value.as_deref(), Some("1048588"));
    assert!(max_bytes.is_default, "nothing sets max.message.bytes");
    // From the broker (the dynamic cluster config, server.properties): not the default.
    assert_eq!(configs["retention.ms"].value.as_deref(), Some("7200000"));
    assert!(!configs["retention.ms"].is_default);
    assert!(!configs["segment.bytes"].is_default, "log.segment.bytes");
    for (name, config) in &configs {
        // v0 has neither the source nor synonyms on the wire; topic configs are
        // writable and none of them is sensitive, as Kafka's ConfigHelper says.
        assert_eq!(config.config_source, -1, "{name}: no source in v0");
        assert!(config.synonyms.is_empty(), "{name}");
        assert!(!config.read_only && !config.is_sensitive, "{name}");
    }
    // The same answers as v1's sources.
    let v1 = describe_configs(
        &mut client,
        1,
        vec![describe_resource(resource::TOPIC, "described", None)],
        false,
        false,
    );
    for (name, config) in by_name(&v1[0]) {
        assert_eq!(
            configs[&name].is_default,
            config.config_source == source::DEFAULT_CONFIG,
            "{name}"
        );
        assert!(!config.is_default, "{name}: is_default is v0's only");
    }

    // This broker: read-only except what Kafka changes dynamically.
    let results = describe_configs(
        &mut client,
        0,
        vec![describe_resource(
            resource::BROKER,
            "1",
            Some(&[
                "num.partitions",
                "auto.create.topics.enable",
                "log.retention.ms",
            ]),
        )],
        false,
        false,
    );
    assert_eq!(results[0].error_code, error::NONE);
    let configs = by_name(&results[0]);
    let partitions = &configs["num.partitions"];
    assert_eq!(partitions.value.as_deref(), Some("4"));
    assert!(partitions.read_only && !partitions.is_default);
    let auto_create = &configs["auto.create.topics.enable"];
    assert!(auto_create.read_only && auto_create.is_default);
    let retention = &configs["log.retention.ms"];
    assert_eq!(retention.value.as_deref(), Some("7200000"));
    assert!(!retention.read_only && !retention.is_default);
}

fn describe_log_dirs(client: &mut RawClient, version: i16) -> DescribeLogDirsResponse {
    let request = DescribeLogDirsRequest {
        topics: None,
        ..Default::default()
    };
    client.call(&request, version).expect("DescribeLogDirs")
}

/// The log dir holding the current replica of `topic`-0.
fn dir_of(response: &DescribeLogDirsResponse, topic: &str) -> Option<String> {
    response.results.iter().find_map(|dir| {
        dir.topics
            .iter()
            .filter(|t| *t.name == *topic)
            .flat_map(|t| &t.partitions)
            .find(|p| p.partition_index == 0 && !p.is_future_key)
            .map(|_| dir.log_dir.to_string())
    })
}

#[test]
fn describe_log_dirs_v0_and_alter_replica_log_dirs_v0_move_a_replica() {
    let data = DataDir::builder().build();
    let other = tempfile::tempdir().expect("temp dir");
    let target = other.path().join("b");
    let dirs = format!("{},{}", data.path().display(), target.display());
    let broker = Broker::start_with(&data, &[("log.dirs", &dirs)]);
    let mut client = connect(&broker);
    create_topic(&mut client, "moving", 1, &[]);

    let response = describe_log_dirs(&mut client, 0);
    assert_eq!(response.results.len(), 2, "{response:?}");
    assert!(response.results.iter().all(|d| d.error_code == error::NONE));
    let from = dir_of(&response, "moving").expect("the replica is in a log dir");
    let to = response
        .results
        .iter()
        .map(|d| d.log_dir.to_string())
        .find(|d| *d != from)
        .expect("another log dir");

    let request = AlterReplicaLogDirsRequest {
        dirs: vec![AlterReplicaLogDir {
            path: to.as_str().into(),
            topics: vec![AlterReplicaLogDirTopic {
                name: "moving".into(),
                partitions: vec![0],
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = client.call(&request, 0).expect("AlterReplicaLogDirs v0");
    assert_eq!(response.results[0].partitions[0].error_code, error::NONE);
    wait_until(
        "the replica is in the other log dir",
        Duration::from_secs(60),
        || dir_of(&describe_log_dirs(&mut client, 0), "moving").as_deref() == Some(to.as_str()),
    );

    // A path that is not a log dir, at v0 as at v1.
    let mut wrong = request.clone();
    wrong.dirs[0].path = "/no/such/dir".into();
    let response = client.call(&wrong, 0).expect("AlterReplicaLogDirs v0");
    assert_eq!(
        response.results[0].partitions[0].error_code,
        gregor_protocol::error_code::LOG_DIR_NOT_FOUND
    );
}

#[test]
fn by_default_the_kafka_3_9_floors_are_advertised() {
    let (_data, broker) = start();
    for (api, range, _) in EXTENDED {
        assert_eq!(
            advertised_versions(broker.addr(), *api),
            Some(*range),
            "{api:?}"
        );
    }
}

#[test]
fn without_legacy_versions_api_versions_advertises_kafka_4s_floors() {
    let (_data, broker) = start_with(LEGACY_OFF);
    let response = api_versions(broker.addr()).expect("ApiVersions");
    let listed: Vec<(i16, i16, i16)> = response
        .api_keys
        .iter()
        .map(|k| (k.api_key, k.min_version, k.max_version))
        .collect();
    // Every handled API, from the handler's floor or Kafka 4's, whichever is higher.
    let mut expected: Vec<(i16, i16, i16)> = gregor_broker::handlers::HANDLED
        .iter()
        .map(|(api, handled)| {
            let floor = gregor_broker::handlers::legacy_versions::kafka4_floor(*api)
                .map_or(handled.min, |f| f.max(handled.min));
            // Produce is still listed from v0, as Kafka 4 lists it (KAFKA-18659).
            let min = if *api == ApiKey::Produce { 0 } else { floor };
            (api.key(), min, handled.max)
        })
        .collect();
    expected.sort();
    assert_eq!(listed, expected);
    for (api, (_, max), floor) in EXTENDED {
        assert!(
            listed.contains(&(api.key(), *floor, *max)),
            "{api:?} from {floor} in {listed:?}"
        );
    }
}

#[test]
fn without_legacy_versions_an_old_request_closes_the_connection_as_in_kafka_4() {
    let (_data, broker) = start_with(LEGACY_OFF);

    // CreateTopics v1 and DescribeConfigs v0: the connection is closed, nothing done.
    let mut client = connect(&broker);
    client
        .send(&create_request(vec![new_topic("refused", 1, &[])]), 1)
        .expect("send CreateTopics v1");
    assert!(client.is_closed_by_peer(Duration::from_secs(10)));
    assert!(
        broker
            .wait_for_log(
                "unsupported CreateTopics version 1 (this broker serves 2-7)",
                Duration::from_secs(10)
            )
            .is_some(),
        "{}",
        broker.log_text()
    );
    let mut client = connect(&broker);
    let request = gregor_protocol::messages::describe_configs_request::DescribeConfigsRequest {
        resources: vec![describe_resource(resource::BROKER, "1", None)],
        ..Default::default()
    };
    client.send(&request, 0).expect("send DescribeConfigs v0");
    assert!(client.is_closed_by_peer(Duration::from_secs(10)));

    // Kafka 4's versions are served as usual, and the topic was never created.
    let mut client = connect(&broker);
    assert!(!topics(&mut client).contains_key("refused"));
    let response = create_topics(&mut client, 2, vec![new_topic("accepted", 1, &[])]);
    assert_eq!(
        find_topic(&response.topics, "accepted").error_code,
        error::NONE
    );
    let results = describe_configs(
        &mut client,
        1,
        vec![describe_resource(resource::TOPIC, "accepted", None)],
        false,
        false,
    );
    assert_eq!(results[0].error_code, error::NONE);
}
