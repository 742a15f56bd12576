//! How many connections the broker holds: `max.connections` (all listeners together),
//! `listener.name.<listener>.max.connections` (one listener), `max.connections.per.ip` and
//! `max.connections.per.ip.overrides` (one client address), as Kafka's
//! `SocketServer.ConnectionQuotas` counts them.
//!
//! * A listener at its own limit, or the broker at `max.connections`, stops accepting: new
//!   connections wait in the listen backlog until a connection closes (Kafka's acceptor
//!   blocks in `waitForConnectionSlot`). The inter-broker listener is exempt from the
//!   broker-wide limit when there are several listeners (Kafka's "protected listener").
//! * An address at its limit gets the new connection closed as soon as it is accepted
//!   (Kafka's `TooManyConnectionsException`, logged at info level).
//! * Every accepted connection holds a [`ConnectionSlot`]; dropping it gives the slot back
//!   and wakes the listeners waiting for one.
//! * The limits are dynamic broker configs in Kafka: [`ConnectionQuotas::apply`] puts new
//!   ones in force without touching the connections already open.
//!
//! Different from Kafka, on purpose: an override host name counts for every address it
//! resolves to (Kafka takes the first one `InetAddress.getByName` returns); and when a
//! connection on the protected listener takes the broker past `max.connections`, no other
//! connection is closed to make room (Kafka closes the least recently used one).

use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use tokio::sync::Notify;

use crate::config::Config;
use crate::connection_rate::{ConnectionRates, RateLimits};

/// The connection limits of the broker and the connections counted against them.
#[derive(Debug)]
pub struct ConnectionQuotas {
    /// The listeners served (for the protected listener when limits change).
    listeners: Vec<String>,
    /// Replaced as a whole when dynamic broker configs change them ([`Self::apply`]).
    limits: RwLock<Limits>,
    counts: Mutex<Counts>,
    freed: Notify,
    /// Connection creation rates (`connection_rate.rs`), their limits replaced with
    /// [`Self::apply`] as the others are.
    rate_limits: RwLock<RateLimits>,
    rates: ConnectionRates,
}

/// The limits, as one configuration gives them.
#[derive(Debug, PartialEq, Eq)]
struct Limits {
    max_connections: usize,
    listener_max: HashMap<String, usize>,
    /// The inter-broker listener, when it is one of several (exempt from `max_connections`).
    protected_listener: Option<String>,
    per_ip_default: i64,
    per_ip_overrides: HashMap<IpAddr, i64>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_listener: HashMap<String, usize>,
    per_ip: HashMap<IpAddr, usize>,
}

/// A new connection refused because its address already has its maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyConnections {
    /// The client address.
    pub ip: IpAddr,
    /// Its limit.
    pub max: i64,
}

impl std::fmt::Display for TooManyConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "address {} already has the configured maximum of {} connections",
            self.ip, self.max
        )
    }
}

/// One counted connection; dropping it releases the slot.
#[derive(Debug)]
pub struct ConnectionSlot {
    quotas: Arc<ConnectionQuotas>,
    listener: String,
    ip: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.quotas.release(&self.listener, self.ip);
    }
}

/// Non-negative limits as counts (a negative override refuses every connection).
fn limit(value: i32) -> usize {
    usize::try_from(value).unwrap_or(0)
}

impl ConnectionQuotas {
    /// The limits of `config` for the listeners named `listeners` (the ones served). Host
    /// names in `max.connections.per.ip.overrides` are resolved here (blocking), as Kafka
    /// resolves them when it starts; one that does not resolve is an error.
    pub fn new(config: &Config, listeners: &[String]) -> Result<ConnectionQuotas, String> {
        Ok(ConnectionQuotas {
            listeners: listeners.to_vec(),
            limits: RwLock::new(Limits::from_config(config, listeners)?),
            counts: Mutex::new(Counts::default()),
            freed: Notify::new(),
            rate_limits: RwLock::new(RateLimits::from_config(config, listeners)?),
            rates: ConnectionRates::default(),
        })
    }

    /// Puts the limits of `config` in force (dynamic broker configs changed them, as Kafka's
    /// `DynamicListenerConfig`/`ConnectionQuotas.updateMaxConnections` allow): connections
    /// already open stay, new ones are counted against the new limits, and listeners waiting
    /// for a slot look again. Returns whether anything changed.
    pub fn apply(&self, config: &Config) -> Result<bool, String> {
        let limits = Limits::from_config(config, &self.listeners)?;
        let rate_limits = RateLimits::from_config(config, &self.listeners)?;
        let rates_changed = {
            let mut current = self
                .rate_limits
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let changed = *current != rate_limits;
            *current = rate_limits;
            changed
        };
        {
            let mut current = self.limits.write().unwrap_or_else(PoisonError::into_inner);
            if *current == limits {
                return Ok(rates_changed);
            }
            *current = limits;
        }
        self.freed.notify_waiters();
        Ok(true)
    }

    fn limits(&self) -> std::sync::RwLockReadGuard<'_, Limits> {
        self.limits.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `listener` may take one more connection (Kafka's `connectionSlotAvailable`).
    fn slot_available(&self, counts: &Counts, listener: &str) -> bool {
        let limits = self.limits();
        let on_listener = counts.per_listener.get(listener).copied().unwrap_or(0);
        if on_listener
            >= limits
                .listener_max
                .get(listener)
                .copied()
                .unwrap_or(usize::MAX)
        {
            return false;
        }
        limits.protected_listener.as_deref() == Some(listener)
            || counts.total < limits.max_connections
    }

    /// Completes once `listener` may accept another connection. Cancel safe.
    pub async fn wait_for_slot(&self, listener: &str) {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before the check, so a release in between is not missed.
            freed.as_mut().enable();
            if self.slot_available(&self.counts(), listener) {
                return;
            }
            freed.await;
        }
    }

    /// Counts a connection accepted on `listener` from `ip`, or refuses it when `ip` is at
    /// its limit (the caller then closes it).
    pub fn register(
        self: &Arc<Self>,
        listener: &str,
        ip: IpAddr,
    ) -> Result<ConnectionSlot, TooManyConnections> {
        let ip = ip.to_canonical();
        let max = {
            let limits = self.limits();
            limits
                .per_ip_overrides
                .get(&ip)
                .copied()
                .unwrap_or(limits.per_ip_default)
        };
        let mut counts = self.counts();
        let from_ip = counts.per_ip.get(&ip).copied().unwrap_or(0);
        if i64::try_from(from_ip).unwrap_or(i64::MAX) >= max {
            return Err(TooManyConnections { ip, max });
        }
        *counts.per_ip.entry(ip).or_default() += 1;
        *counts.per_listener.entry(listener.to_string()).or_default() += 1;
        counts.total += 1;
        Ok(ConnectionSlot {
            quotas: Arc::clone(self),
            listener: listener.to_string(),
            ip,
        })
    }

    /// Counts a connection accepted on `listener` in the connection creation rates and
    /// returns how long the listener waits before serving it (see `connection_rate.rs`).
    pub fn record_connection(&self, listener: &str) -> std::time::Duration {
        let protected = self.is_protected(listener);
        let limits = self
            .rate_limits
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        self.rates.record_connection(&limits, listener, protected)
    }

    /// Counts a connection from `ip` against its `connection_creation_rate` (`limit`);
    /// `Some(delay)`: over it, the connection is closed after `delay` without being served.
    pub fn record_ip_connection(
        &self,
        listener: &str,
        ip: IpAddr,
        limit: Option<f64>,
    ) -> Option<std::time::Duration> {
        let protected = self.is_protected(listener);
        let limits = self
            .rate_limits
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        self.rates
            .record_ip_connection(&limits, listener, protected, ip, limit)
    }

    fn is_protected(&self, listener: &str) -> bool {
        self.limits().protected_listener.as_deref() == Some(listener)
    }

    /// Connections counted now: on all listeners, and from `ip`.
    pub fn count(&self, ip: IpAddr) -> (usize, usize) {
        let counts = self.counts();
        let from_ip = counts.per_ip.get(&ip.to_canonical()).copied().unwrap_or(0);
        (counts.total, from_ip)
    }

    fn release(&self, listener: &str, ip: IpAddr) {
        {
            let mut counts = self.counts();
            counts.total = counts.total.saturating_sub(1);
            if let Some(n) = counts.per_listener.get_mut(listener) {
                *n = n.saturating_sub(1);
            }
            if let Some(n) = counts.per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    counts.per_ip.remove(&ip);
                }
            }
        }
        self.freed.notify_waiters();
    }
}

impl Limits {
    /// The limits of `config` for the listeners named `listeners` (the ones served). Host
    /// names in `max.connections.per.ip.overrides` are resolved here (blocking), as Kafka
    /// resolves them; one that does not resolve is an error.
    fn from_config(config: &Config, listeners: &[String]) -> Result<Limits, String> {
        let mut per_ip_overrides = HashMap::new();
        for (host, count) in &config.max_connections_per_ip_overrides {
            let addresses: Vec<IpAddr> = match host.parse::<IpAddr>() {
                Ok(ip) => vec![ip],
                Err(_) => (host.as_str(), 0)
                    .to_socket_addrs()
                    .map_err(|e| {
                        format!("max.connections.per.ip.overrides: cannot resolve {host}: {e}")
                    })?
                    .map(|address| address.ip())
                    .collect(),
            };
            for ip in addresses {
                per_ip_overrides.insert(ip.to_canonical(), i64::from(*count));
            }
        }
        let protected_listener = (listeners.len() > 1)
            .then(|| {
                listeners
                    .iter()
                    .find(|name| name.eq_ignore_ascii_case(&config.inter_broker_listener_name))
                    .cloned()
            })
            .flatten();
        Ok(Limits {
            max_connections: limit(config.max_connections),
            listener_max: config
                .listener_max_connections
                .iter()
                .map(|(name, max)| (name.clone(), limit(*max)))
                .collect(),
            protected_listener,
            per_ip_default: i64::from(config.max_connections_per_ip),
            per_ip_overrides,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quotas(extra: &str) -> Arc<ConnectionQuotas> {
        let config = Config::parse(&format!(
            "node.id=1\nlisteners=PLAINTEXT://:9092\nlog.dirs=/tmp/unused\n{extra}"
        ))
        .unwrap();
        Arc::new(ConnectionQuotas::new(&config, &["PLAINTEXT".to_string()]).unwrap())
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn the_per_ip_limit_refuses_the_next_connection_and_frees_on_drop() {
        let q = quotas("max.connections.per.ip=2\nmax.connections.per.ip.overrides=10.0.0.2:0");
        let first = q.register("PLAINTEXT", A).unwrap();
        let _second = q.register("PLAINTEXT", A).unwrap();
        assert_eq!(
            q.register("PLAINTEXT", A).unwrap_err(),
            TooManyConnections { ip: A, max: 2 }
        );
        assert!(q.register("PLAINTEXT", B).is_err());
        assert_eq!(q.count(A), (2, 2));
        drop(first);
        assert_eq!(q.count(A), (1, 1));
        assert!(q.register("PLAINTEXT", A).is_ok());
    }

    #[test]
    fn an_ipv4_mapped_address_counts_as_the_ipv4_address() {
        let q = quotas("max.connections.per.ip=1");
        let _slot = q.register("PLAINTEXT", A).unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert!(q.register("PLAINTEXT", mapped).is_err());
    }

    #[tokio::test]
    async fn a_full_broker_waits_until_a_connection_closes() {
        let q = quotas("max.connections=1");
        q.wait_for_slot("PLAINTEXT").await;
        let slot = q.register("PLAINTEXT", A).unwrap();
        let waiter = {
            let q = Arc::clone(&q);
            tokio::spawn(async move { q.wait_for_slot("PLAINTEXT").await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(slot);
        waiter.await.unwrap();
    }

    #[tokio::test]
    async fn a_listener_limit_applies_to_its_listener() {
        let q = quotas("listener.name.plaintext.max.connections=1");
        let _slot = q.register("PLAINTEXT", A).unwrap();
        let waiting = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            q.wait_for_slot("PLAINTEXT"),
        )
        .await;
        assert!(waiting.is_err());
        q.wait_for_slot("OTHER").await;
    }
}
