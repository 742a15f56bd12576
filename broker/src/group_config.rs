//! Per-group dynamic configs (Kafka 4's `GroupConfig`, resource type GROUP = 32):
//! `consumer.session.timeout.ms` and `consumer.heartbeat.interval.ms`, set with
//! IncrementalAlterConfigs, stored as `ConfigRecord`s in the metadata log, described with
//! DescribeConfigs, and read by the group coordinator for the consumer group of that id.
//!
//! Their bounds are the broker's `group.consumer.{min,max}.session.timeout.ms` and
//! `group.consumer.{min,max}.heartbeat.interval.ms` (checked against each other at
//! start-up as Kafka's `GroupCoordinatorConfig` does, in [`crate::config`]); their
//! defaults `group.consumer.session.timeout.ms` and `group.consumer.heartbeat.interval.ms`.
//! Kafka 4's share-group keys (`share.*`) are not known here (no share groups).

use std::collections::BTreeMap;

/// The session timeout of the group's consumer-protocol members.
pub const CONSUMER_SESSION_TIMEOUT_MS: &str = "consumer.session.timeout.ms";
/// The heartbeat interval the group's consumer-protocol members are told.
pub const CONSUMER_HEARTBEAT_INTERVAL_MS: &str = "consumer.heartbeat.interval.ms";
/// Every group config name, in Kafka's order.
pub const NAMES: [&str; 2] = [CONSUMER_SESSION_TIMEOUT_MS, CONSUMER_HEARTBEAT_INTERVAL_MS];

/// The broker's defaults and bounds of the group configs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// `group.consumer.session.timeout.ms` (default 45000).
    pub session_timeout_ms: i32,
    /// `group.consumer.min.session.timeout.ms` (default 45000).
    pub min_session_timeout_ms: i32,
    /// `group.consumer.max.session.timeout.ms` (default 60000).
    pub max_session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms` (default 5000).
    pub heartbeat_interval_ms: i32,
    /// `group.consumer.min.heartbeat.interval.ms` (default 5000).
    pub min_heartbeat_interval_ms: i32,
    /// `group.consumer.max.heartbeat.interval.ms` (default 15000).
    pub max_heartbeat_interval_ms: i32,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            session_timeout_ms: 45_000,
            min_session_timeout_ms: 45_000,
            max_session_timeout_ms: 60_000,
            heartbeat_interval_ms: 5_000,
            min_heartbeat_interval_ms: 5_000,
            max_heartbeat_interval_ms: 15_000,
        }
    }
}

impl Bounds {
    /// The bounds in static broker properties (`server.properties` with overrides), Kafka's
    /// defaults for keys not set or not integers (start-up has rejected bad ones).
    pub fn from_properties(props: &BTreeMap<String, String>) -> Bounds {
        let d = Bounds::default();
        let int = |key: &str, default: i32| {
            props
                .get(key)
                .and_then(|v| v.trim().parse::<i32>().ok())
                .unwrap_or(default)
        };
        Bounds {
            session_timeout_ms: int("group.consumer.session.timeout.ms", d.session_timeout_ms),
            min_session_timeout_ms: int(
                "group.consumer.min.session.timeout.ms",
                d.min_session_timeout_ms,
            ),
            max_session_timeout_ms: int(
                "group.consumer.max.session.timeout.ms",
                d.max_session_timeout_ms,
            ),
            heartbeat_interval_ms: int(
                "group.consumer.heartbeat.interval.ms",
                d.heartbeat_interval_ms,
            ),
            min_heartbeat_interval_ms: int(
                "group.consumer.min.heartbeat.interval.ms",
                d.min_heartbeat_interval_ms,
            ),
            max_heartbeat_interval_ms: int(
                "group.consumer.max.heartbeat.interval.ms",
                d.max_heartbeat_interval_ms,
            ),
        }
    }

    /// The bounds of the broker's configuration.
    pub fn from_config(c: &crate::config::Config) -> Bounds {
        Bounds {
            session_timeout_ms: c.group_consumer_session_timeout_ms,
            min_session_timeout_ms: c.group_consumer_min_session_timeout_ms,
            max_session_timeout_ms: c.group_consumer_max_session_timeout_ms,
            heartbeat_interval_ms: c.group_consumer_heartbeat_interval_ms,
            min_heartbeat_interval_ms: c.group_consumer_min_heartbeat_interval_ms,
            max_heartbeat_interval_ms: c.group_consumer_max_heartbeat_interval_ms,
        }
    }

    /// The broker default of a group config (`extractGroupConfigMap`).
    pub fn default_of(&self, name: &str) -> Option<i32> {
        match name {
            CONSUMER_SESSION_TIMEOUT_MS => Some(self.session_timeout_ms),
            CONSUMER_HEARTBEAT_INTERVAL_MS => Some(self.heartbeat_interval_ms),
            _ => None,
        }
    }
}

/// A short description of a group config (DescribeConfigs' documentation).
pub fn documentation(name: &str) -> Option<&'static str> {
    match name {
        CONSUMER_SESSION_TIMEOUT_MS => Some(
            "How long the coordinator waits for a heartbeat of a member of this consumer group \
             (consumer protocol) before it removes the member.",
        ),
        CONSUMER_HEARTBEAT_INTERVAL_MS => Some(
            "How often the members of this consumer group (consumer protocol) are told to \
             heartbeat.",
        ),
        _ => None,
    }
}

/// A group config value as Kafka's `ConfigDef` parses an INT with `atLeast(1)`.
fn parse_int(name: &str, value: &str) -> Result<i32, String> {
    let n: i32 = value.trim().parse().map_err(|_| {
        format!("Invalid value {value} for configuration {name}: Not a number of type INT")
    })?;
    if n < 1 {
        return Err(format!(
            "Invalid value {n} for configuration {name}: Value must be at least 1"
        ));
    }
    Ok(n)
}

/// The effective timeouts of a group: its configs over the broker defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupTimeouts {
    /// `consumer.session.timeout.ms`.
    pub session_timeout_ms: i32,
    /// `consumer.heartbeat.interval.ms`.
    pub heartbeat_interval_ms: i32,
}

/// The group's timeouts from its stored configs (`None`: none set) and the broker's
/// defaults; a stored value that does not parse (never written by this broker) reads as
/// the default.
pub fn timeouts(configs: Option<&BTreeMap<String, String>>, bounds: &Bounds) -> GroupTimeouts {
    let get = |name: &str, default: i32| {
        configs
            .and_then(|c| c.get(name))
            .and_then(|v| parse_int(name, v).ok())
            .unwrap_or(default)
    };
    GroupTimeouts {
        session_timeout_ms: get(CONSUMER_SESSION_TIMEOUT_MS, bounds.session_timeout_ms),
        heartbeat_interval_ms: get(CONSUMER_HEARTBEAT_INTERVAL_MS, bounds.heartbeat_interval_ms),
    }
}

/// Kafka's `GroupConfig.validate` of a group's configs after a change: only known names
/// ("Unknown group config name: X"), INT values of at least 1, within the broker's bounds,
/// and the session timeout above the heartbeat interval (each with the default for a key
/// not set). The message goes with `INVALID_CONFIG`.
pub fn validate(configs: &BTreeMap<String, String>, bounds: &Bounds) -> Result<(), String> {
    if let Some(unknown) = configs.keys().find(|k| !NAMES.contains(&k.as_str())) {
        return Err(format!("Unknown group config name: {unknown}"));
    }
    let value = |name: &str, default: i32| match configs.get(name) {
        Some(v) => parse_int(name, v),
        None => Ok(default),
    };
    let session = value(CONSUMER_SESSION_TIMEOUT_MS, bounds.session_timeout_ms)?;
    let heartbeat = value(CONSUMER_HEARTBEAT_INTERVAL_MS, bounds.heartbeat_interval_ms)?;
    if heartbeat < bounds.min_heartbeat_interval_ms {
        return Err(format!(
            "{CONSUMER_HEARTBEAT_INTERVAL_MS} must be greater than or equal to \
             group.consumer.min.heartbeat.interval.ms"
        ));
    }
    if heartbeat > bounds.max_heartbeat_interval_ms {
        return Err(format!(
            "{CONSUMER_HEARTBEAT_INTERVAL_MS} must be less than or equal to \
             group.consumer.max.heartbeat.interval.ms"
        ));
    }
    if session < bounds.min_session_timeout_ms {
        return Err(format!(
            "{CONSUMER_SESSION_TIMEOUT_MS} must be greater than or equal to \
             group.consumer.min.session.timeout.ms"
        ));
    }
    if session > bounds.max_session_timeout_ms {
        return Err(format!(
            "{CONSUMER_SESSION_TIMEOUT_MS} must be less than or equal to \
             group.consumer.max.session.timeout.ms"
        ));
    }
    if session <= heartbeat {
        return Err(format!(
            "{CONSUMER_SESSION_TIMEOUT_MS} must be greater than {CONSUMER_HEARTBEAT_INTERVAL_MS}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configs(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn validation_follows_kafkas_group_config() {
        let b = Bounds::default();
        assert_eq!(validate(&configs(&[]), &b), Ok(()));
        assert_eq!(
            validate(&configs(&[(CONSUMER_SESSION_TIMEOUT_MS, "50000")]), &b),
            Ok(())
        );
        let err = |entries: &[(&str, &str)]| validate(&configs(entries), &b).unwrap_err();
        assert_eq!(
            err(&[("share.session.timeout.ms", "1")]),
            "Unknown group config name: share.session.timeout.ms"
        );
        assert!(err(&[(CONSUMER_SESSION_TIMEOUT_MS, "abc")]).contains("Not a number of type INT"));
        assert!(err(&[(CONSUMER_SESSION_TIMEOUT_MS, "0")]).contains("at least 1"));
        assert!(
            err(&[(CONSUMER_SESSION_TIMEOUT_MS, "1000")])
                .contains("greater than or equal to group.consumer.min.session.timeout.ms")
        );
        assert!(
            err(&[(CONSUMER_SESSION_TIMEOUT_MS, "60001")])
                .contains("less than or equal to group.consumer.max.session.timeout.ms")
        );
        assert!(
            err(&[(CONSUMER_HEARTBEAT_INTERVAL_MS, "4999")])
                .contains("group.consumer.min.heartbeat.interval.ms")
        );
        assert!(
            err(&[(CONSUMER_HEARTBEAT_INTERVAL_MS, "15001")])
                .contains("group.consumer.max.heartbeat.interval.ms")
        );
        let wide = Bounds {
            min_session_timeout_ms: 1000,
            ..Bounds::default()
        };
        assert_eq!(
            validate(
                &configs(&[
                    (CONSUMER_SESSION_TIMEOUT_MS, "6000"),
                    (CONSUMER_HEARTBEAT_INTERVAL_MS, "6000")
                ]),
                &wide
            )
            .unwrap_err(),
            "consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms"
        );
    }

    #[test]
    fn timeouts_fall_back_to_the_broker_defaults() {
        let b = Bounds::default();
        assert_eq!(
            timeouts(None, &b),
            GroupTimeouts {
                session_timeout_ms: 45_000,
                heartbeat_interval_ms: 5_000
            }
        );
        let c = configs(&[(CONSUMER_HEARTBEAT_INTERVAL_MS, "7000")]);
        assert_eq!(timeouts(Some(&c), &b).heartbeat_interval_ms, 7000);
        assert_eq!(timeouts(Some(&c), &b).session_timeout_ms, 45_000);
        let props = configs(&[
            ("group.consumer.session.timeout.ms", "50000"),
            ("group.consumer.max.heartbeat.interval.ms", "20000"),
        ]);
        let from = Bounds::from_properties(&props);
        assert_eq!(from.session_timeout_ms, 50_000);
        assert_eq!(from.max_heartbeat_interval_ms, 20_000);
        assert_eq!(from.min_session_timeout_ms, 45_000);
    }

    #[test]
    fn start_up_checks_the_bounds_as_kafkas_group_coordinator_config() {
        let base = [
            ("node.id", "1"),
            ("process.roles", "broker,controller"),
            ("log.dirs", "/tmp/gregor-group-config-test"),
        ];
        let parse = |extra: &[(&str, &str)]| {
            crate::config::Config::from_properties(base.iter().chain(extra.iter()).copied())
                .map(|c| Bounds::from_config(&c))
                .map_err(|e| e.to_string())
        };
        assert_eq!(parse(&[]), Ok(Bounds::default()));
        let cases: [(&[(&str, &str)], &str); 5] = [
            (
                &[("group.consumer.session.timeout.ms", "30000")],
                "group.consumer.session.timeout.ms must be greater than or equal to \
                 group.consumer.min.session.timeout.ms",
            ),
            (
                &[("group.consumer.session.timeout.ms", "61000")],
                "group.consumer.session.timeout.ms must be less than or equal to \
                 group.consumer.max.session.timeout.ms",
            ),
            (
                &[("group.consumer.max.session.timeout.ms", "40000")],
                "group.consumer.max.session.timeout.ms must be greater than or equal to \
                 group.consumer.min.session.timeout.ms",
            ),
            (
                &[("group.consumer.heartbeat.interval.ms", "16000")],
                "group.consumer.heartbeat.interval.ms must be less than or equal to \
                 group.consumer.max.heartbeat.interval.ms",
            ),
            (
                &[("group.consumer.min.heartbeat.interval.ms", "20000")],
                "group.consumer.max.heartbeat.interval.ms must be greater than or equal to \
                 group.consumer.min.heartbeat.interval.ms",
            ),
        ];
        for (extra, message) in cases {
            let err = parse(extra).unwrap_err();
            assert!(err.contains(message), "{extra:?}: {err}");
        }
        let ok = parse(&[
            ("group.consumer.min.session.timeout.ms", "1000"),
            ("group.consumer.session.timeout.ms", "2000"),
            ("group.consumer.min.heartbeat.interval.ms", "100"),
            ("group.consumer.heartbeat.interval.ms", "500"),
        ])
        .unwrap();
        assert_eq!(
            (ok.session_timeout_ms, ok.heartbeat_interval_ms),
            (2000, 500)
        );
    }
}
