//! Transport security of the listeners (issue 13, phase 1): TLS (rustls), SASL, and the
//! authenticated principal each connection carries.
//!
//! - [`settings`]: the `ssl.*` / `sasl.*` keys of one listener, resolved as Kafka resolves
//!   them (`listener.name.<listener>.<key>` over the broker-wide key), into a
//!   [`ListenerSecurity`] built once at start-up; every error names the key.
//! - [`tls`]: the rustls server configuration (PEM and PKCS12 keystores and truststores,
//!   client authentication, protocols, cipher suites).
//! - [`dn`] and [`principal_mapping`]: the client certificate's subject as Java's
//!   `X500Principal.getName()` writes it, mapped by `ssl.principal.mapping.rules`.
//! - [`jaas`]: Kafka's JAAS configuration syntax (`sasl.jaas.config`).
//! - [`sasl`]: the SASL mechanisms (PLAIN, SCRAM, OAUTHBEARER with Kafka's unsecured-JWS
//!   validator) as server-side state machines; the connection drives them
//!   (`connection_auth.rs`).
//! - [`reauth`]: re-authentication (KIP-368): `connections.max.reauth.ms` and session lifetimes.
//! - [`node_client`]: the client side between nodes (issue 15): which listener a node uses
//!   to reach another, with [`tls_client`] (rustls client configuration) and
//!   [`sasl_client`] (the node's own credentials, PLAIN and SCRAM client messages).
//!
//! Authorization (ACLs) and quotas are not here yet: they will read the
//! [`KafkaPrincipal`] from the request context.

pub mod bootstrap_scram;
pub mod dn;
pub mod jaas;
pub mod node_client;
pub mod principal_mapping;
pub mod reauth;
pub mod sasl;
pub mod sasl_client;
pub mod settings;
pub mod tls;
pub mod tls_client;

#[cfg(test)]
mod fuzz_tests;

pub use settings::{ListenerSecurity, SaslSettings};

use std::fmt;

/// Who a connection is, as Kafka's `KafkaPrincipal`: a type (`User`) and a name.
///
/// Connections that did not authenticate (PLAINTEXT, TLS without a client certificate) are
/// [`KafkaPrincipal::anonymous`], `User:ANONYMOUS`, as in Kafka.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KafkaPrincipal {
    /// The principal type; `User` for every principal Kafka's default builder makes.
    pub principal_type: String,
    /// The name: the SASL user, or the mapped certificate subject.
    pub name: String,
}

impl KafkaPrincipal {
    /// Kafka's `KafkaPrincipal.USER_TYPE`.
    pub const USER_TYPE: &'static str = "User";

    /// `User:<name>`.
    pub fn user(name: impl Into<String>) -> KafkaPrincipal {
        KafkaPrincipal {
            principal_type: Self::USER_TYPE.to_string(),
            name: name.into(),
        }
    }

    /// `User:ANONYMOUS`, Kafka's principal of an unauthenticated connection.
    pub fn anonymous() -> KafkaPrincipal {
        Self::user("ANONYMOUS")
    }
}

impl Default for KafkaPrincipal {
    fn default() -> KafkaPrincipal {
        KafkaPrincipal::anonymous()
    }
}

impl fmt::Display for KafkaPrincipal {
    /// `Type:name`, as Kafka prints a principal (and writes it in ACLs).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.principal_type, self.name)
    }
}
