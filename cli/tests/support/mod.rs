//! Harness of the `gregorctl` integration tests.
//!
//! * [`broker_binary`]: the real `gregor` binary. A test crate cannot name another
//!   package's binary (`CARGO_BIN_EXE_*` covers only this package), so the harness runs
//!   `cargo build -p gregor-broker --bin gregor` once per test process, with the same cargo
//!   and profile as the tests, and takes the executable's path from cargo's JSON messages:
//!   that is right for any target directory (`CARGO_TARGET_DIR`, `--target-dir`, a
//!   `--target` triple) and never runs a stale binary. `GREGOR_BROKER_BIN=/path/to/gregor`
//!   skips the build (to test another build, or while broker/ does not compile).
//! * [`Broker`]: that binary on free 127.0.0.1 ports and its own [`DataDir`]: stopped
//!   cleanly with SIGTERM by [`Broker::stop`], killed on drop. Its helpers create topics,
//!   produce and read offsets through gregorctl itself, so every record a test checks was
//!   written by the broker's own write path.
//! * [`DataDir`]: a temporary data directory; empty (the broker formats it), or
//!   ([`DataDir::with_topics`]) written with gregor-protocol in Apache Kafka's layout
//!   (metadata log with topics, partition segments, index files), to check that the broker
//!   serves a directory it did not write itself.
//! * [`gregorctl`]: runs the CLI under test with a time limit (a hang fails the test).
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use gregor_protocol::messages::config_record::ConfigRecord;
use gregor_protocol::messages::feature_level_record::FeatureLevelRecord;
use gregor_protocol::messages::leader_change_message::{LeaderChangeMessage, Voter};
use gregor_protocol::messages::partition_record::PartitionRecord;
use gregor_protocol::messages::register_broker_record::{BrokerEndpoint, RegisterBrokerRecord};
use gregor_protocol::messages::topic_record::TopicRecord;
use gregor_protocol::messages::unfence_broker_record::UnfenceBrokerRecord;
use gregor_protocol::records::{
    Compression, ControlRecordKey, ControlRecordType, Header, NewRecord, RecordBatchBuilder,
};
use gregor_protocol::{Encodable, MetadataRecord, Uuid};
use tempfile::TempDir;

/// Longest any single gregorctl run may take in the tests.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(60);
/// Timestamp of the fixture's first record.
pub const BASE_TIMESTAMP: i64 = 1_735_689_600_000;

/// The `gregor` broker binary (built once per test process; see the module docs).
pub fn broker_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(path) = std::env::var_os("GREGOR_BROKER_BIN") {
            return PathBuf::from(path);
        }
        let mut command = Command::new(env!("CARGO"));
        command
            .args([
                "build",
                "-p",
                "gregor-broker",
                "--bin",
                "gregor",
                "--message-format=json-render-diagnostics",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(Stdio::inherit());
        if !cfg!(debug_assertions) {
            command.arg("--release");
        }
        let output = command.output().expect("run cargo build for the broker");
        assert!(
            output.status.success(),
            "cargo build -p gregor-broker failed (set GREGOR_BROKER_BIN to use a built broker)"
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let executable = stdout
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "gregor")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported no gregor executable");
        assert!(executable.exists(), "{} missing", executable.display());
        executable
    })
}

/// Two different ports nothing listens on right now (both held while the second is
/// chosen, so the system cannot hand out the same one twice).
pub fn free_port_pair() -> (u16, u16) {
    let first = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    let second = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    let port = |l: &TcpListener| l.local_addr().expect("a local address").port();
    (port(&first), port(&second))
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// A topic for the fixture.
#[derive(Clone, Debug)]
pub struct TopicSpec {
    /// Name.
    pub name: String,
    /// Id.
    pub id: Uuid,
    /// Partition count.
    pub partitions: i32,
    /// Records per partition.
    pub records: usize,
    /// Records per batch.
    pub batch_records: usize,
    /// Codec of the batches.
    pub compression: Compression,
    /// Topic configs (ConfigRecords).
    pub configs: Vec<(String, String)>,
}

impl TopicSpec {
    /// A topic with empty partitions.
    pub fn new(name: &str, partitions: i32) -> TopicSpec {
        TopicSpec {
            name: name.into(),
            id: topic_id(name),
            partitions,
            records: 0,
            batch_records: 10,
            compression: Compression::None,
            configs: Vec::new(),
        }
    }

    /// Writes `n` records per partition.
    pub fn records(mut self, n: usize) -> Self {
        self.records = n;
        self
    }

    /// Uses this codec.
    pub fn compression(mut self, codec: Compression) -> Self {
        self.compression = codec;
        self
    }

    /// Adds a topic config.
    pub fn config(mut self, key: &str, value: &str) -> Self {
        self.configs.push((key.into(), value.into()));
        self
    }
}

/// A topic id derived from the name (FNV-1a, never the reserved 0 or 1).
pub fn topic_id(name: &str) -> Uuid {
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for b in name.bytes() {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    Uuid::from_u128(h | 2)
}

/// The record the fixture writes at index `i` of partition `p`: key `k-p-i`, value
/// `value-p-i`, header `seq=i`.
pub fn fixture_record(p: i32, i: usize) -> NewRecord {
    NewRecord {
        timestamp: BASE_TIMESTAMP + i as i64,
        key: Some(Bytes::from(format!("k-{p}-{i}"))),
        value: Some(Bytes::from(format!("value-{p}-{i}"))),
        headers: vec![Header::new("seq", Some(Bytes::from(i.to_string())))],
    }
}

/// A temporary data directory in Kafka's layout.
pub struct DataDir {
    /// Deleted on drop, unless `GREGORCTL_KEEP_DATA` is set (then only `path` is kept).
    dir: Option<TempDir>,
    path: PathBuf,
    /// The node id it is written for.
    pub node_id: i32,
    /// The PLAINTEXT port the broker registration names.
    pub port: u16,
    /// The CONTROLLER port.
    pub controller_port: u16,
    /// The topics written.
    pub topics: Vec<TopicSpec>,
    /// Extra `server.properties` lines for the broker started on it.
    pub broker_config: Vec<(String, String)>,
}

impl DataDir {
    /// An empty directory (the broker formats it).
    pub fn empty() -> DataDir {
        let dir = tempfile::Builder::new()
            .prefix("gregorctl-data-")
            .tempdir()
            .expect("create a data directory");
        let (dir, path) = if std::env::var_os("GREGORCTL_KEEP_DATA").is_some() {
            let path = dir.keep();
            eprintln!("keeping the data directory {}", path.display());
            (None, path)
        } else {
            let path = dir.path().to_path_buf();
            (Some(dir), path)
        };
        let (port, controller_port) = free_port_pair();
        DataDir {
            dir,
            path,
            node_id: 1,
            port,
            controller_port,
            topics: Vec::new(),
            broker_config: Vec::new(),
        }
    }

    /// The same directory, with `key=value` added to the broker's `server.properties`.
    pub fn broker_config(mut self, key: &str, value: &str) -> DataDir {
        self.broker_config
            .push((key.to_string(), value.to_string()));
        self
    }

    /// A directory with these topics: metadata log, partition segments with index files.
    pub fn with_topics(topics: Vec<TopicSpec>) -> DataDir {
        let mut data = DataDir::empty();
        data.topics = topics;
        data.write_metadata_log();
        for topic in data.topics.clone() {
            for p in 0..topic.partitions {
                data.write_partition(&topic, p);
            }
        }
        data
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write_metadata_log(&self) {
        let dir = self.path().join("__cluster_metadata-0");
        fs::create_dir_all(&dir).expect("create __cluster_metadata-0");
        let node = self.node_id;
        let mut log = BytesMut::new();
        let leader_change = LeaderChangeMessage {
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
            BASE_TIMESTAMP,
            Some(ControlRecordKey::new(ControlRecordType::LeaderChange).encode()),
            Some(
                leader_change
                    .to_bytes(0)
                    .expect("encode LeaderChangeMessage"),
            ),
        );
        log.extend_from_slice(
            &RecordBatchBuilder::new()
                .partition_leader_epoch(1)
                .control(true)
                .build([&control])
                .expect("a control batch"),
        );
        let mut offset = 1i64;
        let mut append = |records: Vec<(MetadataRecord, i16)>| {
            let values: Vec<NewRecord> = records
                .iter()
                .map(|(record, version)| {
                    let mut value = BytesMut::new();
                    record
                        .encode_framed(&mut value, *version)
                        .expect("a record");
                    NewRecord::new(BASE_TIMESTAMP, None, Some(value.freeze()))
                })
                .collect();
            log.extend_from_slice(
                &RecordBatchBuilder::new()
                    .base_offset(offset)
                    .partition_leader_epoch(1)
                    .build(&values)
                    .expect("a metadata batch"),
            );
            offset += values.len() as i64;
        };
        append(vec![(
            MetadataRecord::FeatureLevel(FeatureLevelRecord {
                name: "metadata.version".into(),
                feature_level: 27,
                ..Default::default()
            }),
            0,
        )]);
        let epoch = 2;
        append(vec![(
            MetadataRecord::RegisterBroker(RegisterBrokerRecord {
                broker_id: node,
                incarnation_id: Uuid::from_u128(7),
                broker_epoch: epoch,
                end_points: vec![BrokerEndpoint {
                    name: "PLAINTEXT".into(),
                    host: "127.0.0.1".into(),
                    port: self.port,
                    security_protocol: 0,
                    ..Default::default()
                }],
                fenced: true,
                ..Default::default()
            }),
            3,
        )]);
        append(vec![(
            MetadataRecord::UnfenceBroker(UnfenceBrokerRecord {
                id: node,
                epoch,
                ..Default::default()
            }),
            0,
        )]);
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
                        resource_type: 2,
                        resource_name: topic.name.as_str().into(),
                        name: key.as_str().into(),
                        value: Some(value.as_str().into()),
                        ..Default::default()
                    }),
                    0,
                ));
            }
            for p in 0..topic.partitions {
                records.push((
                    MetadataRecord::Partition(PartitionRecord {
                        partition_id: p,
                        topic_id: topic.id,
                        replicas: vec![node],
                        isr: vec![node],
                        leader: node,
                        ..Default::default()
                    }),
                    0,
                ));
            }
            append(records);
        }
        fs::write(dir.join(format!("{:020}.log", 0)), &log).expect("write the metadata log");
    }

    /// Segment, `.index` (an entry per batch) and `.timeindex` (an entry per batch), and
    /// `partition.metadata`.
    fn write_partition(&self, topic: &TopicSpec, p: i32) {
        let dir = self.path().join(format!("{}-{p}", topic.name));
        fs::create_dir_all(&dir).expect("create a partition directory");
        let mut log = BytesMut::new();
        let mut index = Vec::new();
        let mut time_index = Vec::new();
        let mut i = 0;
        while i < topic.records {
            let end = (i + topic.batch_records).min(topic.records);
            let records: Vec<NewRecord> = (i..end).map(|j| fixture_record(p, j)).collect();
            let batch = RecordBatchBuilder::new()
                .base_offset(i as i64)
                .partition_leader_epoch(0)
                .compression(topic.compression)
                .build(&records)
                .expect("a batch");
            index.extend_from_slice(&(i as i32).to_be_bytes());
            index.extend_from_slice(&(log.len() as i32).to_be_bytes());
            time_index.extend_from_slice(&(BASE_TIMESTAMP + end as i64 - 1).to_be_bytes());
            time_index.extend_from_slice(&(i as i32).to_be_bytes());
            log.extend_from_slice(&batch);
            i = end;
        }
        // Kafka preallocates indexes; leave some zeroed entries as it does while active.
        index.extend_from_slice(&[0; 16]);
        time_index.extend_from_slice(&[0; 24]);
        let name = format!("{:020}", 0);
        fs::write(dir.join(format!("{name}.log")), &log).expect("write a segment");
        fs::write(dir.join(format!("{name}.index")), &index).expect("write an index");
        fs::write(dir.join(format!("{name}.timeindex")), &time_index).expect("write a time index");
        fs::write(
            dir.join("partition.metadata"),
            format!("version: 0\ntopic_id: {}\n", kafka_uuid(&topic.id)),
        )
        .expect("write partition.metadata");
    }
}

/// Kafka's base64 form of an id.
pub fn kafka_uuid(id: &Uuid) -> String {
    gregor_protocol::uuid_text::to_text(id)
}

/// Longest wait for the broker to start listening or to stop.
pub const BROKER_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `gregor` on its own data directory, killed on drop (its log printed if the
/// test failed).
pub struct Broker {
    child: Child,
    work: TempDir,
    /// Dropped after the process is gone (fields drop after `Drop::drop`); taken by
    /// [`Broker::restart`].
    data: Option<DataDir>,
    /// Whether [`Broker::stop`] ran.
    stopped: bool,
    /// `127.0.0.1:<port>`.
    pub bootstrap: String,
}

impl Broker {
    /// Starts the broker on a new empty data directory.
    pub fn start_empty() -> Broker {
        Broker::start(DataDir::empty())
    }

    /// Starts the broker on `data` and waits until it accepts connections. The ports are
    /// free when picked, but another process may take one before the broker binds it (a
    /// client's ephemeral port, say): then the broker starts again on new ports.
    pub fn start(mut data: DataDir) -> Broker {
        for attempt in 1.. {
            let mut broker = Broker::launch(data);
            match broker.wait_listening() {
                Ok(()) => return broker,
                Err(log) if attempt < 5 && log.contains("Address already in use") => {
                    eprintln!("gregor could not bind its ports; again on others");
                    data = broker.data.take().expect("the data directory");
                    (data.port, data.controller_port) = free_port_pair();
                }
                Err(log) => panic!("gregor did not start:\n{log}"),
            }
        }
        unreachable!()
    }

    /// Writes `server.properties` for `data` and spawns the broker.
    fn launch(data: DataDir) -> Broker {
        let work = tempfile::Builder::new()
            .prefix("gregorctl-broker-")
            .tempdir()
            .expect("create the broker's work directory");
        let config = work.path().join("server.properties");
        let node = data.node_id;
        let (port, controller) = (data.port, data.controller_port);
        let extra: String = data
            .broker_config
            .iter()
            .map(|(key, value)| format!("{key}={value}\n"))
            .collect();
        fs::write(
            &config,
            format!(
                "process.roles=broker,controller\nnode.id={node}\n\
                 controller.quorum.voters={node}@127.0.0.1:{controller}\n\
                 listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}\n\
                 advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n\
                 controller.listener.names=CONTROLLER\n\
                 listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n\
                 log.dirs={}\nnum.partitions=1\noffsets.topic.replication.factor=1\n{extra}",
                data.path().display()
            ),
        )
        .expect("write server.properties");
        let log = fs::File::create(work.path().join("broker.log")).expect("create the broker log");
        let child = Command::new(broker_binary())
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .expect("start gregor");
        Broker {
            child,
            work,
            data: Some(data),
            stopped: false,
            bootstrap: format!("127.0.0.1:{port}"),
        }
    }

    /// Waits until the broker accepts connections; its log if it exits first.
    fn wait_listening(&mut self) -> Result<(), String> {
        let addr: SocketAddr = self.bootstrap.parse().expect("an address");
        let deadline = Instant::now() + BROKER_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.stopped = true;
                return Err(format!(
                    "gregor exited ({status}) before listening:\n{}",
                    self.log()
                ));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "gregor did not listen within {BROKER_TIMEOUT:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The broker's data directory (`log.dirs`).
    pub fn data_dir(&self) -> &Path {
        self.data().path()
    }

    /// The data directory's settings (ports, node id, topics of a fixture).
    pub fn data(&self) -> &DataDir {
        self.data.as_ref().expect("the data directory")
    }

    /// Stops the broker (if [`Broker::stop`] has not) and starts it again on the same
    /// data directory and ports.
    pub fn restart(mut self) -> Broker {
        if !self.stopped {
            self.stop();
        }
        let data = self.data.take().expect("the data directory");
        Broker::start(data)
    }

    /// Stops the broker as an operator does (SIGTERM) and waits for a clean exit, so its
    /// files are complete (segments flushed, indexes trimmed). The data directory stays
    /// until the `Broker` is dropped.
    pub fn stop(&mut self) {
        assert!(!self.stopped, "stopped twice");
        self.stopped = true;
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + BROKER_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("poll gregor") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "gregor did not stop within {BROKER_TIMEOUT:?} of SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            status.success(),
            "gregor exited with {status} on SIGTERM:\n{}",
            self.log()
        );
    }

    /// What the broker printed.
    pub fn log(&self) -> String {
        fs::read_to_string(self.work.path().join("broker.log")).unwrap_or_default()
    }

    /// Runs gregorctl against this broker.
    pub fn ctl(&self, args: &[&str]) -> Run {
        let mut all = vec!["--bootstrap-server", self.bootstrap.as_str()];
        all.extend_from_slice(args);
        gregorctl(&all, None)
    }

    /// Runs gregorctl against this broker with `stdin`.
    pub fn ctl_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut all = vec!["--bootstrap-server", self.bootstrap.as_str()];
        all.extend_from_slice(args);
        gregorctl(&all, Some(stdin))
    }

    /// `gregorctl topics create` with `partitions` (and `extra` flags); must succeed.
    pub fn create_topic(&self, topic: &str, partitions: i32, extra: &[&str]) {
        let partitions = partitions.to_string();
        let mut args = vec![
            "topics",
            "create",
            "--topic",
            topic,
            "--partitions",
            partitions.as_str(),
            "--replication-factor",
            "1",
        ];
        args.extend_from_slice(extra);
        let run = self.ctl(&args);
        assert!(
            run.ok().starts_with(&format!("Created topic {topic} ")),
            "{}",
            run.stdout
        );
    }

    /// `gregorctl produce` of `stdin` with `args` (after the topic); must succeed.
    pub fn produce(&self, topic: &str, args: &[&str], stdin: &str) -> Run {
        let mut all = vec!["produce", topic];
        all.extend_from_slice(args);
        let run = self.ctl_stdin(&all, stdin);
        run.ok();
        run
    }

    /// The latest offset of each partition (`get-offsets --json`), by partition.
    pub fn end_offsets(&self, topic: &str) -> Vec<i64> {
        let json = self
            .ctl(&["get-offsets", "--topic", topic, "--json"])
            .json();
        let mut offsets: Vec<(i64, i64)> = json
            .as_array()
            .expect("an array of offsets")
            .iter()
            .map(|o| {
                (
                    o["partition"].as_i64().expect("partition"),
                    o["offset"].as_i64().expect("offset"),
                )
            })
            .collect();
        offsets.sort();
        offsets.into_iter().map(|(_, o)| o).collect()
    }

    /// Records stored in `topic`: the sum of its latest offsets (nothing deleted yet).
    pub fn stored(&self, topic: &str) -> i64 {
        self.end_offsets(topic).iter().sum()
    }

    /// Waits (up to [`BROKER_TIMEOUT`]) until `topic` stores `expected` records: with
    /// acks=0 the producer is done before the broker has appended; fails on more.
    pub fn wait_stored(&self, topic: &str, expected: i64) {
        let deadline = Instant::now() + BROKER_TIMEOUT;
        loop {
            let stored = self.stored(topic);
            assert!(
                stored <= expected,
                "{topic} stores {stored} records, more than the {expected} produced"
            );
            if stored == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{topic} stores {stored} records after {BROKER_TIMEOUT:?}, not {expected}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether `gregorctl api-versions` lists `api` (e.g. "Produce").
    pub fn supports(&self, api: &str) -> bool {
        let run = self.ctl(&["api-versions", "--json"]);
        run.ok();
        let key = api_key(api);
        run.json()["api_keys"]
            .as_array()
            .expect("api_keys")
            .iter()
            .any(|k| k["api_key"] == key)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- gregor log ---\n{}\n--- end ---", self.log());
        }
    }
}

/// Kafka's API key of an API by name (`"Produce"` is 0).
pub fn api_key(api: &str) -> i64 {
    gregor_protocol::ApiKey::ALL
        .iter()
        .find(|k| k.name() == api)
        .map(|k| i64::from(k.key()))
        .unwrap_or_else(|| panic!("no API named {api}"))
}

/// One finished gregorctl run.
#[derive(Debug)]
pub struct Run {
    /// The arguments.
    pub args: Vec<String>,
    /// Exit code (None if killed by a signal).
    pub code: Option<i32>,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
    /// How long it took.
    pub elapsed: Duration,
}

impl Run {
    /// Asserts exit code 0; returns stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code,
            Some(0),
            "gregorctl {:?} failed\nstdout:\n{}\nstderr:\n{}",
            self.args,
            self.stdout,
            self.stderr
        );
        &self.stdout
    }

    /// Asserts exit code 1 and that stderr contains `needle`; returns stderr.
    pub fn fails_with(&self, needle: &str) -> &str {
        assert_eq!(
            self.code,
            Some(1),
            "gregorctl {:?} should fail\nstdout:\n{}\nstderr:\n{}",
            self.args,
            self.stdout,
            self.stderr
        );
        assert!(
            self.stderr.contains(needle),
            "stderr of gregorctl {:?} lacks {needle:?}:\n{}",
            self.args,
            self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        &self.stderr
    }

    /// stdout parsed as one JSON document.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout of {:?} is not JSON ({e}):\n{}",
                self.args, self.stdout
            )
        })
    }

    /// stdout parsed as JSON lines.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?} in {:?}", self.args))
            })
            .collect()
    }
}

/// Runs gregorctl with `args` (and `stdin`), killing it after [`CLI_TIMEOUT`].
pub fn gregorctl(args: &[&str], stdin: Option<&str>) -> Run {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gregorctl"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gregorctl");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        let input = input.to_string();
        std::thread::spawn(move || {
            let _ = pipe.write_all(input.as_bytes());
        });
    }
    // Read the pipes on threads so a chatty child cannot block on a full pipe.
    let mut out_pipe = child.stdout.take().expect("stdout");
    let mut err_pipe = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out_pipe, &mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err_pipe, &mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll gregorctl") {
            break status;
        }
        if start.elapsed() > CLI_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("gregorctl {args:?} did not finish within {CLI_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let output = Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    };
    Run {
        args: args.iter().map(|s| s.to_string()).collect(),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}
