//! Network endpoints of the configuration: listeners, security protocols, quorum voters.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// One endpoint of `listeners` or `advertised.listeners`: `NAME://host:port`.
///
/// Parsed as Kafka does: the name is upper-cased (`plaintext://` is `PLAINTEXT`), an IPv6 host is
/// written in brackets (`PLAINTEXT://[::1]:9092`, stored without them), and an empty host
/// (`PLAINTEXT://:9092`) means every interface when binding.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Listener {
    /// Listener name, upper case (`PLAINTEXT`, `CONTROLLER`, `EXTERNAL`, ...). Its security
    /// protocol is looked up in `listener.security.protocol.map`.
    pub name: String,
    /// Host name or IP address, without brackets; empty means all interfaces.
    pub host: String,
    /// TCP port; 0 lets the operating system choose (when binding).
    pub port: u16,
}

impl Listener {
    /// Whether the host is empty (bind to all interfaces).
    pub fn is_wildcard_host(&self) -> bool {
        self.host.is_empty()
    }

    /// The address to bind, for `tokio::net::TcpListener::bind`: `0.0.0.0:9092` for an empty
    /// host, `[::1]:9092` for an IPv6 host, `host:9092` otherwise.
    pub fn bind_address(&self) -> String {
        if self.host.is_empty() {
            format!("0.0.0.0:{}", self.port)
        } else {
            format!("{}:{}", bracketed(&self.host), self.port)
        }
    }
}

impl fmt::Display for Listener {
    /// Kafka's form, `NAME://host:port`, with brackets around an IPv6 host.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.name, bracketed(&self.host), self.port)
    }
}

/// A voter of `controller.quorum.voters`: `id@host:port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuorumVoter {
    /// The voter's `node.id`.
    pub id: i32,
    /// Host of its controller listener (no brackets for IPv6).
    pub host: String,
    /// Port of its controller listener.
    pub port: u16,
}

/// A `host:port` address, as in `controller.quorum.bootstrap.servers`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// Host name or IP address (no brackets for IPv6).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl fmt::Display for HostPort {
    /// `host:port`, with brackets around an IPv6 host.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", bracketed(&self.host), self.port)
    }
}

/// Kafka's security protocols, the values of `listener.security.protocol.map`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecurityProtocol {
    /// No authentication, no encryption.
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL authentication over plain TCP.
    SaslPlaintext,
    /// SASL authentication over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// All protocols, in Kafka's order.
    pub const ALL: [SecurityProtocol; 4] = [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ];

    /// Kafka's name: `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`, `SASL_SSL`.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// The protocol named `name`, ignoring case as Kafka does.
    pub fn from_name(name: &str) -> Option<SecurityProtocol> {
        Self::ALL
            .into_iter()
            .find(|protocol| protocol.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for SecurityProtocol {
    /// Kafka's name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `host` with brackets if it is an IPv6 address (contains `:`).
fn bracketed(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Splits `NAME://rest` into the normalised (upper-case) name and the rest.
pub(super) fn split_listener_name(text: &str) -> Result<(String, &str), String> {
    let (name, rest) = text
        .split_once("://")
        .ok_or_else(|| "expected NAME://host:port".to_string())?;
    let name = name.trim();
    if name.is_empty() {
        return Err("missing listener name before ://".to_string());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
    {
        return Err(format!("invalid listener name {name:?}"));
    }
    Ok((name.to_ascii_uppercase(), rest))
}

/// Parses `host:port`, `[v6]:port` or `:port` (empty host), with Kafka's host characters.
pub(super) fn parse_host_port(text: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(inner) = text.strip_prefix('[') {
        let (host, after) = inner
            .split_once(']')
            .ok_or_else(|| "missing ] after an IPv6 address".to_string())?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| "expected :port after the host".to_string())?;
        (host, port)
    } else {
        text.rsplit_once(':')
            .ok_or_else(|| "expected host:port".to_string())?
    };
    if let Some(bad) = host
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '%' | '.' | '_' | ':')))
    {
        return Err(format!("invalid character {bad:?} in host {host:?}"));
    }
    let port = parse_port(port)?;
    Ok((host.to_string(), port))
}

fn parse_port(text: &str) -> Result<u16, String> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid port {text:?}: expected a number"));
    }
    text.parse::<u16>()
        .map_err(|_| format!("port {text} out of range (0 to 65535)"))
}

/// Parses `NAME://host:port` (name not yet checked against the security protocol map).
pub(super) fn parse_listener(text: &str) -> Result<Listener, String> {
    let (name, rest) = split_listener_name(text)?;
    let (host, port) = parse_host_port(rest)?;
    Ok(Listener { name, host, port })
}

/// Parses `id@host:port`.
pub(super) fn parse_voter(text: &str) -> Result<QuorumVoter, String> {
    let (id, address) = text
        .split_once('@')
        .ok_or_else(|| "missing the id@ prefix".to_string())?;
    let id = id
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|id| *id >= 0)
        .ok_or_else(|| format!("invalid node id {id:?}"))?;
    let (host, port) = parse_host_port(address)?;
    if host.is_empty() {
        return Err("missing host".to_string());
    }
    Ok(QuorumVoter { id, host, port })
}

/// Parses `host:port` with a non-empty host.
pub(super) fn parse_server(text: &str) -> Result<HostPort, String> {
    let (host, port) = parse_host_port(text)?;
    if host.is_empty() {
        return Err("missing host".to_string());
    }
    Ok(HostPort { host, port })
}

/// Whether two listeners that share a port are allowed to: Kafka accepts exactly one IPv4
/// and one IPv6 literal address on the same port.
pub(super) fn may_share_port(a: &Listener, b: &Listener) -> bool {
    let v4 = |host: &str| host.parse::<Ipv4Addr>().is_ok();
    let v6 = |host: &str| host.parse::<Ipv6Addr>().is_ok();
    (v4(&a.host) && v6(&b.host)) || (v6(&a.host) && v4(&b.host))
}
