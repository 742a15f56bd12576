//! The client side of SASL for a node's connections to other nodes: its credentials, read
//! as Kafka's inter-broker login reads them, and the mechanisms' client messages.
//!
//! Kafka's `SaslChannelBuilder` in client mode logs in with the listener's server JAAS
//! context (`JaasContext.loadServerContext`): the one login module of
//! `listener.name.<listener>.<mechanism>.sasl.jaas.config` (the broker-wide
//! `sasl.jaas.config` is ignored there, as on the server side), whose `username` and
//! `password` options are what this node sends: `PlainLoginModule` next to its `user_<name>`
//! server entries, `ScramLoginModule` for SCRAM.
//!
//! PLAIN is RFC 4616's single message. SCRAM (RFC 5802, RFC 7677) is [`ScramClient`]: the
//! client-first message, the client-final one with the proof computed from the server's
//! salt and iterations, and the server's signature checked, so a node never talks to a peer
//! that does not hold its credential.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::jaas::JaasConfig;
use super::sasl::ScramMechanism;
use super::sasl::scram;
use super::settings::{ListenerKeys, PLAIN_LOGIN_MODULE};
use crate::config::ConfigError;

/// Kafka's SCRAM login module class.
pub const SCRAM_LOGIN_MODULE: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";

/// The mechanisms a node can authenticate to another node with.
pub const CLIENT_MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

/// What a node sends to authenticate itself.
#[derive(Clone)]
pub struct ClientCredentials {
    /// The mechanism, as Kafka names it.
    pub mechanism: String,
    /// The `username` option of the login module.
    pub username: String,
    /// The `password` option of the login module.
    pub password: String,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl ClientCredentials {
    /// The credentials for `mechanism` (from `mechanism_key`) on listener `listener`.
    pub fn for_listener(
        keys: &ListenerKeys<'_>,
        listener: &str,
        mechanism: &str,
        mechanism_key: &str,
    ) -> Result<ClientCredentials, ConfigError> {
        if !CLIENT_MECHANISMS.contains(&mechanism) {
            return Err(ConfigError::InvalidValue {
                key: mechanism_key.to_string(),
                value: mechanism.to_string(),
                expected: format!(
                    "a SASL mechanism this node can authenticate to other nodes with ({}){}",
                    CLIENT_MECHANISMS.join(", "),
                    if mechanism == "GSSAPI" {
                        ": GSSAPI is Kafka's default; set the key"
                    } else {
                        ""
                    }
                ),
            });
        }
        let key = format!(
            "listener.name.{}.{}.sasl.jaas.config",
            listener.to_ascii_lowercase(),
            mechanism.to_ascii_lowercase()
        );
        let module = if mechanism == "PLAIN" {
            PLAIN_LOGIN_MODULE
        } else {
            SCRAM_LOGIN_MODULE
        };
        let Some((_, text)) = keys.get(&key) else {
            return Err(ConfigError::Inconsistent(format!(
                "this node authenticates to the {listener} listener of other nodes with \
                 {mechanism} but {key} is not set: Kafka takes the node's own username and \
                 password from its {module} entry"
            )));
        };
        let invalid = |expected: String| ConfigError::InvalidValue {
            key: key.clone(),
            value: "...".to_string(),
            expected,
        };
        let jaas =
            JaasConfig::parse(text).map_err(|e| invalid(format!("a JAAS configuration ({e})")))?;
        let entry = jaas
            .entries
            .iter()
            .find(|e| e.login_module == module)
            .ok_or_else(|| invalid(format!("an entry for {module}")))?;
        let (Some(username), Some(password)) = (entry.option("username"), entry.option("password"))
        else {
            return Err(invalid(format!(
                "username and password options in the {module} entry (the credentials this \
                 node authenticates to other nodes with)"
            )));
        };
        Ok(ClientCredentials {
            mechanism: mechanism.to_string(),
            username: username.to_string(),
            password: password.to_string(),
        })
    }
}

/// PLAIN's message: no authorization id, the user, the password (RFC 4616).
pub fn plain_token(credentials: &ClientCredentials) -> Vec<u8> {
    format!("\0{}\0{}", credentials.username, credentials.password).into_bytes()
}

/// RFC 5802's `saslname`: `=` and `,` escaped.
fn sasl_name(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// The value of attribute `key` in a SCRAM message.
fn attribute(message: &str, key: char) -> Option<&str> {
    message.split(',').find_map(|part| {
        let mut chars = part.chars();
        (chars.next() == Some(key) && chars.next() == Some('=')).then(|| &part[2..])
    })
}

/// The client side of one SCRAM exchange.
pub struct ScramClient {
    mechanism: ScramMechanism,
    password: String,
    nonce: String,
    client_first_bare: String,
    /// After the server-first message: the salted password and the auth message.
    proof_state: Option<(Vec<u8>, String)>,
}

impl ScramClient {
    /// An exchange for `username` with a fresh nonce.
    pub fn new(mechanism: ScramMechanism, username: &str, password: &str) -> ScramClient {
        let nonce = BASE64.encode(rand::random::<[u8; 24]>());
        ScramClient {
            mechanism,
            password: password.to_string(),
            client_first_bare: format!("n={},r={nonce}", sasl_name(username)),
            nonce,
            proof_state: None,
        }
    }

    /// The client-first message (no channel binding).
    pub fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// The client-final message answering `server_first`.
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, String> {
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| "the server-first message is not UTF-8".to_string())?;
        if let Some(error) = attribute(server_first, 'e') {
            return Err(format!("the server refused: {error}"));
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (
            attribute(server_first, 'r'),
            attribute(server_first, 's'),
            attribute(server_first, 'i'),
        ) else {
            return Err("the server-first message lacks r, s or i".to_string());
        };
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("the server's nonce does not extend this node's".to_string());
        }
        let salt = BASE64
            .decode(salt)
            .map_err(|_| "the salt is not base64".to_string())?;
        let iterations: u32 = iterations
            .parse()
            .ok()
            .filter(|i| (1..=scram::MAX_ITERATIONS as u32).contains(i))
            .ok_or_else(|| format!("iteration count {iterations} out of range"))?;
        let m = self.mechanism;
        let salted = scram::salted_password(m, self.password.as_bytes(), &salt, iterations);
        let client_key = scram::hmac(m, &salted, b"Client Key");
        let stored_key = scram::hash(m, &client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = scram::hmac(m, &stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        self.proof_state = Some((salted, auth_message));
        Ok(format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message's signature.
    pub fn verify_server_final(&self, server_final: &[u8]) -> Result<(), String> {
        let server_final = std::str::from_utf8(server_final)
            .map_err(|_| "the server-final message is not UTF-8".to_string())?;
        if let Some(error) = attribute(server_final, 'e') {
            return Err(format!("the server refused: {error}"));
        }
        let Some((salted, auth_message)) = &self.proof_state else {
            return Err("no client-final message was sent".to_string());
        };
        let server_key = scram::hmac(self.mechanism, salted, b"Server Key");
        let expected = BASE64.encode(scram::hmac(
            self.mechanism,
            &server_key,
            auth_message.as_bytes(),
        ));
        if attribute(server_final, 'v') != Some(expected.as_str()) {
            return Err(
                "the server's signature is wrong (it does not hold this node's \
                        credential)"
                    .to_string(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::security::sasl::scram::{ScramServer, credential_from_password};
    use crate::security::sasl::{CredentialStore, SaslServer, ScramCredential, Step};

    struct One(ScramCredential);

    impl CredentialStore for One {
        fn scram_credential(&self, _: ScramMechanism, user: &str) -> Option<ScramCredential> {
            (user == "node").then(|| self.0.clone())
        }
    }

    fn exchange(password: &str) -> Result<(), String> {
        let m = ScramMechanism::Sha512;
        let stored = credential_from_password(m, "secret", 4096);
        let mut server = ScramServer::new(m, Arc::new(One(stored)));
        let mut client = ScramClient::new(m, "node", password);
        let Ok(Step::Continue(first)) = server.evaluate(&client.client_first()) else {
            return Err("no server-first".into());
        };
        let last = client.client_final(&first)?;
        match server.evaluate(&last) {
            Ok(Step::Complete {
                response,
                principal,
            }) => {
                assert_eq!(principal.name, "node");
                client.verify_server_final(&response)
            }
            Ok(Step::Continue(_)) => Err("not complete".into()),
            Err(e) => Err(e.0),
        }
    }

    #[test]
    fn the_client_authenticates_to_the_broker_scram_server() {
        exchange("secret").unwrap();
        let failure = exchange("wrong").unwrap_err();
        assert!(failure.contains("invalid credentials"), "{failure}");
    }

    #[test]
    fn a_forged_server_signature_is_refused() {
        let mut client = ScramClient::new(ScramMechanism::Sha256, "node", "secret");
        let first = String::from_utf8(client.client_first()).unwrap();
        let nonce = attribute(&first, 'r').unwrap().to_string();
        let server_first = format!("r={nonce}xyz,s={},i=4096", BASE64.encode(b"salt"));
        client.client_final(server_first.as_bytes()).unwrap();
        let forged = format!("v={}", BASE64.encode([0u8; 32]));
        assert!(client.verify_server_final(forged.as_bytes()).is_err());
        // A nonce the server did not extend is refused before any proof is computed.
        let mut client = ScramClient::new(ScramMechanism::Sha256, "node", "secret");
        assert!(client.client_final(b"r=other,s=c2FsdA==,i=4096").is_err());
    }

    #[test]
    fn credentials_come_from_the_listener_jaas_entry() {
        let mut props = BTreeMap::new();
        props.insert(
            "listener.name.internal.plain.sasl.jaas.config".to_string(),
            format!(
                "{PLAIN_LOGIN_MODULE} required username=\"broker\" password=\"pw\" \
                 user_broker=\"pw\";"
            ),
        );
        let keys = ListenerKeys::new(&props, "INTERNAL");
        let c = ClientCredentials::for_listener(&keys, "INTERNAL", "PLAIN", "k").unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("broker", "pw"));
        assert_eq!(plain_token(&c), b"\0broker\0pw");
        let missing = ClientCredentials::for_listener(&keys, "INTERNAL", "SCRAM-SHA-512", "k");
        assert!(
            missing
                .unwrap_err()
                .to_string()
                .contains("scram-sha-512.sasl.jaas.config")
        );
        let gssapi = ClientCredentials::for_listener(&keys, "INTERNAL", "GSSAPI", "k");
        assert!(gssapi.unwrap_err().to_string().contains("GSSAPI"));
    }
}
