//! Helpers of the cluster tests (`tests/cluster.rs`, `tests/cluster_failover.rs`): a
//! broker's view of a topic's partitions, topic creation through confluent-kafka, and
//! [`under_load`]: an idempotent acks=all producer and a consumer group member running while
//! a test disturbs the cluster, with the checks of issue 15 afterwards (every acknowledged
//! record exactly once, in order, at its acknowledged offset; no group read below a commit).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::cluster::{Cluster, wait_for};
use super::json::JsonExt;
use super::python_with_timeout;

/// How long the cluster may take to settle (elections, registrations, ISR changes).
pub const SETTLE: Duration = Duration::from_secs(60);

/// One partition as a broker's Metadata shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionView {
    /// The leader (-1: none).
    pub leader: i32,
    /// The leader epoch.
    pub leader_epoch: i32,
    /// The replicas.
    pub replicas: Vec<i32>,
    /// The in-sync replicas.
    pub isr: Vec<i32>,
}

/// The partitions of `topic` in node `addr`'s Metadata, with the brokers it lists; `None`
/// when it cannot be asked or does not know the topic.
pub fn metadata(
    addr: SocketAddr,
    topic: &str,
) -> Option<(BTreeSet<i32>, BTreeMap<i32, PartitionView>)> {
    let response = super::cluster::topic_metadata(addr, topic)?;
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
pub fn wait_for_topic(
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

/// Runs confluent-kafka's AdminClient creating `topic` through `bootstrap`; its output, or
/// `None` when the clients are not installed (and not required).
pub fn run_create_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    rf: i32,
    configs: &[&str],
) -> Option<super::ClientOutput> {
    let partitions = partitions.to_string();
    let rf = rf.to_string();
    let mut args = vec![
        "--bootstrap",
        bootstrap,
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
    python_with_timeout("cluster_confluent.py", &args, SETTLE)
}

/// Creates `topic` through confluent-kafka's AdminClient.
pub fn create_topic(cluster: &Cluster, topic: &str, partitions: i32, rf: i32, configs: &[&str]) {
    let Some(out) = run_create_topic(&cluster.bootstrap(), topic, partitions, rf, configs) else {
        return;
    };
    out.assert_success();
    assert!(
        out.json().field("error").is_null(),
        "CreateTopics {topic}: {out}"
    );
}

/// Acknowledged records of a producer run: index -> (partition, offset).
pub fn parse_acked(stdout: &str) -> BTreeMap<i64, (i32, i64)> {
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
pub fn write_expected(path: &Path, acked: &BTreeMap<i64, (i32, i64)>) {
    let text: String = acked.keys().map(|i| format!("{i}\n")).collect();
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text).expect("write the expected indexes");
    std::fs::rename(&partial, path).expect("publish the expected indexes");
}

/// Checks a group member's output: no record read below an offset the group had already
/// committed for its partition (commits seen so far in the output, by any member).
pub fn assert_never_behind_commits(output: &str) {
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
pub fn read_all(cluster: &Cluster, topic: &str, partitions: i32) -> BTreeMap<i32, Vec<(i64, i64)>> {
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
    for record in super::parse_driver_records(&out) {
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
pub fn assert_exactly_once_in_order(
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

/// Runs an idempotent acks=all producer (about `seconds` of records at 100 a second) and a
/// consumer group member on `topic` while `disturb` acts on the cluster, then checks what
/// the issue asks: every acknowledged record in the log exactly once, in order and at the
/// offset it was acknowledged with, and the group never read below an offset it had
/// committed.
pub fn under_load(
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
