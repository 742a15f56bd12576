//! Client telemetry (KIP-714): the client-metrics subscriptions and the state of each
//! client instance behind GetTelemetrySubscriptions and PushTelemetry, as Kafka's
//! `ClientMetricsManager` keeps them.
//!
//! Subscriptions are the configs of `CLIENT_METRICS` resources (type 16) in the metadata
//! image, set with IncrementalAlterConfigs: `metrics` (metric name prefixes, `*` for all),
//! `interval.ms` (push interval, 100 to 3600000, default 300000) and `match` (`attr=regex`
//! items over `client_instance_id`, `client_id`, `client_software_name`,
//! `client_software_version`, `client_source_address`, `client_source_port`; every item
//! must match the whole value; none matches every client). [`validate`] checks them as
//! Kafka's `ClientMetricsConfigs.validate`.
//!
//! A client matching several subscriptions gets the union of their metrics (only `*` if
//! one has it) and the smallest interval; with none it gets no metrics and the default
//! interval, and pushes nothing. The subscription id is a hash of the metrics, the interval
//! and the instance id, so a client whose subscriptions changed gets
//! `UNKNOWN_SUBSCRIPTION_ID` on its next push and asks again.
//!
//! Pushed metrics are not stored: Kafka hands them to a `ClientTelemetry` metrics
//! reporter, this broker logs each push (client, subscription, size, codec) at debug, or
//! at INFO when `metric.reporters` is set (a sign someone wants the metrics).
//!
//! Errors, as Kafka sends them: a get or push sooner than the push interval after the
//! previous request of the instance `THROTTLING_QUOTA_EXCEEDED` (a push straight after a
//! get is allowed, since clients add jitter); a push with a zero or reserved instance id,
//! or after a terminating push, `INVALID_REQUEST`; with a stale subscription id
//! `UNKNOWN_SUBSCRIPTION_ID`; with an unknown codec `UNSUPPORTED_COMPRESSION_TYPE`; larger
//! than `telemetry.max.bytes` `TELEMETRY_TOO_LARGE`. Instances are forgotten after
//! max(60 s, 3 push intervals) without a request, and at most [`MAX_INSTANCES`] are kept
//! (the least recently seen go first), so the memory is bounded.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

use gregor_protocol::error_code;
use uuid::Uuid;

use crate::cluster::controller::ApiError;
use crate::cluster::{ConfigResource, MetadataImage};

/// The `metrics` config: metric name prefixes.
pub const METRICS: &str = "metrics";
/// The `interval.ms` config: the push interval.
pub const INTERVAL_MS: &str = "interval.ms";
/// The `match` config: client selectors.
pub const MATCH: &str = "match";
/// Kafka's default push interval (5 minutes).
pub const DEFAULT_INTERVAL_MS: i32 = 300_000;
/// Kafka's bound on cached client instances (`ClientMetricsManager.CACHE_MAX_SIZE`).
pub const MAX_INSTANCES: usize = 16_384;
/// How long an idle instance is kept at least (`DEFAULT_CACHE_EXPIRY_MS`).
const INSTANCE_EXPIRY_MS: u64 = 60_000;
/// The codecs accepted for pushed metrics, in Kafka's order: zstd, lz4, gzip, snappy.
pub const ACCEPTED_COMPRESSION_TYPES: [i8; 4] = [4, 3, 1, 2];
const MATCH_ATTRIBUTES: [&str; 6] = [
    "client_instance_id",
    "client_id",
    "client_software_name",
    "client_software_version",
    "client_source_address",
    "client_source_port",
];

/// Java's `ConfigDef` parse of a LIST value: items split on commas and trimmed; an empty
/// value is the empty list.
pub fn parse_list(value: &str) -> Vec<String> {
    if value.trim().is_empty() {
        return Vec::new();
    }
    value.split(',').map(|s| s.trim().to_string()).collect()
}

/// One subscription, parsed.
#[derive(Clone, Debug)]
struct Subscription {
    metrics: Vec<String>,
    interval_ms: i32,
    selectors: Vec<(String, regex::Regex)>,
}

fn parse_interval(value: &str) -> Result<i32, ApiError> {
    value.trim().parse::<i32>().map_err(|_| {
        ApiError::new(
            error_code::INVALID_CONFIG,
            format!(
                "Invalid value {value} for configuration {INTERVAL_MS}: Not a number of type INT"
            ),
        )
    })
}

fn parse_selectors(patterns: &[String]) -> Result<Vec<(String, regex::Regex)>, ApiError> {
    patterns
        .iter()
        .map(|pattern| {
            let illegal = || {
                ApiError::new(
                    error_code::INVALID_CONFIG,
                    format!("Illegal client matching pattern: {pattern}"),
                )
            };
            // Java's `split("=")`: trailing empty parts are dropped, so "a=" has one part.
            let mut parts: Vec<&str> = pattern.split('=').collect();
            while parts.last().is_some_and(|p| p.is_empty()) {
                parts.pop();
            }
            let [name, value] = parts[..] else {
                return Err(illegal());
            };
            let name = name.trim();
            if !MATCH_ATTRIBUTES.contains(&name) {
                return Err(illegal());
            }
            // Java's `Matcher.matches`: the whole value must match.
            let regex =
                regex::Regex::new(&format!("^(?:{})$", value.trim())).map_err(|_| illegal())?;
            Ok((name.to_string(), regex))
        })
        .collect()
}

/// Checks the configs of subscription `name` as Kafka's `ClientMetricsConfigs.validate`:
/// a name, known keys only (`INVALID_REQUEST`), an integer `interval.ms`
/// (`INVALID_CONFIG`) from 100 to 3600000 (`INVALID_REQUEST`), legal `match` items
/// (`INVALID_CONFIG`).
pub fn validate(name: &str, configs: &BTreeMap<String, String>) -> Result<(), ApiError> {
    parse(name, configs).map(|_| ())
}

fn parse(name: &str, configs: &BTreeMap<String, String>) -> Result<Subscription, ApiError> {
    if name.is_empty() {
        return Err(ApiError::new(
            error_code::INVALID_REQUEST,
            "Subscription name can't be empty",
        ));
    }
    if let Some(key) = configs
        .keys()
        .find(|k| ![METRICS, INTERVAL_MS, MATCH].contains(&k.as_str()))
    {
        return Err(ApiError::new(
            error_code::INVALID_REQUEST,
            format!("Unknown client metrics configuration: {key}"),
        ));
    }
    let interval_ms = match configs.get(INTERVAL_MS) {
        None => DEFAULT_INTERVAL_MS,
        Some(value) => {
            let interval = parse_interval(value)?;
            if !(100..=3_600_000).contains(&interval) {
                return Err(ApiError::new(
                    error_code::INVALID_REQUEST,
                    format!(
                        "Invalid value {interval} for {INTERVAL_MS}, interval must be between \
                         100 and 3600000 (1 hour)"
                    ),
                ));
            }
            interval
        }
    };
    let selectors = parse_selectors(&configs.get(MATCH).map_or(Vec::new(), |v| parse_list(v)))?;
    Ok(Subscription {
        metrics: configs.get(METRICS).map_or(Vec::new(), |v| parse_list(v)),
        interval_ms,
        selectors,
    })
}

/// What a request tells about its client, for `match`.
#[derive(Clone, Debug)]
pub struct ClientInfo {
    /// The request header's client id.
    pub client_id: String,
    /// The client's address.
    pub peer: SocketAddr,
    /// `client_software_name` from the connection's ApiVersions (`unknown` before).
    pub software_name: String,
    /// `client_software_version` from the connection's ApiVersions (`unknown` before).
    pub software_version: String,
}

impl ClientInfo {
    fn attribute(&self, instance: Uuid, name: &str) -> String {
        match name {
            "client_instance_id" => crate::cluster::uuid_to_base64(instance),
            "client_id" => self.client_id.clone(),
            "client_source_address" => self.peer.ip().to_string(),
            "client_source_port" => self.peer.port().to_string(),
            "client_software_name" => self.software_name.clone(),
            "client_software_version" => self.software_version.clone(),
            _ => "unknown".to_string(),
        }
    }
}

#[derive(Debug)]
struct Instance {
    /// The subscription configs the instance was evaluated against.
    fingerprint: u64,
    subscription_id: i32,
    metrics: Vec<String>,
    interval_ms: i32,
    last_get_ms: Option<u64>,
    last_push_ms: Option<u64>,
    terminating: bool,
    last_seen_ms: u64,
}

/// The outcome of a GetTelemetrySubscriptions request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscribed {
    /// The client's instance id (new if it sent none).
    pub client_instance_id: Uuid,
    /// The subscription id to push with.
    pub subscription_id: i32,
    /// The metric prefixes to push.
    pub metrics: Vec<String>,
    /// The push interval.
    pub push_interval_ms: i32,
}

/// A push accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushed {
    /// The instance.
    pub client_instance_id: Uuid,
    /// Bytes of metrics pushed.
    pub bytes: usize,
}

/// The telemetry state of a broker (see the module docs).
#[derive(Debug)]
pub struct ClientMetricsManager {
    max_bytes: i32,
    log_at_info: bool,
    start: Instant,
    instances: Mutex<HashMap<Uuid, Instance>>,
}

/// FNV-1a, a stable hash (the subscription id and fingerprints survive restarts).
fn fnv(bytes: impl IntoIterator<Item = u8>, mut hash: u64) -> u64 {
    for b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x100_0000_01b3);
    }
    hash
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

impl ClientMetricsManager {
    /// A manager accepting pushes of up to `max_bytes` (`telemetry.max.bytes`), logging
    /// them at INFO when `log_at_info`.
    pub fn new(max_bytes: i32, log_at_info: bool) -> ClientMetricsManager {
        ClientMetricsManager {
            max_bytes,
            log_at_info,
            start: Instant::now(),
            instances: Mutex::new(HashMap::new()),
        }
    }

    /// `telemetry.max.bytes`.
    pub fn max_bytes(&self) -> i32 {
        self.max_bytes
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// The subscriptions of `image` that parse (the controller validated them; a log
    /// written by another broker may still hold bad ones, which are skipped) and their
    /// fingerprint.
    fn subscriptions(image: &MetadataImage) -> (Vec<Subscription>, u64) {
        let mut fingerprint = FNV_OFFSET;
        let mut subscriptions = Vec::new();
        for (resource, configs) in image.configs() {
            if resource.resource_type != ConfigResource::CLIENT_METRICS {
                continue;
            }
            fingerprint = fnv(resource.name.bytes().chain([0]), fingerprint);
            for (k, v) in configs {
                fingerprint = fnv(
                    k.bytes().chain([0]).chain(v.bytes()).chain([0]),
                    fingerprint,
                );
            }
            match parse(&resource.name, configs) {
                Ok(s) => subscriptions.push(s),
                Err(e) => tracing::warn!(
                    subscription = resource.name,
                    "skipping an invalid client metrics subscription: {:?}",
                    e.message
                ),
            }
        }
        (subscriptions, fingerprint)
    }

    fn evaluate(
        subscriptions: &[Subscription],
        fingerprint: u64,
        id: Uuid,
        client: &ClientInfo,
        now: u64,
    ) -> Instance {
        let mut metrics: Vec<String> = Vec::new();
        let mut all = false;
        let mut interval_ms = DEFAULT_INTERVAL_MS;
        for s in subscriptions {
            let matches = s
                .selectors
                .iter()
                .all(|(name, regex)| regex.is_match(&client.attribute(id, name)));
            if !matches {
                continue;
            }
            all |= s.metrics.iter().any(|m| m == "*");
            for m in &s.metrics {
                if !metrics.contains(m) {
                    metrics.push(m.clone());
                }
            }
            interval_ms = interval_ms.min(s.interval_ms);
        }
        if all {
            metrics = vec!["*".to_string()];
        }
        metrics.sort();
        let mut hash = fnv(interval_ms.to_be_bytes(), FNV_OFFSET);
        for m in &metrics {
            hash = fnv(m.bytes().chain([0]), hash);
        }
        let (hi, lo) = id.as_u64_pair();
        let subscription_id = (hash ^ hi ^ lo) as i32 ^ ((hash ^ hi ^ lo) >> 32) as i32;
        Instance {
            fingerprint,
            subscription_id,
            metrics,
            interval_ms,
            last_get_ms: None,
            last_push_ms: None,
            terminating: false,
            last_seen_ms: now,
        }
    }

    /// The instance `id`, made or re-evaluated when the subscriptions changed; old and
    /// surplus instances are dropped first.
    fn instance<'a>(
        instances: &'a mut HashMap<Uuid, Instance>,
        image: &MetadataImage,
        id: Uuid,
        client: &ClientInfo,
        now: u64,
    ) -> &'a mut Instance {
        let (subscriptions, fingerprint) = Self::subscriptions(image);
        let stale = instances
            .get(&id)
            .is_none_or(|i| i.fingerprint != fingerprint);
        if stale {
            if !instances.contains_key(&id) && instances.len() >= MAX_INSTANCES {
                instances.retain(|_, i| {
                    now.saturating_sub(i.last_seen_ms)
                        < INSTANCE_EXPIRY_MS.max(3 * i.interval_ms.max(0) as u64)
                });
                if instances.len() >= MAX_INSTANCES
                    && let Some(oldest) = instances
                        .iter()
                        .min_by_key(|(_, i)| i.last_seen_ms)
                        .map(|(id, _)| *id)
                {
                    instances.remove(&oldest);
                }
            }
            instances.insert(
                id,
                Self::evaluate(&subscriptions, fingerprint, id, client, now),
            );
        }
        let instance = instances.get_mut(&id).expect("inserted above");
        instance.last_seen_ms = now;
        instance
    }

    /// GetTelemetrySubscriptions: the subscription of instance `id` (a new instance when
    /// `id` is zero), or the error code (`THROTTLING_QUOTA_EXCEEDED`).
    pub fn get_subscriptions(
        &self,
        image: &MetadataImage,
        id: Uuid,
        client: &ClientInfo,
    ) -> Result<Subscribed, i16> {
        let now = self.now_ms();
        let mut instances = self.instances.lock().unwrap_or_else(|e| e.into_inner());
        let id = if id.is_nil() {
            loop {
                let id = crate::cluster::random_uuid();
                if !instances.contains_key(&id) {
                    break id;
                }
            }
        } else {
            id
        };
        let instance = Self::instance(&mut instances, image, id, client, now);
        let last = instance.last_get_ms.max(instance.last_push_ms);
        if last.is_some_and(|last| now - last < instance.interval_ms.max(0) as u64) {
            tracing::debug!(%id, "GetTelemetrySubscriptions before the push interval");
            return Err(error_code::THROTTLING_QUOTA_EXCEEDED);
        }
        instance.last_get_ms = Some(now);
        Ok(Subscribed {
            client_instance_id: id,
            subscription_id: instance.subscription_id,
            metrics: instance.metrics.clone(),
            push_interval_ms: instance.interval_ms,
        })
    }

    /// PushTelemetry: checks the push (see the module docs for the errors) and logs it.
    pub fn push(
        &self,
        image: &MetadataImage,
        request: &PushRequest<'_>,
        client: &ClientInfo,
    ) -> Result<Pushed, i16> {
        let id = request.client_instance_id;
        // Kafka's `Uuid.RESERVED`: the zero id and the metadata topic's id (0, 1).
        if id.is_nil() || id == Uuid::from_u64_pair(0, 1) {
            return Err(error_code::INVALID_REQUEST);
        }
        let now = self.now_ms();
        let mut instances = self.instances.lock().unwrap_or_else(|e| e.into_inner());
        let instance = Self::instance(&mut instances, image, id, client, now);
        let outcome = self.check_push(instance, request, now);
        instance.terminating = request.terminating;
        drop(instances);
        if let Err(code) = outcome {
            tracing::debug!(%id, code, "PushTelemetry refused");
            return Err(code);
        }
        let bytes = request.metrics.len();
        if bytes > 0 {
            // A tracing event's level is fixed where it is written: one per level.
            macro_rules! pushed {
                ($level:expr) => {
                    tracing::event!(
                        $level,
                        client_instance_id = %id,
                        client_id = client.client_id,
                        peer = %client.peer,
                        subscription_id = request.subscription_id,
                        compression_type = request.compression_type,
                        bytes,
                        terminating = request.terminating,
                        "client telemetry pushed"
                    )
                };
            }
            if self.log_at_info {
                pushed!(tracing::Level::INFO);
            } else {
                pushed!(tracing::Level::DEBUG);
            }
        }
        Ok(Pushed {
            client_instance_id: id,
            bytes,
        })
    }

    fn check_push(
        &self,
        instance: &mut Instance,
        request: &PushRequest<'_>,
        now: u64,
    ) -> Result<(), i16> {
        if instance.terminating {
            return Err(error_code::INVALID_REQUEST);
        }
        // A push right after a get is accepted whatever the interval (clients add jitter).
        let after_get = match (instance.last_get_ms, instance.last_push_ms) {
            (Some(get), Some(push)) => get > push,
            (Some(_), None) => true,
            _ => false,
        };
        let accept = after_get
            || instance
                .last_push_ms
                .is_none_or(|push| now - push >= instance.interval_ms.max(0) as u64);
        if accept {
            instance.last_push_ms = Some(now);
        } else if !request.terminating {
            return Err(error_code::THROTTLING_QUOTA_EXCEEDED);
        }
        if request.subscription_id != instance.subscription_id {
            return Err(error_code::UNKNOWN_SUBSCRIPTION_ID);
        }
        if !(0..=4).contains(&request.compression_type) {
            return Err(error_code::UNSUPPORTED_COMPRESSION_TYPE);
        }
        if request.metrics.len() > self.max_bytes.max(0) as usize {
            return Err(error_code::TELEMETRY_TOO_LARGE);
        }
        Ok(())
    }
}

/// The fields of a PushTelemetry request the manager reads.
#[derive(Clone, Copy, Debug)]
pub struct PushRequest<'a> {
    /// The instance id.
    pub client_instance_id: Uuid,
    /// The subscription id the client pushes for.
    pub subscription_id: i32,
    /// Whether this is the client's last push.
    pub terminating: bool,
    /// The codec of `metrics`.
    pub compression_type: i8,
    /// The payload.
    pub metrics: &'a [u8],
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topic_config::config_map as configs;

    #[test]
    fn validation_as_kafka() {
        assert!(
            validate(
                "s",
                &configs(&[("metrics", "a,b"), ("interval.ms", "1000")])
            )
            .is_ok()
        );
        let e = validate("", &configs(&[])).unwrap_err();
        assert_eq!(e.code, error_code::INVALID_REQUEST);
        let e = validate("s", &configs(&[("x", "1")])).unwrap_err();
        assert_eq!(
            e.message.as_deref(),
            Some("Unknown client metrics configuration: x")
        );
        let e = validate("s", &configs(&[("interval.ms", "99")])).unwrap_err();
        assert_eq!(e.code, error_code::INVALID_REQUEST);
        let e = validate("s", &configs(&[("interval.ms", "abc")])).unwrap_err();
        assert_eq!(e.code, error_code::INVALID_CONFIG);
        for bad in ["client_id", "client_id=", "nope=a", "client_id=(", "a=b=c"] {
            let e = validate("s", &configs(&[("match", bad)])).unwrap_err();
            assert_eq!(e.code, error_code::INVALID_CONFIG, "{bad}");
        }
        assert!(
            validate(
                "s",
                &configs(&[("match", "client_id=rd.*, client_source_port=\\d+")])
            )
            .is_ok()
        );
    }

    #[test]
    fn match_sees_the_software_the_client_named_in_api_versions() {
        let client = ClientInfo {
            client_id: "c".into(),
            peer: "127.0.0.1:1234".parse().unwrap(),
            software_name: "confluent-kafka-python".into(),
            software_version: "2.16.1-rdkafka-2.16.0".into(),
        };
        assert_eq!(
            client.attribute(Uuid::nil(), "client_software_name"),
            "confluent-kafka-python"
        );
        assert_eq!(
            client.attribute(Uuid::nil(), "client_software_version"),
            "2.16.1-rdkafka-2.16.0"
        );
        assert_eq!(client.attribute(Uuid::nil(), "client_source_port"), "1234");
    }

    #[test]
    fn push_rules() {
        let manager = ClientMetricsManager::new(10, false);
        let image = MetadataImage::empty();
        let client = ClientInfo {
            client_id: "c".into(),
            peer: "127.0.0.1:1234".parse().unwrap(),
            software_name: "apache-kafka-java".into(),
            software_version: "4.3.1".into(),
        };
        let sub = manager
            .get_subscriptions(&image, Uuid::nil(), &client)
            .unwrap();
        assert!(sub.metrics.is_empty());
        assert_eq!(sub.push_interval_ms, DEFAULT_INTERVAL_MS);
        // A second get within the interval is throttled.
        assert_eq!(
            manager.get_subscriptions(&image, sub.client_instance_id, &client),
            Err(error_code::THROTTLING_QUOTA_EXCEEDED)
        );
        fn push(
            id: Uuid,
            subscription_id: i32,
            metrics: &[u8],
            terminating: bool,
        ) -> PushRequest<'_> {
            PushRequest {
                client_instance_id: id,
                subscription_id,
                terminating,
                compression_type: 0,
                metrics,
            }
        }
        let id = sub.client_instance_id;
        assert_eq!(
            manager
                .push(
                    &image,
                    &push(id, sub.subscription_id, b"abc", false),
                    &client
                )
                .map(|p| p.bytes),
            Ok(3)
        );
        // Too soon after the last push.
        assert_eq!(
            manager.push(
                &image,
                &push(id, sub.subscription_id, b"abc", false),
                &client
            ),
            Err(error_code::THROTTLING_QUOTA_EXCEEDED)
        );
        // A terminating push is let through the interval, but the payload is checked.
        assert_eq!(
            manager.push(
                &image,
                &push(id, sub.subscription_id, &[0; 11], true),
                &client
            ),
            Err(error_code::TELEMETRY_TOO_LARGE)
        );
        // Nothing after a terminating push.
        assert_eq!(
            manager.push(&image, &push(id, sub.subscription_id, b"", true), &client),
            Err(error_code::INVALID_REQUEST)
        );
    }
}
