//! Broker-only nodes (`process.roles=broker`) of a cluster follow the metadata log as
//! KRaft observers, against the real binary: controller-only nodes
//! (`process.roles=controller`) hold the quorum; the broker-only node fetches
//! `__cluster_metadata-0` from its leader over the controller listener, keeps a copy in
//! its own metadata log directory and lists what the controllers committed in its
//! Metadata; restarted, it starts from its copy and catches up; when the quorum's leader is
//! killed it follows the new one.
//!
//! The test registers the broker with the active controller itself (BrokerRegistration and
//! BrokerHeartbeat over the controller listener, as a Kafka broker sends them) and creates
//! topics with CreateTopics on the controller listener (which Kafka's `ControllerApis`
//! serves): the broker's own lifecycle is not what this checks. Waits poll with generous
//! deadlines; nothing is timed.

mod support;

use std::fs::{self, File};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gregor_protocol::messages::create_topics_request::{CreatableTopic, CreateTopicsRequest};
use gregor_protocol::messages::describe_quorum_request::{
    DescribeQuorumRequest, PartitionData as QuorumPartition, TopicData as QuorumTopic,
};
use gregor_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use gregor_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use gregor_protocol::{ApiKey, Uuid, error_code as error};

use support::{RawClient, api_versions, free_port};

/// Kafka's `Uuid.METADATA_TOPIC_ID`.
const METADATA_TOPIC_ID: Uuid = Uuid::from_u64_pair(0, 1);

const DEADLINE: Duration = Duration::from_secs(120);

/// One `gregor` process: a controller-only or a broker-only node.
struct Node {
    id: i32,
    controller_only: bool,
    dir: tempfile::TempDir,
    plaintext: u16,
    controller: u16,
    child: Option<Child>,
}

impl Node {
    fn new(id: i32, controller_only: bool) -> Node {
        Node {
            id,
            controller_only,
            dir: tempfile::Builder::new()
                .prefix("gregor-observer-")
                .tempdir()
                .expect("a temporary directory"),
            plaintext: free_port(),
            controller: free_port(),
            child: None,
        }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("server.properties")
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("node.log")
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.plaintext))
    }

    fn controller_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.controller))
    }

    fn write_config(&self, voters: &str) {
        let roles = if self.controller_only {
            format!(
                "process.roles=controller\n\
                 listeners=CONTROLLER://127.0.0.1:{}\n",
                self.controller
            )
        } else {
            format!(
                "process.roles=broker\n\
                 listeners=PLAINTEXT://127.0.0.1:{p}\n\
                 advertised.listeners=PLAINTEXT://127.0.0.1:{p}\n\
                 inter.broker.listener.name=PLAINTEXT\n",
                p = self.plaintext
            )
        };
        let text = format!(
            "{roles}node.id={id}\n\
             controller.quorum.voters={voters}\n\
             controller.listener.names=CONTROLLER\n\
             listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n\
             log.dirs={dir}\n\
             num.partitions=1\n\
             default.replication.factor=1\n\
             offsets.topic.replication.factor=1\n\
             transaction.state.log.replication.factor=1\n\
             transaction.state.log.min.isr=1\n\
             broker.session.timeout.ms=600000\n",
            id = self.id,
            dir = self.data_dir().display(),
        );
        fs::write(self.config_path(), text).expect("write server.properties");
    }

    fn format(&self, cluster_id: &str) {
        let config = self.config_path().display().to_string();
        let (ok, text) = gregor(&["format", "-t", cluster_id, "-c", &config]);
        assert!(ok, "format node {}: {text}", self.id);
    }

    /// The port the node is up once it listens on.
    fn ready_addr(&self) -> SocketAddr {
        if self.controller_only {
            self.controller_addr()
        } else {
            self.addr()
        }
    }

    fn start(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the node log");
        let child = Command::new(env!("CARGO_BIN_EXE_gregor"))
            .arg(self.config_path())
            .env("RUST_LOG", "info,gregor_broker::cluster::observer=debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .expect("start gregor");
        self.child = Some(child);
        let deadline = Instant::now() + DEADLINE;
        while TcpStream::connect_timeout(&self.ready_addr(), Duration::from_millis(200)).is_err() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "node {} exited at start-up ({status})\n{}",
                    self.id,
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "node {} did not listen\n{}",
                self.id,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log_text(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(child) = &self.child
        {
            let text = self.log_text();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            eprintln!(
                "--- node {} (pid {}) log tail ---\n{}",
                self.id,
                child.id(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        self.kill9();
    }
}

fn gregor(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args(args)
        .output()
        .expect("run gregor");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// `controllers` controller-only nodes (ids 1..) and one broker-only node (the last),
/// configured and formatted with one cluster id.
fn cluster(controllers: i32) -> (Vec<Node>, Node, String) {
    let nodes: Vec<Node> = (1..=controllers).map(|id| Node::new(id, true)).collect();
    let broker = Node::new(controllers + 1, false);
    let voters = nodes
        .iter()
        .map(|n| format!("{}@127.0.0.1:{}", n.id, n.controller))
        .collect::<Vec<_>>()
        .join(",");
    let (ok, cluster_id) = gregor(&["random-uuid"]);
    assert!(ok, "{cluster_id}");
    let cluster_id = cluster_id.trim().to_string();
    for node in nodes.iter().chain([&broker]) {
        node.write_config(&voters);
        node.format(&cluster_id);
    }
    (nodes, broker, cluster_id)
}

fn quorum_request() -> DescribeQuorumRequest {
    DescribeQuorumRequest {
        topics: vec![QuorumTopic {
            topic_name: "__cluster_metadata".into(),
            partitions: vec![QuorumPartition {
                partition_index: 0,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The running controller that answers DescribeQuorum as the leader.
fn wait_for_active(nodes: &[Node]) -> usize {
    let deadline = Instant::now() + DEADLINE;
    loop {
        for (i, node) in nodes.iter().enumerate() {
            if node.child.is_none() {
                continue;
            }
            let Ok(mut client) = RawClient::connect(node.controller_addr()) else {
                continue;
            };
            let Ok(response) = client.call(&quorum_request(), 2) else {
                continue;
            };
            let partition = &response.topics[0].partitions[0];
            if response.error_code == error::NONE
                && partition.error_code == error::NONE
                && partition.leader_id == node.id
            {
                return i;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no active controller was elected"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until `broker` registered itself with the active controller and was unfenced
/// (`cluster/broker_lifecycle.rs`): its own Metadata, from the metadata log it follows,
/// lists it.
fn wait_registered(broker: &Node) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let listed = RawClient::connect(broker.addr())
            .ok()
            .and_then(|mut client| {
                let request = MetadataRequest {
                    topics: Some(Vec::new()),
                    ..Default::default()
                };
                let response = client.call(&request, 12).ok()?;
                Some(response.brokers.iter().any(|b| b.node_id == broker.id))
            });
        if listed == Some(true) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "broker {} never registered",
            broker.id
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

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

/// The id `node`'s Metadata gives `name`, if listed.
fn topic_id(node: &Node, name: &str) -> Option<Uuid> {
    let mut client = RawClient::connect(node.addr()).ok()?;
    let request = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: Some(name.into()),
            ..Default::default()
        }]),
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    let response = client.call(&request, 12).ok()?;
    let topic = response.topics.first()?;
    (topic.error_code == error::NONE).then_some(topic.topic_id)
}

fn wait_for_topic(node: &Node, name: &str, id: Uuid) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let seen = topic_id(node, name);
        if seen == Some(id) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {} does not list {name} ({id}): {seen:?}\n{}",
            node.id,
            node.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The segment files of the broker's copy of the metadata log.
fn segments(node: &Node) -> Vec<String> {
    let dir = node.data_dir().join("__cluster_metadata-0");
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
    let (mut controllers, mut broker, _) = cluster(1);
    controllers[0].start();
    broker.start();
    let active = wait_for_active(&controllers);
    wait_registered(&broker);

    let first = create_topic(&controllers[active], "observed");
    wait_for_topic(&broker, "observed", first);
    assert!(!segments(&broker).is_empty(), "a local copy of the log");

    // Down while the metadata changes; back, it replays its copy and catches up.
    broker.kill9();
    let second = create_topic(&controllers[active], "while-down");
    broker.start();
    wait_for_topic(&broker, "while-down", second);
    wait_for_topic(&broker, "observed", first);
    let replays: Vec<String> = broker
        .log_text()
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
}

#[test]
fn a_broker_only_node_follows_a_new_leader_after_the_old_one_is_killed() {
    let (mut controllers, mut broker, cluster_id) = cluster(3);
    for node in &mut controllers {
        node.start();
    }
    broker.start();
    let active = wait_for_active(&controllers);
    wait_registered(&broker);
    let first = create_topic(&controllers[active], "before");
    wait_for_topic(&broker, "before", first);

    // A voter that does not lead names the leader; another topic than the metadata
    // partition is refused.
    let follower = (0..controllers.len()).find(|i| *i != active).unwrap();
    let apis = api_versions(controllers[follower].controller_addr()).expect("ApiVersions");
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
    let mut client = RawClient::connect(controllers[follower].controller_addr()).unwrap();
    // Until the follower has heard from the leader (it may lag the majority).
    let deadline = Instant::now() + DEADLINE;
    let epoch = loop {
        let answer = client
            .call(&fetch(METADATA_TOPIC_ID, 0), 17)
            .expect("Fetch");
        let partition = &answer.responses[0].partitions[0];
        assert_eq!(partition.error_code, error::FENCED_LEADER_EPOCH);
        if partition.current_leader.leader_id == controllers[active].id {
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
    assert_eq!(partition.current_leader.leader_id, controllers[active].id);
    let answer = client.call(&fetch(first, epoch), 17).expect("Fetch");
    assert_eq!(answer.error_code, error::INVALID_REQUEST);
    // The leader sends its log, with the high watermark.
    let mut client = RawClient::connect(controllers[active].controller_addr()).unwrap();
    let answer = client
        .call(&fetch(METADATA_TOPIC_ID, epoch), 17)
        .expect("Fetch");
    let partition = &answer.responses[0].partitions[0];
    assert_eq!(partition.error_code, error::NONE);
    assert!(partition.high_watermark > 0);
    assert!(partition.records.as_ref().is_some_and(|r| !r.is_empty()));

    controllers[active].kill9();
    let next = wait_for_active(&controllers);
    assert_ne!(next, active);
    let second = create_topic(&controllers[next], "after");
    wait_for_topic(&broker, "after", second);
    assert_eq!(topic_id(&broker, "before"), Some(first));
}
