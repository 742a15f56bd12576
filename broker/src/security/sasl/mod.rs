//! Server sides of the SASL mechanisms, as state machines over the client's tokens.
//!
//! The connection (`connection_auth.rs`) carries the tokens, framed by SaslAuthenticate
//! requests (SaslHandshake v1) or as bare size-prefixed frames (v0); a mechanism only sees
//! the bytes. Each failure carries the message Kafka's `SaslServer` gives, which the client
//! sees in the SaslAuthenticate response (`SASL_AUTHENTICATION_FAILED`).

pub mod oauthbearer;
pub mod plain;
pub mod scram;

use super::KafkaPrincipal;
use super::settings::SaslSettings;

/// What one client token leads to.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this challenge and wait for the next token.
    Continue(Vec<u8>),
    /// Authenticated: send this last message (possibly empty).
    Complete {
        /// The server's final message.
        response: Vec<u8>,
        /// Who the client is.
        principal: KafkaPrincipal,
    },
}

/// A failed exchange: the message the client is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslFailure(pub String);

/// The server side of one mechanism's exchange.
pub trait SaslServer: Send {
    /// Evaluates the client's next token.
    fn evaluate(&mut self, token: &[u8]) -> Result<Step, SaslFailure>;

    /// When the credential of a completed exchange expires, in milliseconds since the
    /// epoch (Kafka's `CREDENTIAL_LIFETIME_MS_SASL_NEGOTIATED_PROPERTY_KEY`): an
    /// OAUTHBEARER token's `exp`; `None` for passwords.
    fn credential_lifetime_ms(&self) -> Option<i64> {
        None
    }
}

/// Where SCRAM credentials are looked up.
pub trait CredentialStore: Send + Sync {
    /// The SCRAM credential of `user` for `mechanism`, if any.
    fn scram_credential(
        &self,
        mechanism: crate::security::sasl::ScramMechanism,
        user: &str,
    ) -> Option<ScramCredential>;
}

/// The two SCRAM mechanisms, with Kafka's `ScramMechanism` type codes (the `mechanism`
/// field of `UserScramCredentialRecord`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramMechanism {
    /// SCRAM-SHA-256, type 1.
    Sha256,
    /// SCRAM-SHA-512, type 2.
    Sha512,
}

impl ScramMechanism {
    /// The SASL name.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// The mechanism of a SASL name.
    pub fn from_name(name: &str) -> Option<ScramMechanism> {
        match name {
            "SCRAM-SHA-256" => Some(ScramMechanism::Sha256),
            "SCRAM-SHA-512" => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    /// Kafka's type code (`ScramMechanism.type()`).
    pub fn type_code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    /// The mechanism of a type code.
    pub fn from_type_code(code: i8) -> Option<ScramMechanism> {
        match code {
            1 => Some(ScramMechanism::Sha256),
            2 => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    /// Kafka's lower bound on iterations (`ScramMechanism.minIterations()`).
    pub fn min_iterations(self) -> i32 {
        4096
    }
}

/// A stored SCRAM credential (RFC 5802 section 3): what the server keeps of a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredential {
    /// The salt.
    pub salt: Vec<u8>,
    /// `H(ClientKey)`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
    /// The PBKDF2 iteration count.
    pub iterations: i32,
}

/// A new server for `mechanism` (one of the listener's, already checked).
pub fn new_server(
    mechanism: &str,
    settings: &SaslSettings,
    credentials: std::sync::Arc<dyn CredentialStore>,
) -> Option<Box<dyn SaslServer>> {
    match mechanism {
        "PLAIN" => Some(Box::new(plain::PlainServer::new(
            settings.plain_users.clone(),
        ))),
        "OAUTHBEARER" => settings.oauthbearer.clone().map(|options| {
            Box::new(oauthbearer::OAuthBearerServer::new(options)) as Box<dyn SaslServer>
        }),
        _ => ScramMechanism::from_name(mechanism)
            .map(|m| Box::new(scram::ScramServer::new(m, credentials)) as Box<dyn SaslServer>),
    }
}

impl CredentialStore for crate::broker::Broker {
    /// From the current metadata image (`UserScramCredentialRecord`s).
    fn scram_credential(&self, mechanism: ScramMechanism, user: &str) -> Option<ScramCredential> {
        let image = self.image();
        let record = image
            .scram_credentials()
            .get(&(user.to_string(), mechanism.type_code()))?;
        Some(ScramCredential {
            salt: record.salt.to_vec(),
            stored_key: record.stored_key.to_vec(),
            server_key: record.server_key.to_vec(),
            iterations: record.iterations,
        })
    }
}
