//! A dynamic metadata quorum (KIP-853, issue 15): controllers found through
//! `controller.quorum.bootstrap.servers`, formatted with the real `gregor format
//! --standalone` / `--no-initial-controllers`, grown and shrunk with AddRaftVoter and
//! RemoveRaftVoter (the generated request types; no Kafka client library sends them), and
//! used by confluent-kafka throughout.
//!
//! * controller 1 formatted `--standalone` leads alone with `kraft.version` 1 and the
//!   directory id `format` wrote; controllers 2 and 3 (`--no-initial-controllers`) start as
//!   non-voters and are added, one through the broker (forwarded), one on the controller
//!   listener; DescribeQuorum lists the three with their directory ids;
//! * the refusals come back as Kafka's codes (a voter twice, a wrong directory id, another
//!   cluster id, a controller that is not the leader, a static quorum);
//! * the leader killed: the two others elect one and topics are still created; the dead
//!   voter is removed; a voter restarted on another port keeps the voter set of the log
//!   and tells the leader its new endpoint (UpdateRaftVoter);
//! * three combined nodes formatted with one `--initial-controllers` list form the quorum
//!   with those directory ids and endpoints, and keep it when all of them go down;
//! * `format` refuses a controller without voters and without any of the three options,
//!   and a list naming a node twice.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use gregor_protocol::Uuid;
use gregor_protocol::error_code::*;
use gregor_protocol::messages::add_raft_voter_request::{AddRaftVoterRequest, Listener};
use gregor_protocol::messages::add_raft_voter_response::AddRaftVoterResponse;
use gregor_protocol::messages::describe_quorum_response::{DescribeQuorumResponse, PartitionData};
use gregor_protocol::messages::remove_raft_voter_request::RemoveRaftVoterRequest;
use gregor_protocol::messages::remove_raft_voter_response::RemoveRaftVoterResponse;
use support::RawClient;
use support::cluster::{Cluster, Role, describe_quorum, wait_for};
use support::json::JsonExt;
use support::load::{run_create_topic, wait_for_topic};

/// How long the cluster may take to settle (elections, catching up, registrations).
const SETTLE: Duration = Duration::from_secs(60);

/// Creates `topic` (one partition, `rf` replicas) with confluent-kafka while the
/// controllers may still be failing over or just elected: the client's own retry of a request whose answer was lost finds
/// the topic created by the first try, so TOPIC_ALREADY_EXISTS is success here (the name
/// is new to this test; [`wait_for_topic`] then checks it is there).
fn create_during_failover(cluster: &Cluster, topic: &str, rf: usize) {
    let Some(out) = run_create_topic(&cluster.bootstrap(), topic, 1, rf as i32, &[]) else {
        return;
    };
    out.assert_success();
    let code = out.json().field("code").as_str().map(str::to_string);
    assert!(
        code.is_none() || code.as_deref() == Some("TOPIC_ALREADY_EXISTS"),
        "CreateTopics {topic}: {out}"
    );
    wait_for_topic(cluster, topic, 1, rf);
}

/// The `directory.id` of node `id`'s `meta.properties`.
fn directory_id(cluster: &Cluster, id: i32) -> Uuid {
    let text = std::fs::read_to_string(cluster.node(id).data.path().join("meta.properties"))
        .expect("meta.properties");
    let value = text
        .lines()
        .find_map(|l| l.strip_prefix("directory.id="))
        .expect("a directory.id");
    gregor_broker::cluster::meta_properties::uuid_from_base64(value.trim()).expect("a Kafka id")
}

/// DescribeQuorum's partition as controller `id` answers it.
fn quorum_seen_by(cluster: &Cluster, id: i32) -> Option<(DescribeQuorumResponse, PartitionData)> {
    let mut client = RawClient::connect(cluster.node(id).controller_addr()).ok()?;
    let response: DescribeQuorumResponse = client.call(&describe_quorum(), 2).ok()?;
    let partition = response.topics.first()?.partitions.first()?.clone();
    Some((response, partition))
}

/// Waits until some controller of `among` leads with exactly `voters`; the leader's answer.
fn wait_for_voters(cluster: &Cluster, among: &[i32], voters: &[i32]) -> (i32, PartitionData) {
    wait_for(&format!("a leader with voters {voters:?}"), SETTLE, || {
        among.iter().find_map(|&id| {
            let (_, partition) = quorum_seen_by(cluster, id)?;
            let listed: Vec<i32> = partition
                .current_voters
                .iter()
                .map(|v| v.replica_id)
                .collect();
            (partition.error_code == NONE && partition.leader_id == id && listed == voters)
                .then_some((id, partition))
        })
    })
}

fn add_voter(cluster: &Cluster, id: i32, directory: Uuid, cluster_id: &str) -> AddRaftVoterRequest {
    let port = cluster
        .nodes
        .iter()
        .find(|n| n.id == id)
        .map_or(9093, |n| n.data.ports.controller);
    AddRaftVoterRequest {
        cluster_id: Some(cluster_id.into()),
        timeout_ms: 30_000,
        voter_id: id,
        voter_directory_id: directory,
        listeners: vec![Listener {
            name: "CONTROLLER".into(),
            host: "127.0.0.1".into(),
            port,
            ..Default::default()
        }],
        ack_when_committed: true,
        ..Default::default()
    }
}

fn call_add(addr: SocketAddr, request: &AddRaftVoterRequest) -> AddRaftVoterResponse {
    RawClient::connect(addr)
        .expect("connect")
        .call(request, 1)
        .expect("AddRaftVoter")
}

fn call_remove(addr: SocketAddr, id: i32, directory: Uuid) -> RemoveRaftVoterResponse {
    let request = RemoveRaftVoterRequest {
        cluster_id: None,
        voter_id: id,
        voter_directory_id: directory,
        ..Default::default()
    };
    RawClient::connect(addr)
        .expect("connect")
        .call(&request, 0)
        .expect("RemoveRaftVoter")
}

#[test]
fn a_standalone_controller_grows_to_three_voters_survives_its_death_and_shrinks() {
    let mut cluster = Cluster::new(&[
        Role::Controller,
        Role::Controller,
        Role::Controller,
        Role::Broker,
    ]);
    cluster.dynamic_quorum(&[1, 2, 3]);
    // Without any of the three options a controller without voters is refused.
    let refused = cluster.format(1, &[]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--standalone, --initial-controllers"),
        "{refused:?}"
    );
    for (id, args) in [
        (1, &["--standalone"][..]),
        (2, &["--no-initial-controllers"][..]),
        (3, &["--no-initial-controllers"][..]),
        (4, &[][..]),
    ] {
        let out = cluster.format(id, args);
        assert!(out.status.success(), "format {id} {args:?}: {out:?}");
    }
    let checkpoint = cluster
        .node(1)
        .data
        .path()
        .join("__cluster_metadata-0/00000000000000000000-0000000000.checkpoint");
    assert!(checkpoint.exists(), "the bootstrap snapshot");
    let dirs: Vec<Uuid> = (1..=3).map(|id| directory_id(&cluster, id)).collect();

    cluster.start_some(&[1]);
    let (_, alone) = wait_for_voters(&cluster, &[1], &[1]);
    assert_eq!(alone.current_voters[0].replica_directory_id, dirs[0]);
    cluster.start_some(&[2, 3, 4]);
    cluster.wait_for_brokers();
    create_during_failover(&cluster, "before", 1);

    // Node 2 through the broker (forwarded to the active controller), node 3 on the
    // controller listener.
    let cluster_id = cluster.cluster_id.clone();
    let broker = cluster.node(4).addr();
    let added = call_add(broker, &add_voter(&cluster, 2, dirs[1], &cluster_id));
    assert_eq!(added.error_code, NONE, "{added:?}");
    let controller = cluster.node(1).controller_addr();
    let added = call_add(controller, &add_voter(&cluster, 3, dirs[2], &cluster_id));
    assert_eq!(added.error_code, NONE, "{added:?}");
    let (leader, three) = wait_for_voters(&cluster, &[1, 2, 3], &[1, 2, 3]);
    let listed: Vec<Uuid> = three
        .current_voters
        .iter()
        .map(|v| v.replica_directory_id)
        .collect();
    assert_eq!(listed, dirs);

    // Kafka's refusals.
    let leader_addr = cluster.node(leader).controller_addr();
    let again = call_add(leader_addr, &add_voter(&cluster, 2, dirs[1], &cluster_id));
    assert_eq!(again.error_code, DUPLICATE_VOTER, "{again:?}");
    let other = call_add(
        leader_addr,
        &add_voter(&cluster, 2, dirs[1], "AAAAAAAAAAAAAAAAAAAAAA"),
    );
    assert_eq!(other.error_code, INCONSISTENT_CLUSTER_ID, "{other:?}");
    let mut no_listener = add_voter(&cluster, 5, dirs[1], &cluster_id);
    no_listener.listeners[0].name = "OTHER".into();
    let refused = call_add(leader_addr, &no_listener);
    assert_eq!(refused.error_code, INVALID_REQUEST, "{refused:?}");
    let wrong_dir = call_remove(leader_addr, 2, dirs[0]);
    assert_eq!(wrong_dir.error_code, VOTER_NOT_FOUND, "{wrong_dir:?}");
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let not_leader = call_remove(cluster.node(follower).controller_addr(), 2, dirs[1]);
    assert_eq!(
        not_leader.error_code, NOT_LEADER_OR_FOLLOWER,
        "{not_leader:?}"
    );

    // The leader dies: the two others go on, metadata changes included.
    cluster.kill9(leader);
    let rest: Vec<i32> = [1, 2, 3].into_iter().filter(|id| *id != leader).collect();
    let (new_leader, _) = wait_for_voters(&cluster, &rest, &[1, 2, 3]);
    create_during_failover(&cluster, "after", 1);

    // The dead voter is taken out; the set of two survives a restart of one of them.
    let removed = call_remove(
        cluster.node(new_leader).controller_addr(),
        leader,
        dirs[(leader - 1) as usize],
    );
    assert_eq!(removed.error_code, NONE, "{removed:?}");
    wait_for_voters(&cluster, &rest, &rest);
    // The other voter comes back on a new port: it tells the leader (UpdateRaftVoter), whose
    // voter set then names the new endpoint.
    let other = rest.iter().copied().find(|id| *id != new_leader).unwrap();
    cluster.stop(other);
    let port = cluster.move_controller_port(other);
    cluster.restart(other);
    wait_for_voters(&cluster, &rest, &rest);
    wait_for("the leader to know the moved voter's port", SETTLE, || {
        rest.iter().find_map(|&id| {
            let (response, partition) = quorum_seen_by(&cluster, id)?;
            let node = response.nodes.iter().find(|n| n.node_id == other)?;
            (partition.leader_id == id && node.listeners.first()?.port == port).then_some(())
        })
    });
    let (_, seen) = wait_for("the restarted voter to follow", SETTLE, || {
        quorum_seen_by(&cluster, other)
            .filter(|(_, p)| p.error_code == NOT_LEADER_OR_FOLLOWER || p.leader_id == other)
    });
    assert!(
        seen.leader_id == new_leader || seen.leader_id == other,
        "{seen:?}"
    );
    // This broker reaches controllers only through its bootstrap list (unlike Kafka's,
    // which learns a moved leader's endpoint from the metadata log): restarted with the
    // list naming the new port, it creates topics again (killed: without a controller it
    // cannot finish a controlled shutdown).
    cluster.kill9(4);
    cluster.restart(4);
    cluster.wait_for_brokers();
    create_during_failover(&cluster, "last", 1);
}

#[test]
fn a_static_quorum_refuses_voter_changes_as_unsupported() {
    let mut cluster = Cluster::combined(1);
    cluster.start();
    let addr = cluster.node(1).controller_addr();
    let cluster_id = cluster.cluster_id.clone();
    let refused = call_add(
        addr,
        &add_voter(&cluster, 2, Uuid::from_u128(7), &cluster_id),
    );
    assert_eq!(refused.error_code, UNSUPPORTED_VERSION, "{refused:?}");
    let refused = call_remove(cluster.node(1).addr(), 1, Uuid::nil());
    assert_eq!(refused.error_code, UNSUPPORTED_VERSION, "{refused:?}");
}

#[test]
fn initial_controllers_form_a_quorum_of_three_that_keeps_its_voters_when_all_go_down() {
    let mut cluster = Cluster::combined(3);
    cluster.dynamic_quorum(&[1, 2, 3]);
    let dirs: Vec<Uuid> = (0..3).map(|_| support::datadir::random_uuid()).collect();
    let list = (1..=3)
        .map(|id: i32| {
            format!(
                "{id}@127.0.0.1:{}:{}",
                cluster.node(id).data.ports.controller,
                support::datadir::kafka_uuid_string(dirs[(id - 1) as usize])
            )
        })
        .collect::<Vec<_>>()
        .join(",");
    for id in 1..=3 {
        let out = cluster.format(id, &["--initial-controllers", &list]);
        assert!(out.status.success(), "format {id}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("dynamic metadata voter directory"),
            "{out:?}"
        );
        assert_eq!(directory_id(&cluster, id), dirs[(id - 1) as usize]);
    }
    // A list naming a node twice is refused before anything is written.
    let twice = format!(
        "{list},1@127.0.0.1:1:{}",
        support::datadir::kafka_uuid_string(dirs[0])
    );
    let refused = cluster.format(1, &["--initial-controllers", &twice]);
    assert!(!refused.status.success(), "{refused:?}");
    let out = cluster.format(1, &["--initial-controllers", &list]);
    assert!(out.status.success(), "{out:?}");

    cluster.start();
    let (leader, partition) = wait_for_voters(&cluster, &[1, 2, 3], &[1, 2, 3]);
    let listed: Vec<Uuid> = partition
        .current_voters
        .iter()
        .map(|v| v.replica_directory_id)
        .collect();
    assert_eq!(listed, dirs);
    let (response, _) = quorum_seen_by(&cluster, leader).expect("DescribeQuorum");
    for node in &response.nodes {
        let port = cluster.node(node.node_id).data.ports.controller;
        assert_eq!(node.listeners.len(), 1, "{response:?}");
        assert_eq!(node.listeners[0].port, port, "{response:?}");
    }
    // Just elected: a broker's first forward may land on a controller that is not active.
    create_during_failover(&cluster, "three", 3);

    // One clean stop, then the two others crash (a node whose quorum is gone cannot
    // finish a controlled shutdown).
    cluster.stop(1);
    cluster.kill9(2);
    cluster.kill9(3);
    cluster.start();
    wait_for_voters(&cluster, &[1, 2, 3], &[1, 2, 3]);
    wait_for_topic(&cluster, "three", 1, 3);
}
