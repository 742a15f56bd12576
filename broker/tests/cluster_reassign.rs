//! Partition reassignment in a cluster (issue 15): one controller-only node and three
//! brokers as separate `gregor` processes, AlterPartitionReassignments and
//! ListPartitionReassignments sent as the generated request types, records written and
//! read back with confluent-kafka.
//!
//! * a partition on brokers 2 and 3 (2 leads) moves to 3 and 4: broker 4 creates the log
//!   and fetches until it is in the ISR, the reassignment completes, the leader 2 that was
//!   removed hands over to 3, broker 2 deletes its directory; with 2 killed and 3 stopped,
//!   every acknowledged record is read from broker 4 alone;
//! * a move to a broker that is down stays in progress (ListPartitionReassignments shows
//!   it, from a broker, from the controller and to kafka-python's admin client);
//!   cancelling it (kafka-python) goes back to the original replicas; the refusals (unknown topic or partition, bad replica lists, a replication
//!   factor change refused by v1, nothing to cancel, a timeout of 0, no authorizer needed)
//!   come back as Kafka's codes, through a broker (forwarded) and on the controller
//!   listener.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use gregor_protocol::error_code::*;
use gregor_protocol::messages::alter_partition_reassignments_request::{
    AlterPartitionReassignmentsRequest, ReassignablePartition, ReassignableTopic,
};
use gregor_protocol::messages::alter_partition_reassignments_response::AlterPartitionReassignmentsResponse;
use gregor_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreateTopicsRequest,
};
use gregor_protocol::messages::list_partition_reassignments_request::{
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsTopics,
};
use gregor_protocol::messages::list_partition_reassignments_response::ListPartitionReassignmentsResponse;
use support::cluster::{Cluster, Role, topic_metadata, wait_for};
use support::{RawClient, python_with_timeout};

/// How long the cluster may take to settle (elections, registrations, ISR changes).
const SETTLE: Duration = Duration::from_secs(60);

/// A controller-only voter (node 1) and brokers 2, 3, 4.
fn cluster() -> Cluster {
    let mut cluster = Cluster::new(&[Role::Controller, Role::Broker, Role::Broker, Role::Broker]);
    cluster.start();
    cluster
}

/// Creates `topic` with one partition on `replicas` through `addr` (forwarded).
fn create(addr: SocketAddr, topic: &str, replicas: &[i32]) {
    let request = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: topic.into(),
            num_partitions: -1,
            replication_factor: -1,
            assignments: vec![CreatableReplicaAssignment {
                partition_index: 0,
                broker_ids: replicas.to_vec(),
                ..Default::default()
            }],
            ..Default::default()
        }],
        timeout_ms: 30_000,
        ..Default::default()
    };
    let response = RawClient::connect(addr)
        .unwrap()
        .call(&request, 7)
        .expect("CreateTopics");
    assert_eq!(response.topics[0].error_code, 0, "{response:?}");
}

/// (leader, replicas, sorted ISR) of `topic`-0 in `addr`'s Metadata.
fn view(addr: SocketAddr, topic: &str) -> Option<(i32, Vec<i32>, Vec<i32>)> {
    let response = topic_metadata(addr, topic)?;
    let t = response.topics.first().filter(|t| t.error_code == 0)?;
    let p = t.partitions.first()?;
    let mut isr = p.isr_nodes.clone();
    isr.sort_unstable();
    Some((p.leader_id, p.replica_nodes.clone(), isr))
}

/// Waits until `addr` shows `topic`-0 as `(leader, replicas, isr)`.
fn wait_for_view(addr: SocketAddr, topic: &str, expected: (i32, &[i32], &[i32])) {
    let expected = (expected.0, expected.1.to_vec(), expected.2.to_vec());
    wait_for(
        &format!("{topic}-0 as {expected:?} on {addr}"),
        SETTLE,
        || (view(addr, topic)? == expected).then_some(()),
    );
}

/// One partition of `topic` asked to move to `replicas` (`None` cancels).
fn alter_request(
    topic: &str,
    partition: i32,
    replicas: Option<&[i32]>,
) -> AlterPartitionReassignmentsRequest {
    AlterPartitionReassignmentsRequest {
        timeout_ms: 30_000,
        allow_replication_factor_change: true,
        topics: vec![ReassignableTopic {
            name: topic.into(),
            partitions: vec![ReassignablePartition {
                partition_index: partition,
                replicas: replicas.map(<[i32]>::to_vec),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn send_alter(
    addr: SocketAddr,
    request: &AlterPartitionReassignmentsRequest,
    version: i16,
) -> AlterPartitionReassignmentsResponse {
    RawClient::connect(addr)
        .unwrap()
        .call(request, version)
        .expect("AlterPartitionReassignments")
}

/// The error code of the one partition of an AlterPartitionReassignments.
fn alter(addr: SocketAddr, topic: &str, partition: i32, replicas: Option<&[i32]>) -> i16 {
    let response = send_alter(addr, &alter_request(topic, partition, replicas), 1);
    assert_eq!(response.error_code, 0, "{response:?}");
    response.responses[0].partitions[0].error_code
}

fn list(addr: SocketAddr, topics: Option<&[(&str, &[i32])]>) -> ListPartitionReassignmentsResponse {
    let request = ListPartitionReassignmentsRequest {
        timeout_ms: 30_000,
        topics: topics.map(|topics| {
            topics
                .iter()
                .map(|(name, partitions)| ListPartitionReassignmentsTopics {
                    name: (*name).into(),
                    partition_indexes: partitions.to_vec(),
                    ..Default::default()
                })
                .collect()
        }),
        ..Default::default()
    };
    RawClient::connect(addr)
        .unwrap()
        .call(&request, 0)
        .expect("ListPartitionReassignments")
}

/// Whether `dir` holds the directory of `topic`-0 (renamed `-delete` ones included).
fn has_partition_dir(dir: &std::path::Path, topic: &str) -> bool {
    let prefix = format!("{topic}-0");
    std::fs::read_dir(dir).unwrap().any(|e| {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        name == prefix || name.starts_with(&format!("{prefix}."))
    })
}

#[test]
fn a_partition_moves_to_new_brokers_and_keeps_every_record() {
    if support::clients::python_path().is_none() && !support::clients_required() {
        return;
    }
    let mut cluster = cluster();
    let (b2, b3, b4) = (
        cluster.node(2).addr(),
        cluster.node(3).addr(),
        cluster.node(4).addr(),
    );
    let topic = "moving";
    create(b3, topic, &[2, 3]);
    wait_for_view(b2, topic, (2, &[2, 3], &[2, 3]));
    let bootstrap = cluster.bootstrap();
    let produced = python_with_timeout(
        "cluster_confluent.py",
        &[
            "--bootstrap",
            &bootstrap,
            "--op",
            "produce",
            "--topic",
            topic,
            "--count",
            "500",
            "--rate",
            "2000",
            "--tag",
            "moved",
            "--timeout",
            "60",
        ],
        Duration::from_secs(90),
    )
    .expect("the clients are installed");
    produced.assert_success();
    let acked: BTreeMap<i64, i64> = produced
        .stdout
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace().map(|f| f.parse::<i64>().ok());
            let (i, _partition, offset) = (fields.next()??, fields.next()??, fields.next()??);
            Some((i, offset))
        })
        .collect();
    assert_eq!(acked.len(), 500, "{}", produced.stderr);
    assert!(!has_partition_dir(cluster.node(4).data.path(), topic));

    // Sent to the leader being removed: a broker forwards it to the controller.
    assert_eq!(alter(b2, topic, 0, Some(&[3, 4])), NONE);
    // Broker 4 catches up and joins the ISR, which completes the move; 2 hands over to 3.
    wait_for_view(b4, topic, (3, &[3, 4], &[3, 4]));
    wait_for("the finished move gone from the list", SETTLE, || {
        list(b3, None).topics.is_empty().then_some(())
    });
    assert!(has_partition_dir(cluster.node(4).data.path(), topic));
    wait_for(
        "broker 2's directory of the moved partition gone",
        SETTLE,
        || (!has_partition_dir(cluster.node(2).data.path(), topic)).then_some(()),
    );
    assert!(has_partition_dir(cluster.node(3).data.path(), topic));

    // Only broker 4 left: every acknowledged record is there.
    cluster.kill9(2);
    cluster.stop(3);
    wait_for_view(b4, topic, (4, &[3, 4], &[4]));
    let addr = b4.to_string();
    let out = python_with_timeout(
        "consume_confluent.py",
        &[
            "--bootstrap",
            &addr,
            "--topic",
            topic,
            "--partitions",
            "0",
            "--until",
            "end-offsets",
            "--timeout",
            "60",
        ],
        Duration::from_secs(90),
    )
    .expect("the clients are installed");
    out.assert_success();
    let read: BTreeMap<i64, i64> = support::parse_driver_records(&out)
        .into_iter()
        .map(|record| {
            let value = String::from_utf8(record.value.unwrap_or_default()).unwrap();
            let (_, index) = value.split_once(':').expect("<tag>:<i>");
            (index.parse().unwrap(), record.offset)
        })
        .collect();
    assert_eq!(read, acked);
}

#[test]
fn a_move_in_progress_is_listed_and_cancelled_and_bad_requests_are_refused() {
    let mut cluster = cluster();
    let (b2, b3) = (cluster.node(2).addr(), cluster.node(3).addr());
    let controller = cluster.node(1).controller_addr();
    let topic = "cancelled";
    create(b2, topic, &[2, 3]);
    wait_for_view(b2, topic, (2, &[2, 3], &[2, 3]));

    // Broker 4 is down (still registered): the move to it cannot finish.
    cluster.stop(4);
    assert_eq!(alter(b3, topic, 0, Some(&[2, 4])), NONE);
    wait_for_view(b2, topic, (2, &[2, 4, 3], &[2, 3]));
    for addr in [b2, controller] {
        let listed = list(addr, None);
        assert_eq!(listed.error_code, 0);
        assert_eq!(listed.topics.len(), 1, "{listed:?}");
        assert_eq!(&*listed.topics[0].name, topic);
        let p = &listed.topics[0].partitions[0];
        assert_eq!(
            (
                p.partition_index,
                p.replicas.clone(),
                p.adding_replicas.clone(),
                p.removing_replicas.clone()
            ),
            (0, vec![2, 4, 3], vec![4], vec![3])
        );
    }
    // Asked by name: an unknown topic and a partition not moving are left out.
    let listed = list(b3, Some(&[(topic, &[0, 1]), ("nope", &[0])]));
    assert_eq!(listed.topics.len(), 1);
    assert_eq!(listed.topics[0].partitions.len(), 1);
    // v1 without a replication factor change: heading for [2, 4], three is refused.
    let mut request = alter_request(topic, 0, Some(&[2, 3, 4]));
    request.allow_replication_factor_change = false;
    let response = send_alter(b2, &request, 1);
    assert!(!response.allow_replication_factor_change);
    assert_eq!(
        response.responses[0].partitions[0].error_code,
        INVALID_REPLICATION_FACTOR
    );
    assert_eq!(
        response.responses[0].partitions[0].error_message.as_deref(),
        Some("The replication factor is changed from 2 to 3")
    );

    // kafka-python's admin client sees it, and cancels it (through the broker Metadata
    // names as the controller, which forwards).
    let bootstrap = b3.to_string();
    let kafka_python = |args: &[&str]| {
        let mut all = vec!["--bootstrap", &bootstrap];
        all.extend(args);
        python_with_timeout("reassign_kafka_python.py", &all, SETTLE).map(|out| {
            out.assert_success();
            out.json()
        })
    };
    if let Some(listed) = kafka_python(&["--op", "list"]) {
        let expected = serde_json::json!({"reassignments": {"cancelled-0": {
            "replicas": [2, 4, 3], "adding": [4], "removing": [3]}}});
        assert_eq!(listed, expected);
        let cancelled = kafka_python(&["--op", "alter", "--topic", topic, "--replicas", "cancel"]);
        assert_eq!(cancelled.unwrap(), serde_json::json!({"error": null}));
    } else {
        assert_eq!(alter(controller, topic, 0, None), NONE);
    }
    // Cancelled: back to [2, 3], nothing listed, nothing more to cancel.
    wait_for_view(b2, topic, (2, &[2, 3], &[2, 3]));
    assert!(list(b2, None).topics.is_empty());
    assert_eq!(alter(b2, topic, 0, None), NO_REASSIGNMENT_IN_PROGRESS);
    assert_eq!(
        alter(controller, topic, 0, None),
        NO_REASSIGNMENT_IN_PROGRESS
    );

    for addr in [b2, controller] {
        assert_eq!(
            alter(addr, "nope", 0, Some(&[2])),
            UNKNOWN_TOPIC_OR_PARTITION
        );
        assert_eq!(
            alter(addr, topic, 3, Some(&[2])),
            UNKNOWN_TOPIC_OR_PARTITION
        );
        for bad in [&[][..], &[2, 2], &[2, -1], &[2, 99]] {
            assert_eq!(
                alter(addr, topic, 0, Some(bad)),
                INVALID_REPLICA_ASSIGNMENT,
                "{bad:?}"
            );
        }
    }
    // v0 has no AllowReplicationFactorChange: a change is allowed, here to broker 3 alone
    // (in the ISR, so it completes at once).
    let response = send_alter(b3, &alter_request(topic, 0, Some(&[3])), 0);
    assert_eq!(response.responses[0].partitions[0].error_code, NONE);
    wait_for_view(b2, topic, (3, &[3], &[3]));
    // A timeout of 0 has passed before the controller runs it: nothing changes.
    let mut request = alter_request(topic, 0, Some(&[2, 3]));
    request.timeout_ms = 0;
    let response = send_alter(b2, &request, 1);
    assert_eq!(response.error_code, REQUEST_TIMED_OUT);
    assert_eq!(
        response.responses[0].partitions[0].error_code,
        REQUEST_TIMED_OUT
    );
    assert!(list(b2, None).topics.is_empty());
    assert_eq!(view(b2, topic).unwrap().1, vec![3]);
}
