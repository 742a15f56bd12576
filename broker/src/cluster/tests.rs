//! Tests of the cluster module on real files in Kafka's layout, written with
//! `gregor-protocol`'s encoders.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use gregor_protocol::messages::access_control_entry_record::AccessControlEntryRecord;
use gregor_protocol::messages::begin_transaction_record::BeginTransactionRecord;
use gregor_protocol::messages::broker_registration_change_record::BrokerRegistrationChangeRecord;
use gregor_protocol::messages::client_quota_record::ClientQuotaRecord;
use gregor_protocol::messages::config_record::ConfigRecord;
use gregor_protocol::messages::delegation_token_record::DelegationTokenRecord;
use gregor_protocol::messages::end_transaction_record::EndTransactionRecord;
use gregor_protocol::messages::feature_level_record::FeatureLevelRecord;
use gregor_protocol::messages::fence_broker_record::FenceBrokerRecord;
use gregor_protocol::messages::kraft_version_record::KRaftVersionRecord;
use gregor_protocol::messages::leader_change_message::{LeaderChangeMessage, Voter};
use gregor_protocol::messages::no_op_record::NoOpRecord;
use gregor_protocol::messages::partition_change_record::PartitionChangeRecord;
use gregor_protocol::messages::partition_record::PartitionRecord;
use gregor_protocol::messages::producer_ids_record::ProducerIdsRecord;
use gregor_protocol::messages::register_broker_record::{
    BrokerEndpoint, BrokerFeature, RegisterBrokerRecord,
};
use gregor_protocol::messages::register_controller_record::RegisterControllerRecord;
use gregor_protocol::messages::remove_topic_record::RemoveTopicRecord;
use gregor_protocol::messages::snapshot_footer_record::SnapshotFooterRecord;
use gregor_protocol::messages::snapshot_header_record::SnapshotHeaderRecord;
use gregor_protocol::messages::topic_record::TopicRecord;
use gregor_protocol::messages::unfence_broker_record::UnfenceBrokerRecord;
use gregor_protocol::messages::unregister_broker_record::UnregisterBrokerRecord;
use gregor_protocol::messages::user_scram_credential_record::UserScramCredentialRecord;
use gregor_protocol::messages::zk_migration_state_record::ZkMigrationStateRecord;
use gregor_protocol::messages::{
    abort_transaction_record::AbortTransactionRecord, clear_elr_record::ClearElrRecord,
};
use gregor_protocol::records::{
    ControlRecordKey, ControlRecordType, NewRecord, RecordBatchBuilder, RecordsError,
};
use gregor_protocol::{Encodable, Message, MetadataRecord};
use uuid::Uuid;

use super::image::{DIRECTORY_MIGRATING, METADATA_VERSION_FEATURE, NO_LEADER, NO_LEADER_CHANGE};
use super::meta_properties::METADATA_TOPIC_ID;
use super::replay::{METADATA_PARTITION_DIR, segment_file_name};
use super::*;

// ---------------------------------------------------------------------------------------
// Writing Kafka's layout
// ---------------------------------------------------------------------------------------

const TIMESTAMP: i64 = 1_700_000_000_000;

/// The version each record is written at: the newest it has.
fn version_of(record: &MetadataRecord) -> i16 {
    match record {
        MetadataRecord::RegisterBroker(_) => RegisterBrokerRecord::VALID_VERSIONS.max,
        MetadataRecord::Partition(_) => PartitionRecord::VALID_VERSIONS.max,
        MetadataRecord::PartitionChange(_) => PartitionChangeRecord::VALID_VERSIONS.max,
        MetadataRecord::BrokerRegistrationChange(_) => {
            BrokerRegistrationChangeRecord::VALID_VERSIONS.max
        }
        _ => 0,
    }
}

fn framed(record: &MetadataRecord) -> Bytes {
    let mut buf = BytesMut::new();
    record.encode_framed(&mut buf, version_of(record)).unwrap();
    buf.freeze()
}

fn data_batch_values(base_offset: i64, epoch: i32, values: Vec<Bytes>) -> Bytes {
    let records: Vec<NewRecord> = values
        .into_iter()
        .map(|value| NewRecord::new(TIMESTAMP, None, Some(value)))
        .collect();
    RecordBatchBuilder::new()
        .base_offset(base_offset)
        .partition_leader_epoch(epoch)
        .build(&records)
        .unwrap()
}

fn data_batch(base_offset: i64, epoch: i32, records: &[MetadataRecord]) -> Bytes {
    data_batch_values(base_offset, epoch, records.iter().map(framed).collect())
}

fn control_batch(base_offset: i64, epoch: i32, records: &[(ControlRecordType, Bytes)]) -> Bytes {
    let records: Vec<NewRecord> = records
        .iter()
        .map(|(kind, value)| {
            let key = ControlRecordKey::new(*kind).encode();
            NewRecord::new(TIMESTAMP, Some(key), Some(value.clone()))
        })
        .collect();
    RecordBatchBuilder::new()
        .control(true)
        .base_offset(base_offset)
        .partition_leader_epoch(epoch)
        .build(&records)
        .unwrap()
}

fn leader_change_value(leader: i32) -> Bytes {
    LeaderChangeMessage {
        leader_id: leader,
        voters: vec![Voter {
            voter_id: leader,
            ..Default::default()
        }],
        granting_voters: vec![Voter {
            voter_id: leader,
            ..Default::default()
        }],
        ..Default::default()
    }
    .to_bytes(0)
    .unwrap()
}

/// Builds the segments of a metadata log, assigning offsets as Kafka does.
struct LogBuilder {
    next_offset: i64,
    epoch: i32,
    /// (base offset, bytes, byte position of each batch)
    segments: Vec<(i64, Vec<u8>, Vec<usize>)>,
}

impl LogBuilder {
    fn new() -> LogBuilder {
        LogBuilder::starting_at(0)
    }

    fn starting_at(offset: i64) -> LogBuilder {
        LogBuilder {
            next_offset: offset,
            epoch: 1,
            segments: vec![(offset, Vec::new(), Vec::new())],
        }
    }

    fn push(&mut self, batch: Bytes, count: i64) -> i64 {
        let base = self.next_offset;
        let segment = self.segments.last_mut().unwrap();
        segment.2.push(segment.1.len());
        segment.1.extend_from_slice(&batch);
        self.next_offset += count;
        base
    }

    /// Appends a data batch; returns its base offset.
    fn records(&mut self, records: &[MetadataRecord]) -> i64 {
        let batch = data_batch(self.next_offset, self.epoch, records);
        self.push(batch, records.len() as i64)
    }

    /// Appends a leader change control batch in a new epoch; returns its offset.
    fn leader_change(&mut self, epoch: i32, leader: i32) -> i64 {
        self.epoch = epoch;
        let batch = control_batch(
            self.next_offset,
            epoch,
            &[(ControlRecordType::LeaderChange, leader_change_value(leader))],
        );
        self.push(batch, 1)
    }

    /// Starts a new segment at the next offset.
    fn roll(&mut self) {
        self.segments
            .push((self.next_offset, Vec::new(), Vec::new()));
    }

    fn partition_dir(log_dir: &Path) -> PathBuf {
        let dir = log_dir.join(METADATA_PARTITION_DIR);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Writes the segments; returns their paths.
    fn write(&self, log_dir: &Path) -> Vec<PathBuf> {
        let dir = LogBuilder::partition_dir(log_dir);
        self.segments
            .iter()
            .map(|(base, bytes, _)| {
                let path = dir.join(segment_file_name(*base));
                fs::write(&path, bytes).unwrap();
                path
            })
            .collect()
    }
}

/// Writes a snapshot file as Kafka's `RecordsSnapshotWriter` does.
fn write_snapshot(log_dir: &Path, id: SnapshotId, records: &[MetadataRecord]) -> PathBuf {
    let mut bytes = Vec::new();
    let header = SnapshotHeaderRecord {
        version: 0,
        last_contained_log_timestamp: TIMESTAMP,
        ..Default::default()
    };
    let kraft_version = KRaftVersionRecord::default();
    bytes.extend_from_slice(&control_batch(
        0,
        id.epoch,
        &[
            (
                ControlRecordType::SnapshotHeader,
                header.to_bytes(0).unwrap(),
            ),
            (
                ControlRecordType::KRaftVersion,
                kraft_version.to_bytes(0).unwrap(),
            ),
        ],
    ));
    bytes.extend_from_slice(&data_batch(2, id.epoch, records));
    let footer = SnapshotFooterRecord::default();
    bytes.extend_from_slice(&control_batch(
        2 + records.len() as i64,
        id.epoch,
        &[(
            ControlRecordType::SnapshotFooter,
            footer.to_bytes(0).unwrap(),
        )],
    ));
    let path = LogBuilder::partition_dir(log_dir).join(id.file_name());
    fs::write(&path, bytes).unwrap();
    path
}

// ---------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------

fn id(n: u64) -> Uuid {
    Uuid::from_u64_pair(0x1234_5678, n)
}

fn feature(name: &str, level: i16) -> MetadataRecord {
    MetadataRecord::FeatureLevel(FeatureLevelRecord {
        name: name.to_string().into(),
        feature_level: level,
        ..Default::default()
    })
}

fn topic(name: &str, topic_id: Uuid) -> MetadataRecord {
    MetadataRecord::Topic(TopicRecord {
        name: name.to_string().into(),
        topic_id,
        ..Default::default()
    })
}

fn partition(topic_id: Uuid, index: i32, replicas: &[i32], leader: i32) -> MetadataRecord {
    MetadataRecord::Partition(PartitionRecord {
        partition_id: index,
        topic_id,
        replicas: replicas.to_vec(),
        isr: replicas.to_vec(),
        leader,
        leader_epoch: 0,
        partition_epoch: 0,
        ..Default::default()
    })
}

fn change(
    topic_id: Uuid,
    index: i32,
    edit: impl FnOnce(&mut PartitionChangeRecord),
) -> MetadataRecord {
    let mut record = PartitionChangeRecord {
        partition_id: index,
        topic_id,
        ..Default::default()
    };
    edit(&mut record);
    MetadataRecord::PartitionChange(record)
}

fn remove_topic(topic_id: Uuid) -> MetadataRecord {
    MetadataRecord::RemoveTopic(RemoveTopicRecord {
        topic_id,
        ..Default::default()
    })
}

fn config(resource_type: i8, name: &str, key: &str, value: Option<&str>) -> MetadataRecord {
    MetadataRecord::Config(ConfigRecord {
        resource_type,
        resource_name: name.to_string().into(),
        name: key.to_string().into(),
        value: value.map(|v| v.to_string().into()),
        ..Default::default()
    })
}

fn register_broker(broker_id: i32, epoch: i64, rack: Option<&str>) -> MetadataRecord {
    MetadataRecord::RegisterBroker(RegisterBrokerRecord {
        broker_id,
        incarnation_id: id(1000 + broker_id as u64),
        broker_epoch: epoch,
        end_points: vec![BrokerEndpoint {
            name: "PLAINTEXT".to_string().into(),
            host: format!("broker{broker_id}.example").into(),
            port: 9092,
            security_protocol: 0,
            ..Default::default()
        }],
        features: vec![BrokerFeature {
            name: METADATA_VERSION_FEATURE.to_string().into(),
            min_supported_version: 7,
            max_supported_version: 27,
            ..Default::default()
        }],
        rack: rack.map(|r| r.to_string().into()),
        fenced: true,
        log_dirs: vec![id(2000 + broker_id as u64)],
        ..Default::default()
    })
}

fn begin() -> MetadataRecord {
    MetadataRecord::BeginTransaction(BeginTransactionRecord {
        name: Some("create topics".to_string().into()),
        ..Default::default()
    })
}

fn end() -> MetadataRecord {
    MetadataRecord::EndTransaction(EndTransactionRecord::default())
}

fn abort() -> MetadataRecord {
    MetadataRecord::AbortTransaction(AbortTransactionRecord::default())
}

/// The metadata every test log starts with: metadata.version and two brokers.
fn bootstrap() -> Vec<MetadataRecord> {
    vec![
        feature(METADATA_VERSION_FEATURE, 21),
        register_broker(1, 10, Some("rack-a")),
        register_broker(2, 11, None),
    ]
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

// ---------------------------------------------------------------------------------------
// meta.properties and UUID text
// ---------------------------------------------------------------------------------------

#[test]
fn base64_uuids_match_kafka() {
    // Kafka's Uuid.ZERO_UUID and Uuid.METADATA_TOPIC_ID.
    assert_eq!(uuid_to_base64(Uuid::nil()), "AAAAAAAAAAAAAAAAAAAAAA");
    assert_eq!(uuid_to_base64(METADATA_TOPIC_ID), "AAAAAAAAAAAAAAAAAAAAAQ");
    let id = Uuid::from_u128(0xfbfb_fbff_ffff_ffff_ffff_ffff_ffff_fffe);
    let text = uuid_to_base64(id);
    assert_eq!(text, "-_v7_________________g");
    assert_eq!(uuid_from_base64(&text).unwrap(), id);
    assert_eq!(uuid_from_base64(&format!("{text}==")).unwrap(), id);
    for _ in 0..200 {
        let id = random_uuid();
        let text = uuid_to_base64(id);
        assert!(!text.starts_with('-'));
        assert_eq!(uuid_from_base64(&text).unwrap(), id);
    }
    assert_eq!(random_cluster_id().len(), 22);
    for bad in [
        "",
        "AAAA",
        "AAAAAAAAAAAAAAAAAAAAA",
        "AAAAAAAAAAAAAAAAAAAAAAA",
        "AAAAAAAAAAAAAAAAAAAA+A",
    ] {
        assert!(uuid_from_base64(bad).is_err(), "{bad:?} should not parse");
    }
    assert!(uuid_from_base64(&"A".repeat(30)).is_err());
}

#[test]
fn meta_properties_parse_kafka_file() {
    // As kafka-storage.sh format writes it.
    let text = "#\n#Tue Jan 09 10:00:00 UTC 2024\ncluster.id=4L6g3nShT-eMCtK--X86sw\n\
                directory.id=AAAAAAAAAAAAAAAAAAAAAQ\nnode.id=3\nversion=1\n";
    let meta = MetaProperties::parse(text).unwrap();
    assert_eq!(
        meta,
        MetaProperties {
            version: 1,
            cluster_id: "4L6g3nShT-eMCtK--X86sw".to_string(),
            node_id: 3,
            directory_id: Some(METADATA_TOPIC_ID),
        }
    );
    assert_eq!(
        uuid_to_base64(meta.cluster_uuid().unwrap()),
        "4L6g3nShT-eMCtK--X86sw"
    );
    // Without a directory id (Kafka before 3.7), with `:` separators and spaces.
    let meta = MetaProperties::parse("version : 1\ncluster.id : abc\nnode.id : 0\n").unwrap();
    assert_eq!(meta.cluster_id, "abc");
    assert_eq!(meta.node_id, 0);
    assert_eq!(meta.directory_id, None);
    assert!(meta.cluster_uuid().is_err());
}

#[test]
fn meta_properties_round_trip() {
    let dir = tempdir();
    assert_eq!(MetaProperties::read(dir.path()).unwrap(), None);
    let meta = MetaProperties::generate(7);
    assert_eq!(meta.version, 1);
    assert_eq!(
        meta.cluster_uuid().map(uuid_to_base64).unwrap(),
        meta.cluster_id
    );
    meta.write(dir.path()).unwrap();
    let text = fs::read_to_string(dir.path().join("meta.properties")).unwrap();
    assert!(text.starts_with('#'));
    assert!(text.contains(&format!("cluster.id={}\n", meta.cluster_id)));
    assert!(text.contains("node.id=7\n"));
    assert!(text.contains("version=1\n"));
    assert!(text.contains(&format!(
        "directory.id={}\n",
        uuid_to_base64(meta.directory_id.unwrap())
    )));
    assert!(!dir.path().join("meta.properties.tmp").exists());
    assert_eq!(
        MetaProperties::read(dir.path()).unwrap(),
        Some(meta.clone())
    );

    // Values needing escapes survive.
    let odd = MetaProperties {
        cluster_id: " a=b:c#d!e\\f\u{e9}\u{3b1}".to_string(),
        ..meta
    };
    odd.write(dir.path()).unwrap();
    assert!(
        fs::read(dir.path().join("meta.properties"))
            .unwrap()
            .is_ascii()
    );
    assert_eq!(MetaProperties::read(dir.path()).unwrap(), Some(odd));
}

#[test]
fn meta_properties_errors() {
    let invalid = |text: &str| match MetaProperties::parse(text) {
        Err(MetaPropertiesError::Invalid { reason, .. }) => reason,
        other => panic!("{text:?}: expected an invalid file, got {other:?}"),
    };
    assert!(invalid("version=1\ncluster.id=abc\n").contains("node.id was not found"));
    assert!(invalid("version=1\nnode.id=1\n").contains("cluster.id was not found"));
    assert!(invalid("version=1\ncluster.id=abc\nnode.id=one\n").contains("node.id"));
    assert!(invalid("cluster.id=abc\nbroker.id=1\n").contains("version 0"));
    assert!(invalid("version=2\ncluster.id=abc\nnode.id=1\n").contains("version 2"));
    assert!(
        invalid("version=1\ncluster.id=abc\nnode.id=1\ndirectory.id=nope\n")
            .contains("directory.id")
    );

    let dir = tempdir();
    let (meta, created) = MetaProperties::load_or_format(dir.path(), 1, None).unwrap();
    assert!(created);
    assert_eq!(meta.node_id, 1);
    let (again, created) = MetaProperties::load_or_format(dir.path(), 1, None).unwrap();
    assert!(!created);
    assert_eq!(again, meta);
    match MetaProperties::load_or_format(dir.path(), 2, None) {
        Err(
            e @ MetaPropertiesError::NodeIdMismatch {
                stored: 1,
                configured: 2,
                ..
            },
        ) => {
            assert!(e.to_string().contains("doesn't match"), "{e}");
        }
        other => panic!("expected a node id mismatch, got {other:?}"),
    }
    assert!(matches!(
        MetaProperties::load_or_format(dir.path(), 1, Some("other-cluster")),
        Err(MetaPropertiesError::ClusterIdMismatch { .. })
    ));
    // Formatting a second directory of the same node with the cluster's id.
    let second = tempdir();
    let (meta2, created) =
        MetaProperties::load_or_format(second.path(), 1, Some(&meta.cluster_id)).unwrap();
    assert!(created);
    assert_eq!(meta2.cluster_id, meta.cluster_id);
    assert_ne!(meta2.directory_id, meta.directory_id);

    // load() reports an invalid meta.properties.
    fs::write(dir.path().join("meta.properties"), "version=1\n").unwrap();
    assert!(matches!(
        load(dir.path()),
        Err(ReplayError::MetaProperties(
            MetaPropertiesError::Invalid { .. }
        ))
    ));
}

// ---------------------------------------------------------------------------------------
// Replay
// ---------------------------------------------------------------------------------------

#[test]
fn fresh_directory_gives_an_empty_image() {
    let dir = tempdir();
    let loaded = load(dir.path()).unwrap();
    assert!(loaded.image.is_empty());
    assert_eq!(loaded.image.last_offset(), -1);
    assert_eq!(loaded.meta, None);
    assert_eq!(loaded.next_offset, 0);
    assert_eq!(loaded.last_epoch, 0);
    assert_eq!(loaded.truncate_at, None);
    assert_eq!(loaded.snapshot, None);

    // Formatted, with an empty partition directory.
    let meta = MetaProperties::generate(1);
    meta.write(dir.path()).unwrap();
    fs::create_dir(dir.path().join(METADATA_PARTITION_DIR)).unwrap();
    let loaded = load(dir.path()).unwrap();
    assert!(loaded.image.is_empty());
    assert_eq!(loaded.meta, Some(meta));
    assert_eq!(loaded.next_offset, 0);
}

#[test]
fn topics_partitions_and_partition_changes() {
    let dir = tempdir();
    let (orders, events) = (id(1), id(2));
    let mut log = LogBuilder::new();
    log.leader_change(1, 3000);
    log.records(&bootstrap());
    log.records(&[
        topic("orders", orders),
        partition(orders, 0, &[1, 2], 1),
        partition(orders, 1, &[2, 1], 2),
        topic("events", events),
        partition(events, 0, &[1], 1),
    ]);
    // Leader change: leader epoch and partition epoch bump.
    let leader_change_at = log.records(&[change(orders, 0, |c| {
        c.leader = 2;
        c.isr = Some(vec![2]);
    })]);
    // ISR only: the leader epoch stays, the partition epoch bumps.
    log.records(&[change(orders, 0, |c| c.isr = Some(vec![2, 1]))]);
    // The same leader again still bumps the leader epoch (Kafka's way to force a bump).
    log.records(&[change(orders, 1, |c| c.leader = 2)]);
    // No leader, unclean recovery state, reassignment lists, directories and ELR.
    log.records(&[change(orders, 1, |c| {
        c.leader = NO_LEADER;
        c.leader_recovery_state = 1;
        c.replicas = Some(vec![2, 1, 3]);
        c.adding_replicas = Some(vec![3]);
        c.directories = Some(vec![id(7), id(8), id(9)]);
        c.eligible_leader_replicas = Some(vec![1]);
        c.last_known_elr = Some(vec![2]);
    })]);
    let paths = log.write(dir.path());
    assert_eq!(paths.len(), 1);

    let loaded = load(dir.path()).unwrap();
    let image = &loaded.image;
    assert_eq!(loaded.next_offset, log.next_offset);
    assert_eq!(loaded.last_epoch, 1);
    assert_eq!(image.last_offset(), log.next_offset - 1);
    assert_eq!(image.last_epoch(), 1);
    assert_eq!(image.metadata_version(), Some(21));
    let names: Vec<&str> = image.topics().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["events", "orders"]);
    assert_eq!(image.topic_count(), 2);

    let topic = image.topic("orders").unwrap();
    assert_eq!(topic.id, orders);
    assert_eq!(image.topic_by_id(&orders).unwrap().name, "orders");
    assert_eq!(image.topic_by_id(&events).unwrap().name, "events");
    assert!(image.topic("missing").is_none());
    assert_eq!(topic.partitions.len(), 2);

    let p0 = topic.partition(0).unwrap();
    assert_eq!(p0.replicas, [1, 2]);
    assert_eq!(p0.isr, [2, 1]);
    assert_eq!(p0.leader, 2);
    assert_eq!(p0.leader_epoch, 1);
    assert_eq!(p0.partition_epoch, 2);
    assert_eq!(p0.leader_recovery_state, LeaderRecoveryState::Recovered);
    assert_eq!(p0.directories, [DIRECTORY_MIGRATING; 2]);
    assert!(p0.eligible_leader_replicas.is_empty());

    let p1 = topic.partition(1).unwrap();
    assert_eq!(p1.leader, NO_LEADER);
    assert!(!p1.has_leader());
    assert_eq!(p1.leader_epoch, 2);
    assert_eq!(p1.partition_epoch, 2);
    assert_eq!(p1.leader_recovery_state, LeaderRecoveryState::Recovering);
    assert_eq!(p1.replicas, [2, 1, 3]);
    assert_eq!(p1.isr, [2, 1]); // unchanged: null in every change
    assert_eq!(p1.adding_replicas, [3]);
    assert!(p1.removing_replicas.is_empty());
    assert!(p1.is_reassigning());
    assert_eq!(p1.directories, [id(7), id(8), id(9)]);
    assert_eq!(p1.eligible_leader_replicas, [1]);
    assert_eq!(p1.last_known_elr, [2]);

    let e0 = image.partition(&events, 0).unwrap();
    assert_eq!((e0.leader, e0.leader_epoch, e0.partition_epoch), (1, 0, 0));
    assert!(leader_change_at > 0);
}

#[test]
fn partition_change_merge_follows_kafka() {
    let record = PartitionRecord {
        partition_id: 0,
        topic_id: id(1),
        replicas: vec![1, 2, 3],
        isr: vec![1, 2, 3],
        leader: 1,
        leader_epoch: 5,
        partition_epoch: 9,
        directories: vec![id(11), id(12), id(13)],
        ..Default::default()
    };
    let base = PartitionImage::from_record(&record).unwrap();
    // A record with every field at its "no change" default only bumps the partition epoch.
    let next = base.merge(&PartitionChangeRecord::default()).unwrap();
    assert_eq!(next.partition_epoch, 10);
    assert_eq!(
        PartitionImage {
            partition_epoch: 9,
            ..next.clone()
        },
        base
    );
    assert_eq!(NO_LEADER_CHANGE, PartitionChangeRecord::default().leader);
    // Recovery state -1 keeps the state; invalid values are rejected.
    let bad = |edit: fn(&mut PartitionChangeRecord)| {
        let mut change = PartitionChangeRecord::default();
        edit(&mut change);
        base.merge(&change).unwrap_err().0
    };
    assert_eq!(
        bad(|c| c.leader_recovery_state = 2),
        "leader recovery state"
    );
    assert_eq!(bad(|c| c.leader = -3), "leader");
    assert_eq!(
        bad(|c| {
            c.replicas = Some(vec![1, 2]);
            c.directories = Some(vec![id(1)]);
        }),
        "directories count"
    );
    // Invalid state in a PartitionRecord.
    let mut invalid = record.clone();
    invalid.leader_recovery_state = 3;
    assert!(PartitionImage::from_record(&invalid).is_none());
}

#[test]
fn removed_topics_disappear() {
    let dir = tempdir();
    let (old, new, kept) = (id(1), id(2), id(3));
    let mut log = LogBuilder::new();
    log.records(&bootstrap());
    log.records(&[
        topic("orders", old),
        partition(old, 0, &[1], 1),
        config(
            ConfigResource::TOPIC,
            "orders",
            "retention.ms",
            Some("1000"),
        ),
        topic("kept", kept),
        partition(kept, 0, &[2], 2),
        config(
            ConfigResource::TOPIC,
            "kept",
            "cleanup.policy",
            Some("compact"),
        ),
    ]);
    log.records(&[remove_topic(old)]);
    // The name is reused by a new topic with a new id.
    log.records(&[
        topic("orders", new),
        partition(new, 0, &[2], 2),
        partition(new, 1, &[1], 1),
    ]);
    log.write(dir.path());

    let image = load(dir.path()).unwrap().image;
    assert!(image.topic_by_id(&old).is_none());
    let orders = image.topic("orders").unwrap();
    assert_eq!(orders.id, new);
    assert_eq!(orders.partitions.len(), 2);
    assert_eq!(image.topic_count(), 2);
    // The removed topic's configs went with it; the other topic's stay.
    assert_eq!(image.topic_config("orders"), None);
    assert_eq!(
        image
            .topic_config("kept")
            .unwrap()
            .get("cleanup.policy")
            .map(String::as_str),
        Some("compact")
    );

    // Removing every topic.
    let mut log2 = LogBuilder::new();
    log2.records(&[topic("a", id(5)), remove_topic(id(5))]);
    let dir2 = tempdir();
    log2.write(dir2.path());
    let image = load(dir2.path()).unwrap().image;
    assert_eq!(image.topics().count(), 0);
    assert!(image.topic("a").is_none());
}

#[test]
fn features_configs_and_producer_ids() {
    let dir = tempdir();
    let mut log = LogBuilder::new();
    log.records(&bootstrap());
    log.records(&[
        feature("group.version", 1),
        feature("transaction.version", 2),
        feature(METADATA_VERSION_FEATURE, 22),
        config(
            ConfigResource::BROKER,
            "",
            "log.retention.ms",
            Some("60000"),
        ),
        config(
            ConfigResource::BROKER,
            "1",
            "log.cleaner.threads",
            Some("2"),
        ),
        config(ConfigResource::TOPIC, "t", "retention.ms", Some("1")),
        config(ConfigResource::TOPIC, "t", "segment.bytes", Some("1024")),
        config(ConfigResource::TOPIC, "u", "retention.ms", Some("5")),
        MetadataRecord::ProducerIds(ProducerIdsRecord {
            broker_id: 1,
            broker_epoch: 10,
            next_producer_id: 1000,
            ..Default::default()
        }),
    ]);
    log.records(&[
        feature("transaction.version", 0),
        config(ConfigResource::TOPIC, "t", "retention.ms", Some("2")),
        config(ConfigResource::TOPIC, "t", "segment.bytes", None),
        config(ConfigResource::TOPIC, "u", "retention.ms", None),
        config(ConfigResource::TOPIC, "u", "never.set", None),
        MetadataRecord::ProducerIds(ProducerIdsRecord {
            broker_id: 2,
            broker_epoch: 11,
            next_producer_id: 2000,
            ..Default::default()
        }),
    ]);
    log.write(dir.path());

    let image = load(dir.path()).unwrap().image;
    assert_eq!(image.metadata_version(), Some(22));
    assert_eq!(image.feature_level("group.version"), Some(1));
    assert_eq!(image.feature_level("transaction.version"), None);
    let features: Vec<(&str, i16)> = image.features().collect();
    assert_eq!(
        features,
        [("group.version", 1), (METADATA_VERSION_FEATURE, 22)]
    );

    let t = image.topic_config("t").unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t["retention.ms"], "2");
    assert_eq!(
        image.topic_config("u"),
        None,
        "a resource without keys is gone"
    );
    assert_eq!(
        image.cluster_broker_config().unwrap()["log.retention.ms"],
        "60000"
    );
    assert_eq!(image.broker_config(1).unwrap()["log.cleaner.threads"], "2");
    assert_eq!(image.broker_config(2), None);
    assert_eq!(image.configs().len(), 3);
    assert_eq!(image.next_producer_id(), Some(2000));
}

#[test]
fn broker_registrations() {
    let dir = tempdir();
    let mut log = LogBuilder::new();
    log.records(&bootstrap());
    log.records(&[
        register_broker(3, 12, Some("rack-c")),
        MetadataRecord::UnfenceBroker(UnfenceBrokerRecord {
            id: 1,
            epoch: 10,
            ..Default::default()
        }),
        MetadataRecord::UnfenceBroker(UnfenceBrokerRecord {
            id: 2,
            epoch: 11,
            ..Default::default()
        }),
        MetadataRecord::FenceBroker(FenceBrokerRecord {
            id: 2,
            epoch: 11,
            ..Default::default()
        }),
        MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
            broker_id: 3,
            broker_epoch: 12,
            fenced: -1,
            in_controlled_shutdown: 1,
            log_dirs: vec![id(77)],
            ..Default::default()
        }),
        MetadataRecord::UnregisterBroker(UnregisterBrokerRecord {
            broker_id: 1,
            broker_epoch: 10,
            ..Default::default()
        }),
        MetadataRecord::RegisterController(RegisterControllerRecord {
            controller_id: 3000,
            incarnation_id: id(3000),
            ..Default::default()
        }),
    ]);
    // Broker 1 comes back with a new epoch.
    log.records(&[register_broker(1, 20, None)]);
    log.write(dir.path());

    let image = load(dir.path()).unwrap().image;
    let ids: Vec<i32> = image.brokers().keys().copied().collect();
    assert_eq!(ids, [1, 2, 3]);
    let b1 = image.broker(1).unwrap();
    assert_eq!(b1.epoch, 20);
    assert!(b1.fenced, "a new registration starts fenced");
    assert_eq!(b1.rack, None);
    let b2 = image.broker(2).unwrap();
    assert!(b2.fenced);
    let endpoint = b2.endpoint("PLAINTEXT").unwrap();
    assert_eq!(
        (endpoint.host.as_str(), endpoint.port),
        ("broker2.example", 9092)
    );
    assert!(b2.endpoint("SSL").is_none());
    let b3 = image.broker(3).unwrap();
    assert!(!b3.fenced);
    assert!(b3.in_controlled_shutdown);
    assert_eq!(b3.rack.as_deref(), Some("rack-c"));
    assert_eq!(b3.directories, [id(77)]);
    assert_eq!(b3.incarnation_id, id(1003));
    let mv = b3.supported_features[METADATA_VERSION_FEATURE];
    assert_eq!((mv.min, mv.max), (7, 27));
    assert_eq!(image.controllers()[&3000].incarnation_id, id(3000));
    assert!(!image.is_broker_alive(1) && !image.is_broker_alive(2));
    assert!(image.is_broker_alive(3));
    assert!(!image.is_broker_alive(9));

    // Fencing with a stale epoch is an error naming the offset, as in Kafka.
    let mut image = image;
    let before = image.broker(1).unwrap().clone();
    let err = image
        .apply(
            500,
            &MetadataRecord::FenceBroker(FenceBrokerRecord {
                id: 1,
                epoch: 10,
                ..Default::default()
            }),
        )
        .unwrap_err();
    assert_eq!(
        err,
        ImageError::BrokerEpochMismatch {
            offset: 500,
            record: "FenceBrokerRecord",
            broker_id: 1,
            epoch: 10,
            registered: 20,
        }
    );
    assert_eq!(image.broker(1), Some(&before));
    let err = image
        .apply(
            501,
            &MetadataRecord::UnfenceBroker(UnfenceBrokerRecord {
                id: 9,
                epoch: 1,
                ..Default::default()
            }),
        )
        .unwrap_err();
    assert!(matches!(
        err,
        ImageError::UnknownBroker {
            offset: 501,
            broker_id: 9,
            ..
        }
    ));
    assert!(err.to_string().contains("offset 501"));
}

#[test]
fn transactions_committed_aborted_and_unfinished() {
    let dir = tempdir();
    let (a, b, c) = (id(1), id(2), id(3));
    let mut log = LogBuilder::new();
    log.records(&bootstrap());
    // Committed, spread over several batches.
    log.records(&[begin(), topic("a", a)]);
    log.records(&[partition(a, 0, &[1], 1)]);
    let committed_end = log.records(&[end()]);
    // Aborted.
    log.records(&[begin(), topic("b", b), partition(b, 0, &[1], 1), abort()]);
    // Unfinished at the end of the log.
    log.records(&[topic("after", id(9))]);
    let open_begin = log.records(&[begin(), topic("c", c)]);
    log.records(&[partition(c, 0, &[1], 1)]);
    log.write(dir.path());

    let loaded = load(dir.path()).unwrap();
    let image = &loaded.image;
    assert_eq!(image.topic("a").unwrap().partitions.len(), 1);
    assert!(image.topic("b").is_none());
    assert!(image.topic_by_id(&b).is_none());
    assert!(image.topic("c").is_none());
    assert!(image.topic("after").is_some());
    assert_eq!(image.pending_transaction(), None);
    assert_eq!(loaded.discarded_transaction, Some(open_begin));
    // The image ends at the last record outside the open transaction.
    assert_eq!(image.last_offset(), open_begin - 1);
    assert_eq!(loaded.next_offset, log.next_offset);
    assert!(committed_end < open_begin);
}

#[test]
fn transactions_apply_all_or_nothing() {
    let mut image = MetadataImage::empty();
    image.apply_with_epoch(0, 4, &topic("a", id(1))).unwrap();
    image.apply(1, &begin()).unwrap();
    assert_eq!(image.pending_transaction(), Some(1));
    image.apply(2, &partition(id(1), 0, &[1], 1)).unwrap();
    // Buffered: not visible yet, and the image is still at offset 0.
    assert!(image.topic("a").unwrap().partitions.is_empty());
    assert_eq!(image.last_offset(), 0);
    // A record that cannot be applied makes the whole transaction fail at its end.
    image.apply(3, &partition(id(99), 0, &[1], 1)).unwrap();
    let err = image.apply(4, &end()).unwrap_err();
    assert_eq!(err.offset(), 3);
    assert!(image.topic("a").unwrap().partitions.is_empty());
    assert_eq!(image.pending_transaction(), Some(1));
    image.apply(5, &abort()).unwrap();
    assert_eq!(image.pending_transaction(), None);
    assert_eq!(image.last_offset(), 5);
    assert_eq!(image.last_epoch(), 4);

    // Markers out of order.
    assert!(matches!(
        image.apply(6, &end()),
        Err(ImageError::Transaction { offset: 6, .. })
    ));
    assert!(matches!(
        image.apply(7, &abort()),
        Err(ImageError::Transaction { offset: 7, .. })
    ));
    image.apply(8, &begin()).unwrap();
    assert!(matches!(
        image.apply(9, &begin()),
        Err(ImageError::Transaction { offset: 9, .. })
    ));
    image.apply(10, &partition(id(1), 0, &[1], 1)).unwrap();
    image.apply_with_epoch(11, 5, &end()).unwrap();
    assert_eq!(image.topic("a").unwrap().partitions.len(), 1);
    assert_eq!((image.last_offset(), image.last_epoch()), (11, 5));
}

#[test]
fn snapshot_then_log() {
    let dir = tempdir();
    let t = id(1);
    // The log from offset 0: the snapshot covers offsets 0..7.
    let mut log = LogBuilder::new();
    log.leader_change(1, 3000); // 0
    log.records(&bootstrap()); // 1..=3
    log.records(&[topic("t", t), partition(t, 0, &[1, 2], 1)]); // 4..=5
    // A batch straddling the snapshot end: offset 6 is in the snapshot, 7 is not.
    log.records(&[
        change(t, 0, |c| c.leader = 2),
        change(t, 0, |c| c.isr = Some(vec![2])),
    ]); // 6..=7
    log.roll();
    log.leader_change(2, 3001); // 8
    log.records(&[change(t, 0, |c| c.leader = 1), topic("later", id(2))]); // 9..=10
    log.write(dir.path());

    // The snapshot holds the state after offset 6 (not exactly what the log says, to tell
    // which one was used).
    let snapshot_id = SnapshotId {
        end_offset: 7,
        epoch: 1,
    };
    let snapshot_records = vec![
        feature(METADATA_VERSION_FEATURE, 21),
        register_broker(1, 10, Some("rack-a")),
        register_broker(2, 11, None),
        topic("t", t),
        MetadataRecord::Partition(PartitionRecord {
            partition_id: 0,
            topic_id: t,
            replicas: vec![1, 2],
            isr: vec![1, 2],
            leader: 2,
            leader_epoch: 1,
            partition_epoch: 1,
            ..Default::default()
        }),
        topic("only-in-snapshot", id(3)),
    ];
    write_snapshot(dir.path(), snapshot_id, &snapshot_records);
    // An older snapshot that must be ignored, and a partial one Kafka left behind.
    write_snapshot(
        dir.path(),
        SnapshotId {
            end_offset: 4,
            epoch: 1,
        },
        &[topic("old-snapshot", id(4))],
    );
    let part = LogBuilder::partition_dir(dir.path()).join(format!(
        "{}.part",
        SnapshotId {
            end_offset: 9,
            epoch: 2
        }
        .file_name()
    ));
    fs::write(part, b"garbage").unwrap();

    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.snapshot, Some(snapshot_id));
    let image = &loaded.image;
    assert!(image.topic("only-in-snapshot").is_some());
    assert!(image.topic("old-snapshot").is_none());
    assert!(image.topic("later").is_some());
    let p = image.topic("t").unwrap().partition(0).unwrap();
    // Snapshot (leader 2, epochs 1/1), then offset 7 (ISR: partition epoch 2), then
    // offset 9 (leader 1: leader epoch 2, partition epoch 3). Offset 6 was not re-applied.
    assert_eq!(p.leader, 1);
    assert_eq!(p.isr, [2]);
    assert_eq!(p.leader_epoch, 2);
    assert_eq!(p.partition_epoch, 3);
    assert_eq!(loaded.next_offset, 11);
    assert_eq!(loaded.last_epoch, 2);
    assert_eq!(image.last_offset(), 10);
    assert_eq!(image.last_epoch(), 2);
}

#[test]
fn snapshot_alone_and_segments_below_it() {
    let dir = tempdir();
    let t = id(1);
    // Segments wholly below the snapshot are not even read: make the first one garbage.
    let mut log = LogBuilder::new();
    log.records(&bootstrap()); // 0..=2
    log.roll();
    log.records(&[topic("t", t)]); // 3
    let paths = log.write(dir.path());
    fs::write(&paths[0], vec![0xAB; 100]).unwrap();
    let id20 = SnapshotId {
        end_offset: 20,
        epoch: 3,
    };
    write_snapshot(dir.path(), id20, &[topic("s", id(5))]);
    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.next_offset, 20);
    assert_eq!(loaded.last_epoch, 3);
    assert_eq!(loaded.image.last_offset(), 19);
    assert!(loaded.image.topic("s").is_some());
    assert!(loaded.image.topic("t").is_none());

    // A snapshot and no log at all.
    let dir = tempdir();
    write_snapshot(dir.path(), id20, &bootstrap());
    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.next_offset, 20);
    assert_eq!(loaded.image.brokers().len(), 2);
}

#[test]
fn invalid_snapshots_are_errors() {
    let id = SnapshotId {
        end_offset: 3,
        epoch: 1,
    };
    // No footer.
    let dir = tempdir();
    let path = write_snapshot(dir.path(), id, &bootstrap());
    let bytes = fs::read(&path).unwrap();
    let footer = control_batch(
        5,
        1,
        &[(
            ControlRecordType::SnapshotFooter,
            SnapshotFooterRecord::default().to_bytes(0).unwrap(),
        )],
    );
    fs::write(&path, &bytes[..bytes.len() - footer.len()]).unwrap();
    match load(dir.path()) {
        Err(ReplayError::Malformed {
            path: p, reason, ..
        }) => {
            assert_eq!(p, path);
            assert!(reason.contains("SnapshotFooterRecord"), "{reason}");
        }
        other => panic!("expected a malformed snapshot, got {other:?}"),
    }
    // No header: data first.
    let dir = tempdir();
    let path = LogBuilder::partition_dir(dir.path()).join(id.file_name());
    fs::write(&path, data_batch(0, 1, &bootstrap())).unwrap();
    match load(dir.path()) {
        Err(ReplayError::Malformed { reason, .. }) => {
            assert!(reason.contains("SnapshotHeaderRecord"), "{reason}")
        }
        other => panic!("expected a malformed snapshot, got {other:?}"),
    }
    // A torn snapshot is corruption, not a torn log tail.
    let dir = tempdir();
    let path = write_snapshot(dir.path(), id, &bootstrap());
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    assert!(matches!(
        load(dir.path()),
        Err(ReplayError::Malformed { .. })
    ));
}

#[test]
fn multiple_segments_and_control_batches() {
    let dir = tempdir();
    let mut log = LogBuilder::new();
    log.leader_change(1, 3000);
    log.records(&bootstrap());
    log.records(&[topic("a", id(1))]);
    log.roll();
    log.records(&[topic("b", id(2))]);
    log.leader_change(4, 3001);
    log.roll();
    log.records(&[topic("c", id(3)), partition(id(3), 0, &[1], 1)]);
    // A control batch last: it counts for the next offset and the epoch.
    log.leader_change(7, 3002);
    let last_control = log.next_offset - 1;
    let paths = log.write(dir.path());
    assert_eq!(paths.len(), 3);

    let loaded = load(dir.path()).unwrap();
    let names: Vec<&str> = loaded.image.topics().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(loaded.next_offset, last_control + 1);
    assert_eq!(loaded.last_epoch, 7);
    // The image stops at the last metadata record; its epoch is that record's batch's.
    assert_eq!(loaded.image.last_offset(), last_control - 1);
    assert_eq!(loaded.image.last_epoch(), 4);
    assert_eq!(loaded.truncate_at, None);
}

#[test]
fn torn_tail_is_tolerated() {
    // A partial batch at the end of the last segment.
    let dir = tempdir();
    let mut log = LogBuilder::new();
    log.records(&bootstrap());
    log.roll();
    log.records(&[topic("a", id(1))]);
    let good_len = log.segments.last().unwrap().1.len();
    log.records(&[topic("torn", id(2))]);
    let paths = log.write(dir.path());
    let last = paths.last().unwrap();
    let bytes = fs::read(last).unwrap();
    fs::write(last, &bytes[..bytes.len() - 5]).unwrap();
    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.truncate_at, Some((last.clone(), good_len as u64)));
    assert!(loaded.image.topic("a").is_some());
    assert!(loaded.image.topic("torn").is_none());
    assert_eq!(loaded.next_offset, 4);

    // A complete last batch with a bad CRC (a torn write inside the batch).
    let mut corrupt = bytes.clone();
    let at = corrupt.len() - 2;
    corrupt[at] ^= 0xFF;
    fs::write(last, &corrupt).unwrap();
    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.truncate_at, Some((last.clone(), good_len as u64)));
    assert!(loaded.image.topic("torn").is_none());

    // A zero-filled tail.
    let mut zeros = bytes[..good_len].to_vec();
    zeros.extend_from_slice(&[0; 4096]);
    fs::write(last, &zeros).unwrap();
    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.truncate_at, Some((last.clone(), good_len as u64)));
    assert_eq!(loaded.next_offset, 4);

    // A last batch whose magic byte was torn to that of an old message format.
    let mut legacy = bytes.clone();
    legacy[good_len + 16] = 1;
    fs::write(last, &legacy).unwrap();
    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.truncate_at, Some((last.clone(), good_len as u64)));

    // Just a few bytes of a header.
    let mut stub = bytes[..good_len].to_vec();
    stub.extend_from_slice(&bytes[good_len..good_len + 7]);
    fs::write(last, &stub).unwrap();
    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.truncate_at, Some((last.clone(), good_len as u64)));
}

#[test]
fn corrupt_middle_batch_is_an_error() {
    let dir = tempdir();
    let mut log = LogBuilder::new();
    log.records(&bootstrap());
    log.records(&[topic("a", id(1))]);
    log.records(&[topic("b", id(2))]);
    let paths = log.write(dir.path());
    let path = &paths[0];
    let positions = log.segments[0].2.clone();
    let mut bytes = fs::read(path).unwrap();
    // Flip a byte inside the second batch's records.
    let at = positions[2] - 3;
    bytes[at] ^= 0x55;
    fs::write(path, &bytes).unwrap();
    match load(dir.path()) {
        Err(ReplayError::Corrupt {
            path: p,
            position,
            source,
        }) => {
            assert_eq!(&p, path);
            assert_eq!(position, positions[1] as u64);
            assert!(
                matches!(source, RecordsError::CrcMismatch { .. }),
                "{source:?}"
            );
        }
        other => panic!("expected corruption, got {other:?}"),
    }

    // A torn tail in a segment that is not the last is corruption too.
    let dir = tempdir();
    let mut log = LogBuilder::new();
    log.records(&bootstrap());
    log.roll();
    log.records(&[topic("a", id(1))]);
    let paths = log.write(dir.path());
    let bytes = fs::read(&paths[0]).unwrap();
    fs::write(&paths[0], &bytes[..bytes.len() - 1]).unwrap();
    match load(dir.path()) {
        Err(ReplayError::Malformed { path, position, .. }) => {
            assert_eq!(path, paths[0]);
            assert_eq!(position, 0);
        }
        other => panic!("expected an error, got {other:?}"),
    }
    let mut flipped = bytes.clone();
    let at = flipped.len() - 1;
    flipped[at] ^= 1;
    fs::write(&paths[0], &flipped).unwrap();
    assert!(matches!(load(dir.path()), Err(ReplayError::Corrupt { .. })));

    // A bad header followed by more data in the last segment.
    let dir = tempdir();
    let mut log = LogBuilder::new();
    log.records(&bootstrap());
    log.records(&[topic("a", id(1))]);
    let paths = log.write(dir.path());
    let mut bytes = fs::read(&paths[0]).unwrap();
    bytes[16] = 7; // magic of the first batch
    fs::write(&paths[0], &bytes).unwrap();
    match load(dir.path()) {
        Err(ReplayError::Corrupt {
            position, source, ..
        }) => {
            assert_eq!(position, 0);
            assert!(matches!(source, RecordsError::BadMagic { magic: 7, .. }));
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn missing_and_overlapping_offsets_are_errors() {
    // A log that starts past offset 0 without a snapshot.
    let dir = tempdir();
    let mut log = LogBuilder::starting_at(10);
    log.records(&bootstrap());
    log.write(dir.path());
    match load(dir.path()) {
        Err(ReplayError::Malformed { reason, .. }) => {
            assert!(reason.contains("no snapshot"), "{reason}")
        }
        other => panic!("expected an error, got {other:?}"),
    }
    // Two segments that overlap.
    let dir = tempdir();
    let mut log = LogBuilder::new();
    log.records(&bootstrap());
    log.write(dir.path());
    let mut again = LogBuilder::starting_at(1);
    again.records(&[topic("a", id(1))]);
    again.write(dir.path());
    match load(dir.path()) {
        Err(ReplayError::Malformed { reason, .. }) => {
            assert!(reason.contains("overlaps"), "{reason}")
        }
        other => panic!("expected an overlap, got {other:?}"),
    }
}

#[test]
fn unknown_record_types_are_errors() {
    let dir = tempdir();
    let mut log = LogBuilder::new();
    log.records(&bootstrap());
    // Frame version 1, record type 99, version 0, empty body.
    let unknown = data_batch_values(
        3,
        1,
        vec![framed(&topic("x", id(1))), Bytes::from_static(&[1, 99, 0])],
    );
    log.push(unknown, 2);
    let paths = log.write(dir.path());
    match load(dir.path()) {
        Err(e @ ReplayError::UnknownRecordType { .. }) => {
            let ReplayError::UnknownRecordType {
                path,
                offset,
                record_type,
                ..
            } = &e
            else {
                unreachable!()
            };
            assert_eq!(path, &paths[0]);
            assert_eq!((*offset, *record_type), (4, 99));
            assert!(e.to_string().contains("offset 4"), "{e}");
        }
        other => panic!("expected an unknown record type, got {other:?}"),
    }

    // An undecodable record and a null value.
    let dir = tempdir();
    let mut log = LogBuilder::new();
    log.push(
        data_batch_values(0, 1, vec![Bytes::from_static(&[1, 2, 0, 0xFF])]),
        1,
    );
    log.write(dir.path());
    assert!(matches!(
        load(dir.path()),
        Err(ReplayError::Decode { offset: 0, .. })
    ));
    let dir = tempdir();
    let mut log = LogBuilder::new();
    let batch = RecordBatchBuilder::new()
        .build(&[NewRecord::new(TIMESTAMP, None, None)])
        .unwrap();
    log.push(batch, 1);
    log.write(dir.path());
    assert!(matches!(
        load(dir.path()),
        Err(ReplayError::Malformed { .. })
    ));
}

#[test]
fn ignored_record_types_are_no_ops() {
    let dir = tempdir();
    let mut log = LogBuilder::new();
    log.records(&bootstrap());
    log.records(&[
        MetadataRecord::AccessControlEntry(AccessControlEntryRecord::default()),
        MetadataRecord::ClientQuota(ClientQuotaRecord::default()),
        MetadataRecord::UserScramCredential(UserScramCredentialRecord::default()),
        MetadataRecord::DelegationToken(DelegationTokenRecord::default()),
        MetadataRecord::ZkMigrationState(ZkMigrationStateRecord::default()),
        MetadataRecord::NoOp(NoOpRecord::default()),
    ]);
    log.write(dir.path());
    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.image.last_offset(), 8);
    assert_eq!(loaded.image.topic_count(), 0);
    assert_eq!(loaded.image.brokers().len(), 2);
}

#[test]
fn records_for_unknown_things_fail_with_their_offset() {
    let dir = tempdir();
    let t = id(1);
    let mut log = LogBuilder::new();
    log.records(&bootstrap());
    log.records(&[topic("t", t), partition(t, 0, &[1], 1)]);
    log.records(&[change(t, 5, |c| c.leader = 1)]);
    let paths = log.write(dir.path());
    match load(dir.path()) {
        Err(ReplayError::Apply { path, source, .. }) => {
            assert_eq!(path, paths[0]);
            assert_eq!(
                source,
                ImageError::UnknownPartition {
                    offset: 5,
                    record: "PartitionChangeRecord",
                    topic_id: t,
                    partition: 5,
                }
            );
        }
        other => panic!("expected an apply error, got {other:?}"),
    }

    let mut image = MetadataImage::empty();
    let err = image.apply(3, &partition(t, 0, &[1], 1)).unwrap_err();
    assert!(matches!(err, ImageError::UnknownTopicId { offset: 3, .. }));
    let err = image.apply(4, &remove_topic(t)).unwrap_err();
    assert!(matches!(err, ImageError::UnknownTopicId { offset: 4, .. }));
    let err = image
        .apply(5, &feature(METADATA_VERSION_FEATURE, 0))
        .unwrap_err();
    assert!(matches!(err, ImageError::InvalidValue { offset: 5, .. }));
    let err = image
        .apply(
            6,
            &MetadataRecord::ClearElr(ClearElrRecord {
                topic_name: "nope".to_string().into(),
                ..Default::default()
            }),
        )
        .unwrap_err();
    assert!(matches!(
        err,
        ImageError::UnknownTopicName { offset: 6, .. }
    ));
    assert!(image.is_empty());
    assert_eq!(image.last_offset(), -1);
}

#[test]
fn clear_elr() {
    let mut image = MetadataImage::empty();
    let (a, b) = (id(1), id(2));
    let records = [
        topic("a", a),
        partition(a, 0, &[1, 2], 1),
        partition(a, 1, &[1, 2], 1),
        topic("b", b),
        partition(b, 0, &[1, 2], 1),
        change(a, 0, |c| c.eligible_leader_replicas = Some(vec![2])),
        change(b, 0, |c| c.last_known_elr = Some(vec![2])),
    ];
    for (offset, record) in records.iter().enumerate() {
        image.apply(offset as i64, record).unwrap();
    }
    let clear = |name: &str| {
        MetadataRecord::ClearElr(ClearElrRecord {
            topic_name: name.to_string().into(),
            ..Default::default()
        })
    };
    image.apply(10, &clear("a")).unwrap();
    let pa = image.partition(&a, 0).unwrap();
    assert!(pa.eligible_leader_replicas.is_empty());
    assert_eq!(pa.partition_epoch, 2);
    // A partition without ELR is untouched.
    assert_eq!(image.partition(&a, 1).unwrap().partition_epoch, 0);
    assert_eq!(image.partition(&b, 0).unwrap().last_known_elr, [2]);
    image.apply(11, &clear("")).unwrap();
    let pb = image.partition(&b, 0).unwrap();
    assert!(pb.last_known_elr.is_empty());
    assert_eq!(pb.partition_epoch, 2);
}

#[test]
fn clones_are_copy_on_write() {
    let mut image = MetadataImage::empty();
    let t = id(1);
    for (offset, record) in [topic("t", t), partition(t, 0, &[1], 1), topic("u", id(2))]
        .iter()
        .enumerate()
    {
        image.apply(offset as i64, record).unwrap();
    }
    let published = image.clone();
    let untouched = published.topic_arc("u").unwrap();
    let mut next = published.clone();
    next.apply(3, &change(t, 0, |c| c.leader = NO_LEADER))
        .unwrap();
    next.apply(4, &feature("group.version", 1)).unwrap();
    // The published image did not change...
    assert_eq!(published.partition(&t, 0).unwrap().leader, 1);
    assert_eq!(published.feature_level("group.version"), None);
    assert_eq!(published.last_offset(), 2);
    // ...the new one did, and shares the topics it did not touch.
    assert_eq!(next.partition(&t, 0).unwrap().leader, NO_LEADER);
    assert_eq!(next.last_offset(), 4);
    assert!(std::sync::Arc::ptr_eq(
        &untouched,
        &next.topic_arc("u").unwrap()
    ));
    assert!(!std::sync::Arc::ptr_eq(
        &published.topic_arc("t").unwrap(),
        &next.topic_arc("t").unwrap()
    ));
}

#[test]
fn file_names() {
    let id = SnapshotId {
        end_offset: 4096,
        epoch: 3,
    };
    assert_eq!(id.file_name(), "00000000000000004096-0000000003.checkpoint");
    assert_eq!(SnapshotId::from_file_name(&id.file_name()), Some(id));
    assert_eq!(
        SnapshotId::from_file_name("00000000000000004096-0000000003.checkpoint.part"),
        None
    );
    assert_eq!(SnapshotId::from_file_name("bootstrap.checkpoint"), None);
    assert_eq!(segment_file_name(5000), "00000000000000005000.log");
    assert_eq!(
        replay::parse_segment_file_name("00000000000000005000.log"),
        Some(5000)
    );
    assert_eq!(
        replay::parse_segment_file_name("00000000000000005000.index"),
        None
    );
    assert_eq!(replay::parse_segment_file_name("5000.log"), None);
}

/// The reserved directory ids are Kafka's `DirectoryId` values, as its tools print them: a
/// record written before directory assignment (all zeros) must read as MIGRATING.
#[test]
fn reserved_directory_ids_are_kafkas() {
    use super::image::{DIRECTORY_LOST, DIRECTORY_UNASSIGNED};
    use super::meta_properties::uuid_to_base64;
    assert_eq!(
        uuid_to_base64(DIRECTORY_MIGRATING),
        "AAAAAAAAAAAAAAAAAAAAAA"
    );
    assert_eq!(
        uuid_to_base64(DIRECTORY_UNASSIGNED),
        "AAAAAAAAAAAAAAAAAAAAAQ"
    );
    assert_eq!(uuid_to_base64(DIRECTORY_LOST), "AAAAAAAAAAAAAAAAAAAAAg");
}
