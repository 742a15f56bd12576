//! Transactions across the brokers of a cluster (issue 15): three combined nodes, RF 3,
//! topics whose partition leaders are on all three brokers, so that the transaction
//! coordinator writes most markers through WriteTxnMarkers to other brokers and the
//! partition leaders verify transactional produces with a coordinator elsewhere
//! (KIP-890's AddPartitionsToTxn v4+). Driven by confluent-kafka
//! (`clients/transactions_eos_confluent.py`):
//!
//! * commits and aborts: a read_committed consumer sees exactly the committed records, and
//!   every partition's last stable offset reaches its high watermark;
//! * consume-transform-produce with `send_offsets_to_transaction`, the group coordinator on
//!   another broker than the transaction coordinator: the output holds every input record
//!   once and the group's offsets are committed with the transactions;
//! * raw requests, one step at a time: a transactional Produce to a leader that is not the
//!   coordinator and a TxnOffsetCommit to a group coordinator that is not either are
//!   refused until the partitions are added (verified over the network), then accepted,
//!   and the commit's markers reach both (the offsets become stable);
//! * the transaction coordinator's node killed with SIGKILL while a transaction is open:
//!   the new coordinator aborts it after its timeout, every partition's last stable offset
//!   reaches its high watermark (read_committed consumers are not stuck), and only the
//!   committed records are read;
//! * the same kill while a producer commits one transaction after another: it goes on
//!   with the new coordinator, and exactly the transactions it committed are read.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use gregor_protocol::error_code::{INVALID_TXN_STATE, NONE, TRANSACTION_ABORTABLE};
use gregor_protocol::messages::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use gregor_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic,
};
use gregor_protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
use gregor_protocol::messages::end_txn_request::EndTxnRequest;
use gregor_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use gregor_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use gregor_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use gregor_protocol::messages::offset_fetch_request::OffsetFetchRequest;
use gregor_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequest, TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use support::cluster::{Cluster, wait_for};
use support::json::JsonExt;
use support::{RawClient, produce_transactional};

/// How long the cluster may take to settle (elections, registrations, ISR changes).
const SETTLE: Duration = Duration::from_secs(60);

/// Partitions of the test topics: two led by each broker.
const PARTITIONS: i32 = 6;

/// A started cluster of three combined nodes with small internal topics and a quick
/// check for timed-out transactions.
fn cluster() -> Cluster {
    let mut cluster = Cluster::combined(3);
    cluster
        .set("transaction.state.log.num.partitions", "3")
        .set("offsets.topic.num.partitions", "3")
        .set("group.initial.rebalance.delay.ms", "0")
        .set(
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            "1000",
        )
        .start();
    cluster.wait_for_brokers();
    cluster
}

/// Each partition's leader in node `addr`'s Metadata of `topic` (`None` when it cannot be
/// asked, does not know the topic, or a partition has no leader).
fn leaders(addr: SocketAddr, topic: &str) -> Option<BTreeMap<i32, i32>> {
    let response = support::cluster::topic_metadata(addr, topic)?;
    let found = response.topics.first()?;
    if found.error_code != 0 || found.partitions.is_empty() {
        return None;
    }
    let mut out = BTreeMap::new();
    for p in &found.partitions {
        if p.leader_id < 0 || p.isr_nodes.len() < 2 {
            return None;
        }
        out.insert(p.partition_index, p.leader_id);
    }
    Some(out)
}

/// Creates `topic` (RF 3, `min.insync.replicas=2`) and waits until every running node
/// knows a leader for each partition; returns the leaders.
fn create_topic(cluster: &Cluster, topic: &str) -> BTreeMap<i32, i32> {
    let out = support::load::run_create_topic(
        &cluster.bootstrap(),
        topic,
        PARTITIONS,
        3,
        &["min.insync.replicas=2"],
    )
    .expect("the clients are installed");
    out.assert_success();
    assert!(
        out.json().field("error").is_null(),
        "CreateTopics {topic}: {out}"
    );
    let view = wait_for(&format!("leaders of {topic}"), SETTLE, || {
        let mut first = None;
        for node in cluster.nodes.iter().filter(|n| n.is_serving()) {
            let view = leaders(node.addr(), topic)?;
            if view.len() != PARTITIONS as usize {
                return None;
            }
            first.get_or_insert(view);
        }
        first
    });
    let distinct: BTreeSet<i32> = view.values().copied().collect();
    assert_eq!(
        distinct.len(),
        3,
        "{topic}: the leaders should be spread over the three brokers: {view:?}"
    );
    view
}

/// The coordinator of `key` (`key_type` 0: group, 1: transactional id) as node `addr`
/// answers FindCoordinator.
fn find_coordinator(addr: SocketAddr, key: &str, key_type: i8) -> Option<i32> {
    let mut client = RawClient::connect(addr).ok()?;
    let response = client
        .call(
            &FindCoordinatorRequest {
                key: key.into(),
                key_type,
                ..Default::default()
            },
            3,
        )
        .ok()?;
    (response.error_code == 0 && response.node_id >= 0).then_some(response.node_id)
}

/// The coordinator of `key` as a running node answers it.
fn wait_for_coordinator(cluster: &Cluster, key: &str, key_type: i8) -> i32 {
    wait_for(&format!("the coordinator of {key}"), SETTLE, || {
        let node = cluster.nodes.iter().find(|n| n.is_serving())?;
        find_coordinator(node.addr(), key, key_type)
    })
}

/// The offset ListOffsets `latest` answers for `topic`-`partition` on its leader `addr`
/// at `isolation` (0: the high watermark, 1: the last stable offset).
fn latest(addr: SocketAddr, topic: &str, partition: i32, isolation: i8) -> Option<i64> {
    let mut client = RawClient::connect(addr).ok()?;
    let response = client
        .call(
            &ListOffsetsRequest {
                replica_id: -1,
                isolation_level: isolation,
                topics: vec![ListOffsetsTopic {
                    name: topic.into(),
                    partitions: vec![ListOffsetsPartition {
                        partition_index: partition,
                        current_leader_epoch: -1,
                        timestamp: -1,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            },
            7,
        )
        .ok()?;
    let p = response.topics.first()?.partitions.first()?;
    (p.error_code == 0).then_some(p.offset)
}

/// Waits until every partition of `topic` has its last stable offset at its high
/// watermark on its current leader (no transaction left open) and returns the high
/// watermarks.
fn wait_for_stable(cluster: &Cluster, topic: &str) -> BTreeMap<i32, i64> {
    wait_for(
        &format!("{topic}: every last stable offset at the high watermark"),
        SETTLE,
        || {
            let node = cluster.nodes.iter().find(|n| n.is_serving())?;
            let view = leaders(node.addr(), topic)?;
            let mut ends = BTreeMap::new();
            for (partition, leader) in view {
                let leader = cluster.nodes.iter().find(|n| n.id == leader)?;
                if !leader.is_serving() {
                    return None;
                }
                let hw = latest(leader.addr(), topic, partition, 0)?;
                let lso = latest(leader.addr(), topic, partition, 1)?;
                if lso != hw {
                    return None;
                }
                ends.insert(partition, hw);
            }
            Some(ends)
        },
    )
}

/// The state of `id`'s transaction as node `addr` describes it (`None` when it cannot be
/// asked or answers an error), with the number of its partitions.
fn describe(addr: SocketAddr, id: &str) -> Option<(String, usize)> {
    let mut client = RawClient::connect(addr).ok()?;
    let response = client
        .call(
            &DescribeTransactionsRequest {
                transactional_ids: vec![id.into()],
                ..Default::default()
            },
            0,
        )
        .ok()?;
    let state = response.transaction_states.first()?;
    let partitions = state.topics.iter().map(|t| t.partitions.len()).sum();
    (state.error_code == 0).then(|| (state.transaction_state.to_string(), partitions))
}

/// Runs the transactions driver in `mode` with `args`.
fn eos_driver(cluster: &Cluster, mode: &str, args: &[&str]) -> support::ClientOutput {
    let bootstrap = cluster.bootstrap();
    let mut all = vec![mode, "--bootstrap", &bootstrap];
    all.extend_from_slice(args);
    support::python_with_timeout(
        "transactions_eos_confluent.py",
        &all,
        Duration::from_secs(120),
    )
    .expect("the clients are installed")
}

/// The records of `topic` read at `isolation`: (partition, offset, key, value) in read
/// order.
fn read(cluster: &Cluster, topic: &str, isolation: &str) -> Vec<(i32, i64, String, String)> {
    let out = eos_driver(
        cluster,
        "consume",
        &[
            "--topic",
            topic,
            "--isolation",
            isolation,
            "--timeout",
            "40",
        ],
    );
    out.assert_success();
    let text =
        |bytes: Option<Vec<u8>>| String::from_utf8(bytes.unwrap_or_default()).expect("utf-8");
    support::parse_driver_records(&out)
        .into_iter()
        .map(|r| (r.partition, r.offset, text(r.key), text(r.value)))
        .collect()
}

/// The keys the driver's `produce` mode writes for transactions `txns` of `per_txn`
/// records each.
fn keys_of(txns: impl IntoIterator<Item = usize>, per_txn: usize) -> BTreeSet<String> {
    txns.into_iter()
        .flat_map(|i| (0..per_txn).map(move |j| format!("t{i}-{j}")))
        .collect()
}

/// The sorted keys of `records`, each once (a key read twice fails).
fn unique_keys(records: &[(i32, i64, String, String)]) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for (p, o, key, _) in records {
        assert!(keys.insert(key.clone()), "{key} read twice (at {p}/{o})");
    }
    keys
}

#[test]
fn commits_and_aborts_with_partitions_on_every_broker() {
    let cluster = cluster();
    let leaders = create_topic(&cluster, "spread");
    // "cacca": transactions 0, 2 and 3 committed, 1 and 4 aborted.
    let out = eos_driver(
        &cluster,
        "produce",
        &[
            "--topic",
            "spread",
            "--pattern",
            "cacca",
            "--per-txn",
            "24",
            "--transactional-id",
            "spread-txn",
        ],
    );
    out.assert_success();
    let txn_coordinator = wait_for_coordinator(&cluster, "spread-txn", 1);
    let ends = wait_for_stable(&cluster, "spread");
    let committed = read(&cluster, "spread", "read_committed");
    assert_eq!(
        unique_keys(&committed),
        keys_of([0, 2, 3], 24),
        "read_committed: exactly the committed transactions"
    );
    let everything = read(&cluster, "spread", "read_uncommitted");
    assert_eq!(unique_keys(&everything), keys_of(0..5, 24));
    // Every broker led partitions of the transactions, the coordinator's and the others.
    let written: BTreeSet<i32> = everything.iter().map(|r| leaders[&r.0]).collect();
    assert_eq!(
        written,
        BTreeSet::from([1, 2, 3]),
        "records on the partitions of every leader (coordinator {txn_coordinator})"
    );
    // Each partition holds one marker per transaction it took part in: its end is past
    // its last record.
    for (partition, end) in &ends {
        if let Some(last) = everything
            .iter()
            .filter(|r| r.0 == *partition)
            .map(|r| r.1)
            .max()
        {
            assert!(
                *end > last + 1,
                "partition {partition}: the last marker after offset {last} (end {end})"
            );
        }
    }
}

#[test]
fn consume_transform_produce_with_the_group_on_another_broker() {
    let cluster = cluster();
    create_topic(&cluster, "eos-in");
    create_topic(&cluster, "eos-out");
    let out = eos_driver(
        &cluster,
        "produce",
        &[
            "--topic",
            "eos-in",
            "--pattern",
            "cc",
            "--per-txn",
            "20",
            "--transactional-id",
            "eos-source",
        ],
    );
    out.assert_success();
    // A transactional id and a group whose coordinators are different brokers.
    let txn_id = "eos-worker";
    let txn_coordinator = wait_for_coordinator(&cluster, txn_id, 1);
    let group = (0..64)
        .map(|i| format!("eos-group-{i}"))
        .find(|g| wait_for_coordinator(&cluster, g, 0) != txn_coordinator)
        .expect("a group coordinated elsewhere");
    let group_coordinator = wait_for_coordinator(&cluster, &group, 0);
    // Transactions of up to 10 records, the second aborted (its records processed again
    // by a later one), until the 40 input records are committed.
    let out = eos_driver(
        &cluster,
        "eos",
        &[
            "--input",
            "eos-in",
            "--output",
            "eos-out",
            "--group",
            &group,
            "--pattern",
            "cacccccccccccccccccc",
            "--per-txn",
            "10",
            "--stop-after",
            "40",
            "--transactional-id",
            txn_id,
            "--timeout",
            "40",
        ],
    );
    let done = out.assert_success().json().field("done").as_i64();
    assert_eq!(done, Some(40), "every input record processed once: {out}");
    wait_for_stable(&cluster, "eos-out");
    let output = read(&cluster, "eos-out", "read_committed");
    let input = read(&cluster, "eos-in", "read_committed");
    assert_eq!(unique_keys(&output), unique_keys(&input));
    for (_, _, key, value) in &output {
        assert_eq!(value, &format!("V:{}", key.to_uppercase()), "{key}");
    }
    // The group's offsets were committed by the transactions: past each partition's last
    // input record.
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    for (p, o, _, _) in &input {
        let entry = last.entry(*p).or_insert(*o);
        *entry = (*entry).max(*o);
    }
    let addr = cluster.node(group_coordinator).addr();
    let mut client = RawClient::connect(addr).expect("the group coordinator");
    let response = client
        .call(
            &OffsetFetchRequest {
                group_id: group.as_str().into(),
                topics: None,
                require_stable: true,
                ..Default::default()
            },
            7,
        )
        .expect("OffsetFetch");
    assert_eq!(response.error_code, 0, "OffsetFetch of {group}");
    let committed: BTreeMap<i32, i64> = response
        .topics
        .iter()
        .filter(|t| &*t.name == "eos-in")
        .flat_map(|t| t.partitions.iter())
        .map(|p| (p.partition_index, p.committed_offset))
        .collect();
    // (the consumer's position may be past the markers that follow a partition's last
    // record, up to its end).
    let ends = wait_for_stable(&cluster, "eos-in");
    for (p, o) in &last {
        let at = committed.get(p).copied();
        assert!(
            at.is_some_and(|at| at > *o && at <= ends[p]),
            "{group} on eos-in-{p}: {at:?} after the last record {o}, end {} (group \
             coordinator {group_coordinator}, transaction coordinator {txn_coordinator})",
            ends[p]
        );
    }
}

#[test]
fn a_killed_coordinator_leaves_no_transaction_open() {
    let mut cluster = cluster();
    create_topic(&cluster, "orphan");
    let txn_id = "orphan-txn";
    // Two committed transactions, then one left open: the driver writes and flushes it,
    // then sleeps (in the background) while its coordinator is killed.
    let out = eos_driver(
        &cluster,
        "produce",
        &[
            "--topic",
            "orphan",
            "--pattern",
            "cc",
            "--per-txn",
            "24",
            "--transactional-id",
            txn_id,
        ],
    );
    out.assert_success();
    let bootstrap = cluster.bootstrap();
    let hanging = std::thread::spawn(move || {
        support::python_with_timeout(
            "transactions_eos_confluent.py",
            &[
                "produce",
                "--bootstrap",
                &bootstrap,
                "--topic",
                "orphan",
                "--pattern",
                "cch",
                "--per-txn",
                "24",
                "--tag",
                "w",
                "--transactional-id",
                txn_id,
                "--transaction-timeout-ms",
                "15000",
                "--timeout",
                "25",
            ],
            Duration::from_secs(90),
        )
    });
    let coordinator = wait_for_coordinator(&cluster, txn_id, 1);
    let addr = cluster.node(coordinator).addr();
    // The third transaction of the second run is open with partitions on every leader.
    wait_for("the open transaction", SETTLE, || {
        let (state, partitions) = describe(addr, txn_id)?;
        (state == "Ongoing" && partitions >= PARTITIONS as usize - 1).then_some(())
    });
    // Let the producer's batches reach the logs.
    std::thread::sleep(Duration::from_secs(2));
    cluster.kill9(coordinator);
    let new_coordinator = wait_for("a new transaction coordinator", SETTLE, || {
        let node = cluster.nodes.iter().find(|n| n.is_serving())?;
        find_coordinator(node.addr(), txn_id, 1).filter(|&id| id != coordinator)
    });
    // The new coordinator aborts the transaction after its timeout: no partition keeps
    // an open transaction, so read_committed readers reach the end.
    wait_for_stable(&cluster, "orphan");
    let (state, _) = describe(cluster.node(new_coordinator).addr(), txn_id)
        .expect("the new coordinator describes the transaction");
    assert_eq!(state, "CompleteAbort", "aborted by the new coordinator");
    let committed = read(&cluster, "orphan", "read_committed");
    let mut pairs = BTreeSet::new();
    for (p, o, key, value) in &committed {
        assert!(
            pairs.insert((value.clone(), key.clone())),
            "{value} read twice (at {p}/{o})"
        );
    }
    let expected: BTreeSet<(String, String)> = ["v", "w"]
        .iter()
        .flat_map(|tag| {
            keys_of(0..2, 24)
                .into_iter()
                .map(move |k| (format!("{tag}:{k}"), k))
        })
        .collect();
    assert_eq!(
        pairs, expected,
        "both runs' committed transactions, not the open one (coordinator {coordinator}, \
         then {new_coordinator})"
    );
    // It only slept in its open transaction; whatever it printed, that was not committed.
    let _ = hanging.join().expect("the hanging producer");
}

/// A TxnOffsetCommit at `version` of offset 1 of `topic`-0 for `group` on its coordinator
/// `addr`; the partition's error code.
fn txn_offset_commit(
    addr: SocketAddr,
    id: &str,
    producer: (i64, i16),
    group: &str,
    topic: &str,
    version: i16,
) -> i16 {
    let mut client = RawClient::connect(addr).expect("the group coordinator");
    let response = client
        .call(
            &TxnOffsetCommitRequest {
                transactional_id: id.into(),
                group_id: group.into(),
                producer_id: producer.0,
                producer_epoch: producer.1,
                generation_id: -1,
                topics: vec![TxnOffsetCommitRequestTopic {
                    name: topic.into(),
                    partitions: vec![TxnOffsetCommitRequestPartition {
                        partition_index: 0,
                        committed_offset: 1,
                        committed_leader_epoch: -1,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            },
            version,
        )
        .expect("TxnOffsetCommit");
    response.topics[0].partitions[0].error_code
}

#[test]
fn partition_leaders_verify_with_a_coordinator_on_another_broker() {
    let cluster = cluster();
    let leaders = create_topic(&cluster, "verified");
    let id = "raw-txn";
    let coordinator = wait_for_coordinator(&cluster, id, 1);
    let coordinator_addr = cluster.node(coordinator).addr();
    let mut client = RawClient::connect(coordinator_addr).expect("the coordinator");
    let init = client
        .call(
            &InitProducerIdRequest {
                transactional_id: Some(id.into()),
                transaction_timeout_ms: 60_000,
                producer_id: -1,
                producer_epoch: -1,
                ..Default::default()
            },
            4,
        )
        .expect("InitProducerId");
    assert_eq!(init.error_code, NONE);
    let producer = (init.producer_id, init.producer_epoch);
    // A partition led by another broker than the coordinator.
    let (&partition, &leader) = leaders
        .iter()
        .find(|(_, l)| **l != coordinator)
        .expect("a partition led elsewhere");
    let leader_addr = cluster.node(leader).addr();
    // Not in the transaction: the leader asks the coordinator (AddPartitionsToTxn v4+
    // verify_only) and refuses (TRANSACTION_ABORTABLE as Produce v9 knows it).
    assert_eq!(
        produce_transactional(leader_addr, id, producer, "verified", partition, 0),
        INVALID_TXN_STATE,
        "a transactional produce to a partition not in the transaction"
    );
    let added = client
        .call(
            &AddPartitionsToTxnRequest {
                v3_and_below_transactional_id: id.into(),
                v3_and_below_producer_id: producer.0,
                v3_and_below_producer_epoch: producer.1,
                v3_and_below_topics: vec![AddPartitionsToTxnTopic {
                    name: "verified".into(),
                    partitions: vec![partition],
                    ..Default::default()
                }],
                ..Default::default()
            },
            3,
        )
        .expect("AddPartitionsToTxn");
    assert_eq!(
        added.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        NONE
    );
    assert_eq!(
        produce_transactional(leader_addr, id, producer, "verified", partition, 0),
        NONE,
        "verified by the coordinator on broker {coordinator}"
    );
    // A group coordinated by another broker than the transaction coordinator.
    let group = (0..64)
        .map(|i| format!("raw-group-{i}"))
        .find(|g| wait_for_coordinator(&cluster, g, 0) != coordinator)
        .expect("a group coordinated elsewhere");
    let group_addr = cluster
        .node(wait_for_coordinator(&cluster, &group, 0))
        .addr();
    assert_eq!(
        txn_offset_commit(group_addr, id, producer, &group, "verified", 3),
        INVALID_TXN_STATE,
        "offsets of a group not added with AddOffsetsToTxn"
    );
    // From v4 the client is told the transaction is abortable.
    assert_eq!(
        txn_offset_commit(group_addr, id, producer, &group, "verified", 4),
        TRANSACTION_ABORTABLE
    );
    let response = client
        .call(
            &AddOffsetsToTxnRequest {
                transactional_id: id.into(),
                producer_id: producer.0,
                producer_epoch: producer.1,
                group_id: group.as_str().into(),
                ..Default::default()
            },
            3,
        )
        .expect("AddOffsetsToTxn");
    assert_eq!(response.error_code, NONE);
    assert_eq!(
        txn_offset_commit(group_addr, id, producer, &group, "verified", 3),
        NONE
    );
    let ended = client
        .call(
            &EndTxnRequest {
                transactional_id: id.into(),
                producer_id: producer.0,
                producer_epoch: producer.1,
                committed: true,
                ..Default::default()
            },
            3,
        )
        .expect("EndTxn");
    assert_eq!(ended.error_code, NONE);
    // The markers reach the other leaders: the record's partition is stable, and the
    // group's offset is committed (its __consumer_offsets partition got the marker).
    wait_for_stable(&cluster, "verified");
    let committed = wait_for("the transactional offset committed", SETTLE, || {
        let mut c = RawClient::connect(group_addr).ok()?;
        let response = c
            .call(
                &OffsetFetchRequest {
                    group_id: group.as_str().into(),
                    topics: None,
                    require_stable: true,
                    ..Default::default()
                },
                7,
            )
            .ok()?;
        let p = response.topics.first()?.partitions.first()?;
        (p.error_code == NONE && p.committed_offset >= 0).then_some(p.committed_offset)
    });
    assert_eq!(committed, 1);
}

#[test]
fn a_producer_goes_on_when_its_coordinator_is_killed() {
    let mut cluster = cluster();
    create_topic(&cluster, "through");
    let id = "through-txn";
    let bootstrap = cluster.bootstrap();
    // Warm up: the coordinator is known and the producer id allocated.
    eos_driver(
        &cluster,
        "produce",
        &[
            "--topic",
            "through",
            "--pattern",
            "c",
            "--per-txn",
            "6",
            "--transactional-id",
            id,
            "--tag",
            "warm",
        ],
    )
    .assert_success();
    let coordinator = wait_for_coordinator(&cluster, id, 1);
    let pattern = "c".repeat(120);
    let running = std::thread::spawn(move || {
        support::python_with_timeout(
            "transactions_eos_confluent.py",
            &[
                "produce",
                "--bootstrap",
                &bootstrap,
                "--topic",
                "through",
                "--pattern",
                &pattern,
                "--per-txn",
                "6",
                "--transactional-id",
                id,
                "--timeout",
                "50",
            ],
            Duration::from_secs(90),
        )
        .expect("the clients are installed")
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !running.is_finished(),
        "the producer still running at the kill"
    );
    let killed = std::time::Instant::now();
    cluster.kill9(coordinator);
    let out = running.join().expect("the producer");
    eprintln!("the producer ran {:?} after the kill", killed.elapsed());
    let committed: BTreeSet<usize> = out
        .json_lines()
        .iter()
        .filter(|line| line["outcome"] == "commit")
        .map(|line| line["txn"].as_u64().expect("a transaction index") as usize)
        .collect();
    out.assert_success();
    assert_eq!(committed.len(), 120, "every transaction committed: {out}");
    wait_for_stable(&cluster, "through");
    let read = read(&cluster, "through", "read_committed");
    let keys: BTreeSet<String> = read
        .iter()
        .filter(|r| r.3.starts_with("v:"))
        .map(|r| r.2.clone())
        .collect();
    assert_eq!(keys, keys_of(committed, 6));
    assert_eq!(
        read.iter().filter(|r| r.3.starts_with("v:")).count(),
        120 * 6,
        "no record twice"
    );
}
