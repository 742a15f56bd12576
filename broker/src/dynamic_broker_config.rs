//! Dynamic broker configs (KIP-226), as Kafka's `DynamicBrokerConfig`: configs set through
//! the admin APIs on BROKER resources, stored as `ConfigRecord`s in the metadata log, for
//! this broker (resource `<node id>`) or for every broker (resource `""`, the cluster-wide
//! default). Precedence: this broker's, the cluster default, `server.properties`, Kafka's
//! default; a key set in a higher layer hides its synonyms below (`log.retention.hours`
//! set dynamically beats a static `log.retention.ms`, as Kafka's `overrideProps`).
//!
//! * [`validate`] is the forwarding broker's check of a new set of configs
//!   (`ConfigAdminManager.validateBrokerConfigChange`): read-only keys, security keys
//!   without a listener prefix, per-broker keys at the cluster default, values of the
//!   wrong type, then the whole configuration as it would become. Every failure is
//!   `INVALID_REQUEST` with Kafka's message (KAFKA-13609: Kafka keeps that code rather than
//!   `INVALID_CONFIG`).
//! * [`effective_config`] is the configuration the broker runs with: the static one with
//!   the dynamic layers of the metadata image on top, keys that could not have been set
//!   dynamically dropped (Kafka's `fromPersistentProps`). The broker takes its log
//!   defaults from it (`log.*`, `message.max.bytes`, `producer.id.expiration.ms`), so
//!   topics without their own override follow a changed broker default at once, as
//!   Kafka's `DynamicLogConfig` does.
//!
//! Keys this broker does not know are stored and reported but have no effect, as Kafka
//! does for custom keys.

use std::collections::BTreeMap;

use crate::cluster::MetadataImage;
use crate::cluster::controller::ApiError;
use crate::config::Config;
use crate::handlers::broker_configs::{definition, synonym_keys};
use crate::topic_config::ConfigType;
use gregor_protocol::error_code::INVALID_REQUEST;

/// Kafka's `SslConfigs.RECONFIGURABLE_CONFIGS`: settable only with a
/// `listener.name.<listener>.` prefix.
const SECURITY_CONFIGS: &[&str] = &[
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.key.password",
    "ssl.keystore.key",
    "ssl.keystore.certificate.chain",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.truststore.certificates",
];

/// Listener configs that may be set at the cluster default (`ClusterLevelListenerConfigs`).
const CLUSTER_LEVEL_LISTENER_CONFIGS: &[&str] = &[
    "max.connections",
    "max.connection.creation.rate",
    "num.network.threads",
];

/// The base name of a `listener.name.<listener>.<base>` key.
fn listener_base(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("listener.name.")?;
    let dot = rest.find('.')?;
    Some(&rest[dot + 1..])
}

/// Keys Kafka knows and cannot change without a restart (`DynamicConfig.Broker.nonDynamicProps`,
/// restricted to the keys this broker knows).
fn is_read_only(key: &str) -> bool {
    definition(key).is_some_and(|d| !d.dynamic)
}

/// Keys only a broker's own resource may set (`PerBrokerConfigs`): security configs and
/// per-listener configs but for the cluster-level ones.
fn is_per_broker(key: &str) -> bool {
    SECURITY_CONFIGS.contains(&key)
        || listener_base(key).is_some_and(|base| !CLUSTER_LEVEL_LISTENER_CONFIGS.contains(&base))
}

/// Kafka's `ConfigDef.parseType` check of one value, with its message.
fn check_type(key: &str, value: &str) -> Result<(), String> {
    let base = listener_base(key).unwrap_or(key);
    let Some(def) = definition(base) else {
        return Ok(());
    };
    let trimmed = value.trim();
    let ok = match def.config_type {
        ConfigType::Int => trimmed.parse::<i32>().is_ok(),
        ConfigType::Long => trimmed.parse::<i64>().is_ok(),
        ConfigType::Short => trimmed.parse::<i16>().is_ok(),
        ConfigType::Double => trimmed.parse::<f64>().is_ok(),
        ConfigType::Boolean => {
            return if trimmed.eq_ignore_ascii_case("true") || trimmed.eq_ignore_ascii_case("false")
            {
                Ok(())
            } else {
                Err(format!(
                    "Invalid value {value} for configuration {key}: Expected value to be either true or false"
                ))
            };
        }
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "Invalid value {value} for configuration {key}: Not a number of type {}",
            def.config_type.name()
        ))
    }
}

/// Scala's `Set(a, b)`, sorted so the message is stable.
fn scala_set(mut keys: Vec<&str>) -> String {
    keys.sort_unstable();
    format!("Set({})", keys.join(", "))
}

/// One layer of dynamic broker configs, if the resource has any.
type Layer<'a> = Option<&'a BTreeMap<String, String>>;

/// The layers of dynamic broker configs in the image for node `node_id`: the cluster
/// default, then the node's own.
fn layers(image: &MetadataImage, node_id: i32) -> (Layer<'_>, Layer<'_>) {
    (image.cluster_broker_config(), image.broker_config(node_id))
}

/// Checks that `props` may become the whole dynamic config of this broker's resource
/// (`per_broker`) or of the cluster default, as Kafka's `DynamicBrokerConfig.validate`:
/// the checks of `validateConfigs`, then the configuration that would result must be
/// valid. `config` is the static configuration.
pub fn validate(
    config: &Config,
    image: &MetadataImage,
    node_id: i32,
    props: &BTreeMap<String, String>,
    per_broker: bool,
) -> Result<(), ApiError> {
    let invalid = |message: String| Err(ApiError::new(INVALID_REQUEST, message));
    let keys: Vec<&str> = props.keys().map(String::as_str).collect();
    let read_only: Vec<&str> = keys.iter().copied().filter(|k| is_read_only(k)).collect();
    if !read_only.is_empty() {
        return invalid(format!(
            "Cannot update these configs dynamically: {}",
            scala_set(read_only)
        ));
    }
    let security: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| SECURITY_CONFIGS.contains(k))
        .collect();
    if !security.is_empty() {
        return invalid(format!(
            "These security configs can be dynamically updated only per-listener using the listener prefix: {}",
            scala_set(security)
        ));
    }
    for (key, value) in props {
        if let Err(message) = check_type(key, value) {
            return invalid(message);
        }
    }
    if !per_broker {
        let per_broker_keys: Vec<&str> =
            keys.iter().copied().filter(|k| is_per_broker(k)).collect();
        if !per_broker_keys.is_empty() {
            return invalid(format!(
                "Cannot update these configs at default cluster level, broker id must be specified: {}",
                scala_set(per_broker_keys)
            ));
        }
    }
    let (default, broker) = layers(image, node_id);
    let persisted =
        |layer: Layer<'_>, per_broker| layer.map(|l| persistent(l, per_broker)).unwrap_or_default();
    let merged = if per_broker {
        merge(config.properties(), &[&persisted(default, false), props])
    } else {
        merge(config.properties(), &[props, &persisted(broker, true)])
    };
    Config::from_properties(merged)
        .map(|_| ())
        .or_else(|e| invalid(e.to_string()))
}

/// The stored dynamic configs of a resource without the keys that could not have been set
/// there (Kafka's `fromPersistentProps`: values of the wrong type, read-only keys, security
/// keys without a listener prefix, per-broker keys at the cluster default), each dropped
/// with a log line.
pub fn persistent(props: &BTreeMap<String, String>, per_broker: bool) -> BTreeMap<String, String> {
    props
        .iter()
        .filter(|(key, value)| {
            let why = if let Err(e) = check_type(key, value) {
                e
            } else if is_read_only(key) {
                "a read-only config".to_string()
            } else if SECURITY_CONFIGS.contains(&key.as_str()) {
                "a security config without a listener prefix".to_string()
            } else if !per_broker && is_per_broker(key) {
                "a per-broker config at the cluster default".to_string()
            } else {
                return true;
            };
            tracing::error!("ignoring dynamic broker config {key}: {why}");
            false
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `base` with each layer put over it in turn, a key's synonyms removed first (Kafka's
/// `overrideProps`).
fn merge(
    base: &BTreeMap<String, String>,
    layers: &[&BTreeMap<String, String>],
) -> BTreeMap<String, String> {
    let mut merged = base.clone();
    for layer in layers {
        for (key, value) in *layer {
            for synonym in synonym_keys(key) {
                merged.remove(synonym);
            }
            merged.insert(key.clone(), value.clone());
        }
    }
    merged
}

/// The configuration broker `node_id` runs with: `config` with the image's cluster-wide
/// and then per-broker dynamic configs on top. A layer that makes the configuration
/// invalid is left out with a log line (Kafka logs and keeps the previous configuration).
pub fn effective_config(config: &Config, image: &MetadataImage, node_id: i32) -> Config {
    let (default, broker) = layers(image, node_id);
    if default.is_none() && broker.is_none() {
        return config.clone();
    }
    let default = default.map(|l| persistent(l, false)).unwrap_or_default();
    let broker = broker.map(|l| persistent(l, true)).unwrap_or_default();
    let attempts: [&[&BTreeMap<String, String>]; 3] =
        [&[&default, &broker], &[&default], &[&broker]];
    for layers in attempts {
        match Config::from_properties(merge(config.properties(), layers)) {
            Ok(effective) => return effective,
            Err(e) => tracing::error!("dynamic broker configs could not be applied: {e}"),
        }
    }
    config.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topic_config::config_map as map;

    fn check(pairs: &[(&str, &str)], per_broker: bool) -> Result<(), String> {
        let config = Config::embedded_default();
        validate(&config, &MetadataImage::empty(), 1, &map(pairs), per_broker)
            .map_err(|e| e.message.unwrap_or_default())
    }

    #[test]
    fn kafkas_checks_and_messages() {
        assert_eq!(check(&[("log.retention.ms", "1000")], false), Ok(()));
        assert_eq!(check(&[("some.custom.key", "x")], false), Ok(()));
        assert_eq!(
            check(&[("log.dirs", "/x"), ("broker.id", "3")], true),
            Err("Cannot update these configs dynamically: Set(broker.id, log.dirs)".into())
        );
        assert_eq!(
            check(&[("ssl.keystore.location", "/k")], true),
            Err("These security configs can be dynamically updated only per-listener using the listener prefix: Set(ssl.keystore.location)".into())
        );
        assert_eq!(
            check(&[("message.max.bytes", "big")], true),
            Err(
                "Invalid value big for configuration message.max.bytes: Not a number of type INT"
                    .into()
            )
        );
        assert_eq!(
            check(&[("listener.name.plaintext.ssl.keystore.location", "/k")], false),
            Err("Cannot update these configs at default cluster level, broker id must be specified: Set(listener.name.plaintext.ssl.keystore.location)".into())
        );
        assert_eq!(
            check(&[("listener.name.plaintext.max.connections", "5")], false),
            Ok(())
        );
        // Range checks of the whole configuration.
        assert!(check(&[("message.max.bytes", "-5")], true).is_err());
    }

    #[test]
    fn higher_layers_hide_synonyms_below() {
        let base = map(&[("log.retention.ms", "1000"), ("num.partitions", "3")]);
        let merged = merge(&base, &[&map(&[("log.retention.hours", "2")])]);
        assert_eq!(merged.get("log.retention.ms"), None);
        assert_eq!(
            merged.get("log.retention.hours").map(String::as_str),
            Some("2")
        );
        assert_eq!(merged.get("num.partitions").map(String::as_str), Some("3"));
    }

    #[test]
    fn stored_configs_that_could_not_be_set_are_dropped() {
        let stored = map(&[
            ("log.dirs", "/x"),
            ("message.max.bytes", "nope"),
            ("log.retention.ms", "5"),
            ("listener.name.a.ssl.key.password", "p"),
        ]);
        assert_eq!(
            persistent(&stored, false).keys().collect::<Vec<_>>(),
            ["log.retention.ms"]
        );
        assert_eq!(persistent(&stored, true).len(), 2);
    }
}
