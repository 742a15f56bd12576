//! `gregorctl perf requests`: request-rate load with small control-plane requests
//! (ApiVersions or Metadata), to measure how many requests per second a broker answers and
//! how long each takes.
//!
//! `--connections` connections to the bootstrap broker, each with one worker that keeps
//! `--in-flight` requests outstanding: it fills the window, then waits for the oldest
//! response (Kafka answers the requests of one connection in order) and sends the next one
//! in its place, until `--duration` passes or `--num-requests` have been sent. Every
//! response is decoded and its error codes checked. Latency is from just before a request
//! is encoded to its decoded response, so it includes the time spent queued behind the
//! other requests of the window.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gregor_protocol::messages::api_versions_request::ApiVersionsRequest;
use gregor_protocol::messages::api_versions_response::ApiVersionsResponse;
use gregor_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use gregor_protocol::messages::metadata_response::MetadataResponse;
use gregor_protocol::{ApiKey, Request};
use serde::Serialize;
use tokio::task::JoinSet;

use super::{Latency, Stats, round2, spawn_progress, stop_progress};
use crate::client::{Connection, Error, Result};
use crate::commands::Context;
use crate::output;

/// The request to send.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// ApiVersions (the request every client sends first).
    ApiVersions,
    /// Metadata (of the `--topic`s, or of every topic).
    Metadata,
}

impl Api {
    fn key(self) -> ApiKey {
        match self {
            Api::ApiVersions => ApiKey::ApiVersions,
            Api::Metadata => ApiKey::Metadata,
        }
    }
}

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The request to send.
    #[arg(long, value_enum)]
    pub api: Api,
    /// Topics to ask Metadata about (repeatable); every topic when omitted.
    #[arg(long)]
    pub topic: Vec<String>,
    /// Connections to the bootstrap broker (one worker each).
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// Requests outstanding on each connection.
    #[arg(long, default_value_t = 16)]
    pub in_flight: usize,
    /// Seconds to run; with --num-requests, whichever ends first.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Requests to send over all connections.
    #[arg(long)]
    pub num_requests: Option<u64>,
    /// The API version to send (default: the highest both sides support).
    #[arg(long)]
    pub version: Option<i16>,
}

/// Requests left to send, shared by the workers.
struct Budget {
    remaining: AtomicU64,
    deadline: Option<Instant>,
}

impl Budget {
    /// Claims one request; false when the run is over.
    fn claim(&self) -> bool {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
        self.remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// The error codes of a response: 0 when it reports none.
trait ErrorCode {
    fn error_code(&self) -> i16;
}

impl ErrorCode for ApiVersionsResponse {
    fn error_code(&self) -> i16 {
        self.error_code
    }
}

impl ErrorCode for MetadataResponse {
    fn error_code(&self) -> i16 {
        if self.error_code != 0 {
            return self.error_code;
        }
        self.topics
            .iter()
            .map(|t| t.error_code)
            .find(|&code| code != 0)
            .unwrap_or(0)
    }
}

/// One connection's worker: keeps `in_flight` requests outstanding, oldest answered first.
async fn worker<R>(
    connection: Arc<Connection>,
    request: R,
    version: i16,
    in_flight: usize,
    budget: Arc<Budget>,
    stats: Arc<Stats>,
) -> Result<()>
where
    R: Request,
    R::Response: ErrorCode,
{
    let mut window = VecDeque::with_capacity(in_flight);
    loop {
        while window.len() < in_flight && budget.claim() {
            let sent = Instant::now();
            let pending = connection.dispatch_at(&request, version).await?;
            window.push_back((sent, pending));
        }
        let Some((sent, pending)) = window.pop_front() else {
            return Ok(());
        };
        let response = pending.wait().await?;
        let elapsed = sent.elapsed();
        stats.requests.fetch_add(1, Ordering::Relaxed);
        match response.error_code() {
            0 => {
                stats.record_latency(elapsed, 1);
                stats.records.fetch_add(1, Ordering::Relaxed);
            }
            code => stats.record_error(1, || {
                format!(
                    "{} v{version}: {}",
                    R::API_KEY.name(),
                    crate::errors::describe(code, None)
                )
            }),
        }
    }
}

/// The final report (the last stdout line, as JSON).
#[derive(Serialize)]
struct Summary {
    mode: &'static str,
    /// The API name.
    api: &'static str,
    /// The version sent.
    version: i16,
    connections: usize,
    in_flight: usize,
    /// Requests answered without an error.
    requests: u64,
    /// Requests answered with an error code.
    errors: u64,
    duration_s: f64,
    requests_per_sec: f64,
    latency_ms: Latency,
    /// Metadata: the topics in one response.
    #[serde(skip_serializing_if = "Option::is_none")]
    topics: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_error: Option<String>,
}

/// Runs the request-rate load.
pub async fn run(context: &Context, args: &Args) -> Result<()> {
    if args.connections == 0 || args.in_flight == 0 {
        return Err(Error::Usage(
            "--connections and --in-flight must be at least 1".into(),
        ));
    }
    if args.duration.is_none() && args.num_requests.is_none() {
        return Err(Error::Usage(
            "give --duration, --num-requests, or both".into(),
        ));
    }
    if args.api != Api::Metadata && !args.topic.is_empty() {
        return Err(Error::Usage("--topic is for --api metadata".into()));
    }
    let mut options = context.options.clone();
    options.max_in_flight = args.in_flight;
    let addr = context
        .bootstrap
        .split(',')
        .map(str::trim)
        .find(|a| !a.is_empty())
        .ok_or_else(|| Error::Usage("--bootstrap-server is empty".into()))?;
    let addr = if addr.contains(':') {
        addr.to_string()
    } else {
        format!("{addr}:9092")
    };
    // Connect (and negotiate) everything first: set-up is not part of the measurement.
    let mut connections = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        connections.push(Arc::new(Connection::connect(&addr, &options).await?));
    }
    let version = match args.version {
        Some(v) => v,
        None => connections[0].version(args.api.key())?,
    };
    let metadata = MetadataRequest {
        topics: if args.topic.is_empty() {
            (version == 0).then(Vec::new)
        } else {
            Some(
                args.topic
                    .iter()
                    .map(|name| MetadataRequestTopic {
                        name: Some(name.as_str().into()),
                        ..Default::default()
                    })
                    .collect(),
            )
        },
        // Asking must not create topics.
        allow_auto_topic_creation: version < 4,
        ..Default::default()
    };
    let api_versions = ApiVersionsRequest {
        client_software_name: "gregorctl".into(),
        client_software_version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    };
    // One request before the clock starts: checks the version and sizes the answer.
    let topics = match args.api {
        Api::ApiVersions => {
            let response = connections[0]
                .dispatch_at(&api_versions, version)
                .await?
                .wait()
                .await?;
            Error::check(response.error_code, None, || {
                format!("ApiVersions v{version}")
            })?;
            None
        }
        Api::Metadata => {
            let response = connections[0]
                .dispatch_at(&metadata, version)
                .await?
                .wait()
                .await?;
            Error::check(response.error_code(), None, || {
                format!("Metadata v{version}")
            })?;
            Some(response.topics.len())
        }
    };
    let stats = Arc::new(Stats::new()?);
    let budget = Arc::new(Budget {
        remaining: AtomicU64::new(args.num_requests.unwrap_or(u64::MAX)),
        deadline: args
            .duration
            .map(|s| stats.start + Duration::from_secs_f64(s.max(0.0))),
    });
    let progress = spawn_progress(stats.clone(), "answered");
    let mut tasks = JoinSet::new();
    for connection in connections {
        let (budget, stats) = (budget.clone(), stats.clone());
        match args.api {
            Api::ApiVersions => tasks.spawn(worker(
                connection,
                api_versions.clone(),
                version,
                args.in_flight,
                budget,
                stats,
            )),
            Api::Metadata => tasks.spawn(worker(
                connection,
                metadata.clone(),
                version,
                args.in_flight,
                budget,
                stats,
            )),
        };
    }
    let mut failure = None;
    while let Some(result) = tasks.join_next().await {
        let result =
            result.unwrap_or_else(|e| Err(Error::Protocol(format!("a worker failed: {e}"))));
        if let Err(e) = result {
            failure.get_or_insert(e);
            budget.remaining.store(0, Ordering::Relaxed);
        }
    }
    let elapsed = stats.start.elapsed().as_secs_f64();
    stop_progress(progress)?;
    let requests = stats.records.load(Ordering::Relaxed);
    let summary = Summary {
        mode: "requests",
        api: args.api.key().name(),
        version,
        connections: args.connections,
        in_flight: args.in_flight,
        requests,
        errors: stats.errors.load(Ordering::Relaxed),
        duration_s: round2(elapsed),
        requests_per_sec: round2(if elapsed > 0.0 {
            requests as f64 / elapsed
        } else {
            0.0
        }),
        latency_ms: stats.latency(),
        topics,
        first_error: stats
            .first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone(),
    };
    if output::stdout_is_terminal() {
        output::line(&format!(
            "{} {} requests answered, {:.1} requests/sec, {:.3} ms p50 / {:.3} ms p99 latency, {} errors.",
            summary.requests,
            summary.api,
            summary.requests_per_sec,
            summary.latency_ms.p50,
            summary.latency_ms.p99,
            summary.errors
        ))?;
    }
    output::json(&summary)?;
    if let Some(e) = failure {
        return Err(e);
    }
    if summary.errors > 0 {
        return Err(Error::Protocol(format!(
            "{} requests failed; the first: {}",
            summary.errors,
            summary.first_error.unwrap_or_default()
        )));
    }
    Ok(())
}
