//! The cleaner threads (Kafka's `LogCleaner` and its `CleanerThread`s): each loops over
//! "clean the filthiest log, else sleep `log.cleaner.backoff.ms`", on its own OS thread,
//! with its own dedupe map, and never takes the broker down: a failed cleaning marks its
//! partition uncleanable and is logged.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use super::clean::{CleanError, Cleaner};
use super::manager::CleanerManager;
use super::throttle::Throttler;
use crate::storage::segment::now_ms;
use crate::storage::{LogManager, PartitionLog, unpoison};

/// The cleaner's settings (Kafka's `CleanerConfig`).
#[derive(Clone, Debug, PartialEq)]
pub struct CleanerConfig {
    /// `log.cleaner.enable`.
    pub enable: bool,
    /// `log.cleaner.threads`.
    pub threads: usize,
    /// `log.cleaner.dedupe.buffer.size`, shared by the threads.
    pub dedupe_buffer_size: u64,
    /// `log.cleaner.io.buffer.size`, shared by the threads (half to read, half to write).
    pub io_buffer_size: usize,
    /// `log.cleaner.io.buffer.load.factor`.
    pub load_factor: f64,
    /// `log.cleaner.io.max.bytes.per.second`.
    pub max_io_bytes_per_second: f64,
    /// `log.cleaner.backoff.ms`.
    pub backoff_ms: u64,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        CleanerConfig::from_settings(&crate::config::CleanerSettings::default())
    }
}

impl CleanerConfig {
    /// The settings of the broker's `log.cleaner.*` keys.
    pub fn from_broker(config: &crate::config::Config) -> CleanerConfig {
        CleanerConfig::from_settings(&config.log_cleaner)
    }

    fn from_settings(s: &crate::config::CleanerSettings) -> CleanerConfig {
        CleanerConfig {
            enable: s.enable,
            threads: usize::try_from(s.threads).unwrap_or(0),
            dedupe_buffer_size: u64::try_from(s.dedupe_buffer_size).unwrap_or(0),
            io_buffer_size: usize::try_from(s.io_buffer_size).unwrap_or(0),
            load_factor: s.io_buffer_load_factor,
            max_io_bytes_per_second: s.io_max_bytes_per_second,
            backoff_ms: u64::try_from(s.backoff_ms).unwrap_or(0),
        }
    }

    /// Memory of one thread's dedupe map (Kafka: its share, at most `i32::MAX`).
    pub fn map_memory_per_thread(&self) -> usize {
        let share = self.dedupe_buffer_size / self.threads.max(1) as u64;
        share.min(i32::MAX as u64) as usize
    }

    /// One thread's I/O buffer (Kafka: `ioBufferSize / threads / 2`).
    pub fn io_buffer_per_thread(&self) -> usize {
        self.io_buffer_size / self.threads.max(1) / 2
    }
}

#[derive(Debug)]
struct Shared {
    stopping: Mutex<bool>,
    wake: Condvar,
    manager: CleanerManager,
}

/// The running cleaner threads; [`Self::shutdown`] stops them.
#[derive(Debug)]
pub struct LogCleaner {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl LogCleaner {
    /// Starts `config.threads` cleaner threads (none when `log.cleaner.enable` is false)
    /// over the logs of the manager reached through `owner` (held weakly: the threads end
    /// once it is dropped).
    pub fn start<T: Send + Sync + 'static>(
        owner: &Arc<T>,
        logs: fn(&T) -> &LogManager,
        config: CleanerConfig,
    ) -> LogCleaner {
        let shared = Arc::new(Shared {
            stopping: Mutex::new(false),
            wake: Condvar::new(),
            manager: CleanerManager::new(),
        });
        let mut threads = Vec::new();
        if config.enable {
            let throttler = Arc::new(Throttler::new(config.max_io_bytes_per_second));
            for i in 0..config.threads {
                let owner: Weak<T> = Arc::downgrade(owner);
                let shared = Arc::clone(&shared);
                let config = config.clone();
                let throttler = Arc::clone(&throttler);
                let spawned = std::thread::Builder::new()
                    .name(format!("kafka-log-cleaner-thread-{i}"))
                    .spawn(move || run(owner, logs, &shared, &config, throttler));
                match spawned {
                    Ok(handle) => threads.push(handle),
                    Err(error) => tracing::error!(%error, "could not start a log cleaner thread"),
                }
            }
            tracing::info!(
                threads = threads.len(),
                map_bytes_per_thread = config.map_memory_per_thread(),
                "started the log cleaner"
            );
        }
        LogCleaner {
            shared,
            threads: Mutex::new(threads),
        }
    }

    /// The cleaning state (checkpoints, uncleanable partitions).
    pub fn manager(&self) -> &CleanerManager {
        &self.shared.manager
    }

    /// Stops the threads (a cleaning in progress is abandoned between batches; its files
    /// are removed at the next open) and waits for them. Blocking.
    pub fn shutdown(&self) {
        *unpoison(self.shared.stopping.lock()) = true;
        self.shared.wake.notify_all();
        let threads: Vec<JoinHandle<()>> = unpoison(self.threads.lock()).drain(..).collect();
        for thread in threads {
            let _ = thread.join();
        }
    }
}

impl Drop for LogCleaner {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run<T>(
    owner: Weak<T>,
    logs: fn(&T) -> &LogManager,
    shared: &Shared,
    config: &CleanerConfig,
    throttler: Arc<Throttler>,
) {
    let mut cleaner = Cleaner::new(
        config.map_memory_per_thread(),
        config.load_factor,
        config.io_buffer_per_thread(),
        throttler,
    );
    let stopping = || *unpoison(shared.stopping.lock());
    loop {
        if stopping() {
            return;
        }
        let all: Vec<Arc<PartitionLog>> = {
            let Some(owner) = owner.upgrade() else {
                return;
            };
            let manager = logs(&owner);
            manager
                .partitions()
                .iter()
                .filter_map(|(topic, partition)| manager.get(topic, *partition))
                .collect()
        };
        let cleaned = clean_filthiest_log(&shared.manager, &mut cleaner, &all, now_ms(), &stopping);
        drop(all);
        if !cleaned {
            let guard = unpoison(shared.stopping.lock());
            if *guard {
                return;
            }
            let _ = shared
                .wake
                .wait_timeout(guard, Duration::from_millis(config.backoff_ms.max(1)));
        }
    }
}

/// One round of a cleaner thread (Kafka's `cleanFilthiestLog`): cleans the filthiest of
/// `logs`, if any is cleanable, and returns whether one was. A failure (error or panic)
/// marks the partition uncleanable; it is logged, never propagated.
pub fn clean_filthiest_log(
    manager: &CleanerManager,
    cleaner: &mut Cleaner,
    logs: &[Arc<PartitionLog>],
    now_ms: i64,
    stop: &dyn Fn() -> bool,
) -> bool {
    let Some(chosen) = manager.grab_filthiest(logs, now_ms) else {
        return false;
    };
    let log = Arc::clone(&chosen.log);
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let aborted = log.aborted_for_cleaning(&chosen);
        log.compact(cleaner, &chosen, &aborted, now_ms, stop, None)
    }));
    match result {
        Ok(Ok(plan)) => {
            manager.done_cleaning(&log, plan.end_offset);
            let s = &plan.stats;
            tracing::info!(
                log = %log.name(),
                first_dirty_offset = chosen.first_dirty_offset,
                end_offset = plan.end_offset,
                segments = s.segments_cleaned,
                cleaned_segments = s.groups,
                bytes_read = s.bytes_read,
                bytes_written = s.bytes_written,
                messages_read = s.messages_read,
                messages_written = s.messages_written,
                map_utilization = cleaner.map().utilization(),
                "cleaned a log"
            );
        }
        Ok(Err(CleanError::Aborted)) => {
            tracing::info!(log = %log.name(), "log cleaning aborted");
            manager.aborted_cleaning(&log);
        }
        Ok(Err(error)) => {
            tracing::error!(log = %log.name(), %error, "log cleaning failed: the partition is marked uncleanable");
            manager.failed_cleaning(&log);
        }
        Err(_) => {
            tracing::error!(log = %log.name(), "log cleaning panicked: the partition is marked uncleanable");
            manager.failed_cleaning(&log);
        }
    }
    true
}
