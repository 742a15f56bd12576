//! DescribeLogDirs, AlterReplicaLogDirs, DescribeProducers and ListConfigResources on a
//! broker with three log directories.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gregor_protocol::error_code as error;
use gregor_protocol::messages::alter_replica_log_dirs_request::{
    AlterReplicaLogDir, AlterReplicaLogDirTopic, AlterReplicaLogDirsRequest,
};
use gregor_protocol::messages::describe_log_dirs_request::DescribeLogDirsRequest;
use gregor_protocol::messages::describe_log_dirs_response::DescribeLogDirsResponse;
use gregor_protocol::messages::describe_producers_request::{
    DescribeProducersRequest, TopicRequest,
};
use gregor_protocol::messages::list_config_resources_request::ListConfigResourcesRequest;
use gregor_protocol::records::{NewRecord, RecordBatchBuilder};

use super::support::{Broker, DataDir, RawClient};
use super::{connect, create_topic, fetch, fetched_offsets, produce, wait_until};

/// A broker whose `log.dirs` are the data directory and two more.
fn start_three_dirs() -> (DataDir, tempfile::TempDir, Vec<PathBuf>, Broker) {
    let data = DataDir::builder().build();
    let others = tempfile::tempdir().expect("temp dir");
    let dirs = vec![
        data.path().to_path_buf(),
        others.path().join("b"),
        others.path().join("c"),
    ];
    let broker = start_on(&data, &dirs);
    (data, others, dirs, broker)
}

fn start_on(data: &DataDir, dirs: &[PathBuf]) -> Broker {
    let list = dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(",");
    Broker::start_with(data, &[("log.dirs", &list)])
}

fn describe(client: &mut RawClient, version: i16) -> DescribeLogDirsResponse {
    client
        .call(
            &DescribeLogDirsRequest {
                topics: None,
                ..Default::default()
            },
            version,
        )
        .expect("DescribeLogDirs")
}

/// The log dir holding the current replica of `topic`/`partition`, and its size.
fn current_dir(
    response: &DescribeLogDirsResponse,
    topic: &str,
    partition: i32,
) -> Option<(String, i64)> {
    response.results.iter().find_map(|dir| {
        dir.topics
            .iter()
            .filter(|t| *t.name == *topic)
            .flat_map(|t| &t.partitions)
            .find(|p| p.partition_index == partition && !p.is_future_key)
            .map(|p| (dir.log_dir.to_string(), p.partition_size))
    })
}

fn log_files_size(dir: &Path) -> i64 {
    std::fs::read_dir(dir)
        .expect("partition dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().expect("metadata").len() as i64)
        .sum()
}

fn alter(client: &mut RawClient, path: &str, topic: &str, partition: i32, version: i16) -> i16 {
    let request = AlterReplicaLogDirsRequest {
        dirs: vec![AlterReplicaLogDir {
            path: path.into(),
            topics: vec![AlterReplicaLogDirTopic {
                name: topic.into(),
                partitions: vec![partition],
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = client.call(&request, version).expect("AlterReplicaLogDirs");
    response.results[0].partitions[0].error_code
}

#[test]
fn three_log_dirs_spread_partitions_and_describe_them_with_sizes_matching_the_disk() {
    let (_data, _others, dirs, broker) = start_three_dirs();
    let mut client = connect(&broker);
    create_topic(&mut client, "spread", 3, &[]);
    for p in 0..3 {
        let r = produce(&mut client, "spread", p, super::batch(5 + p as usize, 20));
        assert_eq!(r.error_code, error::NONE);
    }
    // meta.properties in every directory, each with its own directory id.
    let mut ids = Vec::new();
    for dir in &dirs {
        let text = std::fs::read_to_string(dir.join("meta.properties")).expect("meta.properties");
        let id = text
            .lines()
            .find_map(|l| l.strip_prefix("directory.id="))
            .expect("directory.id");
        ids.push(id.to_owned());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "distinct directory ids");
    for version in [1, 4, 5] {
        let response = describe(&mut client, version);
        assert_eq!(response.results.len(), 3);
        let mut holders = Vec::new();
        for p in 0..3 {
            let (dir, size) = current_dir(&response, "spread", p).expect("described");
            let on_disk = log_files_size(&Path::new(&dir).join(format!("spread-{p}")));
            assert_eq!(size, on_disk, "size of spread-{p}");
            assert!(size > 0);
            holders.push(dir);
        }
        holders.sort();
        holders.dedup();
        assert_eq!(
            holders.len(),
            3,
            "the fewest-partitions dir gets each new partition"
        );
        for dir in &response.results {
            assert_eq!(dir.error_code, error::NONE);
            for p in dir.topics.iter().flat_map(|t| &t.partitions) {
                assert_eq!(p.offset_lag, 0);
            }
            if version >= 4 {
                assert!(dir.total_bytes > 0 && dir.usable_bytes >= 0);
                assert!(dir.usable_bytes <= dir.total_bytes);
            }
        }
    }
}

#[test]
fn alter_replica_log_dirs_errors_as_kafka_sends_them() {
    let (_data, _others, dirs, broker) = start_three_dirs();
    let mut client = connect(&broker);
    create_topic(&mut client, "errs", 1, &[]);
    let target = dirs[1].display().to_string();
    assert_eq!(
        alter(&mut client, "/no/such/dir", "errs", 0, 2),
        error::LOG_DIR_NOT_FOUND
    );
    assert_eq!(
        alter(&mut client, &target, "errs", 7, 1),
        error::REPLICA_NOT_AVAILABLE
    );
    assert_eq!(
        alter(&mut client, &target, "missing", 0, 2),
        error::REPLICA_NOT_AVAILABLE
    );
    let long = "x".repeat(240);
    assert_eq!(
        alter(&mut client, &target, &long, 0, 2),
        error::INVALID_TOPIC_EXCEPTION
    );
}

#[test]
fn a_replica_moves_to_another_log_dir_while_a_producer_writes() {
    let (data, _others, dirs, mut broker) = start_three_dirs();
    let mut client = connect(&broker);
    create_topic(&mut client, "moving", 1, &[("segment.bytes", "1048576")]);
    let mut sent = 0i64;
    for _ in 0..200 {
        let r = produce(&mut client, "moving", 0, super::batch(10, 500));
        assert_eq!(r.error_code, error::NONE);
        sent += 10;
    }
    let (from, _) = current_dir(&describe(&mut client, 4), "moving", 0).expect("described");
    let target = dirs
        .iter()
        .map(|d| d.display().to_string())
        .find(|d| *d != from)
        .expect("another dir");
    let addr = broker.addr();
    let writer = std::thread::spawn(move || {
        let mut client = RawClient::connect(addr).expect("connect");
        let mut sent = 0i64;
        for _ in 0..300 {
            let r = produce(&mut client, "moving", 0, super::batch(10, 500));
            assert_eq!(r.error_code, error::NONE, "produce during the move: {r:?}");
            sent += 10;
        }
        sent
    });
    assert_eq!(alter(&mut client, &target, "moving", 0, 2), error::NONE);
    wait_until(
        "the replica lives in the target dir",
        Duration::from_secs(60),
        || {
            let response = describe(&mut client, 4);
            current_dir(&response, "moving", 0).is_some_and(|(d, _)| d == target)
                && response
                    .results
                    .iter()
                    .flat_map(|d| &d.topics)
                    .flat_map(|t| &t.partitions)
                    .all(|p| !p.is_future_key)
        },
    );
    sent += writer.join().expect("writer");
    let check = |client: &mut RawClient| {
        let mut offsets = Vec::new();
        let mut next = 0;
        while next < sent {
            let got = fetched_offsets(&fetch(client, "moving", 0, next));
            assert!(!got.is_empty(), "fetch at {next}");
            next = *got.last().expect("offsets") + 1;
            offsets.extend(got);
        }
        offsets.dedup();
        assert_eq!(offsets, (0..sent).collect::<Vec<_>>(), "every record once");
    };
    check(&mut client);
    assert!(Path::new(&target).join("moving-0").is_dir());
    assert!(!Path::new(&from).join("moving-0").exists());
    let leftovers: Vec<_> = [&from, &target]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).expect("dir").flatten())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.starts_with("moving-0.") && (n.ends_with("-future") || n.ends_with("-delete"))
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    broker.stop();
    let broker = start_on(&data, &dirs);
    let mut client = connect(&broker);
    let (dir, size) = current_dir(&describe(&mut client, 4), "moving", 0).expect("described");
    assert_eq!(dir, target);
    assert_eq!(size, log_files_size(&Path::new(&target).join("moving-0")));
    check(&mut client);
}

#[test]
fn an_interrupted_move_is_started_again_after_a_restart() {
    let (data, _others, dirs, mut broker) = start_three_dirs();
    let mut client = connect(&broker);
    create_topic(&mut client, "resumed", 1, &[]);
    for _ in 0..5 {
        assert_eq!(
            produce(&mut client, "resumed", 0, super::batch(4, 50)).error_code,
            error::NONE
        );
    }
    let (from, _) = current_dir(&describe(&mut client, 4), "resumed", 0).expect("described");
    broker.stop();
    // What a crash mid-copy leaves: a partial future replica in another dir.
    let target = dirs
        .iter()
        .find(|d| d.display().to_string() != from)
        .expect("dir")
        .clone();
    let future = target.join(format!("resumed-0.{}-future", "ab".repeat(16)));
    std::fs::create_dir_all(&future).expect("future dir");
    std::fs::write(future.join("00000000000000000000.log"), b"partial").expect("write");
    let broker = start_on(&data, &dirs);
    let mut client = connect(&broker);
    let target = target.display().to_string();
    wait_until("the move finishes", Duration::from_secs(60), || {
        current_dir(&describe(&mut client, 4), "resumed", 0).is_some_and(|(d, _)| d == target)
    });
    let offsets = fetched_offsets(&fetch(&mut client, "resumed", 0, 0));
    assert_eq!(offsets, (0..20).collect::<Vec<_>>());
    assert!(!future.exists());
}

#[test]
fn describe_producers_lists_idempotent_producers_and_errors() {
    let (_data, broker) = super::start();
    let mut client = connect(&broker);
    create_topic(&mut client, "idem", 1, &[]);
    let records: Vec<NewRecord> = (0..3)
        .map(|i| {
            NewRecord::new(
                super::RECORD_TIMESTAMP + i,
                None,
                Some(bytes::Bytes::from_static(b"v")),
            )
        })
        .collect();
    let batch = RecordBatchBuilder::new()
        .producer(4242, 3)
        .base_sequence(0)
        .build(&records)
        .expect("batch");
    assert_eq!(
        produce(&mut client, "idem", 0, batch).error_code,
        error::NONE
    );
    let request = DescribeProducersRequest {
        topics: vec![
            TopicRequest {
                name: "idem".into(),
                partition_indexes: vec![0, 5],
                ..Default::default()
            },
            TopicRequest {
                name: "nope".into(),
                partition_indexes: vec![0],
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let response = client.call(&request, 0).expect("DescribeProducers");
    let idem = &response.topics[0].partitions;
    assert_eq!(idem[0].error_code, error::NONE);
    assert_eq!(idem[0].active_producers.len(), 1);
    let p = &idem[0].active_producers[0];
    assert_eq!(
        (p.producer_id, p.producer_epoch, p.last_sequence),
        (4242, 3, 2)
    );
    assert_eq!(p.last_timestamp, super::RECORD_TIMESTAMP + 2);
    assert_eq!((p.coordinator_epoch, p.current_txn_start_offset), (-1, -1));
    assert_eq!(idem[1].error_code, error::UNKNOWN_TOPIC_OR_PARTITION);
    assert_eq!(
        response.topics[1].partitions[0].error_code,
        error::UNKNOWN_TOPIC_OR_PARTITION
    );
}

#[test]
fn list_config_resources_lists_topics_and_brokers() {
    let (data, broker) = super::start();
    let mut client = connect(&broker);
    create_topic(&mut client, "listed", 1, &[]);
    let v1 = |types: Vec<i8>| ListConfigResourcesRequest {
        resource_types: types,
        ..Default::default()
    };
    let response = client
        .call(&v1(vec![2, 4]), 1)
        .expect("ListConfigResources");
    assert_eq!(response.error_code, error::NONE);
    let found: Vec<(String, i8)> = response
        .config_resources
        .iter()
        .map(|r| (r.resource_name.to_string(), r.resource_type))
        .collect();
    assert!(found.contains(&(data.node_id.to_string(), 4)), "{found:?}");
    assert!(found.contains(&("listed".to_string(), 2)), "{found:?}");
    let all = client.call(&v1(vec![]), 1).expect("ListConfigResources");
    assert!(
        all.config_resources.len() > found.len(),
        "broker loggers too"
    );
    let bad = client.call(&v1(vec![3]), 1).expect("ListConfigResources");
    assert_eq!(bad.error_code, error::UNSUPPORTED_VERSION);
    let v0 = client.call(&v1(vec![]), 0).expect("ListConfigResources v0");
    assert_eq!(v0.error_code, error::NONE);
    assert!(
        v0.config_resources.is_empty(),
        "no client metrics resources"
    );
}

#[test]
fn kafka_pythons_admin_client_describes_the_log_dirs() {
    let (_data, _others, dirs, broker) = start_three_dirs();
    let mut client = connect(&broker);
    create_topic(&mut client, "described", 3, &[]);
    for p in 0..3 {
        let r = produce(
            &mut client,
            "described",
            p,
            super::batch(3 + p as usize, 50),
        );
        assert_eq!(r.error_code, error::NONE);
    }
    let Some(output) = super::support::python(
        "describe_log_dirs_kafka_python.py",
        &["--bootstrap", &broker.bootstrap(), "--topic", "described"],
    ) else {
        return;
    };
    output.assert_success();
    let out = output.json();
    let reported = out["dirs"].as_object().expect("dirs");
    assert_eq!(reported.len(), 3, "{out}");
    let mut seen = Vec::new();
    for (dir, result) in reported {
        assert!(
            dirs.iter().any(|d| d.display().to_string() == *dir),
            "{dir} is not one of the log.dirs: {out}"
        );
        assert_eq!(result["error_code"].as_i64(), Some(0), "{out}");
        for (partition, size) in result["partitions"].as_object().expect("partitions") {
            let on_disk = log_files_size(&Path::new(dir).join(format!("described-{partition}")));
            assert_eq!(size.as_i64(), Some(on_disk), "described-{partition}: {out}");
            seen.push(partition.clone());
        }
    }
    seen.sort();
    assert_eq!(seen, ["0", "1", "2"], "{out}");
}
