//! `gregorctl perf connections`: the cost of setting up a connection (TCP, the TLS
//! handshake and the SASL exchange that `--command-config` asks for, then ApiVersions),
//! each connection closed once ready. `--concurrency` workers connect at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Latency, Stats, round2};
use crate::client::{Connection, Error, Result};
use crate::commands::Context;

/// Flags of `perf connections`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Connections to open (and close) over all workers.
    #[arg(long, default_value_t = 1000)]
    pub num_connections: u64,
    /// Workers connecting at the same time.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Seconds to run at most.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
}

#[derive(Serialize)]
struct Summary {
    mode: &'static str,
    /// TLS, SASL mechanism or none.
    security: String,
    concurrency: usize,
    /// Connections ready (ApiVersions answered).
    connections: u64,
    /// Connections that failed.
    errors: u64,
    duration_s: f64,
    connections_per_sec: f64,
    /// Time from connect() to the ApiVersions answer.
    setup_ms: Latency,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_error: Option<String>,
}

/// Runs the connection set-up load against the first bootstrap broker.
pub async fn run(context: &Context, args: &Args) -> Result<()> {
    if args.concurrency == 0 || args.num_connections == 0 {
        return Err(Error::Usage(
            "--concurrency and --num-connections must be at least 1".into(),
        ));
    }
    let addr = context
        .bootstrap
        .split(',')
        .map(str::trim)
        .find(|a| !a.is_empty())
        .ok_or_else(|| Error::Usage("--bootstrap-server is empty".into()))?;
    let addr = Arc::new(if addr.contains(':') {
        addr.to_string()
    } else {
        format!("{addr}:9092")
    });
    let options = Arc::new(context.options.clone());
    let stats = Arc::new(Stats::new()?);
    let claimed = Arc::new(AtomicU64::new(0));
    let deadline = args
        .duration
        .map(|s| Instant::now() + Duration::from_secs_f64(s.max(0.0)));
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (addr, options, stats, claimed) = (
                addr.clone(),
                options.clone(),
                stats.clone(),
                claimed.clone(),
            );
            let total = args.num_connections;
            tokio::spawn(async move {
                while claimed.fetch_add(1, Ordering::Relaxed) < total
                    && deadline.is_none_or(|d| Instant::now() < d)
                {
                    let started = Instant::now();
                    match Connection::connect(&addr, &options).await {
                        Ok(connection) => {
                            stats.record_latency(started.elapsed(), 1);
                            stats.records.fetch_add(1, Ordering::Relaxed);
                            drop(connection);
                        }
                        Err(e) => stats.record_error(1, || e.to_string()),
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker
            .await
            .map_err(|e| Error::Usage(format!("a worker failed: {e}")))?;
    }
    let seconds = stats.start.elapsed().as_secs_f64();
    let connections = stats.records.load(Ordering::Relaxed);
    let security = &context.options.security;
    let summary = Summary {
        mode: "connections",
        security: match (&security.tls, &security.sasl) {
            (None, None) => "PLAINTEXT".into(),
            (Some(_), None) => "SSL".into(),
            (None, Some(s)) => format!("SASL_PLAINTEXT/{}", s.mechanism.name()),
            (Some(_), Some(s)) => format!("SASL_SSL/{}", s.mechanism.name()),
        },
        concurrency: args.concurrency,
        connections,
        errors: stats.errors.load(Ordering::Relaxed),
        duration_s: round2(seconds),
        connections_per_sec: round2(connections as f64 / seconds.max(1e-9)),
        setup_ms: stats.latency(),
        first_error: stats
            .first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone(),
    };
    let line = serde_json::to_string(&summary)
        .map_err(|e| Error::Usage(format!("cannot write the summary: {e}")))?;
    println!("{line}");
    if connections == 0 {
        return Err(Error::Usage(format!(
            "no connection was made: {}",
            summary.first_error.unwrap_or_default()
        )));
    }
    Ok(())
}
