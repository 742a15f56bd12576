//! [`DataDir`]: a temporary log directory in Kafka's own layout, written with
//! gregor-protocol's encoders, as a Kafka 4.1 broker (combined broker and controller,
//! KRaft) leaves it after a clean shutdown:
//!
//! ```text
//! <dir>/meta.properties                      version=1, cluster.id, node.id, directory.id
//! <dir>/recovery-point-offset-checkpoint      (and log-start-, replication-offset-)
//! <dir>/__cluster_metadata-0/00000000000000000000.log
//!        control batch (LeaderChangeMessage), then metadata record batches: features,
//!        broker registration, unfencing, one batch per topic (TopicRecord,
//!        PartitionRecords, ConfigRecords), a NoOpRecord
//! <dir>/<topic>-<p>/partition.metadata, leader-epoch-checkpoint,
//!        <20-digit base offset>.log segments of record batches
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use gregor_protocol::messages::config_record::ConfigRecord;
use gregor_protocol::messages::feature_level_record::FeatureLevelRecord;
use gregor_protocol::messages::leader_change_message::{LeaderChangeMessage, Voter};
use gregor_protocol::messages::no_op_record::NoOpRecord;
use gregor_protocol::messages::partition_record::PartitionRecord;
use gregor_protocol::messages::register_broker_record::{
    BrokerEndpoint, BrokerFeature, RegisterBrokerRecord,
};
use gregor_protocol::messages::topic_record::TopicRecord;
use gregor_protocol::messages::unfence_broker_record::UnfenceBrokerRecord;
use gregor_protocol::records::{
    Compression, ControlRecordKey, ControlRecordType, Header, NewRecord, RecordBatchBuilder,
};
use gregor_protocol::{Encodable, MetadataRecord, Uuid};
use tempfile::TempDir;

/// `metadata.version` written to the metadata log: 27 is 4.1-IV1, the latest production
/// level of Kafka 4.1 (3.9-IV0 is 21, 4.0-IV3 is 25, 4.2-IV1 is 29).
pub const METADATA_VERSION: i16 = 27;

/// Timestamp (ms) of the first record the default generator writes (2025-01-01T00:00Z).
pub const BASE_TIMESTAMP: i64 = 1_735_689_600_000;

/// Leader epoch of the KRaft quorum in the metadata log (`partitionLeaderEpoch` of its
/// batches).
pub const METADATA_LEADER_EPOCH: i32 = 1;

/// Config resource type of a topic in a `ConfigRecord`.
const TOPIC_RESOURCE: i8 = 2;
/// Config resource type of a broker in a `ConfigRecord`.
const BROKER_RESOURCE: i8 = 4;
/// `PLAINTEXT` security protocol id.
const PLAINTEXT: i16 = 0;

/// A new random id as Kafka makes them (`Uuid.randomUuid()`): never the reserved all-zero
/// or "one" ids, and never one whose base64 form starts with `-` (awkward on command lines).
pub fn random_uuid() -> Uuid {
    loop {
        let id = Uuid::new_v4();
        if id.as_u128() > 1 && !kafka_uuid_string(id).starts_with('-') {
            return id;
        }
    }
}

/// A Kafka id as Kafka prints it: the 16 bytes in URL-safe base64 without padding (22
/// characters), as in `meta.properties` and `partition.metadata`.
pub fn kafka_uuid_string(id: Uuid) -> String {
    gregor_protocol::uuid_text::to_text(&id)
}

/// The record the default generator writes at index `i` of a partition: a key (null every
/// tenth record), a value of varied length and pseudo-random content (so compression does
/// not erase it; null every 97th record), and 0 to 4 headers (some with empty or null
/// values). Keys, values and header keys are printable ASCII without spaces.
pub fn sample_record(topic: &str, partition: i32, i: usize) -> NewRecord {
    let key = (i % 10 != 9).then(|| Bytes::from(format!("{topic}-{partition}-key-{i}")));
    let value = (i % 97 != 13).then(|| {
        let mut state = (u64::from(partition.unsigned_abs()) << 32) ^ (i as u64) ^ 0x9e37_79b9;
        let len = 16 + (splitmix(&mut state) % 180) as usize;
        let mut value = format!("v{partition}.{i}:");
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        while value.len() < len {
            let r = splitmix(&mut state);
            value.push(char::from(CHARS[(r % CHARS.len() as u64) as usize]));
        }
        Bytes::from(value)
    });
    let mut headers = Vec::new();
    match i % 4 {
        0 => {}
        1 => headers.push(Header::new("seq", Some(Bytes::from(i.to_string())))),
        2 => {
            headers.push(Header::new("seq", Some(Bytes::from(i.to_string()))));
            headers.push(Header::new(
                "origin",
                Some(Bytes::from_static(b"gregor-tests")),
            ));
        }
        _ => {
            headers.push(Header::new("empty", Some(Bytes::new())));
            headers.push(Header::new("seq", Some(Bytes::from(i.to_string()))));
            headers.push(Header::new("seq", Some(Bytes::from(format!("{i}-again")))));
        }
    }
    if i % 11 == 5 {
        headers.push(Header::new("null", None));
    }
    NewRecord {
        timestamp: BASE_TIMESTAMP + i as i64 * 10,
        key,
        value,
        headers,
    }
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Makes the records of a partition: `(partition, index) -> record`.
pub type RecordGenerator = Box<dyn Fn(i32, usize) -> NewRecord>;

/// One topic to write: its partitions, their records and how they are cut into batches
/// and segments.
pub struct TopicSpec {
    name: String,
    id: Option<Uuid>,
    partitions: i32,
    records: Vec<usize>,
    batch_records: usize,
    segment_bytes: usize,
    segment_batches: Option<usize>,
    codecs: BTreeMap<i32, Vec<Compression>>,
    default_codecs: Vec<Compression>,
    configs: Vec<(String, String)>,
    generator: Option<RecordGenerator>,
    first_offset: i64,
    first_segment_base: i64,
    leader_epochs: Vec<(i32, i64)>,
    leader_epoch: Option<i32>,
}

impl fmt::Debug for TopicSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicSpec")
            .field("name", &self.name)
            .field("partitions", &self.partitions)
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

impl TopicSpec {
    /// A topic with `partitions` empty partitions, 100 records a batch, 1 MiB segments,
    /// uncompressed, with the [`sample_record`] generator.
    pub fn new(name: &str, partitions: i32) -> TopicSpec {
        TopicSpec {
            name: name.to_string(),
            id: None,
            partitions,
            records: vec![0; partitions.max(0) as usize],
            batch_records: 100,
            segment_bytes: 1 << 20,
            segment_batches: None,
            codecs: BTreeMap::new(),
            default_codecs: vec![Compression::None],
            configs: Vec::new(),
            generator: None,
            first_offset: 0,
            first_segment_base: 0,
            leader_epochs: vec![(0, 0)],
            leader_epoch: None,
        }
    }

    /// Gives the first record of every partition offset `offset` instead of 0, in a first
    /// segment still named `00000000000000000000.log` (as compaction leaves a segment whose
    /// first records were removed, and as the "Build your own Kafka" course writes logs);
    /// see [`Self::first_segment_base`].
    pub fn first_offset(mut self, offset: i64) -> Self {
        assert!(offset >= 0, "a first offset of at least 0");
        self.first_offset = offset;
        self
    }

    /// Names the first segment of every partition after `base` (at most the first offset):
    /// a log whose older segments were deleted by retention. The log start offset
    /// checkpoint says `base` too.
    pub fn first_segment_base(mut self, base: i64) -> Self {
        self.first_segment_base = base;
        self
    }

    /// Uses this topic id instead of a random one.
    pub fn id(mut self, id: Uuid) -> Self {
        self.id = Some(id);
        self
    }

    /// Writes `count` records to every partition.
    pub fn records(mut self, count: usize) -> Self {
        self.records.iter_mut().for_each(|n| *n = count);
        self
    }

    /// Writes `count` records to `partition`.
    pub fn partition_records(mut self, partition: i32, count: usize) -> Self {
        self.records[partition as usize] = count;
        self
    }

    /// Puts up to `count` records in each batch (at least 1).
    pub fn batch_records(mut self, count: usize) -> Self {
        self.batch_records = count.max(1);
        self
    }

    /// Rolls a new segment before a batch that would take the segment past `bytes`
    /// (Kafka's `segment.bytes`; a segment always takes at least one batch).
    pub fn segment_bytes(mut self, bytes: usize) -> Self {
        self.segment_bytes = bytes;
        self
    }

    /// Also rolls a new segment after every `batches` batches.
    pub fn segment_batches(mut self, batches: usize) -> Self {
        self.segment_batches = Some(batches.max(1));
        self
    }

    /// Compresses every partition's batches with `codec`.
    pub fn compression(mut self, codec: Compression) -> Self {
        self.default_codecs = vec![codec];
        self
    }

    /// Compresses the batches of `partition` with `codecs` in turn (batch 0 with the first,
    /// batch 1 with the second, ...), so one partition can mix codecs.
    pub fn partition_compression(mut self, partition: i32, codecs: &[Compression]) -> Self {
        assert!(!codecs.is_empty(), "at least one codec");
        self.codecs.insert(partition, codecs.to_vec());
        self
    }

    /// Adds a topic config (a `ConfigRecord` in the metadata log).
    pub fn config(mut self, key: &str, value: &str) -> Self {
        self.configs.push((key.to_string(), value.to_string()));
        self
    }

    /// Writes the batches in leader epochs: `(epoch, start offset)` rising, the first
    /// starting at offset 0 (default: all in epoch 0). Each batch gets the epoch whose start
    /// is at or below its base offset; each partition's `leader-epoch-checkpoint` lists the
    /// epochs it has batches of, and the partition's leader epoch in the metadata is the
    /// last one (see [`Self::leader_epoch`]).
    pub fn leader_epochs(mut self, epochs: &[(i32, i64)]) -> Self {
        assert!(
            epochs.first().is_some_and(|e| e.1 == 0),
            "the first epoch starts at 0"
        );
        assert!(
            epochs
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1),
            "epochs and offsets rise"
        );
        self.leader_epochs = epochs.to_vec();
        self
    }

    /// The partitions' leader epoch in the metadata (`PartitionRecord.leaderEpoch`), when
    /// it is newer than the last epoch of the batches (a leader elected after the last
    /// write).
    pub fn leader_epoch(mut self, epoch: i32) -> Self {
        self.leader_epoch = Some(epoch);
        self
    }

    /// Makes records with `generator(partition, index)` instead of [`sample_record`].
    pub fn generator(mut self, generator: impl Fn(i32, usize) -> NewRecord + 'static) -> Self {
        self.generator = Some(Box::new(generator));
        self
    }

    /// The partitions' leader epoch in the metadata log.
    fn metadata_leader_epoch(&self) -> i32 {
        self.leader_epoch
            .unwrap_or_else(|| self.leader_epochs.last().map_or(0, |(epoch, _)| *epoch))
    }

    fn codecs_of(&self, partition: i32) -> &[Compression] {
        self.codecs
            .get(&partition)
            .map_or(&self.default_codecs[..], Vec::as_slice)
    }
}

/// Builds a [`DataDir`].
#[derive(Debug)]
pub struct DataDirBuilder {
    node_id: i32,
    metadata_version: i16,
    features: Vec<(String, i16)>,
    broker_configs: Vec<(String, String)>,
    topics: Vec<TopicSpec>,
    metadata_log: bool,
    metadata_first_offset: i64,
    cluster_id: Option<String>,
}

impl DataDirBuilder {
    /// Sets the `cluster.id` of `meta.properties` (default: a new random one), as
    /// `kafka-storage format --cluster-id` gives every node of a cluster the same.
    pub fn cluster_id(mut self, cluster_id: &str) -> Self {
        self.cluster_id = Some(cluster_id.to_string());
        self
    }

    /// Sets the node id (default 1).
    pub fn node_id(mut self, node_id: i32) -> Self {
        self.node_id = node_id;
        self
    }

    /// Sets the `metadata.version` feature level (default [`METADATA_VERSION`]).
    pub fn metadata_version(mut self, level: i16) -> Self {
        self.metadata_version = level;
        self
    }

    /// Adds a finalized feature (a `FeatureLevelRecord`), e.g. `group.version`.
    pub fn feature(mut self, name: &str, level: i16) -> Self {
        self.features.push((name.to_string(), level));
        self
    }

    /// Adds a dynamic broker config for this node (a `ConfigRecord`).
    pub fn broker_config(mut self, key: &str, value: &str) -> Self {
        self.broker_configs
            .push((key.to_string(), value.to_string()));
        self
    }

    /// Adds a topic.
    pub fn topic(mut self, topic: TopicSpec) -> Self {
        self.topics.push(topic);
        self
    }

    /// Writes no `__cluster_metadata-0` at all (a freshly formatted directory has one; a
    /// directory that was never formatted does not).
    pub fn without_metadata_log(mut self) -> Self {
        self.metadata_log = false;
        self
    }

    /// Starts the metadata log at `offset` instead of 0: its first batch has that base offset
    /// (offsets below it were never written), in a segment still named
    /// `00000000000000000000.log`, as the "Build your own Kafka" course writes it (first
    /// batch at offset 1). Real Kafka starts on such a log.
    pub fn metadata_first_offset(mut self, offset: i64) -> Self {
        assert!(offset >= 0, "a first offset of at least 0");
        self.metadata_first_offset = offset;
        self
    }

    /// Writes everything to a new temporary directory.
    pub fn build(self) -> DataDir {
        let dir = tempfile::Builder::new()
            .prefix("gregor-data-")
            .tempdir()
            .expect("create a temporary data directory");
        let (plaintext, controller) = free_port_pair();
        let ports = Ports {
            plaintext,
            controller,
        };
        let mut data = DataDir {
            dir,
            node_id: self.node_id,
            cluster_id: self
                .cluster_id
                .clone()
                .unwrap_or_else(|| kafka_uuid_string(random_uuid())),
            directory_id: random_uuid(),
            incarnation_id: random_uuid(),
            ports,
            metadata_version: self.metadata_version,
            metadata_batches: Vec::new(),
            topics: Vec::new(),
        };
        data.write_meta_properties();
        let mut topics = Vec::new();
        for spec in &self.topics {
            topics.push(data.write_topic(spec));
        }
        data.topics = topics;
        data.write_checkpoints();
        if self.metadata_log {
            data.write_metadata_log(&self);
        }
        data
    }
}

/// The ports the broker of a [`DataDir`] listens on (its registration names them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ports {
    /// The `PLAINTEXT` listener (clients).
    pub plaintext: u16,
    /// The `CONTROLLER` listener.
    pub controller: u16,
}

/// Two different free ports on 127.0.0.1 (both held while the second is chosen, so the
/// system cannot hand out the same one twice).
pub fn free_port_pair() -> (u16, u16) {
    let first = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let second = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = |l: &std::net::TcpListener| l.local_addr().expect("local address").port();
    (port(&first), port(&second))
}

/// A free port on 127.0.0.1 now (bound to port 0, read, released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// One record as written, to compare with what clients read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenRecord {
    /// Offset in the partition.
    pub offset: i64,
    /// Create timestamp (ms).
    pub timestamp: i64,
    /// Key; `None` for null.
    pub key: Option<Bytes>,
    /// Value; `None` for null.
    pub value: Option<Bytes>,
    /// Headers in order: key and value (`None` for null).
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// One partition as written.
#[derive(Clone, Debug)]
pub struct WrittenPartition {
    /// Partition index.
    pub index: i32,
    /// Its directory (`<topic>-<index>`).
    pub dir: PathBuf,
    /// Every record, in offset order.
    pub records: Vec<WrittenRecord>,
    /// Base offsets of its segments, in order (one file each).
    pub segments: Vec<i64>,
    /// Offset of its first record (0 unless [`TopicSpec::first_offset`] said otherwise).
    pub first_offset: i64,
    /// The codec of each batch, with its base offset.
    pub batches: Vec<(i64, Compression)>,
}

impl WrittenPartition {
    /// The log end offset (next offset to be written; the high watermark here).
    pub fn end_offset(&self) -> i64 {
        match self.records.last() {
            Some(last) => last.offset + 1,
            // An empty log ends where its only segment starts.
            None => self.log_start_offset(),
        }
    }

    /// The log start offset Kafka reports: the base offset of the first segment (the log
    /// start offset checkpoint says the same).
    pub fn log_start_offset(&self) -> i64 {
        self.segments.first().copied().unwrap_or(0)
    }
}

/// One topic as written.
#[derive(Clone, Debug)]
pub struct WrittenTopic {
    /// Topic name.
    pub name: String,
    /// Topic id.
    pub id: Uuid,
    /// Partitions by index.
    pub partitions: Vec<WrittenPartition>,
    /// Topic configs written to the metadata log.
    pub configs: Vec<(String, String)>,
}

impl WrittenTopic {
    /// The number of records over all partitions.
    pub fn record_count(&self) -> usize {
        self.partitions.iter().map(|p| p.records.len()).sum()
    }
}

/// A temporary data directory in Kafka's layout; removed on drop.
#[derive(Debug)]
pub struct DataDir {
    dir: TempDir,
    /// `node.id`.
    pub node_id: i32,
    /// `cluster.id` (22 characters).
    pub cluster_id: String,
    /// `directory.id`.
    pub directory_id: Uuid,
    /// The incarnation id of the broker registration.
    pub incarnation_id: Uuid,
    /// Ports the broker's listeners are registered with.
    pub ports: Ports,
    /// The `metadata.version` level written.
    pub metadata_version: i16,
    /// Base offsets of the batches of the metadata log, and the offset after the last.
    pub metadata_batches: Vec<i64>,
    /// The topics written, in the order given.
    pub topics: Vec<WrittenTopic>,
}

impl DataDir {
    /// A builder: node 1, [`METADATA_VERSION`], no topics.
    pub fn builder() -> DataDirBuilder {
        DataDirBuilder {
            node_id: 1,
            metadata_version: METADATA_VERSION,
            features: Vec::new(),
            broker_configs: Vec::new(),
            topics: Vec::new(),
            metadata_log: true,
            metadata_first_offset: 0,
            cluster_id: None,
        }
    }

    /// The directory (what `log.dirs` names).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `127.0.0.1:<plaintext port>`, the bootstrap address for clients.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.ports.plaintext)
    }

    /// The topic named `name`.
    pub fn topic(&self, name: &str) -> &WrittenTopic {
        self.topics
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no topic {name:?} in the fixture"))
    }

    /// Keeps the directory after the test (for inspection) and returns its path.
    pub fn keep(self) -> PathBuf {
        self.dir.keep()
    }

    fn write_meta_properties(&self) {
        let text = format!(
            "#\n#Written by gregor's test fixture\nnode.id={}\ndirectory.id={}\nversion=1\ncluster.id={}\n",
            self.node_id,
            kafka_uuid_string(self.directory_id),
            self.cluster_id
        );
        fs::write(self.path().join("meta.properties"), text).expect("write meta.properties");
    }

    /// Kafka's offset checkpoint files for the topic partitions.
    fn write_checkpoints(&self) {
        let entries: Vec<(&str, &WrittenPartition)> = self
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |p| (t.name.as_str(), p)))
            .collect();
        let file = |offset: &dyn Fn(&WrittenPartition) -> i64| {
            let mut text = format!("0\n{}\n", entries.len());
            for (topic, partition) in &entries {
                text.push_str(&format!(
                    "{topic} {} {}\n",
                    partition.index,
                    offset(partition)
                ));
            }
            text
        };
        for (name, text) in [
            (
                "recovery-point-offset-checkpoint",
                file(&|p| p.end_offset()),
            ),
            ("replication-offset-checkpoint", file(&|p| p.end_offset())),
            (
                "log-start-offset-checkpoint",
                file(&|p| p.log_start_offset()),
            ),
        ] {
            fs::write(self.path().join(name), text).expect("write checkpoint");
        }
    }

    fn write_topic(&self, spec: &TopicSpec) -> WrittenTopic {
        let id = spec.id.unwrap_or_else(random_uuid);
        let mut partitions = Vec::new();
        for index in 0..spec.partitions {
            let dir = self.path().join(format!("{}-{index}", spec.name));
            fs::create_dir_all(&dir).expect("create partition directory");
            fs::write(
                dir.join("partition.metadata"),
                format!("version: 0\ntopic_id: {}\n", kafka_uuid_string(id)),
            )
            .expect("write partition.metadata");
            let count = spec.records[index as usize];
            let new_records: Vec<NewRecord> = (0..count)
                .map(|i| match &spec.generator {
                    Some(generator) => generator(index, i),
                    None => sample_record(&spec.name, index, i),
                })
                .collect();
            let codecs = spec.codecs_of(index);
            assert!(
                (0..=spec.first_offset).contains(&spec.first_segment_base),
                "the first segment's base offset is at most the first offset"
            );
            let mut segments: Vec<(i64, BytesMut, usize)> =
                vec![(spec.first_segment_base, BytesMut::new(), 0)];
            let mut batches = Vec::new();
            let mut offset = spec.first_offset;
            let mut epochs_written: Vec<(i32, i64)> = Vec::new();
            for (n, chunk) in new_records.chunks(spec.batch_records).enumerate() {
                let codec = codecs[n % codecs.len()];
                let epoch = spec
                    .leader_epochs
                    .iter()
                    .rev()
                    .find(|(_, start)| *start <= offset)
                    .map_or(0, |(epoch, _)| *epoch);
                if epochs_written.last().is_none_or(|(e, _)| *e != epoch) {
                    epochs_written.push((epoch, offset));
                }
                let batch = RecordBatchBuilder::new()
                    .base_offset(offset)
                    .partition_leader_epoch(epoch)
                    .compression(codec)
                    .build(chunk)
                    .expect("encode a record batch");
                let (_, current, current_batches) = segments.last().expect("a segment");
                let full = spec
                    .segment_batches
                    .is_some_and(|max| *current_batches >= max);
                if !current.is_empty() && (current.len() + batch.len() > spec.segment_bytes || full)
                {
                    segments.push((offset, BytesMut::new(), 0));
                }
                let (_, current, current_batches) = segments.last_mut().expect("a segment");
                current.extend_from_slice(&batch);
                *current_batches += 1;
                batches.push((offset, codec));
                offset += chunk.len() as i64;
            }
            for (base, bytes, _) in &segments {
                fs::write(dir.join(format!("{base:020}.log")), bytes).expect("write segment");
            }
            if count > 0 {
                let mut text = format!("0\n{}\n", epochs_written.len());
                for (epoch, start) in &epochs_written {
                    text.push_str(&format!("{epoch} {start}\n"));
                }
                fs::write(dir.join("leader-epoch-checkpoint"), text)
                    .expect("write leader-epoch-checkpoint");
            }
            let records = new_records
                .iter()
                .enumerate()
                .map(|(i, r)| WrittenRecord {
                    offset: spec.first_offset + i as i64,
                    timestamp: r.timestamp,
                    key: r.key.clone(),
                    value: r.value.clone(),
                    headers: r
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                String::from_utf8_lossy(&h.key).into_owned(),
                                h.value.clone(),
                            )
                        })
                        .collect(),
                })
                .collect();
            partitions.push(WrittenPartition {
                index,
                dir,
                records,
                segments: segments.iter().map(|(base, _, _)| *base).collect(),
                first_offset: spec.first_offset,
                batches,
            });
        }
        WrittenTopic {
            name: spec.name.clone(),
            id,
            partitions,
            configs: spec.configs.clone(),
        }
    }

    /// The metadata log as the active controller of a one-node KRaft cluster writes it.
    fn write_metadata_log(&mut self, builder: &DataDirBuilder) {
        let dir = self.path().join("__cluster_metadata-0");
        fs::create_dir_all(&dir).expect("create __cluster_metadata-0");
        let node = self.node_id;
        let mut log = BytesMut::new();
        let first_offset = builder.metadata_first_offset;
        let mut offset = first_offset;
        let mut batch_offsets = Vec::new();
        let timestamp = BASE_TIMESTAMP;

        // 1. The new leader's LeaderChange control record.
        let leader_change = LeaderChangeMessage {
            version: 0,
            leader_id: node,
            voters: vec![Voter {
                voter_id: node,
                ..Default::default()
            }],
            granting_voters: vec![Voter {
                voter_id: node,
                ..Default::default()
            }],
            ..Default::default()
        };
        let control = NewRecord::new(
            timestamp,
            Some(ControlRecordKey::new(ControlRecordType::LeaderChange).encode()),
            Some(
                leader_change
                    .to_bytes(0)
                    .expect("encode LeaderChangeMessage"),
            ),
        );
        let batch = RecordBatchBuilder::new()
            .base_offset(offset)
            .partition_leader_epoch(METADATA_LEADER_EPOCH)
            .control(true)
            .build([&control])
            .expect("encode the control batch");
        batch_offsets.push(offset);
        log.extend_from_slice(&batch);
        offset += 1;

        let mut append = |records: Vec<(MetadataRecord, i16)>, offset: &mut i64| {
            let values: Vec<NewRecord> = records
                .iter()
                .map(|(record, version)| {
                    let mut value = BytesMut::new();
                    record
                        .encode_framed(&mut value, *version)
                        .expect("encode a metadata record");
                    NewRecord::new(timestamp, None, Some(value.freeze()))
                })
                .collect();
            let batch = RecordBatchBuilder::new()
                .base_offset(*offset)
                .partition_leader_epoch(METADATA_LEADER_EPOCH)
                .build(&values)
                .expect("encode a metadata batch");
            batch_offsets.push(*offset);
            log.extend_from_slice(&batch);
            *offset += values.len() as i64;
        };

        // 2. Bootstrap: the finalized features.
        let mut features = vec![(
            MetadataRecord::FeatureLevel(FeatureLevelRecord {
                name: "metadata.version".into(),
                feature_level: self.metadata_version,
                ..Default::default()
            }),
            0,
        )];
        for (name, level) in &builder.features {
            features.push((
                MetadataRecord::FeatureLevel(FeatureLevelRecord {
                    name: name.as_str().into(),
                    feature_level: *level,
                    ..Default::default()
                }),
                0,
            ));
        }
        append(features, &mut offset);

        // 3. The broker registers (fenced; its epoch is the offset of its registration)...
        let broker_epoch = offset;
        let registration = RegisterBrokerRecord {
            broker_id: node,
            incarnation_id: self.incarnation_id,
            broker_epoch,
            end_points: vec![BrokerEndpoint {
                name: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port: self.ports.plaintext,
                security_protocol: PLAINTEXT,
                ..Default::default()
            }],
            features: vec![
                BrokerFeature {
                    name: "metadata.version".into(),
                    min_supported_version: 7,
                    max_supported_version: self.metadata_version,
                    ..Default::default()
                },
                BrokerFeature {
                    name: "kraft.version".into(),
                    min_supported_version: 0,
                    max_supported_version: 1,
                    ..Default::default()
                },
            ],
            rack: None,
            fenced: true,
            in_controlled_shutdown: false,
            log_dirs: vec![self.directory_id],
            ..Default::default()
        };
        append(
            vec![(MetadataRecord::RegisterBroker(registration), 3)],
            &mut offset,
        );
        // ... and is unfenced after its first heartbeat.
        append(
            vec![(
                MetadataRecord::UnfenceBroker(UnfenceBrokerRecord {
                    id: node,
                    epoch: broker_epoch,
                    ..Default::default()
                }),
                0,
            )],
            &mut offset,
        );
        if !builder.broker_configs.is_empty() {
            let configs = builder
                .broker_configs
                .iter()
                .map(|(key, value)| {
                    let record = ConfigRecord {
                        resource_type: BROKER_RESOURCE,
                        resource_name: node.to_string().into(),
                        name: key.as_str().into(),
                        value: Some(value.as_str().into()),
                        ..Default::default()
                    };
                    (MetadataRecord::Config(record), 0)
                })
                .collect();
            append(configs, &mut offset);
        }

        // 4. One batch per CreateTopics: the topic, its configs, its partitions.
        for topic in &self.topics {
            let mut records = vec![(
                MetadataRecord::Topic(TopicRecord {
                    name: topic.name.as_str().into(),
                    topic_id: topic.id,
                    ..Default::default()
                }),
                0,
            )];
            for (key, value) in &topic.configs {
                records.push((
                    MetadataRecord::Config(ConfigRecord {
                        resource_type: TOPIC_RESOURCE,
                        resource_name: topic.name.as_str().into(),
                        name: key.as_str().into(),
                        value: Some(value.as_str().into()),
                        ..Default::default()
                    }),
                    0,
                ));
            }
            let leader_epoch = builder
                .topics
                .iter()
                .find(|spec| spec.name == topic.name)
                .map_or(0, TopicSpec::metadata_leader_epoch);
            for partition in &topic.partitions {
                // Version 1: with directories, without ELR (what 4.1-IV1 writes unless
                // eligible.leader.replicas.version is enabled).
                records.push((
                    MetadataRecord::Partition(PartitionRecord {
                        partition_id: partition.index,
                        topic_id: topic.id,
                        replicas: vec![node],
                        isr: vec![node],
                        removing_replicas: Vec::new(),
                        adding_replicas: Vec::new(),
                        leader: node,
                        leader_recovery_state: 0,
                        leader_epoch,
                        partition_epoch: 0,
                        directories: vec![self.directory_id],
                        ..Default::default()
                    }),
                    1,
                ));
            }
            append(records, &mut offset);
        }

        // 5. The controller's periodic no-op.
        append(
            vec![(MetadataRecord::NoOp(NoOpRecord::default()), 0)],
            &mut offset,
        );

        batch_offsets.push(offset);
        self.metadata_batches = batch_offsets;
        fs::write(dir.join(format!("{:020}.log", 0)), &log).expect("write the metadata log");
        fs::write(
            dir.join("partition.metadata"),
            "version: 0\ntopic_id: AAAAAAAAAAAAAAAAAAAAAQ\n",
        )
        .expect("write partition.metadata");
        fs::write(
            dir.join("leader-epoch-checkpoint"),
            format!("0\n1\n{METADATA_LEADER_EPOCH} {first_offset}\n"),
        )
        .expect("write leader-epoch-checkpoint");
        fs::write(
            dir.join("quorum-state"),
            format!(
                "{{\"leaderId\":{node},\"leaderEpoch\":{METADATA_LEADER_EPOCH},\"votedId\":-1,\"votedDirectoryId\":\"AAAAAAAAAAAAAAAAAAAAAA\",\"data_version\":1}}"
            ),
        )
        .expect("write quorum-state");
    }
}
