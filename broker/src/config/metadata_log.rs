//! The metadata log's keys (Kafka's `KRaftConfigs` and `MetadataLogConfig`): segment
//! rolls, snapshot generation and retention of `__cluster_metadata-0`.

use super::{ConfigError, Reader};

/// The settings of the metadata log, with Kafka's defaults and checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataLogConfig {
    /// `metadata.log.segment.bytes`: size at which a segment is rolled; default 1 GiB,
    /// >= 12 and >= `metadata.log.segment.min.bytes`.
    pub segment_bytes: i32,
    /// `metadata.log.segment.min.bytes` (internal, for tests): the floor of
    /// `metadata.log.segment.bytes`; default 8 MiB (the largest KRaft batch), >= 12.
    pub segment_min_bytes: i32,
    /// `metadata.log.segment.ms`: age at which a segment is rolled; default 7 days, >= 1
    /// (Kafka validates it as a topic's `segment.ms`).
    pub segment_ms: i64,
    /// `metadata.log.max.record.bytes.between.snapshots`: log bytes after which a snapshot
    /// is written; default 20 MiB, >= 1.
    pub max_record_bytes_between_snapshots: i64,
    /// `metadata.log.max.snapshot.interval.ms`: time after which a snapshot is written if
    /// there are new records; default 1 hour, >= 0 (0 disables time-based snapshots).
    pub max_snapshot_interval_ms: i64,
    /// `metadata.max.retention.bytes`: segments plus snapshots kept at most; default
    /// 100 MiB, negative for no limit.
    pub max_retention_bytes: i64,
    /// `metadata.max.retention.ms`: age after which an older snapshot (and the segments it
    /// covers) may go; default 7 days, negative for no limit.
    pub max_retention_ms: i64,
}

impl Default for MetadataLogConfig {
    fn default() -> Self {
        MetadataLogConfig {
            segment_bytes: 1024 * 1024 * 1024,
            segment_min_bytes: 8 * 1024 * 1024,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            max_record_bytes_between_snapshots: 20 * 1024 * 1024,
            max_snapshot_interval_ms: 60 * 60 * 1000,
            max_retention_bytes: 100 * 1024 * 1024,
            max_retention_ms: 7 * 24 * 60 * 60 * 1000,
        }
    }
}

/// `Records.LOG_OVERHEAD`: Kafka's floor of the segment sizes.
const LOG_OVERHEAD: i32 = 12;

/// Reads the keys (see [`MetadataLogConfig`]).
pub(super) fn read(r: &mut Reader) -> Result<MetadataLogConfig, ConfigError> {
    let d = MetadataLogConfig::default();
    let config = MetadataLogConfig {
        segment_bytes: r.int("metadata.log.segment.bytes", d.segment_bytes, LOG_OVERHEAD)?,
        segment_min_bytes: r.int(
            "metadata.log.segment.min.bytes",
            d.segment_min_bytes,
            LOG_OVERHEAD,
        )?,
        segment_ms: r.long("metadata.log.segment.ms", d.segment_ms, 1)?,
        max_record_bytes_between_snapshots: r.long(
            "metadata.log.max.record.bytes.between.snapshots",
            d.max_record_bytes_between_snapshots,
            1,
        )?,
        max_snapshot_interval_ms: r.long(
            "metadata.log.max.snapshot.interval.ms",
            d.max_snapshot_interval_ms,
            0,
        )?,
        max_retention_bytes: r.long(
            "metadata.max.retention.bytes",
            d.max_retention_bytes,
            i64::MIN,
        )?,
        max_retention_ms: r.long("metadata.max.retention.ms", d.max_retention_ms, i64::MIN)?,
    };
    // KafkaMetadataLog.apply refuses to open the log with this.
    if config.segment_bytes < config.segment_min_bytes {
        return Err(ConfigError::Inconsistent(format!(
            "Cannot set metadata.log.segment.bytes below {}: {}",
            config.segment_min_bytes, config.segment_bytes
        )));
    }
    if config.segment_min_bytes != d.segment_min_bytes {
        tracing::warn!(
            "Overriding metadata.log.segment.min.bytes is only supported for testing. Setting \
             this value too low may lead to an inability to write batches of metadata records."
        );
    }
    Ok(config)
}
