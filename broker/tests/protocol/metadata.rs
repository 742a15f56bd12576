//! Metadata (key 3) at v0, v1, v4, v9 (first flexible), v10-v11 (topic ids in responses),
//! v12 and v13 (lookup by topic id): brokers, cluster id, controller, topics and partitions,
//! error codes, authorized operations. Compared with KafkaApis.handleTopicMetadataRequest
//! and KRaftMetadataCache.getTopicMetadata.

use std::collections::BTreeMap;

use gregor_protocol::Uuid;
use gregor_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use gregor_protocol::messages::metadata_response::{MetadataResponse, MetadataResponseTopic};

use crate::support::{Broker, DataDir, TopicSpec, random_uuid};
use crate::{CLUSTER_OPERATIONS, OPERATIONS_OMITTED, TOPIC_OPERATIONS, connect, error};

/// The versions tested (v9 is the first flexible one, v10 adds topic ids, v12 lookups by
/// id, v13 a top-level error code).
const VERSIONS: &[i16] = &[0, 1, 4, 9, 10, 12, 13];

/// Four topics: with records, empty, a name with every legal punctuation, and an internal
/// topic.
fn fixture() -> DataDir {
    DataDir::builder()
        .topic(TopicSpec::new("alpha", 3).records(10))
        .topic(TopicSpec::new("beta", 1))
        .topic(TopicSpec::new("gamma.v2_x-1", 2).records(3))
        .topic(TopicSpec::new("__consumer_offsets", 2))
        .build()
}

/// The broker of [`fixture`], without auto-creation, so that an unknown name gets
/// UNKNOWN_TOPIC_OR_PARTITION from Kafka at every version (with auto.create.topics.enable,
/// Kafka would create the topic on a v0-v3 request, which implies allow_auto_topic_creation).
fn start(data: &DataDir) -> Broker {
    Broker::start_with(data, &[("auto.create.topics.enable", "false")])
}

fn all_topics(version: i16) -> MetadataRequest {
    MetadataRequest {
        // v0 asks for every topic with an empty list, later versions with null.
        topics: if version == 0 { Some(Vec::new()) } else { None },
        allow_auto_topic_creation: version < 4,
        ..Default::default()
    }
}

fn named(version: i16, names: &[&str]) -> MetadataRequest {
    MetadataRequest {
        topics: Some(
            names
                .iter()
                .map(|name| MetadataRequestTopic {
                    name: Some((*name).into()),
                    ..Default::default()
                })
                .collect(),
        ),
        // Versions before 4 cannot say false (and do not carry the field).
        allow_auto_topic_creation: version < 4,
        ..Default::default()
    }
}

fn by_id(ids: &[Uuid]) -> MetadataRequest {
    MetadataRequest {
        topics: Some(
            ids.iter()
                .map(|id| MetadataRequestTopic {
                    topic_id: *id,
                    name: None,
                    ..Default::default()
                })
                .collect(),
        ),
        allow_auto_topic_creation: false,
        ..Default::default()
    }
}

fn topics_by_name(response: &MetadataResponse) -> BTreeMap<String, &MetadataResponseTopic> {
    let mut out = BTreeMap::new();
    for topic in &response.topics {
        let name = topic.name.as_deref().expect("a topic name").to_string();
        assert!(
            out.insert(name.clone(), topic).is_none(),
            "{name} listed twice"
        );
    }
    out
}

/// Checks the broker list, cluster id and controller of any Metadata response.
fn check_cluster(data: &DataDir, version: i16, response: &MetadataResponse) {
    assert_eq!(response.throttle_time_ms, 0, "v{version}");
    assert_eq!(
        response.brokers.len(),
        1,
        "v{version}: {:?}",
        response.brokers
    );
    let broker = &response.brokers[0];
    assert_eq!(broker.node_id, data.node_id, "v{version}: node id");
    assert_eq!(&*broker.host, "127.0.0.1", "v{version}: advertised host");
    assert_eq!(
        broker.port,
        i32::from(data.ports.plaintext),
        "v{version}: advertised port"
    );
    assert_eq!(broker.rack, None, "v{version}: rack");
    if version >= 1 {
        // KRaft: Kafka reports a random alive broker as the controller; here the only one.
        assert_eq!(
            response.controller_id, data.node_id,
            "v{version}: controller"
        );
    }
    if version >= 2 {
        assert_eq!(
            response.cluster_id.as_deref(),
            Some(data.cluster_id.as_str()),
            "v{version}: cluster id from meta.properties"
        );
    } else {
        assert_eq!(response.cluster_id, None);
    }
    if version >= 13 {
        assert_eq!(
            response.error_code,
            error::NONE,
            "v{version}: top-level error"
        );
    }
}

/// Checks one existing topic against the fixture.
fn check_topic(
    data: &DataDir,
    version: i16,
    topic: &MetadataResponseTopic,
    operations: Option<i32>,
) {
    let name = topic.name.as_deref().expect("a name");
    let written = data.topic(name);
    assert_eq!(topic.error_code, error::NONE, "v{version} {name}");
    if version >= 1 {
        assert_eq!(
            topic.is_internal,
            name == "__consumer_offsets",
            "v{version} {name}"
        );
    }
    let expected_id = if version >= 10 {
        written.id
    } else {
        Uuid::nil()
    };
    assert_eq!(topic.topic_id, expected_id, "v{version} {name}: topic id");
    if version >= 8 {
        assert_eq!(
            topic.topic_authorized_operations,
            operations.unwrap_or(OPERATIONS_OMITTED),
            "v{version} {name}: topic_authorized_operations"
        );
    }
    // Kafka lists the partitions in the order of its map; the order carries no meaning.
    let mut partitions: Vec<_> = topic.partitions.iter().collect();
    partitions.sort_by_key(|p| p.partition_index);
    let indexes: Vec<i32> = partitions.iter().map(|p| p.partition_index).collect();
    let expected: Vec<i32> = written.partitions.iter().map(|p| p.index).collect();
    assert_eq!(indexes, expected, "v{version} {name}: partitions");
    for p in partitions {
        let at = format!("v{version} {name}-{}", p.partition_index);
        assert_eq!(p.error_code, error::NONE, "{at}");
        assert_eq!(p.leader_id, data.node_id, "{at}: leader");
        let epoch = if version >= 7 { 0 } else { -1 };
        assert_eq!(p.leader_epoch, epoch, "{at}: leader epoch");
        assert_eq!(p.replica_nodes, vec![data.node_id], "{at}: replicas");
        assert_eq!(p.isr_nodes, vec![data.node_id], "{at}: isr");
        assert!(p.offline_replicas.is_empty(), "{at}: offline replicas");
    }
}

#[test]
fn all_topics_at_every_version() {
    let data = fixture();
    let broker = start(&data);
    let mut client = connect(&broker);
    for &version in VERSIONS {
        let response = client.call(&all_topics(version), version).unwrap();
        check_cluster(&data, version, &response);
        let topics = topics_by_name(&response);
        let names: Vec<&str> = topics.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["__consumer_offsets", "alpha", "beta", "gamma.v2_x-1"],
            "v{version}"
        );
        for topic in topics.values() {
            check_topic(&data, version, topic, None);
        }
    }
}

#[test]
fn an_empty_topic_list_means_no_topics_from_v1() {
    let data = fixture();
    let broker = start(&data);
    let mut client = connect(&broker);
    for &version in &VERSIONS[1..] {
        let response = client.call(&named(version, &[]), version).unwrap();
        check_cluster(&data, version, &response);
        assert!(
            response.topics.is_empty(),
            "v{version}: {:?}",
            response.topics
        );
    }
}

#[test]
fn named_topics_unknown_names_and_illegal_names() {
    let data = fixture();
    let broker = start(&data);
    let mut client = connect(&broker);
    let long = "x".repeat(250);
    let names = [
        "alpha",
        "gamma.v2_x-1",
        "no-such-topic",
        // Differs from an existing topic only by '.' versus '_': still unknown.
        "gamma_v2_x-1",
        "bad name!",
        "",
        ".",
        "..",
        long.as_str(),
    ];
    for &version in VERSIONS {
        let response = client.call(&named(version, &names), version).unwrap();
        check_cluster(&data, version, &response);
        let topics = topics_by_name(&response);
        assert_eq!(topics.len(), names.len(), "v{version}: {:?}", topics.keys());
        check_topic(&data, version, topics["alpha"], None);
        check_topic(&data, version, topics["gamma.v2_x-1"], None);
        for (name, code) in [
            ("no-such-topic", error::UNKNOWN_TOPIC_OR_PARTITION),
            ("gamma_v2_x-1", error::UNKNOWN_TOPIC_OR_PARTITION),
            ("bad name!", error::INVALID_TOPIC_EXCEPTION),
            ("", error::INVALID_TOPIC_EXCEPTION),
            (".", error::INVALID_TOPIC_EXCEPTION),
            ("..", error::INVALID_TOPIC_EXCEPTION),
            (long.as_str(), error::INVALID_TOPIC_EXCEPTION),
        ] {
            let topic = topics[name];
            let at = format!("v{version} {:?}", &name[..name.len().min(20)]);
            assert_eq!(topic.error_code, code, "{at}");
            assert!(topic.partitions.is_empty(), "{at}");
            assert_eq!(topic.topic_id, Uuid::nil(), "{at}");
            assert!(!topic.is_internal, "{at}");
        }
    }
}

#[test]
fn lookup_by_topic_id_from_v12() {
    let data = fixture();
    let broker = start(&data);
    let mut client = connect(&broker);
    let alpha = data.topic("alpha");
    let beta = data.topic("beta");
    let unknown = random_uuid();
    for version in [12, 13] {
        let response = client
            .call(&by_id(&[alpha.id, unknown, beta.id]), version)
            .unwrap();
        check_cluster(&data, version, &response);
        assert_eq!(
            response.topics.len(),
            3,
            "v{version}: {:?}",
            response.topics
        );
        for written in [alpha, beta] {
            let topic = response
                .topics
                .iter()
                .find(|t| t.topic_id == written.id)
                .unwrap_or_else(|| panic!("v{version}: {} not found by id", written.name));
            assert_eq!(topic.name.as_deref(), Some(written.name.as_str()));
            check_topic(&data, version, topic, None);
        }
        // KafkaApis: an unknown id gets UNKNOWN_TOPIC_ID with a null name and the id echoed.
        let missing = response
            .topics
            .iter()
            .find(|t| t.topic_id == unknown)
            .expect("the unknown id is answered");
        assert_eq!(missing.error_code, error::UNKNOWN_TOPIC_ID, "v{version}");
        assert_eq!(missing.name, None, "v{version}");
        assert!(missing.partitions.is_empty(), "v{version}");
    }
}

#[test]
fn kafka_parity_topic_ids_in_v10_v11_requests_are_invalid() {
    // KafkaApis.handleTopicMetadataRequest throws InvalidRequestException ("Topic IDs are
    // not supported in requests for version 10/11") for a topic with a null name or a
    // non-zero id before v12; MetadataRequest.getErrorResponse then answers every requested
    // topic with INVALID_REQUEST (42), its name as "" and its id echoed, and no partitions.
    let data = fixture();
    let broker = start(&data);
    let mut client = connect(&broker);
    let alpha = data.topic("alpha");
    for version in [10, 11] {
        let response = client.call(&by_id(&[alpha.id]), version).unwrap();
        assert_eq!(response.topics.len(), 1, "v{version}");
        let topic = &response.topics[0];
        assert_eq!(
            topic.error_code,
            error::INVALID_REQUEST,
            "v{version}: a lookup by topic id before v12 must fail as in Kafka; got {topic:?}"
        );
        assert!(topic.partitions.is_empty(), "v{version}");
    }
}

#[test]
fn authorized_operations_only_when_asked() {
    let data = fixture();
    let broker = start(&data);
    let mut client = connect(&broker);
    for version in [8, 9, 10, 11, 12, 13] {
        for asked in [false, true] {
            let request = MetadataRequest {
                topics: None,
                allow_auto_topic_creation: false,
                include_topic_authorized_operations: asked,
                // Only in v8-v10 (KIP-700 moved it to DescribeCluster).
                include_cluster_authorized_operations: false,
                ..Default::default()
            };
            let response = client.call(&request, version).unwrap();
            check_cluster(&data, version, &response);
            assert_eq!(response.topics.len(), 4);
            for topic in &response.topics {
                check_topic(&data, version, topic, asked.then_some(TOPIC_OPERATIONS));
            }
            assert_eq!(
                response.cluster_authorized_operations, OPERATIONS_OMITTED,
                "v{version}: cluster operations not asked for"
            );
        }
    }
}

#[test]
fn kafka_parity_cluster_authorized_operations() {
    // v8-v10 with include_cluster_authorized_operations: without an authorizer Kafka reports
    // AclEntry.supportedOperations(CLUSTER) = CREATE, ALTER, DESCRIBE, CLUSTER_ACTION,
    // DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE (8096). CREATE_TOKENS and
    // DESCRIBE_TOKENS are operations on USER resources, not on the cluster.
    let data = fixture();
    let broker = start(&data);
    let mut client = connect(&broker);
    for version in [8, 9, 10] {
        let request = MetadataRequest {
            topics: Some(Vec::new()),
            allow_auto_topic_creation: false,
            include_cluster_authorized_operations: true,
            ..Default::default()
        };
        let response = client.call(&request, version).unwrap();
        assert_eq!(
            response.cluster_authorized_operations, CLUSTER_OPERATIONS,
            "v{version}: cluster_authorized_operations {:#b}, Kafka reports {CLUSTER_OPERATIONS:#b}",
            response.cluster_authorized_operations
        );
    }
}

#[test]
fn kafka_parity_a_topic_named_twice_is_answered_once() {
    // KafkaApis takes the requested names as a set.
    let data = fixture();
    let broker = start(&data);
    let mut client = connect(&broker);
    for version in [1, 12] {
        let response = client
            .call(
                &named(version, &["alpha", "alpha", "nope", "nope"]),
                version,
            )
            .unwrap();
        let names: Vec<&str> = response
            .topics
            .iter()
            .map(|t| t.name.as_deref().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "v{version}: {names:?}");
    }
}
