//! The controller side of a multi-broker cluster, against the real binary: one combined
//! node, and "fake" brokers driven by the test over the controller listener
//! (BrokerRegistration, BrokerHeartbeat, AlterPartition as Kafka's brokers send them; their
//! own endpoints point at closed ports, nobody connects to them). Compared with Kafka's
//! `ClusterControlManager`, `BrokerHeartbeatManager`, `ReplicationControlManager` and
//! `StripedReplicaPlacer`.
//!
//! Waits for session expiry poll the node (generous deadlines, no timed assertions).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gregor_protocol::messages::alter_partition_request::{
    AlterPartitionRequest, BrokerState, PartitionData, TopicData,
};
use gregor_protocol::messages::alter_partition_response::AlterPartitionResponse;
use gregor_protocol::messages::broker_heartbeat_request::BrokerHeartbeatRequest;
use gregor_protocol::messages::broker_heartbeat_response::BrokerHeartbeatResponse;
use gregor_protocol::messages::broker_registration_request::{
    BrokerRegistrationRequest, Feature, Listener,
};
use gregor_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreateTopicsRequest,
};
use gregor_protocol::messages::describe_cluster_request::DescribeClusterRequest;
use gregor_protocol::messages::elect_leaders_request::{ElectLeadersRequest, TopicPartitions};
use gregor_protocol::messages::elect_leaders_response::ElectLeadersResponse;
use gregor_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use gregor_protocol::messages::metadata_response::{
    MetadataResponse, MetadataResponsePartition, MetadataResponseTopic,
};
use gregor_protocol::{ApiKey, Uuid, error_code as error};

use support::{Broker, DataDir, RawClient, api_versions, free_port, random_uuid};

/// Session timeout of the node in the tests that wait for expiry.
const SHORT_SESSION: &str = "3000";
/// How long a test waits for something the node does on its own.
const DEADLINE: Duration = Duration::from_secs(90);
/// An offset past anything these tests write: the fake brokers report it as replayed.
const CAUGHT_UP: i64 = 1 << 40;

/// A broker of the cluster played by the test.
#[derive(Clone, Debug)]
struct FakeBroker {
    id: i32,
    rack: Option<String>,
    incarnation: Uuid,
    directory: Uuid,
    epoch: i64,
}

impl FakeBroker {
    fn new(id: i32, rack: Option<&str>) -> FakeBroker {
        FakeBroker {
            id,
            rack: rack.map(str::to_string),
            incarnation: random_uuid(),
            directory: random_uuid(),
            epoch: -1,
        }
    }

    fn request(&self, cluster_id: &str) -> BrokerRegistrationRequest {
        let feature = |name: &str, min: i16, max: i16| Feature {
            name: name.into(),
            min_supported_version: min,
            max_supported_version: max,
            ..Default::default()
        };
        BrokerRegistrationRequest {
            broker_id: self.id,
            cluster_id: cluster_id.into(),
            incarnation_id: self.incarnation,
            listeners: vec![Listener {
                name: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port: free_port(),
                security_protocol: 0,
                ..Default::default()
            }],
            features: vec![
                feature("metadata.version", 7, 29),
                feature("kraft.version", 0, 1),
                feature("group.version", 0, 1),
                feature("transaction.version", 0, 2),
            ],
            rack: self.rack.as_deref().map(Into::into),
            is_migrating_zk_broker: false,
            log_dirs: vec![self.directory],
            previous_broker_epoch: -1,
            ..Default::default()
        }
    }

    /// Registers (BrokerRegistration v4) and keeps the epoch.
    fn register(&mut self, controller: &mut RawClient, cluster_id: &str) {
        let response = controller
            .call(&self.request(cluster_id), 4)
            .expect("BrokerRegistration");
        assert_eq!(
            response.error_code,
            error::NONE,
            "registration of {}",
            self.id
        );
        assert!(response.broker_epoch >= 0);
        self.epoch = response.broker_epoch;
    }

    fn heartbeat(
        &self,
        controller: &mut RawClient,
        want_fence: bool,
        want_shut_down: bool,
    ) -> BrokerHeartbeatResponse {
        let request = BrokerHeartbeatRequest {
            broker_id: self.id,
            broker_epoch: self.epoch,
            current_metadata_offset: CAUGHT_UP,
            want_fence,
            want_shut_down,
            ..Default::default()
        };
        controller.call(&request, 1).expect("BrokerHeartbeat")
    }
}

/// Heartbeats of one fake broker on a thread of their own, every 300 ms, until dropped.
struct Heartbeater {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Heartbeater {
    fn start(broker: &FakeBroker, controller: SocketAddr) -> Heartbeater {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let broker = broker.clone();
        let thread = std::thread::spawn(move || {
            let Ok(mut client) = RawClient::connect(controller) else {
                return;
            };
            while !flag.load(Ordering::SeqCst) {
                if client
                    .call(
                        &BrokerHeartbeatRequest {
                            broker_id: broker.id,
                            broker_epoch: broker.epoch,
                            current_metadata_offset: CAUGHT_UP,
                            ..Default::default()
                        },
                        1,
                    )
                    .is_err()
                {
                    return;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        Heartbeater {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Heartbeater {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Node {
    data: DataDir,
    broker: Broker,
    extra: Vec<(&'static str, &'static str)>,
}

impl Node {
    fn start(extra: &[(&'static str, &'static str)]) -> Node {
        let data = DataDir::builder().build();
        let broker = Broker::start_with(&data, extra);
        Node {
            data,
            broker,
            extra: extra.to_vec(),
        }
    }

    fn restart(&mut self) {
        self.broker.stop();
        self.broker = Broker::start_with(&self.data, &self.extra);
    }

    fn client(&self) -> RawClient {
        RawClient::connect(self.broker.addr()).expect("connect to the broker listener")
    }

    fn controller(&self) -> RawClient {
        RawClient::connect(self.broker.controller_addr())
            .expect("connect to the controller listener")
    }

    /// Registers `broker` and heartbeats until it is unfenced.
    fn join(&self, broker: &mut FakeBroker) {
        let mut controller = self.controller();
        broker.register(&mut controller, &self.data.cluster_id);
        let first = broker.heartbeat(&mut controller, false, false);
        assert_eq!(first.error_code, error::NONE);
        assert!(first.is_caught_up);
        assert!(
            !first.is_fenced,
            "unfenced once caught up with its registration"
        );
    }
}

fn metadata(client: &mut RawClient, topics: &[&str]) -> MetadataResponse {
    let request = MetadataRequest {
        topics: Some(
            topics
                .iter()
                .map(|t| MetadataRequestTopic {
                    name: Some((*t).into()),
                    ..Default::default()
                })
                .collect(),
        ),
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    client.call(&request, 12).expect("Metadata")
}

fn broker_ids(response: &MetadataResponse) -> Vec<i32> {
    response.brokers.iter().map(|b| b.node_id).collect()
}

fn topic<'a>(response: &'a MetadataResponse, name: &str) -> &'a MetadataResponseTopic {
    response
        .topics
        .iter()
        .find(|t| t.name.as_deref() == Some(name))
        .expect("the topic is in the response")
}

fn partitions(response: &MetadataResponse, name: &str) -> BTreeMap<i32, MetadataResponsePartition> {
    topic(response, name)
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.clone()))
        .collect()
}

fn create(
    client: &mut RawClient,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    assignments: &[&[i32]],
) -> (i16, Option<String>) {
    let request = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.into(),
            num_partitions: if assignments.is_empty() {
                partitions
            } else {
                -1
            },
            replication_factor: if assignments.is_empty() {
                replication_factor
            } else {
                -1
            },
            assignments: assignments
                .iter()
                .enumerate()
                .map(|(i, replicas)| CreatableReplicaAssignment {
                    partition_index: i as i32,
                    broker_ids: replicas.to_vec(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        timeout_ms: 30_000,
        ..Default::default()
    };
    let response = client.call(&request, 7).expect("CreateTopics");
    let result = &response.topics[0];
    (
        result.error_code,
        result.error_message.as_ref().map(|m| m.to_string()),
    )
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn brokers_register_on_the_controller_listener_and_get_replicas_spread_over_racks() {
    let mut node = Node::start(&[
        ("broker.rack", "r1"),
        ("broker.session.timeout.ms", "60000"),
    ]);
    // The controller listener advertises the controller's APIs, the broker listener not.
    let controller_apis = api_versions(node.broker.controller_addr()).expect("ApiVersions");
    let keys: BTreeSet<i16> = controller_apis.api_keys.iter().map(|k| k.api_key).collect();
    for api in [
        ApiKey::BrokerRegistration,
        ApiKey::BrokerHeartbeat,
        ApiKey::AlterPartition,
        ApiKey::ControllerRegistration,
        ApiKey::CreateTopics,
        ApiKey::ApiVersions,
    ] {
        assert!(
            keys.contains(&api.key()),
            "{} on the controller listener",
            api.name()
        );
    }
    for api in [
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::Metadata,
        ApiKey::JoinGroup,
    ] {
        assert!(
            !keys.contains(&api.key()),
            "{} not on the controller listener",
            api.name()
        );
    }
    let broker_apis = api_versions(node.broker.addr()).expect("ApiVersions");
    let broker_keys: BTreeSet<i16> = broker_apis.api_keys.iter().map(|k| k.api_key).collect();
    assert!(!broker_keys.contains(&ApiKey::BrokerRegistration.key()));
    assert!(broker_keys.contains(&ApiKey::ElectLeaders.key()));

    let mut controller = node.controller();
    // Refusals, as ClusterControlManager.registerBroker makes them.
    let mut stranger = FakeBroker::new(5, None);
    let refused = controller
        .call(&stranger.request("AAAAAAAAAAAAAAAAAAAAAA"), 4)
        .unwrap();
    assert_eq!(refused.error_code, error::INCONSISTENT_CLUSTER_ID);
    let mut old = stranger.request(&node.data.cluster_id);
    old.features = vec![Feature {
        name: "metadata.version".into(),
        min_supported_version: 1,
        max_supported_version: 7,
        ..Default::default()
    }];
    assert_eq!(
        controller.call(&old, 4).unwrap().error_code,
        error::UNSUPPORTED_VERSION
    );
    let mut no_dirs = stranger.request(&node.data.cluster_id);
    no_dirs.log_dirs.clear();
    assert_eq!(
        controller.call(&no_dirs, 4).unwrap().error_code,
        error::INVALID_REGISTRATION
    );
    // A heartbeat before any registration: a stale epoch.
    stranger.epoch = 3;
    let early = stranger.heartbeat(&mut controller, false, false);
    assert_eq!(early.error_code, error::STALE_BROKER_EPOCH);

    let mut two = FakeBroker::new(2, Some("r2"));
    let mut three = FakeBroker::new(3, Some("r3"));
    let mut four = FakeBroker::new(4, Some("r2"));
    two.register(&mut controller, &node.data.cluster_id);
    // Registered but not heartbeated yet: fenced, not listed.
    let mut client = node.client();
    assert_eq!(broker_ids(&metadata(&mut client, &[])), vec![1]);
    let hb = two.heartbeat(&mut controller, false, false);
    assert!(!hb.is_fenced && hb.is_caught_up && !hb.should_shut_down);
    node.join(&mut three);
    // Another incarnation of a live broker id is refused.
    let impostor = FakeBroker::new(2, Some("r2"));
    assert_eq!(
        controller
            .call(&impostor.request(&node.data.cluster_id), 4)
            .unwrap()
            .error_code,
        error::DUPLICATE_BROKER_REGISTRATION
    );
    // A stale epoch is refused.
    let mut stale = two.clone();
    stale.epoch -= 1;
    assert_eq!(
        stale.heartbeat(&mut controller, false, false).error_code,
        error::STALE_BROKER_EPOCH
    );

    let listed = metadata(&mut client, &[]);
    assert_eq!(broker_ids(&listed), vec![1, 2, 3]);
    let racks: Vec<Option<String>> = listed
        .brokers
        .iter()
        .map(|b| b.rack.as_ref().map(|r| r.to_string()))
        .collect();
    assert_eq!(
        racks,
        [Some("r1"), Some("r2"), Some("r3")].map(|r| r.map(String::from))
    );
    let cluster = client
        .call(
            &DescribeClusterRequest {
                endpoint_type: 1,
                ..Default::default()
            },
            1,
        )
        .unwrap();
    let described: Vec<i32> = cluster.brokers.iter().map(|b| b.broker_id).collect();
    assert_eq!(described, vec![1, 2, 3]);

    // RF 3 over three racks: every partition on every broker, leaders spread.
    assert_eq!(create(&mut client, "spread", 6, 3, &[]).0, error::NONE);
    let spread = partitions(&metadata(&mut client, &["spread"]), "spread");
    let mut leaders = BTreeSet::new();
    for p in spread.values() {
        let replicas: BTreeSet<i32> = p.replica_nodes.iter().copied().collect();
        assert_eq!(replicas, BTreeSet::from([1, 2, 3]), "{p:?}");
        assert_eq!(p.isr_nodes.len(), 3);
        assert_eq!(p.leader_id, p.replica_nodes[0]);
        leaders.insert(p.leader_id);
    }
    assert!(leaders.len() >= 2, "leaders spread: {leaders:?}");
    // RF 4 with three brokers: Kafka's message.
    let (code, message) = create(&mut client, "too-wide", 1, 4, &[]);
    assert_eq!(code, error::INVALID_REPLICATION_FACTOR);
    assert_eq!(
        message.as_deref(),
        Some(
            "Unable to replicate the partition 4 time(s): The target replication factor of 4 \
             cannot be reached because only 3 broker(s) are registered."
        )
    );

    // A fourth broker in rack r2: RF 2 puts each partition in two racks.
    node.join(&mut four);
    assert_eq!(create(&mut client, "racks", 8, 2, &[]).0, error::NONE);
    let rack_of = |b: i32| match b {
        1 => "r1",
        2 | 4 => "r2",
        _ => "r3",
    };
    for p in partitions(&metadata(&mut client, &["racks"]), "racks").values() {
        let racks: BTreeSet<&str> = p.replica_nodes.iter().map(|b| rack_of(*b)).collect();
        assert_eq!(racks.len(), 2, "{p:?}");
    }

    // The controller listener's DescribeCluster lists the controllers.
    let controllers = controller
        .call(
            &DescribeClusterRequest {
                endpoint_type: 2,
                ..Default::default()
            },
            1,
        )
        .unwrap();
    assert_eq!(controllers.error_code, error::NONE);
    let listed: Vec<(i32, i32)> = controllers
        .brokers
        .iter()
        .map(|b| (b.broker_id, b.port))
        .collect();
    assert_eq!(
        listed,
        vec![(1, i32::from(node.broker.controller_addr().port()))]
    );

    // A restart keeps the registrations (and the topics' replicas) from the metadata log.
    node.restart();
    let mut client = node.client();
    let after = metadata(&mut client, &["spread"]);
    assert_eq!(broker_ids(&after), vec![1, 2, 3, 4]);
    assert_eq!(partitions(&after, "spread"), spread);
}

#[test]
fn a_broker_whose_session_expires_is_fenced_and_its_partitions_get_new_leaders() {
    let mut node = Node::start(&[("broker.session.timeout.ms", SHORT_SESSION)]);
    let mut two = FakeBroker::new(2, None);
    let mut three = FakeBroker::new(3, None);
    node.join(&mut two);
    node.join(&mut three);
    let beating_two = Heartbeater::start(&two, node.broker.controller_addr());
    let beating_three = Heartbeater::start(&three, node.broker.controller_addr());
    let mut client = node.client();
    // Broker 2 leads partition 0 and follows in partition 1; it alone holds "solo".
    assert_eq!(
        create(&mut client, "t", 0, 0, &[&[2, 1, 3], &[3, 2, 1]]).0,
        error::NONE
    );
    assert_eq!(create(&mut client, "solo", 0, 0, &[&[2]]).0, error::NONE);
    let before = partitions(&metadata(&mut client, &["t"]), "t");
    let solo_before = partitions(&metadata(&mut client, &["solo"]), "solo")[&0].clone();
    assert_eq!(before[&0].leader_id, 2);
    assert_eq!(broker_ids(&metadata(&mut client, &[])), vec![1, 2, 3]);

    drop(beating_two);
    wait_until("broker 2 is fenced", || {
        broker_ids(&metadata(&mut client, &[])) == vec![1, 3]
    });
    let after = partitions(&metadata(&mut client, &["t"]), "t");
    // Partition 0: the next ISR member leads, one leader epoch later, 2 left the ISR.
    assert_eq!(after[&0].leader_id, 1);
    assert_eq!(after[&0].leader_epoch, before[&0].leader_epoch + 1);
    assert_eq!(after[&0].isr_nodes, vec![1, 3]);
    assert_eq!(after[&0].offline_replicas, vec![2]);
    // Partition 1: the leader stays, the ISR shrinks, the leader epoch does not move.
    assert_eq!(after[&1].leader_id, 3);
    assert_eq!(after[&1].leader_epoch, before[&1].leader_epoch);
    assert_eq!(after[&1].isr_nodes, vec![3, 1]);
    // "solo": nobody else can lead; the last ISR member stays in the ISR (Kafka).
    let solo = partitions(&metadata(&mut client, &["solo"]), "solo")[&0].clone();
    assert_eq!(solo.leader_id, -1);
    assert_eq!(solo.leader_epoch, solo_before.leader_epoch + 1);
    assert_eq!(solo.error_code, error::LEADER_NOT_AVAILABLE);
    assert_eq!(solo.isr_nodes, vec![2]);

    // The fencing is in the metadata log: still fenced after a restart.
    drop(beating_three);
    node.restart();
    let mut client = node.client();
    let restarted = metadata(&mut client, &["t"]);
    assert!(!broker_ids(&restarted).contains(&2));
    assert_eq!(partitions(&restarted, "t")[&0].leader_id, 1);

    // Broker 2 comes back (a new incarnation): "solo" gets its leader again.
    let mut back = FakeBroker::new(2, None);
    back.directory = two.directory;
    node.join(&mut back);
    let _beating = Heartbeater::start(&back, node.broker.controller_addr());
    let rejoined = partitions(&metadata(&mut client, &["solo"]), "solo");
    assert_eq!(rejoined[&0].leader_id, 2);
    assert_eq!(rejoined[&0].leader_epoch, solo.leader_epoch + 1);
}

fn alter(
    controller: &mut RawClient,
    sender: &FakeBroker,
    topic_id: Uuid,
    leader_epoch: i32,
    partition_epoch: i32,
    isr: &[&FakeBroker],
) -> AlterPartitionResponse {
    let request = AlterPartitionRequest {
        broker_id: sender.id,
        broker_epoch: sender.epoch,
        topics: vec![TopicData {
            topic_id,
            partitions: vec![PartitionData {
                partition_index: 0,
                leader_epoch,
                new_isr_with_epochs: isr
                    .iter()
                    .map(|b| BrokerState {
                        broker_id: b.id,
                        broker_epoch: b.epoch,
                        ..Default::default()
                    })
                    .collect(),
                leader_recovery_state: 0,
                partition_epoch,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    controller.call(&request, 3).expect("AlterPartition")
}

#[test]
fn alter_partition_changes_the_isr_and_refuses_stale_requests() {
    let node = Node::start(&[("broker.session.timeout.ms", "60000")]);
    let mut two = FakeBroker::new(2, None);
    let mut three = FakeBroker::new(3, None);
    let mut four = FakeBroker::new(4, None);
    node.join(&mut two);
    node.join(&mut three);
    let mut controller = node.controller();
    // Broker 4 registers but stays fenced.
    four.register(&mut controller, &node.data.cluster_id);
    let mut client = node.client();
    assert_eq!(
        create(&mut client, "isr", 0, 0, &[&[2, 3, 4]]).0,
        error::NONE
    );
    let described = metadata(&mut client, &["isr"]);
    let topic_id = topic(&described, "isr").topic_id;
    let p = &partitions(&described, "isr")[&0];
    assert_eq!((p.leader_id, p.isr_nodes.clone()), (2, vec![2, 3]));
    let epoch = p.leader_epoch;

    // The leader shrinks the ISR to itself.
    let shrunk = alter(&mut controller, &two, topic_id, epoch, 0, &[&two]);
    assert_eq!(shrunk.error_code, error::NONE);
    let answer = &shrunk.topics[0].partitions[0];
    assert_eq!(answer.error_code, error::NONE);
    assert_eq!((answer.leader_id, answer.isr.clone()), (2, vec![2]));
    assert_eq!((answer.leader_epoch, answer.partition_epoch), (epoch, 1));
    assert_eq!(
        partitions(&metadata(&mut client, &["isr"]), "isr")[&0].isr_nodes,
        vec![2]
    );

    // The same request again: its partition epoch is stale.
    let again = alter(&mut controller, &two, topic_id, epoch, 0, &[&two, &three]);
    assert_eq!(
        again.topics[0].partitions[0].error_code,
        error::INVALID_UPDATE_VERSION
    );
    // A newer epoch than the controller's: the sender talks to the wrong controller.
    let newer = alter(&mut controller, &two, topic_id, epoch, 5, &[&two, &three]);
    assert_eq!(
        newer.topics[0].partitions[0].error_code,
        error::NOT_CONTROLLER
    );
    // An older leader epoch.
    if epoch > 0 {
        let older = alter(&mut controller, &two, topic_id, epoch - 1, 1, &[&two]);
        assert_eq!(
            older.topics[0].partitions[0].error_code,
            error::FENCED_LEADER_EPOCH
        );
    }
    // Not the leader.
    let follower = alter(&mut controller, &three, topic_id, epoch, 1, &[&three, &two]);
    assert_eq!(
        follower.topics[0].partitions[0].error_code,
        error::INVALID_REQUEST
    );
    // A fenced replica may not join the ISR.
    let fenced = alter(&mut controller, &two, topic_id, epoch, 1, &[&two, &four]);
    assert_eq!(
        fenced.topics[0].partitions[0].error_code,
        error::INELIGIBLE_REPLICA
    );
    // A stale broker epoch for a replica.
    let mut old_three = three.clone();
    old_three.epoch -= 1;
    let stale_member = alter(
        &mut controller,
        &two,
        topic_id,
        epoch,
        1,
        &[&two, &old_three],
    );
    assert_eq!(
        stale_member.topics[0].partitions[0].error_code,
        error::INELIGIBLE_REPLICA
    );
    // The sender's own epoch is stale: the whole request is refused.
    let mut old_two = two.clone();
    old_two.epoch -= 1;
    let stale = alter(&mut controller, &old_two, topic_id, epoch, 1, &[&two]);
    assert_eq!(stale.error_code, error::STALE_BROKER_EPOCH);
    // An unknown topic id.
    let unknown = alter(&mut controller, &two, random_uuid(), epoch, 1, &[&two]);
    assert_eq!(
        unknown.topics[0].partitions[0].error_code,
        error::UNKNOWN_TOPIC_ID
    );
    // UnregisterBroker removes broker 4 (never this node's own broker).
    let unregister = |client: &mut RawClient, id: i32| {
        client
            .call(
                &gregor_protocol::messages::unregister_broker_request::UnregisterBrokerRequest {
                    broker_id: id,
                    ..Default::default()
                },
                0,
            )
            .expect("UnregisterBroker")
    };
    assert_eq!(
        unregister(&mut client, 1).error_code,
        error::INVALID_REQUEST
    );
    assert_eq!(
        unregister(&mut client, 9).error_code,
        error::BROKER_ID_NOT_REGISTERED
    );
    assert_eq!(unregister(&mut controller, 4).error_code, error::NONE);
    assert_eq!(
        four.heartbeat(&mut controller, false, false).error_code,
        error::STALE_BROKER_EPOCH
    );
    // The leader expands the ISR again.
    let grown = alter(&mut controller, &two, topic_id, epoch, 1, &[&two, &three]);
    let answer = &grown.topics[0].partitions[0];
    assert_eq!(answer.error_code, error::NONE);
    assert_eq!(
        (answer.isr.clone(), answer.partition_epoch),
        (vec![2, 3], 2)
    );
}

fn elect(
    client: &mut RawClient,
    election_type: i8,
    topic: &str,
    partitions: &[i32],
) -> ElectLeadersResponse {
    let request = ElectLeadersRequest {
        election_type,
        topic_partitions: Some(vec![TopicPartitions {
            topic: topic.into(),
            partitions: partitions.to_vec(),
            ..Default::default()
        }]),
        timeout_ms: 30_000,
        ..Default::default()
    };
    client.call(&request, 2).expect("ElectLeaders")
}

fn election_codes(response: &ElectLeadersResponse) -> Vec<(i32, i16)> {
    response.replica_election_results[0]
        .partition_result
        .iter()
        .map(|p| (p.partition_id, p.error_code))
        .collect()
}

#[test]
fn controlled_shutdown_moves_leadership_and_preferred_election_brings_it_back() {
    let node = Node::start(&[("broker.session.timeout.ms", "60000")]);
    let mut two = FakeBroker::new(2, None);
    let mut three = FakeBroker::new(3, None);
    node.join(&mut two);
    node.join(&mut three);
    let mut controller = node.controller();
    let mut client = node.client();
    assert_eq!(
        create(&mut client, "cs", 0, 0, &[&[2, 3, 1], &[3, 2, 1]]).0,
        error::NONE
    );
    assert_eq!(create(&mut client, "solo", 0, 0, &[&[3]]).0, error::NONE);
    let topic_id = topic(&metadata(&mut client, &["cs"]), "cs").topic_id;

    // Broker 2 asks to shut down: it leads partition 0, so it enters controlled shutdown
    // and its leadership moves in the same step.
    let first = two.heartbeat(&mut controller, false, true);
    assert_eq!(first.error_code, error::NONE);
    assert!(!first.is_fenced && !first.should_shut_down);
    let moved = partitions(&metadata(&mut client, &["cs"]), "cs");
    assert_eq!(moved[&0].leader_id, 3);
    assert_eq!(moved[&0].isr_nodes, vec![3, 1]);
    assert_eq!(moved[&1].isr_nodes, vec![3, 1]);
    // It leads nothing now, and every active broker has caught up: it may stop (fenced).
    let second = two.heartbeat(&mut controller, false, true);
    assert!(second.should_shut_down && second.is_fenced, "{second:?}");
    assert_eq!(broker_ids(&metadata(&mut client, &[])), vec![1, 3]);

    // Broker 2 restarts (new incarnation), is unfenced, and the leader adds it back.
    let mut back = FakeBroker::new(2, None);
    back.directory = two.directory;
    node.join(&mut back);
    let leader_epoch = moved[&0].leader_epoch;
    let grown = alter(
        &mut controller,
        &three,
        topic_id,
        leader_epoch,
        1,
        &[&three, &back],
    );
    assert_eq!(
        grown.topics[0].partitions[0].error_code,
        error::NONE,
        "{grown:?}"
    );

    // Preferred election: broker 2 leads partition 0 again; a second time it is not needed.
    let elected = elect(&mut client, 0, "cs", &[0, 7]);
    assert_eq!(elected.error_code, error::NONE);
    assert_eq!(
        election_codes(&elected),
        vec![(0, error::NONE), (7, error::UNKNOWN_TOPIC_OR_PARTITION)]
    );
    let p0 = &partitions(&metadata(&mut client, &["cs"]), "cs")[&0];
    assert_eq!(p0.leader_id, 2);
    assert_eq!(p0.leader_epoch, leader_epoch + 1);
    assert_eq!(
        election_codes(&elect(&mut client, 0, "cs", &[0])),
        vec![(0, error::ELECTION_NOT_NEEDED)]
    );

    // Broker 3 asks to be fenced: partition 1's preferred leader is gone and 1 goes on
    // leading it; "solo" has no live replica at all.
    let fenced = three.heartbeat(&mut controller, true, false);
    assert!(fenced.is_fenced);
    let after = partitions(&metadata(&mut client, &["cs"]), "cs");
    assert_eq!(after[&1].leader_id, 1);
    assert_eq!(
        election_codes(&elect(&mut client, 0, "cs", &[1])),
        vec![(1, error::PREFERRED_LEADER_NOT_AVAILABLE)]
    );
    let solo = partitions(&metadata(&mut client, &["solo"]), "solo");
    assert_eq!(solo[&0].leader_id, -1);
    assert_eq!(
        election_codes(&elect(&mut client, 1, "solo", &[0])),
        vec![(0, error::ELIGIBLE_LEADERS_NOT_AVAILABLE)]
    );
}
