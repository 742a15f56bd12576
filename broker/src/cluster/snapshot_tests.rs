//! Tests of metadata snapshots: the image written as a `.checkpoint` and read back by
//! replay, the file decoded with the generated types, the controller's snapshot policy and
//! Kafka's retention, start-up from a snapshot (and past a damaged one).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bytes::Bytes;
use gregor_protocol::messages::config_record::ConfigRecord;
use gregor_protocol::messages::feature_level_record::FeatureLevelRecord;
use gregor_protocol::messages::kraft_version_record::KRaftVersionRecord;
use gregor_protocol::messages::partition_record::PartitionRecord;
use gregor_protocol::messages::producer_ids_record::ProducerIdsRecord;
use gregor_protocol::messages::register_broker_record::{BrokerEndpoint, RegisterBrokerRecord};
use gregor_protocol::messages::register_controller_record::RegisterControllerRecord;
use gregor_protocol::messages::snapshot_footer_record::SnapshotFooterRecord;
use gregor_protocol::messages::snapshot_header_record::SnapshotHeaderRecord;
use gregor_protocol::messages::topic_record::TopicRecord;
use gregor_protocol::messages::voters_record::{self, VotersRecord};
use gregor_protocol::records::{Batch, ControlRecordType, RecordBatches};
use gregor_protocol::{Decodable, MetadataRecord};
use uuid::Uuid;

use super::controller::{
    AlterConfigOp, AlterConfigsResource, ConfigChange, NewTopic, SnapshotOptions, TopicRef,
};
use super::image::{ConfigResource, MetadataImage};
use super::meta_properties::MetaProperties;
use super::metadata_log::MAX_BATCH_BYTES;
use super::replay::{METADATA_PARTITION_DIR, SnapshotId, parse_segment_file_name};
use super::snapshot::{self, KRaftState, RECORDS_PER_APPEND};
use super::snapshot_retention::{self, RetentionPolicy};
use super::*;

const NODE: i32 = 1;

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("gregor-snapshot-")
        .tempdir()
        .unwrap()
}

fn partition_dir(dir: &Path) -> PathBuf {
    dir.join(METADATA_PARTITION_DIR)
}

fn id(n: u64) -> Uuid {
    Uuid::from_u64_pair(0xabcd, n)
}

/// An image with every section the image keeps.
fn rich_image() -> MetadataImage {
    let mut image = MetadataImage::empty();
    let mut records = vec![
        MetadataRecord::FeatureLevel(FeatureLevelRecord {
            name: "metadata.version".into(),
            feature_level: 25,
            ..Default::default()
        }),
        MetadataRecord::FeatureLevel(FeatureLevelRecord {
            name: "group.version".into(),
            feature_level: 1,
            ..Default::default()
        }),
        MetadataRecord::FeatureLevel(FeatureLevelRecord {
            name: "transaction.version".into(),
            feature_level: 2,
            ..Default::default()
        }),
        MetadataRecord::RegisterBroker(RegisterBrokerRecord {
            broker_id: NODE,
            broker_epoch: 7,
            incarnation_id: id(99),
            end_points: vec![BrokerEndpoint {
                name: "PLAINTEXT".into(),
                host: "localhost".into(),
                port: 9092,
                security_protocol: 0,
                ..Default::default()
            }],
            rack: Some("r1".into()),
            fenced: false,
            in_controlled_shutdown: true,
            log_dirs: vec![id(50), id(51)],
            ..Default::default()
        }),
        MetadataRecord::RegisterController(RegisterControllerRecord {
            controller_id: NODE,
            incarnation_id: id(98),
            ..Default::default()
        }),
    ];
    for t in 0..5u64 {
        let topic_id = id(t + 1);
        records.push(MetadataRecord::Topic(TopicRecord {
            name: format!("topic-{t}").as_str().into(),
            topic_id,
            ..Default::default()
        }));
        for p in 0..3 {
            records.push(MetadataRecord::Partition(PartitionRecord {
                partition_id: p,
                topic_id,
                replicas: vec![NODE],
                isr: vec![NODE],
                leader: NODE,
                leader_epoch: p + 2,
                partition_epoch: p + 5,
                directories: vec![id(50)],
                eligible_leader_replicas: (p == 1).then(|| vec![NODE]),
                last_known_elr: (p == 2).then(|| vec![NODE]),
                ..Default::default()
            }));
        }
        records.push(MetadataRecord::Config(ConfigRecord {
            resource_type: ConfigResource::TOPIC,
            resource_name: format!("topic-{t}").as_str().into(),
            name: "retention.ms".into(),
            value: Some(format!("{}", 1000 * (t + 1)).as_str().into()),
            ..Default::default()
        }));
    }
    for (resource_type, resource_name, name, value) in [
        (ConfigResource::BROKER, "", "log.retention.ms", "12345"),
        (ConfigResource::BROKER, "1", "max.connections", "77"),
        (
            ConfigResource::CLIENT_METRICS,
            "sub",
            "metrics",
            "org.apache.kafka.",
        ),
        (
            ConfigResource::CLIENT_METRICS,
            "sub",
            "interval.ms",
            "60000",
        ),
        (
            ConfigResource::GROUP,
            "g",
            "consumer.session.timeout.ms",
            "50000",
        ),
    ] {
        records.push(MetadataRecord::Config(ConfigRecord {
            resource_type,
            resource_name: resource_name.into(),
            name: name.into(),
            value: Some(value.into()),
            ..Default::default()
        }));
    }
    records.push(MetadataRecord::ProducerIds(ProducerIdsRecord {
        broker_id: NODE,
        broker_epoch: 7,
        next_producer_id: 5000,
        ..Default::default()
    }));
    for (offset, record) in records.iter().enumerate() {
        image.apply_with_epoch(offset as i64, 3, record).unwrap();
    }
    image
}

/// Compares what the two images hold (not their provenance).
fn assert_same_image(a: &MetadataImage, b: &MetadataImage) {
    assert_eq!(
        a.topics().collect::<Vec<_>>(),
        b.topics().collect::<Vec<_>>()
    );
    assert_eq!(
        a.features().collect::<Vec<_>>(),
        b.features().collect::<Vec<_>>()
    );
    assert_eq!(a.brokers(), b.brokers());
    assert_eq!(a.controllers(), b.controllers());
    assert_eq!(a.configs(), b.configs());
    assert_eq!(a.next_producer_id(), b.next_producer_id());
    assert_eq!(a.topic_count(), b.topic_count());
}

fn write_image(dir: &Path, id: SnapshotId, image: &MetadataImage, kraft: &KRaftState) -> PathBuf {
    fs::create_dir_all(partition_dir(dir)).unwrap();
    snapshot::write_snapshot(&partition_dir(dir), id, image, 1_700_000_000_000, kraft)
        .unwrap()
        .path
}

#[test]
fn an_image_written_as_a_snapshot_reads_back_equal() {
    let dir = tempdir();
    let image = rich_image();
    let snap = SnapshotId {
        end_offset: 1234,
        epoch: 3,
    };
    let path = write_image(dir.path(), snap, &image, &KRaftState::default());
    assert_eq!(
        path.file_name().unwrap().to_str().unwrap(),
        "00000000000000001234-0000000003.checkpoint"
    );
    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.snapshot, Some(snap));
    assert_eq!(loaded.next_offset, 1234);
    assert_eq!(loaded.last_epoch, 3);
    assert_eq!(loaded.image.last_offset(), 1233);
    assert_same_image(&loaded.image, &image);
    // The client-metrics subscription and the ELR survived.
    assert_eq!(
        loaded
            .image
            .config(ConfigResource::CLIENT_METRICS, "sub")
            .unwrap()["interval.ms"],
        "60000"
    );
    let partition = loaded.image.topic("topic-0").unwrap().partition(1).unwrap();
    assert_eq!(partition.eligible_leader_replicas, vec![NODE]);
    assert!(loaded.image.broker(NODE).unwrap().in_controlled_shutdown);
}

/// Every batch of a snapshot file: (base offset, control, epoch, records as (control
/// type or None, value)).
type Decoded = Vec<(i64, bool, i32, Vec<(Option<ControlRecordType>, Bytes)>)>;

fn decode_file(path: &Path) -> Decoded {
    let data = Bytes::from(fs::read(path).unwrap());
    let mut out = Vec::new();
    let mut batches = RecordBatches::new(data);
    for batch in &mut batches {
        let Batch::V2(batch) = batch.unwrap() else {
            panic!("legacy batch")
        };
        batch.validate().unwrap();
        let mut records = Vec::new();
        for record in batch.records() {
            let record = record.unwrap();
            let kind = batch
                .is_control()
                .then(|| record.control_key().unwrap().record_type);
            assert!(record.key.is_some() == batch.is_control());
            records.push((kind, record.value.clone().unwrap()));
        }
        out.push((
            batch.base_offset(),
            batch.is_control(),
            batch.header().partition_leader_epoch,
            records,
        ));
    }
    assert!(!batches.is_truncated());
    out
}

#[test]
fn the_snapshot_file_decodes_with_the_generated_types() {
    let dir = tempdir();
    let image = rich_image();
    let snap = SnapshotId {
        end_offset: 50,
        epoch: 4,
    };
    let path = write_image(dir.path(), snap, &image, &KRaftState::default());
    let batches = decode_file(&path);
    assert!(batches.len() >= 3);

    // Header first: a control batch at offset 0 with only the SnapshotHeaderRecord
    // (kraft.version 0 writes no KRaftVersionRecord).
    let (base, control, epoch, records) = &batches[0];
    assert_eq!((*base, *control, *epoch), (0, true, 4));
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].0, Some(ControlRecordType::SnapshotHeader));
    let header = SnapshotHeaderRecord::decode(&mut records[0].1.clone(), 0).unwrap();
    assert_eq!(header.version, 0);
    assert_eq!(header.last_contained_log_timestamp, 1_700_000_000_000);

    // Footer last: a control batch with the SnapshotFooterRecord.
    let (_, control, epoch, records) = batches.last().unwrap();
    assert!(*control);
    assert_eq!(*epoch, 4);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].0, Some(ControlRecordType::SnapshotFooter));
    SnapshotFooterRecord::decode(&mut records[0].1.clone(), 0).unwrap();

    // In between: data batches of framed metadata records, offsets contiguous from 1, in
    // Kafka's MetadataImage.write order (metadata.version first).
    let mut next = 1;
    let mut decoded = Vec::new();
    for (base, control, epoch, records) in &batches[1..batches.len() - 1] {
        assert!(!control);
        assert_eq!(*epoch, 4);
        assert_eq!(*base, next);
        next += records.len() as i64;
        for (_, value) in records {
            decoded.push(MetadataRecord::decode_framed(&mut value.clone()).unwrap());
        }
    }
    assert_eq!(batches.last().unwrap().0, next);
    let kinds: Vec<&str> = decoded
        .iter()
        .map(|r| match &r.record {
            MetadataRecord::FeatureLevel(_) => "feature",
            MetadataRecord::RegisterBroker(_) => "broker",
            MetadataRecord::RegisterController(_) => "controller",
            MetadataRecord::Topic(_) => "topic",
            MetadataRecord::Partition(_) => "partition",
            MetadataRecord::Config(_) => "config",
            MetadataRecord::ProducerIds(_) => "producer-ids",
            other => panic!("unexpected record {other:?}"),
        })
        .collect();
    let MetadataRecord::FeatureLevel(first) = &decoded[0].record else {
        panic!()
    };
    assert_eq!(&*first.name, "metadata.version");
    assert_eq!(decoded[0].version, 0);
    // Sections in order, each contiguous.
    let mut sections: Vec<&str> = kinds.clone();
    sections.dedup();
    assert_eq!(
        sections,
        [
            "feature",
            "broker",
            "controller",
            "topic",
            "partition",
            "topic",
            "partition",
            "topic",
            "partition",
            "topic",
            "partition",
            "topic",
            "partition",
            "config",
            "producer-ids"
        ]
    );
    // Record versions of metadata.version 25 (Kafka's partitionRecordVersion and
    // registerBrokerRecordVersion).
    for r in &decoded {
        match &r.record {
            MetadataRecord::Partition(_) => assert_eq!(r.version, 2),
            MetadataRecord::RegisterBroker(_) => assert_eq!(r.version, 3),
            _ => assert_eq!(r.version, 0),
        }
    }
    let MetadataRecord::ProducerIds(ids) = &decoded.last().unwrap().record else {
        panic!()
    };
    assert_eq!(
        (ids.broker_id, ids.broker_epoch, ids.next_producer_id),
        (-1, -1, 5000)
    );
}

#[test]
fn kraft_version_1_writes_the_version_and_voters_in_the_header_batch() {
    let dir = tempdir();
    let voters = VotersRecord {
        version: 0,
        voters: vec![voters_record::Voter {
            voter_id: NODE,
            voter_directory_id: id(50),
            endpoints: vec![voters_record::Endpoint {
                name: "CONTROLLER".into(),
                host: "localhost".into(),
                port: 9093,
                ..Default::default()
            }],
            kraft_version_feature: voters_record::KRaftVersionFeature {
                min_supported_version: 0,
                max_supported_version: 1,
                ..Default::default()
            },
            ..Default::default()
        }],
        ..Default::default()
    };
    let kraft = KRaftState {
        kraft_version: 1,
        voters: Some(voters.clone()),
    };
    let snap = SnapshotId {
        end_offset: 10,
        epoch: 1,
    };
    let path = write_image(dir.path(), snap, &rich_image(), &kraft);
    let batches = decode_file(&path);
    let kinds: Vec<_> = batches[0].3.iter().map(|(k, _)| k.unwrap()).collect();
    assert_eq!(
        kinds,
        [
            ControlRecordType::SnapshotHeader,
            ControlRecordType::KRaftVersion,
            ControlRecordType::KRaftVoters
        ]
    );
    let version = KRaftVersionRecord::decode(&mut batches[0].3[1].1.clone(), 0).unwrap();
    assert_eq!(version.kraft_version, 1);
    // Data records start after the three control records.
    assert_eq!(batches[1].0, 3);
    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.kraft, kraft);
    assert_same_image(&loaded.image, &rich_image());
}

#[test]
fn large_images_are_split_into_batches_of_at_most_8_mib_at_groups_of_1024_records() {
    let dir = tempdir();
    let mut image = rich_image();
    let value = "x".repeat(4000);
    for i in 0..3000 {
        let record = MetadataRecord::Config(ConfigRecord {
            resource_type: ConfigResource::TOPIC,
            resource_name: "topic-0".into(),
            name: format!("key.{i:05}").as_str().into(),
            value: Some(value.as_str().into()),
            ..Default::default()
        });
        image.apply(1000 + i, &record).unwrap();
    }
    let snap = SnapshotId {
        end_offset: 5000,
        epoch: 2,
    };
    let path = write_image(dir.path(), snap, &image, &KRaftState::default());
    let batches = decode_file(&path);
    let data = &batches[1..batches.len() - 1];
    assert!(data.len() >= 2, "{} data batches", data.len());
    let bytes = fs::read(&path).unwrap();
    let mut position = 0;
    for (i, _) in batches.iter().enumerate() {
        let length =
            i32::from_be_bytes(bytes[position + 8..position + 12].try_into().unwrap()) as usize;
        assert!(
            length + 12 <= MAX_BATCH_BYTES,
            "batch {i}: {} bytes",
            length + 12
        );
        position += length + 12;
    }
    // Every data batch but the last holds whole groups of 1024 records.
    for (_, _, _, records) in &data[..data.len() - 1] {
        assert_eq!(records.len() % RECORDS_PER_APPEND, 0);
    }
    let loaded = load(dir.path()).unwrap();
    assert_same_image(&loaded.image, &image);
}

#[test]
fn an_image_without_metadata_version_or_with_unwritable_state_is_refused() {
    let dir = tempdir();
    fs::create_dir_all(partition_dir(dir.path())).unwrap();
    let snap = SnapshotId {
        end_offset: 1,
        epoch: 1,
    };
    let error = snapshot::write_snapshot(
        &partition_dir(dir.path()),
        snap,
        &MetadataImage::empty(),
        0,
        &KRaftState::default(),
    )
    .unwrap_err();
    assert!(error.to_string().contains("metadata.version"), "{error}");
    // ELR at a metadata.version before 4.0-IV1 cannot be written.
    let mut image = rich_image();
    image
        .apply(
            500,
            &MetadataRecord::FeatureLevel(FeatureLevelRecord {
                name: "metadata.version".into(),
                feature_level: 21,
                ..Default::default()
            }),
        )
        .unwrap();
    let error = snapshot::image_records(&image).unwrap_err();
    assert!(
        error.to_string().contains("eligible leader replicas"),
        "{error}"
    );
    // Nothing was left behind.
    assert_eq!(fs::read_dir(partition_dir(dir.path())).unwrap().count(), 0);
}

// ---------------------------------------------------------------------------------------
// The controller
// ---------------------------------------------------------------------------------------

fn options(dir: &Path, segment_bytes: u64, snapshots: SnapshotOptions) -> ControllerOptions {
    let (meta, _) = MetaProperties::load_or_format(dir, NODE, None).unwrap();
    let mut options = ControllerOptions::new(NODE, dir.to_path_buf(), meta.directory_id.unwrap());
    options.metadata_segment_bytes = segment_bytes;
    options.snapshots = snapshots;
    options
}

fn open(options: &ControllerOptions) -> Controller {
    let loaded = load(&options.metadata_log_dir).unwrap();
    Controller::open(options.clone(), loaded).unwrap().0
}

fn files(dir: &Path) -> (Vec<SnapshotId>, Vec<i64>) {
    let mut snapshots = Vec::new();
    let mut segments = Vec::new();
    for entry in fs::read_dir(partition_dir(dir)).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(id) = SnapshotId::from_file_name(&name) {
            snapshots.push(id);
        } else if let Some(base) = parse_segment_file_name(&name) {
            segments.push(base);
        }
    }
    snapshots.sort();
    segments.sort();
    (snapshots, segments)
}

fn set_config(topic: &str, key: &str, value: &str) -> AlterConfigsResource {
    AlterConfigsResource {
        resource_type: ConfigResource::TOPIC,
        name: topic.to_string(),
        changes: vec![ConfigChange {
            name: key.to_string(),
            op: AlterConfigOp::Set,
            value: Some(value.to_string()),
        }],
    }
}

/// Drives `ops` topic operations through the controller: creates (with a config), config
/// changes and deletes, leaving some topics alive.
fn drive(controller: &Controller, ops: usize) {
    let mut done = 0;
    let mut round = 0;
    while done < ops {
        let name = format!("t-{round}");
        let created = controller
            .create_topics(
                &[NewTopic::new(&name, 2, 1).with_config("retention.ms", "1000")],
                false,
            )
            .unwrap();
        assert_eq!(created.results[0].error, None, "{:?}", created.results[0]);
        done += 1;
        let changed = controller
            .incremental_alter_configs(
                &[set_config(&name, "retention.ms", &format!("{round}"))],
                false,
            )
            .unwrap();
        assert_eq!(changed.results[0].error, None);
        done += 1;
        // Keep every tenth topic.
        if round % 10 != 0 {
            let deleted = controller.delete_topics(&[TopicRef::Name(name)]).unwrap();
            assert_eq!(deleted.results[0].error, None);
            done += 1;
        }
        round += 1;
    }
}

#[test]
fn the_controller_snapshots_by_bytes_and_retention_deletes_old_segments_and_snapshots() {
    // Long form: GREGOR_SNAPSHOT_OPS=100000 cargo test -p gregor-broker --lib \
    //   snapshot_tests::the_controller -- --nocapture
    // (100,000 operations, about two minutes in a debug build); CI runs 6,000.
    let ops: usize = std::env::var("GREGOR_SNAPSHOT_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6_000);
    let dir = tempdir();
    let snapshots = SnapshotOptions {
        max_bytes_between: 64 * 1024,
        max_interval_ms: 0,
        retention: RetentionPolicy {
            retention_bytes: 256 * 1024,
            retention_ms: -1,
        },
    };
    let options = options(dir.path(), 32 * 1024, snapshots);
    let controller = open(&options);
    let started = Instant::now();
    drive(&controller, ops);
    let outcome = controller
        .wait_for_snapshot()
        .expect("a snapshot was written");
    let (written, _) = outcome.unwrap();
    let drive_time = started.elapsed();
    let image = controller.image();
    let next_offset = controller.next_offset();
    drop(controller);

    let (snapshot_ids, segments) = files(dir.path());
    assert!(!snapshot_ids.is_empty());
    assert!(snapshot_ids.contains(&written.id) || snapshot_ids.last().unwrap() > &written.id);
    // Retention kept the log and snapshots near the limit: segments from 0 are gone, and
    // so are all but the newest snapshots (each of the few KiB the kept topics take).
    assert!(segments[0] > 0, "first segment {}", segments[0]);
    assert!(segments[0] <= snapshot_ids[0].end_offset);
    assert!(snapshot_ids.len() < 5, "{snapshot_ids:?}");
    let total: u64 = fs::read_dir(partition_dir(dir.path()))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| {
            let name = e.file_name().into_string().unwrap();
            name.ends_with(".log") || name.ends_with(".checkpoint")
        })
        .map(|e| e.metadata().unwrap().len())
        .sum();
    // At most the limit, or (once the image alone outgrows it, in the long form) about the
    // newest snapshot and the log written since it.
    let newest =
        fs::metadata(partition_dir(dir.path()).join(snapshot_ids.last().unwrap().file_name()))
            .unwrap()
            .len();
    assert!(
        total < 256 * 1024 + 2 * newest + 2 * (64 + 32) * 1024,
        "{total} bytes kept, newest snapshot {newest} bytes"
    );

    // The leader epoch cache starts at or after the log start.
    let epochs =
        super::metadata_log::read_leader_epoch_checkpoint(&partition_dir(dir.path())).unwrap();
    assert!(epochs[0].1 >= segments[0], "{epochs:?} {segments:?}");

    // A restart loads the newest snapshot and the log after it: the same image.
    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.snapshot, snapshot_ids.last().copied());
    assert_eq!(loaded.next_offset, next_offset);
    assert_same_image(&loaded.image, &image);
    let from_snapshot = loaded.elapsed;
    let controller = Controller::open(options.clone(), loaded).unwrap().0;
    assert_same_image(&controller.image(), &image);
    // And it goes on appending.
    controller
        .create_topics(&[NewTopic::new("after-restart", 1, 1)], false)
        .unwrap();
    drop(controller);

    // The same operations replayed in full, without snapshots (for the figures).
    let full = tempdir();
    let no_snapshots = SnapshotOptions {
        max_bytes_between: u64::MAX,
        max_interval_ms: 0,
        retention: RetentionPolicy {
            retention_bytes: -1,
            retention_ms: -1,
        },
    };
    let full_options = self::options(full.path(), 32 * 1024, no_snapshots);
    let controller = open(&full_options);
    drive(&controller, ops);
    drop(controller);
    let loaded = load(full.path()).unwrap();
    assert_eq!(loaded.snapshot, None);
    // Another run: other topic and directory ids, the same topics and configs.
    let shape = |image: &MetadataImage| -> Vec<(String, usize, Option<String>)> {
        image
            .topics()
            .map(|t| {
                let config = image.topic_config(&t.name).map(|c| format!("{c:?}"));
                (t.name.clone(), t.partitions.len(), config)
            })
            .collect()
    };
    assert!(
        shape(&loaded.image) == shape(&image),
        "the full replay differs"
    );
    println!(
        "{ops} topic operations ({drive_time:?} to drive): start-up from snapshot {} took \
         {from_snapshot:?}, full replay of {} segments took {:?}",
        written.id.file_name(),
        files(full.path()).1.len(),
        loaded.elapsed
    );
}

#[test]
fn a_snapshot_by_time_needs_new_records_and_is_never_inside_a_transaction() {
    let dir = tempdir();
    let snapshots = SnapshotOptions {
        max_bytes_between: u64::MAX,
        max_interval_ms: 1,
        retention: RetentionPolicy::default(),
    };
    let options = options(dir.path(), 1 << 30, snapshots);
    let controller = open(&options);
    assert!(controller.wait_for_snapshot().is_none());
    std::thread::sleep(std::time::Duration::from_millis(5));
    assert!(
        controller.wait_for_snapshot().is_none(),
        "no records, no snapshot"
    );
    controller
        .create_topics(&[NewTopic::new("a", 1, 1)], false)
        .unwrap();
    let (written, _) = controller.wait_for_snapshot().unwrap().unwrap();
    assert_eq!(written.id.end_offset, controller.next_offset());
    assert_eq!(written.id.epoch, controller.epoch());
    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.snapshot, Some(written.id));
    assert!(loaded.image.topic("a").is_some());
}

#[test]
fn start_up_removes_leftovers_and_falls_back_past_a_damaged_newest_snapshot() {
    let dir = tempdir();
    let options = options(dir.path(), 1 << 30, SnapshotOptions::default());
    let controller = open(&options);
    controller
        .create_topics(&[NewTopic::new("first", 1, 1)], false)
        .unwrap();
    let (older, _) = controller.snapshot_now().unwrap().unwrap();
    controller
        .create_topics(&[NewTopic::new("second", 1, 1)], false)
        .unwrap();
    let (newest, _) = controller.snapshot_now().unwrap().unwrap();
    let image = controller.image();
    drop(controller);

    // Leftovers of an interrupted write and deletion.
    let part = partition_dir(dir.path()).join("00000000000000000099-0000000001.checkpoint.part");
    let deleted =
        partition_dir(dir.path()).join("00000000000000000001-0000000001.checkpoint.deleted");
    fs::write(&part, b"partial").unwrap();
    fs::write(&deleted, b"old").unwrap();
    // The newest snapshot damaged: its last bytes (the footer batch) flipped.
    let mut bytes = fs::read(&newest.path).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0xff;
    fs::write(&newest.path, &bytes).unwrap();

    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.snapshot, Some(older.id));
    assert_same_image(&loaded.image, &image);
    let controller = Controller::open(options.clone(), loaded).unwrap().0;
    assert!(!part.exists());
    assert!(!deleted.exists());
    assert!(controller.image().topic("second").is_some());
    drop(controller);

    // Without the log below it, a damaged only snapshot is an error.
    let lone = tempdir();
    let snap = SnapshotId {
        end_offset: 100,
        epoch: 1,
    };
    let path = write_image(lone.path(), snap, &rich_image(), &KRaftState::default());
    let mut bytes = fs::read(&path).unwrap();
    bytes.truncate(bytes.len() - 5);
    fs::write(&path, &bytes).unwrap();
    let error = load(lone.path()).unwrap_err();
    assert!(error.to_string().contains("partial batch"), "{error}");
}

#[test]
fn retention_by_time_keeps_the_newest_snapshot() {
    let dir = tempdir();
    let options = options(dir.path(), 1 << 30, SnapshotOptions::default());
    let controller = open(&options);
    let mut ids = Vec::new();
    for i in 0..3 {
        controller
            .create_topics(&[NewTopic::new(format!("t{i}"), 1, 1)], false)
            .unwrap();
        ids.push(controller.snapshot_now().unwrap().unwrap().0.id);
    }
    assert_eq!(files(dir.path()).0, ids);
    // Far in the future every snapshot is past retention; the newest stays.
    let mut log = controller.lock();
    let policy = RetentionPolicy {
        retention_bytes: -1,
        retention_ms: 1000,
    };
    let report =
        snapshot_retention::maybe_clean(log.local().expect("a local log"), policy, i64::MAX / 2)
            .unwrap();
    drop(log);
    assert_eq!(report.deleted_snapshots, ids[..2].to_vec());
    assert_eq!(files(dir.path()).0, vec![ids[2]]);
    // One segment, the active one: nothing to delete.
    assert_eq!(files(dir.path()).1, vec![0]);
}

#[test]
fn the_active_segment_rolls_by_metadata_log_segment_ms() {
    let dir = tempdir();
    let mut options = options(dir.path(), 1 << 30, SnapshotOptions::default());
    options.metadata_segment_ms = 1;
    let controller = open(&options);
    std::thread::sleep(std::time::Duration::from_millis(5));
    controller
        .create_topics(&[NewTopic::new("a", 1, 1)], false)
        .unwrap();
    let segments = files(dir.path()).1;
    assert!(segments.len() >= 2, "{segments:?}");
    // The topic's batch starts the last segment.
    let last = *segments.last().unwrap();
    let loaded = load(dir.path()).unwrap();
    assert!(loaded.image.topic("a").is_some());
    assert!(last > 0 && last < controller.next_offset());
}
