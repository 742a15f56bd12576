//! Kafka's topic configs: the names Kafka 4.x knows, their types, defaults and validators,
//! the broker configs they default to, and what they mean for a partition log.
//!
//! * [`TOPIC_CONFIGS`]: every topic config of Kafka 4.x (`LogConfig`'s definitions, in
//!   Kafka's order), with its type, default, range or allowed values, and its broker
//!   synonyms (`retention.ms` defaults to `log.retention.ms`, then `log.retention.minutes`,
//!   then `log.retention.hours`), as `ServerTopicConfigSynonyms` lists them.
//! * [`validate`]: what Kafka's controller checks before it writes `ConfigRecord`s for a
//!   topic (unknown names, unparsable or out-of-range values, conflicting values, tiered
//!   storage that this broker does not have), with Kafka's messages
//!   (`Invalid value abc for configuration retention.ms: Not a number of type LONG`).
//! * [`describe`]: the effective value and source of every topic config (a topic override,
//!   a dynamic broker config, a static broker config from `server.properties`, or Kafka's
//!   default) with its synonyms, as DescribeConfigs and CreateTopics (v5+) report them.
//! * [`log_config`]: the [`LogConfig`] of a partition: the broker's defaults with the
//!   topic's overrides applied.
//!
//! Most configs are accepted and reported without effect on this broker (
//! tiered storage, throttling, ...); [`log_config`] lists those it
//! applies.

use std::collections::BTreeMap;
use std::fmt;

use gregor_protocol::records::Compression;

use crate::cluster::image::{ConfigResource, MetadataImage};
use crate::storage::{CleanupPolicy, LogConfig, TimestampType};

/// Type of a config, as Kafka's `ConfigDef.Type` (its id is DescribeConfigs' `ConfigType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigType {
    /// `true` or `false` (any case).
    Boolean,
    /// A string.
    String,
    /// A 32-bit integer.
    Int,
    /// A 16-bit integer.
    Short,
    /// A 64-bit integer.
    Long,
    /// A double.
    Double,
    /// A comma-separated list.
    List,
    /// A Java class name.
    Class,
    /// A secret.
    Password,
}

impl ConfigType {
    /// The type id of DescribeConfigs responses (v3+): BOOLEAN 1, STRING 2, INT 3, SHORT 4,
    /// LONG 5, DOUBLE 6, LIST 7, CLASS 8, PASSWORD 9.
    pub fn id(self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Short => 4,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
            ConfigType::Class => 8,
            ConfigType::Password => 9,
        }
    }

    /// Kafka's name of the type (`LONG`, ...), as its error messages print it.
    pub fn name(self) -> &'static str {
        match self {
            ConfigType::Boolean => "BOOLEAN",
            ConfigType::String => "STRING",
            ConfigType::Int => "INT",
            ConfigType::Short => "SHORT",
            ConfigType::Long => "LONG",
            ConfigType::Double => "DOUBLE",
            ConfigType::List => "LIST",
            ConfigType::Class => "CLASS",
            ConfigType::Password => "PASSWORD",
        }
    }
}

/// Where a config value comes from (DescribeConfigs' `ConfigSource`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigSource {
    /// Unknown (0).
    Unknown,
    /// Set on the topic (1, Kafka's `DYNAMIC_TOPIC_CONFIG` / `TOPIC_CONFIG`).
    DynamicTopicConfig,
    /// Set dynamically on this broker (2).
    DynamicBrokerConfig,
    /// Set dynamically as the default of every broker (3).
    DynamicDefaultBrokerConfig,
    /// Set in the broker's `server.properties` (4).
    StaticBrokerConfig,
    /// Kafka's default (5).
    DefaultConfig,
    /// A dynamic broker logger level (6).
    DynamicBrokerLoggerConfig,
    /// A client metrics subscription (7).
    ClientMetricsConfig,
    /// A group config (8).
    GroupConfig,
}

impl ConfigSource {
    /// The wire id.
    pub fn id(self) -> i8 {
        match self {
            ConfigSource::Unknown => 0,
            ConfigSource::DynamicTopicConfig => 1,
            ConfigSource::DynamicBrokerConfig => 2,
            ConfigSource::DynamicDefaultBrokerConfig => 3,
            ConfigSource::StaticBrokerConfig => 4,
            ConfigSource::DefaultConfig => 5,
            ConfigSource::DynamicBrokerLoggerConfig => 6,
            ConfigSource::ClientMetricsConfig => 7,
            ConfigSource::GroupConfig => 8,
        }
    }
}

/// A broker config a topic config defaults to, with the factor that converts its unit to
/// the topic config's (`log.retention.hours` is multiplied by 3,600,000 to give
/// `retention.ms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BrokerSynonym {
    /// The broker config key.
    pub name: &'static str,
    /// The unit conversion factor (1 for the same unit).
    pub multiplier: i64,
    /// Kafka's default of the broker config, when it has one (`log.retention.hours` has
    /// 168, `log.retention.ms` none).
    pub default: Option<&'static str>,
}

const fn syn(name: &'static str, default: Option<&'static str>) -> BrokerSynonym {
    BrokerSynonym {
        name,
        multiplier: 1,
        default,
    }
}

const MS_PER_MINUTE: i64 = 60_000;
const MS_PER_HOUR: i64 = 3_600_000;

/// A check of a parsed value (Kafka's validators).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Validator {
    None,
    /// `Range.atLeast(min)`.
    AtLeast(i64),
    /// `Range.between(min, max)`.
    Between(i64, i64),
    /// `ValidString.in(...)`.
    OneOf(&'static [&'static str]),
    /// `ValidList.in(...)`.
    ListOf(&'static [&'static str]),
    /// `CompressionType.GZIP.levelValidator()`: 1 to 9, or -1.
    GzipLevel,
    /// `ThrottledReplicaListValidator`: `*` or `partition:broker` pairs.
    ThrottledReplicas,
}

/// One topic config Kafka knows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TopicConfigDef {
    /// The config name (`retention.ms`).
    pub name: &'static str,
    /// Its type.
    pub config_type: ConfigType,
    /// Kafka's default, as Kafka prints it (`ConfigDef.convertToString`).
    pub default: &'static str,
    /// The broker configs it defaults to, in order of precedence.
    pub synonyms: &'static [BrokerSynonym],
    /// What it does (one sentence).
    pub doc: &'static str,
    validator: Validator,
}

impl TopicConfigDef {
    /// Whether the values are comma-separated lists (what APPEND and SUBTRACT need).
    pub fn is_list(&self) -> bool {
        self.config_type == ConfigType::List
    }

    /// Whether values are secrets (never for topic configs).
    pub fn is_sensitive(&self) -> bool {
        self.config_type == ConfigType::Password
    }

    /// Parses and checks `value` as Kafka's `ConfigDef` does; the error is Kafka's message.
    pub fn parse(&self, value: &str) -> Result<ConfigValue, InvalidConfig> {
        let parsed = parse_type(self.name, self.config_type, value)?;
        check(self.name, self.validator, &parsed)?;
        Ok(parsed)
    }
}

const fn def(
    name: &'static str,
    config_type: ConfigType,
    default: &'static str,
    validator: Validator,
    synonyms: &'static [BrokerSynonym],
    doc: &'static str,
) -> TopicConfigDef {
    TopicConfigDef {
        name,
        config_type,
        default,
        synonyms,
        doc,
        validator,
    }
}

const LONG_MAX: &str = "9223372036854775807";

/// Kafka's `cleanup.policy` values.
pub const CLEANUP_POLICIES: &[&str] = &["compact", "delete"];
/// Kafka's topic `compression.type` values (`BrokerCompressionType`).
pub const COMPRESSION_TYPES: &[&str] =
    &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
/// Kafka's `message.timestamp.type` values.
pub const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];

use ConfigType::{Boolean, Double, Int, List, Long, String as Str};

/// Every topic config of Kafka 4.x, in Kafka's definition order (the order in which it
/// validates them).
pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    def(
        "segment.bytes",
        Int,
        "1073741824",
        Validator::AtLeast(1024 * 1024),
        &[syn("log.segment.bytes", Some("1073741824"))],
        "Size in bytes at which the partition's active segment is closed and a new one started.",
    ),
    def(
        "segment.ms",
        Long,
        "604800000",
        Validator::AtLeast(1),
        &[
            syn("log.roll.ms", None),
            BrokerSynonym {
                name: "log.roll.hours",
                multiplier: MS_PER_HOUR,
                default: Some("168"),
            },
        ],
        "Milliseconds after which the active segment is rolled even when not full, so retention and compaction can act on it.",
    ),
    def(
        "segment.jitter.ms",
        Long,
        "0",
        Validator::AtLeast(0),
        &[
            syn("log.roll.jitter.ms", None),
            BrokerSynonym {
                name: "log.roll.jitter.hours",
                multiplier: MS_PER_HOUR,
                default: Some("0"),
            },
        ],
        "Upper bound of a random amount, in ms, taken off the roll time so that segments do not all roll at once.",
    ),
    def(
        "segment.index.bytes",
        Int,
        "10485760",
        Validator::AtLeast(4),
        &[syn("log.index.size.max.bytes", Some("10485760"))],
        "Bytes preallocated for each segment's offset index, which maps offsets to file positions.",
    ),
    def(
        "flush.messages",
        Long,
        LONG_MAX,
        Validator::AtLeast(1),
        &[syn("log.flush.interval.messages", Some(LONG_MAX))],
        "Records appended between forced fsyncs of the partition.",
    ),
    def(
        "flush.ms",
        Long,
        LONG_MAX,
        Validator::AtLeast(0),
        &[
            syn("log.flush.interval.ms", None),
            syn("log.flush.scheduler.interval.ms", Some(LONG_MAX)),
        ],
        "Milliseconds between forced fsyncs of the partition.",
    ),
    def(
        "retention.bytes",
        Long,
        "-1",
        Validator::None,
        &[syn("log.retention.bytes", Some("-1"))],
        "Bytes a partition may hold under the delete policy before its oldest segments go (-1: unbounded).",
    ),
    def(
        "retention.ms",
        Long,
        "604800000",
        Validator::AtLeast(-1),
        &[
            syn("log.retention.ms", None),
            BrokerSynonym {
                name: "log.retention.minutes",
                multiplier: MS_PER_MINUTE,
                default: None,
            },
            BrokerSynonym {
                name: "log.retention.hours",
                multiplier: MS_PER_HOUR,
                default: Some("168"),
            },
        ],
        "Milliseconds a segment is kept under the delete policy before removal (-1: forever).",
    ),
    def(
        "max.message.bytes",
        Int,
        "1048588",
        Validator::AtLeast(0),
        &[syn("message.max.bytes", Some("1048588"))],
        "Largest record batch, in bytes after compression, this topic accepts.",
    ),
    def(
        "index.interval.bytes",
        Int,
        "4096",
        Validator::AtLeast(0),
        &[syn("log.index.interval.bytes", Some("4096"))],
        "Bytes of records between two offset index entries; smaller gives finer seeks and bigger indexes.",
    ),
    def(
        "delete.retention.ms",
        Long,
        "86400000",
        Validator::AtLeast(0),
        &[syn("log.cleaner.delete.retention.ms", Some("86400000"))],
        "Milliseconds a tombstone survives in a compacted topic, so that consumers still see the delete.",
    ),
    def(
        "min.compaction.lag.ms",
        Long,
        "0",
        Validator::AtLeast(0),
        &[syn("log.cleaner.min.compaction.lag.ms", Some("0"))],
        "Milliseconds a record stays exempt from compaction after it is written.",
    ),
    def(
        "max.compaction.lag.ms",
        Long,
        LONG_MAX,
        Validator::AtLeast(1),
        &[syn("log.cleaner.max.compaction.lag.ms", Some(LONG_MAX))],
        "Longest time, in ms, a record can wait before the cleaner must compact its segment.",
    ),
    def(
        "file.delete.delay.ms",
        Long,
        "60000",
        Validator::AtLeast(0),
        &[syn("log.segment.delete.delay.ms", Some("60000"))],
        "Milliseconds a removed segment file waits before it is deleted from disk.",
    ),
    def(
        "min.cleanable.dirty.ratio",
        Double,
        "0.5",
        Validator::Between(0, 1),
        &[syn("log.cleaner.min.cleanable.ratio", Some("0.5"))],
        "Share of uncompacted bytes in a log above which the cleaner compacts it.",
    ),
    def(
        "cleanup.policy",
        List,
        "delete",
        Validator::ListOf(CLEANUP_POLICIES),
        &[syn("log.cleanup.policy", Some("delete"))],
        "What to do with old segments: delete them, compact them by key, or both.",
    ),
    def(
        "unclean.leader.election.enable",
        Boolean,
        "false",
        Validator::None,
        &[syn("unclean.leader.election.enable", Some("false"))],
        "Lets an out-of-sync replica become leader as a last resort, at the risk of losing records.",
    ),
    def(
        "min.insync.replicas",
        Int,
        "1",
        Validator::AtLeast(1),
        &[syn("min.insync.replicas", Some("1"))],
        "In-sync replicas needed to accept an acks=all write to this topic.",
    ),
    def(
        "compression.type",
        Str,
        "producer",
        Validator::OneOf(COMPRESSION_TYPES),
        &[syn("compression.type", Some("producer"))],
        "Codec for this topic's stored batches; uncompressed stores them plain, producer keeps the producer's codec.",
    ),
    def(
        "compression.gzip.level",
        Int,
        "-1",
        Validator::GzipLevel,
        &[syn("compression.gzip.level", Some("-1"))],
        "Level for gzip when compression.type is gzip (1-9, or -1 for gzip's own default).",
    ),
    def(
        "compression.lz4.level",
        Int,
        "9",
        Validator::Between(1, 17),
        &[syn("compression.lz4.level", Some("9"))],
        "Level for lz4 when compression.type is lz4 (1-17).",
    ),
    def(
        "compression.zstd.level",
        Int,
        "3",
        Validator::Between(-131_072, 22),
        &[syn("compression.zstd.level", Some("3"))],
        "Level for zstd when compression.type is zstd (up to 22; negative levels are faster).",
    ),
    def(
        "preallocate",
        Boolean,
        "false",
        Validator::None,
        &[syn("log.preallocate", Some("false"))],
        "Whether new segment files are allocated on disk at full size up front.",
    ),
    // Kafka 3.9's topic config (removed in 4.0 with the old Fetch versions): whether
    // Fetch v0-3 may have this topic's batches down-converted (KafkaApis.handleFetchRequest).
    def(
        "message.downconversion.enable",
        Boolean,
        "true",
        Validator::None,
        &[syn("log.message.downconversion.enable", Some("true"))],
        "Lets fetches of versions 0-3 have this topic's batches converted to their older format.",
    ),
    def(
        "message.timestamp.type",
        Str,
        "CreateTime",
        Validator::OneOf(TIMESTAMP_TYPES),
        &[syn("log.message.timestamp.type", Some("CreateTime"))],
        "CreateTime keeps the producer's record timestamps; LogAppendTime replaces them with the broker's time.",
    ),
    def(
        "message.timestamp.before.max.ms",
        Long,
        LONG_MAX,
        Validator::AtLeast(0),
        &[syn("log.message.timestamp.before.max.ms", Some(LONG_MAX))],
        "With CreateTime, how many ms a record's timestamp may trail the broker clock.",
    ),
    def(
        "message.timestamp.after.max.ms",
        Long,
        "3600000",
        Validator::AtLeast(0),
        &[syn("log.message.timestamp.after.max.ms", Some("3600000"))],
        "With CreateTime, how many ms a record's timestamp may lead the broker clock.",
    ),
    def(
        "leader.replication.throttled.replicas",
        List,
        "",
        Validator::ThrottledReplicas,
        &[],
        "Replicas, as partitionId:brokerId pairs or *, whose traffic is throttled on the leader side.",
    ),
    def(
        "follower.replication.throttled.replicas",
        List,
        "",
        Validator::ThrottledReplicas,
        &[],
        "Replicas, as partitionId:brokerId pairs or *, whose traffic is throttled on the follower side.",
    ),
    def(
        "remote.storage.enable",
        Boolean,
        "false",
        Validator::None,
        &[],
        "Turns on tiered storage for this topic.",
    ),
    def(
        "local.retention.ms",
        Long,
        "-2",
        Validator::AtLeast(-2),
        &[syn("log.local.retention.ms", Some("-2"))],
        "With tiered storage, ms a segment stays on local disk (-2: use retention.ms).",
    ),
    def(
        "local.retention.bytes",
        Long,
        "-2",
        Validator::AtLeast(-2),
        &[syn("log.local.retention.bytes", Some("-2"))],
        "With tiered storage, bytes a partition keeps on local disk (-2: use retention.bytes).",
    ),
    def(
        "remote.log.copy.disable",
        Boolean,
        "false",
        Validator::None,
        &[],
        "Stops copying this topic's segments to tiered storage; remote copies stay readable.",
    ),
    def(
        "remote.log.delete.on.disable",
        Boolean,
        "false",
        Validator::None,
        &[],
        "Confirms that turning tiered storage off for this topic deletes its remote data.",
    ),
];

/// The definition of topic config `name`, if Kafka has one.
pub fn definition(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Whether `name` is a topic config Kafka knows.
pub fn is_known(name: &str) -> bool {
    definition(name).is_some()
}

/// A parsed config value.
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigValue {
    /// A boolean.
    Boolean(bool),
    /// A string (trimmed).
    String(String),
    /// An INT.
    Int(i32),
    /// A SHORT.
    Short(i16),
    /// A LONG.
    Long(i64),
    /// A DOUBLE.
    Double(f64),
    /// A LIST (items trimmed).
    List(Vec<String>),
}

impl ConfigValue {
    /// The value as Java's `toString` prints it in Kafka's error messages (`[a, b]` for a
    /// list, `2.0` for a double).
    fn java_string(&self) -> String {
        match self {
            ConfigValue::List(items) => format!("[{}]", items.join(", ")),
            ConfigValue::Double(d) => java_double(*d),
            other => other.to_string(),
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            ConfigValue::Int(v) => Some(f64::from(*v)),
            ConfigValue::Short(v) => Some(f64::from(*v)),
            ConfigValue::Long(v) => Some(*v as f64),
            ConfigValue::Double(v) => Some(*v),
            _ => None,
        }
    }

    fn as_i64(&self) -> Option<i64> {
        match self {
            ConfigValue::Int(v) => Some(i64::from(*v)),
            ConfigValue::Short(v) => Some(i64::from(*v)),
            ConfigValue::Long(v) => Some(*v),
            _ => None,
        }
    }
}

impl fmt::Display for ConfigValue {
    /// Kafka's string form of the value (`ConfigDef.convertToString`): lists joined by `,`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigValue::Boolean(b) => write!(f, "{b}"),
            ConfigValue::String(s) => f.write_str(s),
            ConfigValue::Int(v) => write!(f, "{v}"),
            ConfigValue::Short(v) => write!(f, "{v}"),
            ConfigValue::Long(v) => write!(f, "{v}"),
            ConfigValue::Double(v) => f.write_str(&java_double(*v)),
            ConfigValue::List(items) => f.write_str(&items.join(",")),
        }
    }
}

/// Java's `Double.toString`: `2.0`, `0.5`, `1.0E7`, `1.0E-4`, `NaN`, `Infinity`.
fn java_double(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_string();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    let magnitude = value.abs();
    if magnitude == 0.0 || (1e-3..1e7).contains(&magnitude) {
        return format!("{value:?}");
    }
    let text = format!("{value:e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.to_string()
    } else {
        format!("{mantissa}.0")
    };
    format!("{mantissa}E{exponent}")
}

/// A config value Kafka would refuse, with Kafka's message (error `INVALID_CONFIG`, 40).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidConfig {
    /// Kafka's message.
    pub message: String,
}

impl InvalidConfig {
    fn new(message: impl Into<String>) -> InvalidConfig {
        InvalidConfig {
            message: message.into(),
        }
    }

    /// Kafka's `ConfigException(name, value, message)` text.
    fn value(name: &str, value: &str, message: impl fmt::Display) -> InvalidConfig {
        InvalidConfig::new(format!(
            "Invalid value {value} for configuration {name}: {message}"
        ))
    }
}

/// `ConfigDef.parseType` for a string value.
fn parse_type(
    name: &str,
    config_type: ConfigType,
    value: &str,
) -> Result<ConfigValue, InvalidConfig> {
    let trimmed = value.trim();
    let not_a_number = || {
        InvalidConfig::value(
            name,
            value,
            format!("Not a number of type {}", config_type.name()),
        )
    };
    Ok(match config_type {
        ConfigType::Boolean => {
            if trimmed.eq_ignore_ascii_case("true") {
                ConfigValue::Boolean(true)
            } else if trimmed.eq_ignore_ascii_case("false") {
                ConfigValue::Boolean(false)
            } else {
                return Err(InvalidConfig::value(
                    name,
                    value,
                    "Expected value to be either true or false",
                ));
            }
        }
        ConfigType::String | ConfigType::Class | ConfigType::Password => {
            ConfigValue::String(trimmed.to_string())
        }
        ConfigType::Int => ConfigValue::Int(trimmed.parse().map_err(|_| not_a_number())?),
        ConfigType::Short => ConfigValue::Short(trimmed.parse().map_err(|_| not_a_number())?),
        ConfigType::Long => ConfigValue::Long(trimmed.parse().map_err(|_| not_a_number())?),
        ConfigType::Double => ConfigValue::Double(trimmed.parse().map_err(|_| not_a_number())?),
        ConfigType::List => {
            if trimmed.is_empty() {
                ConfigValue::List(Vec::new())
            } else {
                ConfigValue::List(trimmed.split(',').map(|s| s.trim().to_string()).collect())
            }
        }
    })
}

/// Runs a validator on a parsed value.
fn check(name: &str, validator: Validator, value: &ConfigValue) -> Result<(), InvalidConfig> {
    let shown = || value.java_string();
    match validator {
        Validator::None => {}
        Validator::AtLeast(min) => {
            if value.as_f64().is_some_and(|v| v < min as f64) {
                return Err(InvalidConfig::value(
                    name,
                    &shown(),
                    format!("Value must be at least {min}"),
                ));
            }
        }
        Validator::Between(min, max) => {
            if let Some(v) = value.as_f64() {
                if v < min as f64 {
                    return Err(InvalidConfig::value(
                        name,
                        &shown(),
                        format!("Value must be at least {min}"),
                    ));
                }
                if v > max as f64 {
                    return Err(InvalidConfig::value(
                        name,
                        &shown(),
                        format!("Value must be no more than {max}"),
                    ));
                }
            }
        }
        Validator::OneOf(allowed) => {
            if let ConfigValue::String(s) = value
                && !allowed.contains(&s.as_str())
            {
                return Err(InvalidConfig::value(
                    name,
                    s,
                    format!("String must be one of: {}", allowed.join(", ")),
                ));
            }
        }
        Validator::ListOf(allowed) => {
            if let ConfigValue::List(items) = value {
                for item in items {
                    if !allowed.contains(&item.as_str()) {
                        return Err(InvalidConfig::value(
                            name,
                            item,
                            format!("String must be one of: {}", allowed.join(", ")),
                        ));
                    }
                }
            }
        }
        Validator::GzipLevel => {
            if let Some(level) = value.as_i64()
                && (level > 9 || (level < 1 && level != -1))
            {
                return Err(InvalidConfig::value(
                    name,
                    &shown(),
                    "Value must be between 1 and 9 or equal to -1",
                ));
            }
        }
        Validator::ThrottledReplicas => {
            if let ConfigValue::List(items) = value {
                let pair = |s: &str| {
                    s.is_empty()
                        || s.split_once(':').is_some_and(|(p, b)| {
                            !p.is_empty()
                                && !b.is_empty()
                                && p.bytes().all(|c| c.is_ascii_digit())
                                && b.bytes().all(|c| c.is_ascii_digit())
                        })
                };
                let all_pairs = items.iter().all(|s| pair(s.trim()));
                let wildcard = items.iter().map(|s| s.trim()).collect::<String>() == "*";
                if !all_pairs && !wildcard {
                    return Err(InvalidConfig::value(
                        name,
                        &shown(),
                        format!(
                            "{name} must be the literal '*' or a list of replicas in the following \
                             format: [partitionId]:[brokerId],[partitionId]:[brokerId],..."
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Checks a topic's complete set of configs (after a change) as Kafka's controller does
/// (`LogConfig.validate`): every name must be a topic config (`Unknown topic config name:
/// x`), every value must parse and be in range (checked in Kafka's definition order),
/// `min.compaction.lag.ms` may not exceed `max.compaction.lag.ms` (counting the broker's
/// value of the one not set), and tiered storage (`remote.storage.enable=true`) is refused
/// because this broker has no remote storage.
pub fn validate(
    configs: &BTreeMap<String, String>,
    broker: &BrokerConfigs<'_>,
) -> Result<(), InvalidConfig> {
    if let Some(name) = configs.keys().find(|name| !is_known(name)) {
        return Err(InvalidConfig::new(format!(
            "Unknown topic config name: {name}"
        )));
    }
    let mut parsed = BTreeMap::new();
    for d in TOPIC_CONFIGS {
        if let Some(value) = configs.get(d.name) {
            parsed.insert(d.name, d.parse(value)?);
        }
    }
    let long = |name: &str| -> i64 {
        match parsed.get(name) {
            Some(value) => value.as_i64().unwrap_or(0),
            None => broker
                .resolve(definition(name).expect("known config"))
                .0
                .as_i64()
                .unwrap_or(0),
        }
    };
    let min_lag = long("min.compaction.lag.ms");
    let max_lag = long("max.compaction.lag.ms");
    if min_lag > max_lag {
        return Err(InvalidConfig::new(format!(
            "conflict topic config setting min.compaction.lag.ms ({min_lag}) > \
             max.compaction.lag.ms ({max_lag})"
        )));
    }
    if parsed.get("remote.storage.enable") == Some(&ConfigValue::Boolean(true)) {
        return Err(InvalidConfig::new(
            "Tiered Storage functionality is disabled in the broker. Topic cannot be configured \
             with remote log storage.",
        ));
    }
    Ok(())
}

/// The broker-level configs topic configs default to: this broker's dynamic configs, the
/// cluster-wide dynamic broker defaults (both from the metadata image), and the static
/// `server.properties`, in that order of precedence.
#[derive(Clone, Copy, Debug)]
pub struct BrokerConfigs<'a> {
    /// Configs set dynamically on this broker (broker resource `<node id>`).
    pub dynamic_broker: Option<&'a BTreeMap<String, String>>,
    /// Configs set dynamically for every broker (broker resource `""`).
    pub dynamic_default: Option<&'a BTreeMap<String, String>>,
    /// The broker's `server.properties` (after command-line overrides).
    pub static_configs: &'a BTreeMap<String, String>,
}

/// One synonym of a described config (DescribeConfigs' `DescribeConfigsSynonym`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigSynonym {
    /// The config name (the topic config itself, or a broker config).
    pub name: String,
    /// Its value there.
    pub value: Option<String>,
    /// Where it is set.
    pub source: ConfigSource,
}

/// A described topic config (DescribeConfigs' `DescribeConfigsResourceResult`, and
/// CreateTopics' `CreatableTopicConfigs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribedConfig {
    /// The config name.
    pub name: &'static str,
    /// The effective value (`None` when sensitive).
    pub value: Option<String>,
    /// Where the effective value comes from.
    pub source: ConfigSource,
    /// Whether the value is secret.
    pub is_sensitive: bool,
    /// Whether it cannot be changed (never for topic configs).
    pub read_only: bool,
    /// The type.
    pub config_type: ConfigType,
    /// Where it is set, in order of precedence (the first is the source), when asked for.
    pub synonyms: Vec<ConfigSynonym>,
    /// A description, when asked for.
    pub documentation: Option<&'static str>,
}

impl<'a> BrokerConfigs<'a> {
    /// The broker configs of node `node_id`: dynamic ones from `image`, static ones from
    /// `static_configs` (`Config::properties()`).
    pub fn new(
        image: &'a MetadataImage,
        node_id: i32,
        static_configs: &'a BTreeMap<String, String>,
    ) -> BrokerConfigs<'a> {
        BrokerConfigs {
            dynamic_broker: image.config(ConfigResource::BROKER, &node_id.to_string()),
            dynamic_default: image.config(ConfigResource::BROKER, ""),
            static_configs,
        }
    }

    /// Broker configs set only in `server.properties` (no dynamic ones).
    pub fn static_only(static_configs: &'a BTreeMap<String, String>) -> BrokerConfigs<'a> {
        BrokerConfigs {
            dynamic_broker: None,
            dynamic_default: None,
            static_configs,
        }
    }

    fn layers(&self) -> [(Option<&'a BTreeMap<String, String>>, ConfigSource); 3] {
        [
            (self.dynamic_broker, ConfigSource::DynamicBrokerConfig),
            (
                self.dynamic_default,
                ConfigSource::DynamicDefaultBrokerConfig,
            ),
            (Some(self.static_configs), ConfigSource::StaticBrokerConfig),
        ]
    }

    /// The broker-level value of a broker config key (dynamic, then static).
    fn get(&self, key: &str) -> Option<&'a str> {
        self.layers()
            .into_iter()
            .find_map(|(layer, _)| layer.and_then(|l| l.get(key)).map(String::as_str))
    }

    /// The value topic config `d` takes when the topic does not set it: the first synonym
    /// the broker sets (converted to the topic config's unit), else Kafka's default.
    /// Returns the value and whether it comes from a broker config.
    pub fn resolve(&self, d: &TopicConfigDef) -> (ConfigValue, bool) {
        for synonym in d.synonyms {
            let Some(raw) = self.get(synonym.name) else {
                continue;
            };
            let value = if synonym.multiplier == 1 {
                d.parse(raw).ok()
            } else {
                raw.trim()
                    .parse::<i64>()
                    .ok()
                    .map(|v| ConfigValue::Long(v.saturating_mul(synonym.multiplier)))
            };
            match value {
                Some(value) => return (value, true),
                None => tracing::warn!(
                    key = synonym.name,
                    value = raw,
                    "ignoring an invalid broker config for topic config {}",
                    d.name
                ),
            }
        }
        let default = d
            .parse(d.default)
            .expect("Kafka's defaults are valid values");
        (default, false)
    }

    /// The synonyms of topic config `d` that the broker sets, then Kafka's defaults of
    /// those that have one (`configSynonyms` of Kafka's `ConfigHelper`).
    fn synonyms(&self, d: &TopicConfigDef) -> Vec<ConfigSynonym> {
        let mut out = Vec::new();
        for (layer, source) in self.layers() {
            let Some(layer) = layer else { continue };
            for synonym in d.synonyms {
                if let Some(value) = layer.get(synonym.name) {
                    out.push(ConfigSynonym {
                        name: synonym.name.to_string(),
                        value: Some(value.clone()),
                        source,
                    });
                }
            }
        }
        for synonym in d.synonyms {
            if let Some(default) = synonym.default {
                out.push(ConfigSynonym {
                    name: synonym.name.to_string(),
                    value: Some(default.to_string()),
                    source: ConfigSource::DefaultConfig,
                });
            }
        }
        out
    }
}

/// Describes every topic config of a topic whose overrides are `overrides`, sorted by name,
/// as Kafka's DescribeConfigs does: the override if the topic sets it
/// ([`ConfigSource::DynamicTopicConfig`]), else the broker's value of the first synonym it
/// sets, else Kafka's default; the source is that of the first synonym. Synonyms and
/// documentation are filled only when asked for.
pub fn describe(
    overrides: &BTreeMap<String, String>,
    broker: &BrokerConfigs<'_>,
    include_synonyms: bool,
    include_documentation: bool,
) -> Vec<DescribedConfig> {
    let mut out: Vec<DescribedConfig> = TOPIC_CONFIGS
        .iter()
        .map(|d| {
            describe_one(
                d,
                overrides,
                broker,
                include_synonyms,
                include_documentation,
            )
        })
        .collect();
    out.sort_by_key(|c| c.name);
    out
}

fn describe_one(
    d: &'static TopicConfigDef,
    overrides: &BTreeMap<String, String>,
    broker: &BrokerConfigs<'_>,
    include_synonyms: bool,
    include_documentation: bool,
) -> DescribedConfig {
    let sensitive = d.is_sensitive();
    let value = match overrides.get(d.name) {
        Some(raw) => d
            .parse(raw)
            .map(|v| v.to_string())
            .unwrap_or_else(|_| raw.clone()),
        None => broker.resolve(d).0.to_string(),
    };
    let mut synonyms = broker.synonyms(d);
    if overrides.contains_key(d.name) {
        synonyms.insert(
            0,
            ConfigSynonym {
                name: d.name.to_string(),
                value: Some(value.clone()),
                source: ConfigSource::DynamicTopicConfig,
            },
        );
    }
    let source = synonyms
        .first()
        .map_or(ConfigSource::DefaultConfig, |s| s.source);
    if sensitive {
        for synonym in &mut synonyms {
            synonym.value = None;
        }
    }
    DescribedConfig {
        name: d.name,
        value: (!sensitive).then_some(value),
        source,
        is_sensitive: sensitive,
        read_only: false,
        config_type: d.config_type,
        synonyms: if include_synonyms {
            synonyms
        } else {
            Vec::new()
        },
        documentation: include_documentation.then_some(d.doc),
    }
}

/// The settings of a partition log of a topic whose overrides are `overrides`: the
/// broker's defaults (`LogConfig::from_broker`) with these topic configs applied:
/// `cleanup.policy`, `retention.ms`, `retention.bytes`, `segment.bytes`, `segment.ms`,
/// `max.message.bytes`, `message.timestamp.type`, `index.interval.bytes`,
/// `segment.index.bytes`, `flush.messages`, `flush.ms`, `message.timestamp.before.max.ms`,
/// `message.timestamp.after.max.ms`, `compression.type` and `compression.{gzip,lz4,zstd}.level`,
/// `message.downconversion.enable`,
/// and the cleaner's `min.cleanable.dirty.ratio`, `min.compaction.lag.ms`,
/// `max.compaction.lag.ms` and `delete.retention.ms`. Other configs have no effect
/// here; invalid values (which the controller never writes) are ignored with a warning.
pub fn log_config(broker_defaults: &LogConfig, overrides: &BTreeMap<String, String>) -> LogConfig {
    let mut config = broker_defaults.clone();
    for (name, raw) in overrides {
        let Some(d) = definition(name) else { continue };
        let value = match d.parse(raw) {
            Ok(value) => value,
            Err(e) => {
                tracing::warn!(config = %name, "ignoring an invalid topic config: {e}");
                continue;
            }
        };
        match (d.name, value) {
            ("cleanup.policy", ConfigValue::List(items)) => {
                config.cleanup_policy = CleanupPolicy {
                    delete: items.iter().any(|i| i == "delete"),
                    compact: items.iter().any(|i| i == "compact"),
                };
            }
            ("retention.ms", ConfigValue::Long(v)) => config.retention_ms = v,
            ("min.cleanable.dirty.ratio", ConfigValue::Double(v)) => {
                config.min_cleanable_ratio = v;
            }
            ("min.compaction.lag.ms", ConfigValue::Long(v)) => config.min_compaction_lag_ms = v,
            ("max.compaction.lag.ms", ConfigValue::Long(v)) => config.max_compaction_lag_ms = v,
            ("delete.retention.ms", ConfigValue::Long(v)) => config.delete_retention_ms = v,
            ("retention.bytes", ConfigValue::Long(v)) => config.retention_bytes = v,
            ("segment.bytes", ConfigValue::Int(v)) => config.segment_bytes = i64::from(v),
            ("segment.ms", ConfigValue::Long(v)) => config.segment_ms = v,
            ("max.message.bytes", ConfigValue::Int(v)) => config.max_message_bytes = v,
            ("min.insync.replicas", ConfigValue::Int(v)) => config.min_insync_replicas = v,
            ("message.timestamp.type", ConfigValue::String(s)) => {
                config.timestamp_type = if s == "LogAppendTime" {
                    TimestampType::LogAppendTime
                } else {
                    TimestampType::CreateTime
                };
            }
            ("index.interval.bytes", ConfigValue::Int(v)) => config.index_interval_bytes = v,
            ("segment.index.bytes", ConfigValue::Int(v)) => config.segment_index_bytes = v,
            ("flush.messages", ConfigValue::Long(v)) => config.flush_messages = v,
            ("flush.ms", ConfigValue::Long(v)) => config.flush_ms = v,
            ("message.timestamp.before.max.ms", ConfigValue::Long(v)) => {
                config.message_timestamp_before_max_ms = v;
            }
            ("message.timestamp.after.max.ms", ConfigValue::Long(v)) => {
                config.message_timestamp_after_max_ms = v;
            }
            ("compression.type", ConfigValue::String(s)) => {
                config.compression_type = match s.as_str() {
                    "uncompressed" => Some(Compression::None),
                    "gzip" => Some(Compression::Gzip),
                    "snappy" => Some(Compression::Snappy),
                    "lz4" => Some(Compression::Lz4),
                    "zstd" => Some(Compression::Zstd),
                    _ => None,
                };
            }
            ("message.downconversion.enable", ConfigValue::Boolean(v)) => {
                config.message_downconversion_enable = v;
            }
            ("compression.gzip.level", ConfigValue::Int(v)) => config.compression_gzip_level = v,
            ("compression.lz4.level", ConfigValue::Int(v)) => config.compression_lz4_level = v,
            ("compression.zstd.level", ConfigValue::Int(v)) => config.compression_zstd_level = v,
            _ => {}
        }
    }
    config
}

/// `pairs` as a config map: a helper for the tests of the config modules.
#[cfg(test)]
pub(crate) fn config_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::config_map as map;
    use super::*;

    fn check_err(pairs: &[(&str, &str)]) -> String {
        let empty = BTreeMap::new();
        validate(&map(pairs), &BrokerConfigs::static_only(&empty))
            .unwrap_err()
            .message
    }

    #[test]
    fn every_default_is_valid_and_names_are_unique() {
        let mut names: Vec<&str> = TOPIC_CONFIGS.iter().map(|d| d.name).collect();
        for d in TOPIC_CONFIGS {
            d.parse(d.default).unwrap();
            for synonym in d.synonyms {
                if let Some(default) = synonym.default {
                    let (value, _) =
                        BrokerConfigs::static_only(&map(&[(synonym.name, default)])).resolve(d);
                    assert_eq!(value.to_string(), d.default, "{}", d.name);
                }
            }
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TOPIC_CONFIGS.len());
        assert_eq!(TOPIC_CONFIGS.len(), 34);
    }

    #[test]
    fn kafka_messages() {
        assert_eq!(
            check_err(&[("retention.ms", "abc")]),
            "Invalid value abc for configuration retention.ms: Not a number of type LONG"
        );
        assert_eq!(
            check_err(&[("segment.bytes", "1.5")]),
            "Invalid value 1.5 for configuration segment.bytes: Not a number of type INT"
        );
        assert_eq!(
            check_err(&[("segment.bytes", "1000")]),
            "Invalid value 1000 for configuration segment.bytes: Value must be at least 1048576"
        );
        assert_eq!(
            check_err(&[("retention.ms", "-5")]),
            "Invalid value -5 for configuration retention.ms: Value must be at least -1"
        );
        assert_eq!(
            check_err(&[("min.cleanable.dirty.ratio", "2")]),
            "Invalid value 2.0 for configuration min.cleanable.dirty.ratio: Value must be no more than 1"
        );
        assert_eq!(
            check_err(&[("cleanup.policy", "compact,forever")]),
            "Invalid value forever for configuration cleanup.policy: String must be one of: compact, delete"
        );
        assert_eq!(
            check_err(&[("compression.type", "brotli")]),
            "Invalid value brotli for configuration compression.type: String must be one of: \
             uncompressed, zstd, lz4, snappy, gzip, producer"
        );
        assert_eq!(
            check_err(&[("preallocate", "yes")]),
            "Invalid value yes for configuration preallocate: Expected value to be either true or false"
        );
        assert_eq!(
            check_err(&[("compression.gzip.level", "0")]),
            "Invalid value 0 for configuration compression.gzip.level: Value must be between 1 and 9 \
             or equal to -1"
        );
        assert_eq!(
            check_err(&[("no.such.config", "1")]),
            "Unknown topic config name: no.such.config"
        );
        assert_eq!(
            check_err(&[
                ("min.compaction.lag.ms", "10"),
                ("max.compaction.lag.ms", "5")
            ]),
            "conflict topic config setting min.compaction.lag.ms (10) > max.compaction.lag.ms (5)"
        );
        assert!(check_err(&[("remote.storage.enable", "true")]).starts_with("Tiered Storage"));
        assert!(
            check_err(&[("leader.replication.throttled.replicas", "0:1,x")])
                .contains("must be the literal '*'")
        );
        // The first invalid value in Kafka's order is reported.
        assert!(
            check_err(&[("retention.ms", "x"), ("segment.bytes", "x")]).contains("segment.bytes")
        );
    }

    #[test]
    fn valid_values() {
        let empty = BTreeMap::new();
        let broker = BrokerConfigs::static_only(&empty);
        for pairs in [
            &[("cleanup.policy", "compact, delete")][..],
            &[("cleanup.policy", "")],
            &[("retention.ms", " -1 ")],
            &[("compression.gzip.level", "-1")],
            &[("min.cleanable.dirty.ratio", "0.25")],
            &[("preallocate", "TRUE")],
            &[("leader.replication.throttled.replicas", "*")],
            &[("follower.replication.throttled.replicas", "0:1, 1:1")],
            &[("remote.storage.enable", "false")],
        ] {
            validate(&map(pairs), &broker).unwrap();
        }
    }

    #[test]
    fn describe_sources_and_synonyms() {
        let statics = map(&[
            ("log.retention.hours", "1"),
            ("log.segment.bytes", "2097152"),
        ]);
        let broker = BrokerConfigs::static_only(&statics);
        let overrides = map(&[("segment.bytes", "4194304")]);
        let described = describe(&overrides, &broker, true, true);
        assert_eq!(described.len(), TOPIC_CONFIGS.len());
        assert!(described.windows(2).all(|w| w[0].name < w[1].name));
        let get = |name: &str| described.iter().find(|c| c.name == name).unwrap().clone();

        let retention = get("retention.ms");
        assert_eq!(retention.value.as_deref(), Some("3600000"));
        assert_eq!(retention.source, ConfigSource::StaticBrokerConfig);
        assert_eq!(retention.config_type, ConfigType::Long);
        assert_eq!(
            retention.synonyms,
            vec![
                ConfigSynonym {
                    name: "log.retention.hours".into(),
                    value: Some("1".into()),
                    source: ConfigSource::StaticBrokerConfig
                },
                ConfigSynonym {
                    name: "log.retention.hours".into(),
                    value: Some("168".into()),
                    source: ConfigSource::DefaultConfig
                },
            ]
        );

        let segment = get("segment.bytes");
        assert_eq!(segment.value.as_deref(), Some("4194304"));
        assert_eq!(segment.source, ConfigSource::DynamicTopicConfig);
        assert_eq!(segment.synonyms.len(), 3);
        assert_eq!(segment.synonyms[1].source, ConfigSource::StaticBrokerConfig);

        let policy = get("cleanup.policy");
        assert_eq!(policy.value.as_deref(), Some("delete"));
        assert_eq!(policy.source, ConfigSource::DefaultConfig);
        let throttled = get("leader.replication.throttled.replicas");
        assert_eq!(throttled.value.as_deref(), Some(""));
        assert!(throttled.synonyms.is_empty());
        assert_eq!(throttled.source, ConfigSource::DefaultConfig);
        assert!(get("flush.ms").documentation.is_some());

        let bare = describe(&overrides, &broker, false, false);
        assert!(
            bare.iter()
                .all(|c| c.synonyms.is_empty() && c.documentation.is_none())
        );
    }

    #[test]
    fn dynamic_layers_take_precedence() {
        let statics = map(&[("log.retention.ms", "1000")]);
        let dynamic = map(&[("log.retention.ms", "2000")]);
        let broker = BrokerConfigs {
            dynamic_broker: None,
            dynamic_default: Some(&dynamic),
            static_configs: &statics,
        };
        let d = definition("retention.ms").unwrap();
        assert_eq!(broker.resolve(d), (ConfigValue::Long(2000), true));
        let described = describe(&BTreeMap::new(), &broker, true, false);
        let retention = described.iter().find(|c| c.name == "retention.ms").unwrap();
        assert_eq!(retention.source, ConfigSource::DynamicDefaultBrokerConfig);
        assert_eq!(retention.synonyms.len(), 3);
    }

    #[test]
    fn log_config_applies_overrides() {
        let defaults = LogConfig::default();
        let overrides = map(&[
            ("cleanup.policy", "compact"),
            ("retention.ms", "1000"),
            ("retention.bytes", "2000"),
            ("segment.bytes", "1048576"),
            ("segment.ms", "3000"),
            ("max.message.bytes", "4000"),
            ("message.timestamp.type", "LogAppendTime"),
            ("index.interval.bytes", "100"),
            ("segment.index.bytes", "200"),
            ("flush.messages", "5"),
            ("flush.ms", "6"),
            ("message.timestamp.before.max.ms", "7"),
            ("message.timestamp.after.max.ms", "8"),
            ("compression.type", "lz4"),
            ("compression.gzip.level", "2"),
            ("compression.lz4.level", "12"),
            ("compression.zstd.level", "19"),
            ("min.insync.replicas", "2"),
            ("retention.bytes.bogus", "x"),
        ]);
        let config = log_config(&defaults, &overrides);
        assert_eq!(
            config.cleanup_policy,
            CleanupPolicy {
                delete: false,
                compact: true
            }
        );
        assert_eq!(config.retention_ms, 1000);
        assert_eq!(config.retention_bytes, 2000);
        assert_eq!(config.segment_bytes, 1_048_576);
        assert_eq!(config.segment_ms, 3000);
        assert_eq!(config.max_message_bytes, 4000);
        assert_eq!(config.timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(config.index_interval_bytes, 100);
        assert_eq!(config.segment_index_bytes, 200);
        assert_eq!(config.flush_messages, 5);
        assert_eq!(config.flush_ms, 6);
        assert_eq!(config.compression_type, Some(Compression::Lz4));
        assert_eq!(
            (
                config.compression_gzip_level,
                config.compression_lz4_level,
                config.compression_zstd_level
            ),
            (2, 12, 19)
        );
        for (value, codec) in [
            ("producer", None),
            ("uncompressed", Some(Compression::None)),
            ("gzip", Some(Compression::Gzip)),
            ("snappy", Some(Compression::Snappy)),
            ("zstd", Some(Compression::Zstd)),
        ] {
            let config = log_config(&defaults, &map(&[("compression.type", value)]));
            assert_eq!(config.compression_type, codec, "{value}");
        }
        assert_eq!(config.message_timestamp_before_max_ms, 7);
        assert_eq!(config.message_timestamp_after_max_ms, 8);
        // Invalid values keep the default.
        let config = log_config(&defaults, &map(&[("retention.ms", "x")]));
        assert_eq!(config, defaults);
    }

    #[test]
    fn java_doubles() {
        assert_eq!(java_double(2.0), "2.0");
        assert_eq!(java_double(0.5), "0.5");
        assert_eq!(java_double(1e7), "1.0E7");
        assert_eq!(java_double(1.5e-5), "1.5E-5");
        assert_eq!(java_double(f64::NAN), "NaN");
    }
}
