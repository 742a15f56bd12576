//! The security settings of one listener, resolved from the configuration as Kafka does.
//!
//! Kafka reads a listener's `ssl.*` and `sasl.*` keys through
//! `AbstractConfig.valuesWithPrefixOverride("listener.name.<listener>.")`: the
//! listener-prefixed key wins over the broker-wide one. The SASL keys of one mechanism are
//! prefixed once more (`listener.name.<listener>.<mechanism>.sasl.jaas.config`); Kafka's
//! `JaasContext.loadServerContext` reads the JAAS configuration only in that form and warns
//! about (and ignores) a `sasl.jaas.config` without the mechanism prefix. Two more of
//! Kafka's rules (`ChannelBuilders`): `ssl.client.auth` applies to a SASL_SSL listener only
//! when listener-prefixed, and SASL listeners get `sasl.enabled.mechanisms` (default
//! `GSSAPI`).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{Config, ConfigError, Listener, SecurityProtocol};

use super::jaas::JaasConfig;
use super::principal_mapping::PrincipalMapper;
use super::tls;

/// The mechanisms this broker implements, in the order Kafka lists its own.
pub const IMPLEMENTED_MECHANISMS: &[&str] =
    &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"];

/// Kafka's `JaasContext` login module class for PLAIN.
pub const PLAIN_LOGIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";

/// The keys of one listener, listener-prefixed first.
pub struct ListenerKeys<'a> {
    props: &'a BTreeMap<String, String>,
    prefix: String,
}

impl<'a> ListenerKeys<'a> {
    /// The keys of listener `name` in `props`.
    pub fn new(props: &'a BTreeMap<String, String>, name: &str) -> ListenerKeys<'a> {
        ListenerKeys {
            props,
            prefix: format!("listener.name.{}.", name.to_ascii_lowercase()),
        }
    }

    /// `key`'s value with the key as written (`listener.name.<l>.<key>` if set, else `key`).
    pub fn get(&self, key: &str) -> Option<(String, &'a str)> {
        let prefixed = format!("{}{key}", self.prefix);
        if let Some(value) = self.props.get(&prefixed) {
            return Some((prefixed, value.as_str()));
        }
        self.props.get(key).map(|v| (key.to_string(), v.as_str()))
    }

    /// `key`'s value, listener-prefixed only.
    pub fn get_prefixed(&self, key: &str) -> Option<(String, &'a str)> {
        let prefixed = format!("{}{key}", self.prefix);
        self.props.get(&prefixed).map(|v| (prefixed, v.as_str()))
    }

    /// The non-blank value of `key` (as [`ListenerKeys::get`]).
    pub fn non_blank(&self, key: &str) -> Option<(String, &'a str)> {
        self.get(key).filter(|(_, v)| !v.trim().is_empty())
    }
}

/// What a listener asks of its connections, built once at start-up.
#[derive(Clone)]
pub struct ListenerSecurity {
    /// The listener's security protocol.
    pub protocol: SecurityProtocol,
    /// The TLS acceptor of an SSL or SASL_SSL listener.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// How certificate subjects become principals (SSL listeners).
    pub principal_mapper: Arc<PrincipalMapper>,
    /// The SASL settings of a SASL_PLAINTEXT or SASL_SSL listener.
    pub sasl: Option<Arc<SaslSettings>>,
}

impl std::fmt::Debug for ListenerSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerSecurity")
            .field("protocol", &self.protocol)
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.sasl.as_ref().map(|s| s.mechanisms.clone()))
            .finish()
    }
}

/// The SASL settings of one listener.
#[derive(Debug)]
pub struct SaslSettings {
    /// `sasl.enabled.mechanisms`, as configured (all implemented here).
    pub mechanisms: Vec<String>,
    /// PLAIN's users and passwords, from the PLAIN JAAS configuration's `user_<name>` options.
    pub plain_users: BTreeMap<String, String>,
    /// `connection.failed.authentication.delay.ms`: how long a failed authentication waits
    /// before its answer and the close (Kafka's brake on password guessing).
    pub failed_authentication_delay_ms: u64,
    /// OAUTHBEARER's unsecured-JWS validator options, when OAUTHBEARER is enabled.
    pub oauthbearer: Option<Arc<super::sasl::oauthbearer::UnsecuredValidatorOptions>>,
    /// `connections.max.reauth.ms` of each enabled mechanism (KIP-368), as
    /// [`super::reauth::max_reauth_ms`] resolves it; 0 or less: no limit.
    pub max_reauth_ms: BTreeMap<String, i64>,
}

impl ListenerSecurity {
    /// Plain TCP, no authentication: every connection is `User:ANONYMOUS`.
    pub fn plaintext() -> ListenerSecurity {
        ListenerSecurity {
            protocol: SecurityProtocol::Plaintext,
            tls: None,
            principal_mapper: Arc::new(PrincipalMapper::default()),
            sasl: None,
        }
    }

    /// The security of every listener this broker binds, by listener name; the first
    /// error names the key.
    pub fn for_config(config: &Config) -> Result<BTreeMap<String, ListenerSecurity>, ConfigError> {
        if let Some(text) = &config.bootstrap_scram {
            super::bootstrap_scram::parse(text).map_err(|e| ConfigError::InvalidValue {
                key: "gregor.bootstrap.scram".to_string(),
                value: "...".to_string(),
                expected: format!(
                    "SCRAM credentials as kafka-storage --add-scram takes them ({e})"
                ),
            })?;
        }
        let mut out = BTreeMap::new();
        for listener in &config.listeners {
            let protocol = config
                .security_protocol_for(&listener.name)
                .unwrap_or(SecurityProtocol::Plaintext);
            out.insert(
                listener.name.clone(),
                ListenerSecurity::build(config, listener, protocol)?,
            );
        }
        Ok(out)
    }

    /// The security of one listener.
    pub fn build(
        config: &Config,
        listener: &Listener,
        protocol: SecurityProtocol,
    ) -> Result<ListenerSecurity, ConfigError> {
        let keys = ListenerKeys::new(config.properties(), &listener.name);
        let mut security = ListenerSecurity::plaintext();
        security.protocol = protocol;
        let rules = keys.get("ssl.principal.mapping.rules");
        if let Some((key, value)) = rules {
            security.principal_mapper =
                Arc::new(
                    PrincipalMapper::parse(value).map_err(|e| ConfigError::InvalidValue {
                        key,
                        value: value.to_string(),
                        expected: format!("Kafka's ssl.principal.mapping.rules syntax ({e})"),
                    })?,
                );
        }
        if matches!(protocol, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl) {
            let server = tls::server_config(&keys, protocol, &listener.name)?;
            security.tls = Some(tokio_rustls::TlsAcceptor::from(Arc::new(server)));
        }
        if matches!(
            protocol,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        ) {
            security.sasl = Some(Arc::new(sasl_settings(&keys, listener)?));
        }
        Ok(security)
    }
}

fn sasl_settings(
    keys: &ListenerKeys<'_>,
    listener: &Listener,
) -> Result<SaslSettings, ConfigError> {
    let (key, value) = keys
        .get("sasl.enabled.mechanisms")
        .unwrap_or_else(|| ("sasl.enabled.mechanisms".to_string(), "GSSAPI"));
    let mechanisms: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect();
    if mechanisms.is_empty() {
        return Err(ConfigError::InvalidValue {
            key,
            value: value.to_string(),
            expected: format!(
                "at least one SASL mechanism for the SASL listener {}",
                listener.name
            ),
        });
    }
    for mechanism in &mechanisms {
        if !IMPLEMENTED_MECHANISMS.contains(&mechanism.as_str()) {
            let default = if keys.get("sasl.enabled.mechanisms").is_none() {
                " (Kafka's default; set sasl.enabled.mechanisms)"
            } else {
                ""
            };
            return Err(ConfigError::InvalidValue {
                key: key.clone(),
                value: value.to_string(),
                expected: format!(
                    "SASL mechanisms this broker implements ({}): {mechanism}{default} is not one",
                    IMPLEMENTED_MECHANISMS.join(", ")
                ),
            });
        }
    }
    if keys.get_prefixed("sasl.jaas.config").is_some()
        || keys.props.contains_key("sasl.jaas.config")
    {
        // Kafka's JaasContext.loadServerContext: only the mechanism-prefixed form counts.
        tracing::warn!(
            "sasl.jaas.config for listener {} should be prefixed with the SASL mechanism \
             (listener.name.{}.<mechanism>.sasl.jaas.config); ignoring it, as Kafka does",
            listener.name,
            listener.name.to_ascii_lowercase()
        );
    }
    let mut plain_users = BTreeMap::new();
    if mechanisms.iter().any(|m| m == "PLAIN") {
        let key = format!(
            "listener.name.{}.plain.sasl.jaas.config",
            listener.name.to_ascii_lowercase()
        );
        let Some(text) = keys.props.get(&key) else {
            return Err(ConfigError::Inconsistent(format!(
                "SASL mechanism PLAIN is enabled on listener {} but {key} is not set: Kafka's \
                 PLAIN server takes its users from it (user_<name>=\"<password>\" options of \
                 {PLAIN_LOGIN_MODULE})",
                listener.name
            )));
        };
        let jaas = JaasConfig::parse(text).map_err(|e| ConfigError::InvalidValue {
            key: key.clone(),
            value: "...".to_string(),
            expected: format!("a JAAS configuration ({e})"),
        })?;
        // PlainServerCallbackHandler reads the options of the PlainLoginModule entry.
        let entry = jaas
            .entries
            .iter()
            .find(|e| e.login_module == PLAIN_LOGIN_MODULE)
            .ok_or_else(|| ConfigError::InvalidValue {
                key: key.clone(),
                value: "...".to_string(),
                expected: format!("an entry for {PLAIN_LOGIN_MODULE}"),
            })?;
        for (option, password) in &entry.options {
            if let Some(user) = option.strip_prefix("user_") {
                plain_users.insert(user.to_string(), password.clone());
            }
        }
    }
    let failed_authentication_delay_ms = match keys.get("connection.failed.authentication.delay.ms")
    {
        Some((key, value)) => {
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| ConfigError::InvalidValue {
                    key,
                    value: value.to_string(),
                    expected: "an integer >= 0".to_string(),
                })?
        }
        None => 100,
    };
    let oauthbearer = if mechanisms.iter().any(|m| m == "OAUTHBEARER") {
        Some(Arc::new(super::reauth::oauthbearer_options(
            keys, listener,
        )?))
    } else {
        None
    };
    let mut max_reauth_ms = BTreeMap::new();
    for mechanism in &mechanisms {
        max_reauth_ms.insert(
            mechanism.clone(),
            super::reauth::max_reauth_ms(keys, mechanism)?,
        );
    }
    Ok(SaslSettings {
        mechanisms,
        plain_users,
        failed_authentication_delay_ms,
        oauthbearer,
        max_reauth_ms,
    })
}
