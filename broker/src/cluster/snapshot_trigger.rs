//! When a metadata snapshot is due, by Kafka's `SnapshotGenerator` rules, for every node
//! that writes its own: the controller of a single node
//! ([`controller`](crate::cluster::controller)'s snapshots) and a broker-only node's copy of
//! the log ([`observer`](crate::cluster::observer)); a cluster's controllers leave it to
//! the quorum.
//!
//! A snapshot is due once `metadata.log.max.record.bytes.between.snapshots` bytes of
//! batches were appended since the last one (after a start, the bytes replayed past the
//! snapshot loaded count too), or `metadata.log.max.snapshot.interval.ms` (not 0) passed
//! since the last one or the start. The time rule is checked only when a batch is applied,
//! so an idle log gets no new snapshot, as in Kafka.

use std::time::Instant;

use crate::cluster::snapshot_retention::RetentionPolicy;
use crate::config::Config;

/// Kafka's default `metadata.log.max.record.bytes.between.snapshots` (20 MiB).
pub const DEFAULT_MAX_BYTES_BETWEEN_SNAPSHOTS: u64 = 20 * 1024 * 1024;
/// Kafka's default `metadata.log.max.snapshot.interval.ms` (1 hour).
pub const DEFAULT_MAX_SNAPSHOT_INTERVAL_MS: i64 = 60 * 60 * 1000;

/// When to write snapshots and what to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotOptions {
    /// `metadata.log.max.record.bytes.between.snapshots`.
    pub max_bytes_between: u64,
    /// `metadata.log.max.snapshot.interval.ms` (0: no time-based snapshots).
    pub max_interval_ms: i64,
    /// `metadata.max.retention.bytes` and `metadata.max.retention.ms`.
    pub retention: RetentionPolicy,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions {
            max_bytes_between: DEFAULT_MAX_BYTES_BETWEEN_SNAPSHOTS,
            max_interval_ms: DEFAULT_MAX_SNAPSHOT_INTERVAL_MS,
            retention: RetentionPolicy::default(),
        }
    }
}

impl SnapshotOptions {
    /// The options `config`'s `metadata.*` keys give.
    pub fn from_config(config: &Config) -> SnapshotOptions {
        let metadata_log = &config.metadata_log;
        SnapshotOptions {
            max_bytes_between: metadata_log.max_record_bytes_between_snapshots.max(1) as u64,
            max_interval_ms: metadata_log.max_snapshot_interval_ms,
            retention: RetentionPolicy {
                retention_bytes: metadata_log.max_retention_bytes,
                retention_ms: metadata_log.max_retention_ms,
            },
        }
    }
}

/// The counters of the rules above.
#[derive(Debug)]
pub struct SnapshotTrigger {
    /// Bytes counted before the log was opened (replayed past the loaded snapshot).
    carried_bytes: u64,
    /// The log's appended bytes when the counters were last reset.
    mark: u64,
    /// When the counters were last reset.
    since: Instant,
}

impl SnapshotTrigger {
    /// The counters after opening a log whose replay went `replayed_bytes` past its
    /// snapshot (the log itself counting from 0).
    pub fn new(replayed_bytes: u64) -> SnapshotTrigger {
        SnapshotTrigger {
            carried_bytes: replayed_bytes,
            mark: 0,
            since: Instant::now(),
        }
    }

    /// Why a snapshot is due, with the log at `appended_bytes` (Kafka's wording, for the
    /// log line), or `None`.
    pub fn due(&self, appended_bytes: u64, options: &SnapshotOptions) -> Option<String> {
        let bytes = self.carried_bytes + appended_bytes.saturating_sub(self.mark);
        if bytes >= options.max_bytes_between {
            Some(format!(
                "we have replayed at least {} bytes",
                options.max_bytes_between
            ))
        } else if options.max_interval_ms != 0
            && self.since.elapsed().as_millis() >= options.max_interval_ms as u128
        {
            Some(format!(
                "we have waited at least {} minute(s)",
                options.max_interval_ms / 60_000
            ))
        } else {
            None
        }
    }

    /// Restarts both counters (a snapshot started), the log at `appended_bytes`.
    pub fn reset(&mut self, appended_bytes: u64) {
        self.carried_bytes = 0;
        self.mark = appended_bytes;
        self.since = Instant::now();
    }
}
