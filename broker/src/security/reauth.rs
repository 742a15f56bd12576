//! Re-authentication (KIP-368): how long a SASL session lasts, and the settings it reads.
//!
//! Kafka's `SaslServerAuthenticator.ReauthInfo.calcCompletionTimesAndReturnSessionLifetimeMs`:
//! a session has a lifetime when `connections.max.reauth.ms` is positive for its mechanism
//! or its credential expires (an OAUTHBEARER token's `exp`); it is the smaller of the two,
//! never negative, and is sent in SaslAuthenticate v1+ as `session_lifetime_ms`. A
//! connection whose session has passed is closed at its next request unless that request
//! is a SaslHandshake starting a re-authentication (`SocketServer.Processor`,
//! `KafkaChannel.serverAuthenticationSessionExpired`); `connection_auth.rs` applies it.

use crate::config::{ConfigError, Listener};

use super::sasl::oauthbearer::{LOGIN_MODULE, UnsecuredValidatorOptions};
use super::settings::ListenerKeys;

/// Kafka's `KafkaChannel.MIN_REAUTH_INTERVAL_ONE_SECOND_NANOS`: a re-authentication starting
/// sooner than this after the previous one is not one (the SaslHandshake goes to the
/// handlers and gets ILLEGAL_SASL_STATE).
pub const MIN_REAUTH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// The session lifetime in ms, `None` when the session never expires.
pub fn session_lifetime_ms(
    max_reauth_ms: i64,
    credential_expiry_ms: Option<i64>,
    now_ms: i64,
) -> Option<i64> {
    let max_set = max_reauth_ms > 0;
    match (credential_expiry_ms, max_set) {
        (None, false) => None,
        (None, true) => Some(max_reauth_ms),
        (Some(expiry), false) => Some(expiry.saturating_sub(now_ms).max(0)),
        (Some(expiry), true) => Some(expiry.saturating_sub(now_ms).min(max_reauth_ms).max(0)),
    }
}

/// `connections.max.reauth.ms` for `mechanism` on a listener, as Kafka's
/// `SaslChannelBuilder.createConnectionsMaxReauthMsMap` reads it from the listener's view:
/// `listener.name.<l>.<mechanism>.connections.max.reauth.ms`, then
/// `listener.name.<l>.connections.max.reauth.ms`, then the broker-wide key; default 0.
pub fn max_reauth_ms(keys: &ListenerKeys<'_>, mechanism: &str) -> Result<i64, ConfigError> {
    const KEY: &str = "connections.max.reauth.ms";
    let by_mechanism = format!("{}.{KEY}", mechanism.to_ascii_lowercase());
    let Some((key, value)) = keys.get_prefixed(&by_mechanism).or_else(|| keys.get(KEY)) else {
        return Ok(0);
    };
    value
        .trim()
        .parse::<i64>()
        .map_err(|_| ConfigError::InvalidValue {
            key,
            value: value.to_string(),
            expected: "an integer (ms; 0 or less disables re-authentication)".to_string(),
        })
}

/// The unsecured validator's options from `listener.name.<l>.oauthbearer.sasl.jaas.config`
/// (its `OAuthBearerLoginModule` entry). Kafka needs that key (or a static JAAS file,
/// which Gregor does not read) for an enabled OAUTHBEARER, and uses the unsecured
/// validator unless `oauthbearer.sasl.server.callback.handler.class` names another one;
/// the validator of signed JWTs (`OAuthBearerValidatorCallbackHandler`, JWKS) is not
/// implemented, so naming it is refused.
pub fn oauthbearer_options(
    keys: &ListenerKeys<'_>,
    listener: &Listener,
) -> Result<UnsecuredValidatorOptions, ConfigError> {
    const UNSECURED: &str = "org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler";
    if let Some((key, value)) = keys
        .get_prefixed("oauthbearer.sasl.server.callback.handler.class")
        .filter(|(_, v)| !v.trim().is_empty() && v.trim() != UNSECURED)
    {
        return Err(ConfigError::InvalidValue {
            key,
            value: value.to_string(),
            expected: format!(
                "{UNSECURED} (the only OAUTHBEARER validator this broker implements; signed \
                 JWTs with sasl.oauthbearer.jwks.endpoint.url are not supported)"
            ),
        });
    }
    let Some((key, text)) = keys.get_prefixed("oauthbearer.sasl.jaas.config") else {
        return Err(ConfigError::Inconsistent(format!(
            "SASL mechanism OAUTHBEARER is enabled on listener {} but \
             listener.name.{}.oauthbearer.sasl.jaas.config is not set: Kafka reads the \
             validator's options from it ({LOGIN_MODULE} required;)",
            listener.name,
            listener.name.to_ascii_lowercase()
        )));
    };
    let jaas = super::jaas::JaasConfig::parse(text).map_err(|e| ConfigError::InvalidValue {
        key: key.clone(),
        value: "...".to_string(),
        expected: format!("a JAAS configuration ({e})"),
    })?;
    // OAuthBearerUnsecuredValidatorCallbackHandler.configure: exactly one entry.
    let [entry] = jaas.entries.as_slice() else {
        return Err(ConfigError::InvalidValue {
            key,
            value: "...".to_string(),
            expected: format!(
                "exactly one JAAS entry ({LOGIN_MODULE}), as Kafka's OAUTHBEARER validator needs"
            ),
        });
    };
    UnsecuredValidatorOptions::from_options(&entry.options).map_err(|e| ConfigError::InvalidValue {
        key,
        value: "...".to_string(),
        expected: format!("valid unsecured validator options ({e})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lifetime_is_the_smaller_of_the_limit_and_the_credential() {
        assert_eq!(session_lifetime_ms(0, None, 1000), None);
        assert_eq!(session_lifetime_ms(-5, None, 1000), None);
        assert_eq!(session_lifetime_ms(2000, None, 1000), Some(2000));
        assert_eq!(session_lifetime_ms(0, Some(61_000), 1000), Some(60_000));
        assert_eq!(session_lifetime_ms(2000, Some(61_000), 1000), Some(2000));
        assert_eq!(
            session_lifetime_ms(90_000, Some(61_000), 1000),
            Some(60_000)
        );
        assert_eq!(session_lifetime_ms(2000, Some(500), 1000), Some(0));
    }

    #[test]
    fn the_mechanism_prefixed_key_wins_over_the_listener_and_broker_keys() {
        let props = std::collections::BTreeMap::from([
            ("connections.max.reauth.ms".to_string(), "1000".to_string()),
            (
                "listener.name.sasl.connections.max.reauth.ms".to_string(),
                "2000".to_string(),
            ),
            (
                "listener.name.sasl.oauthbearer.connections.max.reauth.ms".to_string(),
                "3000".to_string(),
            ),
        ]);
        let keys = ListenerKeys::new(&props, "SASL");
        assert_eq!(max_reauth_ms(&keys, "OAUTHBEARER").unwrap(), 3000);
        assert_eq!(max_reauth_ms(&keys, "PLAIN").unwrap(), 2000);
        let other = ListenerKeys::new(&props, "OTHER");
        assert_eq!(max_reauth_ms(&other, "PLAIN").unwrap(), 1000);
        let bad = std::collections::BTreeMap::from([(
            "connections.max.reauth.ms".to_string(),
            "soon".to_string(),
        )]);
        assert!(max_reauth_ms(&ListenerKeys::new(&bad, "X"), "PLAIN").is_err());
    }

    fn listener() -> Listener {
        Listener {
            name: "SASL".to_string(),
            host: "127.0.0.1".to_string(),
            port: 9092,
        }
    }

    fn options_of(pairs: &[(&str, &str)]) -> Result<UnsecuredValidatorOptions, ConfigError> {
        let props: std::collections::BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        oauthbearer_options(&ListenerKeys::new(&props, "SASL"), &listener())
    }

    #[test]
    fn oauthbearer_reads_the_listener_and_mechanism_prefixed_jaas_line() {
        const KEY: &str = "listener.name.sasl.oauthbearer.sasl.jaas.config";
        let options = options_of(&[(
            KEY,
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required \
             unsecuredLoginStringClaim_sub=\"admin\" unsecuredValidatorPrincipalClaimName=\"uid\" \
             unsecuredValidatorRequiredScope=\"a b\" unsecuredValidatorAllowableClockSkewMs=\"30\";",
        )])
        .unwrap();
        assert_eq!(options.principal_claim, "uid");
        assert_eq!(options.scope_claim, "scope");
        assert_eq!(options.required_scope, ["a", "b"]);
        assert_eq!(options.clock_skew_ms, 30);
        // Missing, two entries, a bad option, another validator: refused at start-up.
        assert!(options_of(&[]).is_err());
        assert!(options_of(&[(KEY, "a required; b required;")]).is_err());
        let bad_skew = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule \
                        required unsecuredValidatorAllowableClockSkewMs=\"x\";";
        assert!(options_of(&[(KEY, bad_skew)]).is_err());
        let err = options_of(&[
            (
                KEY,
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;",
            ),
            (
                "listener.name.sasl.oauthbearer.sasl.server.callback.handler.class",
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
            ),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("jwks"), "{err}");
    }
}
