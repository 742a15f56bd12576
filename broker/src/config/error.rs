//! The error of reading a configuration: each one names the key, the value and what was expected.

use std::path::PathBuf;

/// Why a configuration could not be read.
///
/// The messages follow one pattern so an operator can fix the file without reading code:
/// `invalid value "abc" for log.segment.bytes: expected an integer`,
/// `missing required key node.id`,
/// `listener "FOO://x:1" in listeners: unknown security protocol (add it to listener.security.protocol.map)`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        error: std::io::Error,
    },
    /// An error in a configuration file: wraps the error with the file's name.
    #[error("{}: {error}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong in it.
        error: Box<ConfigError>,
    },
    /// The text is not a valid Java properties file (e.g. a malformed `\uXXXX` escape).
    #[error("invalid properties syntax{}: {message}", line_suffix(*.line))]
    Syntax {
        /// 1-based line number, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// A key that has no default is not set.
    #[error("missing required key {key}")]
    Missing {
        /// The key, e.g. `node.id`.
        key: &'static str,
    },
    /// A value does not have the expected type, or is out of range.
    #[error("invalid value {value:?} for {key}: expected {expected}")]
    InvalidValue {
        /// The key.
        key: String,
        /// The offending value (or the offending item of a list).
        value: String,
        /// What the key accepts, e.g. `an integer >= 14`.
        expected: String,
    },
    /// One listener of `listeners` or `advertised.listeners` is malformed or not allowed.
    #[error("listener {listener:?} in {key}: {reason}")]
    InvalidListener {
        /// `listeners` or `advertised.listeners`.
        key: &'static str,
        /// The listener as written.
        listener: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Values that are valid one by one but contradict each other (e.g. the inter-broker
    /// listener is not one of the listeners).
    #[error("{0}")]
    Inconsistent(String),
    /// The configuration asks for security this broker does not implement (a TLS or SASL
    /// listener, an authorizer, ...): one message per request, each naming the listener and
    /// its protocol or the key. See [`Config::check_enforceable`](super::Config::check_enforceable).
    #[error(
        "refusing to start: {}; serving this configuration would give clients less security \
         than it names",
        .0.join("; ")
    )]
    Unenforceable(Vec<String>),
    /// A TLS or SASL setting that cannot be used (a missing or unreadable keystore, a key
    /// that does not match its certificate, an unknown cipher suite, ...): names the key.
    #[error("{key}: {message}")]
    Security {
        /// The key as written (`listener.name.<l>.ssl.keystore.location`, say).
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A `--override` argument that is not `key=value`.
    #[error("invalid override {0:?}: expected key=value")]
    Override(String),
}

impl ConfigError {
    /// The error itself, without the [`ConfigError::File`] wrapper that names the file.
    pub fn root(&self) -> &ConfigError {
        match self {
            ConfigError::File { error, .. } => error.root(),
            other => other,
        }
    }
}

fn line_suffix(line: Option<usize>) -> String {
    line.map(|line| format!(" on line {line}"))
        .unwrap_or_default()
}
