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

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use support::cluster::{Cluster, Role, wait_for};
use support::json::JsonExt;
use support::{RawClient, python_with_timeout};

/// How long the cluster may take to settle (elections, registrations, ISR changes).
const SETTLE: Duration = Duration::from_secs(60);

/// One partition as a broker's Metadata shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct PartitionView {
    leader: i32,
    leader_epoch: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
}

/// The partitions of `topic` in node `addr`'s Metadata, with the brokers it lists; `None`
/// when it cannot be asked or does not know the topic.
fn metadata(
    addr: SocketAddr,
    topic: &str,
) -> Option<(BTreeSet<i32>, BTreeMap<i32, PartitionView>)> {
    let response = support::cluster::topic_metadata(addr, topic)?;
    let brokers = response.brokers.iter().map(|b| b.node_id).collect();
    let found = response.topics.first()?;
    if found.error_code != 0 {
        return None;
    }
    let partitions = found
        .partitions
        .iter()
        .map(|p| {
            (
                p.partition_index,
                PartitionView {
                    leader: p.leader_id,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.clone(),
                    isr: p.isr_nodes.clone(),
                },
            )
        })
        .collect();
    Some((brokers, partitions))
}

/// Waits until every running broker of `cluster` lists `topic` with a leader for each of
/// its `partitions` and an ISR of `isr_size`; returns the first running broker's view.
fn wait_for_topic(
    cluster: &Cluster,
    topic: &str,
    partitions: i32,
    isr_size: usize,
) -> BTreeMap<i32, PartitionView> {
    wait_for(
        &format!("{topic} with {isr_size} in every ISR"),
        SETTLE,
        || {
            let mut first = None;
            for node in cluster
                .nodes
                .iter()
                .filter(|n| n.role.is_broker() && n.is_serving())
            {
                let (_, view) = metadata(node.addr(), topic)?;
                let complete = view.len() == partitions as usize
                    && view
                        .values()
                        .all(|p| p.leader >= 0 && p.isr.len() == isr_size);
                if !complete {
                    return None;
                }
                first.get_or_insert(view);
            }
            first
        },
    )
}

/// Creates `topic` through confluent-kafka's AdminClient.
fn create_topic(cluster: &Cluster, topic: &str, partitions: i32, rf: i32, configs: &[&str]) {
    let partitions = partitions.to_string();
    let rf = rf.to_string();
    let bootstrap = cluster.bootstrap();
    let mut args = vec![
        "--bootstrap",
        &bootstrap,
        "--op",
        "create",
        "--topic",
        topic,
        "--partitions",
        &partitions,
        "--replication-factor",
        &rf,
    ];
    for config in configs {
        args.extend(["--config", config]);
    }
    let Some(out) = python_with_timeout("cluster_confluent.py", &args, SETTLE) else {
        return;
    };
    out.assert_success();
    assert!(
        out.json().field("error").is_null(),
        "CreateTopics {topic}: {out}"
    );
}

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

/// Acknowledged records of a producer run: index -> (partition, offset).
fn parse_acked(stdout: &str) -> BTreeMap<i64, (i32, i64)> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace().map(|f| f.parse::<i64>().ok());
            let (i, p, o) = (fields.next()??, fields.next()??, fields.next()??);
            Some((i, (p as i32, o)))
        })
        .collect()
}

/// Writes the expected indexes for the group member (atomically: it polls for the file).
fn write_expected(path: &Path, acked: &BTreeMap<i64, (i32, i64)>) {
    let text: String = acked.keys().map(|i| format!("{i}\n")).collect();
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text).expect("write the expected indexes");
    std::fs::rename(&partial, path).expect("publish the expected indexes");
}

/// Checks a group member's output: no record read below an offset the group had already
/// committed for its partition (commits seen so far in the output, by any member).
fn assert_never_behind_commits(output: &str) {
    let mut committed: BTreeMap<i32, i64> = BTreeMap::new();
    for line in output.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["C", p, o] => {
                let (p, o): (i32, i64) = (p.parse().unwrap(), o.parse().unwrap());
                let entry = committed.entry(p).or_insert(o);
                *entry = (*entry).max(o);
            }
            ["R", p, o, _] => {
                let (p, o): (i32, i64) = (p.parse().unwrap(), o.parse().unwrap());
                if let Some(&c) = committed.get(&p) {
                    assert!(
                        o >= c,
                        "partition {p}: read offset {o} after committing {c}"
                    );
                }
            }
            _ => {}
        }
    }
}

/// Reads every partition of `topic` from the start (a fresh consumer, nothing committed)
/// and returns, per partition, the (offset, producer index) of each record in log order.
fn read_all(cluster: &Cluster, topic: &str, partitions: i32) -> BTreeMap<i32, Vec<(i64, i64)>> {
    let bootstrap = cluster.bootstrap();
    let list: Vec<String> = (0..partitions).map(|p| p.to_string()).collect();
    let list = list.join(",");
    let out = python_with_timeout(
        "consume_confluent.py",
        &[
            "--bootstrap",
            &bootstrap,
            "--topic",
            topic,
            "--partitions",
            &list,
            "--until",
            "end-offsets",
            "--timeout",
            "120",
        ],
        Duration::from_secs(150),
    )
    .expect("the clients are installed");
    out.assert_success();
    let mut read: BTreeMap<i32, Vec<(i64, i64)>> = BTreeMap::new();
    for record in support::parse_driver_records(&out) {
        let value = String::from_utf8(record.value.unwrap_or_default()).expect("utf-8 value");
        let (_, index) = value.split_once(':').expect("<tag>:<i>");
        read.entry(record.partition)
            .or_default()
            .push((record.offset, index.parse().expect("an index")));
    }
    read
}

/// Every acknowledged index once, at the partition and offset it was acknowledged with,
/// and each partition's indexes in increasing order (one idempotent producer).
fn assert_exactly_once_in_order(
    acked: &BTreeMap<i64, (i32, i64)>,
    read: &BTreeMap<i32, Vec<(i64, i64)>>,
) {
    let mut found: BTreeMap<i64, Vec<(i32, i64)>> = BTreeMap::new();
    for (&partition, records) in read {
        for pair in records.windows(2) {
            assert!(
                pair[0].1 < pair[1].1,
                "partition {partition}: record {} (offset {}) before {} (offset {})",
                pair[0].1,
                pair[0].0,
                pair[1].1,
                pair[1].0
            );
        }
        for &(offset, i) in records {
            found.entry(i).or_default().push((partition, offset));
        }
    }
    let doubled: Vec<(&i64, &Vec<(i32, i64)>)> =
        found.iter().filter(|(_, at)| at.len() > 1).collect();
    assert!(doubled.is_empty(), "records written twice: {doubled:?}");
    let lost: Vec<i64> = acked
        .keys()
        .filter(|i| !found.contains_key(i))
        .copied()
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged records lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(20)]
    );
    for (i, at) in acked {
        assert_eq!(found[i], [*at], "record {i}: where it was acknowledged");
    }
}

/// The number of leader kills of [`leaders_killed_in_a_loop_lose_no_acknowledged_record`].
fn kills() -> usize {
    std::env::var("GREGOR_CLUSTER_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

/// Runs an idempotent acks=all producer (about `seconds` of records at 100 a second) and a
/// consumer group member on `topic` while `disturb` acts on the cluster, then checks what
/// the issue asks: every acknowledged record in the log exactly once, in order and at the
/// offset it was acknowledged with, and the group never read below an offset it had
/// committed.
fn under_load(
    cluster: &mut Cluster,
    topic: &str,
    partitions: i32,
    seconds: usize,
    disturb: impl FnOnce(&mut Cluster),
) {
    let count = (seconds * 100 + 500).to_string();
    let work = tempfile::tempdir().expect("a work directory");
    let expect_file = work.path().join("expected");
    let timeout = seconds as u64 + 240;
    let run = |args: Vec<String>, timeout: u64| {
        std::thread::spawn(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            python_with_timeout(
                "cluster_confluent.py",
                &args,
                Duration::from_secs(timeout + 30),
            )
            .expect("clients installed")
        })
    };
    let common = |op: &str, timeout: u64| -> Vec<String> {
        [
            "--bootstrap",
            &cluster.bootstrap(),
            "--op",
            op,
            "--topic",
            topic,
            "--tag",
            "load",
            "--timeout",
            &timeout.to_string(),
        ]
        .iter()
        .map(|a| a.to_string())
        .collect()
    };
    let mut produce = common("produce", timeout);
    produce.extend(["--count", &count, "--rate", "100"].map(String::from));
    let producer = run(produce, timeout);
    let mut group = common("group", timeout + 120);
    group.extend(
        ["--group", "load-group", "--expect-file"]
            .map(String::from)
            .into_iter()
            .chain([expect_file.display().to_string()]),
    );
    let member = run(group, timeout + 120);

    disturb(cluster);

    let produced = producer.join().expect("producer thread");
    let acked = parse_acked(&produced.stdout);
    let wanted: usize = count.parse().expect("a count");
    assert!(
        acked.len() * 2 >= wanted,
        "only {} of {wanted} acknowledged\n{}",
        acked.len(),
        produced.stderr
    );
    write_expected(&expect_file, &acked);
    let consumed = member.join().expect("member thread");
    consumed.assert_success();
    assert_never_behind_commits(&consumed.stdout);

    wait_for_topic(cluster, topic, partitions, 3);
    let read = read_all(cluster, topic, partitions);
    assert_exactly_once_in_order(&acked, &read);
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
