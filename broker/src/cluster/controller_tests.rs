//! Tests of the metadata log appender, the controller and reconciliation, on real files
//! read back with [`replay::load`](super::replay::load).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use gregor_protocol::messages::begin_transaction_record::BeginTransactionRecord;
use gregor_protocol::messages::leader_change_message::LeaderChangeMessage;
use gregor_protocol::messages::topic_record::TopicRecord;
use gregor_protocol::metadata_frame::VersionedRecord;
use gregor_protocol::records::{Batch, ControlRecordType, RecordBatches};
use gregor_protocol::{Decodable, MetadataRecord};
use uuid::Uuid;

use super::controller::{
    AlterConfigOp, AlterConfigsResource, ConfigChange, CreateTopicResult, METADATA_VERSION,
    NewPartitions, NewTopic, ReplicaAssignment, TopicRef,
};
use super::image::{ConfigResource, Endpoint};
use super::meta_properties::MetaProperties;
use super::metadata_log::{
    ABORT_REASON, LEADER_EPOCH_CHECKPOINT, MetadataLogOptions, read_leader_epoch_checkpoint,
};
use super::reconcile::{DeleteReason, MissingPartition, PARTITION_METADATA_FILE};
use super::replay::{METADATA_PARTITION_DIR, parse_segment_file_name};
use super::*;
use crate::topic_config::ConfigSource;
use gregor_protocol::error_code::*;

const NODE: i32 = 1;

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("gregor-controller-")
        .tempdir()
        .unwrap()
}

fn options(dir: &Path) -> ControllerOptions {
    let (meta, _) = MetaProperties::load_or_format(dir, NODE, None).unwrap();
    ControllerOptions::new(NODE, dir.to_path_buf(), meta.directory_id.unwrap())
}

fn open_with(options: ControllerOptions) -> (Controller, StartupReport) {
    let loaded = load(&options.metadata_log_dir).unwrap();
    Controller::open(options, loaded).unwrap()
}

fn open(dir: &Path) -> (Controller, StartupReport) {
    open_with(options(dir))
}

fn partition_dir(dir: &Path) -> PathBuf {
    dir.join(METADATA_PARTITION_DIR)
}

/// One batch of the log as read back from disk.
#[derive(Debug)]
struct ReadBatch {
    segment: i64,
    position: usize,
    base_offset: i64,
    last_offset: i64,
    epoch: i32,
    control: bool,
    /// Decoded metadata records (data batches) or control record types.
    records: Vec<MetadataRecord>,
    controls: Vec<(ControlRecordType, Bytes)>,
    keys_null: bool,
}

fn segments(dir: &Path) -> Vec<(i64, PathBuf)> {
    let mut out: Vec<(i64, PathBuf)> = fs::read_dir(partition_dir(dir))
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            parse_segment_file_name(e.file_name().to_str()?).map(|base| (base, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// Reads every batch of every segment, checking CRCs and that nothing else is there.
fn read_log(dir: &Path) -> Vec<ReadBatch> {
    let mut out = Vec::new();
    for (base, path) in segments(dir) {
        let data = Bytes::from(fs::read(&path).unwrap());
        let len = data.len();
        let mut batches = RecordBatches::new(data);
        loop {
            let position = batches.position();
            let Some(batch) = batches.next() else { break };
            let Batch::V2(batch) = batch.unwrap() else {
                panic!("legacy batch")
            };
            batch.validate().unwrap();
            assert_eq!(batch.header().magic, 2);
            let mut read = ReadBatch {
                segment: base,
                position,
                base_offset: batch.base_offset(),
                last_offset: batch.last_offset(),
                epoch: batch.header().partition_leader_epoch,
                control: batch.is_control(),
                records: Vec::new(),
                controls: Vec::new(),
                keys_null: true,
            };
            for record in batch.records() {
                let record = record.unwrap();
                if batch.is_control() {
                    let key = record.control_key().unwrap();
                    read.controls
                        .push((key.record_type, record.value.clone().unwrap()));
                } else {
                    read.keys_null &= record.key.is_none();
                    let mut value = record.value.clone().unwrap();
                    read.records
                        .push(MetadataRecord::decode_framed(&mut value).unwrap().record);
                }
            }
            out.push(read);
        }
        assert_eq!(
            batches.position(),
            len,
            "trailing bytes in {}",
            path.display()
        );
    }
    out
}

/// Checks offsets are contiguous from 0 and epochs never decrease.
fn check_continuity(batches: &[ReadBatch]) {
    let mut next = 0;
    let mut epoch = 0;
    for b in batches {
        assert_eq!(b.base_offset, next, "{b:?}");
        assert!(b.epoch >= epoch);
        next = b.last_offset + 1;
        epoch = b.epoch;
    }
}

fn ok(result: &CreateTopicResult) {
    assert!(result.error.is_none(), "{result:?}");
}

fn error_of(result: &CreateTopicResult) -> (i16, String) {
    let error = result.error.clone().expect("an error");
    (error.code, error.message.unwrap_or_default())
}

fn create(controller: &Controller, topic: NewTopic) -> CreateTopicResult {
    let applied = controller.create_topics(&[topic], false).unwrap();
    applied.results.into_iter().next().unwrap()
}

fn create_err(controller: &Controller, topic: NewTopic) -> (i16, String) {
    error_of(&create(controller, topic))
}

// ---------------------------------------------------------------------------------------
// The metadata log
// ---------------------------------------------------------------------------------------

#[test]
fn fresh_log_bootstrap_and_registration() {
    let dir = tempdir();
    let (controller, report) = open(dir.path());
    assert!(report.bootstrapped);
    assert_eq!(report.log.epoch, 1);
    assert_eq!(report.log.leader_change_offset, 0);
    assert_eq!(report.metadata_version, METADATA_VERSION);
    assert_eq!(report.registered_broker, Some(6));
    assert_eq!(report.log.truncated, None);
    assert_eq!(report.log.aborted_transaction, None);

    let batches = read_log(dir.path());
    check_continuity(&batches);
    assert_eq!(batches.len(), 3);
    // Offset 0: the leader change of epoch 1, leader and only voter this node.
    assert!(batches[0].control);
    assert_eq!(batches[0].epoch, 1);
    assert_eq!(batches[0].controls.len(), 1);
    let (kind, value) = &batches[0].controls[0];
    assert_eq!(*kind, ControlRecordType::LeaderChange);
    let message = LeaderChangeMessage::decode(&mut value.clone(), 0).unwrap();
    assert_eq!(message.leader_id, NODE);
    assert_eq!(
        message
            .voters
            .iter()
            .map(|v| v.voter_id)
            .collect::<Vec<_>>(),
        [NODE]
    );
    assert_eq!(
        message
            .granting_voters
            .iter()
            .map(|v| v.voter_id)
            .collect::<Vec<_>>(),
        [NODE]
    );
    // Offsets 1-5: the bootstrap transaction (metadata.version, group.version,
    // transaction.version).
    assert!(!batches[1].control);
    assert!(batches[1].keys_null);
    assert_eq!((batches[1].base_offset, batches[1].last_offset), (1, 5));
    assert!(matches!(
        &batches[1].records[..],
        [
            MetadataRecord::BeginTransaction(b),
            MetadataRecord::FeatureLevel(f),
            MetadataRecord::FeatureLevel(g),
            MetadataRecord::FeatureLevel(t),
            MetadataRecord::EndTransaction(_)
        ] if b.name.as_deref() == Some("Bootstrap records")
            && &*f.name == "metadata.version"
            && f.feature_level == METADATA_VERSION
            && &*g.name == "group.version"
            && g.feature_level == 1
            && &*t.name == "transaction.version"
            && t.feature_level == 2
    ));
    // Offset 6: this broker's registration, epoch = its offset.
    let MetadataRecord::RegisterBroker(r) = &batches[2].records[0] else {
        panic!("{:?}", batches[2])
    };
    assert_eq!(r.broker_id, NODE);
    assert_eq!(r.broker_epoch, 6);
    assert!(!r.fenced);
    assert_eq!(r.end_points.len(), 1);
    assert_eq!(&*r.end_points[0].name, "PLAINTEXT");
    assert_eq!(r.end_points[0].port, 9092);
    assert_eq!(r.log_dirs, controller.options().directory_ids);
    assert!(batches.iter().all(|b| b.epoch == 1));

    // The image the controller holds is what replay reads back.
    let image = controller.image();
    assert_eq!(image.metadata_version(), Some(METADATA_VERSION));
    assert_eq!(image.last_offset(), 6);
    let broker = image.broker(NODE).unwrap();
    assert_eq!(broker.epoch, 6);
    assert!(!broker.fenced);
    assert_eq!(broker.supported_features, controller::supported_features());
    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.next_offset, 7);
    assert_eq!(loaded.last_epoch, 1);
    assert_eq!(loaded.image.broker(NODE), image.broker(NODE));
    assert_eq!(
        read_leader_epoch_checkpoint(&partition_dir(dir.path())),
        Some(vec![(1, 0)])
    );
    assert_eq!(
        fs::read_to_string(partition_dir(dir.path()).join(LEADER_EPOCH_CHECKPOINT)).unwrap(),
        "0\n1\n1 0\n"
    );
}

#[test]
fn restart_starts_a_new_epoch_and_reregisters_only_on_change() {
    let dir = tempdir();
    let (first, _) = open(dir.path());
    let incarnation = first.image().broker(NODE).unwrap().incarnation_id;
    drop(first);

    let (second, report) = open(dir.path());
    assert!(!report.bootstrapped);
    assert_eq!(report.log.epoch, 2);
    assert_eq!(report.log.leader_change_offset, 7);
    assert_eq!(report.registered_broker, None);
    assert_eq!(second.epoch(), 2);
    assert_eq!(
        second.image().broker(NODE).unwrap().incarnation_id,
        incarnation
    );
    drop(second);

    // New endpoints: a new registration at a new epoch.
    let mut opts = options(dir.path());
    opts.endpoints.push(Endpoint {
        listener: "EXTERNAL".into(),
        host: "example.com".into(),
        port: 19092,
        security_protocol: 1,
    });
    opts.rack = Some("r1".into());
    let (third, report) = open_with(opts);
    assert_eq!(report.log.epoch, 3);
    assert_eq!(report.registered_broker, Some(9));
    let broker = third.image().broker(NODE).unwrap().clone();
    assert_eq!(broker.epoch, 9);
    assert_eq!(broker.endpoints.len(), 2);
    assert_eq!(broker.rack.as_deref(), Some("r1"));
    assert_ne!(broker.incarnation_id, incarnation);

    // After binding, the real port.
    let mut endpoints = broker.endpoints.clone();
    endpoints[0].port = 40000;
    let epoch = third.update_broker_registration(endpoints.clone()).unwrap();
    assert_eq!(epoch, Some(10));
    assert_eq!(third.update_broker_registration(endpoints).unwrap(), None);
    drop(third);

    let batches = read_log(dir.path());
    check_continuity(&batches);
    let leader_changes: Vec<(i64, i32)> = batches
        .iter()
        .filter(|b| b.control)
        .map(|b| (b.base_offset, b.epoch))
        .collect();
    assert_eq!(leader_changes, [(0, 1), (7, 2), (8, 3)]);
    assert_eq!(
        read_leader_epoch_checkpoint(&partition_dir(dir.path())),
        Some(vec![(1, 0), (2, 7), (3, 8)])
    );
    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.image.broker(NODE).unwrap().endpoints[0].port, 40000);
    assert_eq!(loaded.last_epoch, 3);
}

#[test]
fn controller_registration() {
    let dir = tempdir();
    let mut opts = options(dir.path());
    opts.controller_endpoints = vec![Endpoint {
        listener: "CONTROLLER".into(),
        host: "localhost".into(),
        port: 9093,
        security_protocol: 0,
    }];
    let (controller, report) = open_with(opts.clone());
    assert_eq!(report.registered_controller, Some(7));
    let registration = controller.image().controllers()[&NODE].clone();
    assert_eq!(registration.endpoints, opts.controller_endpoints);
    drop(controller);
    let (_, report) = open_with(opts);
    assert_eq!(report.registered_controller, None);
}

#[test]
fn torn_tail_is_truncated_then_appended_after() {
    let dir = tempdir();
    let (controller, _) = open(dir.path());
    ok(&create(&controller, NewTopic::new("a", 1, 1)));
    drop(controller);
    let (_, segment) = segments(dir.path()).pop().unwrap();
    let good_len = fs::metadata(&segment).unwrap().len();
    // A torn write: the first 30 bytes of a copy of the last batch.
    let data = fs::read(&segment).unwrap();
    let last = read_log(dir.path()).pop().unwrap();
    let torn = data[last.position..last.position + 30].to_vec();
    fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .unwrap()
        .write_all(&torn)
        .unwrap();

    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.truncate_at, Some((segment.clone(), good_len)));
    let (controller, report) = Controller::open(options(dir.path()), loaded).unwrap();
    assert_eq!(report.log.truncated, Some((segment.clone(), good_len)));
    ok(&create(&controller, NewTopic::new("b", 2, 1)));
    drop(controller);

    let batches = read_log(dir.path());
    check_continuity(&batches);
    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.truncate_at, None);
    assert!(loaded.image.topic("a").is_some());
    assert_eq!(loaded.image.topic("b").unwrap().partitions.len(), 2);
}

#[test]
fn unfinished_transaction_is_aborted() {
    let dir = tempdir();
    let (controller, _) = open(dir.path());
    drop(controller);
    // A transaction whose end never made it to disk.
    let loaded = load(dir.path()).unwrap();
    let (mut log, _) =
        MetadataLog::open(dir.path(), &loaded, MetadataLogOptions::new(NODE)).unwrap();
    let begin_offset = log.next_offset();
    log.append(&[
        VersionedRecord {
            version: 0,
            record: MetadataRecord::BeginTransaction(BeginTransactionRecord::default()),
        },
        VersionedRecord {
            version: 0,
            record: MetadataRecord::Topic(TopicRecord {
                name: "half".into(),
                topic_id: Uuid::from_u128(7),
                ..Default::default()
            }),
        },
    ])
    .unwrap();
    drop(log);

    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.discarded_transaction, Some(begin_offset));
    let (controller, report) = Controller::open(options(dir.path()), loaded).unwrap();
    let aborted = report.log.aborted_transaction.unwrap();
    assert_eq!(aborted.begin_offset, begin_offset);
    assert_eq!(aborted.abort_offset, begin_offset + 3); // after the epoch's leader change
    assert!(controller.image().topic("half").is_none());
    assert_eq!(controller.image().last_offset(), aborted.abort_offset);
    assert_eq!(controller.image().pending_transaction(), None);
    ok(&create(&controller, NewTopic::new("whole", 1, 1)));
    drop(controller);

    let batches = read_log(dir.path());
    check_continuity(&batches);
    let abort = batches
        .iter()
        .find(|b| b.base_offset == aborted.abort_offset)
        .unwrap();
    assert!(matches!(
        &abort.records[..],
        [MetadataRecord::AbortTransaction(a)] if a.reason.as_deref() == Some(ABORT_REASON)
    ));
    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.discarded_transaction, None);
    assert!(loaded.image.topic("half").is_none());
    assert!(loaded.image.topic("whole").is_some());
}

#[test]
fn interrupted_bootstrap_is_aborted_and_redone() {
    let dir = tempdir();
    MetaProperties::load_or_format(dir.path(), NODE, None).unwrap();
    let loaded = load(dir.path()).unwrap();
    let (mut log, _) =
        MetadataLog::open(dir.path(), &loaded, MetadataLogOptions::new(NODE)).unwrap();
    log.append(&[VersionedRecord {
        version: 0,
        record: MetadataRecord::BeginTransaction(BeginTransactionRecord::default()),
    }])
    .unwrap();
    drop(log);
    let (controller, report) = open(dir.path());
    assert!(report.log.aborted_transaction.is_some());
    assert!(report.bootstrapped);
    assert_eq!(
        controller.image().metadata_version(),
        Some(METADATA_VERSION)
    );
    drop(controller);
    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.image.metadata_version(), Some(METADATA_VERSION));
}

#[test]
fn segments_roll_and_indexes_point_at_batches() {
    let dir = tempdir();
    let mut opts = options(dir.path());
    opts.metadata_segment_bytes = 12 * 1024;
    let (controller, _) = open_with(opts.clone());
    for i in 0..150 {
        ok(&create(
            &controller,
            NewTopic::new(format!("topic-{i}"), 3, 1),
        ));
    }
    drop(controller);
    let segs = segments(dir.path());
    assert!(segs.len() > 3, "{segs:?}");
    for (_, path) in &segs {
        assert!(fs::metadata(path).unwrap().len() <= 12 * 1024);
    }
    let batches = read_log(dir.path());
    check_continuity(&batches);
    // Every segment is named after its first batch.
    for (base, _) in &segs {
        assert_eq!(
            batches
                .iter()
                .find(|b| b.segment == *base)
                .unwrap()
                .base_offset,
            *base
        );
    }
    // Index entries: (last offset of a batch, its position), increasing.
    let mut entries = 0;
    for (base, path) in &segs {
        let index = fs::read(path.with_extension("index")).unwrap();
        assert_eq!(index.len() % 8, 0);
        let mut previous = -1;
        for entry in index.chunks(8) {
            let relative = i32::from_be_bytes(entry[..4].try_into().unwrap());
            let position = i32::from_be_bytes(entry[4..].try_into().unwrap());
            let batch = batches
                .iter()
                .find(|b| b.segment == *base && b.position == position as usize)
                .unwrap();
            assert_eq!(batch.last_offset, base + i64::from(relative));
            assert!(i64::from(relative) > previous);
            previous = i64::from(relative);
            entries += 1;
        }
        let times = fs::read(path.with_extension("timeindex")).unwrap();
        assert_eq!(times.len() % 12, 0);
        for entry in times.chunks(12) {
            let timestamp = i64::from_be_bytes(entry[..8].try_into().unwrap());
            let relative = i32::from_be_bytes(entry[8..].try_into().unwrap());
            assert!(timestamp > 1_600_000_000_000);
            assert!(
                batches
                    .iter()
                    .any(|b| b.segment == *base && b.last_offset == base + i64::from(relative))
            );
        }
    }
    assert!(entries > 0);

    // Everything reads back, and the log continues in the last segment.
    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.image.topic_count(), 150);
    let (controller, _) = open_with(opts);
    ok(&create(&controller, NewTopic::new("after", 1, 1)));
    drop(controller);
    check_continuity(&read_log(dir.path()));
    assert!(load(dir.path()).unwrap().image.topic("after").is_some());
}

#[test]
fn reopening_rebuilds_the_active_index() {
    let dir = tempdir();
    let (controller, _) = open(dir.path());
    for i in 0..30 {
        ok(&create(&controller, NewTopic::new(format!("t{i}"), 4, 1)));
    }
    drop(controller);
    let (base, path) = segments(dir.path()).pop().unwrap();
    let index_path = path.with_extension("index");
    let before = fs::read(&index_path).unwrap();
    assert!(!before.is_empty());
    // A crash leaves a torn index entry: reopening rebuilds it.
    fs::OpenOptions::new()
        .append(true)
        .open(&index_path)
        .unwrap()
        .write_all(&[1, 2, 3])
        .unwrap();
    let (controller, _) = open(dir.path());
    drop(controller);
    let after = fs::read(&index_path).unwrap();
    assert_eq!(after.len() % 8, 0);
    assert_eq!(&after[..before.len()], &before[..]);
    assert_eq!(base, 0);
}

// ---------------------------------------------------------------------------------------
// CreateTopics
// ---------------------------------------------------------------------------------------

#[test]
fn create_topics_writes_kafka_records() {
    let dir = tempdir();
    let (controller, _) = open(dir.path());
    let before = controller.next_offset();
    let topic = NewTopic::new("events", 3, 1)
        .with_config("retention.ms", "1000")
        .with_config("cleanup.policy", "compact");
    let applied = controller.create_topics(&[topic], false).unwrap();
    let result = &applied.results[0];
    ok(result);
    assert_eq!(result.num_partitions, 3);
    assert_eq!(result.replication_factor, 1);
    assert!(!result.topic_id.is_nil());
    let retention = result
        .configs
        .iter()
        .find(|c| c.name == "retention.ms")
        .unwrap();
    assert_eq!(retention.value.as_deref(), Some("1000"));
    assert_eq!(retention.source, ConfigSource::DynamicTopicConfig);
    let segment = result
        .configs
        .iter()
        .find(|c| c.name == "segment.bytes")
        .unwrap();
    assert_eq!(segment.source, ConfigSource::DefaultConfig);
    assert_eq!(segment.value.as_deref(), Some("1073741824"));

    // One batch: TopicRecord, ConfigRecords, PartitionRecords.
    assert_eq!(applied.offsets, Some((before, before + 5)));
    let batches = read_log(dir.path());
    let batch = batches.last().unwrap();
    assert_eq!(batch.records.len(), 6);
    assert!(
        matches!(&batch.records[0], MetadataRecord::Topic(t) if &*t.name == "events" && t.topic_id == result.topic_id)
    );
    assert!(
        matches!(&batch.records[1], MetadataRecord::Config(c) if &*c.name == "cleanup.policy" && c.resource_type == ConfigResource::TOPIC)
    );
    assert!(
        matches!(&batch.records[2], MetadataRecord::Config(c) if &*c.name == "retention.ms" && c.value.as_deref() == Some("1000"))
    );
    let directory = controller.options().directory_ids[0];
    for (i, record) in batch.records[3..].iter().enumerate() {
        let MetadataRecord::Partition(p) = record else {
            panic!("{record:?}")
        };
        assert_eq!(p.partition_id, i as i32);
        assert_eq!(p.replicas, [NODE]);
        assert_eq!(p.isr, [NODE]);
        assert_eq!(p.leader, NODE);
        assert_eq!((p.leader_epoch, p.partition_epoch), (0, 0));
        assert_eq!(p.directories, [directory]);
        assert_eq!(p.eligible_leader_replicas, None);
    }

    // The delta lists the partitions with the topic's configs.
    assert_eq!(applied.delta.created.len(), 3);
    assert_eq!(applied.delta.created[2].partition, 2);
    assert_eq!(applied.delta.created[0].topic_id, result.topic_id);
    assert_eq!(applied.delta.created[0].config["retention.ms"], "1000");

    // The published image and the one read back agree.
    let image = controller.image();
    let topic = image.topic("events").unwrap();
    assert_eq!(topic.id, result.topic_id);
    assert_eq!(topic.partitions.len(), 3);
    assert_eq!(
        image.topic_config("events").unwrap()["cleanup.policy"],
        "compact"
    );
    drop(controller);
    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.image.topic("events"), Some(topic));
    assert_eq!(
        loaded.image.topic_config("events"),
        image.topic_config("events")
    );
}

#[test]
fn create_topics_defaults_and_several_topics_in_one_batch() {
    let dir = tempdir();
    let mut opts = options(dir.path());
    opts.num_partitions = 4;
    let (controller, _) = open_with(opts);
    let applied = controller
        .create_topics(
            &[NewTopic::new("a", -1, -1), NewTopic::new("b", 2, 1)],
            false,
        )
        .unwrap();
    ok(&applied.results[0]);
    ok(&applied.results[1]);
    assert_eq!(applied.results[0].num_partitions, 4);
    assert_eq!(applied.results[0].replication_factor, 1);
    let (first, last) = applied.offsets.unwrap();
    assert_eq!(last - first + 1, 1 + 4 + 1 + 2);
    let batches = read_log(dir.path());
    assert_eq!(batches.last().unwrap().records.len(), 8);
    assert_eq!(applied.delta.created.len(), 6);
}

#[test]
fn create_topics_validation() {
    let dir = tempdir();
    let (controller, _) = open(dir.path());
    ok(&create(&controller, NewTopic::new("exists", 1, 1)));
    ok(&create(&controller, NewTopic::new("a.b", 1, 1)));

    let (code, message) = create_err(&controller, NewTopic::new("bad name", 1, 1));
    assert_eq!(code, INVALID_TOPIC_EXCEPTION);
    assert_eq!(
        message,
        "Topic name \"bad name\" is illegal, it contains a character other than ASCII \
         alphanumerics, '.', '_' and '-'"
    );
    let (code, message) = create_err(&controller, NewTopic::new("", 1, 1));
    assert_eq!(
        (code, message.as_str()),
        (
            INVALID_TOPIC_EXCEPTION,
            "Topic name is illegal, it can't be empty"
        )
    );
    let (code, _) = create_err(&controller, NewTopic::new("..", 1, 1));
    assert_eq!(code, INVALID_TOPIC_EXCEPTION);
    let long = "x".repeat(250);
    let (code, message) = create_err(&controller, NewTopic::new(long.clone(), 1, 1));
    assert_eq!(code, INVALID_TOPIC_EXCEPTION);
    assert!(message.contains("can't be longer than 249 characters"));
    ok(&create(&controller, NewTopic::new("x".repeat(249), 1, 1)));

    assert_eq!(
        create_err(&controller, NewTopic::new("exists", 1, 1)),
        (
            TOPIC_ALREADY_EXISTS,
            "Topic 'exists' already exists.".to_string()
        )
    );
    assert_eq!(
        create_err(&controller, NewTopic::new("a_b", 1, 1)),
        (
            INVALID_TOPIC_EXCEPTION,
            "Topic 'a_b' collides with existing topic: a.b".to_string()
        )
    );
    assert_eq!(
        create_err(&controller, NewTopic::new("p0", 0, 1)),
        (
            INVALID_PARTITIONS,
            "Number of partitions was set to an invalid non-positive value.".to_string()
        )
    );
    assert_eq!(
        create_err(&controller, NewTopic::new("p1", -2, 1)).0,
        INVALID_PARTITIONS
    );
    assert_eq!(
        create_err(&controller, NewTopic::new("r0", 1, 0)),
        (
            INVALID_REPLICATION_FACTOR,
            "Replication factor must be larger than 0, or -1 to use the default value.".to_string()
        )
    );
    assert_eq!(
        create_err(&controller, NewTopic::new("r1", 1, -3)).0,
        INVALID_REPLICATION_FACTOR
    );
    assert_eq!(
        create_err(&controller, NewTopic::new("r2", 1, 3)),
        (
            INVALID_REPLICATION_FACTOR,
            "Unable to replicate the partition 3 time(s): The target replication factor of 3 \
             cannot be reached because only 1 broker(s) are registered."
                .to_string()
        )
    );
    // Configs.
    let (code, message) = create_err(
        &controller,
        NewTopic::new("c1", 1, 1).with_config("retention.ms", "abc"),
    );
    assert_eq!(code, INVALID_CONFIG);
    assert_eq!(
        message,
        "Invalid value abc for configuration retention.ms: Not a number of type LONG"
    );
    assert_eq!(
        create_err(
            &controller,
            NewTopic::new("c2", 1, 1).with_config("bogus", "1")
        ),
        (
            INVALID_CONFIG,
            "Unknown topic config name: bogus".to_string()
        )
    );
    // Null config values are ignored.
    let mut nulls = NewTopic::new("c3", 1, 1);
    nulls.configs.push(("retention.ms".into(), None));
    ok(&create(&controller, nulls));
    assert!(controller.image().topic_config("c3").is_none());

    // Too many partitions in one request.
    assert_eq!(
        create_err(&controller, NewTopic::new("huge", 10_001, 1)),
        (
            POLICY_VIOLATION,
            "Excessively large number of partitions per request.".to_string()
        )
    );
    // Nothing failed was written.
    let image = controller.image();
    for name in ["bad name", "a_b", "p0", "r2", "c1", "c2", "huge"] {
        assert!(image.topic(name).is_none(), "{name}");
    }
}

#[test]
fn create_topics_duplicates_and_collisions_in_one_request() {
    let dir = tempdir();
    let (controller, _) = open(dir.path());
    let applied = controller
        .create_topics(
            &[
                NewTopic::new("dup", 1, 1),
                NewTopic::new("ok", 1, 1),
                NewTopic::new("dup", 2, 1),
                NewTopic::new("x.y", 1, 1),
                NewTopic::new("x_y", 1, 1),
            ],
            false,
        )
        .unwrap();
    let names: Vec<&str> = applied.results.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["dup", "ok", "x.y", "x_y"]);
    assert_eq!(
        error_of(&applied.results[0]),
        (INVALID_REQUEST, "Duplicate topic name.".to_string())
    );
    ok(&applied.results[1]);
    ok(&applied.results[2]);
    assert_eq!(error_of(&applied.results[3]).0, INVALID_TOPIC_EXCEPTION);
    let image = controller.image();
    assert!(image.topic("dup").is_none());
    assert!(image.topic("ok").is_some());
    assert!(image.topic("x_y").is_none());
}

#[test]
fn create_topics_manual_assignments() {
    let dir = tempdir();
    let (controller, _) = open(dir.path());
    let manual = |name: &str, assignments: Vec<(i32, Vec<i32>)>| NewTopic {
        assignments: assignments
            .into_iter()
            .map(|(partition, broker_ids)| ReplicaAssignment {
                partition,
                broker_ids,
            })
            .collect(),
        ..NewTopic::new(name, -1, -1)
    };
    let result = create(
        &controller,
        manual("m", vec![(1, vec![NODE]), (0, vec![NODE])]),
    );
    ok(&result);
    assert_eq!(result.num_partitions, 2);
    assert_eq!(controller.image().topic("m").unwrap().partitions.len(), 2);

    let err = |topic: NewTopic| create_err(&controller, topic);
    assert_eq!(
        err(manual("m1", vec![(0, vec![2])])),
        (
            INVALID_REPLICA_ASSIGNMENT,
            "The manual partition assignment includes broker 2, but no such broker is registered."
                .to_string()
        )
    );
    assert_eq!(
        err(manual("m2", vec![(0, vec![NODE, NODE])])).1,
        "The manual partition assignment includes the broker 1 more than once."
    );
    assert_eq!(
        err(manual("m3", vec![(0, vec![])])).1,
        "The manual partition assignment includes an empty replica list."
    );
    assert_eq!(
        err(manual("m4", vec![(0, vec![NODE]), (2, vec![NODE])])),
        (
            INVALID_REPLICA_ASSIGNMENT,
            "partitions should be a consecutive 0-based integer sequence".to_string()
        )
    );
    assert_eq!(
        err(manual("m5", vec![(0, vec![NODE]), (0, vec![NODE])])),
        (
            INVALID_REPLICA_ASSIGNMENT,
            "Found multiple manual partition assignments for partition 0".to_string()
        )
    );
    let mut with_rf = manual("m6", vec![(0, vec![NODE])]);
    with_rf.replication_factor = 1;
    assert_eq!(err(with_rf).0, INVALID_REQUEST);
    let mut with_count = manual("m7", vec![(0, vec![NODE])]);
    with_count.num_partitions = 1;
    assert_eq!(err(with_count).0, INVALID_REQUEST);
}

#[test]
fn validate_only_changes_nothing() {
    let dir = tempdir();
    let (controller, _) = open(dir.path());
    ok(&create(&controller, NewTopic::new("t", 1, 1)));
    let offset = controller.next_offset();
    let image = controller.image();
    let segment_len = fs::metadata(&segments(dir.path()).pop().unwrap().1)
        .unwrap()
        .len();

    let applied = controller
        .create_topics(&[NewTopic::new("v", 2, 1), NewTopic::new("t", 1, 1)], true)
        .unwrap();
    ok(&applied.results[0]);
    assert_eq!(applied.results[0].num_partitions, 2);
    assert!(applied.results[0].topic_id.is_nil());
    assert_eq!(error_of(&applied.results[1]).0, TOPIC_ALREADY_EXISTS);
    assert!(applied.delta.is_empty());
    assert_eq!(applied.offsets, None);

    let applied = controller
        .create_partitions(
            &[NewPartitions {
                topic: "t".into(),
                count: 5,
                assignments: None,
            }],
            true,
        )
        .unwrap();
    assert!(applied.results[0].error.is_none());
    assert!(applied.delta.is_empty());

    let applied = controller
        .incremental_alter_configs(
            &[AlterConfigsResource {
                resource_type: ConfigResource::TOPIC,
                name: "t".into(),
                changes: vec![ConfigChange {
                    name: "retention.ms".into(),
                    op: AlterConfigOp::Set,
                    value: Some("5".into()),
                }],
            }],
            true,
        )
        .unwrap();
    assert!(applied.results[0].error.is_none());

    assert_eq!(controller.next_offset(), offset);
    assert!(Arc::ptr_eq(&image, &controller.image()));
    assert_eq!(
        fs::metadata(&segments(dir.path()).pop().unwrap().1)
            .unwrap()
            .len(),
        segment_len
    );
    assert!(controller.image().topic("v").is_none());
    assert_eq!(controller.image().topic("t").unwrap().partitions.len(), 1);
}

// ---------------------------------------------------------------------------------------
// DeleteTopics
// ---------------------------------------------------------------------------------------

#[test]
fn delete_then_create_gives_a_new_id() {
    let dir = tempdir();
    let (controller, _) = open(dir.path());
    let first = create(
        &controller,
        NewTopic::new("t", 2, 1).with_config("retention.ms", "5"),
    );
    ok(&first);
    let applied = controller
        .delete_topics(&[TopicRef::Name("t".into())])
        .unwrap();
    assert_eq!(applied.results[0].error, None);
    assert_eq!(applied.results[0].topic_id, first.topic_id);
    assert_eq!(applied.delta.deleted.len(), 1);
    assert_eq!(applied.delta.deleted[0].partitions, [0, 1]);
    assert_eq!(applied.delta.deleted[0].id, first.topic_id);
    assert!(controller.image().topic("t").is_none());
    assert!(controller.image().topic_config("t").is_none());
    let batches = read_log(dir.path());
    assert!(
        matches!(&batches.last().unwrap().records[..], [MetadataRecord::RemoveTopic(r)] if r.topic_id == first.topic_id)
    );

    let second = create(&controller, NewTopic::new("t", 1, 1));
    ok(&second);
    assert_ne!(second.topic_id, first.topic_id);
    assert!(controller.image().topic_config("t").is_none());
    drop(controller);
    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.image.topic("t").unwrap().id, second.topic_id);
    assert!(loaded.image.topic_by_id(&first.topic_id).is_none());
}

#[test]
fn delete_topics_errors() {
    let dir = tempdir();
    let (controller, _) = open(dir.path());
    let a = create(&controller, NewTopic::new("a", 1, 1));
    let b = create(&controller, NewTopic::new("b", 1, 1));
    let c = create(&controller, NewTopic::new("c", 1, 1));
    let missing = Uuid::from_u128(42);
    let applied = controller
        .delete_topics(&[
            TopicRef::Name("nope".into()),
            TopicRef::Id(missing),
            TopicRef::Name("a".into()),
            TopicRef::Name("a".into()),
            TopicRef::Id(b.topic_id),
            TopicRef::Name("c".into()),
            TopicRef::Id(c.topic_id),
            TopicRef::Id(Uuid::nil()),
        ])
        .unwrap();
    let codes: Vec<(Option<&str>, i16)> = applied
        .results
        .iter()
        .map(|r| (r.name.as_deref(), r.error.as_ref().map_or(NONE, |e| e.code)))
        .collect();
    assert_eq!(
        codes,
        [
            (Some("nope"), UNKNOWN_TOPIC_OR_PARTITION),
            (None, UNKNOWN_TOPIC_ID),
            (Some("a"), INVALID_REQUEST),
            (Some("b"), NONE),
            (Some("c"), INVALID_REQUEST),
            (Some("c"), INVALID_REQUEST),
            (None, INVALID_REQUEST),
        ]
    );
    assert_eq!(
        applied.results[0]
            .error
            .as_ref()
            .unwrap()
            .message
            .as_deref(),
        Some("This server does not host this topic-partition.")
    );
    assert_eq!(
        applied.results[1]
            .error
            .as_ref()
            .unwrap()
            .message
            .as_deref(),
        Some("This server does not host this topic ID.")
    );
    let image = controller.image();
    assert!(image.topic("a").is_some());
    assert!(image.topic("b").is_none());
    assert!(image.topic("c").is_some());
    assert_eq!(applied.delta.deleted.len(), 1);
    let _ = a;
}

#[test]
fn deletion_disabled_and_internal_topics() {
    let dir = tempdir();
    let mut opts = options(dir.path());
    opts.delete_topic_enable = false;
    let (controller, _) = open_with(opts.clone());
    ok(&create(
        &controller,
        NewTopic::new("__consumer_offsets", 1, 1),
    ));
    let applied = controller
        .delete_topics(&[TopicRef::Name("__consumer_offsets".into())])
        .unwrap();
    let error = applied.results[0].error.clone().unwrap();
    assert_eq!(error.code, TOPIC_DELETION_DISABLED);
    assert_eq!(
        error.message.as_deref(),
        Some("Topic deletion is disabled.")
    );
    drop(controller);
    opts.delete_topic_enable = true;
    let (controller, _) = open_with(opts);
    let applied = controller
        .delete_topics(&[TopicRef::Name("__consumer_offsets".into())])
        .unwrap();
    assert_eq!(applied.results[0].error, None);
}

// ---------------------------------------------------------------------------------------
// CreatePartitions
// ---------------------------------------------------------------------------------------

#[test]
fn create_partitions() {
    let dir = tempdir();
    let (controller, _) = open(dir.path());
    let t = create(
        &controller,
        NewTopic::new("t", 2, 1).with_config("retention.ms", "7"),
    );
    let grow = |topic: &str, count: i32, assignments: Option<Vec<Vec<i32>>>| NewPartitions {
        topic: topic.into(),
        count,
        assignments,
    };
    let applied = controller
        .create_partitions(&[grow("t", 4, None)], false)
        .unwrap();
    assert_eq!(applied.results[0].error, None);
    let created: Vec<i32> = applied.delta.created.iter().map(|c| c.partition).collect();
    assert_eq!(created, [2, 3]);
    assert_eq!(applied.delta.created[0].topic_id, t.topic_id);
    assert_eq!(applied.delta.created[0].config["retention.ms"], "7");
    assert_eq!(controller.image().topic("t").unwrap().partitions.len(), 4);
    let batches = read_log(dir.path());
    assert_eq!(batches.last().unwrap().records.len(), 2);

    let error = |request: NewPartitions| {
        let applied = controller.create_partitions(&[request], false).unwrap();
        let e = applied.results[0].error.clone().unwrap();
        (e.code, e.message.unwrap_or_default())
    };
    assert_eq!(
        error(grow("t", 4, None)),
        (
            INVALID_PARTITIONS,
            "Topic already has 4 partition(s).".to_string()
        )
    );
    assert_eq!(
        error(grow("t", 3, None)),
        (
            INVALID_PARTITIONS,
            "The topic t currently has 4 partition(s); 3 would not be an increase.".to_string()
        )
    );
    assert_eq!(error(grow("nope", 3, None)).0, UNKNOWN_TOPIC_OR_PARTITION);
    assert_eq!(
        error(grow("t", 6, Some(vec![vec![NODE]]))),
        (
            INVALID_REPLICA_ASSIGNMENT,
            "Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified."
                .to_string()
        )
    );
    assert_eq!(
        error(grow("t", 5, Some(vec![vec![9]]))).0,
        INVALID_REPLICA_ASSIGNMENT
    );
    assert_eq!(
        error(grow("t", 5, Some(vec![vec![NODE, NODE]]))).0,
        INVALID_REPLICA_ASSIGNMENT
    );
    assert_eq!(error(grow("t", 20_000, None)).0, POLICY_VIOLATION);
    let applied = controller
        .create_partitions(&[grow("t", 5, Some(vec![vec![NODE]]))], false)
        .unwrap();
    assert_eq!(applied.results[0].error, None);
    let applied = controller
        .create_partitions(&[grow("t", 7, None), grow("t", 8, None)], false)
        .unwrap();
    assert_eq!(applied.results.len(), 1);
    assert_eq!(
        applied.results[0].error.as_ref().unwrap().code,
        INVALID_REQUEST
    );
    drop(controller);
    assert_eq!(
        load(dir.path())
            .unwrap()
            .image
            .topic("t")
            .unwrap()
            .partitions
            .len(),
        5
    );
}

// ---------------------------------------------------------------------------------------
// Configs
// ---------------------------------------------------------------------------------------

fn alter(
    controller: &Controller,
    name: &str,
    changes: &[(&str, AlterConfigOp, Option<&str>)],
) -> (Option<ApiError>, TopicDelta) {
    let applied = controller
        .incremental_alter_configs(
            &[AlterConfigsResource {
                resource_type: ConfigResource::TOPIC,
                name: name.into(),
                changes: changes
                    .iter()
                    .map(|(name, op, value)| ConfigChange {
                        name: name.to_string(),
                        op: *op,
                        value: value.map(str::to_string),
                    })
                    .collect(),
            }],
            false,
        )
        .unwrap();
    (applied.results[0].error.clone(), applied.delta)
}

#[test]
fn incremental_alter_configs() {
    use AlterConfigOp::*;
    let dir = tempdir();
    let (controller, _) = open(dir.path());
    ok(&create(
        &controller,
        NewTopic::new("t", 1, 1).with_config("retention.ms", "100"),
    ));
    let config = |c: &Controller| c.image().topic_config("t").cloned().unwrap_or_default();

    let (error, delta) = alter(
        &controller,
        "t",
        &[
            ("segment.ms", Set, Some("5000")),
            ("retention.ms", Delete, None),
            ("cleanup.policy", Append, Some("compact")),
        ],
    );
    assert_eq!(error, None);
    let expected = BTreeMap::from([
        ("cleanup.policy".to_string(), "delete,compact".to_string()),
        ("segment.ms".to_string(), "5000".to_string()),
    ]);
    assert_eq!(config(&controller), expected);
    assert_eq!(delta.reconfigured.len(), 1);
    assert_eq!(delta.reconfigured[0].config, expected);
    // Three records in one batch, a null value deleting retention.ms.
    let batches = read_log(dir.path());
    let records = &batches.last().unwrap().records;
    assert_eq!(records.len(), 3);
    assert!(records.iter().any(|r| matches!(r, MetadataRecord::Config(c) if &*c.name == "retention.ms" && c.value.is_none())));

    let (error, _) = alter(
        &controller,
        "t",
        &[("cleanup.policy", Subtract, Some("delete"))],
    );
    assert_eq!(error, None);
    assert_eq!(config(&controller)["cleanup.policy"], "compact");
    // No change: no record.
    let offset = controller.next_offset();
    let (error, delta) = alter(&controller, "t", &[("segment.ms", Set, Some("5000"))]);
    assert_eq!(error, None);
    assert!(delta.is_empty());
    assert_eq!(controller.next_offset(), offset);

    let code = |changes: &[(&str, AlterConfigOp, Option<&str>)]| {
        let (error, _) = alter(&controller, "t", changes);
        let error = error.unwrap();
        (error.code, error.message.unwrap_or_default())
    };
    assert_eq!(
        code(&[("retention.ms", Append, Some("1"))]),
        (
            INVALID_CONFIG,
            "Can't APPEND to key retention.ms because its type is not LIST.".to_string()
        )
    );
    assert_eq!(
        code(&[("retention.ms", Set, Some("x"))]),
        (
            INVALID_CONFIG,
            "Invalid value x for configuration retention.ms: Not a number of type LONG".to_string()
        )
    );
    assert_eq!(
        code(&[("cleanup.policy", Append, Some("bogus"))]).0,
        INVALID_CONFIG
    );
    assert_eq!(code(&[("bogus", Set, Some("1"))]).0, INVALID_CONFIG);
    assert_eq!(code(&[("segment.ms", Set, None)]).0, INVALID_REQUEST);
    assert_eq!(
        code(&[("segment.ms", Set, Some("1")), ("segment.ms", Delete, None)]),
        (
            INVALID_REQUEST,
            "Error due to duplicate config keys".to_string()
        )
    );
    let (error, _) = alter(&controller, "missing", &[("segment.ms", Set, Some("1"))]);
    assert_eq!(
        error,
        Some(ApiError::new(
            UNKNOWN_TOPIC_OR_PARTITION,
            "The topic 'missing' does not exist."
        ))
    );
    let (error, _) = alter(&controller, "", &[("segment.ms", Set, Some("1"))]);
    assert_eq!(error.unwrap().code, INVALID_REQUEST);
    assert_eq!(config(&controller)["segment.ms"], "5000");

    // Other resource types, duplicates.
    let applied = controller
        .incremental_alter_configs(
            &[
                AlterConfigsResource {
                    resource_type: ConfigResource::BROKER,
                    name: "-1".into(),
                    changes: Vec::new(),
                },
                AlterConfigsResource {
                    resource_type: 99,
                    name: "x".into(),
                    changes: Vec::new(),
                },
                AlterConfigsResource {
                    resource_type: ConfigResource::TOPIC,
                    name: "t".into(),
                    changes: Vec::new(),
                },
                AlterConfigsResource {
                    resource_type: ConfigResource::TOPIC,
                    name: "t".into(),
                    changes: Vec::new(),
                },
            ],
            false,
        )
        .unwrap();
    assert_eq!(applied.results.len(), 3);
    assert_eq!(
        applied.results[0].error,
        Some(ApiError::new(
            INVALID_REQUEST,
            "Invalid negative broker ID."
        ))
    );
    assert_eq!(
        applied.results[1].error.as_ref().unwrap().code,
        UNSUPPORTED_VERSION
    );
    assert_eq!(
        applied.results[2].error,
        Some(ApiError::new(INVALID_REQUEST, "Duplicate resource."))
    );
    drop(controller);
    let loaded = load(dir.path()).unwrap();
    assert_eq!(
        loaded.image.topic_config("t").unwrap()["cleanup.policy"],
        "compact"
    );
}

#[test]
fn describe_topic_configs() {
    let dir = tempdir();
    let mut opts = options(dir.path());
    opts.static_configs = BTreeMap::from([("log.retention.hours".to_string(), "168".to_string())]);
    let (controller, _) = open_with(opts);
    ok(&create(
        &controller,
        NewTopic::new("t", 1, 1).with_config("segment.bytes", "2097152"),
    ));
    let configs = controller
        .describe_topic_configs("t", None, true, false)
        .unwrap();
    assert_eq!(configs.len(), crate::topic_config::TOPIC_CONFIGS.len());
    let get = |name: &str| configs.iter().find(|c| c.name == name).unwrap();
    assert_eq!(
        get("segment.bytes").source,
        ConfigSource::DynamicTopicConfig
    );
    assert_eq!(get("segment.bytes").value.as_deref(), Some("2097152"));
    assert_eq!(get("retention.ms").source, ConfigSource::StaticBrokerConfig);
    assert_eq!(get("retention.ms").value.as_deref(), Some("604800000"));
    assert_eq!(get("retention.ms").synonyms[0].name, "log.retention.hours");
    assert_eq!(get("cleanup.policy").source, ConfigSource::DefaultConfig);
    assert!(!get("cleanup.policy").read_only && !get("cleanup.policy").is_sensitive);

    let keys = vec!["retention.ms".to_string(), "nope".to_string()];
    let some = controller
        .describe_topic_configs("t", Some(&keys), false, true)
        .unwrap();
    assert_eq!(some.len(), 1);
    assert!(some[0].synonyms.is_empty() && some[0].documentation.is_some());
    assert_eq!(
        controller
            .describe_topic_configs("missing", None, false, false)
            .unwrap_err()
            .code,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        controller
            .describe_topic_configs("bad name", None, false, false)
            .unwrap_err()
            .code,
        INVALID_TOPIC_EXCEPTION
    );
}

// ---------------------------------------------------------------------------------------
// Reconciliation and crash windows
// ---------------------------------------------------------------------------------------

#[test]
fn partition_metadata_files() {
    let dir = tempdir();
    let id = Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0);
    let metadata = PartitionMetadata::new(id);
    assert_eq!(
        metadata.to_file_string(),
        format!(
            "version: 0\ntopic_id: {}\n",
            super::meta_properties::uuid_to_base64(id)
        )
    );
    assert_eq!(PartitionMetadata::read(dir.path()).unwrap(), None);
    metadata.write(dir.path()).unwrap();
    assert_eq!(PartitionMetadata::read(dir.path()).unwrap(), Some(metadata));
    // What Kafka writes.
    let kafka = PartitionMetadata::parse("version: 0\ntopic_id: 6bXTVjGkQmOHHQ8MLNzzqg\n").unwrap();
    assert_eq!(kafka.version, 0);
    assert_eq!(
        super::meta_properties::uuid_to_base64(kafka.topic_id),
        "6bXTVjGkQmOHHQ8MLNzzqg"
    );
    for bad in [
        "",
        "version: 0\n",
        "version:0\ntopic_id: 6bXTVjGkQmOHHQ8MLNzzqg\n",
        "version: -1\ntopic_id: 6bXTVjGkQmOHHQ8MLNzzqg\n",
        "version: 0\ntopic_id: AAAAAAAAAAAAAAAAAAAAAA\n",
        "version: 0\ntopic_id: nope\n",
    ] {
        assert!(PartitionMetadata::parse(bad).is_err(), "{bad:?}");
    }
    fs::write(dir.path().join(PARTITION_METADATA_FILE), "garbage").unwrap();
    assert!(PartitionMetadata::read(dir.path()).is_err());
}

fn existing(root: &Path, topic: &str, partition: i32, id: Option<Uuid>) -> PartitionDir {
    let path = root.join(format!("{topic}-{partition}"));
    fs::create_dir_all(&path).unwrap();
    if let Some(id) = id {
        PartitionMetadata::new(id).write(&path).unwrap();
    }
    PartitionDir::read(path, topic, partition)
}

#[test]
fn reconcile_cases() {
    let dir = tempdir();
    let data = tempdir();
    let (controller, _) = open(dir.path());
    let kept = create(&controller, NewTopic::new("kept", 2, 1));
    let fresh = create(&controller, NewTopic::new("fresh", 1, 1));
    let image = controller.image();
    let old_id = Uuid::from_u128(99);
    let dirs = vec![
        existing(data.path(), "kept", 0, Some(kept.topic_id)),
        existing(data.path(), "kept", 1, None),
        existing(data.path(), "kept", 5, Some(kept.topic_id)),
        existing(data.path(), "gone", 0, Some(old_id)),
        existing(data.path(), "fresh", 0, Some(old_id)),
        existing(data.path(), "__cluster_metadata", 0, None),
    ];
    assert_eq!(dirs[1].topic_id, None);
    let plan = reconcile(&image, NODE, &dirs);
    assert_eq!(
        plan.to_create,
        [MissingPartition {
            topic: "fresh".into(),
            topic_id: fresh.topic_id,
            partition: 0
        }]
    );
    let deleted: Vec<(&str, i32, DeleteReason)> = plan
        .to_delete
        .iter()
        .map(|(d, reason)| (d.topic.as_str(), d.partition, *reason))
        .collect();
    assert_eq!(
        deleted,
        [
            ("kept", 5, DeleteReason::NotAReplica),
            ("gone", 0, DeleteReason::UnknownTopic),
            ("fresh", 0, DeleteReason::TopicIdMismatch),
        ]
    );
    assert_eq!(plan.to_stamp, [(dirs[1].path.clone(), kept.topic_id)]);
    // Another node holds none of these partitions.
    let other = reconcile(&image, 7, &[]);
    assert!(other.is_empty());
    let matching = reconcile(
        &image,
        NODE,
        &[
            existing(data.path(), "kept", 0, Some(kept.topic_id)),
            PartitionDir::read(data.path().join("kept-1"), "kept", 1),
        ],
    );
    assert_eq!(matching.to_create.len(), 1);
    assert!(matching.to_delete.is_empty());
}

#[test]
fn crash_after_append_before_publish_is_recovered_from_disk() {
    // The records of a CreateTopics reach the log, then the process dies before the image
    // is published or any directory is created.
    let dir = tempdir();
    let data = tempdir();
    let (controller, _) = open(dir.path());
    drop(controller);
    let loaded = load(dir.path()).unwrap();
    let (mut log, _) =
        MetadataLog::open(dir.path(), &loaded, MetadataLogOptions::new(NODE)).unwrap();
    let id = Uuid::from_u128(5);
    let partition = gregor_protocol::messages::partition_record::PartitionRecord {
        partition_id: 0,
        topic_id: id,
        replicas: vec![NODE],
        isr: vec![NODE],
        leader: NODE,
        leader_epoch: 0,
        partition_epoch: 0,
        ..Default::default()
    };
    log.append(&[
        VersionedRecord {
            version: 0,
            record: MetadataRecord::Topic(TopicRecord {
                name: "t".into(),
                topic_id: id,
                ..Default::default()
            }),
        },
        VersionedRecord {
            version: 2,
            record: MetadataRecord::Partition(partition),
        },
    ])
    .unwrap();
    drop(log);

    let (controller, _) = open(dir.path());
    assert_eq!(controller.image().topic("t").unwrap().id, id);
    // The directory was never created: reconciliation creates it.
    let plan = reconcile(&controller.image(), NODE, &[]);
    assert_eq!(
        plan.to_create,
        [MissingPartition {
            topic: "t".into(),
            topic_id: id,
            partition: 0
        }]
    );
    // A retry of the same request sees the first attempt.
    assert_eq!(
        create_err(&controller, NewTopic::new("t", 1, 1)).0,
        TOPIC_ALREADY_EXISTS
    );

    // Deleted and created again, with the old directory still on disk.
    let old = existing(data.path(), "t", 0, Some(id));
    controller
        .delete_topics(&[TopicRef::Name("t".into())])
        .unwrap();
    let new = create(&controller, NewTopic::new("t", 1, 1));
    drop(controller);
    let (controller, _) = open(dir.path());
    let plan = reconcile(&controller.image(), NODE, &[old]);
    assert_eq!(plan.to_delete[0].1, DeleteReason::TopicIdMismatch);
    assert_eq!(plan.to_create[0].topic_id, new.topic_id);
}

#[test]
fn nothing_is_written_when_nothing_changes() {
    // Requests that change nothing write nothing.
    let dir = tempdir();
    let (controller, _) = open(dir.path());
    let offset = controller.next_offset();
    let applied = controller
        .delete_topics(&[TopicRef::Name("none".into())])
        .unwrap();
    assert_eq!(applied.offsets, None);
    assert_eq!(controller.next_offset(), offset);
}

#[tokio::test(flavor = "multi_thread")]
async fn run_on_a_blocking_thread() {
    let dir = tempdir();
    let (controller, _) = open(dir.path());
    let controller = Arc::new(controller);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let controller = Arc::clone(&controller);
        tasks.push(tokio::spawn(async move {
            controller
                .run(move |c| c.create_topics(&[NewTopic::new(format!("t{i}"), 2, 1)], false))
                .await
                .unwrap()
        }));
    }
    for task in tasks {
        ok(&task.await.unwrap().results[0]);
    }
    assert_eq!(controller.image().topic_count(), 8);
    check_continuity(&read_log(dir.path()));
    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.image.topic_count(), 8);
}

#[test]
fn options_from_the_broker_config() {
    let dir = tempdir();
    let data = dir.path().display().to_string();
    let config = crate::config::Config::embedded_default()
        .with_overrides(&[
            ("log.dirs", data.as_str()),
            ("broker.rack", "r2"),
            ("num.partitions", "3"),
            ("delete.topic.enable", "false"),
            ("metadata.log.segment.bytes", "16777216"),
        ])
        .unwrap();
    let (meta, _) = MetaProperties::load_or_format(dir.path(), config.node_id, None).unwrap();
    let opts = ControllerOptions::from_config(&config, &meta);
    assert_eq!(opts.node_id, 1);
    assert_eq!(opts.metadata_log_dir, dir.path());
    assert_eq!(opts.directory_ids, [meta.directory_id.unwrap()]);
    assert_eq!(
        opts.endpoints,
        [Endpoint {
            listener: "PLAINTEXT".into(),
            host: "localhost".into(),
            port: 9092,
            security_protocol: 0
        }]
    );
    assert_eq!(opts.controller_endpoints.len(), 1);
    assert_eq!(opts.controller_endpoints[0].listener, "CONTROLLER");
    assert_eq!(opts.controller_endpoints[0].port, 9093);
    assert_eq!(opts.rack.as_deref(), Some("r2"));
    assert_eq!(opts.num_partitions, 3);
    assert!(!opts.delete_topic_enable);
    assert_eq!(opts.metadata_segment_bytes, 16 * 1024 * 1024);
    assert_eq!(opts.static_configs["log.retention.hours"], "168");

    let (controller, report) = open_with(opts);
    assert!(report.registered_controller.is_some());
    let result = create(&controller, NewTopic::new("t", -1, -1));
    ok(&result);
    assert_eq!(result.num_partitions, 3);
    let retention = result
        .configs
        .iter()
        .find(|c| c.name == "retention.ms")
        .unwrap();
    assert_eq!(retention.source, ConfigSource::StaticBrokerConfig);
}

#[test]
fn default_replication_factor_beyond_the_cluster() {
    let dir = tempdir();
    let mut opts = options(dir.path());
    opts.default_replication_factor = 3;
    let (controller, _) = open_with(opts);
    let (code, message) = create_err(&controller, NewTopic::new("t", 1, -1));
    assert_eq!(code, INVALID_REPLICATION_FACTOR);
    assert!(message.starts_with("Unable to replicate the partition 3 time(s)"));
}

/// A store that refuses the topics named in `refuse` and records what it was asked.
#[derive(Default)]
struct RefusingStore {
    refuse: Vec<&'static str>,
    prepared: std::sync::Mutex<Vec<(String, i32)>>,
}

impl super::controller::PartitionStore for RefusingStore {
    fn prepare(
        &self,
        partitions: &[super::controller::CreatedPartition],
    ) -> Result<(), super::controller::ApiError> {
        if let Some(p) = partitions
            .iter()
            .find(|p| self.refuse.contains(&p.topic.as_str()))
        {
            return Err(super::controller::ApiError::new(
                KAFKA_STORAGE_ERROR,
                format!("no room for {}", p.topic),
            ));
        }
        let mut prepared = self.prepared.lock().unwrap();
        prepared.extend(partitions.iter().map(|p| (p.topic.clone(), p.partition)));
        Ok(())
    }

    fn abort(&self, _partitions: &[super::controller::CreatedPartition]) {
        panic!("nothing to abort: the batch is written");
    }
}

#[test]
fn a_topic_whose_logs_cannot_be_made_is_not_written() {
    let dir = tempdir();
    let (controller, _) = open(dir.path());
    let store = RefusingStore {
        refuse: vec!["refused"],
        ..Default::default()
    };
    let applied = controller
        .create_topics_with(
            &[NewTopic::new("refused", 2, 1), NewTopic::new("made", 2, 1)],
            false,
            &store,
        )
        .unwrap();
    let refused = &applied.results[0];
    assert_eq!(refused.name, "refused");
    assert_eq!(
        refused.error.as_ref().map(|e| e.code),
        Some(KAFKA_STORAGE_ERROR)
    );
    assert!(refused.topic_id.is_nil());
    assert!(applied.results[1].error.is_none());
    let image = controller.image();
    assert!(image.topic("refused").is_none());
    assert!(image.topic("made").is_some());
    assert!(applied.delta.created.iter().all(|p| p.topic == "made"));
    assert_eq!(
        *store.prepared.lock().unwrap(),
        vec![("made".to_string(), 0), ("made".to_string(), 1)]
    );
    // After a restart the metadata log agrees.
    drop(controller);
    let (controller, _) = open(dir.path());
    assert!(controller.image().topic("refused").is_none());

    // Partitions that cannot be made leave the topic as it was.
    let store = RefusingStore {
        refuse: vec!["made"],
        ..Default::default()
    };
    let applied = controller
        .create_partitions_with(
            &[NewPartitions {
                topic: "made".to_string(),
                count: 4,
                assignments: None,
            }],
            false,
            &store,
        )
        .unwrap();
    assert_eq!(
        applied.results[0].error.as_ref().map(|e| e.code),
        Some(KAFKA_STORAGE_ERROR)
    );
    assert!(applied.delta.created.is_empty());
    assert_eq!(
        controller.image().topic("made").unwrap().partitions.len(),
        2
    );
}
