//! Partitions whose logs cannot be made: a regular file where the partition directory
//! `<topic>-<partition>` would go (it stops root as well, unlike permissions). CreateTopics,
//! CreatePartitions and auto-creation (Metadata, FindCoordinator) refuse the topic with
//! `KAFKA_STORAGE_ERROR` and leave nothing behind, so that the same request succeeds once
//! the obstacle is gone, without a restart. A partition of the metadata whose directory
//! cannot be made at start-up is reported offline and answered `KAFKA_STORAGE_ERROR`.

use gregor_protocol::messages::describe_topic_partitions_request::{
    DescribeTopicPartitionsRequest, TopicRequest,
};
use gregor_protocol::messages::describe_topic_partitions_response::DescribeTopicPartitionsResponse;
use gregor_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use gregor_protocol::messages::metadata_request::MetadataRequestTopic;

use super::*;

const KAFKA_STORAGE_ERROR: i16 = 56;
const LEADER_NOT_AVAILABLE: i16 = 5;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;

/// Puts a regular file where the directory of `topic`-`partition` would be made.
fn block(data: &DataDir, topic: &str, partition: i32) -> std::path::PathBuf {
    let path = data.path().join(format!("{topic}-{partition}"));
    std::fs::write(&path, b"in the way").expect("write the obstacle");
    path
}

/// Metadata for `name` (v12), asking for auto-creation or not.
fn metadata_for(client: &mut RawClient, name: &str, auto_create: bool) -> MetadataResponse {
    let request = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: Some(name.into()),
            ..Default::default()
        }]),
        allow_auto_topic_creation: auto_create,
        ..Default::default()
    };
    client.call(&request, 12).expect("Metadata")
}

#[test]
fn a_topic_whose_logs_cannot_be_made_is_refused_and_can_be_created_later() {
    let (data, broker) = start();
    let mut client = connect(&broker);
    let obstacle = block(&data, "blocked", 1);
    let response = create_topics(
        &mut client,
        7,
        vec![new_topic("blocked", 2, &[]), new_topic("fine", 1, &[])],
    );
    let blocked = find_topic(&response.topics, "blocked");
    assert_eq!(blocked.error_code, KAFKA_STORAGE_ERROR, "{blocked:?}");
    let message = blocked.error_message.as_deref().unwrap_or_default();
    assert!(message.contains("blocked-1"), "{message}");
    assert_eq!(blocked.topic_id, Uuid::nil());
    assert_eq!(find_topic(&response.topics, "fine").error_code, error::NONE);
    // Nothing of it is left: no topic, no directory of the partition that could be made.
    let known = topics(&mut client);
    assert!(known.contains_key("fine"));
    assert!(!known.contains_key("blocked"), "{known:?}");
    assert!(!data.path().join("blocked-0").exists());
    let response = metadata_for(&mut client, "blocked", false);
    assert_eq!(
        response.topics[0].error_code,
        error::UNKNOWN_TOPIC_OR_PARTITION
    );

    std::fs::remove_file(&obstacle).expect("remove the obstacle");
    create_topic(&mut client, "blocked", 2, &[]);
    for partition in 0..2 {
        let produced = produce(&mut client, "blocked", partition, batch(3, 10));
        assert_eq!(produced.error_code, error::NONE, "partition {partition}");
    }
    assert_eq!(partition_dirs(data.path(), "blocked").len(), 2);
}

#[test]
fn partitions_whose_logs_cannot_be_made_are_refused_and_can_be_added_later() {
    let (data, broker) = start();
    let mut client = connect(&broker);
    create_topic(&mut client, "growing", 1, &[]);
    let obstacle = block(&data, "growing", 2);
    let results = create_partitions(
        &mut client,
        3,
        vec![grow("growing", 3, None)],
        false,
        30_000,
    );
    let result = grown(&results, "growing");
    assert_eq!(result.error_code, KAFKA_STORAGE_ERROR, "{result:?}");
    assert_eq!(topics(&mut client)["growing"].1, 1);
    assert!(!data.path().join("growing-1").exists());

    std::fs::remove_file(&obstacle).expect("remove the obstacle");
    let results = create_partitions(
        &mut client,
        3,
        vec![grow("growing", 3, None)],
        false,
        30_000,
    );
    assert_eq!(grown(&results, "growing").error_code, error::NONE);
    assert_eq!(topics(&mut client)["growing"].1, 3);
    let produced = produce(&mut client, "growing", 2, batch(2, 10));
    assert_eq!(produced.error_code, error::NONE);
}

#[test]
fn auto_creation_through_metadata_waits_for_the_disk() {
    let (data, broker) = start();
    let mut client = connect(&broker);
    let obstacle = block(&data, "auto", 0);
    let response = metadata_for(&mut client, "auto", true);
    assert_ne!(response.topics[0].error_code, error::NONE);
    assert!(!topics(&mut client).contains_key("auto"));

    std::fs::remove_file(&obstacle).expect("remove the obstacle");
    let response = metadata_for(&mut client, "auto", true);
    assert_eq!(response.topics[0].error_code, error::NONE, "{response:?}");
    let produced = produce(&mut client, "auto", 0, batch(1, 10));
    assert_eq!(produced.error_code, error::NONE);
}

#[test]
fn the_offsets_topic_is_created_once_the_disk_allows() {
    let (data, broker) = start_with(&[
        ("offsets.topic.num.partitions", "2"),
        ("offsets.topic.replication.factor", "1"),
    ]);
    let mut client = connect(&broker);
    let obstacle = block(&data, "__consumer_offsets", 1);
    let request = FindCoordinatorRequest {
        key: "group".into(),
        key_type: 0,
        ..Default::default()
    };
    let response = client.call(&request, 3).expect("FindCoordinator");
    assert_eq!(response.error_code, COORDINATOR_NOT_AVAILABLE);
    assert!(!data.path().join("__consumer_offsets-0").exists());

    std::fs::remove_file(&obstacle).expect("remove the obstacle");
    let response = client.call(&request, 3).expect("FindCoordinator");
    assert_eq!(response.error_code, error::NONE, "{response:?}");
    assert_eq!(partition_dirs(data.path(), "__consumer_offsets").len(), 2);
}

#[test]
fn a_partition_whose_directory_cannot_be_made_at_start_up_is_reported_offline() {
    let data = DataDir::builder().build();
    let mut broker = Broker::start(&data);
    let mut client = connect(&broker);
    create_topic(&mut client, "lost", 2, &[]);
    drop(client);
    broker.stop();
    // The directory disappears and something takes its place.
    std::fs::remove_dir_all(data.path().join("lost-1")).expect("remove the directory");
    let obstacle = block(&data, "lost", 1);

    let mut broker = Broker::start(&data);
    let mut client = connect(&broker);
    let response = metadata_for(&mut client, "lost", false);
    let partition = response.topics[0]
        .partitions
        .iter()
        .find(|p| p.partition_index == 1)
        .expect("partition 1")
        .clone();
    assert_eq!(partition.error_code, LEADER_NOT_AVAILABLE, "{partition:?}");
    assert_eq!(partition.leader_id, -1);
    assert_eq!(partition.offline_replicas, vec![data.node_id]);
    // DescribeTopicPartitions says the same.
    let described: DescribeTopicPartitionsResponse = client
        .call(
            &DescribeTopicPartitionsRequest {
                topics: vec![TopicRequest {
                    name: "lost".into(),
                    ..Default::default()
                }],
                response_partition_limit: 10,
                ..Default::default()
            },
            0,
        )
        .expect("DescribeTopicPartitions");
    let partitions = &described.topics[0].partitions;
    assert_eq!(partitions.len(), 2, "{described:?}");
    assert_eq!(
        (partitions[1].error_code, partitions[1].leader_id),
        (LEADER_NOT_AVAILABLE, -1),
        "{described:?}"
    );
    assert_eq!(partitions[1].offline_replicas, vec![data.node_id]);
    assert_eq!(
        (partitions[0].error_code, partitions[0].leader_id),
        (error::NONE, data.node_id)
    );
    assert_eq!(
        produce(&mut client, "lost", 1, batch(1, 10)).error_code,
        KAFKA_STORAGE_ERROR
    );
    assert_eq!(
        list_offset(&mut client, "lost", 1, -1).0,
        KAFKA_STORAGE_ERROR
    );
    // The other partition is served as usual.
    assert_eq!(
        produce(&mut client, "lost", 0, batch(1, 10)).error_code,
        error::NONE
    );
    drop(client);
    broker.stop();

    // With the obstacle gone, the next start makes the directory.
    std::fs::remove_file(&obstacle).expect("remove the obstacle");
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    assert_eq!(
        produce(&mut client, "lost", 1, batch(1, 10)).error_code,
        error::NONE
    );
}
