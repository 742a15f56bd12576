//! Topics coming and going under the write path: a topic deleted and created again under
//! the same name starts empty at offset 0 (nothing of the old log comes back, before or
//! after a restart); partitions added with CreatePartitions take writes and keep them
//! across a restart.

use std::time::{Duration, Instant};

use bytes::Bytes;
use gregor_protocol::records::{Compression, NewRecord};

use crate::disk;
use crate::support::{Broker, DataDir};
use crate::wire::{self, error};

const TOPIC: &str = "phoenix";

fn batch(tag: &str, n: usize) -> Bytes {
    let records: Vec<NewRecord> = (0..n)
        .map(|j| {
            NewRecord::new(
                wire::now_ms(),
                Some(Bytes::from(format!("{tag}-{j}"))),
                Some(Bytes::from(format!("{tag}-value-{j}"))),
            )
        })
        .collect();
    wire::batch(&records, Compression::Lz4)
}

/// The keys of every record of `topic`-`partition`, in offset order.
fn keys(broker: &Broker, topic: &str, partition: i32) -> Vec<String> {
    let log = wire::fetch_all(&mut wire::connect(broker), topic, partition, 0);
    log.records()
        .iter()
        .map(|r| String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

fn create(broker: &Broker, partitions: i32) -> gregor_protocol::Uuid {
    let (code, message) = wire::create_topic(broker, TOPIC, partitions, &[]).expect("served");
    assert_eq!(code, error::NONE, "CreateTopics {TOPIC}: {message:?}");
    wire::wait_for_topic(broker, TOPIC, partitions as usize, false)
}

#[test]
fn a_topic_deleted_and_created_again_starts_empty() {
    let data = DataDir::builder().build();
    let broker = Broker::start(&data);
    if wire::create_topic(&broker, "probe", 1, &[]).is_none()
        || wire::delete_topic(&broker, "probe").is_none()
    {
        println!("note: the broker does not serve CreateTopics and DeleteTopics yet");
        return;
    }
    let old_id = create(&broker, 2);
    let mut client = wire::connect(&broker);
    for p in 0..2 {
        wire::produce_ok(
            &mut client,
            wire::PRODUCE_BY_NAME,
            TOPIC,
            old_id,
            p,
            batch("old", 50),
        );
    }
    assert_eq!(wire::delete_topic(&broker, TOPIC), Some(error::NONE));
    let deadline = Instant::now() + wire::METADATA_WAIT;
    while wire::topic_error(&broker, TOPIC) != error::UNKNOWN_TOPIC_OR_PARTITION {
        assert!(
            Instant::now() < deadline,
            "{TOPIC} still listed after DeleteTopics"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // At once, with one partition this time.
    let new_id = create(&broker, 1);
    assert_ne!(new_id, old_id, "a new topic id");
    let response = wire::produce_ok(
        &mut client,
        wire::PRODUCE_BY_NAME,
        TOPIC,
        new_id,
        0,
        batch("new", 3),
    );
    assert_eq!(
        response.base_offset, 0,
        "the first offset of the new {TOPIC}"
    );
    let expected: Vec<String> = (0..3).map(|j| format!("new-{j}")).collect();
    assert_eq!(
        keys(&broker, TOPIC, 0),
        expected,
        "records of the new {TOPIC}"
    );
    let (code, ..) = wire::fetch_once(&mut client, TOPIC, 1, 0, 1 << 20);
    assert_eq!(
        code,
        error::UNKNOWN_TOPIC_OR_PARTITION,
        "partition 1 of the new {TOPIC}"
    );
    drop(client);

    let mut broker = broker;
    broker.stop();
    let broker = Broker::start(&data);
    let deadline = Instant::now() + wire::METADATA_WAIT;
    while wire::topic_error(&broker, TOPIC) != error::NONE {
        assert!(
            Instant::now() < deadline,
            "{TOPIC} not listed after a restart"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        wire::wait_for_topic(&broker, TOPIC, 1, false),
        new_id,
        "the topic id after a restart"
    );
    assert_eq!(
        keys(&broker, TOPIC, 0),
        expected,
        "records of the new {TOPIC} after a restart"
    );
    assert!(
        !disk::partition_dir(data.path(), TOPIC, 1).exists(),
        "the old partition 1 directory is back"
    );
}

#[test]
fn partitions_added_later_take_writes_across_a_restart() {
    let data = DataDir::builder().build();
    let broker = Broker::start(&data);
    if wire::create_topic(&broker, "probe", 1, &[]).is_none() {
        println!("note: the broker does not serve CreateTopics yet");
        return;
    }
    let id = create(&broker, 1);
    let Some((code, message)) = wire::create_partitions(&broker, TOPIC, 3) else {
        println!("note: the broker does not serve CreatePartitions yet");
        return;
    };
    assert_eq!(
        code,
        error::NONE,
        "CreatePartitions {TOPIC} to 3: {message:?}"
    );
    assert_eq!(wire::wait_for_topic(&broker, TOPIC, 3, false), id);
    let mut client = wire::connect(&broker);
    for p in 0..3 {
        let response = wire::produce_ok(
            &mut client,
            wire::PRODUCE_BY_NAME,
            TOPIC,
            id,
            p,
            batch(&format!("p{p}"), 4 + p as usize),
        );
        assert_eq!(response.base_offset, 0, "partition {p}");
    }
    drop(client);
    let mut broker = broker;
    broker.stop();
    let broker = Broker::start(&data);
    assert_eq!(wire::wait_for_topic(&broker, TOPIC, 3, false), id);
    for p in 0..3 {
        let expected: Vec<String> = (0..4 + p as usize).map(|j| format!("p{p}-{j}")).collect();
        assert_eq!(
            keys(&broker, TOPIC, p),
            expected,
            "partition {p} after a restart"
        );
        disk::check_partition_dir(&disk::partition_dir(data.path(), TOPIC, p));
    }
}

/// kill -9 right after CreateTopics and after DeleteTopics answer: what was acknowledged
/// holds after the restart (the topic is there and takes writes; the deleted one is gone
/// from Metadata and from disk, and comes back empty when created again).
#[test]
fn acknowledged_topic_changes_survive_kill9() {
    let data = DataDir::builder().build();
    let mut broker = Broker::start(&data);
    if wire::create_topic(&broker, "probe", 1, &[]).is_none()
        || wire::delete_topic(&broker, "probe").is_none()
    {
        println!("note: the broker does not serve CreateTopics and DeleteTopics yet");
        return;
    }
    let (code, message) = wire::create_topic(&broker, TOPIC, 2, &[]).expect("served");
    assert_eq!(code, error::NONE, "CreateTopics: {message:?}");
    broker.kill9();

    let mut broker = Broker::start(&data);
    let id = wire::wait_for_topic(&broker, TOPIC, 2, false);
    let mut client = wire::connect(&broker);
    for p in 0..2 {
        wire::produce_ok(
            &mut client,
            wire::PRODUCE_BY_NAME,
            TOPIC,
            id,
            p,
            batch("old", 20),
        );
    }
    drop(client);
    assert_eq!(wire::delete_topic(&broker, TOPIC), Some(error::NONE));
    broker.kill9();

    let broker = Broker::start(&data);
    assert_eq!(
        wire::topic_error(&broker, TOPIC),
        error::UNKNOWN_TOPIC_OR_PARTITION,
        "{TOPIC} is back after kill -9 following DeleteTopics"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left: Vec<String> = std::fs::read_dir(data.path())
            .expect("list the data directory")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| name.starts_with(&format!("{TOPIC}-")))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "directories of the deleted {TOPIC} left 30 s after the restart: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let new_id = create(&broker, 1);
    assert_ne!(new_id, id);
    assert_eq!(
        keys(&broker, TOPIC, 0),
        Vec::<String>::new(),
        "the new {TOPIC} is empty"
    );
}

#[test]
fn produce_never_creates_a_topic_whatever_auto_create_says() {
    // Kafka answers UNKNOWN_TOPIC_OR_PARTITION to a Produce for a missing topic; only
    // Metadata with allow_auto_topic_creation (and FindCoordinator) creates topics.
    let data = DataDir::builder().build();
    let broker = Broker::start_with(&data, &[("auto.create.topics.enable", "true")]);
    let mut client = wire::connect(&broker);
    for version in [3, wire::PRODUCE_BY_NAME] {
        let topic = format!("never-made-v{version}");
        let request = wire::produce_request(
            &topic,
            gregor_protocol::Uuid::nil(),
            -1,
            vec![(0, batch("x", 3)), (1, batch("y", 3))],
        );
        let responses = wire::produce(&mut client, version, &request).expect("Produce");
        for response in &responses {
            assert_eq!(
                response.error_code,
                error::UNKNOWN_TOPIC_OR_PARTITION,
                "v{version}: {response:?}"
            );
            assert_eq!(response.base_offset, -1, "v{version}: {response:?}");
        }
        assert_eq!(
            wire::topic_error(&broker, &topic),
            error::UNKNOWN_TOPIC_OR_PARTITION,
            "v{version}: the Produce created {topic}"
        );
        assert!(!data.path().join(format!("{topic}-0")).exists());
    }
    // Metadata that allows it does create the topic (num.partitions of the fixture).
    let response = wire::metadata(&mut client, &["made-by-metadata"], true);
    assert_eq!(response.topics[0].error_code, error::NONE, "{response:?}");
    assert_eq!(wire::topic_error(&broker, "made-by-metadata"), error::NONE);
}
