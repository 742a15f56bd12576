//! KIP-848 consumer groups with a real client: confluent-kafka 2.16 (librdkafka 2.16) with
//! `group.protocol=consumer`. The broker computes the assignment; members join and leave
//! while records arrive, partitions move one at a time (the others stay where they are),
//! every record is consumed exactly once (each committed as soon as it is read), and a
//! broker restart in the middle leaves the group and its offsets in place; a
//! regular-expression subscription picks up a topic created later.

use std::collections::{BTreeMap, BTreeSet};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{DataDir, Json, JsonExt, TopicSpec, python_with_timeout};
use crate::wire::*;

/// The topic of the group fixture in a cluster with `group.version` 1 (KIP-848 on).
fn fixture() -> DataDir {
    DataDir::builder()
        .topic(TopicSpec::new(TOPIC, PARTITIONS).records(RECORDS))
        .feature("group.version", 1)
        .build()
}

fn partitions_of(phase: &Json, member: &str) -> BTreeSet<i64> {
    match phase.get(member) {
        Some(Json::Array(list)) => list.iter().map(|p| p.as_i64().unwrap()).collect(),
        _ => BTreeSet::new(),
    }
}

#[test]
fn members_join_leave_and_survive_a_restart_reading_each_record_once() {
    let data = fixture();
    let mut broker = start(&data, &[]);
    let control = tempfile::tempdir().unwrap();
    let bootstrap = broker.bootstrap();
    let dir = control.path().to_string_lossy().into_owned();
    let partitions = PARTITIONS.to_string();
    let driver = thread::spawn(move || {
        let args = [
            "--bootstrap",
            bootstrap.as_str(),
            "--topic",
            TOPIC,
            "--group",
            "kip848-scenario",
            "--partitions",
            partitions.as_str(),
            "--control-dir",
            dir.as_str(),
            "--timeout",
            "240",
        ];
        python_with_timeout(
            "consumer_protocol_scenario_confluent.py",
            &args,
            Duration::from_secs(300),
        )
    });
    // The driver asks for the restart once three phases have settled.
    let deadline = Instant::now() + Duration::from_secs(280);
    let request = control.path().join("restart-request");
    let mut restarted = false;
    while Instant::now() < deadline && !driver.is_finished() {
        if request.exists() {
            assert!(broker.stop().success());
            broker = start(&data, &[]);
            std::fs::write(control.path().join("restarted"), b"").unwrap();
            restarted = true;
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    let Some(output) = driver.join().unwrap() else {
        return;
    };
    output.assert_success();
    assert!(
        restarted,
        "the driver never asked for the restart:\n{output}"
    );
    let report = output.json();

    // Exactly once: every offset below the final high watermarks, by one member.
    let watermarks: Vec<i64> = report
        .field("watermarks")
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_i64().unwrap())
        .collect();
    let mut seen: BTreeMap<(i64, i64), String> = BTreeMap::new();
    for entry in report.field("consumed").as_array().unwrap() {
        let member = entry[0].as_str().unwrap().to_string();
        let key = (entry[1].as_i64().unwrap(), entry[2].as_i64().unwrap());
        if let Some(first) = seen.insert(key, member.clone()) {
            panic!("{key:?} consumed by {first} and again by {member}\n{output}");
        }
    }
    let expected: BTreeSet<(i64, i64)> = watermarks
        .iter()
        .enumerate()
        .flat_map(|(p, hw)| (0..*hw).map(move |o| (p as i64, o)))
        .collect();
    assert_eq!(seen.keys().copied().collect::<BTreeSet<_>>(), expected);
    assert_eq!(
        watermarks,
        vec![RECORDS as i64 + 30; PARTITIONS as usize],
        "3 x 30 more records, spread over the partitions"
    );

    // Incremental moves: when c joins, a and b keep what they still hold; when b leaves,
    // a and c keep theirs; the restart moves nothing.
    let phases = report.field("phases").as_array().unwrap().clone();
    assert_eq!(phases.len(), 4, "{phases:?}");
    for member in ["a", "b"] {
        let before = partitions_of(&phases[0], member);
        let after = partitions_of(&phases[1], member);
        assert!(
            after.is_subset(&before),
            "{member}: {before:?} -> {after:?}"
        );
        assert!(
            !after.is_empty(),
            "{member} lost everything to c: {phases:?}"
        );
    }
    assert!(!partitions_of(&phases[1], "c").is_empty(), "{phases:?}");
    for member in ["a", "c"] {
        let before = partitions_of(&phases[1], member);
        let after = partitions_of(&phases[2], member);
        assert!(
            before.is_subset(&after),
            "{member}: {before:?} -> {after:?}"
        );
    }
    assert_eq!(phases[2], phases[3], "the restart moved partitions");

    // The restarted broker replayed the group from __consumer_offsets.
    let log = broker.log_text();
    assert!(log.contains("loaded 1 groups"), "{log}");
}

/// A regular-expression subscription (librdkafka sends `SubscribedTopicRegex`): the
/// broker resolves it, and a topic created later that matches is assigned too.
#[test]
fn a_regex_subscription_picks_up_a_topic_created_later() {
    let data = fixture();
    let broker = start(&data, &[]);
    let bootstrap = broker.bootstrap();
    let args = [
        "--bootstrap",
        bootstrap.as_str(),
        "--prefix",
        "kip848-rx-",
        "--group",
        "kip848-regex",
        "--timeout",
        "90",
    ];
    let Some(output) = python_with_timeout(
        "regex_subscription_confluent.py",
        &args,
        Duration::from_secs(120),
    ) else {
        return;
    };
    output.assert_success();
    let report = output.json();
    let mut read: BTreeMap<String, BTreeSet<(i64, i64)>> = BTreeMap::new();
    for r in report.field("records").as_array().unwrap() {
        let topic = r[0].as_str().unwrap().to_string();
        read.entry(topic)
            .or_default()
            .insert((r[1].as_i64().unwrap(), r[2].as_i64().unwrap()));
    }
    assert_eq!(read.len(), 2, "{read:?}");
    assert_eq!(read["kip848-rx-a"].len(), 4);
    assert_eq!(read["kip848-rx-b"].len(), 3);
    // The fixture's topic does not match and was never assigned.
    let assigned = report.field("assignments").to_string();
    assert!(!assigned.contains(TOPIC), "{assigned}");
    let log = broker.log_text();
    assert!(log.contains("bumped the group epoch to 2"), "{log}");
}

/// The online migration (KIP-848): a classic consumer alone, then a consumer-protocol
/// member joins and the group becomes a consumer group shared by both, then it leaves and
/// the group is classic again; every record read once, with commits.
#[test]
fn a_classic_group_is_upgraded_online_and_downgraded_back() {
    let data = fixture();
    let broker = start(&data, &[]);
    let bootstrap = broker.bootstrap();
    let partitions = PARTITIONS.to_string();
    let args = [
        "--bootstrap",
        bootstrap.as_str(),
        "--topic",
        TOPIC,
        "--group",
        "kip848-migration",
        "--partitions",
        partitions.as_str(),
        "--timeout",
        "150",
    ];
    let Some(output) = python_with_timeout(
        "migration_scenario_confluent.py",
        &args,
        Duration::from_secs(200),
    ) else {
        return;
    };
    output.assert_success();
    let report = output.json();
    let watermarks: Vec<i64> = report
        .field("watermarks")
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_i64().unwrap())
        .collect();
    assert_eq!(watermarks, vec![RECORDS as i64 + 20; PARTITIONS as usize]);
    let mut seen: BTreeMap<(i64, i64), String> = BTreeMap::new();
    for entry in report.field("consumed").as_array().unwrap() {
        let member = entry[0].as_str().unwrap().to_string();
        let key = (entry[1].as_i64().unwrap(), entry[2].as_i64().unwrap());
        if let Some(first) = seen.insert(key, member.clone()) {
            panic!("{key:?} consumed by {first} and again by {member}\n{output}");
        }
    }
    let expected: BTreeSet<(i64, i64)> = watermarks
        .iter()
        .enumerate()
        .flat_map(|(p, hw)| (0..*hw).map(move |o| (p as i64, o)))
        .collect();
    assert_eq!(seen.keys().copied().collect::<BTreeSet<_>>(), expected);

    let phases = report.field("phases").as_array().unwrap().clone();
    assert_eq!(phases.len(), 3, "{phases:?}");
    let types: Vec<&str> = phases
        .iter()
        .map(|p| p.field("type").as_str().unwrap())
        .collect();
    assert_eq!(types, vec!["classic", "consumer", "classic"]);
    let all: BTreeSet<i64> = (0..i64::from(PARTITIONS)).collect();
    assert_eq!(partitions_of(phases[0].field("assignment"), "a"), all);
    // Both members hold partitions in the consumer group.
    let a = partitions_of(phases[1].field("assignment"), "a");
    let b = partitions_of(phases[1].field("assignment"), "b");
    assert!(!a.is_empty() && !b.is_empty(), "{phases:?}");
    assert_eq!(a.union(&b).copied().collect::<BTreeSet<_>>(), all);
    // DescribeConsumerGroups sees the consumer group with both members.
    let described = phases[1].field("described");
    assert_eq!(
        described.field("type").as_str(),
        Some("consumer"),
        "{described:?}"
    );
    assert_eq!(
        described.field("members").to_string(),
        r#"["a","b"]"#,
        "{described:?}"
    );
    assert_eq!(partitions_of(phases[2].field("assignment"), "a"), all);
    let log = broker.log_text();
    assert!(
        log.contains("upgrading the classic group to a consumer group"),
        "{log}"
    );
    assert!(
        log.contains("downgraded the consumer group to a classic group"),
        "{log}"
    );
}
