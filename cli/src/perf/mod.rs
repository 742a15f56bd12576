//! `gregorctl perf produce|consume|requests|fetch-sessions|connections`: the load generator, with the flags of Kafka's
//! kafka-producer-perf-test.sh and kafka-consumer-perf-test.sh, a request-rate mode
//! (ApiVersions or Metadata over pipelined connections) and the connection set-up cost.
//!
//! Both report records/s, MB/s (MiB, as Kafka's tools compute it) and latency
//! percentiles from an HDR histogram (microsecond precision): for produce the time from
//! when a record was due to be sent to its acknowledgement, for consume the fetch round
//! trip. On a terminal a progress line updates every second; the last stdout line is
//! always one JSON summary for scripts.

pub mod connections;
pub mod consume;
pub mod produce;
pub mod requests;
pub mod sessions;
pub mod txn;
mod txn_producer;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::client::{Error, Result};
use crate::commands::Context;
use crate::output;

/// The perf subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Produce load (kafka-producer-perf-test.sh).
    Produce(produce::Args),
    /// Consume load (kafka-consumer-perf-test.sh).
    Consume(consume::Args),
    /// Request-rate load: ApiVersions or Metadata over pipelined connections.
    Requests(requests::Args),
    /// Fetch cost with and without fetch sessions (KIP-227): bytes per fetch.
    FetchSessions(sessions::Args),
    /// Connection set-up cost: TCP, TLS, SASL (`--command-config`) and ApiVersions.
    Connections(connections::Args),
}

/// Runs a perf subcommand.
pub async fn run(context: &Context, command: &Command) -> Result<()> {
    match command {
        Command::Produce(args) => produce::run(context, args).await,
        Command::Consume(args) => consume::run(context, args).await,
        Command::Requests(args) => requests::run(context, args).await,
        Command::FetchSessions(args) => sessions::run(context, args).await,
        Command::Connections(args) => connections::run(context, args).await,
    }
}

/// Counters and the latency histogram, shared by every worker.
pub struct Stats {
    /// Records acknowledged (produce) or read (consume).
    pub records: AtomicU64,
    /// Bytes of those records (payload for produce; key and value bytes for consume).
    pub bytes: AtomicU64,
    /// Records that failed.
    pub errors: AtomicU64,
    /// Requests completed.
    pub requests: AtomicU64,
    /// Latency in microseconds.
    histogram: Mutex<Histogram<u64>>,
    /// The first error seen, for the report.
    pub first_error: Mutex<Option<String>>,
    /// When the run started.
    pub start: Instant,
}

impl Stats {
    /// Empty statistics starting now.
    pub fn new() -> Result<Stats> {
        // 1 µs to 10 minutes, 3 significant digits.
        let histogram = Histogram::new_with_bounds(1, 600_000_000, 3)
            .map_err(|e| Error::Usage(format!("cannot create the histogram: {e}")))?;
        Ok(Stats {
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            histogram: Mutex::new(histogram),
            first_error: Mutex::new(None),
            start: Instant::now(),
        })
    }

    /// Records `count` latencies of `latency` each.
    pub fn record_latency(&self, latency: Duration, count: u64) {
        let micros = (latency.as_micros() as u64).clamp(1, 600_000_000);
        let mut histogram = self.histogram.lock().unwrap_or_else(|e| e.into_inner());
        let _ = histogram.record_n(micros, count.max(1));
    }

    /// Records one latency per element of `latencies`.
    pub fn record_latencies(&self, latencies: impl IntoIterator<Item = Duration>) {
        let mut histogram = self.histogram.lock().unwrap_or_else(|e| e.into_inner());
        for latency in latencies {
            let micros = (latency.as_micros() as u64).clamp(1, 600_000_000);
            let _ = histogram.record(micros);
        }
    }

    /// Counts failed records, keeping the first error's text.
    pub fn record_error(&self, count: u64, error: impl FnOnce() -> String) {
        self.errors.fetch_add(count, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(error());
        }
    }

    /// Latency summary in milliseconds.
    pub fn latency(&self) -> Latency {
        let h = self.histogram.lock().unwrap_or_else(|e| e.into_inner());
        // Microseconds to milliseconds with 3 decimals.
        let ms = |micros: f64| micros.round() / 1000.0;
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            avg: ms(h.mean()),
            max: ms(h.max() as f64),
            p50: ms(h.value_at_quantile(0.50) as f64),
            p95: ms(h.value_at_quantile(0.95) as f64),
            p99: ms(h.value_at_quantile(0.99) as f64),
            p999: ms(h.value_at_quantile(0.999) as f64),
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Latency {
    /// Mean.
    pub avg: f64,
    /// Maximum.
    pub max: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
}

/// MiB per second, as Kafka's perf tools compute "MB/sec".
pub fn mib_per_sec(bytes: u64, seconds: f64) -> f64 {
    if seconds <= 0.0 {
        0.0
    } else {
        bytes as f64 / (1024.0 * 1024.0) / seconds
    }
}

/// Rounds to 2 decimals for the report.
pub fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// Prints a progress line every second while `running` and stdout is a terminal; returns
/// the task (abort it when done).
pub fn spawn_progress(
    stats: std::sync::Arc<Stats>,
    label: &'static str,
) -> Option<tokio::task::JoinHandle<()>> {
    if !output::stdout_is_terminal() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut last_records = 0u64;
        let mut last_bytes = 0u64;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        loop {
            tick.tick().await;
            let records = stats.records.load(Ordering::Relaxed);
            let bytes = stats.bytes.load(Ordering::Relaxed);
            let latency = stats.latency();
            let text = format!(
                "\r{records} records {label}, {:.1} records/sec ({:.2} MB/sec), {:.1} ms avg latency, {:.1} ms p99, {} errors   ",
                (records - last_records) as f64,
                mib_per_sec(bytes - last_bytes, 1.0),
                latency.avg,
                latency.p99,
                stats.errors.load(Ordering::Relaxed)
            );
            last_records = records;
            last_bytes = bytes;
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
    }))
}

/// Ends the progress line (a newline after the `\r` updates).
pub fn stop_progress(progress: Option<tokio::task::JoinHandle<()>>) -> Result<()> {
    if let Some(task) = progress {
        task.abort();
        output::line("")?;
    }
    Ok(())
}

/// Parses `--producer-props`/`--consumer-props` items (`key=value`).
pub fn parse_props(items: &[String]) -> Result<Vec<(String, String)>> {
    items
        .iter()
        .flat_map(|item| item.split_whitespace())
        .map(crate::commands::parse_key_value)
        .collect()
}

/// Parses a number in a property, naming the property on failure.
pub fn prop_number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T> {
    value
        .parse()
        .map_err(|_| Error::Usage(format!("{key}={value}: not a number")))
}
