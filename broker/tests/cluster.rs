//! Several `gregor` processes as one cluster (issue 15), driven by confluent-kafka:
//!
//! * three combined nodes, a topic with RF 3 and `min.insync.replicas=2`: an idempotent
//!   acks=all producer and a consumer group run while the leader of a partition is killed
//!   with SIGKILL and restarted, again and again; at the end every acknowledged record is
//!   in the log exactly once and in order, and the group never read below an offset it had
//!   committed. `GREGOR_CLUSTER_KILLS` sets the number of kills (default 3 in CI's short
//!   form; the long form is 20: `GREGOR_CLUSTER_KILLS=20`);
//! * a paused node (SIGSTOP) leaves the ISR after `replica.lag.time.max.ms`, acks=all goes
//!   on with 2 of 3 and fails with NOT_ENOUGH_REPLICAS with 1, and the node catches up after
//!   SIGCONT (two controller-only voters keep the quorum's majority while two of the
//!   three brokers are paused);
//! * a quorum of three goes on with one controller down; without a majority, metadata
//!   changes stop but a partition's leader keeps serving produce and fetch;
//! * three controllers and three brokers as separate processes restarted one by one
//!   (SIGTERM: the brokers' controlled shutdown) under the same load, with the same checks.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::cluster::{Cluster, Role, wait_for};
use support::json::JsonExt;
use support::load::{SETTLE, create_topic, metadata, parse_acked, under_load, wait_for_topic};
use support::{RawClient, python_with_timeout};

/// The error code of one raw Produce of a one-record batch to `topic`-0 with `acks`.
fn raw_produce_error(addr: SocketAddr, topic: &str, acks: i16) -> i16 {
    use gregor_protocol::messages::produce_request::{
        PartitionProduceData, ProduceRequest, TopicProduceData,
    };
    use gregor_protocol::records::{NewRecord, RecordBatchBuilder};
    let record = NewRecord {
        timestamp: 0,
        key: None,
        value: Some(bytes::Bytes::from_static(b"raw:0")),
        headers: Vec::new(),
    };
    let batch = RecordBatchBuilder::new()
        .build(&[record])
        .expect("encode a record batch");
    let request = ProduceRequest {
        acks,
        timeout_ms: 10_000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(batch),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut client = RawClient::connect(addr).expect("the leader's listener");
    let response = client.call(&request, 9).expect("Produce");
    response.responses[0].partition_responses[0].error_code
}

/// The number of leader kills of [`leaders_killed_in_a_loop_lose_no_acknowledged_record`].
fn kills() -> usize {
    std::env::var("GREGOR_CLUSTER_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

#[test]
fn leaders_killed_in_a_loop_lose_no_acknowledged_record() {
    if support::clients::python_path().is_none() && !support::clients_required() {
        return;
    }
    let mut cluster = Cluster::combined(3);
    cluster.start();
    let topic = "kill-loop";
    create_topic(&cluster, topic, 3, 3, &["min.insync.replicas=2"]);
    wait_for_topic(&cluster, topic, 3, 3);
    let kills = kills();
    under_load(&mut cluster, topic, 3, kills * 12, |cluster| {
        for round in 0..kills {
            std::thread::sleep(Duration::from_secs(4));
            let partition = (round % 3) as i32;
            let view = wait_for_topic(cluster, topic, 3, 3);
            let leader = view[&partition].leader;
            cluster.kill9(leader);
            // A new leader from the ISR, announced by the others.
            wait_for("a new leader", SETTLE, || {
                let alive = cluster.nodes.iter().find(|n| n.is_serving())?;
                let (_, view) = metadata(alive.addr(), topic)?;
                let p = &view[&partition];
                (p.leader >= 0 && p.leader != leader).then_some(())
            });
            std::thread::sleep(Duration::from_secs(2));
            cluster.restart(leader);
        }
    });
}

#[test]
fn a_rolling_restart_of_three_controllers_and_three_brokers_loses_nothing() {
    if support::clients::python_path().is_none() && !support::clients_required() {
        return;
    }
    // Controllers 1-3, brokers 4-6, each a process of its own.
    let mut cluster = Cluster::split(3, 3);
    cluster.start();
    let topic = "rolling";
    create_topic(&cluster, topic, 3, 3, &["min.insync.replicas=2"]);
    wait_for_topic(&cluster, topic, 3, 3);
    under_load(&mut cluster, topic, 3, 6 * 8, |cluster| {
        for id in 1..=6 {
            std::thread::sleep(Duration::from_secs(3));
            // SIGTERM: a broker first moves its leaderships away (controlled shutdown).
            cluster.stop(id);
            cluster.restart(id);
            if id <= 3 {
                cluster.wait_for_active_controller();
            } else {
                cluster.wait_for_brokers();
                wait_for_topic(cluster, topic, 3, 3);
            }
        }
    });
}

#[test]
fn a_paused_broker_leaves_the_isr_and_catches_up() {
    if support::clients::python_path().is_none() && !support::clients_required() {
        return;
    }
    // Five voters: two controller-only nodes keep the majority while two brokers pause.
    let mut cluster = Cluster::new(&[
        Role::Controller,
        Role::Controller,
        Role::Combined,
        Role::Combined,
        Role::Combined,
    ]);
    cluster.set("replica.lag.time.max.ms", "4000");
    cluster.start();
    let topic = "paused";
    create_topic(&cluster, topic, 1, 3, &["min.insync.replicas=2"]);
    let view = wait_for_topic(&cluster, topic, 1, 3);
    let leader = view[&0].leader;
    let followers: Vec<i32> = view[&0]
        .replicas
        .iter()
        .copied()
        .filter(|&r| r != leader)
        .collect();
    let leader_addr = cluster.node(leader).addr().to_string();
    let produce = |tag: &str, count: &str, timeout: &str| {
        python_with_timeout(
            "cluster_confluent.py",
            &[
                "--bootstrap",
                &leader_addr,
                "--op",
                "produce",
                "--topic",
                topic,
                "--count",
                count,
                "--rate",
                "1000",
                "--tag",
                tag,
                "--timeout",
                timeout,
            ],
            Duration::from_secs(120),
        )
        .expect("clients installed")
    };

    cluster.pause(followers[0]);
    wait_for_topic(&cluster, topic, 1, 2);
    let two = produce("two", "200", "30");
    assert_eq!(parse_acked(&two.stdout).len(), 200, "{}", two.stderr);

    cluster.pause(followers[1]);
    // The ISR shrinks to the leader alone: below min.insync.replicas.
    wait_for("an ISR of the leader alone", SETTLE, || {
        let (_, view) = metadata(cluster.node(leader).addr(), topic)?;
        (view[&0].isr == [leader]).then_some(())
    });
    // Kafka answers acks=all below min.insync.replicas with NOT_ENOUGH_REPLICAS (clients
    // retry it until their delivery timeout, so it is read from a raw Produce here).
    let code = raw_produce_error(cluster.node(leader).addr(), topic, -1);
    assert_eq!(code, gregor_protocol::error_code::NOT_ENOUGH_REPLICAS);
    // acks=1 still goes through.
    assert_eq!(raw_produce_error(cluster.node(leader).addr(), topic, 1), 0);

    cluster.resume(followers[0]);
    cluster.resume(followers[1]);
    wait_for_topic(&cluster, topic, 1, 3);
    let again = produce("again", "200", "60");
    assert_eq!(parse_acked(&again.stdout).len(), 200, "{}", again.stderr);
}

#[test]
fn the_quorum_serves_with_one_controller_down_and_only_stops_changes_without_a_majority() {
    if support::clients::python_path().is_none() && !support::clients_required() {
        return;
    }
    let mut cluster = Cluster::combined(3);
    cluster.start();
    // One partition on each node.
    create_topic(&cluster, "solo", 3, 1, &[]);
    let solo = wait_for_topic(&cluster, "solo", 3, 1);

    // One node down: metadata changes go on.
    cluster.kill9(3);
    create_topic(&cluster, "with-two", 1, 2, &[]);
    wait_for_topic(&cluster, "with-two", 1, 2);

    // Two down: no change commits...
    let survivor = 1;
    cluster.kill9(2);
    let bootstrap = cluster.node(survivor).addr().to_string();
    let out = python_with_timeout(
        "cluster_confluent.py",
        &[
            "--bootstrap",
            &bootstrap,
            "--op",
            "create",
            "--topic",
            "without-majority",
            "--partitions",
            "1",
            "--replication-factor",
            "1",
            "--timeout",
            "15",
        ],
        Duration::from_secs(60),
    )
    .expect("clients installed");
    assert!(
        !out.json().field("error").is_null(),
        "a topic was created without a majority: {out}"
    );
    assert!(metadata(cluster.node(survivor).addr(), "without-majority").is_none());

    // ... but the survivor's own partition takes acks=all writes and serves them (from a
    // plain producer: an idempotent one needs a producer id block from the controller,
    // which Kafka's brokers cannot get without a quorum either).
    let (&partition, _) = solo
        .iter()
        .find(|(_, p)| p.leader == survivor)
        .expect("a partition led by the survivor");
    let partition_arg = partition.to_string();
    let produced = python_with_timeout(
        "cluster_confluent.py",
        &[
            "--bootstrap",
            &bootstrap,
            "--op",
            "produce",
            "--topic",
            "solo",
            "--partition",
            &partition_arg,
            "--count",
            "100",
            "--rate",
            "1000",
            "--tag",
            "solo",
            "--timeout",
            "30",
            "--no-idempotence",
        ],
        Duration::from_secs(60),
    )
    .expect("clients installed");
    let acked = parse_acked(&produced.stdout);
    assert_eq!(acked.len(), 100, "{}", produced.stderr);
    let read = python_with_timeout(
        "consume_confluent.py",
        &[
            "--bootstrap",
            &bootstrap,
            "--topic",
            "solo",
            "--partitions",
            &partition_arg,
            "--until",
            "end-offsets",
            "--timeout",
            "30",
        ],
        Duration::from_secs(60),
    )
    .expect("clients installed");
    read.assert_success();
    assert_eq!(support::parse_driver_records(&read).len(), 100);
}
