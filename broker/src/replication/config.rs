//! The `replica.*` settings replication uses, with Kafka's defaults (`ReplicationConfigs`).
//! The configuration module accepts every `replica.` key; the ones read here are checked
//! here, with errors naming the key.

use crate::config::Config;

/// Replication's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// `replica.lag.time.max.ms` (30000): a follower that has not caught up with the
    /// leader's log end offset for this long leaves the ISR.
    pub lag_time_max_ms: i64,
    /// `replica.fetch.backoff.ms` (1000): how long a fetcher waits after an error.
    pub fetch_backoff_ms: i64,
    /// `replica.fetch.max.bytes` (1048576): bytes asked per partition.
    pub fetch_max_bytes: i32,
    /// `replica.fetch.response.max.bytes` (10485760): bytes asked per response.
    pub fetch_response_max_bytes: i32,
    /// `replica.fetch.wait.max.ms` (500): the fetch's `max_wait_ms`.
    pub fetch_wait_max_ms: i32,
    /// `replica.fetch.min.bytes` (1): the fetch's `min_bytes`.
    pub fetch_min_bytes: i32,
    /// `replica.socket.timeout.ms` (30000): how long a fetcher waits for a response
    /// beyond the fetch's own wait.
    pub socket_timeout_ms: i64,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            lag_time_max_ms: 30_000,
            fetch_backoff_ms: 1_000,
            fetch_max_bytes: 1_048_576,
            fetch_response_max_bytes: 10_485_760,
            fetch_wait_max_ms: 500,
            fetch_min_bytes: 1,
            socket_timeout_ms: 30_000,
        }
    }
}

impl ReplicationConfig {
    /// Reads the keys from the broker's configuration; a value that is not a number in
    /// range is an error naming the key.
    pub fn from_config(config: &Config) -> Result<ReplicationConfig, String> {
        let defaults = ReplicationConfig::default();
        let int = |key: &str, default: i64, min: i64, max: i64| -> Result<i64, String> {
            match config.get(key) {
                None => Ok(default),
                Some(value) => match value.trim().parse::<i64>() {
                    Ok(n) if (min..=max).contains(&n) => Ok(n),
                    _ => Err(format!(
                        "{key}: {value:?} is not an integer in [{min}, {max}]"
                    )),
                },
            }
        };
        let i32_max = i64::from(i32::MAX);
        Ok(ReplicationConfig {
            lag_time_max_ms: int(
                "replica.lag.time.max.ms",
                defaults.lag_time_max_ms,
                0,
                i64::MAX,
            )?,
            fetch_backoff_ms: int(
                "replica.fetch.backoff.ms",
                defaults.fetch_backoff_ms,
                0,
                i32_max,
            )?,
            fetch_max_bytes: int(
                "replica.fetch.max.bytes",
                defaults.fetch_max_bytes.into(),
                0,
                i32_max,
            )? as i32,
            fetch_response_max_bytes: int(
                "replica.fetch.response.max.bytes",
                defaults.fetch_response_max_bytes.into(),
                0,
                i32_max,
            )? as i32,
            fetch_wait_max_ms: int(
                "replica.fetch.wait.max.ms",
                defaults.fetch_wait_max_ms.into(),
                0,
                i32_max,
            )? as i32,
            fetch_min_bytes: int(
                "replica.fetch.min.bytes",
                defaults.fetch_min_bytes.into(),
                1,
                i32_max,
            )? as i32,
            socket_timeout_ms: int(
                "replica.socket.timeout.ms",
                defaults.socket_timeout_ms,
                0,
                i32_max,
            )?,
        })
    }
}
