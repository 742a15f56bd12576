//! The cleaner's I/O throttle (Kafka's `Throttler`, shared by every cleaner thread):
//! `log.cleaner.io.max.bytes.per.second` over bytes read and written.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::storage::unpoison;

/// How often the observed rate is compared with the desired one (Kafka: 300 ms).
const CHECK_INTERVAL: Duration = Duration::from_millis(300);

/// Sleeps callers so that the bytes they report stay below a rate.
#[derive(Debug)]
pub struct Throttler {
    /// Desired bytes per second; infinite or non-positive: no throttling.
    rate: f64,
    state: Mutex<(Instant, u64)>,
}

impl Throttler {
    /// A throttle at `bytes_per_second`.
    pub fn new(bytes_per_second: f64) -> Throttler {
        Throttler {
            rate: bytes_per_second,
            state: Mutex::new((Instant::now(), 0)),
        }
    }

    /// Whether it ever sleeps.
    fn unlimited(&self) -> bool {
        !self.rate.is_finite() || self.rate <= 0.0 || self.rate >= f64::MAX / 2.0
    }

    /// Records `bytes` of I/O and sleeps if the rate since the last check is too high.
    pub fn maybe_throttle(&self, bytes: u64) {
        if self.unlimited() {
            return;
        }
        let sleep = {
            let mut state = unpoison(self.state.lock());
            state.1 += bytes;
            let elapsed = state.0.elapsed();
            if elapsed < CHECK_INTERVAL {
                return;
            }
            let observed = state.1 as f64 / elapsed.as_secs_f64();
            let sleep = if observed > self.rate {
                let wanted = Duration::from_secs_f64(state.1 as f64 / self.rate);
                wanted.saturating_sub(elapsed)
            } else {
                Duration::ZERO
            };
            *state = (Instant::now() + sleep, 0);
            sleep
        };
        if !sleep.is_zero() {
            std::thread::sleep(sleep);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unlimited_throttle_never_sleeps_and_a_limited_one_slows_down() {
        let free = Throttler::new(f64::MAX);
        assert!(free.unlimited());
        for _ in 0..1000 {
            free.maybe_throttle(1 << 30);
        }
        let slow = Throttler::new(1_000_000.0);
        let start = Instant::now();
        // 1 MB/s: 1.5 MB reported over >= 300 ms must take about 1.5 s.
        for _ in 0..15 {
            slow.maybe_throttle(100_000);
            std::thread::sleep(Duration::from_millis(25));
        }
        assert!(start.elapsed() >= Duration::from_millis(1000));
    }
}
