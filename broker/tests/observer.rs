//! Broker-only nodes (`process.roles=broker`) of a cluster follow the metadata log as
//! KRaft observers, against the real binary: controller-only nodes
//! (`process.roles=controller`) hold the quorum; the broker-only node fetches
//! `__cluster_metadata-0` from its leader over the controller listener, keeps a copy in
//! its own metadata log directory and lists what the controllers committed in its
//! Metadata; restarted, it starts from its copy and catches up; when the quorum's leader is
//! killed it follows the new one.
//!
//! The nodes run on the shared harness (`support/cluster.rs`); the broker registers itself
//! (`tests/lifecycle.rs` checks that), and topics are created with CreateTopics on the
//! controller listener (which Kafka's `ControllerApis` serves). Waits poll with generous
//! deadlines; nothing is timed.

mod support;

use std::fs;
use std::time::{Duration, Instant};

use gregor_protocol::messages::create_topics_request::{CreatableTopic, CreateTopicsRequest};
use gregor_protocol::messages::describe_quorum_response::DescribeQuorumResponse;
use gregor_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use gregor_protocol::{ApiKey, Uuid, error_code as error};

use support::cluster::{Cluster, Node};
use support::{RawClient, api_versions};

/// Kafka's `Uuid.METADATA_TOPIC_ID`.
const METADATA_TOPIC_ID: Uuid = Uuid::from_u64_pair(0, 1);

const DEADLINE: Duration = Duration::from_secs(120);

/// Creates `name` with CreateTopics on the controller listener of `controller`; its id.
fn create_topic(controller: &Node, name: &str) -> Uuid {
    let mut client = RawClient::connect(controller.controller_addr()).expect("controller listener");
    let request = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.into(),
            num_partitions: 1,
            replication_factor: 1,
            ..Default::default()
        }],
        timeout_ms: 30_000,
        validate_only: false,
        ..Default::default()
    };
    let response = client.call(&request, 7).expect("CreateTopics");
    let result = &response.topics[0];
    assert_eq!(
        result.error_code,
        error::NONE,
        "CreateTopics {name}: {:?}",
        result.error_message
    );
    assert_ne!(result.topic_id, Uuid::nil());
    result.topic_id
}

fn wait_for_topic(node: &Node, name: &str, id: Uuid) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let seen = node.topic_id(name);
        if seen == Some(id) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {} does not list {name} ({id}): {seen:?}",
            node.id
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The segment files of the broker's copy of the metadata log.
fn segments(node: &Node) -> Vec<String> {
    let dir = node.data.path().join("__cluster_metadata-0");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.ends_with(".log"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_broker_only_node_follows_the_controller_and_restarts_from_its_copy() {
    // Node 1 the controller, node 2 the broker (registered once `start` returns).
    let mut cluster = Cluster::split(1, 1);
    // The broker's copy writes a snapshot after every batch (Kafka's brokers write their
    // own, `SnapshotGenerator`).
    cluster.set("metadata.log.max.record.bytes.between.snapshots", "1");
    cluster.start();
    let active = cluster.wait_for_active_controller();
    let first = create_topic(cluster.node(active), "observed");
    wait_for_topic(cluster.node(2), "observed", first);
    assert!(
        !segments(cluster.node(2)).is_empty(),
        "a local copy of the log"
    );
    let snapshot_dir = cluster.node(2).data.path().join("__cluster_metadata-0");
    support::cluster::wait_for(
        "a snapshot of the broker's own",
        Duration::from_secs(20),
        || {
            fs::read_dir(&snapshot_dir)
                .ok()?
                .filter_map(|e| e.ok())
                .find(|e| e.file_name().to_string_lossy().ends_with(".checkpoint"))
        },
    );

    // Down while the metadata changes; back, it replays its copy and catches up.
    cluster.kill9(2);
    let second = create_topic(cluster.node(active), "while-down");
    cluster.restart(2);
    wait_for_topic(cluster.node(2), "while-down", second);
    wait_for_topic(cluster.node(2), "observed", first);
    let replays: Vec<String> = cluster
        .node(2)
        .all_logs()
        .lines()
        .filter(|l| l.contains("replayed the local copy of the metadata log"))
        .map(str::to_string)
        .collect();
    assert_eq!(replays.len(), 2, "{replays:?}");
    assert!(replays[0].contains("next_offset=0"), "{}", replays[0]);
    assert!(
        !replays[1].contains("next_offset=0"),
        "the restart starts from the copy: {}",
        replays[1]
    );
    assert!(
        replays[1].contains("snapshot=Some"),
        "the restart starts from its snapshot: {}",
        replays[1]
    );
}

#[test]
fn a_broker_only_node_follows_a_new_leader_after_the_old_one_is_killed() {
    // Nodes 1-3 the controllers, node 4 the broker.
    let mut cluster = Cluster::split(3, 1);
    cluster.start();
    let cluster_id = cluster.cluster_id.clone();
    let active = cluster.wait_for_active_controller();
    let first = create_topic(cluster.node(active), "before");
    wait_for_topic(cluster.node(4), "before", first);

    // A voter that does not lead names the leader; another topic than the metadata
    // partition is refused.
    let follower = (1..=3).find(|id| *id != active).unwrap();
    let apis = api_versions(cluster.node(follower).controller_addr()).expect("ApiVersions");
    let keys: Vec<i16> = apis.api_keys.iter().map(|k| k.api_key).collect();
    assert!(keys.contains(&ApiKey::Fetch.key()), "{keys:?}");
    assert!(keys.contains(&ApiKey::FetchSnapshot.key()), "{keys:?}");
    let fetch = |topic_id: Uuid, epoch: i32| FetchRequest {
        cluster_id: Some(cluster_id.as_str().into()),
        max_wait_ms: 0,
        topics: vec![FetchTopic {
            topic_id,
            partitions: vec![FetchPartition {
                partition: 0,
                current_leader_epoch: epoch,
                fetch_offset: 0,
                last_fetched_epoch: 0,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut client = RawClient::connect(cluster.node(follower).controller_addr()).unwrap();
    // Until the follower has heard from the leader (it may lag the majority).
    let deadline = Instant::now() + DEADLINE;
    let epoch = loop {
        let answer = client
            .call(&fetch(METADATA_TOPIC_ID, 0), 17)
            .expect("Fetch");
        let partition = &answer.responses[0].partitions[0];
        assert_eq!(partition.error_code, error::FENCED_LEADER_EPOCH);
        if partition.current_leader.leader_id == active {
            break partition.current_leader.leader_epoch;
        }
        assert!(
            Instant::now() < deadline,
            "the follower does not know the leader"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let answer = client
        .call(&fetch(METADATA_TOPIC_ID, epoch), 17)
        .expect("Fetch");
    let partition = &answer.responses[0].partitions[0];
    assert_eq!(partition.error_code, error::NOT_LEADER_OR_FOLLOWER);
    assert_eq!(partition.current_leader.leader_id, active);
    let answer = client.call(&fetch(first, epoch), 17).expect("Fetch");
    assert_eq!(answer.error_code, error::INVALID_REQUEST);
    // The leader sends its log, with the high watermark.
    let mut client = RawClient::connect(cluster.node(active).controller_addr()).unwrap();
    let answer = client
        .call(&fetch(METADATA_TOPIC_ID, epoch), 17)
        .expect("Fetch");
    let partition = &answer.responses[0].partitions[0];
    assert_eq!(partition.error_code, error::NONE);
    assert!(partition.high_watermark > 0);
    assert!(partition.records.as_ref().is_some_and(|r| !r.is_empty()));

    cluster.kill9(active);
    let next = cluster.wait_for_active_controller();
    assert_ne!(next, active);
    let second = create_topic(cluster.node(next), "after");
    wait_for_topic(cluster.node(4), "after", second);
    assert_eq!(cluster.node(4).topic_id("before"), Some(first));

    // DescribeQuorum: the new leader lists the broker as an observer (Kafka's LeaderState
    // observer states; the test's own fetches, replica id -1, are not a replica's), a voter
    // that does not lead lists none.
    let describe = |id: i32| {
        let mut client = RawClient::connect(cluster.node(id).controller_addr()).unwrap();
        let response: DescribeQuorumResponse = client
            .call(&support::cluster::describe_quorum(), 2)
            .expect("DescribeQuorum");
        response.topics[0].partitions[0].clone()
    };
    // The caught-up time is set from the observer's second fetch to this leader on
    // (Kafka's `updateFollowerState` compares with the leader's end at the previous
    // fetch), which may come just after the topic arrived: asked until it is there.
    let deadline = Instant::now() + Duration::from_secs(15);
    let partition = loop {
        let partition = describe(next);
        let caught_up = partition
            .observers
            .first()
            .is_some_and(|o| o.last_caught_up_timestamp > 0);
        if caught_up || Instant::now() > deadline {
            break partition;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let [observer] = partition.observers.as_slice() else {
        panic!("one observer: {partition:?}");
    };
    assert_eq!(observer.replica_id, 4, "{partition:?}");
    assert!(observer.log_end_offset > 0, "{partition:?}");
    assert!(
        observer.log_end_offset <= partition.high_watermark,
        "{partition:?}"
    );
    assert!(observer.last_fetch_timestamp > 0, "{partition:?}");
    assert!(
        observer.last_caught_up_timestamp > 0
            && observer.last_caught_up_timestamp <= observer.last_fetch_timestamp,
        "{partition:?}"
    );
    let other = (1..=3).find(|id| *id != next && *id != active).unwrap();
    let partition = describe(other);
    assert!(partition.observers.is_empty(), "{partition:?}");
}
