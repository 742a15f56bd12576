//! What the configuration asks for in security, checked against what this broker enforces.
//!
//! The broker serves the four security protocols (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL;
//! see `crate::security`) and Kafka's StandardAuthorizer (`crate::authorizer`; another
//! `authorizer.class.name` fails `Broker::open`), but not custom SASL callback handlers. A
//! configuration that asks for one must not start, because serving it would give clients
//! less protection than the operator configured. [`Config::check_enforceable`] lists every such request; `gregor` refuses to
//! start on any of them (exit code 2) and `server::run` refuses them too, so an embedding
//! program cannot skip the check. Whether the TLS and SASL settings themselves can be
//! served (keystores, mechanisms, JAAS users) is checked when the listeners are built
//! (`ListenerSecurity::for_config`), before anything is bound.
//!
//! Keys are matched broker-wide or for one listener (`listener.name.<listener>.<key>`, and
//! `listener.name.<listener>.<mechanism>.<key>` for the SASL keys, as Kafka spells them).
//! With only PLAINTEXT listeners the `ssl.*` and `sasl.*` keys have no effect, in Kafka as
//! here, and `gregor` warns about each ([`Config::inert_security_keys`]).

use super::{Config, SecurityProtocol};

/// The security protocols this broker enforces on a listener.
pub const ENFORCED_PROTOCOLS: &[SecurityProtocol] = &SecurityProtocol::ALL;

/// One thing the configuration asks for that this broker cannot enforce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unenforceable {
    /// A listener of `listeners` whose security protocol (from its name or from
    /// `listener.security.protocol.map`) is not implemented.
    Listener {
        /// The listener as Kafka writes it, `NAME://host:port`.
        listener: String,
        /// Its security protocol.
        protocol: SecurityProtocol,
        /// Whether the protocol comes from `listener.security.protocol.map` rather than from
        /// a listener name equal to the protocol's.
        mapped: bool,
    },
    /// `security.inter.broker.protocol` or `inter.broker.listener.name` resolves to a
    /// protocol that is not implemented.
    InterBroker {
        /// The resolved inter-broker listener name.
        listener: String,
        /// Its security protocol.
        protocol: SecurityProtocol,
    },
    /// A setting that turns on a security feature this broker does not have.
    Setting {
        /// The key, as written.
        key: String,
        /// Its value (JAAS configurations and key material are not repeated).
        shown_value: String,
        /// What it asks for, e.g. `SASL authentication`.
        feature: &'static str,
    },
}

impl std::fmt::Display for Unenforceable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unenforceable::Listener {
                listener,
                protocol,
                mapped,
            } => {
                let source = if *mapped {
                    " (from listener.security.protocol.map)"
                } else {
                    ""
                };
                write!(
                    f,
                    "listener {listener} uses security protocol {protocol}{source}, which this \
                     broker does not implement yet"
                )
            }
            Unenforceable::InterBroker { listener, protocol } => write!(
                f,
                "the inter-broker listener {listener} uses security protocol {protocol}, which \
                 this broker does not implement yet"
            ),
            Unenforceable::Setting {
                key,
                shown_value,
                feature,
            } => write!(
                f,
                "{key}={shown_value} asks for {feature}, which this broker does not implement yet"
            ),
        }
    }
}

/// What a security setting turns on, for the keys that turn something on.
#[derive(Clone, Copy)]
enum Asks {
    /// The key asks for the feature whenever it has a non-blank value.
    WhenSet(&'static str),
}

/// The keys (without a `listener.name.` prefix) that turn a security feature on.
const FEATURE_KEYS: &[(&str, Asks)] = &[(
    "sasl.server.callback.handler.class",
    Asks::WhenSet("a custom SASL callback handler"),
)];

/// Keys whose values are secrets or long texts: the error names the key, not the value.
fn hides_value(key: &str) -> bool {
    key.ends_with("jaas.config") || key.ends_with("keystore.key") || key.ends_with(".certificates")
}

/// `key` without Kafka's per-listener prefixes: `listener.name.<l>.<key>` and, for SASL keys,
/// `listener.name.<l>.<mechanism>.<key>` (e.g. `listener.name.sasl_ssl.plain.sasl.jaas.config`).
fn base_key(key: &str) -> &str {
    let Some(rest) = key.strip_prefix("listener.name.") else {
        return key;
    };
    let Some((_listener, rest)) = rest.split_once('.') else {
        return key;
    };
    if rest.starts_with("ssl.") || rest.starts_with("sasl.") {
        return rest;
    }
    match rest.split_once('.') {
        Some((_mechanism, after)) if after.starts_with("sasl.") => after,
        _ => rest,
    }
}

impl Config {
    /// Everything this configuration asks for in security that the broker cannot enforce;
    /// empty when every listener is PLAINTEXT and no setting turns on TLS, SASL or ACLs.
    pub fn unenforceable_security(&self) -> Vec<Unenforceable> {
        let mut found = Vec::new();
        for listener in &self.listeners {
            let Some(protocol) = self.security_protocol_for(&listener.name) else {
                continue;
            };
            if !ENFORCED_PROTOCOLS.contains(&protocol) {
                found.push(Unenforceable::Listener {
                    listener: listener.to_string(),
                    protocol,
                    mapped: listener.name != protocol.name(),
                });
            }
        }
        let inter_broker = &self.inter_broker_listener_name;
        if !self.listeners.iter().any(|l| &l.name == inter_broker) {
            // Not one of the listeners (only possible without the broker role): its
            // protocol is still the one brokers would be asked to speak.
            if let Some(protocol) = self.security_protocol_for(inter_broker) {
                if !ENFORCED_PROTOCOLS.contains(&protocol) {
                    found.push(Unenforceable::InterBroker {
                        listener: inter_broker.clone(),
                        protocol,
                    });
                }
            }
        }
        for (key, value) in self.properties() {
            let Some(asks) = FEATURE_KEYS
                .iter()
                .find(|(feature_key, _)| *feature_key == base_key(key))
                .map(|(_, asks)| *asks)
            else {
                continue;
            };
            let value = value.trim();
            let feature = match asks {
                Asks::WhenSet(feature) if !value.is_empty() => feature,
                _ => continue,
            };
            let shown_value = if hides_value(key) {
                "...".to_string()
            } else {
                value.to_string()
            };
            found.push(Unenforceable::Setting {
                key: key.clone(),
                shown_value,
                feature,
            });
        }
        found
    }

    /// Fails with [`ConfigError::Unenforceable`](super::ConfigError::Unenforceable) when
    /// [`Config::unenforceable_security`] finds anything.
    pub fn check_enforceable(&self) -> Result<(), super::ConfigError> {
        let found = self.unenforceable_security();
        if found.is_empty() {
            Ok(())
        } else {
            Err(super::ConfigError::Unenforceable(
                found.iter().map(ToString::to_string).collect(),
            ))
        }
    }

    /// The `ssl.*` and `sasl.*` keys (broker-wide or per listener) that are set but ask for
    /// nothing by themselves (tuning of TLS or SASL); with only PLAINTEXT listeners they have
    /// no effect, in Kafka as here.
    pub fn inert_security_keys(&self) -> Vec<&str> {
        let secured = self.listeners.iter().any(|l| {
            self.security_protocol_for(&l.name)
                .is_some_and(|p| p != SecurityProtocol::Plaintext)
        });
        if secured {
            return Vec::new();
        }
        self.properties()
            .keys()
            .map(String::as_str)
            .filter(|key| {
                let base = base_key(key);
                (base.starts_with("ssl.") || base.starts_with("sasl."))
                    && !FEATURE_KEYS
                        .iter()
                        .any(|(feature_key, _)| *feature_key == base)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAINTEXT_ONLY: &str = "node.id=1\nprocess.roles=broker,controller\n\
        controller.quorum.voters=1@localhost:9093\n\
        listeners=PLAINTEXT://:9092,CONTROLLER://:9093\ncontroller.listener.names=CONTROLLER\n\
        listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL\n";

    fn config(extra: &str) -> Config {
        Config::parse(&format!("{PLAINTEXT_ONLY}{extra}")).expect("valid configuration")
    }

    fn messages(config: &Config) -> Vec<String> {
        config
            .unenforceable_security()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn plaintext_only_configurations_are_enforceable() {
        assert!(config("").unenforceable_security().is_empty());
        assert!(Config::embedded_default().check_enforceable().is_ok());
        // Settings at Kafka's "off" values ask for nothing.
        let quiet = config("ssl.client.auth=none\nsasl.jaas.config=\nauthorizer.class.name=\n");
        assert!(quiet.unenforceable_security().is_empty());
    }

    #[test]
    fn tls_and_sasl_listeners_are_enforced() {
        let c = Config::parse(
            "node.id=1\nprocess.roles=broker,controller\ncontroller.quorum.voters=1@localhost:9093\n\
             listeners=PLAINTEXT://:9092,SASL_PLAINTEXT://127.0.0.1:9094,CONTROLLER://:9093,EXTERNAL://:9095\n\
             controller.listener.names=CONTROLLER\n\
             listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,EXTERNAL:SSL\n\
             ssl.client.auth=required\nsasl.enabled.mechanisms=PLAIN\n",
        )
        .unwrap();
        assert!(messages(&c).is_empty(), "{:?}", messages(&c));
        // With a TLS or SASL listener the ssl/sasl keys are in use.
        assert!(c.inert_security_keys().is_empty());
    }

    #[test]
    fn settings_that_turn_on_what_is_not_implemented_are_named() {
        // The StandardAuthorizer is enforced (crate::authorizer), so it asks for nothing here.
        let c = config(
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n\
             listener.name.plaintext.plain.sasl.server.callback.handler.class=com.example.Handler\n\
             ssl.client.auth=required\nsasl.enabled.mechanisms=PLAIN\n",
        );
        let found = messages(&c);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found.iter().any(|m| m.starts_with(
            "listener.name.plaintext.plain.sasl.server.callback.handler.class=com.example.Handler \
             asks for a custom SASL callback handler"
        )));
        let err = c.check_enforceable().unwrap_err().to_string();
        assert!(err.contains("sasl.server.callback.handler.class"), "{err}");
    }

    #[test]
    fn tuning_keys_ask_for_nothing_but_are_reported_inert() {
        let c = config(
            "ssl.enabled.protocols=TLSv1.3\nsasl.kerberos.service.name=kafka\n\
             listener.name.plaintext.scram-sha-256.sasl.login.refresh.buffer.seconds=300\n\
             ssl.client.auth=none\n",
        );
        assert!(c.unenforceable_security().is_empty());
        assert_eq!(
            c.inert_security_keys(),
            [
                "listener.name.plaintext.scram-sha-256.sasl.login.refresh.buffer.seconds",
                "sasl.kerberos.service.name",
                "ssl.client.auth",
                "ssl.enabled.protocols",
            ]
        );
    }

    #[test]
    fn per_listener_prefixes_are_stripped_as_kafka_spells_them() {
        assert_eq!(base_key("ssl.client.auth"), "ssl.client.auth");
        assert_eq!(
            base_key("listener.name.external.ssl.client.auth"),
            "ssl.client.auth"
        );
        assert_eq!(
            base_key("listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"),
            "sasl.jaas.config"
        );
        assert_eq!(
            base_key("listener.name.internal.max.connections"),
            "max.connections"
        );
    }
}
