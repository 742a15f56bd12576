//! The broker configs DescribeConfigs reports for a BROKER resource: the keys this broker
//! reads from `server.properties`, with Kafka 4.x's types and defaults, and whether Kafka
//! can change them dynamically (`DynamicBrokerConfig.ALL_DYNAMIC_CONFIGS`: those are
//! reported as not read-only, the rest as read-only), as Kafka's `ConfigHelper` describes
//! them: the effective value, its source and, when asked, its synonyms (the key, or the
//! keys of the same setting such as `log.retention.{ms,minutes,hours}`, in each layer:
//! dynamic for this broker, dynamic cluster default, `server.properties`, Kafka's default).
//!
//! Kafka lists every one of its ~400 broker configs; this list has the keys this broker
//! knows, plus any other key set in `server.properties` (Kafka's keys that have no effect
//! here with their value, other keys as sensitive with a null value, as Kafka does for keys
//! it does not know). Documentation strings are our own one-line descriptions.
//!
//! Deliberately unlike Kafka: `listeners`, `advertised.listeners` and
//! `listener.security.protocol.map` are read-only here (Kafka can add and remove
//! listeners at run time; this broker binds its listeners once), so describing them says
//! so and altering them is refused like any other read-only config.

use std::collections::BTreeMap;

use crate::cluster::MetadataImage;
use crate::config::{Config, is_ignored_key};
use crate::topic_config::{ConfigSource, ConfigType};

use ConfigType::{Boolean, Int, List, Long, Short, String as Str};

/// One broker config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BrokerConfigDef {
    /// The key.
    pub name: &'static str,
    /// Kafka's type.
    pub config_type: ConfigType,
    /// Kafka's default (`None`: null).
    pub default: Option<&'static str>,
    /// Whether Kafka can change it without a restart (then not read-only).
    pub dynamic: bool,
    /// What it does.
    pub doc: &'static str,
}

const fn def(
    name: &'static str,
    config_type: ConfigType,
    default: Option<&'static str>,
    dynamic: bool,
    doc: &'static str,
) -> BrokerConfigDef {
    BrokerConfigDef {
        name,
        config_type,
        default,
        dynamic,
        doc,
    }
}

/// The broker configs this broker reads, sorted by name.
#[rustfmt::skip]
pub const BROKER_CONFIGS: &[BrokerConfigDef] = &[
    def("advertised.listeners", Str, None, false, "Addresses put in metadata for clients to connect to, when they should differ from those in listeners."),
    def("auto.create.topics.enable", Boolean, Some("true"), false, "Lets the broker create a topic on the fly when a client's metadata request names one that does not exist."),
    def("broker.id", Int, Some("-1"), false, "This server's broker id; under KRaft it must equal node.id, and is taken from it when left at -1."),
    def("broker.rack", Str, None, false, "Names the rack this broker is in, so that replica placement can spread a partition's copies over racks."),
    def("compression.type", Str, Some("producer"), true, "Default codec for stored batches: a codec name, uncompressed, or producer to keep whatever the producer used."),
    def("connections.max.idle.ms", Long, Some("600000"), false, "Milliseconds a connection may go without traffic before the broker closes it."),
    def("controller.listener.names", Str, None, false, "Comma-separated names of the listeners the KRaft controllers are reached on."),
    def("controller.quorum.bootstrap.servers", List, Some(""), false, "host:port addresses a node contacts first to discover the KRaft controller quorum."),
    def("controller.quorum.voters", List, Some(""), false, "The static KRaft voter set, written as comma-separated {id}@{host}:{port} entries."),
    def("default.replication.factor", Int, Some("1"), false, "Replica count used for auto-created topics and for creations that ask for -1."),
    def("delete.topic.enable", Boolean, Some("true"), false, "When turned off, requests to delete topics are rejected instead of carried out."),
    def("fetch.max.bytes", Int, Some("57671680"), false, "Upper bound on the bytes the broker puts into one fetch response."),
    def("group.initial.rebalance.delay.ms", Int, Some("3000"), false, "How long the coordinator holds off the first rebalance of a new classic group so that more members can join it."),
    def("group.max.session.timeout.ms", Int, Some("1800000"), false, "Largest session timeout a group member may ask for; longer ones are refused."),
    def("group.max.size", Int, Some("2147483647"), false, "Cap on the number of members one consumer group may have."),
    def("group.min.session.timeout.ms", Int, Some("6000"), false, "Smallest session timeout a group member may ask for; shorter ones are refused."),
    def("inter.broker.listener.name", Str, None, false, "The listener brokers use to reach each other (set this or security.inter.broker.protocol, not both)."),
    def("listener.security.protocol.map", Str, Some("SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT"), false, "Pairs each listener name with its security protocol, as comma-separated NAME:PROTOCOL entries."),
    def("listeners", Str, Some("PLAINTEXT://:9092"), false, "The NAME://host:port URIs this server accepts connections on, comma-separated."),
    def("log.cleanup.policy", List, Some("delete"), true, "Default treatment of segments past retention: delete, compact, or both."),
    def("log.dir", Str, Some("/tmp/kafka-logs"), false, "A single data directory, used only when log.dirs is not set."),
    def("log.dirs", Str, None, false, "Comma-separated directories that hold partition data; log.dir applies when unset."),
    def("log.flush.interval.messages", Long, Some("9223372036854775807"), true, "Records a partition may accumulate before the broker forces an fsync."),
    def("log.flush.interval.ms", Long, None, true, "Milliseconds a record may stay unflushed before an fsync; when unset, log.flush.scheduler.interval.ms applies."),
    def("log.flush.scheduler.interval.ms", Long, Some("9223372036854775807"), false, "Milliseconds between the flusher's checks for logs that are due for an fsync."),
    def("log.index.interval.bytes", Int, Some("4096"), true, "Bytes of log data between two entries of the offset index."),
    def("log.index.size.max.bytes", Int, Some("10485760"), true, "Size cap, in bytes, of a segment's offset index file."),
    def("log.message.downconversion.enable", Boolean, Some("true"), true, "Broker default for message.downconversion.enable: whether Fetch v0-3 gets stored batches converted to its older format."),
    def("log.message.timestamp.after.max.ms", Long, Some("3600000"), true, "With CreateTime, how many ms a record's timestamp may lie ahead of the broker clock before the batch is refused."),
    def("log.message.timestamp.before.max.ms", Long, Some("9223372036854775807"), true, "With CreateTime, how many ms a record's timestamp may lie behind the broker clock before the batch is refused."),
    def("log.message.timestamp.type", Str, Some("CreateTime"), true, "Default source of record timestamps: CreateTime keeps the producer's, LogAppendTime stamps the broker's clock."),
    def("log.retention.bytes", Long, Some("-1"), true, "Bytes a partition may hold before its oldest segments are removed (-1: unbounded)."),
    def("log.retention.check.interval.ms", Long, Some("300000"), false, "Milliseconds between sweeps that look for segments past their retention."),
    def("log.retention.hours", Int, Some("168"), false, "Retention time in hours, used when neither log.retention.ms nor log.retention.minutes is set."),
    def("log.retention.minutes", Int, None, false, "Retention time in minutes, used when log.retention.ms is not set."),
    def("log.retention.ms", Long, None, true, "Retention time of log segments in milliseconds; -1 keeps them regardless of age."),
    def("log.roll.hours", Int, Some("168"), false, "Age in hours after which the active segment is rolled, used when log.roll.ms is not set."),
    def("log.roll.ms", Long, None, true, "Age in milliseconds after which the active segment is rolled even if it is not full."),
    def("log.segment.bytes", Int, Some("1073741824"), true, "Size in bytes at which the active segment is closed and a new one started."),
    def("max.connections", Int, Some("2147483647"), true, "Broker-wide cap on open connections; listener.name.<listener>.max.connections caps a single listener."),
    def("max.connections.per.ip", Int, Some("2147483647"), true, "Cap on connections from one IP address (0 is allowed only when overrides exist)."),
    def("max.connections.per.ip.overrides", Str, Some(""), true, "Exceptions to max.connections.per.ip, as comma-separated host-or-IP:limit pairs."),
    def("message.max.bytes", Int, Some("1048588"), true, "Largest record batch, in bytes after any compression, the broker accepts."),
    def("metadata.log.dir", Str, None, false, "Where the KRaft metadata log lives; defaults to the first entry of log.dirs."),
    def("metadata.log.segment.bytes", Int, Some("1073741824"), false, "Size in bytes at which a metadata log segment is rolled."),
    def("min.insync.replicas", Int, Some("1"), true, "How many in-sync replicas must hold a write before an acks=all produce succeeds."),
    def("node.id", Int, Some("-1"), false, "The id of this process in the cluster, shared by its broker and controller roles."),
    def("num.partitions", Int, Some("1"), false, "Partition count given to topics created without one."),
    def("offset.metadata.max.bytes", Int, Some("4096"), false, "Longest metadata string, in bytes, that may accompany a committed offset."),
    def("offsets.retention.check.interval.ms", Long, Some("600000"), false, "Milliseconds between scans for expired committed offsets."),
    def("offsets.retention.minutes", Int, Some("10080"), false, "Minutes a group's committed offsets are kept once it has no members left."),
    def("offsets.topic.num.partitions", Int, Some("50"), false, "Partition count of __consumer_offsets (fixed once the topic exists)."),
    def("offsets.topic.replication.factor", Short, Some("3"), false, "Replica count of __consumer_offsets."),
    def("offsets.topic.segment.bytes", Int, Some("104857600"), false, "Segment size in bytes of __consumer_offsets, kept small for quick compaction and loading."),
    def("process.roles", List, Some(""), false, "Which roles this node takes: broker, controller, or both (comma-separated)."),
    def("producer.id.expiration.ms", Int, Some("86400000"), true, "How long, in ms, a partition leader keeps an idle producer id's state before dropping it (never while its transaction is open)."),
    def("security.inter.broker.protocol", Str, Some("PLAINTEXT"), false, "The security protocol brokers use among themselves (alternative to inter.broker.listener.name)."),
    def("socket.request.max.bytes", Int, Some("104857600"), false, "Largest request, in bytes, the broker reads from a socket."),
    def("transaction.max.timeout.ms", Int, Some("900000"), false, "Largest transaction timeout a producer may ask for; InitProducerId with a longer one fails."),
    def("transaction.partition.verification.enable", Boolean, Some("true"), true, "When on, a leader checks with the transaction coordinator that a partition was added to the transaction before appending its first transactional batch."),
    def("transaction.state.log.num.partitions", Int, Some("50"), false, "Partition count of __transaction_state (fixed once the topic exists)."),
    def("transaction.state.log.replication.factor", Short, Some("3"), false, "Replica count of __transaction_state."),
    def("transaction.state.log.segment.bytes", Int, Some("104857600"), false, "Segment size in bytes of __transaction_state, kept small for quick compaction and loading."),
    def("transactional.id.expiration.ms", Int, Some("604800000"), false, "How long, in ms, the coordinator keeps a transactional id without transaction activity before expiring it."),
];

/// The definition of broker config `name`, if this broker knows it.
pub fn definition(name: &str) -> Option<&'static BrokerConfigDef> {
    BROKER_CONFIGS.iter().find(|d| d.name == name)
}

/// The keys of the same setting, in Kafka's order (`DynamicBrokerConfig.brokerConfigSynonyms`).
pub(crate) fn synonym_keys(name: &str) -> Vec<&str> {
    match name {
        "log.roll.ms" | "log.roll.hours" => vec!["log.roll.ms", "log.roll.hours"],
        "log.flush.interval.ms" => vec!["log.flush.interval.ms", "log.flush.scheduler.interval.ms"],
        "log.retention.ms" | "log.retention.minutes" | "log.retention.hours" => {
            vec![
                "log.retention.ms",
                "log.retention.minutes",
                "log.retention.hours",
            ]
        }
        _ => vec![name],
    }
}

/// Whether Kafka would hide the value: passwords, and keys it does not know the type of.
fn is_sensitive(name: &str, known_type: Option<ConfigType>) -> bool {
    match known_type {
        Some(t) => t == ConfigType::Password,
        None => {
            !is_ignored_key(name)
                || ["password", "secret", "jaas", "credentials"]
                    .iter()
                    .any(|word| name.contains(word))
        }
    }
}

/// One described broker config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribedBrokerConfig {
    /// The key.
    pub name: String,
    /// The effective value (`None` when null or sensitive).
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// Whether the value is hidden.
    pub is_sensitive: bool,
    /// Whether it cannot be changed dynamically.
    pub read_only: bool,
    /// Kafka's type (`None`: unknown, reported as 0).
    pub config_type: Option<ConfigType>,
    /// (key, value, source) where the setting is made, when asked for.
    pub synonyms: Vec<(String, Option<String>, ConfigSource)>,
    /// What it does, when asked for.
    pub documentation: Option<&'static str>,
}

/// The layers of broker configs, in order of precedence.
struct Layers<'a> {
    dynamic_broker: Option<&'a BTreeMap<String, String>>,
    dynamic_default: Option<&'a BTreeMap<String, String>>,
    static_configs: BTreeMap<String, String>,
}

impl Layers<'_> {
    /// Kafka's `configSynonyms`: every synonym key set in each layer, then Kafka's defaults,
    /// from the first entry for `name` itself on.
    fn synonyms(&self, name: &str, sensitive: bool) -> Vec<(String, Option<String>, ConfigSource)> {
        let keys = synonym_keys(name);
        let mut out = Vec::new();
        for (layer, source) in [
            (self.dynamic_broker, ConfigSource::DynamicBrokerConfig),
            (
                self.dynamic_default,
                ConfigSource::DynamicDefaultBrokerConfig,
            ),
            (Some(&self.static_configs), ConfigSource::StaticBrokerConfig),
        ] {
            let Some(layer) = layer else { continue };
            for key in &keys {
                if let Some(value) = layer.get(*key) {
                    out.push((key.to_string(), Some(value.clone()), source));
                }
            }
        }
        for key in &keys {
            if let Some(default) = definition(key).and_then(|d| d.default) {
                out.push((
                    key.to_string(),
                    Some(default.to_string()),
                    ConfigSource::DefaultConfig,
                ));
            }
        }
        let first = out
            .iter()
            .position(|(key, _, _)| key == name)
            .unwrap_or(out.len());
        out.drain(..first);
        if sensitive {
            for synonym in &mut out {
                synonym.1 = None;
            }
        }
        out
    }
}

/// Kafka's string form of a parsed value (`ConfigDef.convertToString`): trimmed, lists
/// joined with `,`, booleans and numbers normalized.
fn normalize(value: &str, config_type: Option<ConfigType>) -> String {
    let trimmed = value.trim();
    match config_type {
        Some(List) => trimmed
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .collect::<Vec<_>>()
            .join(","),
        Some(Boolean) => trimmed.to_ascii_lowercase(),
        Some(Int | Long | Short) => trimmed
            .parse::<i64>()
            .map_or_else(|_| trimmed.to_string(), |n| n.to_string()),
        _ => trimmed.to_string(),
    }
}

/// Describes the configs of BROKER resource `name` (this node's id, or empty for the
/// cluster-wide dynamic defaults), sorted by key. `keys` filters (`None`: all).
pub fn describe(
    config: &Config,
    image: &MetadataImage,
    node_id: i32,
    per_broker: bool,
    keys: Option<&[String]>,
    include_synonyms: bool,
    include_documentation: bool,
) -> Vec<DescribedBrokerConfig> {
    let mut static_configs = config.properties().clone();
    // Kafka's `populateSynonyms`: node.id and broker.id stand for each other.
    for (from, to) in [("node.id", "broker.id"), ("broker.id", "node.id")] {
        if let Some(value) = static_configs.get(from).cloned() {
            static_configs.entry(to.to_string()).or_insert(value);
        }
    }
    let layers = Layers {
        dynamic_broker: image.broker_config(node_id),
        dynamic_default: image.cluster_broker_config(),
        static_configs,
    };
    let mut names: Vec<String> = if per_broker {
        let mut names: Vec<String> = BROKER_CONFIGS.iter().map(|d| d.name.to_string()).collect();
        names.extend(
            layers
                .static_configs
                .keys()
                .filter(|k| definition(k).is_none())
                .cloned(),
        );
        names
    } else {
        layers
            .dynamic_default
            .map(|c| c.keys().cloned().collect())
            .unwrap_or_default()
    };
    names.sort();
    names.dedup();
    if let Some(keys) = keys {
        names.retain(|n| keys.contains(n));
    }
    names
        .into_iter()
        .map(|name| {
            let def = definition(&name);
            let config_type = def.map(|d| d.config_type);
            let sensitive = is_sensitive(&name, config_type);
            let mut synonyms = layers.synonyms(&name, sensitive);
            if !per_broker {
                synonyms.retain(|s| s.2 == ConfigSource::DynamicDefaultBrokerConfig);
            }
            let source = synonyms
                .first()
                .map_or(ConfigSource::DefaultConfig, |s| s.2);
            // The effective value: dynamic layers only count for dynamic configs.
            let dynamic = def.is_none_or(|d| d.dynamic);
            let value = if per_broker {
                [layers.dynamic_broker, layers.dynamic_default]
                    .into_iter()
                    .filter(|_| dynamic)
                    .find_map(|layer| layer.and_then(|l| l.get(&name)).cloned())
                    .or_else(|| layers.static_configs.get(&name).cloned())
                    .or_else(|| def.and_then(|d| d.default).map(str::to_string))
            } else {
                layers.dynamic_default.and_then(|l| l.get(&name)).cloned()
            };
            DescribedBrokerConfig {
                value: if sensitive {
                    None
                } else {
                    value.map(|v| normalize(&v, config_type))
                },
                source,
                is_sensitive: sensitive,
                read_only: !def.is_some_and(|d| d.dynamic),
                config_type,
                synonyms: if include_synonyms {
                    synonyms
                } else {
                    Vec::new()
                },
                documentation: if include_documentation {
                    def.map(|d| d.doc)
                } else {
                    None
                },
                name,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers(static_configs: &[(&str, &str)]) -> Layers<'static> {
        Layers {
            dynamic_broker: None,
            dynamic_default: None,
            static_configs: static_configs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn names(synonyms: &[(String, Option<String>, ConfigSource)]) -> Vec<(&str, ConfigSource)> {
        synonyms.iter().map(|(n, _, s)| (n.as_str(), *s)).collect()
    }

    #[test]
    fn the_table_is_sorted_and_has_kafkas_defaults() {
        let names: Vec<&str> = BROKER_CONFIGS.iter().map(|d| d.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
        assert_eq!(
            definition("num.partitions").and_then(|d| d.default),
            Some("1")
        );
        assert!(definition("log.retention.ms").is_some_and(|d| d.dynamic));
        assert!(definition("log.retention.hours").is_some_and(|d| !d.dynamic));
    }

    #[test]
    fn synonyms_start_at_the_config_itself() {
        let both = layers(&[("log.retention.ms", "1000"), ("log.retention.hours", "2")]);
        assert_eq!(
            names(&both.synonyms("log.retention.ms", false)),
            [
                ("log.retention.ms", ConfigSource::StaticBrokerConfig),
                ("log.retention.hours", ConfigSource::StaticBrokerConfig),
                ("log.retention.hours", ConfigSource::DefaultConfig),
            ]
        );
        assert_eq!(
            names(&both.synonyms("log.retention.hours", false)),
            [
                ("log.retention.hours", ConfigSource::StaticBrokerConfig),
                ("log.retention.hours", ConfigSource::DefaultConfig),
            ]
        );
        // Only hours set: log.retention.ms has no synonym of its own (null, default).
        let hours = layers(&[("log.retention.hours", "2")]);
        assert!(hours.synonyms("log.retention.ms", false).is_empty());
        let secret = layers(&[("num.partitions", "3")]).synonyms("num.partitions", true);
        assert!(secret.iter().all(|(_, v, _)| v.is_none()));
    }

    #[test]
    fn values_are_normalized_as_kafka_prints_them() {
        assert_eq!(normalize(" a , b,, c ", Some(List)), "a,b,c");
        assert_eq!(normalize("TRUE", Some(Boolean)), "true");
        assert_eq!(normalize("+0012", Some(Int)), "12");
        assert_eq!(normalize(" x ", None), "x");
    }
}
