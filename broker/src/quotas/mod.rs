//! Client quotas and throttling (KIP-13, KIP-55, KIP-124, KIP-219), as Kafka's
//! `ClientQuotaManager`, `ClientRequestQuotaManager` and `DefaultQuotaCallback`:
//!
//! * The quotas are the image's `ClientQuotaRecord`s (`cluster/client_quotas.rs`); which
//!   entity's value applies to a (principal, client id) is [`callback`]'s precedence.
//! * Each quota type keeps one windowed [`rate::Rate`] per metric tags (`quota.window.num`
//!   samples of `quota.window.size.seconds`, Kafka's 11 x 1 s by default): Produce counts
//!   request bytes (`request.sizeInBytes`, as `KafkaApis.handleProduceRequest`), Fetch
//!   response bytes, the request quota the time spent in the handler as a percentage of
//!   one thread (Kafka's `NanosToPercentagePerSecond`).
//! * A value that takes the rate above the limit yields Kafka's throttle time
//!   (`QuotaUtils.throttleTime`: `(rate - limit) / limit * window`, the request quota's
//!   bounded by one window), the largest of the types a response is charged to.
//! * [`throttle`] charges a response and puts the throttle time in its `throttle_time_ms`;
//!   the connection then mutes itself (reads no request) for that long after sending it,
//!   or, for versions older than the client's KIP-219 support
//!   ([`client_throttles`]), holds the response back as long (Kafka's
//!   `RequestChannel.sendResponse` with `shouldClientThrottle`).
//!
//! Rates whose tags saw nothing for an hour are dropped (Kafka's sensor expiry).

pub mod callback;
pub mod controller_mutation;
pub mod rate;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use gregor_protocol::messages::request_header::RequestHeader;
use gregor_protocol::{ApiKey, Encodable, ResponseBody};

use crate::cluster::client_quotas::ClientQuotasImage;
use crate::config::Config;
use crate::handlers::RequestContext;
use callback::MetricTags;
use rate::{Rate, RateConfig};

/// Kafka's `ClientQuotaManager.InactiveSensorExpirationTimeSeconds`.
const SENSOR_EXPIRY_MS: i64 = 3_600_000;
/// How often idle rates are looked for.
const PURGE_INTERVAL_MS: i64 = 60_000;
/// Kafka's `ClientRequestQuotaManager.NanosToPercentagePerSecond`.
const NANOS_TO_PERCENTAGE_PER_SECOND: f64 = 100.0 / 1_000_000_000.0;

/// The quota types of clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuotaType {
    /// `producer_byte_rate`: bytes produced per second.
    Produce,
    /// `consumer_byte_rate`: bytes fetched per second.
    Fetch,
    /// `request_percentage`: handler time, percent of one thread.
    Request,
}

impl QuotaType {
    /// The quota key of the type.
    pub fn key(self) -> &'static str {
        match self {
            QuotaType::Produce => "producer_byte_rate",
            QuotaType::Fetch => "consumer_byte_rate",
            QuotaType::Request => "request_percentage",
        }
    }
}

#[derive(Debug, Default)]
struct Sensors {
    rates: HashMap<(QuotaType, MetricTags), Rate>,
    last_purge_ms: i64,
}

/// The rates of every client, per quota type and metric tags.
#[derive(Debug)]
pub struct ClientQuotaManager {
    /// The token buckets of `controller_mutation_rate` (KIP-599).
    pub controller_mutation: controller_mutation::ControllerMutationQuotaManager,
    config: RateConfig,
    start: Instant,
    sensors: Mutex<Sensors>,
}

impl ClientQuotaManager {
    /// A manager sampling as `config` says.
    pub fn new(config: RateConfig) -> ClientQuotaManager {
        ClientQuotaManager {
            controller_mutation: controller_mutation::ControllerMutationQuotaManager::new(config),
            config,
            start: Instant::now(),
            sensors: Mutex::default(),
        }
    }

    /// A manager with the broker's `quota.window.num` and `quota.window.size.seconds`
    /// (Kafka's defaults, 11 and 1, when absent; a value that is not an integer of at
    /// least 1 is logged and the default used).
    pub fn from_config(config: &Config) -> ClientQuotaManager {
        let mut manager = ClientQuotaManager::new(RateConfig {
            samples: positive_int(config, "quota.window.num", 11) as u32,
            window_ms: positive_int(config, "quota.window.size.seconds", 1) * 1000,
        });
        manager.controller_mutation =
            controller_mutation::ControllerMutationQuotaManager::from_config(config);
        manager
    }

    /// Milliseconds on the manager's monotonic clock.
    pub fn now_ms(&self) -> i64 {
        i64::try_from(self.start.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    /// Records `value` for `user` and `client_id` under `quota` at `now_ms` and returns the
    /// throttle time in milliseconds (0 within the quota), as Kafka's
    /// `maybeRecordAndGetThrottleTimeMs`. Nothing is recorded while no entity has a quota
    /// of this type (Kafka's `quotasEnabled`).
    pub fn record(
        &self,
        quotas: &ClientQuotasImage,
        quota: QuotaType,
        user: &str,
        client_id: &str,
        value: f64,
        now_ms: i64,
    ) -> i64 {
        let key = quota.key();
        if !quotas.entities().values().any(|q| q.contains_key(key)) {
            return 0;
        }
        let tags = callback::metric_tags(quotas, key, user, client_id);
        let limit = callback::quota_limit(quotas, key, &tags);
        let config = self.config;
        let mut sensors = self.sensors.lock().unwrap_or_else(PoisonError::into_inner);
        if now_ms - sensors.last_purge_ms >= PURGE_INTERVAL_MS {
            sensors.last_purge_ms = now_ms;
            sensors
                .rates
                .retain(|_, rate| !rate.idle_since(now_ms, SENSOR_EXPIRY_MS));
        }
        let rate = sensors.rates.entry((quota, tags)).or_default();
        rate.record(config, value, now_ms);
        let Some(limit) = limit else { return 0 };
        // Sensor.checkQuotas: the rate with this value in it, against the bound.
        let measured = rate.measure(config, now_ms);
        if measured <= limit {
            return 0;
        }
        let window = rate.window_size_ms(config, now_ms) as f64;
        let throttle = ((measured - limit) / limit * window).round() as i64;
        match quota {
            // ClientRequestQuotaManager bounds its throttle time by one window.
            QuotaType::Request => throttle.min(config.window_ms),
            _ => throttle,
        }
    }
}

/// The integer `key` of `config`, at least 1 (`default` when absent; a value that is not
/// an integer of at least 1 is logged and the default used).
fn positive_int(config: &Config, key: &str, default: i64) -> i64 {
    match config.get(key) {
        None => default,
        Some(text) => match text.trim().parse::<i64>() {
            Ok(v) if (1..=i64::from(i32::MAX)).contains(&v) => v,
            _ => {
                tracing::warn!("{key}={text:?} is not an integer of at least 1; using {default}");
                default
            }
        },
    }
}

/// The throttle time a handler already put in its response: the controller mutation
/// quota's (Kafka's `sendResponseMaybeThrottleWithControllerQuota` takes the larger of it
/// and the request quota's).
fn handler_throttle_ms(response: Option<&ResponseBody>) -> i64 {
    i64::from(match response {
        Some(ResponseBody::CreateTopics(r)) => r.throttle_time_ms,
        Some(ResponseBody::CreatePartitions(r)) => r.throttle_time_ms,
        Some(ResponseBody::DeleteTopics(r)) => r.throttle_time_ms,
        _ => 0,
    })
}

/// How long a connection waits because of a response's quotas.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Throttle {
    /// The throttle time.
    pub duration: Duration,
    /// True when the client throttles itself (KIP-219): the response goes out at once and
    /// the connection is muted after it; false: the response is held back.
    pub client_throttles: bool,
}

impl Throttle {
    /// No throttling.
    pub const NONE: Throttle = Throttle {
        duration: Duration::ZERO,
        client_throttles: true,
    };

    /// Whether the response waits before it is sent.
    pub fn before_response(&self) -> bool {
        !self.duration.is_zero() && !self.client_throttles
    }

    /// Whether the connection is muted after sending the response.
    pub fn after_response(&self) -> bool {
        !self.duration.is_zero() && self.client_throttles
    }

    /// Waits out the throttle time; false if shutdown came first.
    pub async fn wait(&self, shutdown: &mut tokio::sync::watch::Receiver<bool>) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(self.duration) => true,
            _ = shutdown.changed() => false,
        }
    }
}

/// Whether the client applies `throttle_time_ms` of `api` at `version` itself, Kafka's
/// `AbstractResponse.shouldClientThrottle` per response type (false where Kafka does not
/// override it).
pub fn client_throttles(api: ApiKey, version: i16) -> bool {
    // By name: some of these APIs have no definition here (and so no `ApiKey`).
    let from = match api.name() {
        "AlterPartitionReassignments"
        | "AlterUserScramCredentials"
        | "DescribeTopicPartitions"
        | "DescribeUserScramCredentials"
        | "ElectLeaders"
        | "ListPartitionReassignments"
        | "IncrementalAlterConfigs"
        | "OffsetDelete" => 0,
        "AddOffsetsToTxn"
        | "AddPartitionsToTxn"
        | "AlterConfigs"
        | "AlterReplicaLogDirs"
        | "CreateAcls"
        | "CreateDelegationToken"
        | "CreatePartitions"
        | "DeleteAcls"
        | "DeleteGroups"
        | "DeleteRecords"
        | "DescribeAcls"
        | "DescribeDelegationToken"
        | "DescribeLogDirs"
        | "EndTxn"
        | "ExpireDelegationToken"
        | "InitProducerId"
        | "RenewDelegationToken"
        | "TxnOffsetCommit" => 1,
        "ApiVersions" | "DeleteTopics" | "DescribeConfigs" | "DescribeGroups"
        | "FindCoordinator" | "Heartbeat" | "LeaveGroup" | "ListGroups" | "SyncGroup" => 2,
        "CreateTopics" | "JoinGroup" | "ListOffsets" => 3,
        "OffsetCommit" | "OffsetFetch" => 4,
        "Metadata" | "Produce" => 6,
        "Fetch" => 8,
        _ => return false,
    };
    version >= from
}

/// A future whose time inside `poll` is summed: the handler's own work, not its waits
/// (a long-polling fetch, a write on the blocking pool), as Kafka's request quota counts
/// the request handler thread's time.
pub struct PollTimed<'a, F: Future> {
    inner: Pin<&'a mut F>,
    spent: Duration,
}

impl<'a, F: Future> PollTimed<'a, F> {
    /// Times `inner`.
    pub fn new(inner: Pin<&'a mut F>) -> PollTimed<'a, F> {
        PollTimed {
            inner,
            spent: Duration::ZERO,
        }
    }
}

impl<F: Future> Future for PollTimed<'_, F> {
    type Output = (F::Output, Duration);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let started = Instant::now();
        let polled = this.inner.as_mut().poll(cx);
        this.spent += started.elapsed();
        polled.map(|output| (output, this.spent))
    }
}

/// Charges one request and its response (`None`: a Produce with acks=0) to the client's
/// quotas, sets the response's `throttle_time_ms`, and says how long the connection waits.
pub fn throttle(
    ctx: &RequestContext,
    header: &RequestHeader,
    api: ApiKey,
    version: i16,
    request_size: usize,
    handler_time: Duration,
    response: Option<&mut ResponseBody>,
) -> Throttle {
    let image = ctx.broker.image();
    let quotas = image.client_quotas();
    let from_handler = handler_throttle_ms(response.as_deref());
    if quotas.is_empty() && from_handler == 0 {
        return Throttle::NONE;
    }
    let manager = &ctx.broker.client_quotas;
    let user = ctx.principal.name.as_str();
    let client_id = header.client_id.as_deref().unwrap_or("");
    let now = manager.now_ms();
    let record =
        |quota: QuotaType, value: f64| manager.record(quotas, quota, user, client_id, value, now);
    let bandwidth = match (api, &response) {
        (ApiKey::Produce, _) => record(QuotaType::Produce, request_size as f64),
        (ApiKey::Fetch, Some(body)) => record(QuotaType::Fetch, body.encoded_len(version) as f64),
        _ => 0,
    };
    // Kafka skips the request quota for acks=0 produces and for cluster actions.
    let request = if response.is_none() || api == ApiKey::WriteTxnMarkers {
        0
    } else {
        let percent = handler_time.as_nanos() as f64 * NANOS_TO_PERCENTAGE_PER_SECOND;
        record(QuotaType::Request, percent)
    };
    let ms = bandwidth
        .max(request)
        .max(from_handler)
        .clamp(0, i64::from(i32::MAX));
    if ms == 0 {
        return Throttle::NONE;
    }
    if let Some(body) = response {
        body.set_throttle_time_ms(version, ms as i32);
    }
    tracing::debug!(
        user,
        client_id,
        api = api.name(),
        throttle_ms = ms,
        "quota exceeded"
    );
    Throttle {
        duration: Duration::from_millis(ms as u64),
        client_throttles: client_throttles(api, version),
    }
}

#[cfg(test)]
mod tests;
