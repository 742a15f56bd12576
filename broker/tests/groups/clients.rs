//! Real clients in consumer groups: kafka-python and confluent-kafka consume, commit and
//! resume; two members split the partitions; offsets survive a broker restart; `kcat -G`;
//! `gregorctl groups` and `consume --group`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use crate::support::{
    Broker, ClientOutput, ConsumedRecord, Json, JsonExt, assert_consumed_all, clients, kcat,
    parse_driver_records, parse_kcat_json_records, python_with_timeout,
};
use crate::wire::*;

/// Time limit of one driver run (the driver's own `--timeout` is shorter).
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// The two Python clients.
#[derive(Clone, Copy, Debug)]
enum Client {
    KafkaPython,
    Confluent,
}

impl Client {
    fn script(self) -> &'static str {
        match self {
            Client::KafkaPython => "group_consume_kafka_python.py",
            Client::Confluent => "group_consume_confluent.py",
        }
    }
}

/// What a group consumer driver did: its records and its summary line.
struct Run {
    output: ClientOutput,
    records: Vec<ConsumedRecord>,
    summary: Json,
}

impl Run {
    fn committed(&self) -> BTreeMap<i32, i64> {
        match self.summary.field("committed") {
            Json::Object(map) => map
                .iter()
                .map(|(p, o)| (p.parse().unwrap(), o.as_i64().unwrap()))
                .collect(),
            other => panic!("committed: {other}"),
        }
    }
}

/// Runs a group consumer driver; `None` when the clients are not installed.
fn consume(client: Client, broker: &Broker, group: &str, extra: &[&str]) -> Option<Run> {
    let bootstrap = broker.bootstrap();
    let mut args = vec![
        "--bootstrap",
        bootstrap.as_str(),
        "--topic",
        TOPIC,
        "--group",
        group,
        "--timeout",
        "90",
    ];
    args.extend_from_slice(extra);
    let output = python_with_timeout(client.script(), &args, RUN_LIMIT)?;
    output.assert_success();
    let records = parse_driver_records(&output);
    let summary = output
        .stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("SUMMARY "))
        .map(|l| Json::parse(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .unwrap_or_else(|| panic!("no summary line:\n{output}"));
    Some(Run {
        output,
        records,
        summary,
    })
}

/// The records of `first` then `second` per partition, as if read in one go.
fn concatenated(first: &[ConsumedRecord], second: &[ConsumedRecord]) -> Vec<ConsumedRecord> {
    let mut by_partition: BTreeMap<i32, Vec<ConsumedRecord>> = BTreeMap::new();
    for r in first.iter().chain(second) {
        by_partition.entry(r.partition).or_default().push(r.clone());
    }
    by_partition.into_values().flatten().collect()
}

/// A member consumes part of the topic and commits; the next member of the group
/// resumes from the committed offsets and reads exactly the rest.
fn consumes_commits_and_resumes(client: Client) {
    let data = fixture();
    let broker = start(&data, &[]);
    let group = format!("{client:?}-readers").to_lowercase();
    let Some(first) = consume(client, &broker, &group, &["--max-records", "25"]) else {
        return;
    };
    assert_eq!(first.records.len(), 25, "{}", first.output);
    let committed = first.committed();
    let mut wire_client = connect(&broker);
    let on_broker = committed_offsets(&mut wire_client, &group);
    for (partition, offset) in &committed {
        assert_eq!(
            on_broker[*partition as usize], *offset,
            "partition {partition}"
        );
    }
    assert_eq!(state(&mut wire_client, &group), "Empty");
    let described = describe(&mut wire_client, 5, &group);
    assert_eq!(&*described.protocol_type, "consumer");

    let second = consume(client, &broker, &group, &["--idle-ms", "2500"]).unwrap();
    assert_eq!(
        second.records.len(),
        PARTITIONS as usize * RECORDS - 25,
        "the second member did not resume where the first committed\n{}",
        second.output
    );
    let all = concatenated(&first.records, &second.records);
    assert_consumed_all(&format!("{client:?}"), data.topic(TOPIC), None, &all);
    assert_eq!(
        committed_offsets(&mut wire_client, &group),
        vec![RECORDS as i64; PARTITIONS as usize]
    );
    // A third run finds nothing left.
    let third = consume(client, &broker, &group, &["--idle-ms", "2000"]).unwrap();
    assert!(third.records.is_empty(), "{}", third.output);
}

fn committed_offsets(client: &mut crate::support::RawClient, group: &str) -> Vec<i64> {
    committed(client, group)
}

#[test]
fn kafka_python_consumer_group_commits_and_resumes() {
    consumes_commits_and_resumes(Client::KafkaPython);
}

#[test]
fn confluent_consumer_group_commits_and_resumes() {
    consumes_commits_and_resumes(Client::Confluent);
}

/// Two members of one group at once: each holds a share of the partitions (disjoint,
/// together all of them), and between them every record is read.
fn two_members_split_the_partitions(a: Client, b: Client) {
    two_members_split_the_partitions_with(a, b, &[]);
}

fn two_members_split_the_partitions_with(a: Client, b: Client, extra: &'static [&'static str]) {
    let data = if extra.is_empty() {
        fixture()
    } else {
        kip848_fixture()
    };
    let broker = start(&data, &[]);
    let reports = tempfile::tempdir().unwrap();
    let group = format!("{a:?}-{b:?}-pair").to_lowercase();
    let run = |client: Client, name: &'static str, delay: u64| {
        let bootstrap = broker.bootstrap();
        let group = group.clone();
        let dir = reports.path().to_string_lossy().into_owned();
        let partitions = PARTITIONS.to_string();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(delay));
            let args = [
                "--bootstrap",
                bootstrap.as_str(),
                "--topic",
                TOPIC,
                "--group",
                group.as_str(),
                "--timeout",
                "90",
                "--client-id",
                name,
                "--report-dir",
                dir.as_str(),
                "--members",
                "2",
                "--partitions-total",
                partitions.as_str(),
                "--no-commit",
            ];
            let mut args = args.to_vec();
            args.extend_from_slice(extra);
            python_with_timeout(client.script(), &args, RUN_LIMIT)
        })
    };
    let first = run(a, "member-a", 0);
    let second = run(b, "member-b", 1500);
    let (Some(first), Some(second)) = (first.join().unwrap(), second.join().unwrap()) else {
        return;
    };
    first.assert_success();
    second.assert_success();
    let mut shares = Vec::new();
    for name in ["member-a", "member-b"] {
        let text = std::fs::read_to_string(reports.path().join(format!("{name}.json"))).unwrap();
        let report = Json::parse(&text).unwrap();
        let share: BTreeSet<i64> = report
            .field("assignment")
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_i64().unwrap())
            .collect();
        shares.push(share);
    }
    assert!(
        shares[0].is_disjoint(&shares[1]),
        "overlapping assignments {shares:?}"
    );
    let union: BTreeSet<i64> = shares[0].union(&shares[1]).copied().collect();
    assert_eq!(
        union,
        (0..i64::from(PARTITIONS)).collect::<BTreeSet<_>>(),
        "{shares:?}"
    );
    // Every record was read by one of them (a rebalance may make both read some).
    let mut read: BTreeSet<(i32, i64)> = BTreeSet::new();
    for output in [&first, &second] {
        read.extend(
            parse_driver_records(output)
                .iter()
                .map(|r| (r.partition, r.offset)),
        );
    }
    assert_eq!(read.len(), PARTITIONS as usize * RECORDS);
}

#[test]
fn two_confluent_members_split_the_partitions() {
    two_members_split_the_partitions(Client::Confluent, Client::Confluent);
}

/// The topic of [`fixture`] in a cluster with `group.version` 1 finalized (KIP-848 on).
fn kip848_fixture() -> crate::support::DataDir {
    crate::support::DataDir::builder()
        .topic(crate::support::TopicSpec::new(TOPIC, PARTITIONS).records(RECORDS))
        .feature("group.version", 1)
        .build()
}

/// KIP-848: two confluent-kafka members with `group.protocol=consumer`; the broker assigns.
#[test]
fn two_consumer_protocol_members_split_the_partitions() {
    two_members_split_the_partitions_with(
        Client::Confluent,
        Client::Confluent,
        &["--protocol", "consumer"],
    );
}

/// KIP-848: a consumer-protocol member consumes and commits (OffsetCommit with its member
/// epoch), and the next member resumes from the committed offsets.
#[test]
fn consumer_protocol_member_commits_and_resumes() {
    let data = kip848_fixture();
    let broker = start(&data, &[]);
    let Some(run) = consume(
        Client::Confluent,
        &broker,
        "kip848-resume",
        &["--protocol", "consumer", "--max-records", "10"],
    ) else {
        return;
    };
    let committed = run.committed();
    assert!(!committed.is_empty(), "{}", run.output);
    let Some(second) = consume(
        Client::Confluent,
        &broker,
        "kip848-resume",
        &["--protocol", "consumer"],
    ) else {
        return;
    };
    let mut read: BTreeSet<(i32, i64)> = run
        .records
        .iter()
        .map(|r| (r.partition, r.offset))
        .collect();
    for r in &second.records {
        assert!(
            committed.get(&r.partition).is_none_or(|c| r.offset >= *c),
            "record {}:{} below the committed offset",
            r.partition,
            r.offset
        );
        read.insert((r.partition, r.offset));
    }
    assert_eq!(read.len(), PARTITIONS as usize * RECORDS);
}

/// KIP-848 static membership: a consumer with `group.instance.id` closes (a leave with
/// epoch -2, its partitions kept), a new process with the same instance id takes its place
/// without a rebalance and resumes from the committed offsets.
#[test]
fn consumer_protocol_static_member_comes_back() {
    let data = kip848_fixture();
    let broker = start(&data, &[]);
    let args = [
        "--protocol",
        "consumer",
        "--group-instance-id",
        "static-1",
        "--max-records",
        "10",
    ];
    let Some(first) = consume(Client::Confluent, &broker, "kip848-static", &args) else {
        return;
    };
    let committed = first.committed();
    assert!(!committed.is_empty(), "{}", first.output);
    assert!(
        broker
            .wait_for_log("static member left for now", Duration::from_secs(30))
            .is_some(),
        "no temporary leave"
    );
    let Some(second) = consume(
        Client::Confluent,
        &broker,
        "kip848-static",
        &["--protocol", "consumer", "--group-instance-id", "static-1"],
    ) else {
        return;
    };
    assert!(
        broker
            .log_text()
            .contains("static member static-1 rejoins as"),
        "the second process did not replace the first"
    );
    let mut read: BTreeSet<(i32, i64)> = first
        .records
        .iter()
        .map(|r| (r.partition, r.offset))
        .collect();
    for r in &second.records {
        assert!(
            committed.get(&r.partition).is_none_or(|c| r.offset >= *c),
            "record {}:{} below the committed offset",
            r.partition,
            r.offset
        );
        read.insert((r.partition, r.offset));
    }
    assert_eq!(read.len(), PARTITIONS as usize * RECORDS);
}

#[test]
fn two_kafka_python_members_split_the_partitions() {
    two_members_split_the_partitions(Client::KafkaPython, Client::KafkaPython);
}

#[test]
fn a_kafka_python_and_a_confluent_member_share_a_group() {
    two_members_split_the_partitions(Client::KafkaPython, Client::Confluent);
}

/// kafka-python commits, the broker restarts, confluent-kafka resumes in the same group.
#[test]
fn committed_offsets_survive_a_restart_across_clients() {
    let data = fixture();
    let mut broker = start(&data, &[]);
    let group = "restarting";
    let Some(first) = consume(
        Client::KafkaPython,
        &broker,
        group,
        &["--max-records", "31"],
    ) else {
        return;
    };
    assert_eq!(first.records.len(), 31);
    assert!(broker.stop().success());
    let broker = start(&data, &[]);
    let Some(second) = consume(Client::Confluent, &broker, group, &["--idle-ms", "2500"]) else {
        return;
    };
    let all = concatenated(&first.records, &second.records);
    assert_consumed_all(
        "kafka-python then confluent-kafka",
        data.topic(TOPIC),
        None,
        &all,
    );
}

/// `kcat -G`: librdkafka's balanced consumer reads every partition, commits, and a second
/// run of the group reads nothing.
#[test]
fn kcat_balanced_consumer_reads_everything_and_commits() {
    let data = fixture();
    let broker = start(&data, &[]);
    let bootstrap = broker.bootstrap();
    let args = [
        "-b",
        bootstrap.as_str(),
        "-G",
        "kcat-group",
        TOPIC,
        "-e",
        "-J",
        // `-o beginning` would override the committed offsets: reset to the earliest only
        // when the group has none.
        "-X",
        "auto.offset.reset=earliest",
        "-X",
        "enable.auto.commit=true",
        "-X",
        "auto.commit.interval.ms=100",
    ];
    let Some(first) = kcat(&args) else {
        return;
    };
    assert!(first.success(), "{first}");
    let records = parse_kcat_json_records(&first);
    let written = data.topic(TOPIC);
    let mut by_partition: BTreeMap<i32, Vec<ConsumedRecord>> = BTreeMap::new();
    for r in records {
        by_partition.entry(r.partition).or_default().push(r);
    }
    for partition in &written.partitions {
        let got = by_partition.remove(&partition.index).unwrap_or_default();
        let offsets: Vec<i64> = got.iter().map(|r| r.offset).collect();
        let expected: Vec<i64> = partition.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, expected, "partition {}", partition.index);
        for (read, written) in got.iter().zip(&partition.records) {
            assert_eq!(read.key.as_deref(), written.key.as_deref());
        }
    }
    let mut client = connect(&broker);
    assert_eq!(
        committed(&mut client, "kcat-group"),
        vec![RECORDS as i64; PARTITIONS as usize]
    );
    let second = kcat(&args).unwrap();
    assert!(second.success(), "{second}");
    assert!(parse_kcat_json_records(&second).is_empty(), "{second}");
}

/// The `gregorctl` binary of the workspace, built once (a test cannot name another
/// package's binary; see cli/tests/support).
fn gregorctl() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(path) = std::env::var_os("GREGORCTL_BIN") {
            return PathBuf::from(path);
        }
        let mut command = Command::new(env!("CARGO"));
        command
            .args([
                "build",
                "-p",
                "gregor-cli",
                "--bin",
                "gregorctl",
                "--message-format=json-render-diagnostics",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(Stdio::inherit());
        if !cfg!(debug_assertions) {
            command.arg("--release");
        }
        let output = command.output().expect("run cargo build for gregorctl");
        assert!(output.status.success(), "cargo build -p gregor-cli failed");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| Json::parse(line).ok())
            .filter(|m| {
                m.get("reason").and_then(Json::as_str) == Some("compiler-artifact")
                    && m.field("target").get("name").and_then(Json::as_str) == Some("gregorctl")
            })
            .find_map(|m| {
                m.get("executable")
                    .and_then(Json::as_str)
                    .map(PathBuf::from)
            })
            .expect("cargo reported no gregorctl executable")
    })
}

fn ctl(broker: &Broker, args: &[&str]) -> String {
    let mut command = Command::new(gregorctl());
    command
        .arg("--bootstrap-server")
        .arg(broker.bootstrap())
        .args(args);
    let output = clients::run(&mut command, Duration::from_secs(60));
    output.assert_success();
    output.stdout
}

#[test]
fn gregorctl_groups_and_consume_with_a_group() {
    let data = fixture();
    let broker = start(&data, &[]);
    let first = ctl(
        &broker,
        &[
            "consume",
            TOPIC,
            "--group",
            "ctl",
            "--from-beginning",
            "--max-messages",
            "10",
        ],
    );
    assert_eq!(first.lines().count(), 10);
    let listed = ctl(&broker, &["groups", "list"]);
    assert!(
        listed
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["ctl", "consumer", "Empty", "classic"]),
        "{listed}"
    );
    let described = Json::parse(&ctl(
        &broker,
        &["groups", "describe", "--group", "ctl", "--json"],
    ))
    .unwrap();
    assert_eq!(
        described.field("group").field("group_state").as_str(),
        Some("Empty"),
        "{described}"
    );
    let lag: i64 = described
        .field("offsets")
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.field("lag").as_i64().unwrap())
        .sum();
    assert_eq!(lag, PARTITIONS as i64 * RECORDS as i64 - 10, "{described}");
    // The next member resumes: the rest of the topic.
    let rest = ctl(
        &broker,
        &["consume", TOPIC, "--group", "ctl", "--timeout-ms", "2000"],
    );
    assert_eq!(
        rest.lines().count() + 10,
        PARTITIONS as usize * RECORDS,
        "{rest}"
    );
    let mut client = connect(&broker);
    assert_eq!(
        committed(&mut client, "ctl"),
        vec![RECORDS as i64; PARTITIONS as usize]
    );
}
