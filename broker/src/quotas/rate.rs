//! Kafka's windowed rate (`org.apache.kafka.common.metrics.stats.Rate` over a `WindowedSum`,
//! a `SampledStat`), with the semantics the quota managers rely on:
//!
//! * `samples` windows of `window_ms` each, plus one spare for the sample that overlaps the
//!   start of the monitored time (`SampledStat.advance` cycles through `samples + 1`);
//! * a value goes into the current sample, or a new one when the current has lasted a
//!   window (no event-count limit: Kafka's `eventWindow` is `Long.MAX_VALUE`);
//! * samples whose last event is `samples * window_ms` old are reset before measuring
//!   (`purgeObsoleteSamples`);
//! * the rate is the sum of the samples over the time since the oldest sample started,
//!   taken as at least `samples - 1` full windows and at least 1 ms (`Rate.windowSize`).

/// One sample (Kafka's `SampledStat.Sample`).
#[derive(Clone, Copy, Debug)]
struct Sample {
    event_count: u64,
    start_ms: i64,
    last_event_ms: i64,
    value: f64,
}

impl Sample {
    fn new(now_ms: i64) -> Sample {
        Sample {
            event_count: 0,
            start_ms: now_ms,
            last_event_ms: now_ms,
            value: 0.0,
        }
    }
}

/// The sampling of a rate: Kafka's `quota.window.num` and `quota.window.size.seconds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateConfig {
    /// Number of samples (at least 1).
    pub samples: u32,
    /// Length of one sample in milliseconds (at least 1).
    pub window_ms: i64,
}

impl Default for RateConfig {
    /// Kafka's defaults: 11 samples of 1 second.
    fn default() -> RateConfig {
        RateConfig {
            samples: 11,
            window_ms: 1000,
        }
    }
}

/// A windowed rate per second.
#[derive(Clone, Debug, Default)]
pub struct Rate {
    samples: Vec<Sample>,
    current: usize,
    /// When the last value was recorded (purging resets the samples' times, not this).
    last_record_ms: i64,
}

impl Rate {
    /// Adds `value` at `now_ms` (Kafka's `SampledStat.record`).
    pub fn record(&mut self, config: RateConfig, value: f64, now_ms: i64) {
        if self.samples.is_empty() {
            self.samples.push(Sample::new(now_ms));
        }
        if now_ms - self.samples[self.current].start_ms >= config.window_ms {
            // `advance`: the next of samples + 1 slots, reused once they all exist.
            self.current = (self.current + 1) % (config.samples as usize + 1);
            if self.current >= self.samples.len() {
                self.samples.push(Sample::new(now_ms));
            } else {
                self.samples[self.current] = Sample::new(now_ms);
            }
        }
        let sample = &mut self.samples[self.current];
        sample.value += value;
        sample.event_count += 1;
        sample.last_event_ms = now_ms;
        self.last_record_ms = now_ms;
    }

    fn purge_obsolete(&mut self, config: RateConfig, now_ms: i64) {
        let expire_age = i64::from(config.samples) * config.window_ms;
        for sample in &mut self.samples {
            if now_ms - sample.last_event_ms >= expire_age {
                *sample = Sample::new(now_ms);
            }
        }
    }

    /// The time the rate is taken over, in milliseconds (Kafka's `Rate.windowSize`).
    pub fn window_size_ms(&mut self, config: RateConfig, now_ms: i64) -> i64 {
        self.purge_obsolete(config, now_ms);
        if self.samples.is_empty() {
            self.samples.push(Sample::new(now_ms));
        }
        let oldest = self
            .samples
            .iter()
            .map(|s| s.start_ms)
            .min()
            .unwrap_or(now_ms);
        let mut elapsed = now_ms - oldest;
        let full_windows = elapsed / config.window_ms;
        let min_full_windows = i64::from(config.samples) - 1;
        if full_windows < min_full_windows {
            elapsed += (min_full_windows - full_windows) * config.window_ms;
        }
        elapsed.max(1)
    }

    /// The rate per second at `now_ms` (Kafka's `Rate.measure` in seconds).
    pub fn measure(&mut self, config: RateConfig, now_ms: i64) -> f64 {
        self.purge_obsolete(config, now_ms);
        let sum: f64 = self.samples.iter().map(|s| s.value).sum();
        sum / (self.window_size_ms(config, now_ms) as f64 / 1000.0)
    }

    /// Whether nothing was recorded for `age_ms` (the sensor may be dropped).
    pub fn idle_since(&self, now_ms: i64, age_ms: i64) -> bool {
        now_ms - self.last_record_ms >= age_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: RateConfig = RateConfig {
        samples: 11,
        window_ms: 1000,
    };

    #[test]
    fn a_young_rate_is_taken_over_samples_minus_one_windows() {
        let mut rate = Rate::default();
        rate.record(CONFIG, 1000.0, 0);
        // 1000 bytes over 10 s (the minimum of 10 full windows), not over 0 ms.
        assert_eq!(rate.measure(CONFIG, 0), 100.0);
        rate.record(CONFIG, 1000.0, 500);
        assert_eq!(rate.window_size_ms(CONFIG, 500), 10_500);
        assert!((rate.measure(CONFIG, 500) - 2000.0 / 10.5).abs() < 1e-9);
    }

    #[test]
    fn a_steady_rate_is_measured_over_the_retained_samples() {
        let mut rate = Rate::default();
        for second in 0..30 {
            for tenth in 0..10 {
                rate.record(CONFIG, 100.0, second * 1000 + tenth * 100);
            }
        }
        // 12 slots of 1 s hold the last 12 seconds, 11 of them complete plus the current.
        let measured = rate.measure(CONFIG, 29_950);
        assert!((measured - 1000.0).abs() < 100.0, "{measured}");
    }

    #[test]
    fn old_samples_are_purged() {
        let mut rate = Rate::default();
        rate.record(CONFIG, 5000.0, 0);
        assert_eq!(rate.measure(CONFIG, 11_000), 0.0);
        assert!(rate.idle_since(11_000, 11_000));
    }
}
