//! Broker configuration: Kafka's `server.properties`, its keys, defaults and checks.
//!
//! The file format is Java properties (`key=value`, `key: value` or `key value`, `#` and `!`
//! comments, `\` line continuations and escapes), read with the `java-properties` crate. The
//! keys, their defaults and their range checks are Apache Kafka 4.x's, so a file written for
//! Kafka (its quickstart `config/server.properties` included) is read unchanged:
//!
//! ```
//! use gregor_broker::config::Config;
//!
//! let config = Config::parse(
//!     "process.roles=broker,controller\n\
//!      node.id=1\n\
//!      controller.quorum.voters=1@localhost:9093\n\
//!      listeners=PLAINTEXT://:9092,CONTROLLER://:9093\n\
//!      controller.listener.names=CONTROLLER\n\
//!      listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n\
//!      log.dirs=/tmp/kraft-combined-logs\n",
//! )?;
//! assert_eq!(config.node_id, 1);
//! assert_eq!(config.broker_listeners().next().map(|l| l.port), Some(9092));
//! assert_eq!(config.advertised_listener_for("PLAINTEXT").map(|l| l.host.as_str()), Some("localhost"));
//! assert_eq!(config.log_retention_ms, 168 * 3_600_000);
//! # Ok::<(), gregor_broker::config::ConfigError>(())
//! ```
//!
//! Keys Kafka knows but this broker does not use (thread pools, socket buffers, TLS, the log
//! cleaner, ...) are accepted and listed in [`Config::ignored_keys`]; other keys are listed in
//! [`Config::unknown_keys`]. Neither is an error, as in Kafka.
//!
//! Where this differs from Kafka, on purpose:
//! - `process.roles` may be omitted (Kafka 4 requires it): it then means `broker,controller`.
//! - `controller.listener.names` may be empty (Kafka requires it in KRaft mode): the node then
//!   serves no controller endpoint.
//! - An empty host in an advertised listener means, in Kafka, the machine's canonical host
//!   name; here it is `localhost`.
//! - [`Config::load`] reads the file as UTF-8 when it is valid UTF-8 and as ISO-8859-1
//!   otherwise (Java always uses ISO-8859-1, where UTF-8 text would come out garbled).
//! - Values of ignored keys are not checked.
//! - `legacy.api.versions.enable` (default true), a key Kafka does not have, serves the
//!   protocol versions Kafka 4 dropped (KIP-896) as Kafka 3.9 did; false refuses them as
//!   Kafka 4 does.
//! - `queued.max.request.bytes` defaults to 256 MiB (at least `socket.request.max.bytes`)
//!   instead of Kafka's unbounded -1; see [`Config::queued_max_request_bytes`].

mod cleaner;
mod error;
mod keys;
mod listener;
mod metadata_log;
mod properties;
mod security;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

pub use cleaner::CleanerSettings;
pub use error::ConfigError;
pub use keys::{IGNORED_KEY_PREFIXES, IGNORED_KEYS, is_ignored_key};
pub use listener::{HostPort, Listener, QuorumVoter, SecurityProtocol};
pub use metadata_log::MetadataLogConfig;
pub use security::{ENFORCED_PROTOCOLS, Unenforceable};

/// The embedded default configuration: Kafka's KRaft quickstart (`config/server.properties`)
/// for a single combined broker and controller, without the keys that have no effect here
/// (thread counts, socket buffers, `*.min.isr`).
pub const EMBEDDED_DEFAULT: &str = "\
# Gregor's embedded default: the equivalent of Kafka's KRaft quickstart server.properties.

############################# Server Basics #############################
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@localhost:9093

############################# Socket Server Settings #############################
listeners=PLAINTEXT://:9092,CONTROLLER://:9093
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://localhost:9092
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
socket.request.max.bytes=104857600

############################# Log Basics #############################
log.dirs=/tmp/kraft-combined-logs
num.partitions=1

############################# Internal Topic Settings #############################
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1

############################# Log Retention Policy #############################
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
";

/// Kafka's default `listener.security.protocol.map`.
const DEFAULT_SECURITY_PROTOCOL_MAP: &str =
    "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL";

/// Our default `queued.max.request.bytes` (Kafka's is -1, no limit): 256 MiB; see
/// [`Config::queued_max_request_bytes`] for the reasoning.
pub const DEFAULT_QUEUED_MAX_REQUEST_BYTES: i64 = 256 * 1024 * 1024;

const MS_PER_MINUTE: i64 = 60_000;
const MS_PER_HOUR: i64 = 3_600_000;

/// A role of `process.roles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProcessRole {
    /// Serves clients: produce, fetch, groups, ...
    Broker,
    /// A KRaft controller: keeps the cluster metadata.
    Controller,
}

impl ProcessRole {
    /// Kafka's name: `broker` or `controller`.
    pub fn name(self) -> &'static str {
        match self {
            ProcessRole::Broker => "broker",
            ProcessRole::Controller => "controller",
        }
    }
}

impl fmt::Display for ProcessRole {
    /// Kafka's name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `log.message.timestamp.type`: which timestamp the broker keeps in record batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimestampType {
    /// The producer's timestamp (Kafka's default).
    CreateTime,
    /// The broker overwrites the timestamp with its clock when appending.
    LogAppendTime,
}

impl TimestampType {
    /// Kafka's name: `CreateTime` or `LogAppendTime`.
    pub fn name(self) -> &'static str {
        match self {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        }
    }
}

impl fmt::Display for TimestampType {
    /// Kafka's name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `compression.type` of the broker: the codec of the batches it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompressionType {
    /// Keep the producer's codec (Kafka's default).
    Producer,
    /// Store uncompressed.
    Uncompressed,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl CompressionType {
    const ALL: [CompressionType; 6] = [
        CompressionType::Uncompressed,
        CompressionType::Zstd,
        CompressionType::Lz4,
        CompressionType::Snappy,
        CompressionType::Gzip,
        CompressionType::Producer,
    ];

    /// Kafka's name: `producer`, `uncompressed`, `gzip`, `snappy`, `lz4`, `zstd`.
    pub fn name(self) -> &'static str {
        match self {
            CompressionType::Producer => "producer",
            CompressionType::Uncompressed => "uncompressed",
            CompressionType::Gzip => "gzip",
            CompressionType::Snappy => "snappy",
            CompressionType::Lz4 => "lz4",
            CompressionType::Zstd => "zstd",
        }
    }
}

impl fmt::Display for CompressionType {
    /// Kafka's name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A policy of `log.cleanup.policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CleanupPolicy {
    /// Delete old segments by time and size (Kafka's default).
    Delete,
    /// Keep the last record of each key.
    Compact,
}

impl CleanupPolicy {
    /// Kafka's name: `delete` or `compact`.
    pub fn name(self) -> &'static str {
        match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::Compact => "compact",
        }
    }
}

impl fmt::Display for CleanupPolicy {
    /// Kafka's name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The broker's configuration, with Kafka's keys and Kafka 4.x's defaults.
///
/// Built by [`Config::parse`], [`Config::load`], [`Config::from_properties`] or
/// [`Config::embedded_default`]; [`Config::with_overrides`] applies `--override key=value`.
/// Each field names its Kafka key. Sizes and counts keep Kafka's Java types (`INT` is `i32`,
/// `LONG` is `i64`, `SHORT` is `i16`).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    // ----- Server basics -----
    /// `node.id` (or its older synonym `broker.id`): this node's id, required, >= 0.
    pub node_id: i32,
    /// `process.roles`: `broker`, `controller` or both; default (when absent) both.
    pub process_roles: Vec<ProcessRole>,
    /// `controller.quorum.voters`: the static KRaft voters, `id@host:port`; default none.
    pub controller_quorum_voters: Vec<QuorumVoter>,
    /// `controller.quorum.bootstrap.servers`: controllers to contact, `host:port`; default none.
    pub controller_quorum_bootstrap_servers: Vec<HostPort>,
    /// `broker.rack`: the rack reported in metadata; default none (also when blank).
    pub broker_rack: Option<String>,
    /// `gregor.bootstrap.scram`: SCRAM credentials written with the bootstrap records when
    /// the metadata log is formatted, as `kafka-storage format --add-scram` (see
    /// `crate::security::bootstrap_scram`).
    pub bootstrap_scram: Option<String>,

    // ----- Sockets and listeners -----
    /// `listeners`: the endpoints to bind; default `PLAINTEXT://:9092`.
    pub listeners: Vec<Listener>,
    /// `advertised.listeners`: the endpoints given to clients. Default: the listeners that are
    /// not controller listeners. An empty host becomes `localhost` (Kafka uses the machine's
    /// canonical host name). Since Kafka 3.9 (KIP-853) it may also name controller listeners;
    /// see [`Config::advertised_listener_for`] for those.
    pub advertised_listeners: Vec<Listener>,
    /// `controller.listener.names`: names (upper case) of the listeners that serve the
    /// controller protocol; default none.
    pub controller_listener_names: Vec<String>,
    /// `listener.security.protocol.map`: listener name (upper case) to security protocol.
    /// Default Kafka's `PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL`,
    /// to which, as in Kafka, the controller listener names are added as `PLAINTEXT` when the key
    /// is not set and no listener uses SSL or SASL.
    pub listener_security_protocol_map: BTreeMap<String, SecurityProtocol>,
    /// `inter.broker.listener.name`, else the name of `security.inter.broker.protocol`
    /// (default `PLAINTEXT`): the listener brokers use between themselves.
    pub inter_broker_listener_name: String,
    /// `socket.request.max.bytes`: largest request accepted; default 104857600 (100 MiB), >= 1.
    pub socket_request_max_bytes: i32,
    /// `queued.max.request.bytes`: bytes of requests the broker holds at once, counted from
    /// each request's size prefix until its response is written (see
    /// [`crate::broker::Broker::request_bytes`]); a connection whose next request does not
    /// fit waits, unread, until others finish. At most 0 means no limit (Kafka's default
    /// -1). If set, it must be at least `socket.request.max.bytes`, as Kafka requires, so
    /// any one request fits.
    ///
    /// Default, unlike Kafka's unbounded -1: 268435456 (256 MiB), or
    /// `socket.request.max.bytes` if that is larger. Each request costs about its size in
    /// memory here (compressed batches are checked without being inflated), so this bounds
    /// what clients that send many or large requests, or never read their responses, can
    /// make the broker hold; 256 MiB takes two requests of the default 100 MiB maximum at
    /// once, or hundreds of ordinary ones (producers send at most `max.request.size`, 1 MiB
    /// by default).
    pub queued_max_request_bytes: i64,
    /// `telemetry.max.bytes`: largest metrics payload a client may push (KIP-714); default
    /// 1048576 (1 MiB), >= 1.
    pub telemetry_max_bytes: i32,
    /// `connections.max.idle.ms`: a connection with no request in flight that receives
    /// nothing for this long is closed; default 600000 (10 min); negative: never (Kafka's
    /// `Selector` has no idle expiry then).
    pub connections_max_idle_ms: i64,
    /// `max.connections`: most connections the broker holds at once, all listeners together;
    /// default `i32::MAX`, >= 0. Past it, new connections wait in the listen backlog (see
    /// `connection_quotas`).
    pub max_connections: i32,
    /// `listener.name.<listener>.max.connections`: the same limit for one listener, by
    /// listener name (upper case); unset listeners have no limit of their own.
    pub listener_max_connections: BTreeMap<String, i32>,
    /// `max.connections.per.ip`: most connections from one address; default `i32::MAX`,
    /// >= 0, 0 only with overrides. A connection past it is closed as soon as it is accepted.
    pub max_connections_per_ip: i32,
    /// `max.connections.per.ip.overrides`: `host:count` items (host names or addresses),
    /// comma-separated, in the order written; default none.
    pub max_connections_per_ip_overrides: Vec<(String, i32)>,

    // ----- Topics and logs -----
    /// `log.dirs`, else `log.dir` (both comma-separated lists): data directories; default
    /// `/tmp/kafka-logs`. Never empty, no duplicates.
    pub log_dirs: Vec<PathBuf>,
    /// `metadata.log.dir`: where `__cluster_metadata` lives; default none, meaning the first of
    /// [`Config::log_dirs`] (see [`Config::effective_metadata_log_dir`]).
    pub metadata_log_dir: Option<PathBuf>,
    /// The `metadata.log.*` and `metadata.max.retention.*` keys: segment rolls, snapshots
    /// and retention of the metadata log.
    pub metadata_log: MetadataLogConfig,
    /// `num.partitions`: partitions of an auto-created topic; default 1, >= 1.
    pub num_partitions: i32,
    /// `default.replication.factor`: replication factor of an auto-created topic; default 1.
    pub default_replication_factor: i16,
    /// `min.insync.replicas`: in-sync replicas an `acks=all` produce needs; default 1, >= 1.
    pub min_insync_replicas: i32,
    /// `auto.create.topics.enable`: create unknown topics on metadata requests; default true.
    pub auto_create_topics_enable: bool,
    /// `delete.topic.enable`: allow DeleteTopics; default true.
    pub delete_topic_enable: bool,
    /// `legacy.api.versions.enable` (this broker's own key, not Kafka's): serve the old
    /// protocol versions Kafka 4 dropped (KIP-896) as Kafka 3.9 did; default true. When
    /// false, every API is served from Kafka 4's oldest version, as Kafka 4 serves it
    /// (`handlers::legacy_versions`). Read-only: read at start-up.
    pub legacy_api_versions_enable: bool,
    /// `message.max.bytes`: largest record batch accepted; default 1048588, >= 0.
    pub message_max_bytes: i32,
    /// `fetch.max.bytes`: most bytes returned by one fetch; default 57671680 (55 MiB), >= 1024.
    pub fetch_max_bytes: i32,
    /// `max.incremental.fetch.session.cache.slots`: most incremental fetch sessions kept
    /// (KIP-227), split evenly over 8 cache shards as Kafka does; default 1000, >= 0.
    pub max_incremental_fetch_session_cache_slots: i32,
    /// `compression.type`: codec of the stored batches; default `producer`.
    pub compression_type: CompressionType,
    /// `compression.gzip.level` (KIP-390): 1-9, or -1 for zlib's default; default -1.
    pub compression_gzip_level: i32,
    /// `compression.lz4.level` (KIP-390): 1-17; default 9.
    pub compression_lz4_level: i32,
    /// `compression.zstd.level` (KIP-390): -131072 to 22; default 3.
    pub compression_zstd_level: i32,
    /// `log.cleanup.policy`: default `delete`.
    pub log_cleanup_policy: Vec<CleanupPolicy>,
    /// The log cleaner's `log.cleaner.*` keys.
    pub log_cleaner: CleanerSettings,
    /// `log.segment.bytes`: size at which a segment is rolled; default 1073741824 (1 GiB), >= 14.
    pub log_segment_bytes: i32,
    /// `log.roll.ms`, else `log.roll.hours` (default 168, >= 1) in milliseconds: age at which
    /// a segment is rolled.
    pub log_roll_ms: i64,
    /// `log.retention.ms`, else `log.retention.minutes`, else `log.retention.hours` (default
    /// 168), in milliseconds: age after which segments are deleted; -1 (any negative value
    /// becomes -1) means unlimited.
    pub log_retention_ms: i64,
    /// `log.retention.bytes`: size a partition is trimmed to; default -1 (unlimited).
    pub log_retention_bytes: i64,
    /// `log.retention.check.interval.ms`: how often retention runs; default 300000, >= 1.
    pub log_retention_check_interval_ms: i64,
    /// `log.flush.interval.messages`: fsync after this many messages; default `i64::MAX`
    /// (never: rely on the OS and replication), >= 1.
    pub log_flush_interval_messages: i64,
    /// `log.flush.interval.ms`: fsync data older than this; `None` (unset) means use
    /// [`Config::log_flush_scheduler_interval_ms`], as Kafka does.
    pub log_flush_interval_ms: Option<i64>,
    /// `log.flush.scheduler.interval.ms`: how often the flusher checks; default `i64::MAX`.
    pub log_flush_scheduler_interval_ms: i64,
    /// `log.index.size.max.bytes`: offset/time index size; default 10485760 (10 MiB), >= 4.
    pub log_index_size_max_bytes: i32,
    /// `log.index.interval.bytes`: bytes between index entries; default 4096, >= 0.
    pub log_index_interval_bytes: i32,
    /// `log.message.timestamp.type`: `CreateTime` (default) or `LogAppendTime`.
    pub log_message_timestamp_type: TimestampType,
    /// `log.message.timestamp.before.max.ms`: how far in the past a `CreateTime` timestamp may
    /// be; default `i64::MAX`, >= 0.
    pub log_message_timestamp_before_max_ms: i64,
    /// `log.message.timestamp.after.max.ms`: how far in the future a `CreateTime` timestamp may
    /// be; default 3600000 (1 hour, Kafka 4.0), >= 0.
    pub log_message_timestamp_after_max_ms: i64,
    /// `log.message.downconversion.enable`: default of the topic config
    /// `message.downconversion.enable` (whether Fetch v0-3 may down-convert); default true.
    pub log_message_downconversion_enable: bool,

    // ----- Consumer groups and offsets -----
    /// `offsets.topic.num.partitions`: partitions of `__consumer_offsets`; default 50, >= 1.
    pub offsets_topic_num_partitions: i32,
    /// `offsets.topic.replication.factor`: default 3, >= 1.
    pub offsets_topic_replication_factor: i16,
    /// `offsets.topic.segment.bytes`: default 104857600, >= 1.
    pub offsets_topic_segment_bytes: i32,
    /// `offsets.retention.minutes`: committed offsets of empty groups expire after this;
    /// default 10080 (7 days), >= 1.
    pub offsets_retention_minutes: i32,
    /// `offsets.retention.check.interval.ms`: default 600000, >= 1.
    pub offsets_retention_check_interval_ms: i64,
    /// `offset.metadata.max.bytes`: largest metadata string of an offset commit; default 4096.
    pub offset_metadata_max_bytes: i32,
    /// `group.initial.rebalance.delay.ms`: wait for more members of a new group; default 3000.
    pub group_initial_rebalance_delay_ms: i32,
    /// `group.min.session.timeout.ms`: default 6000.
    pub group_min_session_timeout_ms: i32,
    /// `broker.session.timeout.ms`: a broker that has not heartbeated to the controller for
    /// this long is fenced; default 9000, >= 1.
    pub broker_session_timeout_ms: i32,
    /// `broker.heartbeat.interval.ms`: how often a broker heartbeats; default 2000, >= 1.
    pub broker_heartbeat_interval_ms: i32,
    /// `group.max.session.timeout.ms`: default 1800000.
    pub group_max_session_timeout_ms: i32,
    /// `group.max.size`: members per classic group; default `i32::MAX`, >= 1.
    pub group_max_size: i32,
    /// `group.consumer.session.timeout.ms`: consumer-group (KIP-848) sessions; default 45000.
    pub group_consumer_session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms`: default 5000.
    pub group_consumer_heartbeat_interval_ms: i32,
    /// `group.consumer.min.session.timeout.ms`: the lowest `consumer.session.timeout.ms` a
    /// group may set; default 45000.
    pub group_consumer_min_session_timeout_ms: i32,
    /// `group.consumer.max.session.timeout.ms`: default 60000.
    pub group_consumer_max_session_timeout_ms: i32,
    /// `group.consumer.min.heartbeat.interval.ms`: default 5000.
    pub group_consumer_min_heartbeat_interval_ms: i32,
    /// `group.consumer.max.heartbeat.interval.ms`: default 15000.
    pub group_consumer_max_heartbeat_interval_ms: i32,
    /// `group.consumer.max.size`: members per consumer group; default `i32::MAX`, >= 1.
    pub group_consumer_max_size: i32,
    /// `group.consumer.assignors`: the server assignors, the first the default; default
    /// `uniform,range` (only these two are known).
    pub group_consumer_assignors: Vec<String>,
    /// `group.consumer.migration.policy`: `disabled`, `upgrade`, `downgrade` or
    /// `bidirectional` (the default), the online conversions between classic and consumer
    /// groups allowed.
    pub group_consumer_migration_policy: String,

    // ----- Transactions and producers -----
    /// `transaction.state.log.num.partitions`: partitions of `__transaction_state`; default 50.
    pub transaction_state_log_num_partitions: i32,
    /// `transaction.state.log.replication.factor`: default 3, >= 1.
    pub transaction_state_log_replication_factor: i16,
    /// `transaction.state.log.segment.bytes`: default 104857600, >= 1.
    pub transaction_state_log_segment_bytes: i32,
    /// `transaction.max.timeout.ms`: largest transaction timeout a producer may ask; default
    /// 900000, >= 1.
    pub transaction_max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`: default 604800000 (7 days), >= 1.
    pub transactional_id_expiration_ms: i32,
    /// `transaction.state.log.min.isr`: `min.insync.replicas` of `__transaction_state`;
    /// default 2, >= 1.
    pub transaction_state_log_min_isr: i32,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`: how often ongoing
    /// transactions past their timeout are looked for and aborted; default 10000, >= 1.
    pub transaction_abort_timed_out_cleanup_interval_ms: i32,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`: how often expired
    /// transactional ids are removed; default 3600000, >= 1.
    pub transaction_remove_expired_cleanup_interval_ms: i32,
    /// `producer.id.expiration.ms`: idempotent producer state expires after this; default
    /// 86400000 (1 day), >= 1.
    pub producer_id_expiration_ms: i32,
    /// `producer.id.expiration.check.interval.ms`: how often expired idempotent producers
    /// are removed from the partitions' state; default 600000 (10 minutes), >= 1.
    pub producer_id_expiration_check_interval_ms: i32,
    /// `transaction.partition.verification.enable` (KIP-890): whether a transactional
    /// batch needs the coordinator's word that its partition is in the transaction before
    /// it is appended; default true. Dynamic in Kafka (`DynamicProducerStateManagerConfig`).
    pub transaction_partition_verification_enable: bool,

    // ----- Keys not used -----
    /// Keys that are not Kafka broker keys (sorted): the binary warns about them and goes on.
    pub unknown_keys: Vec<String>,
    /// Kafka keys that are accepted but have no effect in this broker (sorted); see
    /// [`IGNORED_KEYS`] and [`IGNORED_KEY_PREFIXES`].
    pub ignored_keys: Vec<String>,

    /// All properties as read (after overrides), for [`Config::with_overrides`] and [`Config::get`].
    properties: BTreeMap<String, String>,
    /// Controller listeners to advertise that `advertised.listeners` does not name: taken from
    /// `listeners` (controller role only).
    advertised_controller_fallback: Vec<Listener>,
}

impl Config {
    /// Parses the text of a `server.properties` file.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        Self::from_properties(properties::parse(text)?)
    }

    /// Reads and parses a `server.properties` file; errors name the file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let bytes = std::fs::read(path).map_err(|error| ConfigError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            // Not UTF-8: ISO-8859-1, as Java's Properties.load(InputStream).
            Err(err) => err.into_bytes().into_iter().map(char::from).collect(),
        };
        Self::parse(&text).map_err(|error| ConfigError::File {
            path: path.to_path_buf(),
            error: Box::new(error),
        })
    }

    /// The configuration of [`EMBEDDED_DEFAULT`]: Kafka's KRaft quickstart (node 1, broker and
    /// controller, PLAINTEXT on :9092, controller on :9093, data in `/tmp/kraft-combined-logs`).
    pub fn embedded_default() -> Config {
        Self::parse(EMBEDDED_DEFAULT).expect("the embedded default configuration is valid")
    }

    /// Builds a configuration from key/value pairs (values as in a properties file).
    pub fn from_properties<I, K, V>(properties: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let properties = properties
            .into_iter()
            .map(|(key, value)| (key.into(), value.into()))
            .collect();
        build(Reader::new(properties))
    }

    /// Applies `key=value` overrides (as `kafka-server-start.sh --override`) on top of the
    /// properties this configuration was read from, and checks the result again.
    pub fn with_overrides<K: AsRef<str>, V: AsRef<str>>(
        self,
        overrides: &[(K, V)],
    ) -> Result<Config, ConfigError> {
        let mut properties = self.properties;
        for (key, value) in overrides {
            let key = key.as_ref().trim();
            if key.is_empty() {
                return Err(ConfigError::Override(format!("={}", value.as_ref())));
            }
            properties.insert(key.to_string(), value.as_ref().to_string());
        }
        Self::from_properties(properties)
    }

    /// The raw value of a key as read (after overrides), whether used, ignored or unknown.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.properties.get(key).map(String::as_str)
    }

    /// All properties as read (after overrides).
    pub fn properties(&self) -> &BTreeMap<String, String> {
        &self.properties
    }

    /// Whether `process.roles` contains `broker`.
    pub fn is_broker(&self) -> bool {
        self.process_roles.contains(&ProcessRole::Broker)
    }

    /// Whether `process.roles` contains `controller`.
    pub fn is_controller(&self) -> bool {
        self.process_roles.contains(&ProcessRole::Controller)
    }

    /// Whether this node is part of a multi-node cluster (issue 15): `controller.quorum.voters`
    /// names more than one voter (a controller is always one of them), or the quorum is
    /// found through `controller.quorum.bootstrap.servers`, or this node is not a controller. Then the
    /// metadata goes through the Raft quorum, this node registers with the active controller
    /// over the network and follows the metadata log; otherwise it is today's single node,
    /// its own only voter, committing the metadata log locally. A controller-only node
    /// (`process.roles=controller`) is always in a cluster: its brokers are other nodes.
    pub fn is_cluster(&self) -> bool {
        !self.is_controller()
            || !self.is_broker()
            || !self.controller_quorum_bootstrap_servers.is_empty()
            || self.controller_quorum_voters.len() > 1
    }

    /// Whether `name` (any case) is one of `controller.listener.names`.
    pub fn is_controller_listener(&self, name: &str) -> bool {
        self.controller_listener_names
            .iter()
            .any(|controller| controller.eq_ignore_ascii_case(name))
    }

    /// The listeners that are not controller listeners: the broker serves clients on these.
    pub fn broker_listeners(&self) -> impl Iterator<Item = &Listener> {
        self.listeners
            .iter()
            .filter(|listener| !self.is_controller_listener(&listener.name))
    }

    /// The listeners named in `controller.listener.names`.
    pub fn controller_listeners(&self) -> impl Iterator<Item = &Listener> {
        self.listeners
            .iter()
            .filter(|listener| self.is_controller_listener(&listener.name))
    }

    /// The advertised listeners that are not controller listeners: the brokers endpoints given to
    /// clients in Metadata responses.
    pub fn broker_advertised_listeners(&self) -> impl Iterator<Item = &Listener> {
        self.advertised_listeners
            .iter()
            .filter(|listener| !self.is_controller_listener(&listener.name))
    }

    /// The endpoint advertised for listener `name` (any case): from `advertised.listeners` (or
    /// its default), and for a controller listener that it does not name, the listener itself
    /// (empty host as `localhost`), as Kafka 4 advertises controllers.
    pub fn advertised_listener_for(&self, name: &str) -> Option<&Listener> {
        self.advertised_listeners
            .iter()
            .chain(&self.advertised_controller_fallback)
            .find(|listener| listener.name.eq_ignore_ascii_case(name))
    }

    /// The security protocol of listener `name` (any case).
    pub fn security_protocol_for(&self, name: &str) -> Option<SecurityProtocol> {
        self.listener_security_protocol_map
            .get(&name.to_ascii_uppercase())
            .copied()
    }

    /// The first data directory of `log.dirs` (there is always one).
    pub fn primary_log_dir(&self) -> &Path {
        &self.log_dirs[0]
    }

    /// `metadata.log.dir` if set, else the first data directory (Kafka's rule).
    pub fn effective_metadata_log_dir(&self) -> &Path {
        self.metadata_log_dir
            .as_deref()
            .unwrap_or_else(|| self.primary_log_dir())
    }

    /// `log.flush.interval.ms`, or `log.flush.scheduler.interval.ms` when unset.
    pub fn effective_log_flush_interval_ms(&self) -> i64 {
        self.log_flush_interval_ms
            .unwrap_or(self.log_flush_scheduler_interval_ms)
    }
}

/// Splits a `--override` argument `key=value` at its first `=` (the key is trimmed).
pub fn parse_override(arg: &str) -> Result<(String, String), ConfigError> {
    match arg.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => Err(ConfigError::Override(arg.to_string())),
    }
}

/// Typed access to the properties; remembers which keys were read, so that the others can be
/// sorted into ignored and unknown keys.
struct Reader {
    properties: BTreeMap<String, String>,
    consulted: BTreeSet<&'static str>,
}

fn invalid(key: &str, value: &str, expected: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        expected: expected.into(),
    }
}

impl Reader {
    fn new(properties: BTreeMap<String, String>) -> Reader {
        Reader {
            properties,
            consulted: BTreeSet::new(),
        }
    }

    /// The trimmed value of `key`, if set (Kafka trims every non-password value).
    fn string(&mut self, key: &'static str) -> Option<String> {
        self.consulted.insert(key);
        self.properties
            .get(key)
            .map(|value| value.trim().to_string())
    }

    /// The items of a comma-separated list, trimmed, empty items dropped; `None` if unset.
    fn list(&mut self, key: &'static str) -> Option<Vec<String>> {
        self.string(key).map(|value| split_list(&value))
    }

    fn integer(
        &mut self,
        key: &'static str,
        min: i64,
        max: i64,
    ) -> Result<Option<i64>, ConfigError> {
        let Some(value) = self.string(key) else {
            return Ok(None);
        };
        parse_integer(key, &value, min, max).map(Some)
    }

    /// An `INT` key of one listener, `listener.name.<listener, lower case>.<key>` (Kafka's
    /// listener prefix), at least `min`. The `listener.name.` family counts as ignored
    /// otherwise, so the key is not recorded as consulted.
    fn listener_int(
        &self,
        listener: &str,
        key: &str,
        min: i32,
    ) -> Result<Option<i32>, ConfigError> {
        let full = format!("listener.name.{}.{key}", listener.to_ascii_lowercase());
        let Some(value) = self.properties.get(&full) else {
            return Ok(None);
        };
        let number = parse_integer(&full, value.trim(), min.into(), i32::MAX.into())?;
        Ok(Some(number as i32))
    }

    /// An `INT` key, at least `min`.
    fn opt_int(&mut self, key: &'static str, min: i32) -> Result<Option<i32>, ConfigError> {
        let number = self.integer(key, min.into(), i32::MAX.into())?;
        Ok(number.map(|n| n as i32))
    }

    fn int(&mut self, key: &'static str, default: i32, min: i32) -> Result<i32, ConfigError> {
        Ok(self.opt_int(key, min)?.unwrap_or(default))
    }

    /// A `LONG` key, at least `min`.
    fn opt_long(&mut self, key: &'static str, min: i64) -> Result<Option<i64>, ConfigError> {
        self.integer(key, min, i64::MAX)
    }

    fn long(&mut self, key: &'static str, default: i64, min: i64) -> Result<i64, ConfigError> {
        Ok(self.opt_long(key, min)?.unwrap_or(default))
    }

    /// A replication factor: Kafka's `SHORT` (or `INT`) at least 1, as the wire's `i16`.
    fn replication_factor(&mut self, key: &'static str, default: i16) -> Result<i16, ConfigError> {
        let number = self.integer(key, 1, i16::MAX.into())?;
        Ok(number.map_or(default, |n| n as i16))
    }

    fn boolean(&mut self, key: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.string(key) {
            None => Ok(default),
            Some(value) if value.eq_ignore_ascii_case("true") => Ok(true),
            Some(value) if value.eq_ignore_ascii_case("false") => Ok(false),
            Some(value) => Err(invalid(key, &value, "true or false")),
        }
    }

    /// One of `choices` (exact case, as Kafka's `ValidString.in`).
    fn choice<T: Copy>(
        &mut self,
        key: &'static str,
        default: T,
        choices: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        let Some(value) = self.string(key) else {
            return Ok(default);
        };
        choose(key, &value, choices)
    }

    /// Splits the properties not consulted into (ignored, unknown).
    fn leftovers(&self) -> (Vec<String>, Vec<String>) {
        self.properties
            .keys()
            .filter(|key| !self.consulted.contains(key.as_str()))
            .cloned()
            .partition(|key| is_ignored_key(key))
    }
}

/// Parses an integer `value` of `key` within `min..=max`.
fn parse_integer(key: &str, value: &str, min: i64, max: i64) -> Result<i64, ConfigError> {
    let Ok(number) = value.parse::<i128>() else {
        return Err(invalid(key, value, "an integer"));
    };
    if number < i128::from(min) || number > i128::from(max) {
        let expected =
            if number < i128::from(min) && (max == i64::MAX || max == i64::from(i32::MAX)) {
                format!("an integer >= {min}")
            } else {
                format!("an integer between {min} and {max}")
            };
        return Err(invalid(key, value, expected));
    }
    Ok(number as i64)
}

/// `max.connections.per.ip.overrides` as Kafka reads it (`Csv.parseCsvMap`, then
/// `KafkaConfig.validateValues`): items split at commas, each at its last `:` into a host
/// (characters `[0-9a-zA-Z-%._:]`, so IPv6 addresses work unbracketed) and an integer
/// count. A host given twice keeps its last count, as Kafka's map does.
fn per_ip_overrides(value: &str) -> Result<Vec<(String, i32)>, ConfigError> {
    const KEY: &str = "max.connections.per.ip.overrides";
    let mut overrides: Vec<(String, i32)> = Vec::new();
    for item in split_list(value) {
        let Some((host, count)) = item.rsplit_once(':') else {
            return Err(invalid(KEY, &item, "host:count"));
        };
        let host = host.trim();
        let valid_host = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-%._:".contains(&b));
        if !valid_host {
            return Err(invalid(
                KEY,
                &item,
                "host:count with a host name or address",
            ));
        }
        let count = parse_integer(KEY, count.trim(), i32::MIN.into(), i32::MAX.into())? as i32;
        overrides.retain(|(h, _)| h != host);
        overrides.push((host.to_string(), count));
    }
    Ok(overrides)
}

fn choose<T: Copy>(key: &str, value: &str, choices: &[(&str, T)]) -> Result<T, ConfigError> {
    choices
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, choice)| *choice)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
            invalid(key, value, format!("one of {}", names.join(", ")))
        })
}

/// Kafka's list syntax: comma-separated, blanks around items ignored, empty items dropped.
fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}

const LISTENERS: &str = "listeners";
const ADVERTISED_LISTENERS: &str = "advertised.listeners";
const SECURITY_PROTOCOL_MAP: &str = "listener.security.protocol.map";

fn build(mut r: Reader) -> Result<Config, ConfigError> {
    // ----- Server basics -----
    let node_id = r.opt_int("node.id", 0)?;
    let broker_id = r.opt_int("broker.id", -1)?.filter(|id| *id >= 0);
    let node_id = match (node_id, broker_id) {
        (Some(node), Some(broker)) if node != broker => {
            return Err(ConfigError::Inconsistent(format!(
                "node.id ({node}) and broker.id ({broker}) must be equal when both are set"
            )));
        }
        (Some(id), _) | (None, Some(id)) => id,
        (None, None) => return Err(ConfigError::Missing { key: "node.id" }),
    };
    let process_roles = process_roles(&mut r)?;
    let controller_quorum_voters = quorum_voters(&mut r)?;
    let controller_quorum_bootstrap_servers = match r.list("controller.quorum.bootstrap.servers") {
        None => Vec::new(),
        Some(items) => items
            .iter()
            .map(|item| {
                listener::parse_server(item).map_err(|reason| {
                    invalid(
                        "controller.quorum.bootstrap.servers",
                        item,
                        format!("host:port ({reason})"),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let broker_rack = r.string("broker.rack").filter(|rack| !rack.is_empty());
    let bootstrap_scram = r
        .string("gregor.bootstrap.scram")
        .filter(|value| !value.trim().is_empty());

    // ----- Listeners -----
    let controller_listener_names: Vec<String> = {
        let mut names: Vec<String> = Vec::new();
        for name in r.list("controller.listener.names").unwrap_or_default() {
            let name = name.to_ascii_uppercase();
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    };
    let listener_texts = r
        .list(LISTENERS)
        .unwrap_or_else(|| vec!["PLAINTEXT://:9092".to_string()]);
    let advertised_texts = r.list(ADVERTISED_LISTENERS);
    let listener_security_protocol_map =
        security_protocol_map(&mut r, &controller_listener_names, &listener_texts)?;
    let listeners = parse_listeners(LISTENERS, &listener_texts, &listener_security_protocol_map)?;
    check_ports(&listeners, &listener_texts)?;
    for name in &controller_listener_names {
        if !listener_security_protocol_map.contains_key(name) {
            return Err(invalid(
                "controller.listener.names",
                name,
                "listener names with a security protocol (add it to listener.security.protocol.map)",
            ));
        }
    }
    let is_controller_name = |name: &str| controller_listener_names.iter().any(|c| c == name);
    let advertised_listeners = match &advertised_texts {
        Some(texts) => {
            let advertised =
                parse_listeners(ADVERTISED_LISTENERS, texts, &listener_security_protocol_map)?;
            for (listener, text) in advertised.iter().zip(texts) {
                if !listeners.iter().any(|l| l.name == listener.name) {
                    return Err(ConfigError::InvalidListener {
                        key: ADVERTISED_LISTENERS,
                        listener: text.clone(),
                        reason: format!(
                            "listener name {} is not defined in listeners (defined: {})",
                            listener.name,
                            names_of(&listeners)
                        ),
                    });
                }
            }
            advertised
        }
        None => listeners
            .iter()
            .filter(|listener| !is_controller_name(&listener.name))
            .cloned()
            .collect(),
    };
    let advertised_listeners = advertisable(advertised_listeners)?;
    let advertised_controller_fallback = if process_roles.contains(&ProcessRole::Controller) {
        advertisable(
            listeners
                .iter()
                .filter(|l| is_controller_name(&l.name))
                .filter(|l| !advertised_listeners.iter().any(|a| a.name == l.name))
                .cloned()
                .collect(),
        )?
    } else {
        Vec::new()
    };

    let inter_broker_name = r.string("inter.broker.listener.name");
    let inter_broker_protocol = r.string("security.inter.broker.protocol");
    let inter_broker_listener_name = match (inter_broker_name, inter_broker_protocol) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::Inconsistent(
                "only one of inter.broker.listener.name and security.inter.broker.protocol may be set"
                    .to_string(),
            ));
        }
        (Some(name), None) => {
            let name = name.to_ascii_uppercase();
            if !listener_security_protocol_map.contains_key(&name) {
                return Err(invalid(
                    "inter.broker.listener.name",
                    &name,
                    "a listener name of listener.security.protocol.map",
                ));
            }
            name
        }
        (None, Some(protocol)) => SecurityProtocol::from_name(&protocol)
            .ok_or_else(|| {
                invalid(
                    "security.inter.broker.protocol",
                    &protocol,
                    "one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL",
                )
            })?
            .name()
            .to_string(),
        (None, None) => SecurityProtocol::Plaintext.name().to_string(),
    };

    check_roles(
        node_id,
        &process_roles,
        &listeners,
        &advertised_listeners,
        &controller_listener_names,
        &inter_broker_listener_name,
        &controller_quorum_voters,
    )?;

    let socket_request_max_bytes = r.int("socket.request.max.bytes", 104_857_600, 1)?;
    let queued_max_request_bytes = match r.opt_long("queued.max.request.bytes", i64::MIN)? {
        None => DEFAULT_QUEUED_MAX_REQUEST_BYTES.max(socket_request_max_bytes.into()),
        // Kafka's `validateQueueMaxByte`.
        Some(bytes) if bytes > 0 && bytes < i64::from(socket_request_max_bytes) => {
            return Err(ConfigError::Inconsistent(format!(
                "queued.max.request.bytes ({bytes}) must be larger or equal to \
                 socket.request.max.bytes ({socket_request_max_bytes})"
            )));
        }
        Some(bytes) => bytes,
    };
    let telemetry_max_bytes = r.int("telemetry.max.bytes", 1024 * 1024, 1)?;
    let connections_max_idle_ms = r.long("connections.max.idle.ms", 600_000, i64::MIN)?;
    let max_connections = r.int("max.connections", i32::MAX, 0)?;
    let mut listener_max_connections = BTreeMap::new();
    for listener in &listeners {
        if let Some(max) = r.listener_int(&listener.name, "max.connections", 0)? {
            listener_max_connections.insert(listener.name.clone(), max);
        }
    }
    let max_connections_per_ip = r.int("max.connections.per.ip", i32::MAX, 0)?;
    let max_connections_per_ip_overrides = match r.string("max.connections.per.ip.overrides") {
        Some(value) => per_ip_overrides(&value)?,
        None => Vec::new(),
    };
    if max_connections_per_ip == 0 && max_connections_per_ip_overrides.is_empty() {
        return Err(ConfigError::Inconsistent(
            "max.connections.per.ip can be set to zero only if max.connections.per.ip.overrides \
             is set"
                .to_string(),
        ));
    }

    // ----- Logs -----
    let log_dirs = log_dirs(&mut r)?;
    let metadata_log_dir = r
        .string("metadata.log.dir")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from);
    let metadata_log = metadata_log::read(&mut r)?;
    let num_partitions = r.int("num.partitions", 1, 1)?;
    let default_replication_factor = r.replication_factor("default.replication.factor", 1)?;
    let min_insync_replicas = r.int("min.insync.replicas", 1, 1)?;
    let auto_create_topics_enable = r.boolean("auto.create.topics.enable", true)?;
    let delete_topic_enable = r.boolean("delete.topic.enable", true)?;
    let legacy_api_versions_enable = r.boolean("legacy.api.versions.enable", true)?;
    let message_max_bytes = r.int("message.max.bytes", 1_048_588, 0)?;
    let fetch_max_bytes = r.int("fetch.max.bytes", 57_671_680, 1024)?;
    let max_incremental_fetch_session_cache_slots =
        r.int("max.incremental.fetch.session.cache.slots", 1000, 0)?;
    let compression_type = {
        let choices: Vec<(&str, CompressionType)> = CompressionType::ALL
            .iter()
            .map(|c| (c.name(), *c))
            .collect();
        r.choice("compression.type", CompressionType::Producer, &choices)?
    };
    // Kafka's `CompressionType.<codec>.levelValidator()` ranges.
    let compression_gzip_level = match r.integer("compression.gzip.level", -1, 9)? {
        None => -1,
        Some(0) => return Err(invalid("compression.gzip.level", "0", "1 to 9, or -1")),
        Some(level) => level as i32,
    };
    let compression_lz4_level = r.integer("compression.lz4.level", 1, 17)?.unwrap_or(9) as i32;
    let compression_zstd_level = r
        .integer("compression.zstd.level", -131_072, 22)?
        .unwrap_or(3) as i32;
    let log_cleanup_policy = match r.list("log.cleanup.policy") {
        None => vec![CleanupPolicy::Delete],
        Some(items) => {
            let mut policies = Vec::new();
            for item in items {
                let policy = choose(
                    "log.cleanup.policy",
                    &item,
                    &[
                        ("delete", CleanupPolicy::Delete),
                        ("compact", CleanupPolicy::Compact),
                    ],
                )?;
                if !policies.contains(&policy) {
                    policies.push(policy);
                }
            }
            policies
        }
    };
    let log_cleaner = cleaner::read(&mut r)?;
    let log_segment_bytes = r.int("log.segment.bytes", 1_073_741_824, 14)?;
    let log_roll_ms = r.opt_long("log.roll.ms", 1)?;
    let log_roll_hours = r.int("log.roll.hours", 168, 1)?;
    let log_roll_ms = log_roll_ms.unwrap_or(i64::from(log_roll_hours) * MS_PER_HOUR);
    let retention_ms = r.opt_long("log.retention.ms", i64::MIN)?;
    let retention_minutes = r.opt_int("log.retention.minutes", i32::MIN)?;
    let retention_hours = r.int("log.retention.hours", 168, i32::MIN)?;
    let log_retention_ms = retention_ms
        .or(retention_minutes.map(|m| i64::from(m) * MS_PER_MINUTE))
        .unwrap_or(i64::from(retention_hours) * MS_PER_HOUR)
        .max(-1);
    let log_retention_bytes = r.long("log.retention.bytes", -1, i64::MIN)?;
    let log_retention_check_interval_ms = r.long("log.retention.check.interval.ms", 300_000, 1)?;
    let log_flush_interval_messages = r.long("log.flush.interval.messages", i64::MAX, 1)?;
    let log_flush_interval_ms = r.opt_long("log.flush.interval.ms", 0)?;
    let log_flush_scheduler_interval_ms =
        r.long("log.flush.scheduler.interval.ms", i64::MAX, i64::MIN)?;
    let log_index_size_max_bytes = r.int("log.index.size.max.bytes", 10_485_760, 4)?;
    let log_index_interval_bytes = r.int("log.index.interval.bytes", 4096, 0)?;
    let log_message_timestamp_type = r.choice(
        "log.message.timestamp.type",
        TimestampType::CreateTime,
        &[
            ("CreateTime", TimestampType::CreateTime),
            ("LogAppendTime", TimestampType::LogAppendTime),
        ],
    )?;
    let log_message_timestamp_before_max_ms =
        r.long("log.message.timestamp.before.max.ms", i64::MAX, 0)?;
    let log_message_timestamp_after_max_ms =
        r.long("log.message.timestamp.after.max.ms", 3_600_000, 0)?;
    let log_message_downconversion_enable = r.boolean("log.message.downconversion.enable", true)?;

    // ----- Groups and offsets -----
    let offsets_topic_num_partitions = r.int("offsets.topic.num.partitions", 50, 1)?;
    let offsets_topic_replication_factor =
        r.replication_factor("offsets.topic.replication.factor", 3)?;
    let offsets_topic_segment_bytes = r.int("offsets.topic.segment.bytes", 104_857_600, 1)?;
    let offsets_retention_minutes = r.int("offsets.retention.minutes", 10_080, 1)?;
    let offsets_retention_check_interval_ms =
        r.long("offsets.retention.check.interval.ms", 600_000, 1)?;
    let offset_metadata_max_bytes = r.int("offset.metadata.max.bytes", 4096, i32::MIN)?;
    let group_initial_rebalance_delay_ms = r.int("group.initial.rebalance.delay.ms", 3000, 0)?;
    let group_min_session_timeout_ms = r.int("group.min.session.timeout.ms", 6000, i32::MIN)?;
    let broker_session_timeout_ms = r.int("broker.session.timeout.ms", 9000, 1)?;
    let broker_heartbeat_interval_ms = r.int("broker.heartbeat.interval.ms", 2000, 1)?;
    let group_max_session_timeout_ms =
        r.int("group.max.session.timeout.ms", 1_800_000, i32::MIN)?;
    if group_max_session_timeout_ms < group_min_session_timeout_ms {
        return Err(ConfigError::Inconsistent(format!(
            "group.max.session.timeout.ms ({group_max_session_timeout_ms}) must not be less than \
             group.min.session.timeout.ms ({group_min_session_timeout_ms})"
        )));
    }
    let group_max_size = r.int("group.max.size", i32::MAX, 1)?;
    let group_consumer_session_timeout_ms =
        r.int("group.consumer.session.timeout.ms", 45_000, 1)?;
    let group_consumer_heartbeat_interval_ms =
        r.int("group.consumer.heartbeat.interval.ms", 5_000, 1)?;
    let group_consumer_min_session_timeout_ms =
        r.int("group.consumer.min.session.timeout.ms", 45_000, 1)?;
    let group_consumer_max_session_timeout_ms =
        r.int("group.consumer.max.session.timeout.ms", 60_000, 1)?;
    let group_consumer_min_heartbeat_interval_ms =
        r.int("group.consumer.min.heartbeat.interval.ms", 5_000, 1)?;
    let group_consumer_max_heartbeat_interval_ms =
        r.int("group.consumer.max.heartbeat.interval.ms", 15_000, 1)?;
    // Kafka's `GroupCoordinatorConfig` checks, in its order and words.
    let consumer_bounds = [
        (
            group_consumer_max_heartbeat_interval_ms >= group_consumer_min_heartbeat_interval_ms,
            "group.consumer.max.heartbeat.interval.ms must be greater than or equal to \
             group.consumer.min.heartbeat.interval.ms",
        ),
        (
            group_consumer_heartbeat_interval_ms >= group_consumer_min_heartbeat_interval_ms,
            "group.consumer.heartbeat.interval.ms must be greater than or equal to \
             group.consumer.min.heartbeat.interval.ms",
        ),
        (
            group_consumer_heartbeat_interval_ms <= group_consumer_max_heartbeat_interval_ms,
            "group.consumer.heartbeat.interval.ms must be less than or equal to \
             group.consumer.max.heartbeat.interval.ms",
        ),
        (
            group_consumer_max_session_timeout_ms >= group_consumer_min_session_timeout_ms,
            "group.consumer.max.session.timeout.ms must be greater than or equal to \
             group.consumer.min.session.timeout.ms",
        ),
        (
            group_consumer_session_timeout_ms >= group_consumer_min_session_timeout_ms,
            "group.consumer.session.timeout.ms must be greater than or equal to \
             group.consumer.min.session.timeout.ms",
        ),
        (
            group_consumer_session_timeout_ms <= group_consumer_max_session_timeout_ms,
            "group.consumer.session.timeout.ms must be less than or equal to \
             group.consumer.max.session.timeout.ms",
        ),
        (
            group_consumer_heartbeat_interval_ms < group_consumer_session_timeout_ms,
            "group.consumer.heartbeat.interval.ms must be less than \
             group.consumer.session.timeout.ms",
        ),
    ];
    if let Some((_, message)) = consumer_bounds.iter().find(|(ok, _)| !ok) {
        return Err(ConfigError::Inconsistent((*message).to_string()));
    }
    let group_consumer_max_size = r.int("group.consumer.max.size", i32::MAX, 1)?;
    let group_consumer_assignors = r
        .list("group.consumer.assignors")
        .unwrap_or_else(|| vec!["uniform".to_string(), "range".to_string()]);
    if let Some(bad) = group_consumer_assignors
        .iter()
        .find(|a| !matches!(a.as_str(), "uniform" | "range"))
    {
        return Err(ConfigError::Inconsistent(format!(
            "group.consumer.assignors: unknown assignor {bad} (known: uniform, range)"
        )));
    }

    let group_consumer_migration_policy = r
        .string("group.consumer.migration.policy")
        .map(|p| p.trim().to_ascii_lowercase())
        .unwrap_or_else(|| "bidirectional".to_string());
    if !matches!(
        group_consumer_migration_policy.as_str(),
        "disabled" | "upgrade" | "downgrade" | "bidirectional"
    ) {
        return Err(ConfigError::Inconsistent(format!(
            "group.consumer.migration.policy: unknown policy {group_consumer_migration_policy} \
             (known: disabled, upgrade, downgrade, bidirectional)"
        )));
    }

    // ----- Transactions -----
    let transaction_state_log_num_partitions =
        r.int("transaction.state.log.num.partitions", 50, 1)?;
    let transaction_state_log_replication_factor =
        r.replication_factor("transaction.state.log.replication.factor", 3)?;
    let transaction_state_log_segment_bytes =
        r.int("transaction.state.log.segment.bytes", 104_857_600, 1)?;
    let transaction_max_timeout_ms = r.int("transaction.max.timeout.ms", 900_000, 1)?;
    let transactional_id_expiration_ms = r.int("transactional.id.expiration.ms", 604_800_000, 1)?;
    let transaction_state_log_min_isr = r.int("transaction.state.log.min.isr", 2, 1)?;
    let transaction_abort_timed_out_cleanup_interval_ms = r.int(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        10_000,
        1,
    )?;
    let transaction_remove_expired_cleanup_interval_ms = r.int(
        "transaction.remove.expired.transaction.cleanup.interval.ms",
        3_600_000,
        1,
    )?;
    let producer_id_expiration_ms = r.int("producer.id.expiration.ms", 86_400_000, 1)?;
    let producer_id_expiration_check_interval_ms =
        r.int("producer.id.expiration.check.interval.ms", 600_000, 1)?;
    let transaction_partition_verification_enable =
        r.boolean("transaction.partition.verification.enable", true)?;

    let (ignored_keys, unknown_keys) = r.leftovers();
    Ok(Config {
        node_id,
        process_roles,
        controller_quorum_voters,
        controller_quorum_bootstrap_servers,
        broker_rack,
        bootstrap_scram,
        listeners,
        advertised_listeners,
        controller_listener_names,
        listener_security_protocol_map,
        inter_broker_listener_name,
        socket_request_max_bytes,
        queued_max_request_bytes,
        telemetry_max_bytes,
        connections_max_idle_ms,
        max_connections,
        listener_max_connections,
        max_connections_per_ip,
        max_connections_per_ip_overrides,
        log_dirs,
        metadata_log_dir,
        metadata_log,
        num_partitions,
        default_replication_factor,
        min_insync_replicas,
        auto_create_topics_enable,
        delete_topic_enable,
        legacy_api_versions_enable,
        message_max_bytes,
        fetch_max_bytes,
        max_incremental_fetch_session_cache_slots,
        compression_type,
        compression_gzip_level,
        compression_lz4_level,
        compression_zstd_level,
        log_cleanup_policy,
        log_cleaner,
        log_segment_bytes,
        log_roll_ms,
        log_retention_ms,
        log_retention_bytes,
        log_retention_check_interval_ms,
        log_flush_interval_messages,
        log_flush_interval_ms,
        log_flush_scheduler_interval_ms,
        log_index_size_max_bytes,
        log_index_interval_bytes,
        log_message_timestamp_type,
        log_message_timestamp_before_max_ms,
        log_message_timestamp_after_max_ms,
        log_message_downconversion_enable,
        offsets_topic_num_partitions,
        offsets_topic_replication_factor,
        offsets_topic_segment_bytes,
        offsets_retention_minutes,
        offsets_retention_check_interval_ms,
        offset_metadata_max_bytes,
        group_initial_rebalance_delay_ms,
        group_min_session_timeout_ms,
        broker_session_timeout_ms,
        broker_heartbeat_interval_ms,
        group_max_session_timeout_ms,
        group_max_size,
        group_consumer_session_timeout_ms,
        group_consumer_heartbeat_interval_ms,
        group_consumer_min_session_timeout_ms,
        group_consumer_max_session_timeout_ms,
        group_consumer_min_heartbeat_interval_ms,
        group_consumer_max_heartbeat_interval_ms,
        group_consumer_max_size,
        group_consumer_assignors,
        group_consumer_migration_policy,
        transaction_state_log_num_partitions,
        transaction_state_log_replication_factor,
        transaction_state_log_segment_bytes,
        transaction_max_timeout_ms,
        transactional_id_expiration_ms,
        transaction_state_log_min_isr,
        transaction_abort_timed_out_cleanup_interval_ms,
        transaction_remove_expired_cleanup_interval_ms,
        producer_id_expiration_ms,
        producer_id_expiration_check_interval_ms,
        transaction_partition_verification_enable,
        unknown_keys,
        ignored_keys,
        properties: r.properties,
        advertised_controller_fallback,
    })
}

fn process_roles(r: &mut Reader) -> Result<Vec<ProcessRole>, ConfigError> {
    let Some(items) = r.list("process.roles") else {
        return Ok(vec![ProcessRole::Broker, ProcessRole::Controller]);
    };
    let mut roles = Vec::new();
    for item in &items {
        let role = choose(
            "process.roles",
            item,
            &[
                ("broker", ProcessRole::Broker),
                ("controller", ProcessRole::Controller),
            ],
        )?;
        if roles.contains(&role) {
            return Err(invalid(
                "process.roles",
                &items.join(","),
                "broker and/or controller, each once",
            ));
        }
        roles.push(role);
    }
    if roles.is_empty() {
        return Err(invalid("process.roles", "", "broker and/or controller"));
    }
    roles.sort();
    Ok(roles)
}

fn quorum_voters(r: &mut Reader) -> Result<Vec<QuorumVoter>, ConfigError> {
    const KEY: &str = "controller.quorum.voters";
    let mut voters: Vec<QuorumVoter> = Vec::new();
    for item in r.list(KEY).unwrap_or_default() {
        let voter = listener::parse_voter(&item)
            .map_err(|reason| invalid(KEY, &item, format!("id@host:port ({reason})")))?;
        if voters.iter().any(|v| v.id == voter.id) {
            return Err(invalid(
                KEY,
                &item,
                format!("distinct voter ids ({} appears twice)", voter.id),
            ));
        }
        voters.push(voter);
    }
    Ok(voters)
}

/// Kafka's `effectiveListenerSecurityProtocolMap`.
fn security_protocol_map(
    r: &mut Reader,
    controller_listener_names: &[String],
    listener_texts: &[String],
) -> Result<BTreeMap<String, SecurityProtocol>, ConfigError> {
    let explicit = r.string(SECURITY_PROTOCOL_MAP);
    let mut map = BTreeMap::new();
    for item in split_list(explicit.as_deref().unwrap_or(DEFAULT_SECURITY_PROTOCOL_MAP)) {
        let parsed = item.rsplit_once(':').and_then(|(name, protocol)| {
            let name = name.trim();
            let protocol = SecurityProtocol::from_name(protocol.trim())?;
            (!name.is_empty()).then(|| (name.to_ascii_uppercase(), protocol))
        });
        let Some((name, protocol)) = parsed else {
            return Err(invalid(
                SECURITY_PROTOCOL_MAP,
                &item,
                "LISTENER_NAME:PROTOCOL with a protocol among PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL",
            ));
        };
        if map.insert(name.clone(), protocol).is_some() {
            return Err(invalid(
                SECURITY_PROTOCOL_MAP,
                &item,
                format!("each listener name once ({name} appears twice)"),
            ));
        }
    }
    if explicit.is_none() {
        // Kafka: with the default map, controller listeners are PLAINTEXT unless something
        // uses SSL or SASL.
        let secure = |name: &str| matches!(name, "SSL" | "SASL_SSL" | "SASL_PLAINTEXT");
        let uses_secure = controller_listener_names.iter().any(|name| secure(name))
            || listener_texts.iter().any(|text| {
                listener::split_listener_name(text).is_ok_and(|(name, _)| secure(&name))
            });
        if !uses_secure {
            for name in controller_listener_names {
                map.entry(name.clone())
                    .or_insert(SecurityProtocol::Plaintext);
            }
        }
    }
    Ok(map)
}

fn parse_listeners(
    key: &'static str,
    texts: &[String],
    protocols: &BTreeMap<String, SecurityProtocol>,
) -> Result<Vec<Listener>, ConfigError> {
    let mut listeners: Vec<Listener> = Vec::new();
    for text in texts {
        let fail = |reason: String| ConfigError::InvalidListener {
            key,
            listener: text.clone(),
            reason,
        };
        let (name, _) = listener::split_listener_name(text).map_err(fail)?;
        if !protocols.contains_key(&name) {
            return Err(fail(
                "unknown security protocol (add it to listener.security.protocol.map)".to_string(),
            ));
        }
        let listener = listener::parse_listener(text).map_err(fail)?;
        if listeners.iter().any(|l| l.name == listener.name) {
            return Err(fail(format!("duplicate listener name {}", listener.name)));
        }
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Kafka: listeners need distinct ports (0 aside), unless exactly two share one, an IPv4 and an
/// IPv6 address.
fn check_ports(listeners: &[Listener], texts: &[String]) -> Result<(), ConfigError> {
    for (index, listener) in listeners.iter().enumerate() {
        if listener.port == 0 {
            continue;
        }
        let sharing: Vec<&Listener> = listeners
            .iter()
            .filter(|l| l.port == listener.port)
            .collect();
        let allowed = sharing.len() == 1
            || (sharing.len() == 2 && listener::may_share_port(sharing[0], sharing[1]));
        if !allowed {
            return Err(ConfigError::InvalidListener {
                key: LISTENERS,
                listener: texts[index].clone(),
                reason: format!(
                    "port {} is used by another listener (only an IPv4 and an IPv6 address may share a port)",
                    listener.port
                ),
            });
        }
    }
    Ok(())
}

/// Advertised endpoints: an empty host becomes `localhost`; wildcard addresses are refused.
fn advertisable(listeners: Vec<Listener>) -> Result<Vec<Listener>, ConfigError> {
    listeners
        .into_iter()
        .map(|mut listener| {
            if matches!(listener.host.as_str(), "0.0.0.0" | "::") {
                return Err(ConfigError::InvalidListener {
                    key: ADVERTISED_LISTENERS,
                    listener: listener.to_string(),
                    reason: format!(
                        "cannot advertise the non-routable address {} (set advertised.listeners)",
                        listener.host
                    ),
                });
            }
            if listener.host.is_empty() {
                listener.host = "localhost".to_string();
            }
            Ok(listener)
        })
        .collect()
}

fn names_of(listeners: &[Listener]) -> String {
    let names: Vec<&str> = listeners.iter().map(|l| l.name.as_str()).collect();
    names.join(", ")
}

/// Kafka's KRaft checks between roles, listeners and voters.
fn check_roles(
    node_id: i32,
    roles: &[ProcessRole],
    listeners: &[Listener],
    advertised: &[Listener],
    controller_names: &[String],
    inter_broker: &str,
    voters: &[QuorumVoter],
) -> Result<(), ConfigError> {
    let broker = roles.contains(&ProcessRole::Broker);
    let controller = roles.contains(&ProcessRole::Controller);
    let is_controller_name = |name: &str| controller_names.iter().any(|c| c == name);
    let fail = |message: String| Err(ConfigError::Inconsistent(message));
    if broker {
        if controller_names.iter().any(|name| name == inter_broker) {
            return fail(format!(
                "controller.listener.names must not contain the inter-broker listener {inter_broker}"
            ));
        }
        let broker_advertised: Vec<&Listener> = advertised
            .iter()
            .filter(|l| !is_controller_name(&l.name))
            .collect();
        if broker_advertised.is_empty() {
            return fail(
                "there must be at least one broker listener in listeners and advertised.listeners \
                 (perhaps all of them are in controller.listener.names?)"
                    .to_string(),
            );
        }
        if !broker_advertised.iter().any(|l| l.name == inter_broker) {
            let names: Vec<&str> = broker_advertised.iter().map(|l| l.name.as_str()).collect();
            return fail(format!(
                "the inter-broker listener {inter_broker} (inter.broker.listener.name or \
                 security.inter.broker.protocol) must be one of the advertised broker listeners: {}",
                names.join(", ")
            ));
        }
    }
    if controller {
        for name in controller_names {
            if !listeners.iter().any(|l| &l.name == name) {
                return fail(format!(
                    "controller.listener.names contains {name}, which is not in listeners \
                     (required with the controller role)"
                ));
            }
        }
        if !voters.is_empty() && !voters.iter().any(|v| v.id == node_id) {
            return fail(format!(
                "with the controller role, node.id {node_id} must be one of controller.quorum.voters"
            ));
        }
    } else if let Some(listener) = listeners.iter().find(|l| is_controller_name(&l.name)) {
        return fail(format!(
            "listeners must not contain the controller listener {} without the controller role",
            listener.name
        ));
    }
    let stray = listeners.iter().find(|l| !is_controller_name(&l.name));
    match stray {
        Some(listener) if controller && !broker => fail(format!(
            "with process.roles=controller, listeners may only contain controller listeners \
             (found {})",
            listener.name
        )),
        _ => Ok(()),
    }
}

fn log_dirs(r: &mut Reader) -> Result<Vec<PathBuf>, ConfigError> {
    let dirs = r.list("log.dirs");
    let dir = r.list("log.dir");
    let (key, dirs) = match (dirs, dir) {
        (Some(dirs), _) => ("log.dirs", dirs),
        (None, Some(dir)) => ("log.dir", dir),
        (None, None) => ("log.dir", vec!["/tmp/kafka-logs".to_string()]),
    };
    if dirs.is_empty() {
        return Err(invalid(key, "", "at least one directory"));
    }
    let mut paths: Vec<PathBuf> = Vec::new();
    for dir in dirs {
        let path = PathBuf::from(&dir);
        if paths.contains(&path) {
            return Err(invalid(key, &dir, "distinct directories (listed twice)"));
        }
        paths.push(path);
    }
    Ok(paths)
}
