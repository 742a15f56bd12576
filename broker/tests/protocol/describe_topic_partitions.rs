//! DescribeTopicPartitions v0 (key 75, KIP-966): topics sorted by name, partitions in index
//! order, response_partition_limit and the cursor. Compared with Kafka's
//! DescribeTopicPartitionsRequestHandler and KRaftMetadataCache.describeTopicResponse.

use std::collections::BTreeSet;

use gregor_protocol::Uuid;
use gregor_protocol::messages::describe_topic_partitions_request::{
    Cursor, DescribeTopicPartitionsRequest, TopicRequest,
};
use gregor_protocol::messages::describe_topic_partitions_response::{
    DescribeTopicPartitionsResponse, DescribeTopicPartitionsResponseTopic,
};

use crate::support::{Broker, DataDir, RawClient, TopicSpec};
use crate::{TOPIC_OPERATIONS, connect, error};

/// Topics, by name: `__consumer_offsets` (2 partitions, internal), `a-one` (1), `b-three`
/// (3), `many` (25), `z-last` (2).
fn fixture() -> DataDir {
    DataDir::builder()
        .topic(TopicSpec::new("many", 25))
        .topic(TopicSpec::new("__consumer_offsets", 2))
        .topic(TopicSpec::new("z-last", 2).records(4))
        .topic(TopicSpec::new("a-one", 1).records(1))
        .topic(TopicSpec::new("b-three", 3))
        .build()
}

/// The fixture's partitions in the order DescribeTopicPartitions lists them.
fn everything(data: &DataDir) -> Vec<(String, i32)> {
    let mut all: Vec<(String, i32)> = data
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.clone(), p.index)))
        .collect();
    all.sort();
    all
}

fn request(
    topics: &[&str],
    limit: i32,
    cursor: Option<(&str, i32)>,
) -> DescribeTopicPartitionsRequest {
    DescribeTopicPartitionsRequest {
        topics: topics
            .iter()
            .map(|name| TopicRequest {
                name: (*name).into(),
                ..Default::default()
            })
            .collect(),
        response_partition_limit: limit,
        cursor: cursor.map(|(topic, partition)| Cursor {
            topic_name: topic.into(),
            partition_index: partition,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn describe(
    client: &mut RawClient,
    request: &DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let response = client.call(request, 0).expect("DescribeTopicPartitions v0");
    assert_eq!(response.throttle_time_ms, 0);
    response
}

/// Checks an existing topic of a response against the fixture.
fn check_topic(data: &DataDir, topic: &DescribeTopicPartitionsResponseTopic) {
    let name = topic.name.as_deref().expect("a topic name");
    let written = data.topic(name);
    assert_eq!(topic.error_code, error::NONE, "{name}");
    assert_eq!(topic.topic_id, written.id, "{name}: topic id");
    assert_eq!(topic.is_internal, name == "__consumer_offsets", "{name}");
    // Kafka sets the authorized operations of every topic (no authorizer: all of them).
    assert_eq!(
        topic.topic_authorized_operations, TOPIC_OPERATIONS,
        "{name}"
    );
    let indexes: Vec<i32> = topic.partitions.iter().map(|p| p.partition_index).collect();
    let mut sorted = indexes.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        indexes, sorted,
        "{name}: partitions in index order, once each"
    );
    for p in &topic.partitions {
        let at = format!("{name}-{}", p.partition_index);
        assert!(
            (p.partition_index as usize) < written.partitions.len(),
            "{at} does not exist"
        );
        assert_eq!(p.error_code, error::NONE, "{at}");
        assert_eq!(p.leader_id, data.node_id, "{at}: leader");
        assert_eq!(p.leader_epoch, 0, "{at}: leader epoch");
        assert_eq!(p.replica_nodes, vec![data.node_id], "{at}: replicas");
        assert_eq!(p.isr_nodes, vec![data.node_id], "{at}: isr");
        // No ELR written (PartitionRecord v1): empty lists, not null (Replicas.toList).
        assert_eq!(p.eligible_leader_replicas, Some(Vec::new()), "{at}: ELR");
        assert_eq!(p.last_known_elr, Some(Vec::new()), "{at}: last known ELR");
        assert!(p.offline_replicas.is_empty(), "{at}: offline replicas");
    }
}

/// Pages through `topics` with `limit`, following the cursor; returns every page.
fn pages(
    data: &DataDir,
    client: &mut RawClient,
    topics: &[&str],
    limit: i32,
) -> Vec<DescribeTopicPartitionsResponse> {
    let mut out: Vec<DescribeTopicPartitionsResponse> = Vec::new();
    let mut cursor: Option<(String, i32)> = None;
    loop {
        assert!(
            out.len() < 200,
            "limit {limit}: the cursor does not progress"
        );
        let response = describe(
            client,
            &request(
                topics,
                limit,
                cursor.as_ref().map(|(t, p)| (t.as_str(), *p)),
            ),
        );
        let count: usize = response.topics.iter().map(|t| t.partitions.len()).sum();
        assert!(
            count <= limit as usize,
            "limit {limit}: a page of {count} partitions"
        );
        for topic in response
            .topics
            .iter()
            .filter(|t| t.error_code == error::NONE)
        {
            check_topic(data, topic);
        }
        let next = response
            .next_cursor
            .as_ref()
            .map(|c| (c.topic_name.to_string(), c.partition_index));
        if let (Some(previous), Some(next)) = (&cursor, &next) {
            assert!(
                next > previous,
                "limit {limit}: cursor {next:?} after {previous:?}"
            );
        }
        out.push(response);
        match next {
            Some(next) => cursor = Some(next),
            None => return out,
        }
    }
}

/// The (topic, partition) pairs of `pages`, in order, asserting none repeats.
fn union(pages: &[DescribeTopicPartitionsResponse], limit: i32) -> Vec<(String, i32)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for page in pages {
        for topic in page.topics.iter().filter(|t| t.error_code == error::NONE) {
            let name = topic.name.as_deref().unwrap().to_string();
            for p in &topic.partitions {
                let key = (name.clone(), p.partition_index);
                assert!(seen.insert(key.clone()), "limit {limit}: {key:?} twice");
                out.push(key);
            }
        }
    }
    out
}

#[test]
fn all_topics_sorted_with_partitions_in_index_order() {
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let response = describe(&mut client, &request(&[], 2000, None));
    let names: Vec<&str> = response
        .topics
        .iter()
        .map(|t| t.name.as_deref().unwrap())
        .collect();
    assert_eq!(
        names,
        ["__consumer_offsets", "a-one", "b-three", "many", "z-last"]
    );
    for topic in &response.topics {
        check_topic(&data, topic);
        assert_eq!(
            topic.partitions.len(),
            data.topic(topic.name.as_deref().unwrap()).partitions.len()
        );
    }
    assert_eq!(response.next_cursor, None);
    // Named topics, given out of order and with a duplicate, come back sorted, once each.
    let response = describe(
        &mut client,
        &request(&["z-last", "b-three", "z-last", "a-one"], 2000, None),
    );
    let names: Vec<&str> = response
        .topics
        .iter()
        .map(|t| t.name.as_deref().unwrap())
        .collect();
    assert_eq!(names, ["a-one", "b-three", "z-last"]);
    assert_eq!(response.next_cursor, None);
}

#[test]
fn paging_with_small_limits_returns_everything_once() {
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let all = everything(&data);
    assert_eq!(all.len(), 33);
    for limit in [1, 2, 3, 4, 5, 7, 24, 25, 26, 27, 30, 31, 32, 33, 34] {
        let pages = pages(&data, &mut client, &[], limit);
        let got = union(&pages, limit);
        assert_eq!(got, all, "limit {limit}: the union of the pages");
        // Every page but the last is full.
        for page in &pages[..pages.len() - 1] {
            let count: usize = page.topics.iter().map(|t| t.partitions.len()).sum();
            assert_eq!(
                count, limit as usize,
                "limit {limit}: a short page before the end"
            );
        }
    }
    // A limit of 0 or less is taken as 1 (Kafka: max(min(limit, 2000), 1)).
    for limit in [0, -5] {
        let response = describe(&mut client, &request(&[], limit, None));
        let count: usize = response.topics.iter().map(|t| t.partitions.len()).sum();
        assert_eq!(count, 1, "limit {limit}");
        let cursor = response.next_cursor.expect("a cursor");
        assert_eq!(
            (&*cursor.topic_name, cursor.partition_index),
            ("__consumer_offsets", 1)
        );
    }
}

#[test]
fn paging_through_named_topics() {
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let topics = ["z-last", "many", "b-three"];
    let mut expected: Vec<(String, i32)> = everything(&data)
        .into_iter()
        .filter(|(t, _)| topics.contains(&t.as_str()))
        .collect();
    expected.sort();
    for limit in [1, 3, 4, 10, 27, 30, 31] {
        let pages = pages(&data, &mut client, &topics, limit);
        assert_eq!(union(&pages, limit), expected, "limit {limit}");
    }
}

#[test]
fn cursor_in_the_middle_of_a_topic() {
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let response = describe(&mut client, &request(&[], 2000, Some(("many", 10))));
    let got: Vec<(String, i32)> = response
        .topics
        .iter()
        .flat_map(|t| {
            let name = t.name.as_deref().unwrap().to_string();
            t.partitions
                .iter()
                .map(move |p| (name.clone(), p.partition_index))
        })
        .collect();
    let expected: Vec<(String, i32)> = everything(&data)
        .into_iter()
        .filter(|(t, p)| (t.as_str(), *p) >= ("many", 10))
        .collect();
    assert_eq!(got, expected);
    for topic in &response.topics {
        check_topic(&data, topic);
    }
    assert_eq!(response.next_cursor, None);
    // With a limit: partitions 10..15 of `many`, then a cursor at 15.
    let response = describe(&mut client, &request(&[], 5, Some(("many", 10))));
    assert_eq!(response.topics.len(), 1);
    let indexes: Vec<i32> = response.topics[0]
        .partitions
        .iter()
        .map(|p| p.partition_index)
        .collect();
    assert_eq!(indexes, [10, 11, 12, 13, 14]);
    let cursor = response.next_cursor.expect("a cursor");
    assert_eq!((&*cursor.topic_name, cursor.partition_index), ("many", 15));
    // A cursor past the last partition of its topic: the topic with no partitions, then on.
    let response = describe(&mut client, &request(&[], 2000, Some(("b-three", 7))));
    let names: Vec<(&str, usize)> = response
        .topics
        .iter()
        .map(|t| (t.name.as_deref().unwrap(), t.partitions.len()))
        .collect();
    assert_eq!(names, [("b-three", 0), ("many", 25), ("z-last", 2)]);
}

#[test]
fn unknown_topics_get_error_3_and_the_zero_id() {
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let response = describe(
        &mut client,
        &request(&["no-such", "a-one", "m-missing"], 2000, None),
    );
    let names: Vec<(&str, i16)> = response
        .topics
        .iter()
        .map(|t| (t.name.as_deref().unwrap(), t.error_code))
        .collect();
    assert_eq!(
        names,
        [
            ("a-one", error::NONE),
            ("m-missing", error::UNKNOWN_TOPIC_OR_PARTITION),
            ("no-such", error::UNKNOWN_TOPIC_OR_PARTITION),
        ],
        "sorted by name, unknown topics in place"
    );
    check_topic(&data, &response.topics[0]);
    for topic in &response.topics[1..] {
        assert_eq!(topic.topic_id, Uuid::nil());
        assert!(topic.partitions.is_empty());
        assert!(!topic.is_internal);
    }
    assert_eq!(response.next_cursor, None);
}

#[test]
fn unknown_topic_between_pages_is_reported() {
    // KRaftMetadataCache.describeTopicResponse: once the limit is used up, the cursor points
    // at the next requested topic "even if it does not exist", so an unknown topic after a
    // full page is reported (UNKNOWN_TOPIC_OR_PARTITION) on the next page.
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let topics = ["a-one", "b-three", "c-missing", "many"];
    // a-one (1) + b-three (3) fill a page of 4 exactly; a page of 1 ends after a-one.
    for limit in [4, 1, 2] {
        let pages = pages(&data, &mut client, &topics, limit);
        let missing: Vec<i16> = pages
            .iter()
            .flat_map(|p| p.topics.iter())
            .filter(|t| t.name.as_deref() == Some("c-missing"))
            .map(|t| t.error_code)
            .collect();
        assert_eq!(
            missing,
            [error::UNKNOWN_TOPIC_OR_PARTITION],
            "limit {limit}: c-missing must be reported once across the pages; pages: {:?}",
            pages
                .iter()
                .map(|p| (
                    p.topics
                        .iter()
                        .map(|t| (t.name.as_deref().unwrap().to_string(), t.partitions.len()))
                        .collect::<Vec<_>>(),
                    p.next_cursor
                        .as_ref()
                        .map(|c| (c.topic_name.to_string(), c.partition_index))
                ))
                .collect::<Vec<_>>()
        );
        let expected: Vec<(String, i32)> = everything(&data)
            .into_iter()
            .filter(|(t, _)| topics.contains(&t.as_str()))
            .collect();
        assert_eq!(union(&pages, limit), expected, "limit {limit}");
    }
}

#[test]
fn kafka_parity_illegal_names_and_error_topics() {
    // describeTopicResponse validates the name of a topic it does not find:
    // INVALID_TOPIC_EXCEPTION (17) for an illegal one. The handler then sets
    // topic_authorized_operations on every topic of the response, errors included.
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let response = describe(&mut client, &request(&["bad name!", "no-such"], 2000, None));
    let got: Vec<(&str, i16, i32)> = response
        .topics
        .iter()
        .map(|t| {
            (
                t.name.as_deref().unwrap(),
                t.error_code,
                t.topic_authorized_operations,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "bad name!",
                error::INVALID_TOPIC_EXCEPTION,
                TOPIC_OPERATIONS
            ),
            (
                "no-such",
                error::UNKNOWN_TOPIC_OR_PARTITION,
                TOPIC_OPERATIONS
            ),
        ]
    );
}

#[test]
fn kafka_parity_invalid_cursor_is_invalid_request() {
    // DescribeTopicPartitionsRequestHandler throws InvalidRequestException when the cursor's
    // topic is not among the named topics, or its partition is negative; every requested
    // topic is then answered with INVALID_REQUEST (42).
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    for (topics, cursor) in [
        (&["a-one", "b-three"][..], ("many", 0)),
        (&["many"][..], ("many", -1)),
    ] {
        let response = describe(&mut client, &request(topics, 2000, Some(cursor)));
        let got: Vec<(&str, i16)> = response
            .topics
            .iter()
            .map(|t| (t.name.as_deref().unwrap(), t.error_code))
            .collect();
        let expected: Vec<(&str, i16)> = topics
            .iter()
            .map(|t| (*t, error::INVALID_REQUEST))
            .collect();
        assert_eq!(got, expected, "topics {topics:?} with cursor {cursor:?}");
    }
}

#[test]
fn the_response_partition_limit_is_capped_at_2000() {
    // Kafka: max(min(max.request.partition.size.limit (2000), response_partition_limit), 1).
    let data = DataDir::builder()
        .topic(TopicSpec::new("wide", 2003))
        .topic(TopicSpec::new("x-after", 1))
        .build();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let response = describe(&mut client, &request(&[], i32::MAX, None));
    assert_eq!(response.topics.len(), 1);
    let indexes: Vec<i32> = response.topics[0]
        .partitions
        .iter()
        .map(|p| p.partition_index)
        .collect();
    assert_eq!(indexes, (0..2000).collect::<Vec<_>>());
    let cursor = response.next_cursor.expect("a cursor");
    assert_eq!(
        (&*cursor.topic_name, cursor.partition_index),
        ("wide", 2000)
    );
    let response = describe(&mut client, &request(&[], i32::MAX, Some(("wide", 2000))));
    let got: Vec<(&str, usize)> = response
        .topics
        .iter()
        .map(|t| (t.name.as_deref().unwrap(), t.partitions.len()))
        .collect();
    assert_eq!(got, [("wide", 3), ("x-after", 1)]);
    assert_eq!(response.next_cursor, None);
}
