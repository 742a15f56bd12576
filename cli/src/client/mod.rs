//! A small async Kafka client on the generated types.
//!
//! * [`connection`]: one TCP connection; a writer task and a reader task, requests
//!   pipelined up to a bounded in-flight window and matched to responses by correlation id.
//! * [`negotiate`]: ApiVersions on connect, then the highest version both sides support
//!   for each API.
//! * [`cluster`]: bootstrap, Metadata, a connection per broker id, leader routing.
//! * [`security`]: TLS and SASL from Kafka's client properties; [`sasl`]: the SASL
//!   exchange (PLAIN, SCRAM-SHA-256/512).

pub mod cluster;
pub mod connection;
pub mod negotiate;
pub mod sasl;
pub mod security;

use std::io;
use std::time::Duration;

use gregor_protocol::ApiKey;

pub use cluster::Cluster;
pub use connection::{ConnectOptions, Connection};

use crate::errors;

/// Everything that can go wrong in `gregorctl`, with messages written for people.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The TCP connection could not be made.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// `connection refused`, `timed out after 10s`, ...
        reason: String,
    },
    /// No response within the request timeout.
    #[error("{addr}: no response to {api} within {timeout:?}")]
    Timeout {
        /// The broker.
        addr: String,
        /// The API name.
        api: &'static str,
        /// The timeout that passed.
        timeout: Duration,
    },
    /// The connection broke or the broker closed it.
    #[error("connection to {addr} lost: {reason}")]
    Disconnected {
        /// The broker.
        addr: String,
        /// What happened.
        reason: String,
    },
    /// No version of an API both sides support (or the broker lacks the API).
    #[error("{0}")]
    Unsupported(String),
    /// The broker answered with a Kafka error code.
    #[error("{context}: {}", errors::describe(*.code, .message.as_deref()))]
    Kafka {
        /// What was being done (`create topic "t"`).
        context: String,
        /// The error code.
        code: i16,
        /// The broker's error message, if any.
        message: Option<String>,
    },
    /// The broker sent bytes that do not decode.
    #[error("{0}")]
    Protocol(String),
    /// Bad input from the user (arguments, stdin, files).
    #[error("{0}")]
    Usage(String),
    /// Reading or writing a local file or stream.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: io::Error,
    },
}

/// The result type of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Kafka`] if `code` is not 0.
    pub fn check(code: i16, message: Option<&str>, context: impl FnOnce() -> String) -> Result<()> {
        if code == 0 {
            Ok(())
        } else {
            Err(Error::Kafka {
                context: context(),
                code,
                message: message.map(str::to_string),
            })
        }
    }

    /// An [`Error::Io`] with context.
    pub fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether the error is a closed stdout (`gregorctl ... | head`): not worth reporting.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe)
    }

    /// "the broker does not support X" for an API missing from ApiVersions.
    pub fn missing_api(addr: &str, api: ApiKey) -> Error {
        Error::Unsupported(format!(
            "the broker at {addr} does not support {} (API key {})",
            api.name(),
            api.key()
        ))
    }
}

impl From<io::Error> for Error {
    fn from(source: io::Error) -> Error {
        Error::Io {
            context: "I/O error".into(),
            source,
        }
    }
}

/// A short lowercase reason for a socket error (`connection refused`), as people expect
/// to read it after "cannot connect to HOST:PORT:".
pub fn io_reason(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::ConnectionReset => "connection reset by the broker".into(),
        io::ErrorKind::ConnectionAborted => "connection aborted".into(),
        io::ErrorKind::TimedOut => "timed out".into(),
        io::ErrorKind::UnexpectedEof => "the broker closed the connection".into(),
        io::ErrorKind::BrokenPipe => "the broker closed the connection".into(),
        io::ErrorKind::AddrNotAvailable => "address not available".into(),
        _ => {
            let text = error.to_string();
            // "No route to host (os error 113)" -> "no route to host"
            let text = text.split(" (os error").next().unwrap_or(&text).to_string();
            let mut chars = text.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => text,
            }
        }
    }
}
