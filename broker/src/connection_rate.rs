//! How fast the broker accepts connections, as Kafka's `SocketServer.ConnectionQuotas`
//! limits connection creation (KIP-612):
//!
//! * `max.connection.creation.rate` (all listeners but the protected inter-broker one) and
//!   `listener.name.<listener>.max.connection.creation.rate` (one listener): each accepted
//!   connection is counted in a windowed rate ([`crate::quotas::rate`], `quota.window.num`
//!   samples of `quota.window.size.seconds`); over the limit, the listener's acceptor waits
//!   the throttle time (`(rate - limit) / limit * window`, at most one window) before it
//!   serves the connection and accepts the next, so connections are delayed, not refused.
//! * `connection_creation_rate` of the client quotas, on `ip=<address>` or the default ip
//!   entity (Kafka's `connectionRateForIp`): a connection that takes its address over the
//!   rate is not served, and is closed once the throttle time is over (Kafka's
//!   `ConnectionThrottledException` and `throttledSockets`); it is taken back out of every
//!   rate, so refused connections do not count against the broker, the listener or the
//!   address.
//!
//! Different from Kafka, on purpose: an `ip` entity named by a host name is not resolved
//! here (only address literals match), to keep name lookups out of the accept path.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::cluster::client_quotas::{ClientQuotasImage, IP, QuotaEntity};
use crate::config::Config;
use crate::quotas::rate::{Rate, RateConfig};

/// The quota key of the ip entity.
pub const CONNECTION_CREATION_RATE: &str = "connection_creation_rate";
/// Rates of addresses idle this long are dropped (Kafka's sensor expiry of an hour).
const IP_RATE_EXPIRY_MS: i64 = 3_600_000;

/// The creation rate limits of one configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimits {
    /// `max.connection.creation.rate` (`None`: unlimited, Kafka's `Int.MaxValue`).
    pub broker: Option<f64>,
    /// `listener.name.<listener>.max.connection.creation.rate`, by listener name.
    pub listeners: HashMap<String, f64>,
    /// The samples of the rates.
    pub window: RateConfig,
}

fn rate_value(config: &Config, key: &str) -> Result<Option<f64>, String> {
    let Some(text) = config.get(key) else {
        return Ok(None);
    };
    match text.trim().parse::<i64>() {
        Ok(v) if v == i64::from(i32::MAX) => Ok(None),
        Ok(v) if (0..i64::from(i32::MAX)).contains(&v) => Ok(Some(v as f64)),
        _ => Err(format!(
            "{key}={text:?}: expected an integer from 0 to {}",
            i32::MAX
        )),
    }
}

fn window_value(config: &Config, key: &str, default: i64) -> Result<i64, String> {
    let Some(text) = config.get(key) else {
        return Ok(default);
    };
    match text.trim().parse::<i64>() {
        Ok(v) if (1..=i64::from(i32::MAX)).contains(&v) => Ok(v),
        _ => Err(format!("{key}={text:?}: expected an integer of at least 1")),
    }
}

impl RateLimits {
    /// The limits `config` sets for the listeners named `listeners`.
    pub fn from_config(config: &Config, listeners: &[String]) -> Result<RateLimits, String> {
        let mut by_listener = HashMap::new();
        for name in listeners {
            let key = format!(
                "listener.name.{}.max.connection.creation.rate",
                name.to_ascii_lowercase()
            );
            if let Some(limit) = rate_value(config, &key)? {
                by_listener.insert(name.clone(), limit);
            }
        }
        Ok(RateLimits {
            broker: rate_value(config, "max.connection.creation.rate")?,
            listeners: by_listener,
            window: RateConfig {
                samples: window_value(config, "quota.window.num", 11)? as u32,
                window_ms: window_value(config, "quota.window.size.seconds", 1)? * 1000,
            },
        })
    }
}

/// The `connection_creation_rate` of `ip` in the client quotas: its own entity's, else the
/// default ip entity's (`None`: unlimited).
pub fn ip_rate_limit(quotas: &ClientQuotasImage, ip: IpAddr) -> Option<f64> {
    if quotas.is_empty() {
        return None;
    }
    let entity = |name: Option<String>| -> QuotaEntity { [(IP.to_string(), name)].into() };
    let ip = ip.to_canonical();
    quotas
        .value(&entity(Some(ip.to_string())), CONNECTION_CREATION_RATE)
        .or_else(|| {
            // An entity written in another form of the same address (`::ffff:a.b.c.d`,
            // `0:0::1`) names it too.
            quotas.entities().iter().find_map(|(e, values)| {
                let (t, Some(name)) = e.iter().next()? else {
                    return None;
                };
                (e.len() == 1 && t == IP)
                    .then(|| name.parse::<IpAddr>().ok())
                    .flatten()
                    .filter(|parsed| parsed.to_canonical() == ip)
                    .and_then(|_| values.get(CONNECTION_CREATION_RATE).copied())
            })
        })
        .or_else(|| quotas.value(&entity(None), CONNECTION_CREATION_RATE))
}

#[derive(Debug, Default)]
struct Rates {
    broker: Rate,
    listeners: HashMap<String, Rate>,
    ips: HashMap<IpAddr, Rate>,
    last_purge_ms: i64,
}

/// The connection creation rates of the broker, its listeners and client addresses.
#[derive(Debug)]
pub struct ConnectionRates {
    start: Instant,
    rates: Mutex<Rates>,
}

impl Default for ConnectionRates {
    fn default() -> ConnectionRates {
        ConnectionRates {
            start: Instant::now(),
            rates: Mutex::default(),
        }
    }
}

/// Kafka's `QuotaUtils.boundedThrottleTime` for a rate that now includes the new value.
fn throttle_ms(rate: &mut Rate, config: RateConfig, limit: f64, now_ms: i64) -> i64 {
    let measured = rate.measure(config, now_ms);
    if measured <= limit {
        return 0;
    }
    if limit <= 0.0 {
        return config.window_ms;
    }
    let window = rate.window_size_ms(config, now_ms) as f64;
    (((measured - limit) / limit * window).round() as i64).clamp(0, config.window_ms)
}

impl ConnectionRates {
    fn now_ms(&self) -> i64 {
        i64::try_from(self.start.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    fn rates(&self) -> std::sync::MutexGuard<'_, Rates> {
        self.rates.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a connection accepted on `listener` and returns how long the acceptor waits
    /// before serving it (Kafka's `recordConnectionAndGetThrottleTimeMs`: the larger of the
    /// broker-wide delay, which the protected listener skips, and the listener's).
    pub fn record_connection(
        &self,
        limits: &RateLimits,
        listener: &str,
        protected: bool,
    ) -> Duration {
        let now = self.now_ms();
        let config = limits.window;
        let mut rates = self.rates();
        let mut ms = 0;
        if !protected {
            rates.broker.record(config, 1.0, now);
            if let Some(limit) = limits.broker {
                ms = throttle_ms(&mut rates.broker, config, limit, now);
            }
        }
        let rate = rates.listeners.entry(listener.to_string()).or_default();
        rate.record(config, 1.0, now);
        if let Some(&limit) = limits.listeners.get(listener) {
            ms = ms.max(throttle_ms(rate, config, limit, now));
        }
        Duration::from_millis(ms as u64)
    }

    /// Counts a connection from `ip` against its `limit` (`None`: unlimited, nothing
    /// counted, as Kafka's `quotaEnabled`). Over the limit, the connection is taken back
    /// out of every rate and the time after which it is closed is returned (Kafka's
    /// `recordIpConnectionMaybeThrottle`).
    pub fn record_ip_connection(
        &self,
        limits: &RateLimits,
        listener: &str,
        protected: bool,
        ip: IpAddr,
        limit: Option<f64>,
    ) -> Option<Duration> {
        let limit = limit?;
        let now = self.now_ms();
        let config = limits.window;
        let ip = ip.to_canonical();
        let mut rates = self.rates();
        if now - rates.last_purge_ms >= 60_000 {
            rates.last_purge_ms = now;
            rates
                .ips
                .retain(|_, rate| !rate.idle_since(now, IP_RATE_EXPIRY_MS));
        }
        let rate = rates.ips.entry(ip).or_default();
        rate.record(config, 1.0, now);
        let ms = throttle_ms(rate, config, limit, now);
        if ms == 0 {
            return None;
        }
        // Un-recorded everywhere: the connection is not accepted.
        rate.record(config, -1.0, now);
        if !protected {
            rates.broker.record(config, -1.0, now);
        }
        if let Some(rate) = rates.listeners.get_mut(listener) {
            rate.record(config, -1.0, now);
        }
        Some(Duration::from_millis(ms as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_protocol::messages::client_quota_record::{ClientQuotaRecord, EntityData};

    fn limits(broker: Option<f64>) -> RateLimits {
        RateLimits {
            broker,
            listeners: HashMap::new(),
            window: RateConfig::default(),
        }
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));

    #[test]
    fn the_broker_rate_delays_past_the_limit() {
        let rates = ConnectionRates::default();
        let limits = limits(Some(2.0));
        // 2 per second over the minimum window of 10 s: 20 go through at once.
        for _ in 0..20 {
            assert_eq!(rates.record_connection(&limits, "L", false), Duration::ZERO);
        }
        let delay = rates.record_connection(&limits, "L", false);
        assert!(
            delay > Duration::ZERO && delay <= Duration::from_secs(1),
            "{delay:?}"
        );
        // The protected listener is not held back by the broker-wide rate.
        assert_eq!(rates.record_connection(&limits, "L", true), Duration::ZERO);
    }

    #[test]
    fn an_ip_over_its_rate_is_refused_and_not_counted() {
        let rates = ConnectionRates::default();
        let limits = limits(None);
        for _ in 0..10 {
            assert_eq!(
                rates.record_ip_connection(&limits, "L", false, A, Some(1.0)),
                None
            );
        }
        assert!(
            rates
                .record_ip_connection(&limits, "L", false, A, Some(1.0))
                .is_some()
        );
        // Refused ones are taken back out: the rate stays at its limit, still refusing.
        assert!(
            rates
                .record_ip_connection(&limits, "L", false, A, Some(1.0))
                .is_some()
        );
        let other = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(
            rates.record_ip_connection(&limits, "L", false, other, Some(1.0)),
            None
        );
        assert_eq!(
            rates.record_ip_connection(&limits, "L", false, A, None),
            None
        );
    }

    #[test]
    fn the_ip_limit_is_the_address_entity_then_the_default() {
        let mut image = ClientQuotasImage::default();
        let set = |image: &mut ClientQuotasImage, name: Option<&str>, value: f64| {
            image.apply(&ClientQuotaRecord {
                entity: vec![EntityData {
                    entity_type: IP.into(),
                    entity_name: name.map(Into::into),
                    ..Default::default()
                }],
                key: CONNECTION_CREATION_RATE.into(),
                value,
                ..Default::default()
            })
        };
        assert_eq!(ip_rate_limit(&image, A), None);
        set(&mut image, None, 5.0);
        assert_eq!(ip_rate_limit(&image, A), Some(5.0));
        set(&mut image, Some("::ffff:10.0.0.1"), 3.0);
        assert_eq!(ip_rate_limit(&image, A), Some(3.0));
        set(&mut image, Some("10.0.0.1"), 2.0);
        assert_eq!(ip_rate_limit(&image, A), Some(2.0));
    }
}
