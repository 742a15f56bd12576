//! The log cleaner's broker keys (`log.cleaner.*`), with Kafka's defaults and validation
//! (`CleanerConfig` and `KafkaConfig`'s definitions).

use super::{ConfigError, Reader, invalid};

/// The broker-wide settings of the log cleaner (see [`crate::storage::cleaner`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CleanerSettings {
    /// `log.cleaner.enable`: run the cleaner; default true.
    pub enable: bool,
    /// `log.cleaner.threads`: cleaner threads; default 1, >= 0.
    pub threads: i32,
    /// `log.cleaner.dedupe.buffer.size`: memory of the dedupe maps of all threads; default
    /// 134217728 (128 MiB).
    pub dedupe_buffer_size: i64,
    /// `log.cleaner.io.buffer.size`: read and write buffers of all threads; default
    /// 524288, >= 0.
    pub io_buffer_size: i32,
    /// `log.cleaner.io.buffer.load.factor`: how full a dedupe map gets; default 0.9.
    pub io_buffer_load_factor: f64,
    /// `log.cleaner.io.max.bytes.per.second`: I/O throttle of all threads; default
    /// `f64::MAX` (none).
    pub io_max_bytes_per_second: f64,
    /// `log.cleaner.backoff.ms`: sleep when no log needs cleaning; default 15000, >= 0.
    pub backoff_ms: i64,
    /// `log.cleaner.min.cleanable.ratio`: default of `min.cleanable.dirty.ratio`, 0.5,
    /// between 0 and 1.
    pub min_cleanable_ratio: f64,
    /// `log.cleaner.min.compaction.lag.ms`: default of `min.compaction.lag.ms`, 0, >= 0.
    pub min_compaction_lag_ms: i64,
    /// `log.cleaner.max.compaction.lag.ms`: default of `max.compaction.lag.ms`,
    /// `i64::MAX`, >= 1.
    pub max_compaction_lag_ms: i64,
    /// `log.cleaner.delete.retention.ms`: default of `delete.retention.ms`, 86400000
    /// (one day), >= 0.
    pub delete_retention_ms: i64,
}

impl Default for CleanerSettings {
    fn default() -> Self {
        CleanerSettings {
            enable: true,
            threads: 1,
            dedupe_buffer_size: 128 * 1024 * 1024,
            io_buffer_size: 512 * 1024,
            io_buffer_load_factor: 0.9,
            io_max_bytes_per_second: f64::MAX,
            backoff_ms: 15_000,
            min_cleanable_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            delete_retention_ms: 86_400_000,
        }
    }
}

/// A `DOUBLE` key, within `min..=max` when given.
fn double(
    r: &mut Reader,
    key: &'static str,
    default: f64,
    min: Option<f64>,
    max: Option<f64>,
) -> Result<f64, ConfigError> {
    let Some(text) = r.string(key) else {
        return Ok(default);
    };
    let value: f64 = text
        .parse()
        .ok()
        .filter(|v: &f64| !v.is_nan())
        .ok_or_else(|| invalid(key, &text, "a number"))?;
    if min.is_some_and(|min| value < min) || max.is_some_and(|max| value > max) {
        let expected = match (min, max) {
            (Some(min), Some(max)) => format!("a number between {min} and {max}"),
            (Some(min), None) => format!("a number >= {min}"),
            (None, Some(max)) => format!("a number <= {max}"),
            (None, None) => "a number".to_owned(),
        };
        return Err(invalid(key, &text, expected));
    }
    Ok(value)
}

/// Reads the `log.cleaner.*` keys.
pub(super) fn read(r: &mut Reader) -> Result<CleanerSettings, ConfigError> {
    let d = CleanerSettings::default();
    let settings = CleanerSettings {
        enable: r.boolean("log.cleaner.enable", d.enable)?,
        threads: r.int("log.cleaner.threads", d.threads, 0)?,
        dedupe_buffer_size: r.long(
            "log.cleaner.dedupe.buffer.size",
            d.dedupe_buffer_size,
            i64::MIN,
        )?,
        io_buffer_size: r.int("log.cleaner.io.buffer.size", d.io_buffer_size, 0)?,
        io_buffer_load_factor: double(
            r,
            "log.cleaner.io.buffer.load.factor",
            d.io_buffer_load_factor,
            None,
            None,
        )?,
        io_max_bytes_per_second: double(
            r,
            "log.cleaner.io.max.bytes.per.second",
            d.io_max_bytes_per_second,
            None,
            None,
        )?,
        backoff_ms: r.long("log.cleaner.backoff.ms", d.backoff_ms, 0)?,
        min_cleanable_ratio: double(
            r,
            "log.cleaner.min.cleanable.ratio",
            d.min_cleanable_ratio,
            Some(0.0),
            Some(1.0),
        )?,
        min_compaction_lag_ms: r.long(
            "log.cleaner.min.compaction.lag.ms",
            d.min_compaction_lag_ms,
            0,
        )?,
        max_compaction_lag_ms: r.long(
            "log.cleaner.max.compaction.lag.ms",
            d.max_compaction_lag_ms,
            1,
        )?,
        delete_retention_ms: r.long("log.cleaner.delete.retention.ms", d.delete_retention_ms, 0)?,
    };
    // Kafka's `Cleaner` requirement: each thread's map (its share of the dedupe buffer,
    // 24 bytes a slot) must hold more than one entry at the load factor.
    if settings.enable && settings.threads > 0 {
        let memory = (settings.dedupe_buffer_size / i64::from(settings.threads))
            .clamp(0, i64::from(i32::MAX));
        let slots = memory / 24;
        if slots as f64 * settings.io_buffer_load_factor <= 1.0 {
            return Err(ConfigError::Inconsistent(
                "offset map is too small to fit in even a single message, so log cleaning \
                 will never make progress. You can increase log.cleaner.dedupe.buffer.size \
                 or decrease log.cleaner.threads"
                    .to_owned(),
            ));
        }
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::CleanerSettings;

    fn parse(extra: &str) -> Result<Config, String> {
        Config::parse(&format!("node.id=1\n{extra}\n")).map_err(|e| e.to_string())
    }

    #[test]
    fn kafkas_defaults_and_overrides() {
        let c = parse("").unwrap();
        assert_eq!(c.log_cleaner, CleanerSettings::default());
        assert_eq!(c.log_cleaner.dedupe_buffer_size, 134_217_728);
        let c = parse(
            "log.cleaner.threads=3\nlog.cleaner.dedupe.buffer.size=50000000\n\
             log.cleaner.io.max.bytes.per.second=1e6\nlog.cleaner.backoff.ms=100\n\
             log.cleaner.enable=false\nlog.cleaner.min.cleanable.ratio=0.2\n\
             log.cleaner.delete.retention.ms=5\nlog.cleaner.io.buffer.load.factor=0.5",
        )
        .unwrap();
        let s = &c.log_cleaner;
        assert_eq!(
            (s.threads, s.dedupe_buffer_size, s.backoff_ms),
            (3, 50_000_000, 100)
        );
        assert_eq!(s.io_max_bytes_per_second, 1e6);
        assert!(!s.enable);
        assert_eq!((s.min_cleanable_ratio, s.delete_retention_ms), (0.2, 5));
        assert!(!c.ignored_keys.iter().any(|k| k.starts_with("log.cleaner.")));
    }

    #[test]
    fn invalid_values_are_refused() {
        for (extra, needle) in [
            ("log.cleaner.threads=-1", "log.cleaner.threads"),
            (
                "log.cleaner.min.cleanable.ratio=1.5",
                "log.cleaner.min.cleanable.ratio",
            ),
            (
                "log.cleaner.max.compaction.lag.ms=0",
                "log.cleaner.max.compaction.lag.ms",
            ),
            (
                "log.cleaner.io.max.bytes.per.second=fast",
                "log.cleaner.io.max.bytes.per.second",
            ),
            (
                "log.cleaner.dedupe.buffer.size=24",
                "offset map is too small",
            ),
        ] {
            let error = parse(extra).expect_err(extra);
            assert!(error.contains(needle), "{extra}: {error}");
        }
    }
}
