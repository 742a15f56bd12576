//! Metadata snapshots with the real binary: tiny snapshot thresholds, topics created with
//! kafka-python's admin client, a restart from the snapshot.

use std::path::Path;

use super::*;
use support::json::JsonExt;

const PARTITION_DIR: &str = "__cluster_metadata-0";

/// (`.checkpoint` names, `.log` base offsets) of the metadata partition.
fn metadata_files(data: &Path) -> (Vec<String>, Vec<u64>) {
    let mut snapshots = Vec::new();
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(data.join(PARTITION_DIR)).expect("the metadata partition") {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".checkpoint") {
            snapshots.push(name);
        } else if let Some(base) = name.strip_suffix(".log") {
            segments.push(base.parse().unwrap());
        }
    }
    snapshots.sort();
    segments.sort();
    (snapshots, segments)
}

#[test]
fn topics_and_configs_survive_a_restart_from_a_snapshot_and_old_segments_go() {
    if support::clients::python_path().is_none() {
        let _ = python("admin_kafka_python.py", &[]);
        return;
    }
    // A snapshot after every batch, tiny segments, and no room for more than the newest
    // snapshot: every older snapshot and segment below it goes.
    let props: &[(&str, &str)] = &[
        ("metadata.log.segment.min.bytes", "12"),
        ("metadata.log.segment.bytes", "1024"),
        ("metadata.log.max.record.bytes.between.snapshots", "1"),
        ("metadata.max.retention.bytes", "0"),
    ];
    let data = DataDir::builder().build();
    let mut broker = Broker::start_with(&data, props);
    for i in 0..8 {
        let topic = format!("snap-{i}");
        let retention = format!("retention.ms={}", 1000 + i);
        let bootstrap = broker.bootstrap();
        let out = python(
            "admin_kafka_python.py",
            &[
                "--bootstrap",
                &bootstrap,
                "--timeout",
                "60",
                "--op",
                "create",
                "--topic",
                &topic,
                "--partitions",
                "2",
                "--config",
                &retention,
            ],
        )
        .expect("the virtualenv");
        out.assert_success();
        let doc = out.json();
        assert_eq!(
            doc.field("topics")
                .field(&topic)
                .field("error_code")
                .as_i64(),
            Some(0),
            "{doc}"
        );
    }
    assert!(
        broker
            .wait_for_log(
                "Successfully wrote the metadata snapshot",
                Duration::from_secs(30)
            )
            .is_some(),
        "no snapshot written:\n{}",
        broker.log_text()
    );
    broker.stop();

    let (snapshots, segments) = metadata_files(data.path());
    assert!(!snapshots.is_empty(), "no .checkpoint");
    assert!(segments[0] > 0, "segment 0 is still there: {segments:?}");
    let newest_end: u64 = snapshots.last().unwrap()[..20].parse().unwrap();
    assert!(segments[0] <= newest_end, "{segments:?} {snapshots:?}");
    let leftovers: Vec<_> = std::fs::read_dir(data.path().join(PARTITION_DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".part") || n.ends_with(".deleted"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The restart loads the snapshot (and says so), and the topics and configs are there.
    let broker = Broker::start_with(&data, props);
    let log = broker.log_text();
    assert!(
        log.contains("from_snapshot=0") && log.contains("replay_ms="),
        "the start-up did not load a snapshot:\n{log}"
    );
    let mut client = connect(&broker);
    for i in 0..8 {
        let topic = format!("snap-{i}");
        let configs = topic_configs(&mut client, &topic);
        assert_eq!(
            configs["retention.ms"].value.as_deref(),
            Some(format!("{}", 1000 + i).as_str()),
            "{topic}"
        );
    }
    let bootstrap = broker.bootstrap();
    let out = python(
        "list_topics_kafka_python.py",
        &["--bootstrap", &bootstrap, "--timeout", "60"],
    )
    .expect("the virtualenv");
    out.assert_success();
    let doc = out.json();
    let listed = doc.to_string();
    for i in 0..8 {
        assert!(listed.contains(&format!("\"snap-{i}\"")), "{listed}");
    }
}
