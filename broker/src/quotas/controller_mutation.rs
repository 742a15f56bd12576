//! The controller mutation quota (KIP-599, `controller_mutation_rate`), as Kafka's
//! `ControllerMutationQuotaManager`, `StrictControllerMutationQuota` and
//! `PermissiveControllerMutationQuota`:
//!
//! * The quota of a (user, client id) is chosen as for the other client quotas
//!   ([`super::callback`]); clients with the same metric tags share one [`TokenBucket`].
//! * The bucket holds at most `burst = controller.quota.window.num *
//!   controller.quota.window.size.seconds * quota` tokens (Kafka's defaults 11 and 1) and
//!   refills at `quota` tokens per second; a new bucket starts full (Kafka's starts empty
//!   at time 0 and has refilled long before its first use). Each partition created, added
//!   or deleted takes one token; the bucket may go below zero.
//! * Strict (CreateTopics v6+, CreatePartitions v3+, DeleteTopics v5+: the versions that
//!   know THROTTLING_QUOTA_EXCEEDED): a topic is refused with that error while the bucket
//!   is below zero, checked before the topic's partitions are taken, so one topic may take
//!   the bucket far below zero; the response's throttle time is that of the last refusal
//!   (`-tokens / quota` seconds), less the time since, and 0 when nothing was refused.
//! * Permissive (older versions): every topic is accepted; the throttle time is that of the
//!   bucket after the last topic taken, when it is below zero.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use gregor_protocol::error_code;
use gregor_protocol::messages::request_header::RequestHeader;

use super::callback::{self, MetricTags};
use super::rate::RateConfig;
use crate::cluster::client_quotas::ClientQuotasImage;
use crate::cluster::controller::{ApiError, MutationQuota};
use crate::config::Config;
use crate::handlers::RequestContext;

/// The quota key.
pub const KEY: &str = "controller_mutation_rate";
/// Kafka's `ClientQuotaManager.InactiveSensorExpirationTimeSeconds`.
const BUCKET_EXPIRY_MS: i64 = 3_600_000;

/// Kafka's `TokenBucket` stat (tokens per second).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenBucket {
    tokens: f64,
    last_update_ms: i64,
}

impl TokenBucket {
    /// A full bucket for `quota` at `now_ms`.
    pub fn full(config: RateConfig, quota: f64, now_ms: i64) -> TokenBucket {
        TokenBucket {
            tokens: burst(config, quota),
            last_update_ms: now_ms,
        }
    }

    fn refill(&mut self, config: RateConfig, quota: f64, now_ms: i64) {
        let elapsed_s = (now_ms - self.last_update_ms).max(0) as f64 / 1000.0;
        self.tokens = (self.tokens + quota * elapsed_s).min(burst(config, quota));
        self.last_update_ms = now_ms.max(self.last_update_ms);
    }

    /// The tokens left at `now_ms` (Kafka's `TokenBucket.measure`).
    pub fn measure(&mut self, config: RateConfig, quota: f64, now_ms: i64) -> f64 {
        self.refill(config, quota, now_ms);
        self.tokens
    }

    /// Takes `value` tokens at `now_ms` (Kafka's `TokenBucket.record`).
    pub fn record(&mut self, config: RateConfig, quota: f64, value: f64, now_ms: i64) {
        self.refill(config, quota, now_ms);
        self.tokens = (self.tokens - value).min(burst(config, quota));
    }
}

fn burst(config: RateConfig, quota: f64) -> f64 {
    f64::from(config.samples) * (config.window_ms as f64 / 1000.0) * quota
}

/// Kafka's `ControllerMutationQuotaManager.throttleTimeMs`: the time the bucket needs to
/// get back to zero.
fn throttle_time_ms(tokens: f64, quota: f64) -> i64 {
    (-tokens / quota * 1000.0).round() as i64
}

#[derive(Debug)]
struct Sensor {
    bucket: TokenBucket,
    last_used_ms: i64,
}

/// The token buckets of every client.
#[derive(Debug)]
pub struct ControllerMutationQuotaManager {
    config: RateConfig,
    start: Instant,
    sensors: Mutex<HashMap<MetricTags, Arc<Mutex<Sensor>>>>,
}

impl ControllerMutationQuotaManager {
    /// A manager sampling as `config` says.
    pub fn new(config: RateConfig) -> ControllerMutationQuotaManager {
        ControllerMutationQuotaManager {
            config,
            start: Instant::now(),
            sensors: Mutex::default(),
        }
    }

    /// A manager with the broker's `controller.quota.window.num` and
    /// `controller.quota.window.size.seconds` (Kafka's `QuotaConfig`; 11 and 1 by default).
    pub fn from_config(config: &Config) -> ControllerMutationQuotaManager {
        ControllerMutationQuotaManager::new(RateConfig {
            samples: super::positive_int(config, "controller.quota.window.num", 11) as u32,
            window_ms: super::positive_int(config, "controller.quota.window.size.seconds", 1)
                * 1000,
        })
    }

    fn now_ms(start: Instant) -> i64 {
        i64::try_from(start.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    /// The quota of `user` and `client_id` for one request: strict or permissive, or
    /// unbounded (Kafka's `UnboundedControllerMutationQuota`) while no entity has a
    /// `controller_mutation_rate` (Kafka's `quotasEnabled`) or none applies to this client.
    pub fn quota_for(
        &self,
        quotas: &ClientQuotasImage,
        user: &str,
        client_id: &str,
        strict: bool,
    ) -> Arc<RequestMutationQuota> {
        let unbounded = || {
            Arc::new(RequestMutationQuota {
                config: self.config,
                start: self.start,
                limited: None,
                strict,
                throttle: Mutex::new((0, 0)),
            })
        };
        if !quotas.entities().values().any(|q| q.contains_key(KEY)) {
            return unbounded();
        }
        let tags = callback::metric_tags(quotas, KEY, user, client_id);
        let Some(limit) = callback::quota_limit(quotas, KEY, &tags) else {
            return unbounded();
        };
        let now = Self::now_ms(self.start);
        let mut sensors = self.sensors.lock().unwrap_or_else(PoisonError::into_inner);
        sensors.retain(|_, sensor| {
            Arc::strong_count(sensor) > 1
                || now
                    - sensor
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .last_used_ms
                    < BUCKET_EXPIRY_MS
        });
        let config = self.config;
        let sensor = sensors
            .entry(tags)
            .or_insert_with(|| {
                Arc::new(Mutex::new(Sensor {
                    bucket: TokenBucket::full(config, limit, now),
                    last_used_ms: now,
                }))
            })
            .clone();
        Arc::new(RequestMutationQuota {
            config,
            start: self.start,
            limited: Some((sensor, limit)),
            strict,
            throttle: Mutex::new((0, 0)),
        })
    }
}

/// The quota of one request (Kafka's `Strict`/`PermissiveControllerMutationQuota`).
#[derive(Debug)]
pub struct RequestMutationQuota {
    config: RateConfig,
    start: Instant,
    /// The client's bucket and quota; `None`: unbounded.
    limited: Option<(Arc<Mutex<Sensor>>, f64)>,
    strict: bool,
    /// The last throttle time and when it was taken.
    throttle: Mutex<(i64, i64)>,
}

/// The quota of a CreateTopics, CreatePartitions or DeleteTopics request: strict from
/// `strict_since` (Kafka's `ControllerMutationQuotaManager.newQuotaFor`), for the
/// connection's principal and the header's client id.
pub fn for_request(
    ctx: &RequestContext,
    header: &RequestHeader,
    version: i16,
    strict_since: i16,
) -> Arc<RequestMutationQuota> {
    let image = ctx.broker.image();
    ctx.broker.client_quotas.controller_mutation.quota_for(
        image.client_quotas(),
        &ctx.principal.name,
        header.client_id.as_deref().unwrap_or(""),
        version >= strict_since,
    )
}

impl RequestMutationQuota {
    /// The throttle time of the request: the last one recorded less the time since
    /// (Kafka's `AbstractControllerMutationQuota.throttleTime`).
    pub fn throttle_time_ms(&self) -> i32 {
        let (last, at) = *self.throttle.lock().unwrap_or_else(PoisonError::into_inner);
        let now = ControllerMutationQuotaManager::now_ms(self.start);
        (last - (now - at)).clamp(0, i64::from(i32::MAX)) as i32
    }

    fn set_throttle(&self, tokens: f64, limit: f64, now: i64) -> i64 {
        let ms = throttle_time_ms(tokens, limit);
        *self.throttle.lock().unwrap_or_else(PoisonError::into_inner) = (ms, now);
        ms
    }
}

impl MutationQuota for RequestMutationQuota {
    fn apply_partition_change(&self, partitions: usize) -> Result<(), ApiError> {
        let Some((sensor, limit)) = &self.limited else {
            return Ok(());
        };
        let (config, limit) = (self.config, *limit);
        let now = ControllerMutationQuotaManager::now_ms(self.start);
        let mut sensor = sensor.lock().unwrap_or_else(PoisonError::into_inner);
        sensor.last_used_ms = now;
        if self.strict {
            // Sensor.checkQuotas, then record without checking.
            let tokens = sensor.bucket.measure(config, limit, now);
            if tokens < 0.0 {
                let ms = self.set_throttle(tokens, limit, now);
                tracing::debug!(
                    partitions,
                    throttle_ms = ms,
                    "controller mutation quota exceeded"
                );
                return Err(ApiError::new(
                    error_code::THROTTLING_QUOTA_EXCEEDED,
                    "The throttling quota has been exceeded.",
                ));
            }
            sensor.bucket.record(config, limit, partitions as f64, now);
        } else {
            // Sensor.record with checkQuotas: recorded, then the violation noted.
            sensor.bucket.record(config, limit, partitions as f64, now);
            let tokens = sensor.bucket.measure(config, limit, now);
            if tokens < 0.0 {
                self.set_throttle(tokens, limit, now);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: RateConfig = RateConfig {
        samples: 11,
        window_ms: 1000,
    };

    #[test]
    fn the_bucket_refills_at_the_quota_up_to_the_burst() {
        let mut bucket = TokenBucket::full(CONFIG, 2.0, 0);
        assert_eq!(bucket.measure(CONFIG, 2.0, 0), 22.0);
        bucket.record(CONFIG, 2.0, 30.0, 0);
        assert_eq!(bucket.measure(CONFIG, 2.0, 0), -8.0);
        assert_eq!(throttle_time_ms(-8.0, 2.0), 4000);
        assert_eq!(bucket.measure(CONFIG, 2.0, 1500), -5.0);
        assert_eq!(bucket.measure(CONFIG, 2.0, 100_000), 22.0);
    }

    fn image(rate: f64) -> ClientQuotasImage {
        use gregor_protocol::messages::client_quota_record::{ClientQuotaRecord, EntityData};
        let mut image = ClientQuotasImage::default();
        image.apply(&ClientQuotaRecord {
            entity: vec![EntityData {
                entity_type: "user".into(),
                entity_name: Some("alice".into()),
                ..Default::default()
            }],
            key: KEY.into(),
            value: rate,
            ..Default::default()
        });
        image
    }

    #[test]
    fn strict_refuses_once_the_bucket_is_below_zero() {
        let manager = ControllerMutationQuotaManager::new(CONFIG);
        let quotas = image(1.0);
        let unbounded = manager.quota_for(&quotas, "bob", "c", true);
        assert!(unbounded.apply_partition_change(1_000_000).is_ok());
        assert_eq!(unbounded.throttle_time_ms(), 0);
        let quota = manager.quota_for(&quotas, "alice", "c", true);
        // 11 tokens: a topic of 30 partitions goes through, the next is refused.
        assert!(quota.apply_partition_change(30).is_ok());
        assert_eq!(quota.throttle_time_ms(), 0);
        let refused = quota.apply_partition_change(1).unwrap_err();
        assert_eq!(refused.code, error_code::THROTTLING_QUOTA_EXCEEDED);
        let throttle = quota.throttle_time_ms();
        assert!((18_000..=19_000).contains(&throttle), "{throttle}");
        // The next request of the same client shares the bucket.
        let again = manager.quota_for(&quotas, "alice", "other", true);
        assert!(again.apply_partition_change(1).is_err());
    }

    #[test]
    fn permissive_accepts_and_throttles() {
        let manager = ControllerMutationQuotaManager::new(CONFIG);
        let quota = manager.quota_for(&image(1.0), "alice", "c", false);
        assert!(quota.apply_partition_change(10).is_ok());
        assert_eq!(quota.throttle_time_ms(), 0);
        assert!(quota.apply_partition_change(21).is_ok());
        let throttle = quota.throttle_time_ms();
        assert!((19_000..=20_000).contains(&throttle), "{throttle}");
    }
}
