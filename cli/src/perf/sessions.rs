//! `gregorctl perf fetch-sessions`: what a fetch costs with and without a fetch session
//! (KIP-227) for a topic of many partitions, counted in bytes on the wire.
//!
//! One connection to the topic's leader (every partition must be on one broker: a session
//! lives on one broker), `--fetches` Fetch requests one after another, every partition
//! from the end offset it had at the start, with `max_wait_ms` 0 so an idle fetch returns
//! at once:
//!
//! * `--session none`: sessionless, as before KIP-227 (session id 0, epoch -1): every
//!   request lists every partition and every response answers for every partition.
//! * `--session incremental`: a full fetch at epoch 0 opens a session, then epochs 1, 2,
//!   ... on it list only the partitions whose fetch offset moved since the last request
//!   (Kafka's `FetchSessionHandler`), and the broker answers only for the partitions with
//!   something new. A broker that declines a session (id 0 in the answer) or forgets it
//!   (FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH) gets a full fetch at epoch
//!   0 again, as the Java consumer does; the summary counts those.
//!
//! `--trickle-partitions K` makes it a trickle: before each fetch, one Produce (acks=1, on
//! a second connection) adds `--trickle-records` records to each of K partitions, taken in
//! turn over the topic, so every fetch has K partitions with new data. The summary counts
//! request and response frames (size prefix, header, body) per fetch, the records read
//! back (which must be every record produced), and the fetch round trip.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use bytes::BytesMut;
use gregor_protocol::ApiKey;
use gregor_protocol::error_code::{FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH};
use gregor_protocol::messages::fetch_request::FetchRequest;
use gregor_protocol::records::{NewRecord, RecordBatchBuilder};
use serde::Serialize;

use super::consume::count_records;
use super::{Latency, Stats, round2};
use crate::client::{Error, Result};
use crate::commands::produce::{now_ms, produce_request, produce_results};
use crate::commands::{Context, LATEST, fetch_partitions, fetch_request, list_offsets};
use crate::output;

/// Which kind of fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Session {
    /// Session id 0, epoch -1: every partition in every request and response.
    None,
    /// A session: one full fetch, then incremental fetches.
    Incremental,
}

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The topic (all its partitions are fetched; they must share one leader).
    #[arg(long)]
    pub topic: String,
    /// Fetch requests to send.
    #[arg(long, default_value_t = 1000)]
    pub fetches: u64,
    /// Sessionless or incremental fetches.
    #[arg(long, value_enum, default_value_t = Session::Incremental)]
    pub session: Session,
    /// Partitions that get new records before each fetch (0: idle).
    #[arg(long, default_value_t = 0)]
    pub trickle_partitions: usize,
    /// Records added to each trickle partition before each fetch.
    #[arg(long, default_value_t = 1)]
    pub trickle_records: u64,
    /// Bytes per trickle record value.
    #[arg(long, default_value_t = 100)]
    pub record_size: usize,
    /// Most bytes per partition per fetch (max.partition.fetch.bytes).
    #[arg(long, default_value_t = 1024 * 1024)]
    pub fetch_size: i32,
}

/// The final report (the last stdout line, as JSON).
#[derive(Serialize)]
struct Summary {
    mode: &'static str,
    session: Session,
    topic: String,
    partitions: usize,
    /// Fetch version used.
    fetch_version: i16,
    fetches: u64,
    /// Fetches sent on a session at an epoch above 0 (the incremental ones).
    incremental_fetches: u64,
    /// Full fetches sent (sessionless, or epoch 0 opening a session).
    full_fetches: u64,
    /// The last session id the broker gave (0: none).
    session_id: i32,
    /// Times a session had to be opened again (declined, evicted or an epoch error).
    session_resets: u64,
    request_bytes: u64,
    response_bytes: u64,
    request_bytes_per_fetch: f64,
    response_bytes_per_fetch: f64,
    /// Bytes of the first response (the full one in both modes).
    first_response_bytes: u64,
    /// Response bytes per fetch after the first.
    later_response_bytes_per_fetch: f64,
    /// Partitions listed in requests, per fetch.
    request_partitions_per_fetch: f64,
    /// Partitions answered in responses, per fetch.
    response_partitions_per_fetch: f64,
    /// Records read back.
    records: u64,
    /// Records the trickle produced.
    records_produced: u64,
    trickle_partitions: usize,
    duration_s: f64,
    fetches_per_sec: f64,
    fetch_latency_ms: Latency,
}

/// Runs the fetch-session load.
pub async fn run(context: &Context, args: &Args) -> Result<()> {
    if args.fetches == 0 {
        return Err(Error::Usage("--fetches must be at least 1".into()));
    }
    let cluster = context.cluster().await?;
    let topic = cluster.topic(&args.topic, false).await?;
    let all: Vec<i32> = topic.partitions.keys().copied().collect();
    if args.trickle_partitions > all.len() {
        return Err(Error::Usage(format!(
            "--trickle-partitions {} is more than the topic's {} partitions",
            args.trickle_partitions,
            all.len()
        )));
    }
    let by_leader = cluster.partitions_by_leader(&topic.name, &all).await?;
    let leader = match by_leader.keys().collect::<Vec<_>>()[..] {
        [leader] => *leader,
        _ => {
            return Err(Error::Usage(format!(
                "the partitions of {:?} have {} leaders; a fetch session lives on one broker, so fetch-sessions needs one",
                topic.name,
                by_leader.len()
            )));
        }
    };
    let fetcher = cluster.new_connection(leader).await?;
    let fetch_version = fetcher.version(ApiKey::Fetch)?;
    if fetch_version < 7 {
        return Err(Error::Unsupported(format!(
            "fetch sessions need Fetch v7 (KIP-227); the broker at {} speaks v{fetch_version}",
            fetcher.addr()
        )));
    }
    let producer = if args.trickle_partitions > 0 {
        let connection = cluster.new_connection(leader).await?;
        let version = connection.version(ApiKey::Produce)?;
        Some((connection, version))
    } else {
        None
    };
    let mut positions: BTreeMap<i32, i64> = list_offsets(&cluster, &topic, &all, LATEST)
        .await?
        .into_iter()
        .map(|(p, o)| (p, o.offset))
        .collect();
    let stats = Stats::new()?;
    let payload = bytes::Bytes::from(vec![b'x'; args.record_size]);
    let timeout_ms = context
        .options
        .request_timeout
        .as_millis()
        .min(i32::MAX as u128) as i32;

    let mut session_id = 0i32;
    // The next epoch to send on the session: 0 opens one.
    let mut epoch = 0i32;
    // Partitions whose fetch offset moved since the last request on the session.
    let mut moved: BTreeSet<i32> = BTreeSet::new();
    let mut s = Counters::default();
    let mut trickle_turn = 0usize;
    for i in 0..args.fetches {
        if let Some((connection, version)) = &producer {
            let mut batches = Vec::new();
            for _ in 0..args.trickle_partitions {
                let partition = all[trickle_turn % all.len()];
                trickle_turn += 1;
                let mut out = BytesMut::new();
                let mut writer = RecordBatchBuilder::new().writer(&mut out);
                for _ in 0..args.trickle_records {
                    writer
                        .append(&NewRecord::new(now_ms(), None, Some(payload.clone())))
                        .map_err(|e| Error::Usage(format!("cannot encode a batch: {e}")))?;
                }
                writer
                    .finish()
                    .map_err(|e| Error::Usage(format!("cannot encode a batch: {e}")))?;
                batches.push((partition, out.freeze()));
            }
            let request = produce_request(&topic, 1, timeout_ms, batches);
            let response = connection
                .dispatch_at(&request, *version)
                .await?
                .wait()
                .await?;
            for (p, result) in produce_results(&response) {
                if let Err((code, message)) = result {
                    return Err(Error::Kafka {
                        context: format!("trickle produce to {}-{p}", topic.name),
                        code,
                        message,
                    });
                }
            }
            s.produced += args.trickle_partitions as u64 * args.trickle_records;
        }
        let incremental = args.session == Session::Incremental && session_id != 0 && epoch > 0;
        let listed: Vec<(i32, i64)> = if incremental {
            moved.iter().map(|p| (*p, positions[p])).collect()
        } else {
            positions.iter().map(|(p, o)| (*p, *o)).collect()
        };
        let mut request: FetchRequest =
            fetch_request(&topic, &listed, 0, 1, i32::MAX, args.fetch_size);
        if incremental && listed.is_empty() {
            request.topics.clear();
        }
        match args.session {
            Session::None => {
                request.session_id = 0;
                request.session_epoch = -1;
            }
            Session::Incremental => {
                request.session_id = if epoch == 0 { 0 } else { session_id };
                request.session_epoch = epoch;
            }
        }
        s.request_partitions += listed.len() as u64;
        if incremental {
            s.incremental += 1;
        } else {
            s.full += 1;
        }
        let sent = Instant::now();
        let pending = fetcher.dispatch_at(&request, fetch_version).await?;
        s.request_bytes += pending.request_bytes() as u64;
        let (response, size) = pending.wait_sized().await?;
        stats.record_latency(sent.elapsed(), 1);
        s.response_bytes += size as u64;
        if i == 0 {
            s.first_response_bytes = size as u64;
        }
        if args.session == Session::Incremental
            && matches!(
                response.error_code,
                FETCH_SESSION_ID_NOT_FOUND | INVALID_FETCH_SESSION_EPOCH
            )
        {
            // Kafka's FetchSessionHandler: start over with a full fetch.
            s.resets += 1;
            session_id = 0;
            epoch = 0;
            continue;
        }
        Error::check(response.error_code, None, || {
            format!("fetch {} (fetch {})", topic.name, i + 1)
        })?;
        moved.clear();
        for (partition, data) in fetch_partitions(&response, &topic) {
            s.response_partitions += 1;
            Error::check(data.error_code, None, || {
                format!("fetch {}-{partition}", topic.name)
            })?;
            let Some(from) = positions.get(&partition).copied() else {
                continue;
            };
            let records = data.records.clone().unwrap_or_default();
            let (count, _, next) = count_records(records, from)?;
            s.records += count;
            if next > from {
                positions.insert(partition, next);
                moved.insert(partition);
            }
        }
        if args.session == Session::Incremental {
            if epoch == 0 {
                if response.session_id == 0 {
                    // The broker declined a session: the next fetch is full again.
                    s.resets += 1;
                } else {
                    session_id = response.session_id;
                    epoch = 1;
                }
            } else {
                // Kafka's FetchMetadata.nextEpoch: after i32::MAX comes 1.
                epoch = if epoch == i32::MAX { 1 } else { epoch + 1 };
            }
        }
    }
    let elapsed = stats.start.elapsed().as_secs_f64();
    let fetches = args.fetches as f64;
    let summary = Summary {
        mode: "fetch-sessions",
        session: args.session,
        topic: topic.name.clone(),
        partitions: all.len(),
        fetch_version,
        fetches: args.fetches,
        incremental_fetches: s.incremental,
        full_fetches: s.full,
        session_id,
        session_resets: s.resets,
        request_bytes: s.request_bytes,
        response_bytes: s.response_bytes,
        request_bytes_per_fetch: round2(s.request_bytes as f64 / fetches),
        response_bytes_per_fetch: round2(s.response_bytes as f64 / fetches),
        first_response_bytes: s.first_response_bytes,
        later_response_bytes_per_fetch: if args.fetches > 1 {
            round2((s.response_bytes - s.first_response_bytes) as f64 / (fetches - 1.0))
        } else {
            0.0
        },
        request_partitions_per_fetch: round2(s.request_partitions as f64 / fetches),
        response_partitions_per_fetch: round2(s.response_partitions as f64 / fetches),
        records: s.records,
        records_produced: s.produced,
        trickle_partitions: args.trickle_partitions,
        duration_s: round2(elapsed),
        fetches_per_sec: round2(if elapsed > 0.0 {
            fetches / elapsed
        } else {
            0.0
        }),
        fetch_latency_ms: stats.latency(),
    };
    if output::stdout_is_terminal() {
        output::line(&format!(
            "{} fetches ({} incremental) of {} partitions: {:.0} request bytes and {:.0} response bytes per fetch, {:.1} fetches/sec, {:.3} ms p50.",
            summary.fetches,
            summary.incremental_fetches,
            summary.partitions,
            summary.request_bytes_per_fetch,
            summary.response_bytes_per_fetch,
            summary.fetches_per_sec,
            summary.fetch_latency_ms.p50
        ))?;
    }
    output::json(&summary)?;
    Ok(())
}

/// Running totals.
#[derive(Default)]
struct Counters {
    incremental: u64,
    full: u64,
    resets: u64,
    request_bytes: u64,
    response_bytes: u64,
    first_response_bytes: u64,
    request_partitions: u64,
    response_partitions: u64,
    records: u64,
    produced: u64,
}
