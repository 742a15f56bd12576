//! `gregorctl perf consume`: kafka-consumer-perf-test.sh on gregor's client.
//!
//! `--connections` connections to each partition leader, one worker each with a share of
//! the leader's partitions, one Fetch in flight per worker (the next offsets depend on the
//! answer). Runs until `--num-records` are read, `--duration` passes, or, with neither,
//! until every partition reaches the end offset it had at the start; and stops after
//! `--timeout-ms` without a record. Latency is the fetch round trip.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gregor_protocol::ApiKey;
use gregor_protocol::records::{Batch, RecordBatches};
use serde::Serialize;
use tokio::task::JoinSet;

use super::{Latency, Stats, mib_per_sec, round2, spawn_progress, stop_progress};
use crate::client::cluster::TopicInfo;
use crate::client::{Connection, Error, Result};
use crate::commands::{Context, EARLIEST, LATEST, fetch_partitions, fetch_request, list_offsets};
use crate::output;

/// Arguments (Kafka's names where it has them).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The topic.
    #[arg(long)]
    pub topic: String,
    /// Records to read (Kafka's --messages); with --duration, whichever ends first.
    #[arg(long, alias = "messages")]
    pub num_records: Option<u64>,
    /// Seconds to run.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Most bytes per partition per fetch.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub fetch_size: i32,
    /// Longest time the broker may hold a fetch waiting for data, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub max_wait_ms: i32,
    /// Start at the latest offsets instead of the earliest.
    #[arg(long)]
    pub from_latest: bool,
    /// Stop after this many milliseconds without a record.
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// Connections to each partition leader (one worker each).
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
}

/// Shared stop conditions.
struct Limits {
    num_records: u64,
    deadline: Option<Instant>,
    idle: Duration,
    last_record: std::sync::Mutex<Instant>,
}

impl Limits {
    fn done(&self, stats: &Stats) -> bool {
        stats.records.load(Ordering::Relaxed) >= self.num_records
            || self.deadline.is_some_and(|d| Instant::now() >= d)
            || self
                .last_record
                .lock()
                .map(|t| t.elapsed() >= self.idle)
                .unwrap_or(true)
    }

    fn touched(&self) {
        if let Ok(mut t) = self.last_record.lock() {
            *t = Instant::now();
        }
    }
}

/// Counts the records at or after `from`, their key and value bytes, and the next offset.
pub(super) fn count_records(records: bytes::Bytes, from: i64) -> Result<(u64, u64, i64)> {
    let mut count = 0;
    let mut bytes = 0;
    let mut next = from;
    for batch in RecordBatches::new(records) {
        let batch = batch.map_err(|e| Error::Protocol(format!("corrupt records: {e}")))?;
        match batch {
            Batch::V2(batch) => {
                next = next.max(batch.next_offset());
                if batch.is_control() {
                    continue;
                }
                let section = batch
                    .section()
                    .map_err(|e| Error::Protocol(format!("corrupt records: {e}")))?;
                for record in section.iter() {
                    let record =
                        record.map_err(|e| Error::Protocol(format!("corrupt records: {e}")))?;
                    if record.offset >= from {
                        count += 1;
                        bytes += record.key.map_or(0, <[u8]>::len) as u64
                            + record.value.map_or(0, <[u8]>::len) as u64;
                    }
                }
            }
            Batch::Legacy(message) => {
                for inner in message
                    .messages()
                    .map_err(|e| Error::Protocol(format!("corrupt records: {e}")))?
                {
                    next = next.max(inner.offset + 1);
                    if inner.offset >= from {
                        count += 1;
                        bytes += inner.key.as_ref().map_or(0, |k| k.len()) as u64
                            + inner.value.as_ref().map_or(0, |v| v.len()) as u64;
                    }
                }
            }
        }
    }
    Ok((count, bytes, next))
}

struct Worker {
    connection: Arc<Connection>,
    topic: Arc<TopicInfo>,
    /// Partition to (next offset, end offset when reading to the end).
    positions: BTreeMap<i32, (i64, Option<i64>)>,
    args_max_wait: i32,
    fetch_size: i32,
    stats: Arc<Stats>,
    limits: Arc<Limits>,
    /// Bytes of the `records` fields received (whole batches, as on the wire).
    batch_bytes: Arc<AtomicU64>,
}

impl Worker {
    async fn run(mut self) -> Result<()> {
        loop {
            if self.limits.done(&self.stats) {
                return Ok(());
            }
            let wanted: Vec<(i32, i64)> = self
                .positions
                .iter()
                .filter(|(_, (next, end))| end.is_none_or(|end| *next < end))
                .map(|(p, (next, _))| (*p, *next))
                .collect();
            if wanted.is_empty() {
                return Ok(());
            }
            let request = fetch_request(
                &self.topic,
                &wanted,
                self.args_max_wait,
                1,
                i32::MAX,
                self.fetch_size,
            );
            let sent = Instant::now();
            let response = self
                .connection
                .dispatch(&request)
                .await?
                .extend_timeout(Duration::from_millis(self.args_max_wait.max(0) as u64))
                .wait()
                .await?;
            let elapsed = sent.elapsed();
            Error::check(response.error_code, None, || {
                format!("fetch {}", self.topic.name)
            })?;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            self.stats.record_latency(elapsed, 1);
            for (partition, data) in fetch_partitions(&response, &self.topic) {
                Error::check(data.error_code, None, || {
                    format!("fetch {}-{partition}", self.topic.name)
                })?;
                let Some((from, end)) = self.positions.get(&partition).copied() else {
                    continue;
                };
                let records = data.records.clone().unwrap_or_default();
                self.batch_bytes
                    .fetch_add(records.len() as u64, Ordering::Relaxed);
                let (count, bytes, next) = count_records(records, from)?;
                if count > 0 {
                    self.stats.records.fetch_add(count, Ordering::Relaxed);
                    self.stats.bytes.fetch_add(bytes, Ordering::Relaxed);
                    self.limits.touched();
                }
                self.positions.insert(partition, (next.max(from), end));
            }
        }
    }
}

/// The final report (the last stdout line, as JSON).
#[derive(Serialize)]
struct Summary {
    mode: &'static str,
    topic: String,
    records: u64,
    bytes: u64,
    fetches: u64,
    duration_s: f64,
    records_per_sec: f64,
    mb_per_sec: f64,
    /// Bytes of record batches received (the `records` fields: framing, headers and values).
    batch_bytes: u64,
    /// MiB per second of record batches.
    batch_mb_per_sec: f64,
    fetch_latency_ms: Latency,
    connections: usize,
    fetch_size: i32,
}

/// Runs the consumer load.
pub async fn run(context: &Context, args: &Args) -> Result<()> {
    if args.connections == 0 {
        return Err(Error::Usage("--connections must be at least 1".into()));
    }
    let cluster = context.cluster().await?;
    cluster.any().version(ApiKey::Fetch)?;
    let topic = Arc::new(cluster.topic(&args.topic, false).await?);
    let all: Vec<i32> = topic.partitions.keys().copied().collect();
    let start = list_offsets(
        &cluster,
        &topic,
        &all,
        if args.from_latest { LATEST } else { EARLIEST },
    )
    .await?;
    // Without a count or a duration, read what is there now and stop.
    let ends = if args.num_records.is_none() && args.duration.is_none() {
        Some(list_offsets(&cluster, &topic, &all, LATEST).await?)
    } else {
        None
    };
    let by_leader = cluster.partitions_by_leader(&topic.name, &all).await?;
    let mut prepared = Vec::new();
    for (leader, partitions) in &by_leader {
        for c in 0..args.connections {
            let mine: BTreeMap<i32, (i64, Option<i64>)> = partitions
                .iter()
                .enumerate()
                .filter(|(i, _)| i % args.connections == c)
                .map(|(_, p)| {
                    let from = start.get(p).map_or(0, |o| o.offset);
                    let end = ends.as_ref().map(|e| e.get(p).map_or(from, |o| o.offset));
                    (*p, (from, end))
                })
                .collect();
            if mine.is_empty() {
                continue;
            }
            prepared.push((Arc::new(cluster.new_connection(*leader).await?), mine));
        }
    }
    let stats = Arc::new(Stats::new()?);
    let limits = Arc::new(Limits {
        num_records: args.num_records.unwrap_or(u64::MAX),
        deadline: args
            .duration
            .map(|s| stats.start + Duration::from_secs_f64(s.max(0.0))),
        idle: Duration::from_millis(args.timeout_ms),
        last_record: std::sync::Mutex::new(Instant::now()),
    });
    let batch_bytes = Arc::new(AtomicU64::new(0));
    let progress = spawn_progress(stats.clone(), "read");
    let mut tasks = JoinSet::new();
    for (connection, positions) in prepared {
        tasks.spawn(
            Worker {
                connection,
                topic: topic.clone(),
                positions,
                args_max_wait: args.max_wait_ms,
                fetch_size: args.fetch_size,
                stats: stats.clone(),
                limits: limits.clone(),
                batch_bytes: batch_bytes.clone(),
            }
            .run(),
        );
    }
    let mut failure = None;
    while let Some(result) = tasks.join_next().await {
        let result =
            result.unwrap_or_else(|e| Err(Error::Protocol(format!("a worker failed: {e}"))));
        if let Err(e) = result {
            failure.get_or_insert(e);
            tasks.abort_all();
        }
    }
    let elapsed = stats.start.elapsed().as_secs_f64();
    stop_progress(progress)?;
    let records = stats.records.load(Ordering::Relaxed);
    let bytes = stats.bytes.load(Ordering::Relaxed);
    let summary = Summary {
        mode: "consume",
        topic: args.topic.clone(),
        records,
        bytes,
        fetches: stats.requests.load(Ordering::Relaxed),
        duration_s: round2(elapsed),
        records_per_sec: round2(if elapsed > 0.0 {
            records as f64 / elapsed
        } else {
            0.0
        }),
        mb_per_sec: round2(mib_per_sec(bytes, elapsed)),
        batch_bytes: batch_bytes.load(Ordering::Relaxed),
        batch_mb_per_sec: round2(mib_per_sec(batch_bytes.load(Ordering::Relaxed), elapsed)),
        fetch_latency_ms: stats.latency(),
        connections: args.connections,
        fetch_size: args.fetch_size,
    };
    if output::stdout_is_terminal() {
        output::line(&format!(
            "{} records read, {:.1} records/sec ({:.2} MB/sec), {} fetches, {:.2} ms p50 / {:.2} ms p99 fetch latency.",
            summary.records,
            summary.records_per_sec,
            summary.mb_per_sec,
            summary.fetches,
            summary.fetch_latency_ms.p50,
            summary.fetch_latency_ms.p99
        ))?;
    }
    output::json(&summary)?;
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
