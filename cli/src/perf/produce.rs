//! `gregorctl perf produce`: kafka-producer-perf-test.sh on gregor's client.
//!
//! `--connections` connections to each partition leader, one worker each; a worker builds
//! batches of `batch.size` bytes of `--record-size` records (random uppercase payloads as
//! Kafka's tool makes them, but up to 256 different ones in turn so that compression is
//! not flattered, and null keys) for its partitions in turn and pipelines up to
//! `max.in.flight.requests.per.connection` Produce requests. With `--throughput R` the
//! records are due at an even rate (R split over the workers) and a batch is sent once
//! `linger.ms` has passed since its first record was due (or it is full); latency is
//! measured from when each record was due, so a generator that falls behind shows it in
//! the latency instead of hiding it. With `--throughput -1` batches are always full and
//! sent as fast as the in-flight window allows.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use gregor_protocol::ApiKey;
use gregor_protocol::records::{Compression, NewRecord, RECORD_BATCH_OVERHEAD, RecordBatchBuilder};
use serde::Serialize;
use tokio::task::JoinSet;

use super::{
    Latency, Stats, mib_per_sec, parse_props, prop_number, round2, spawn_progress, stop_progress,
};
use crate::client::cluster::TopicInfo;
use crate::client::{Connection, Error, Result};
use crate::commands::Context;
use crate::commands::produce::{
    now_ms, parse_acks, parse_compression, produce_request, produce_results,
};
use crate::errors;
use crate::output;

/// Arguments (Kafka's names where it has them).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The topic (it must exist).
    #[arg(long)]
    pub topic: String,
    /// Records to send; with --duration, whichever ends first.
    #[arg(long)]
    pub num_records: Option<u64>,
    /// Seconds to run; with --num-records, whichever ends first.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Bytes per record value.
    #[arg(long, default_value_t = 100)]
    pub record_size: usize,
    /// Target records/s over all connections; -1 for as fast as possible.
    #[arg(long, default_value_t = -1.0, allow_negative_numbers = true)]
    pub throughput: f64,
    /// Producer properties: acks, batch.size, linger.ms, compression.type,
    /// max.in.flight.requests.per.connection (KEY=VALUE, space or repeat separated).
    #[arg(long, num_args = 1.., value_name = "KEY=VALUE")]
    pub producer_props: Vec<String>,
    /// Acks: all/-1, 1 or 0 (overrides --producer-props).
    #[arg(long, allow_hyphen_values = true)]
    pub acks: Option<String>,
    /// Batch size in bytes, uncompressed (batch.size).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Milliseconds a batch waits for more records (linger.ms).
    #[arg(long)]
    pub linger_ms: Option<u64>,
    /// none, gzip, snappy, lz4 or zstd (compression.type).
    #[arg(long)]
    pub compression: Option<String>,
    /// Connections to each partition leader (one worker each).
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// Produce requests in flight per connection.
    #[arg(long)]
    pub max_in_flight: Option<usize>,
    /// An idempotent producer (InitProducerId, sequence numbers), as Kafka's producer with
    /// enable.idempotence=true; one producer on one connection per partition leader.
    #[arg(long)]
    pub idempotent: bool,
    /// Produce in transactions with this transactional.id (implies --idempotent): see
    /// `perf::txn`.
    #[arg(long, value_name = "ID")]
    pub transactional_id: Option<String>,
    /// Records per transaction (with --transactional-id).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub transaction_records: u64,
    /// transaction.timeout.ms sent in InitProducerId (Kafka's producer default).
    #[arg(long, value_name = "MS", default_value_t = 60_000)]
    pub transaction_timeout_ms: i32,
    /// Use at most this transaction version (KIP-890): 0 or 1 sends AddPartitionsToTxn as
    /// producers before Kafka 4.0 do, 2 adds partitions through Produce v12+; the default
    /// is what the broker finalizes, as Kafka 4's producer does.
    #[arg(long, value_name = "N")]
    pub transaction_version: Option<i16>,
}

/// The producer settings in effect.
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    /// Bytes per record value.
    pub record_size: usize,
    /// batch.size.
    pub batch_size: usize,
    /// linger.ms.
    pub linger_ms: u64,
    /// compression.type.
    pub compression: String,
    /// acks.
    pub acks: i16,
    /// Connections per leader.
    pub connections: usize,
    /// max.in.flight.requests.per.connection.
    pub max_in_flight: usize,
    /// Target records/s (-1: unthrottled).
    pub throughput: f64,
    /// Records per batch that batch.size allows.
    pub records_per_batch: usize,
}

/// Flags over --producer-props over Kafka 4's producer defaults.
pub(super) fn settings(args: &Args) -> Result<(Settings, Compression)> {
    let mut acks = "all".to_string();
    let mut batch_size = 16_384usize;
    let mut linger_ms = 5u64;
    let mut compression = "none".to_string();
    let mut max_in_flight = 5usize;
    for (key, value) in parse_props(&args.producer_props)? {
        match key.as_str() {
            "acks" => acks = value,
            "batch.size" => batch_size = prop_number(&key, &value)?,
            "linger.ms" => linger_ms = prop_number(&key, &value)?,
            "compression.type" => compression = value,
            "max.in.flight.requests.per.connection" => max_in_flight = prop_number(&key, &value)?,
            // Accepted for compatibility with Kafka's tool; the flag decides.
            "bootstrap.servers" | "client.id" | "enable.idempotence" | "request.timeout.ms" => {}
            other => eprintln!("perf produce: producer property {other:?} ignored"),
        }
    }
    let acks = parse_acks(args.acks.as_deref().unwrap_or(&acks))?;
    let batch_size = args.batch_size.unwrap_or(batch_size);
    let linger_ms = args.linger_ms.unwrap_or(linger_ms);
    let compression_name = args.compression.clone().unwrap_or(compression);
    let codec = parse_compression(&compression_name)?;
    let max_in_flight = args.max_in_flight.unwrap_or(max_in_flight).max(1);
    if args.num_records.is_none() && args.duration.is_none() {
        return Err(Error::Usage(
            "give --num-records, --duration, or both".into(),
        ));
    }
    if args.connections == 0 {
        return Err(Error::Usage("--connections must be at least 1".into()));
    }
    if args.throughput == 0.0 {
        return Err(Error::Usage(
            "--throughput must be positive, or -1 for unthrottled".into(),
        ));
    }
    // A record's framing around its value: length, attributes, timestamp and offset
    // deltas, null key, value length, header count (about 10 bytes).
    let per_record = args.record_size + 10;
    let records_per_batch = (batch_size.saturating_sub(RECORD_BATCH_OVERHEAD) / per_record).max(1);
    Ok((
        Settings {
            record_size: args.record_size,
            batch_size,
            linger_ms,
            compression: codec.to_string(),
            acks,
            connections: args.connections,
            max_in_flight,
            throughput: if args.throughput < 0.0 {
                -1.0
            } else {
                args.throughput
            },
            records_per_batch,
        },
        codec,
    ))
}

/// Records left to send, shared by the workers.
pub(super) struct Budget {
    pub(super) remaining: AtomicU64,
    pub(super) deadline: Option<Instant>,
}

impl Budget {
    /// Claims up to `n` records; 0 when the run is over.
    pub(super) fn claim(&self, n: u64) -> u64 {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return 0;
        }
        let mut current = self.remaining.load(Ordering::Relaxed);
        loop {
            let take = current.min(n);
            if take == 0 {
                return 0;
            }
            match self.remaining.compare_exchange_weak(
                current,
                current - take,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return take,
                Err(actual) => current = actual,
            }
        }
    }
}

/// When the records of one batch were due: `first`, then every `step`.
#[derive(Clone, Copy)]
struct Due {
    first: Instant,
    step: Duration,
    count: u64,
}

impl Due {
    fn record(&self, stats: &Stats, done: Instant) {
        if self.step.is_zero() {
            stats.record_latency(done.saturating_duration_since(self.first), self.count);
        } else {
            stats.record_latencies((0..self.count).map(|i| {
                let due = self.first + self.step.mul_f64(i as f64);
                done.saturating_duration_since(due)
            }));
        }
    }
}

/// Random payloads of uppercase letters, as Kafka's tool makes its one payload; several
/// different ones (up to 256, at most 16 MiB in all) cycle over the records so that
/// compression sees realistic data rather than one record repeated.
pub(super) fn payloads(size: usize) -> Vec<Bytes> {
    let count = (16 * 1024 * 1024 / size.max(1)).clamp(1, 256);
    let mut state = 0x2545_f491_4f6c_dd1du64 ^ size as u64;
    (0..count)
        .map(|_| {
            (0..size)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    b'A' + (state % 26) as u8
                })
                .collect::<Vec<u8>>()
                .into()
        })
        .collect()
}

/// What one worker needs.
struct Worker {
    connection: Arc<Connection>,
    version: i16,
    topic: Arc<TopicInfo>,
    partitions: Vec<i32>,
    settings: Settings,
    codec: Compression,
    /// Records/s for this worker, `None` unthrottled.
    rate: Option<f64>,
    payloads: Arc<Vec<Bytes>>,
    budget: Arc<Budget>,
    stats: Arc<Stats>,
    timeout_ms: i32,
}

impl Worker {
    async fn run(self) -> Result<()> {
        let start = self.stats.start;
        let linger = Duration::from_millis(self.settings.linger_ms);
        let capacity = self.settings.records_per_batch as u64;
        let mut issued = 0u64;
        let mut turn = 0usize;
        let mut inflight = JoinSet::new();
        loop {
            let due = match self.rate {
                None => {
                    let n = self.budget.claim(capacity);
                    if n == 0 {
                        break;
                    }
                    Due {
                        first: Instant::now(),
                        step: Duration::ZERO,
                        count: n,
                    }
                }
                Some(rate) => {
                    let step = Duration::from_secs_f64(1.0 / rate);
                    let first = start + step.mul_f64(issued as f64);
                    if self.budget.deadline.is_some_and(|d| first >= d) {
                        break;
                    }
                    tokio::time::sleep_until(first.into()).await;
                    // Every record due before the linger ends joins this batch.
                    let linger_end = (first + linger).saturating_duration_since(start);
                    let by_linger = ((linger_end.as_secs_f64() * rate).floor() as u64)
                        .saturating_sub(issued)
                        .max(1);
                    let n = self.budget.claim(by_linger.min(capacity));
                    if n == 0 {
                        break;
                    }
                    let last = start + step.mul_f64((issued + n - 1) as f64);
                    tokio::time::sleep_until(last.into()).await;
                    Due {
                        first,
                        step,
                        count: n,
                    }
                }
            };
            issued += due.count;
            let partition = self.partitions[turn % self.partitions.len()];
            turn += 1;
            let batch = self.batch(due.count, issued)?;
            let request = produce_request(
                &self.topic,
                self.settings.acks,
                self.timeout_ms,
                vec![(partition, batch)],
            );
            let bytes = due.count * self.settings.record_size as u64;
            if self.settings.acks == 0 {
                self.connection
                    .send_without_response(&request, self.version)
                    .await?;
                due.record(&self.stats, Instant::now());
                self.stats.records.fetch_add(due.count, Ordering::Relaxed);
                self.stats.bytes.fetch_add(bytes, Ordering::Relaxed);
                self.stats.requests.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            // Waits for a free in-flight slot: the back-pressure of the run.
            let pending = self.connection.dispatch_at(&request, self.version).await?;
            let stats = self.stats.clone();
            let topic = self.topic.name.clone();
            inflight.spawn(async move {
                let response = pending.wait().await;
                let done = Instant::now();
                stats.requests.fetch_add(1, Ordering::Relaxed);
                match response {
                    Ok(response) => {
                        let results = produce_results(&response);
                        if results.is_empty() {
                            stats.record_error(due.count, || {
                                "a produce response without the partition".into()
                            });
                        }
                        for (p, result) in results {
                            match result {
                                Ok(_) => {
                                    due.record(&stats, done);
                                    stats.records.fetch_add(due.count, Ordering::Relaxed);
                                    stats.bytes.fetch_add(bytes, Ordering::Relaxed);
                                }
                                Err((code, message)) => stats.record_error(due.count, || {
                                    format!(
                                        "produce to {topic}-{p}: {}",
                                        errors::describe(code, message.as_deref())
                                    )
                                }),
                            }
                        }
                    }
                    Err(e) => stats.record_error(due.count, || e.to_string()),
                }
            });
            while inflight.try_join_next().is_some() {}
        }
        while inflight.join_next().await.is_some() {}
        Ok(())
    }

    /// A batch of `count` records; `first` picks where in the payload cycle it starts.
    fn batch(&self, count: u64, first: u64) -> Result<Bytes> {
        let timestamp = now_ms();
        let mut out = BytesMut::with_capacity(
            RECORD_BATCH_OVERHEAD + count as usize * (self.settings.record_size + 10),
        );
        let mut writer = RecordBatchBuilder::new()
            .compression(self.codec)
            .writer(&mut out);
        for i in 0..count {
            let payload = &self.payloads[((first + i) % self.payloads.len() as u64) as usize];
            let record = NewRecord::new(timestamp, None, Some(payload.clone()));
            writer
                .append(&record)
                .map_err(|e| Error::Usage(format!("cannot encode a batch: {e}")))?;
        }
        writer
            .finish()
            .map_err(|e| Error::Usage(format!("cannot encode a batch: {e}")))?;
        Ok(out.freeze())
    }
}

/// The final report (the last stdout line, as JSON).
#[derive(Serialize)]
pub struct Summary {
    /// "produce".
    pub mode: &'static str,
    /// The topic.
    pub topic: String,
    /// Records acknowledged (sent, for acks=0).
    pub records: u64,
    /// Records that failed.
    pub errors: u64,
    /// Produce requests completed.
    pub requests: u64,
    /// Value bytes acknowledged.
    pub bytes: u64,
    /// Seconds from the start to the last acknowledgement.
    pub duration_s: f64,
    /// Records per second.
    pub records_per_sec: f64,
    /// MiB per second of values.
    pub mb_per_sec: f64,
    /// Acknowledgement latency, ms.
    pub latency_ms: Latency,
    /// The settings of the run.
    pub settings: Settings,
    /// The first error, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

/// Runs the producer load.
pub async fn run(context: &Context, args: &Args) -> Result<()> {
    if args.idempotent || args.transactional_id.is_some() {
        return super::txn::run(context, args).await;
    }
    let (settings, codec) = settings(args)?;
    let mut options = context.options.clone();
    options.max_in_flight = settings.max_in_flight;
    let cluster = crate::client::Cluster::connect(&context.bootstrap, options).await?;
    cluster.any().version(ApiKey::Produce)?;
    let topic = Arc::new(cluster.topic_for_writing(&args.topic).await?);
    let all: Vec<i32> = topic.partitions.keys().copied().collect();
    if all.is_empty() {
        return Err(Error::Protocol(format!(
            "topic {:?} has no partitions",
            args.topic
        )));
    }
    let by_leader = cluster.partitions_by_leader(&topic.name, &all).await?;
    let workers = by_leader.len() * settings.connections;
    let payloads = Arc::new(payloads(settings.record_size));
    let timeout_ms = context
        .options
        .request_timeout
        .as_millis()
        .min(i32::MAX as u128) as i32;
    // Connect everything first, so connection set-up is not part of the measurement.
    let mut prepared = Vec::new();
    for (leader, partitions) in &by_leader {
        for c in 0..settings.connections {
            let connection = Arc::new(cluster.new_connection(*leader).await?);
            let version = connection.version(ApiKey::Produce)?;
            let mine: Vec<i32> = partitions
                .iter()
                .enumerate()
                .filter(|(i, _)| i % settings.connections == c)
                .map(|(_, p)| *p)
                .collect();
            let mine = if mine.is_empty() {
                partitions.clone()
            } else {
                mine
            };
            prepared.push((connection, version, mine));
        }
    }
    let stats = Arc::new(Stats::new()?);
    let budget = Arc::new(Budget {
        remaining: AtomicU64::new(args.num_records.unwrap_or(u64::MAX)),
        deadline: args
            .duration
            .map(|s| stats.start + Duration::from_secs_f64(s.max(0.0))),
    });
    let rate = (settings.throughput > 0.0).then(|| settings.throughput / workers as f64);
    let progress = spawn_progress(stats.clone(), "sent");
    let mut tasks = JoinSet::new();
    for (connection, version, partitions) in prepared {
        let worker = Worker {
            connection,
            version,
            topic: topic.clone(),
            partitions,
            settings: settings.clone(),
            codec,
            rate,
            payloads: payloads.clone(),
            budget: budget.clone(),
            stats: stats.clone(),
            timeout_ms,
        };
        tasks.spawn(worker.run());
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
    let records = stats.records.load(Ordering::Relaxed);
    let bytes = stats.bytes.load(Ordering::Relaxed);
    let errors = stats.errors.load(Ordering::Relaxed);
    let summary = Summary {
        mode: "produce",
        topic: args.topic.clone(),
        records,
        errors,
        requests: stats.requests.load(Ordering::Relaxed),
        bytes,
        duration_s: round2(elapsed),
        records_per_sec: round2(if elapsed > 0.0 {
            records as f64 / elapsed
        } else {
            0.0
        }),
        mb_per_sec: round2(mib_per_sec(bytes, elapsed)),
        latency_ms: stats.latency(),
        settings,
        first_error: stats
            .first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone(),
    };
    if output::stdout_is_terminal() {
        let l = summary.latency_ms;
        output::line(&format!(
            "{} records sent, {:.1} records/sec ({:.2} MB/sec), {:.2} ms avg latency, {:.2} ms max latency, \
             {:.2} ms 50th, {:.2} ms 95th, {:.2} ms 99th, {:.2} ms 99.9th.",
            summary.records,
            summary.records_per_sec,
            summary.mb_per_sec,
            l.avg,
            l.max,
            l.p50,
            l.p95,
            l.p99,
            l.p999
        ))?;
    }
    output::json(&summary)?;
    if let Some(e) = failure {
        return Err(e);
    }
    if errors > 0 {
        return Err(Error::Protocol(format!(
            "{errors} records failed; the first: {}",
            summary.first_error.unwrap_or_default()
        )));
    }
    Ok(())
}
