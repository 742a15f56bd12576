//! The authorization checks of the admin, log-dir, transaction and describe APIs, request
//! by request over SASL_PLAINTEXT/PLAIN, as Kafka's `KafkaApis` and `ControllerApis` make
//! them: a principal without the ACL gets Kafka's exact error shape, the same principal
//! with it gets what the super user gets, and the super user needs none.

use bytes::Bytes;
use gregor_protocol::error_code;
use gregor_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic,
};
use gregor_protocol::messages::alter_client_quotas_request::{
    AlterClientQuotasRequest, EntityData, EntryData, OpData,
};
use gregor_protocol::messages::alter_client_quotas_response::AlterClientQuotasResponse;
use gregor_protocol::messages::alter_partition_reassignments_request::{
    AlterPartitionReassignmentsRequest, ReassignablePartition, ReassignableTopic,
};
use gregor_protocol::messages::alter_replica_log_dirs_request::{
    AlterReplicaLogDir, AlterReplicaLogDirTopic, AlterReplicaLogDirsRequest,
};
use gregor_protocol::messages::alter_user_scram_credentials_request::{
    AlterUserScramCredentialsRequest, ScramCredentialDeletion,
};
use gregor_protocol::messages::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use gregor_protocol::messages::consumer_group_describe_response::DescribedGroup;
use gregor_protocol::messages::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use gregor_protocol::messages::create_acls_request::{AclCreation, CreateAclsRequest};
use gregor_protocol::messages::describe_client_quotas_request::DescribeClientQuotasRequest;
use gregor_protocol::messages::describe_log_dirs_request::DescribeLogDirsRequest;
use gregor_protocol::messages::describe_producers_request::{
    DescribeProducersRequest, TopicRequest as ProducersTopic,
};
use gregor_protocol::messages::describe_quorum_request::{
    DescribeQuorumRequest, PartitionData, TopicData,
};
use gregor_protocol::messages::describe_topic_partitions_request::{
    DescribeTopicPartitionsRequest, TopicRequest,
};
use gregor_protocol::messages::describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic;
use gregor_protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
use gregor_protocol::messages::describe_transactions_response::TransactionState;
use gregor_protocol::messages::describe_user_scram_credentials_request::{
    DescribeUserScramCredentialsRequest, UserName,
};
use gregor_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use gregor_protocol::messages::list_config_resources_request::ListConfigResourcesRequest;
use gregor_protocol::messages::list_partition_reassignments_request::{
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsTopics,
};
use gregor_protocol::messages::list_transactions_request::ListTransactionsRequest;
use gregor_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderEpochRequest, OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use gregor_protocol::messages::sasl_authenticate_request::SaslAuthenticateRequest;
use gregor_protocol::messages::sasl_handshake_request::SaslHandshakeRequest;
use gregor_protocol::messages::update_features_request::UpdateFeaturesRequest;
use gregor_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic, WriteTxnMarkersRequest,
};
use gregor_protocol::{ByteString, Uuid};

use crate::SecureBroker;
use crate::support::{DataDir, RawClient, TopicSpec};

const AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

// Kafka's `ResourceType` and `AclOperation` codes.
const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const CLUSTER: i8 = 4;
const TRANSACTIONAL_ID: i8 = 5;
const READ: i8 = 3;
const DESCRIBE: i8 = 8;
const ALTER: i8 = 7;
const CLUSTER_ACTION: i8 = 9;
const ALTER_CONFIGS: i8 = 11;

/// READ and DESCRIBE (a READ ACL implies DESCRIBE).
const TOPIC_READ_OPS: i32 = (1 << 3) | (1 << 8);
/// Every topic operation: READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS,
/// ALTER_CONFIGS.
const TOPIC_ALL_OPS: i32 =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);
/// Every group operation: READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
const GROUP_ALL_OPS: i32 = (1 << 3) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 11);

/// A connection authenticated with PLAIN as `user` (password `<user>-secret`).
fn login(b: &SecureBroker, user: &str) -> RawClient {
    let mut client = RawClient::connect(b.sasl_plaintext).unwrap();
    let handshake = SaslHandshakeRequest {
        mechanism: "PLAIN".into(),
    };
    assert_eq!(client.call(&handshake, 1).unwrap().error_code, 0);
    let token = format!("\0{user}\0{user}-secret");
    let response = client
        .call(
            &SaslAuthenticateRequest {
                auth_bytes: Bytes::from(token.into_bytes()),
                ..Default::default()
            },
            2,
        )
        .unwrap();
    assert_eq!(response.error_code, 0, "{response:?}");
    client
}

/// ALLOW ACLs for `User:alice` on literal resources, created by the super user.
fn grant(admin: &mut RawClient, acls: &[(i8, &str, i8)]) {
    let creations = acls
        .iter()
        .map(|&(resource_type, name, operation)| AclCreation {
            resource_type,
            resource_name: name.into(),
            resource_pattern_type: 3,
            principal: "User:alice".into(),
            host: "*".into(),
            operation,
            permission_type: 3,
            ..Default::default()
        })
        .collect();
    let response = admin
        .call(
            &CreateAclsRequest {
                creations,
                ..Default::default()
            },
            3,
        )
        .unwrap();
    assert!(
        response.results.iter().all(|r| r.error_code == 0),
        "{response:?}"
    );
}

fn describe_scram(c: &mut RawClient) -> (i16, Vec<(String, i16)>) {
    let request = DescribeUserScramCredentialsRequest {
        users: Some(vec![UserName {
            name: "bob".into(),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let r = c.call(&request, 0).unwrap();
    let results = r
        .results
        .iter()
        .map(|x| (x.user.to_string(), x.error_code))
        .collect();
    (r.error_code, results)
}

fn alter_scram(c: &mut RawClient) -> Vec<(String, i16)> {
    let deletion = |name: &str| ScramCredentialDeletion {
        name: name.into(),
        mechanism: 1,
        ..Default::default()
    };
    let request = AlterUserScramCredentialsRequest {
        deletions: vec![deletion("carol"), deletion("bob"), deletion("carol")],
        ..Default::default()
    };
    let r = c.call(&request, 0).unwrap();
    r.results
        .iter()
        .map(|x| (x.user.to_string(), x.error_code))
        .collect()
}

fn describe_quotas(c: &mut RawClient) -> (i16, bool) {
    let r = c.call(&DescribeClientQuotasRequest::default(), 1).unwrap();
    (r.error_code, r.entries.is_some())
}

fn alter_quotas(c: &mut RawClient) -> AlterClientQuotasResponse {
    let entry = |user: &str| EntryData {
        entity: vec![EntityData {
            entity_type: "user".into(),
            entity_name: Some(user.into()),
            ..Default::default()
        }],
        ops: vec![OpData {
            key: "consumer_byte_rate".into(),
            value: 1000.0,
            remove: false,
            ..Default::default()
        }],
        ..Default::default()
    };
    let request = AlterClientQuotasRequest {
        entries: vec![entry("bob"), entry("carol")],
        validate_only: true,
        ..Default::default()
    };
    c.call(&request, 1).unwrap()
}

fn describe_log_dirs(c: &mut RawClient) -> (i16, usize) {
    let request = DescribeLogDirsRequest {
        topics: None,
        ..Default::default()
    };
    let r = c.call(&request, 4).unwrap();
    (r.error_code, r.results.len())
}

fn alter_log_dirs(c: &mut RawClient) -> Vec<(String, i32, i16)> {
    let request = AlterReplicaLogDirsRequest {
        dirs: vec![AlterReplicaLogDir {
            path: "/no/such/dir".into(),
            topics: vec![AlterReplicaLogDirTopic {
                name: "secure".into(),
                partitions: vec![0],
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let r = c.call(&request, 2).unwrap();
    r.results
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.topic_name.to_string(), p.partition_index, p.error_code))
        })
        .collect()
}

fn describe_producers(c: &mut RawClient, topic: &str) -> Vec<i16> {
    let request = DescribeProducersRequest {
        topics: vec![ProducersTopic {
            name: topic.into(),
            partition_indexes: vec![0],
            ..Default::default()
        }],
        ..Default::default()
    };
    let r = c.call(&request, 0).unwrap();
    r.topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

fn describe_txn(c: &mut RawClient) -> TransactionState {
    let request = DescribeTransactionsRequest {
        transactional_ids: vec!["tx1".into()],
        ..Default::default()
    };
    let mut r = c.call(&request, 0).unwrap();
    assert_eq!(r.transaction_states.len(), 1, "{r:?}");
    r.transaction_states.remove(0)
}

fn txn_topics(state: &TransactionState) -> Vec<String> {
    state.topics.iter().map(|t| t.topic.to_string()).collect()
}

fn list_txns(c: &mut RawClient) -> Vec<String> {
    let request = ListTransactionsRequest {
        duration_filter: -1,
        ..Default::default()
    };
    let r = c.call(&request, 1).unwrap();
    assert_eq!(r.error_code, 0, "{r:?}");
    r.transaction_states
        .iter()
        .map(|t| t.transactional_id.to_string())
        .collect()
}

fn write_markers(c: &mut RawClient) -> Vec<i16> {
    let request = WriteTxnMarkersRequest {
        markers: vec![WritableTxnMarker {
            producer_id: 4242,
            producer_epoch: 0,
            transaction_result: false,
            topics: vec![WritableTxnMarkerTopic {
                name: "no-such-topic".into(),
                partition_indexes: vec![0, 1],
                ..Default::default()
            }],
            coordinator_epoch: 0,
            ..Default::default()
        }],
        ..Default::default()
    };
    let r = c.call(&request, 1).unwrap();
    r.markers
        .iter()
        .flat_map(|m| m.topics.iter())
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

/// (topic, error) per partition, in response order.
fn leader_epochs(c: &mut RawClient, topics: &[&str]) -> Vec<(String, i16)> {
    let request = OffsetForLeaderEpochRequest {
        replica_id: -1,
        topics: topics
            .iter()
            .map(|t| OffsetForLeaderTopic {
                topic: (*t).into(),
                partitions: vec![OffsetForLeaderPartition {
                    partition: 0,
                    current_leader_epoch: -1,
                    leader_epoch: 0,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let r = c.call(&request, 4).unwrap();
    r.topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.topic.to_string(), p.error_code))
        })
        .collect()
}

fn update_features(c: &mut RawClient) -> (i16, Option<ByteString>) {
    let request = UpdateFeaturesRequest {
        timeout_ms: 30_000,
        validate_only: true,
        ..Default::default()
    };
    let r = c.call(&request, 1).unwrap();
    (r.error_code, r.error_message)
}

fn describe_quorum(c: &mut RawClient) -> (i16, Option<String>, usize) {
    let request = DescribeQuorumRequest {
        topics: vec![TopicData {
            topic_name: "__cluster_metadata".into(),
            partitions: vec![PartitionData {
                partition_index: 0,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let r = c.call(&request, 2).unwrap();
    (
        r.error_code,
        r.error_message.as_deref().map(str::to_string),
        r.topics.len(),
    )
}

fn list_config_resources(c: &mut RawClient) -> (i16, usize) {
    let r = c.call(&ListConfigResourcesRequest::default(), 1).unwrap();
    (r.error_code, r.config_resources.len())
}

fn describe_topics(c: &mut RawClient, names: &[&str]) -> Vec<DescribeTopicPartitionsResponseTopic> {
    let request = DescribeTopicPartitionsRequest {
        topics: names
            .iter()
            .map(|n| TopicRequest {
                name: (*n).into(),
                ..Default::default()
            })
            .collect(),
        response_partition_limit: 2000,
        cursor: None,
        ..Default::default()
    };
    c.call(&request, 0).unwrap().topics
}

fn topic_summary(topics: &[DescribeTopicPartitionsResponseTopic]) -> Vec<(String, i16, bool, i32)> {
    topics
        .iter()
        .map(|t| {
            (
                t.name.as_deref().unwrap_or_default().to_string(),
                t.error_code,
                t.topic_id == Uuid::nil(),
                t.topic_authorized_operations,
            )
        })
        .collect()
}

fn describe_groups(c: &mut RawClient, ids: &[&str]) -> Vec<DescribedGroup> {
    let request = ConsumerGroupDescribeRequest {
        group_ids: ids.iter().map(|g| (*g).into()).collect(),
        include_authorized_operations: true,
        ..Default::default()
    };
    c.call(&request, 0).unwrap().groups
}

fn group_summary(groups: &[DescribedGroup]) -> Vec<(String, i16, i32)> {
    groups
        .iter()
        .map(|g| {
            (
                g.group_id.to_string(),
                g.error_code,
                g.authorized_operations,
            )
        })
        .collect()
}

/// A consumer-protocol join of `group` subscribed to `topic`: (error, message).
fn join(c: &mut RawClient, group: &str, member: &str, topic: &str) -> (i16, Option<String>) {
    let request = ConsumerGroupHeartbeatRequest {
        group_id: group.into(),
        member_id: member.into(),
        member_epoch: 0,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(vec![topic.into()]),
        topic_partitions: Some(Vec::new()),
        ..Default::default()
    };
    let r = c.call(&request, 1).unwrap();
    (r.error_code, r.error_message.as_deref().map(str::to_string))
}

fn s(v: &str) -> String {
    v.to_string()
}

#[test]
fn the_describe_admin_and_transaction_apis_ask_kafkas_acls() {
    let data = DataDir::builder()
        .topic(TopicSpec::new("secure", 1))
        .topic(TopicSpec::new("other", 1))
        .feature("group.version", 1)
        .build();
    let b = SecureBroker::start_on(
        data,
        &[
            ("authorizer.class.name", AUTHORIZER),
            ("super.users", "User:admin;User:ANONYMOUS"),
        ],
    );
    let mut admin = login(&b, "admin");
    let mut alice = login(&b, "alice");

    // Fixtures made by the super user: a transaction over both topics, a consumer group.
    let init = admin
        .call(
            &InitProducerIdRequest {
                transactional_id: Some("tx1".into()),
                transaction_timeout_ms: 60_000,
                producer_id: -1,
                producer_epoch: -1,
                ..Default::default()
            },
            4,
        )
        .unwrap();
    assert_eq!(init.error_code, 0, "{init:?}");
    let added = admin
        .call(
            &AddPartitionsToTxnRequest {
                v3_and_below_transactional_id: "tx1".into(),
                v3_and_below_producer_id: init.producer_id,
                v3_and_below_producer_epoch: init.producer_epoch,
                v3_and_below_topics: ["secure", "other"]
                    .iter()
                    .map(|t| AddPartitionsToTxnTopic {
                        name: (*t).into(),
                        partitions: vec![0],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            },
            3,
        )
        .unwrap();
    assert!(
        added
            .results_by_topic_v3_and_below
            .iter()
            .flat_map(|t| t.results_by_partition.iter())
            .all(|p| p.partition_error_code == 0),
        "{added:?}"
    );
    assert_eq!(join(&mut admin, "g1", "m1", "secure"), (0, None));
    assert_eq!(join(&mut admin, "g4", "m4", "other"), (0, None));

    // The super user: everything, every operation.
    let admin_scram = describe_scram(&mut admin);
    assert_eq!(admin_scram.0, error_code::NONE);
    assert_eq!(
        admin_scram.1,
        [(s("bob"), error_code::RESOURCE_NOT_FOUND)],
        "{admin_scram:?}"
    );
    let admin_alter_scram = alter_scram(&mut admin);
    assert!(
        admin_alter_scram
            .iter()
            .all(|(_, code)| *code != error_code::CLUSTER_AUTHORIZATION_FAILED),
        "{admin_alter_scram:?}"
    );
    assert_eq!(describe_quotas(&mut admin), (error_code::NONE, true));
    let quotas = alter_quotas(&mut admin);
    assert!(
        quotas.entries.iter().all(|e| e.error_code == 0),
        "{quotas:?}"
    );
    let (code, dirs) = describe_log_dirs(&mut admin);
    assert_eq!(code, error_code::NONE);
    assert!(dirs >= 1);
    assert_eq!(
        alter_log_dirs(&mut admin),
        [(s("secure"), 0, error_code::LOG_DIR_NOT_FOUND)]
    );
    assert_eq!(describe_producers(&mut admin, "secure"), [error_code::NONE]);
    let txn = describe_txn(&mut admin);
    assert_eq!(txn.error_code, error_code::NONE, "{txn:?}");
    assert_eq!(txn_topics(&txn), ["other", "secure"]);
    assert_eq!(list_txns(&mut admin), ["tx1"]);
    assert_eq!(
        write_markers(&mut admin),
        [error_code::UNKNOWN_TOPIC_OR_PARTITION; 2]
    );
    assert_eq!(
        leader_epochs(&mut admin, &["secure", "other"]),
        [(s("secure"), 0), (s("other"), 0)]
    );
    assert_eq!(update_features(&mut admin).0, error_code::NONE);
    let (code, _, topics) = describe_quorum(&mut admin);
    assert_eq!((code, topics), (error_code::NONE, 1));
    assert_eq!(list_config_resources(&mut admin).0, error_code::NONE);
    assert_eq!(
        topic_summary(&describe_topics(&mut admin, &["secure", "nope"])),
        [
            (
                s("nope"),
                error_code::UNKNOWN_TOPIC_OR_PARTITION,
                true,
                TOPIC_ALL_OPS
            ),
            (s("secure"), error_code::NONE, false, TOPIC_ALL_OPS),
        ]
    );
    assert_eq!(
        group_summary(&describe_groups(&mut admin, &["g1"])),
        [(s("g1"), error_code::NONE, GROUP_ALL_OPS)]
    );

    // alice without any ACL: Kafka's error shapes.
    let cluster_denied = error_code::CLUSTER_AUTHORIZATION_FAILED;
    assert_eq!(
        describe_scram(&mut alice),
        (cluster_denied, vec![(s(""), cluster_denied)])
    );
    // Each user once, sorted (a set of the deletions and upsertions).
    assert_eq!(
        alter_scram(&mut alice),
        [(s("bob"), cluster_denied), (s("carol"), cluster_denied)]
    );
    assert_eq!(describe_quotas(&mut alice), (cluster_denied, false));
    let quotas = alter_quotas(&mut alice);
    let entries: Vec<(i16, Option<&str>, Option<&str>)> = quotas
        .entries
        .iter()
        .map(|e| {
            (
                e.error_code,
                e.error_message.as_deref(),
                e.entity[0].entity_name.as_deref(),
            )
        })
        .collect();
    let message = Some("Cluster authorization failed.");
    assert_eq!(
        entries,
        [
            (cluster_denied, message, Some("bob")),
            (cluster_denied, message, Some("carol"))
        ]
    );
    assert_eq!(describe_log_dirs(&mut alice), (cluster_denied, 0));
    assert_eq!(
        alter_log_dirs(&mut alice),
        [(s("secure"), 0, cluster_denied)]
    );
    assert_eq!(
        describe_producers(&mut alice, "secure"),
        [error_code::TOPIC_AUTHORIZATION_FAILED]
    );
    let txn = describe_txn(&mut alice);
    assert_eq!(
        txn.error_code,
        error_code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    );
    assert!(txn.topics.is_empty());
    assert!(list_txns(&mut alice).is_empty());
    assert_eq!(write_markers(&mut alice), [cluster_denied; 2]);
    assert_eq!(
        leader_epochs(&mut alice, &["secure"]),
        [(s("secure"), error_code::TOPIC_AUTHORIZATION_FAILED)]
    );
    assert_eq!(update_features(&mut alice), (cluster_denied, None));
    assert_eq!(
        describe_quorum(&mut alice),
        (cluster_denied, Some(s("Cluster authorization failed.")), 0)
    );
    assert_eq!(list_config_resources(&mut alice), (cluster_denied, 0));
    // Named topics: all denied, existing or not, with the zero id; listing all: none.
    assert_eq!(
        topic_summary(&describe_topics(&mut alice, &["secure", "nope"])),
        [
            (
                s("nope"),
                error_code::TOPIC_AUTHORIZATION_FAILED,
                true,
                i32::MIN
            ),
            (
                s("secure"),
                error_code::TOPIC_AUTHORIZATION_FAILED,
                true,
                i32::MIN
            ),
        ]
    );
    assert!(describe_topics(&mut alice, &[]).is_empty());
    let groups = describe_groups(&mut alice, &["g1"]);
    assert_eq!(
        group_summary(&groups),
        [(s("g1"), error_code::GROUP_AUTHORIZATION_FAILED, i32::MIN)]
    );
    assert_eq!(groups[0].error_message, None);
    // Joining needs READ on the group (then DESCRIBE on the subscribed topics).
    assert_eq!(
        join(&mut alice, "g3", "a1", "secure"),
        (error_code::GROUP_AUTHORIZATION_FAILED, None)
    );

    // READ on one topic, DESCRIBE on the group and the transactional id.
    grant(
        &mut admin,
        &[
            (TOPIC, "secure", READ),
            (GROUP, "g1", DESCRIBE),
            (GROUP, "g3", READ),
            (GROUP, "g4", DESCRIBE),
            (TRANSACTIONAL_ID, "tx1", DESCRIBE),
        ],
    );
    assert_eq!(describe_producers(&mut alice, "secure"), [error_code::NONE]);
    assert_eq!(
        describe_producers(&mut alice, "other"),
        [error_code::TOPIC_AUTHORIZATION_FAILED]
    );
    // The transaction, with only the topics alice may DESCRIBE.
    let txn = describe_txn(&mut alice);
    assert_eq!(txn.error_code, error_code::NONE, "{txn:?}");
    assert_eq!(txn_topics(&txn), ["secure"]);
    assert_eq!(list_txns(&mut alice), ["tx1"]);
    // Authorized topics first, then the denied ones.
    assert_eq!(
        leader_epochs(&mut alice, &["other", "secure"]),
        [
            (s("secure"), error_code::NONE),
            (s("other"), error_code::TOPIC_AUTHORIZATION_FAILED)
        ]
    );
    // The authorized topic with alice's operations, the unknown and denied ones after it.
    assert_eq!(
        topic_summary(&describe_topics(&mut alice, &["other", "secure", "nope"])),
        [
            (s("secure"), error_code::NONE, false, TOPIC_READ_OPS),
            (
                s("nope"),
                error_code::TOPIC_AUTHORIZATION_FAILED,
                true,
                i32::MIN
            ),
            (
                s("other"),
                error_code::TOPIC_AUTHORIZATION_FAILED,
                true,
                i32::MIN
            ),
        ]
    );
    assert_eq!(
        topic_summary(&describe_topics(&mut alice, &[])),
        [(s("secure"), error_code::NONE, false, TOPIC_READ_OPS)]
    );
    // The denied group first, then the described ones with their operations.
    assert_eq!(
        group_summary(&describe_groups(&mut alice, &["g1", "g2"])),
        [
            (s("g2"), error_code::GROUP_AUTHORIZATION_FAILED, i32::MIN),
            (s("g1"), error_code::NONE, 1 << 8),
        ]
    );

    // A group assigning a topic alice may not DESCRIBE is hidden.
    let groups = describe_groups(&mut alice, &["g4"]);
    assert_eq!(
        group_summary(&groups),
        [(s("g4"), error_code::TOPIC_AUTHORIZATION_FAILED, i32::MIN)]
    );
    assert_eq!(
        groups[0].error_message.as_deref(),
        Some("The group has described topic(s) that the client is not authorized to describe.")
    );
    assert!(groups[0].members.is_empty());
    // A subscription to a topic alice may not DESCRIBE is refused, one she may is served.
    assert_eq!(
        join(&mut alice, "g3", "a1", "other"),
        (error_code::TOPIC_AUTHORIZATION_FAILED, None)
    );
    assert_eq!(join(&mut alice, "g3", "a1", "secure"), (0, None));

    // ALTER and ALTER_CONFIGS on the cluster (implying DESCRIBE and DESCRIBE_CONFIGS):
    // alice gets what the super user got.
    grant(
        &mut admin,
        &[
            (CLUSTER, "kafka-cluster", ALTER),
            (CLUSTER, "kafka-cluster", ALTER_CONFIGS),
        ],
    );
    assert_eq!(describe_scram(&mut alice), admin_scram);
    assert_eq!(alter_scram(&mut alice), admin_alter_scram);
    assert_eq!(describe_quotas(&mut alice), (error_code::NONE, true));
    let quotas = alter_quotas(&mut alice);
    assert!(
        quotas.entries.iter().all(|e| e.error_code == 0),
        "{quotas:?}"
    );
    assert_eq!(describe_log_dirs(&mut alice), (error_code::NONE, dirs));
    assert_eq!(
        alter_log_dirs(&mut alice),
        [(s("secure"), 0, error_code::LOG_DIR_NOT_FOUND)]
    );
    assert_eq!(
        write_markers(&mut alice),
        [error_code::UNKNOWN_TOPIC_OR_PARTITION; 2]
    );
    assert_eq!(update_features(&mut alice).0, error_code::NONE);
    let (code, _, topics) = describe_quorum(&mut alice);
    assert_eq!((code, topics), (error_code::NONE, 1));
    assert_eq!(
        list_config_resources(&mut alice),
        list_config_resources(&mut admin)
    );
    // CLUSTER_ACTION (a follower's) answers every topic of OffsetForLeaderEpoch.
    grant(&mut admin, &[(CLUSTER, "kafka-cluster", CLUSTER_ACTION)]);
    assert_eq!(
        leader_epochs(&mut alice, &["other", "secure"]),
        [(s("other"), 0), (s("secure"), 0)]
    );
}

/// AlterPartitionReassignments of `secure`-0 to broker 1 (where it is): (top-level code,
/// the partition's code).
fn alter_reassignments(c: &mut RawClient) -> (i16, i16) {
    let request = AlterPartitionReassignmentsRequest {
        timeout_ms: 30_000,
        allow_replication_factor_change: true,
        topics: vec![ReassignableTopic {
            name: "secure".into(),
            partitions: vec![ReassignablePartition {
                partition_index: 0,
                replicas: Some(vec![1]),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let r = c.call(&request, 1).unwrap();
    (r.error_code, r.responses[0].partitions[0].error_code)
}

/// ListPartitionReassignments of `secure`-0: (code, topics answered).
fn list_reassignments(c: &mut RawClient) -> (i16, usize) {
    let request = ListPartitionReassignmentsRequest {
        timeout_ms: 30_000,
        topics: Some(vec![ListPartitionReassignmentsTopics {
            name: "secure".into(),
            partition_indexes: vec![0],
            ..Default::default()
        }]),
        ..Default::default()
    };
    let r = c.call(&request, 0).unwrap();
    (r.error_code, r.topics.len())
}

#[test]
fn the_reassignment_apis_ask_for_cluster_alter_and_describe() {
    let data = DataDir::builder()
        .topic(TopicSpec::new("secure", 1))
        .build();
    let b = SecureBroker::start_on(
        data,
        &[
            ("authorizer.class.name", AUTHORIZER),
            ("super.users", "User:admin;User:ANONYMOUS"),
        ],
    );
    let mut admin = login(&b, "admin");
    let mut alice = login(&b, "alice");
    let denied = error_code::CLUSTER_AUTHORIZATION_FAILED;
    assert_eq!(alter_reassignments(&mut admin), (0, 0));
    assert_eq!(list_reassignments(&mut admin), (0, 0));
    // ControllerApis: ALTER on the cluster for 45, DESCRIBE for 46; the error responses
    // name every partition asked (46 echoes the topics).
    assert_eq!(alter_reassignments(&mut alice), (denied, denied));
    assert_eq!(list_reassignments(&mut alice), (denied, 1));
    grant(&mut admin, &[(CLUSTER, "kafka-cluster", DESCRIBE)]);
    assert_eq!(list_reassignments(&mut alice), (0, 0));
    assert_eq!(alter_reassignments(&mut alice), (denied, denied));
    grant(&mut admin, &[(CLUSTER, "kafka-cluster", ALTER)]);
    assert_eq!(alter_reassignments(&mut alice), (0, 0));
}
