//! The settings of one partition log: the broker's `log.*` defaults, overridden per topic by
//! the topic's configs (`segment.bytes`, `retention.ms`, ...).

use gregor_protocol::records::Compression;

/// How record timestamps are set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// The producer's timestamps are kept.
    #[default]
    CreateTime,
    /// The broker stamps each batch with the time it appends it.
    LogAppendTime,
}

/// What happens to old data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CleanupPolicy {
    /// Whole old segments are deleted by time and size (`delete`).
    pub delete: bool,
    /// Compaction by key (`compact`; see [`super::cleaner`]).
    pub compact: bool,
}

/// Settings of one partition log, with Kafka's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll a new segment beyond this size.
    pub segment_bytes: i64,
    /// `segment.ms`: roll a new segment when the active one is this old.
    pub segment_ms: i64,
    /// `retention.ms`: delete segments older than this (-1: keep forever).
    pub retention_ms: i64,
    /// `retention.bytes`: delete the oldest segments beyond this size (-1: no limit).
    pub retention_bytes: i64,
    /// `max.message.bytes`: the largest record batch accepted.
    pub max_message_bytes: i32,
    /// `min.insync.replicas`: in-sync replicas an `acks=all` produce needs (Kafka's
    /// `LogConfig.minInSyncReplicas`; at most the replica count applies).
    pub min_insync_replicas: i32,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    /// `index.interval.bytes`: bytes between offset index entries.
    pub index_interval_bytes: i32,
    /// `segment.index.bytes`: the largest index file; a full index rolls the segment.
    pub segment_index_bytes: i32,
    /// `flush.messages`: fsync after this many messages (i64::MAX: leave it to the OS).
    pub flush_messages: i64,
    /// `flush.ms`: fsync when the oldest unflushed data is this old (i64::MAX: never).
    pub flush_ms: i64,
    /// `message.timestamp.before.max.ms`: how far in the past a `CreateTime` timestamp may be
    /// (i64::MAX: no limit).
    pub message_timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: how far in the future a `CreateTime` timestamp may be
    /// (Kafka 4.0's default: one hour).
    pub message_timestamp_after_max_ms: i64,
    /// The broker's `producer.id.expiration.ms` (not a topic config): an idempotent
    /// producer's state is dropped once its last batch's timestamp is this old.
    pub producer_id_expiration_ms: i64,
    /// The broker's `transaction.partition.verification.enable` (not a topic config):
    /// whether transactional appends are verified with the coordinator first (KIP-890).
    pub transaction_verification: bool,
    /// `compression.type`: the codec batches are stored with; `None` is `producer` (the
    /// producer's codec is kept, Kafka's default), `Some(Compression::None)` is
    /// `uncompressed`.
    pub compression_type: Option<Compression>,
    /// `compression.gzip.level` (KIP-390): 1-9, or -1 for zlib's default.
    pub compression_gzip_level: i32,
    /// `compression.lz4.level` (KIP-390): 1-17; accepted, but the lz4 compressor here has
    /// no levels.
    pub compression_lz4_level: i32,
    /// `compression.zstd.level` (KIP-390): a zstd level, default 3.
    pub compression_zstd_level: i32,
    /// `min.cleanable.dirty.ratio`: the share of the log that must be dirty before the
    /// cleaner compacts it; default 0.5.
    pub min_cleanable_ratio: f64,
    /// `min.compaction.lag.ms`: records stay uncompacted at least this long; default 0.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a dirty record older than this makes the log cleanable
    /// whatever its dirty ratio; default `i64::MAX`.
    pub max_compaction_lag_ms: i64,
    /// `delete.retention.ms`: how long tombstones (and transaction markers) survive once
    /// a cleaning reached them (KIP-534's delete horizon); default one day.
    pub delete_retention_ms: i64,
    /// `message.downconversion.enable` (Kafka 3.9's topic config): whether Fetch v0-3 may
    /// down-convert this log's batches; when false they get `UNSUPPORTED_VERSION`.
    pub message_downconversion_enable: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 3600 * 1000,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            max_message_bytes: 1_048_588,
            min_insync_replicas: 1,
            timestamp_type: TimestampType::CreateTime,
            cleanup_policy: CleanupPolicy {
                delete: true,
                compact: false,
            },
            index_interval_bytes: 4096,
            segment_index_bytes: 10 * 1024 * 1024,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: 3_600_000,
            producer_id_expiration_ms: super::producer_state::DEFAULT_PRODUCER_ID_EXPIRATION_MS,
            transaction_verification: true,
            compression_type: None,
            compression_gzip_level: -1,
            compression_lz4_level: 9,
            compression_zstd_level: 3,
            min_cleanable_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            delete_retention_ms: 86_400_000,
            message_downconversion_enable: true,
        }
    }
}

impl LogConfig {
    /// The broker's defaults for every topic, from its `log.*` keys: `log.segment.bytes`,
    /// `log.roll.ms`/`hours`, `log.retention.*`, `message.max.bytes`,
    /// `log.message.timestamp.*`, `log.cleanup.policy`, `log.index.interval.bytes`,
    /// `log.index.size.max.bytes` and `log.flush.interval.messages`/`ms` (the latter falling
    /// back to `log.flush.scheduler.interval.ms`, as Kafka does), `producer.id.expiration.ms`,
    /// and `compression.type` with `compression.{gzip,lz4,zstd}.level`, and the cleaner's
    /// `log.cleaner.{min.cleanable.ratio,min.compaction.lag.ms,max.compaction.lag.ms,
    /// delete.retention.ms}`.
    pub fn from_broker(config: &crate::config::Config) -> LogConfig {
        use crate::config::{
            CleanupPolicy as BrokerPolicy, CompressionType as BrokerCompression,
            TimestampType as BrokerTimestamp,
        };
        LogConfig {
            segment_bytes: i64::from(config.log_segment_bytes),
            segment_ms: config.log_roll_ms,
            retention_ms: config.log_retention_ms,
            retention_bytes: config.log_retention_bytes,
            max_message_bytes: config.message_max_bytes,
            min_insync_replicas: config.min_insync_replicas,
            timestamp_type: match config.log_message_timestamp_type {
                BrokerTimestamp::CreateTime => TimestampType::CreateTime,
                BrokerTimestamp::LogAppendTime => TimestampType::LogAppendTime,
            },
            cleanup_policy: CleanupPolicy {
                delete: config.log_cleanup_policy.contains(&BrokerPolicy::Delete),
                compact: config.log_cleanup_policy.contains(&BrokerPolicy::Compact),
            },
            index_interval_bytes: config.log_index_interval_bytes,
            segment_index_bytes: config.log_index_size_max_bytes,
            flush_messages: config.log_flush_interval_messages,
            flush_ms: config.effective_log_flush_interval_ms(),
            message_timestamp_before_max_ms: config.log_message_timestamp_before_max_ms,
            message_timestamp_after_max_ms: config.log_message_timestamp_after_max_ms,
            producer_id_expiration_ms: i64::from(config.producer_id_expiration_ms),
            transaction_verification: config.transaction_partition_verification_enable,
            compression_type: match config.compression_type {
                BrokerCompression::Producer => None,
                BrokerCompression::Uncompressed => Some(Compression::None),
                BrokerCompression::Gzip => Some(Compression::Gzip),
                BrokerCompression::Snappy => Some(Compression::Snappy),
                BrokerCompression::Lz4 => Some(Compression::Lz4),
                BrokerCompression::Zstd => Some(Compression::Zstd),
            },
            compression_gzip_level: config.compression_gzip_level,
            compression_lz4_level: config.compression_lz4_level,
            compression_zstd_level: config.compression_zstd_level,
            min_cleanable_ratio: config.log_cleaner.min_cleanable_ratio,
            min_compaction_lag_ms: config.log_cleaner.min_compaction_lag_ms,
            max_compaction_lag_ms: config.log_cleaner.max_compaction_lag_ms,
            delete_retention_ms: config.log_cleaner.delete_retention_ms,
            message_downconversion_enable: config.log_message_downconversion_enable,
        }
    }

    /// The codec and level a produced batch compressed with `source` is to be stored with,
    /// `None` when it is kept as it is (Kafka's `BrokerCompressionType.targetCompression`
    /// and `LogValidator`'s in-place path: only a differing codec is re-compressed).
    pub fn target_compression(&self, source: Compression) -> Option<(Compression, Option<i32>)> {
        let target = self.compression_type?;
        if target == source {
            return None;
        }
        let level = match target {
            Compression::Gzip => Some(self.compression_gzip_level),
            Compression::Lz4 => Some(self.compression_lz4_level),
            Compression::Zstd => Some(self.compression_zstd_level),
            Compression::None | Compression::Snappy => None,
        };
        Some((target, level))
    }

    /// Most entries of a segment's offset index (`segment.index.bytes` / 8).
    pub fn max_offset_index_entries(&self) -> usize {
        usize::try_from(self.segment_index_bytes).unwrap_or(0) / super::index::OFFSET_ENTRY_SIZE
    }

    /// Most entries of a segment's time index (`segment.index.bytes` / 12).
    pub fn max_time_index_entries(&self) -> usize {
        usize::try_from(self.segment_index_bytes).unwrap_or(0) / super::index::TIME_ENTRY_SIZE
    }
}
