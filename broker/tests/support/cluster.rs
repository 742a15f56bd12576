//! [`Cluster`]: several `gregor` processes forming one Kafka cluster on 127.0.0.1 (issue
//! 15), each on a [`DataDir`] of its own formatted with the same cluster id (as
//! `kafka-storage format --cluster-id` leaves every node of a cluster), with the voters of
//! `controller.quorum.voters` and the roles of `process.roles`. Nodes are killed, paused
//! and restarted one by one; a restarted node keeps its data directory and ports.
//!
//! The processes of earlier runs of a node are kept until the cluster is dropped, so that
//! when a test panics every run's log tail is printed, not only the last one's.

use std::net::SocketAddr;
use std::time::Duration;

use gregor_protocol::messages::describe_quorum_request::{
    DescribeQuorumRequest, PartitionData as QuorumPartition, TopicData as QuorumTopic,
};
use gregor_protocol::messages::describe_quorum_response::DescribeQuorumResponse;
use gregor_protocol::messages::metadata_request::MetadataRequest;
use gregor_protocol::messages::metadata_response::MetadataResponse;

use super::broker::{Broker, server_properties};
use super::datadir::{DataDir, kafka_uuid_string, random_uuid};

/// What one node of a [`Cluster`] runs (`process.roles`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `broker,controller`.
    Combined,
    /// `controller` only: a voter with no broker listener.
    Controller,
    /// `broker` only: registers with the controllers and follows the metadata log.
    Broker,
}

impl Role {
    /// Whether the node serves clients.
    pub fn is_broker(self) -> bool {
        self != Role::Controller
    }

    /// Whether the node is a voter of the metadata quorum.
    pub fn is_controller(self) -> bool {
        self != Role::Broker
    }

    fn process_roles(self) -> &'static str {
        match self {
            Role::Combined => "broker,controller",
            Role::Controller => "controller",
            Role::Broker => "broker",
        }
    }
}

/// One node of a [`Cluster`].
#[derive(Debug)]
pub struct Node {
    /// `node.id`.
    pub id: i32,
    /// Its roles.
    pub role: Role,
    /// Its data directory (kept across restarts).
    pub data: DataDir,
    /// The process, while it runs (or is paused).
    process: Option<Broker>,
    /// Processes of earlier runs (for their logs).
    past: Vec<Broker>,
    /// Stopped with SIGSTOP (see [`Cluster::pause`]).
    paused: bool,
}

impl Node {
    /// The PLAINTEXT listener (brokers).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.data.ports.plaintext))
    }

    /// The CONTROLLER listener (controllers).
    pub fn controller_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.data.ports.controller))
    }

    /// The running process; panics when the node is down.
    pub fn process(&self) -> &Broker {
        self.process.as_ref().expect("the node is running")
    }

    /// Whether a process runs (or is paused).
    pub fn is_up(&self) -> bool {
        self.process.is_some()
    }

    /// Whether a process runs and is not paused: it answers requests.
    pub fn is_serving(&self) -> bool {
        self.is_up() && !self.paused
    }

    /// Everything the current process printed so far (empty when down).
    pub fn log_text(&self) -> String {
        self.process
            .as_ref()
            .map(Broker::log_text)
            .unwrap_or_default()
    }

    /// The topic id this node's Metadata gives `name`, if it lists the topic.
    pub fn topic_id(&self, name: &str) -> Option<gregor_protocol::Uuid> {
        let response = topic_metadata(self.addr(), name)?;
        let topic = response.topics.first()?;
        (topic.error_code == 0).then_some(topic.topic_id)
    }

    /// What every run of the node printed, the earlier runs first.
    pub fn all_logs(&self) -> String {
        self.past
            .iter()
            .chain(self.process.as_ref())
            .map(Broker::log_text)
            .collect()
    }
}

/// Several `gregor` processes forming one cluster (see the module docs).
#[derive(Debug)]
pub struct Cluster {
    /// The cluster id every node was formatted with.
    pub cluster_id: String,
    /// The nodes, in id order (ids from 1).
    pub nodes: Vec<Node>,
    /// `server.properties` keys every node gets on top of the harness's.
    extra: Vec<(String, String)>,
    /// Keys of one node (by id), over `extra`.
    node_extra: Vec<(i32, String, String)>,
    /// A dynamic quorum (KIP-853): the nodes `controller.quorum.bootstrap.servers` names,
    /// instead of every controller in `controller.quorum.voters`.
    quorum_bootstrap: Option<Vec<i32>>,
}

impl Cluster {
    /// `count` combined nodes (ids 1..=count, every one a voter), not started yet.
    pub fn combined(count: usize) -> Cluster {
        Cluster::new(&vec![Role::Combined; count])
    }

    /// `controllers` controller-only nodes (ids 1..) and `brokers` broker-only nodes (the
    /// ids after them), not started yet.
    pub fn split(controllers: usize, brokers: usize) -> Cluster {
        let mut roles = vec![Role::Controller; controllers];
        roles.extend(std::iter::repeat_n(Role::Broker, brokers));
        Cluster::new(&roles)
    }

    /// One node per entry of `roles` (ids 1..), not started yet.
    pub fn new(roles: &[Role]) -> Cluster {
        let cluster_id = kafka_uuid_string(random_uuid());
        let nodes = roles
            .iter()
            .enumerate()
            .map(|(i, &role)| Node {
                id: i as i32 + 1,
                role,
                data: DataDir::builder()
                    .node_id(i as i32 + 1)
                    .cluster_id(&cluster_id)
                    .without_metadata_log()
                    .build(),
                process: None,
                past: Vec::new(),
                paused: false,
            })
            .collect();
        let brokers = roles.iter().filter(|r| r.is_broker()).count();
        let replication = brokers.clamp(1, 3).to_string();
        let min_isr = if brokers >= 3 { "2" } else { "1" };
        let extra = [
            ("offsets.topic.replication.factor", replication.as_str()),
            ("transaction.state.log.replication.factor", &replication),
            ("transaction.state.log.min.isr", min_isr),
            ("default.replication.factor", &replication),
            // Kafka's defaults, spelled out: the tests pause nodes past them.
            ("broker.session.timeout.ms", "9000"),
            ("broker.heartbeat.interval.ms", "2000"),
            ("replica.lag.time.max.ms", "30000"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Cluster {
            cluster_id,
            nodes,
            extra,
            node_extra: Vec::new(),
            quorum_bootstrap: None,
        }
    }

    /// Sets (or replaces) a `server.properties` key on every node, for the next starts.
    pub fn set(&mut self, key: &str, value: &str) -> &mut Cluster {
        match self.extra.iter_mut().find(|(k, _)| k == key) {
            Some(line) => line.1 = value.to_string(),
            None => self.extra.push((key.to_string(), value.to_string())),
        }
        self
    }

    /// Sets (or replaces) a `server.properties` key of node `id` only, over [`Cluster::set`].
    pub fn set_node(&mut self, id: i32, key: &str, value: &str) -> &mut Cluster {
        match self
            .node_extra
            .iter_mut()
            .find(|(n, k, _)| *n == id && k == key)
        {
            Some(line) => line.2 = value.to_string(),
            None => self
                .node_extra
                .push((id, key.to_string(), value.to_string())),
        }
        self
    }

    /// Starts nodes `ids` all at once and waits until each accepts connections.
    pub fn start_some(&mut self, ids: &[i32]) {
        for &id in ids {
            self.spawn(id);
        }
        for &id in ids {
            self.wait_ready(id);
        }
    }

    /// Starts node `id` without waiting for it (a node that may never become ready).
    pub fn spawn_node(&mut self, id: i32) {
        self.spawn(id);
    }

    /// Makes the quorum dynamic (KIP-853): nodes find it through
    /// `controller.quorum.bootstrap.servers` naming the controllers `ids`, and no node has
    /// `controller.quorum.voters`; the voters are what `gregor format` writes
    /// ([`Cluster::format`]) and AddRaftVoter/RemoveRaftVoter change.
    pub fn dynamic_quorum(&mut self, ids: &[i32]) -> &mut Cluster {
        self.quorum_bootstrap = Some(ids.to_vec());
        self
    }

    /// Formats node `id` again with the real `gregor format` and `args` (`--standalone`,
    /// `--no-initial-controllers`, ...) on its `server.properties`, replacing the
    /// `meta.properties` the harness wrote; the command's output.
    pub fn format(&self, id: i32, args: &[&str]) -> std::process::Output {
        let node = self.node(id);
        let _ = std::fs::remove_file(node.data.path().join("meta.properties"));
        let file = node.data.path().join("format.properties");
        std::fs::write(&file, self.properties(id)).expect("write the properties");
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_gregor"))
            .arg("format")
            .args(["--cluster-id", &self.cluster_id, "--config"])
            .arg(&file)
            .args(args)
            .output()
            .expect("run gregor format");
        let _ = std::fs::remove_file(&file);
        output
    }

    /// `controller.quorum.voters` of this cluster.
    pub fn voters(&self) -> String {
        self.nodes
            .iter()
            .filter(|n| n.role.is_controller())
            .map(|n| format!("{}@127.0.0.1:{}", n.id, n.data.ports.controller))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The `server.properties` of node `id`.
    pub fn properties(&self, id: i32) -> String {
        let node = self.node(id);
        let (plaintext, controller) = (node.data.ports.plaintext, node.data.ports.controller);
        let voters = self.voters();
        let quorum = match &self.quorum_bootstrap {
            None => ("controller.quorum.voters", voters),
            Some(ids) => (
                "controller.quorum.bootstrap.servers",
                ids.iter()
                    .map(|&id| format!("127.0.0.1:{}", self.node(id).data.ports.controller))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        };
        let mut extra: Vec<(&str, String)> = vec![
            ("process.roles", node.role.process_roles().to_string()),
            quorum,
        ];
        match node.role {
            Role::Combined => {}
            Role::Controller => {
                extra.push(("listeners", format!("CONTROLLER://127.0.0.1:{controller}")))
            }
            Role::Broker => extra.push(("listeners", format!("PLAINTEXT://127.0.0.1:{plaintext}"))),
        }
        extra.extend(self.extra.iter().map(|(k, v)| (k.as_str(), v.clone())));
        for (_, key, value) in self.node_extra.iter().filter(|(n, _, _)| *n == id) {
            match extra.iter_mut().find(|(k, _)| k == key) {
                Some(line) => line.1 = value.clone(),
                None => extra.push((key.as_str(), value.clone())),
            }
        }
        let borrowed: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut text = server_properties(&node.data, &borrowed);
        if self.quorum_bootstrap.is_some() {
            // The harness's one-node default names its own voter.
            text = text
                .lines()
                .filter(|l| !l.starts_with("controller.quorum.voters="))
                .map(|l| format!("{l}\n"))
                .collect();
        }
        if node.role == Role::Controller {
            // A controller-only node has no broker listener to advertise.
            text.lines()
                .filter(|l| {
                    !l.starts_with("advertised.listeners=")
                        && !l.starts_with("inter.broker.listener.name=")
                })
                .map(|l| format!("{l}\n"))
                .collect()
        } else {
            text
        }
    }

    /// Node `id`.
    pub fn node(&self, id: i32) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    fn node_mut(&mut self, id: i32) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// Starts every node that is down (see [`Cluster::start_nodes`]) and waits until every
    /// running broker lists every broker of the cluster in its Metadata (each registered
    /// with the active controller and was unfenced).
    pub fn start(&mut self) -> &mut Cluster {
        self.start_nodes();
        self.wait_for_brokers();
        self
    }

    /// Waits until every running broker's Metadata lists every broker of the cluster.
    pub fn wait_for_brokers(&self) {
        let want = self.broker_ids();
        wait_for(
            "every broker registered and unfenced",
            Duration::from_secs(90),
            || {
                let listed = self
                    .nodes
                    .iter()
                    .filter(|n| n.role.is_broker() && n.is_serving())
                    .all(|n| broker_ids_listed_by(n.addr()).as_deref() == Some(&want[..]));
                listed.then_some(())
            },
        );
    }

    /// Starts every node that is down, all at once (a quorum needs a majority before any
    /// of them is ready), then waits until each accepts connections.
    pub fn start_nodes(&mut self) -> &mut Cluster {
        let ids: Vec<i32> = self
            .nodes
            .iter()
            .filter(|n| !n.is_up())
            .map(|n| n.id)
            .collect();
        for &id in &ids {
            self.spawn(id);
        }
        for &id in &ids {
            self.wait_ready(id);
        }
        self
    }

    fn spawn(&mut self, id: i32) {
        let properties = self.properties(id);
        // GREGOR_CLUSTER_LOG: another RUST_LOG filter for the nodes, when debugging a failure.
        let filter = std::env::var("GREGOR_CLUSTER_LOG").unwrap_or_else(|_| "info".into());
        let env = [("RUST_LOG", filter.as_str())];
        let node = self.node_mut(id);
        assert!(node.process.is_none(), "node {id} is already running");
        node.process = Some(Broker::spawn_properties(&node.data, &properties, &env));
    }

    fn wait_ready(&mut self, id: i32) {
        let node = self.node_mut(id);
        let addr = if node.role.is_broker() {
            node.addr()
        } else {
            node.controller_addr()
        };
        let process = node.process.take().expect("spawned");
        node.process = Some(process.wait_ready_at(addr));
    }

    /// Gives node `id` (it must be down) a new controller listener port for its next
    /// start; the new port.
    pub fn move_controller_port(&mut self, id: i32) -> u16 {
        let port = super::datadir::free_port();
        let node = self.node_mut(id);
        assert!(node.process.is_none(), "node {id} is running");
        node.data.ports.controller = port;
        port
    }

    /// Starts node `id` again (it must be down) and waits until it accepts connections.
    pub fn restart(&mut self, id: i32) {
        self.spawn(id);
        self.wait_ready(id);
    }

    /// Kills node `id` with SIGKILL (a crash).
    pub fn kill9(&mut self, id: i32) {
        let node = self.node_mut(id);
        let mut process = node.process.take().expect("the node is running");
        process.kill9();
        node.paused = false;
        node.past.push(process);
    }

    /// Stops node `id` with SIGTERM (a clean, controlled shutdown) and waits for its exit.
    pub fn stop(&mut self, id: i32) {
        let node = self.node_mut(id);
        let mut process = node.process.take().expect("the node is running");
        process.stop();
        node.past.push(process);
    }

    /// Pauses node `id` (SIGSTOP): it keeps its sockets but answers nothing.
    pub fn pause(&mut self, id: i32) {
        self.node(id).process().signal("STOP");
        self.node_mut(id).paused = true;
    }

    /// Resumes a paused node (SIGCONT).
    pub fn resume(&mut self, id: i32) {
        self.node(id).process().signal("CONT");
        self.node_mut(id).paused = false;
    }

    /// Waits until a serving controller answers DescribeQuorum as the leader of an epoch
    /// with every voter listed; its id.
    pub fn wait_for_active_controller(&self) -> i32 {
        let voters = self.nodes.iter().filter(|n| n.role.is_controller()).count();
        wait_for("an active controller", Duration::from_secs(120), || {
            self.nodes
                .iter()
                .filter(|n| n.role.is_controller() && n.is_serving())
                .find_map(|node| {
                    let mut client = super::RawClient::connect(node.controller_addr()).ok()?;
                    let response: DescribeQuorumResponse =
                        client.call(&describe_quorum(), 2).ok()?;
                    let partition = response.topics.first()?.partitions.first()?;
                    let leads = response.error_code == 0
                        && partition.error_code == 0
                        && partition.leader_id == node.id;
                    if leads {
                        assert!(partition.leader_epoch > 0, "{response:?}");
                        assert_eq!(partition.current_voters.len(), voters, "{response:?}");
                    }
                    leads.then_some(node.id)
                })
        })
    }

    /// The broker nodes that serve, as a bootstrap list for clients.
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .filter(|n| n.role.is_broker() && n.is_serving())
            .map(|n| n.addr().to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The ids of the broker nodes.
    pub fn broker_ids(&self) -> Vec<i32> {
        self.nodes
            .iter()
            .filter(|n| n.role.is_broker())
            .map(|n| n.id)
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Paused processes must be resumed to die of SIGKILL's reaping promptly.
        for node in &self.nodes {
            if let Some(process) = &node.process
                && process.pid().is_some()
            {
                let _ = std::process::Command::new("kill")
                    .args(["-CONT", &process.pid().unwrap_or_default().to_string()])
                    .status();
            }
        }
    }
}

/// DescribeQuorum of `__cluster_metadata-0`.
pub fn describe_quorum() -> DescribeQuorumRequest {
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

/// `addr`'s Metadata (v12) of the one topic `name`, without creating it (`None` when it
/// does not answer).
pub fn topic_metadata(addr: SocketAddr, name: &str) -> Option<MetadataResponse> {
    let mut client = super::RawClient::connect(addr).ok()?;
    let request = MetadataRequest {
        topics: Some(vec![
            gregor_protocol::messages::metadata_request::MetadataRequestTopic {
                name: Some(name.into()),
                ..Default::default()
            },
        ]),
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    client.call(&request, 12).ok()
}

/// The broker ids `addr`'s Metadata lists, sorted (`None` when it does not answer).
pub fn broker_ids_listed_by(addr: SocketAddr) -> Option<Vec<i32>> {
    let mut client = super::RawClient::connect(addr).ok()?;
    let request = MetadataRequest {
        topics: Some(Vec::new()),
        ..Default::default()
    };
    let response: MetadataResponse = client.call(&request, 12).ok()?;
    let mut ids: Vec<i32> = response.brokers.iter().map(|b| b.node_id).collect();
    ids.sort_unstable();
    Some(ids)
}

/// Polls `check` every 200 ms until it returns `Some`, or panics with `what` after
/// `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        if std::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
