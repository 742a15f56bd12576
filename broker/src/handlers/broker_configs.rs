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
//! it does not know). Documentation strings are short summaries of Kafka's.
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
    def("advertised.listeners", Str, None, false, "Listeners to publish for clients to use, if different from the listeners config."),
    def("auto.create.topics.enable", Boolean, Some("true"), false, "Enable auto creation of topics on the server."),
    def("broker.id", Int, Some("-1"), false, "The broker id for this server (in KRaft mode, the same as node.id)."),
    def("broker.rack", Str, None, false, "Rack of the broker, used in rack-aware replica assignment."),
    def("compression.type", Str, Some("producer"), true, "The final compression type for a given topic."),
    def("connections.max.idle.ms", Long, Some("600000"), false, "Idle connections timeout: the server closes connections idle for more than this."),
    def("controller.listener.names", Str, None, false, "A comma-separated list of the names of the listeners used by the controller."),
    def("controller.quorum.bootstrap.servers", List, Some(""), false, "List of endpoints to use for bootstrapping the cluster metadata."),
    def("controller.quorum.voters", List, Some(""), false, "Map of id/endpoint information for the set of voters, as {id}@{host}:{port} entries."),
    def("default.replication.factor", Int, Some("1"), false, "The replication factor for automatically created topics, and for topics created with -1 as the replication factor."),
    def("delete.topic.enable", Boolean, Some("true"), false, "Enables delete topic. Delete topic through the admin tool will have no effect if this config is turned off."),
    def("fetch.max.bytes", Int, Some("57671680"), false, "The maximum number of bytes returned for a fetch request."),
    def("group.initial.rebalance.delay.ms", Int, Some("3000"), false, "The amount of time the group coordinator waits for more consumers to join a new group before the first rebalance."),
    def("group.max.session.timeout.ms", Int, Some("1800000"), false, "The maximum allowed session timeout for registered consumers."),
    def("group.max.size", Int, Some("2147483647"), false, "The maximum number of consumers that a single consumer group can accommodate."),
    def("group.min.session.timeout.ms", Int, Some("6000"), false, "The minimum allowed session timeout for registered consumers."),
    def("inter.broker.listener.name", Str, None, false, "Name of listener used for communication between brokers."),
    def("listener.security.protocol.map", Str, Some("SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT"), false, "Map between listener names and security protocols."),
    def("listeners", Str, Some("PLAINTEXT://:9092"), false, "Listener list: comma-separated URIs the server listens on, with their listener names."),
    def("log.cleanup.policy", List, Some("delete"), true, "The default cleanup policy for segments beyond the retention window."),
    def("log.dir", Str, Some("/tmp/kafka-logs"), false, "The directory in which the log data is kept (supplemental for log.dirs)."),
    def("log.dirs", Str, None, false, "A comma-separated list of the directories where the log data is stored."),
    def("log.flush.interval.messages", Long, Some("9223372036854775807"), true, "The number of messages accumulated on a log partition before messages are flushed to disk."),
    def("log.flush.interval.ms", Long, None, true, "The maximum time in ms that a message in any topic is kept in memory before flushed to disk."),
    def("log.flush.scheduler.interval.ms", Long, Some("9223372036854775807"), false, "The frequency in ms that the log flusher checks whether any log needs to be flushed to disk."),
    def("log.index.interval.bytes", Int, Some("4096"), true, "The interval with which an entry is added to the offset index."),
    def("log.index.size.max.bytes", Int, Some("10485760"), true, "The maximum size in bytes of the offset index."),
    def("log.message.downconversion.enable", Boolean, Some("true"), true, "Default of the topic config message.downconversion.enable: whether Fetch v0-3 may down-convert stored batches."),
    def("log.message.timestamp.after.max.ms", Long, Some("3600000"), true, "How far a message timestamp may be ahead of the broker's timestamp."),
    def("log.message.timestamp.before.max.ms", Long, Some("9223372036854775807"), true, "How far a message timestamp may be behind the broker's timestamp."),
    def("log.message.timestamp.type", Str, Some("CreateTime"), true, "Whether the timestamp in the message is message create time or log append time."),
    def("log.retention.bytes", Long, Some("-1"), true, "The maximum size of the log before deleting it."),
    def("log.retention.check.interval.ms", Long, Some("300000"), false, "The frequency in milliseconds that the log cleaner checks whether any log is eligible for deletion."),
    def("log.retention.hours", Int, Some("168"), false, "The number of hours to keep a log file before deleting it, tertiary to log.retention.ms."),
    def("log.retention.minutes", Int, None, false, "The number of minutes to keep a log file before deleting it, secondary to log.retention.ms."),
    def("log.retention.ms", Long, None, true, "The number of milliseconds to keep a log file before deleting it; -1 for no time limit."),
    def("log.roll.hours", Int, Some("168"), false, "The maximum time before a new log segment is rolled out (in hours), secondary to log.roll.ms."),
    def("log.roll.ms", Long, None, true, "The maximum time before a new log segment is rolled out (in milliseconds)."),
    def("log.segment.bytes", Int, Some("1073741824"), true, "The maximum size of a single log file."),
    def("max.connections", Int, Some("2147483647"), true, "The maximum number of connections the broker allows at any time; listener.name.<listener>.max.connections limits one listener."),
    def("max.connections.per.ip", Int, Some("2147483647"), true, "The maximum number of connections allowed from each ip address; 0 only with overrides."),
    def("max.connections.per.ip.overrides", Str, Some(""), true, "Per-ip or hostname overrides of max.connections.per.ip, as host:count items separated by commas."),
    def("message.max.bytes", Int, Some("1048588"), true, "The largest record batch size allowed by Kafka (after compression if compression is enabled)."),
    def("metadata.log.dir", Str, None, false, "The directory of the cluster metadata log; the first log.dirs entry when unset."),
    def("metadata.log.segment.bytes", Int, Some("1073741824"), false, "The maximum size of a single metadata log file."),
    def("min.insync.replicas", Int, Some("1"), true, "The minimum number of replicas that must acknowledge a write with acks=all."),
    def("node.id", Int, Some("-1"), false, "The node ID associated with the roles this process is playing."),
    def("num.partitions", Int, Some("1"), false, "The default number of log partitions per topic."),
    def("offset.metadata.max.bytes", Int, Some("4096"), false, "The maximum size for a metadata entry associated with an offset commit."),
    def("offsets.retention.check.interval.ms", Long, Some("600000"), false, "Frequency at which to check for stale offsets."),
    def("offsets.retention.minutes", Int, Some("10080"), false, "How long committed offsets of a group without consumers are kept."),
    def("offsets.topic.num.partitions", Int, Some("50"), false, "The number of partitions for the offset commit topic."),
    def("offsets.topic.replication.factor", Short, Some("3"), false, "The replication factor for the offsets topic."),
    def("offsets.topic.segment.bytes", Int, Some("104857600"), false, "The offsets topic segment bytes."),
    def("process.roles", List, Some(""), false, "The roles that this process plays: 'broker', 'controller', or 'broker,controller'."),
    def("producer.id.expiration.ms", Int, Some("86400000"), true, "The time in ms that a topic partition leader will wait before expiring producer IDs."),
    def("security.inter.broker.protocol", Str, Some("PLAINTEXT"), false, "Security protocol used to communicate between brokers."),
    def("socket.request.max.bytes", Int, Some("104857600"), false, "The maximum number of bytes in a socket request."),
    def("transaction.max.timeout.ms", Int, Some("900000"), false, "The maximum allowed timeout for transactions."),
    def("transaction.partition.verification.enable", Boolean, Some("true"), true, "Whether a partition leader asks the transaction coordinator that a partition joined the transaction before it appends the transaction's first batch there."),
    def("transaction.state.log.num.partitions", Int, Some("50"), false, "The number of partitions for the transaction topic."),
    def("transaction.state.log.replication.factor", Short, Some("3"), false, "The replication factor for the transaction topic."),
    def("transaction.state.log.segment.bytes", Int, Some("104857600"), false, "The transaction topic segment bytes."),
    def("transactional.id.expiration.ms", Int, Some("604800000"), false, "The time in ms that the transaction coordinator waits before expiring a transactional id."),
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
