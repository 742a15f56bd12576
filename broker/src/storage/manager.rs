//! Every partition log of the broker's log directories, their per-topic configs, and the
//! directory-wide work: checkpoints, the clean shutdown marker, flushing and retention.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use super::checkpoint::{self, LogStartOffsets, Offsets};
use super::config::LogConfig;
use super::move_replica::{FoundFuture, Moves, parse_future_dir_name, recover_future_dirs};
use super::partition::{OpenParams, PartitionLog, partition_dir_name};
use super::segment::now_ms;
use super::{StorageError, unpoison};

/// The KRaft metadata log's topic, whose directory the `cluster` module reads.
const METADATA_TOPIC: &str = "__cluster_metadata";
/// Suffixes of directories Kafka is deleting, has set aside or is moving between log dirs.
const SKIPPED_SUFFIXES: [&str; 3] = ["-delete", "-stray", "-future"];
/// Most threads opening partition directories at start-up.
const MAX_OPEN_THREADS: usize = 16;

/// A directory that could not be used, with the reason.
#[derive(Debug)]
pub struct DirError {
    /// The log directory or partition directory.
    pub path: PathBuf,
    /// What went wrong.
    pub error: StorageError,
}

impl std::fmt::Display for DirError {
    /// `<path>: <error>`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.error)
    }
}

/// Splits a partition directory name `<topic>-<partition>` at its last `-` (topic names may
/// contain `-` and `.`). `None` unless the partition is a non-negative decimal `i32` and the
/// topic a name Kafka accepts.
pub fn parse_partition_dir_name(name: &str) -> Option<(&str, i32)> {
    let (topic, partition) = name.rsplit_once('-')?;
    if partition.is_empty() || !partition.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let partition = partition.parse().ok()?;
    is_valid_topic_name(topic).then_some((topic, partition))
}

/// Kafka's topic name rule (see [`crate::topic_names::validate`]).
pub(crate) fn is_valid_topic_name(topic: &str) -> bool {
    crate::topic_names::validate(topic).is_ok()
}

/// A partition directory found at start-up.
#[derive(Debug)]
struct Candidate {
    log_dir: PathBuf,
    topic: String,
    partition: i32,
    params: OpenParams,
}

/// What a log directory's files say, read once at start-up.
#[derive(Debug, Default)]
struct DirFiles {
    clean_shutdown: bool,
    recovery_points: Offsets,
    log_start_offsets: Offsets,
    /// `replication-offset-checkpoint`: the high watermarks.
    high_watermarks: Offsets,
}

impl DirFiles {
    /// Reads the clean shutdown marker and the checkpoints of `log_dir` (a checkpoint that
    /// cannot be read counts as missing: its partitions are recovered from the start).
    fn read(log_dir: &Path) -> DirFiles {
        let read = |name: &str| {
            let path = log_dir.join(name);
            checkpoint::read_checkpoint(&path)
                .unwrap_or_else(|error| {
                    tracing::warn!(file = %path.display(), %error, "ignoring an unreadable checkpoint");
                    None
                })
                .unwrap_or_default()
        };
        DirFiles {
            clean_shutdown: checkpoint::has_clean_shutdown(log_dir),
            recovery_points: read(checkpoint::RECOVERY_POINT_CHECKPOINT),
            log_start_offsets: read(checkpoint::LOG_START_OFFSET_CHECKPOINT),
            high_watermarks: read(checkpoint::REPLICATION_OFFSET_CHECKPOINT),
        }
    }
}

/// How often [`LogManager::spawn_background_tasks`] runs each job (milliseconds; `None`
/// never).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaintenanceSchedule {
    /// `log.flush.scheduler.interval.ms`: how often logs are checked against `flush.ms`.
    pub flush_check_interval_ms: Option<u64>,
    /// `log.retention.check.interval.ms`: how often retention runs.
    pub retention_check_interval_ms: Option<u64>,
    /// `log.flush.offset.checkpoint.interval.ms` (Kafka's default 60000): how often the
    /// checkpoint files are written.
    pub checkpoint_interval_ms: Option<u64>,
    /// `producer.id.expiration.check.interval.ms`: how often idle idempotent producers are
    /// expired (Kafka's `PeriodicProducerExpirationCheck`).
    pub producer_expiration_interval_ms: Option<u64>,
}

/// Intervals beyond this (about 31 years) mean "never", like Kafka's `Long.MAX_VALUE`.
const NEVER_MS: i64 = 1 << 40;

impl MaintenanceSchedule {
    /// Kafka's schedule from the broker config (`log.flush.scheduler.interval.ms`,
    /// `log.retention.check.interval.ms`, a 60 s checkpoint interval and
    /// `producer.id.expiration.check.interval.ms`).
    pub fn from_broker(config: &crate::config::Config) -> MaintenanceSchedule {
        let interval = |ms: i64| {
            u64::try_from(ms)
                .ok()
                .filter(|&ms| ms > 0 && ms < NEVER_MS as u64)
        };
        MaintenanceSchedule {
            flush_check_interval_ms: interval(config.log_flush_scheduler_interval_ms),
            retention_check_interval_ms: interval(config.log_retention_check_interval_ms),
            checkpoint_interval_ms: Some(60_000),
            producer_expiration_interval_ms: interval(i64::from(
                config.producer_id_expiration_check_interval_ms,
            )),
        }
    }
}

/// Partition logs by topic name, then partition index (looked up without allocating).
type LogMap = HashMap<String, HashMap<i32, Arc<PartitionLog>>>;

/// The partition logs of all log directories, keyed by topic name and partition index.
///
/// Lookups ([`Self::get`]) take a read lock for a hash lookup and an `Arc` clone; creating
/// and removing logs do their file system work outside that lock.
///
/// Every log gets its topic's config ([`Self::set_topic_config`]) or the default one.
/// Methods doing file I/O are blocking (`spawn_blocking` from async code).
#[derive(Debug)]
pub struct LogManager {
    log_dirs: Vec<PathBuf>,
    logs: RwLock<LogMap>,
    /// Serialises [`Self::create`], [`Self::remove`] and replica moves.
    pub(super) admin: Mutex<()>,
    /// Configured log directories that could not be used.
    offline: Vec<PathBuf>,
    /// Replica moves between log directories (see [`super::move_replica`]).
    pub(super) moves: Moves,
    errors: Vec<DirError>,
    default_config: RwLock<LogConfig>,
    topic_configs: RwLock<HashMap<String, LogConfig>>,
    /// Per log directory (same order as `log_dirs`).
    log_starts: Vec<Arc<LogStartOffsets>>,
    /// The broker epoch the last clean shutdown wrote in every log directory, -1 if any
    /// directory had none (or another one, or was unusable): see
    /// [`Self::previous_broker_epoch`].
    previous_broker_epoch: i64,
}

impl LogManager {
    /// Opens every partition directory (`<topic>-<partition>`) of `log_dirs`, creating log
    /// directories that do not exist, several partitions at a time.
    ///
    /// Skipped quietly: files, `__cluster_metadata-*` (the metadata log), and directories
    /// ending in `-delete`, `-stray` or `-future`. A directory with another name, a partition
    /// that fails to open, a partition found in two log directories, or a log directory that
    /// cannot be read is logged and reported by [`Self::errors`]; the rest is opened. Fails
    /// only when no log directory is usable.
    ///
    /// Every log gets the default [`LogConfig`]; see [`Self::open_with`].
    ///
    /// Blocking: call it at start-up or from a blocking context.
    pub fn open(log_dirs: &[PathBuf]) -> Result<LogManager, StorageError> {
        LogManager::open_with(log_dirs, LogConfig::default(), HashMap::new())
    }

    /// [`Self::open`] with the broker's default config ([`LogConfig::from_broker`]) and the
    /// topics' own configs (used from the start: recovery rebuilds indexes with the topic's
    /// `index.interval.bytes`).
    ///
    /// Each log directory's clean shutdown marker and checkpoints are read first: with the
    /// marker, logs are opened without recovery; without it, each partition is recovered
    /// from its recovery point (see [`PartitionLog::open_with_config`]). The marker is
    /// deleted once every log is open, as Kafka does.
    pub fn open_with(
        log_dirs: &[PathBuf],
        default_config: LogConfig,
        topic_configs: HashMap<String, LogConfig>,
    ) -> Result<LogManager, StorageError> {
        let mut errors = Vec::new();
        let mut usable = Vec::new();
        let mut candidates = Vec::new();
        let mut log_starts = Vec::new();
        let mut offline = Vec::new();
        let mut futures = Vec::new();
        // Each directory's checkpointed high watermarks, restored once the logs are open.
        let mut high_watermarks: HashMap<PathBuf, Offsets> = HashMap::new();
        for log_dir in log_dirs {
            let first = candidates.len();
            let first_future = futures.len();
            match list_log_dir(log_dir, &mut candidates, &mut futures, &mut errors) {
                Ok(()) => {
                    let files = DirFiles::read(log_dir);
                    let starts = Arc::new(LogStartOffsets::new(log_dir));
                    for candidate in &mut candidates[first..] {
                        let key = (candidate.topic.clone(), candidate.partition);
                        candidate.params = OpenParams {
                            config: topic_configs
                                .get(&candidate.topic)
                                .unwrap_or(&default_config)
                                .clone(),
                            clean_shutdown: files.clean_shutdown,
                            recovery_point: files.recovery_points.get(&key).copied(),
                            log_start_offset: files.log_start_offsets.get(&key).copied(),
                            log_starts: Some(Arc::clone(&starts)),
                        };
                    }
                    high_watermarks.insert(log_dir.clone(), files.high_watermarks);
                    usable.push(log_dir.clone());
                    log_starts.push(starts);
                }
                Err(error) => {
                    candidates.truncate(first);
                    futures.truncate(first_future);
                    offline.push(log_dir.clone());
                    errors.push(DirError {
                        path: log_dir.clone(),
                        error,
                    });
                }
            }
        }
        if usable.is_empty() {
            return Err(errors
                .into_iter()
                .next()
                .map_or(StorageError::NoLogDirs, |e| e.error));
        }

        let (resumable, promoted) = recover_future_dirs(futures, &usable, |topic, partition| {
            candidates
                .iter()
                .any(|c| c.topic == topic && c.partition == partition)
        });
        for future in promoted {
            let i = usable.iter().position(|d| *d == future.log_dir);
            let config = topic_configs
                .get(&future.topic)
                .unwrap_or(&default_config)
                .clone();
            let mut params =
                OpenParams::from_log_dir(&future.log_dir, &future.topic, future.partition, config);
            // Not in this directory's checkpoints yet: recovered from the start.
            params.clean_shutdown = false;
            params.log_starts = i.map(|i| Arc::clone(&log_starts[i]));
            candidates.push(Candidate {
                log_dir: future.log_dir,
                topic: future.topic,
                partition: future.partition,
                params,
            });
        }
        let moves = Moves::default();
        for (topic, partition, target) in resumable {
            moves.add_resumable(topic, partition, target);
        }

        let mut logs = LogMap::new();
        let mut count = 0;
        for (candidate, opened) in candidates.iter().zip(open_all(&candidates)) {
            let log = match opened {
                Ok(log) => {
                    let key = (candidate.topic.clone(), candidate.partition);
                    if let Some(&hw) = high_watermarks
                        .get(&candidate.log_dir)
                        .and_then(|offsets| offsets.get(&key))
                    {
                        log.restore_high_watermark(hw);
                    }
                    log
                }
                Err(error) => {
                    errors.push(DirError {
                        path: candidate
                            .log_dir
                            .join(partition_dir_name(&candidate.topic, candidate.partition)),
                        error,
                    });
                    continue;
                }
            };
            let partitions = logs.entry(candidate.topic.clone()).or_default();
            if let Some(kept) = partitions.get(&candidate.partition) {
                if let Some(starts) = &candidate.params.log_starts {
                    // Keep the checkpoint of the duplicate's directory about its own logs.
                    starts.remove(&candidate.topic, candidate.partition);
                }
                errors.push(DirError {
                    path: log.dir().to_owned(),
                    error: StorageError::DuplicatePartition {
                        topic: candidate.topic.clone(),
                        partition: candidate.partition,
                        kept: kept.dir().to_owned(),
                        duplicate: log.dir().to_owned(),
                    },
                });
                continue;
            }
            partitions.insert(candidate.partition, Arc::new(log));
            count += 1;
        }
        for error in &errors {
            tracing::warn!(path = %error.path.display(), error = %error.error, "log directory problem");
        }
        let previous_broker_epoch = clean_shutdown_epoch(&usable, offline.is_empty());
        for log_dir in &usable {
            if let Err(error) = checkpoint::delete_clean_shutdown(log_dir) {
                tracing::warn!(dir = %log_dir.display(), %error, "could not delete the clean shutdown marker");
            }
        }
        tracing::info!(
            partitions = count,
            log_dirs = usable.len(),
            problems = errors.len(),
            "opened partition logs"
        );
        Ok(LogManager {
            log_dirs: usable,
            logs: RwLock::new(logs),
            admin: Mutex::new(()),
            offline,
            moves,
            errors,
            default_config: RwLock::new(default_config),
            topic_configs: RwLock::new(topic_configs),
            log_starts,
            previous_broker_epoch,
        })
    }

    /// The broker epoch of the registration that the last clean shutdown ended, read from
    /// the clean shutdown markers before start-up deleted them; -1 after a crash. A broker
    /// of a cluster sends it as `PreviousBrokerEpoch` in its BrokerRegistration (KIP-966).
    pub fn previous_broker_epoch(&self) -> i64 {
        self.previous_broker_epoch
    }

    /// The usable log directories.
    pub fn log_dirs(&self) -> &[PathBuf] {
        &self.log_dirs
    }

    /// The configured log directories that could not be used (offline).
    pub fn offline_log_dirs(&self) -> &[PathBuf] {
        &self.offline
    }

    /// Publishes `moved` as the log of its partition in place of `old` (a replica moved to
    /// another log directory), moving its log start offset checkpoint entry along.
    pub(super) fn replace_log(&self, old: &PartitionLog, moved: Arc<PartitionLog>) {
        let (topic, partition) = (old.topic(), old.partition());
        for (log_dir, offset) in [
            (old.log_dir(), None),
            (moved.log_dir(), Some(moved.log_start_offset())),
        ] {
            if let Some(starts) = self.log_starts_of(log_dir) {
                match offset {
                    Some(offset) => starts.set(topic, partition, offset),
                    None => starts.remove(topic, partition),
                }
                if let Err(error) = starts.persist() {
                    tracing::warn!(dir = %log_dir.display(), %error, "could not write the log start offset checkpoint");
                }
            }
        }
        unpoison(self.logs.write())
            .entry(topic.to_owned())
            .or_default()
            .insert(partition, moved);
    }

    /// What could not be opened at start-up (see [`Self::open`]).
    pub fn errors(&self) -> &[DirError] {
        &self.errors
    }

    /// The log of `topic`/`partition`, if there is one.
    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<PartitionLog>> {
        unpoison(self.logs.read())
            .get(topic)?
            .get(&partition)
            .cloned()
    }

    /// Every (topic, partition) with a log, sorted.
    pub fn partitions(&self) -> Vec<(String, i32)> {
        let logs = unpoison(self.logs.read());
        let mut all: Vec<(String, i32)> = logs
            .iter()
            .flat_map(|(topic, partitions)| partitions.keys().map(|&p| (topic.clone(), p)))
            .collect();
        all.sort_unstable();
        all
    }

    /// Number of partition logs.
    pub fn len(&self) -> usize {
        unpoison(self.logs.read()).values().map(HashMap::len).sum()
    }

    /// Whether there is no partition log.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns the log of `topic`/`partition`, creating it (directory and empty first
    /// segment) in the log directory holding the fewest partitions if there is none.
    /// A directory already on disk but not open is opened. On error a directory this call
    /// made is removed again. Blocking file I/O.
    pub fn create(&self, topic: &str, partition: i32) -> Result<Arc<PartitionLog>, StorageError> {
        if !is_valid_topic_name(topic) || topic == METADATA_TOPIC {
            return Err(StorageError::InvalidTopic(topic.to_owned()));
        }
        if partition < 0 {
            return Err(StorageError::InvalidPartition(partition));
        }
        let _admin = unpoison(self.admin.lock());
        if let Some(log) = self.get(topic, partition) {
            return Ok(log);
        }
        let log_dir = self.least_loaded_log_dir().to_owned();
        let mut params =
            OpenParams::from_log_dir(&log_dir, topic, partition, self.config_for(topic));
        // The directory is new to this manager: nothing to recover, whatever the marker said.
        params.clean_shutdown = false;
        params.log_starts = self.log_starts_of(&log_dir);
        let dir = log_dir.join(partition_dir_name(topic, partition));
        let existed = fs::symlink_metadata(&dir).is_ok();
        let log = match PartitionLog::create_with(&log_dir, topic, partition, params) {
            Ok(log) => Arc::new(log),
            Err(error) => {
                // Leave nothing half-made behind (out of descriptors or space after the
                // directory was made); something that was there before is not ours to remove.
                if !existed && fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
                    let _ = fs::remove_dir_all(&dir);
                }
                return Err(error);
            }
        };
        unpoison(self.logs.write())
            .entry(topic.to_owned())
            .or_default()
            .insert(partition, Arc::clone(&log));
        tracing::info!(topic, partition, dir = %log.dir().display(), "created partition log");
        Ok(log)
    }

    /// Removes the log of `topic`/`partition` and deletes its directory, as Kafka does: the
    /// directory is first renamed to `<topic>-<partition>.<uuid>-delete` (skipped at
    /// start-up if the deletion does not finish), then deleted. Returns the removed log:
    /// reads already holding it keep working on the open files; appends fail. `Ok(None)` if
    /// there was no such log. Blocking file I/O.
    pub fn remove(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Option<Arc<PartitionLog>>, StorageError> {
        let _admin = unpoison(self.admin.lock());
        let Some(log) = self.get(topic, partition) else {
            return Ok(None);
        };
        let doomed = log.log_dir().join(format!(
            "{}.{}-delete",
            partition_dir_name(topic, partition),
            uuid::Uuid::new_v4().simple()
        ));
        fs::rename(log.dir(), &doomed).map_err(|e| StorageError::io(log.dir(), e))?;
        log.mark_deleted();
        if let Some(starts) = self.log_starts_of(log.log_dir()) {
            starts.remove(topic, partition);
            if let Err(error) = starts.persist() {
                tracing::warn!(dir = %log.log_dir().display(), %error, "could not write the log start offset checkpoint");
            }
        }
        {
            let mut logs = unpoison(self.logs.write());
            if let Some(partitions) = logs.get_mut(topic) {
                partitions.remove(&partition);
                if partitions.is_empty() {
                    logs.remove(topic);
                }
            }
        }
        if let Err(error) = fs::remove_dir_all(&doomed) {
            tracing::warn!(dir = %doomed.display(), %error, "could not delete a removed partition's directory");
        }
        tracing::info!(topic, partition, "removed partition log");
        Ok(Some(log))
    }

    /// The config a log of `topic` gets: the topic's own, else the default.
    pub fn config_for(&self, topic: &str) -> LogConfig {
        unpoison(self.topic_configs.read())
            .get(topic)
            .cloned()
            .unwrap_or_else(|| unpoison(self.default_config.read()).clone())
    }

    /// Sets `topic`'s config (its defaults merged with its overrides, built by the caller)
    /// and applies it to the topic's open logs.
    pub fn set_topic_config(&self, topic: &str, config: LogConfig) {
        for log in self.topic_logs(topic) {
            log.set_config(config.clone());
        }
        unpoison(self.topic_configs.write()).insert(topic.to_owned(), config);
    }

    /// Forgets `topic`'s own config: its logs go back to the default.
    pub fn clear_topic_config(&self, topic: &str) {
        unpoison(self.topic_configs.write()).remove(topic);
        let config = unpoison(self.default_config.read()).clone();
        for log in self.topic_logs(topic) {
            log.set_config(config.clone());
        }
    }

    /// Replaces the default config (a broker config change) and applies it to the logs of
    /// topics without their own.
    pub fn set_default_config(&self, config: LogConfig) {
        *unpoison(self.default_config.write()) = config.clone();
        let topic_configs = unpoison(self.topic_configs.read());
        for log in self.all_logs() {
            if !topic_configs.contains_key(log.topic()) {
                log.set_config(config.clone());
            }
        }
    }

    /// Flushes every log whose `flush.ms` has passed since its last flush (Kafka's
    /// `flushDirtyLogs`); returns how many were flushed. A failing log is logged and
    /// skipped. Blocking file I/O.
    pub fn flush_due(&self, now_ms: i64) -> usize {
        let mut flushed = 0;
        for log in self.all_logs() {
            match log.flush_if_due(now_ms) {
                Ok(done) => flushed += usize::from(done),
                Err(error) => tracing::error!(log = %log.name(), %error, "flush failed"),
            }
        }
        flushed
    }

    /// Syncs every log to disk. Blocking file I/O.
    pub fn flush_all(&self) -> Result<(), StorageError> {
        for log in self.all_logs() {
            log.flush()?;
        }
        Ok(())
    }

    /// Runs retention on every log (see [`PartitionLog::enforce_retention`]) at wall-clock
    /// time `now_ms`, then persists the log start offsets that moved; returns the number of
    /// segments deleted. A failing log is logged and skipped. Blocking file I/O.
    pub fn enforce_retention(&self, now_ms: i64) -> usize {
        let mut deleted = 0;
        let mut touched = vec![false; self.log_dirs.len()];
        for log in self.all_logs() {
            match log.enforce_retention(now_ms) {
                Ok(0) => {}
                Ok(count) => {
                    deleted += count;
                    if let Some(i) = self.log_dirs.iter().position(|d| d == log.log_dir()) {
                        touched[i] = true;
                    }
                }
                Err(error) => tracing::error!(log = %log.name(), %error, "retention failed"),
            }
        }
        for (starts, _) in self.log_starts.iter().zip(&touched).filter(|(_, t)| **t) {
            if let Err(error) = starts.persist() {
                tracing::warn!(%error, "could not write the log start offset checkpoint");
            }
        }
        deleted
    }

    /// Expires idle idempotent producers in every log (see
    /// [`PartitionLog::expire_producers`]) at wall-clock time `now_ms`; returns how many.
    pub fn expire_producers(&self, now_ms: i64) -> usize {
        self.all_logs()
            .iter()
            .map(|log| log.expire_producers(now_ms))
            .sum()
    }

    /// DeleteRecords on one partition (see [`PartitionLog::delete_records_before`]; the new
    /// log start offset is persisted). `Ok(None)` if there is no such log.
    pub fn delete_records(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<Option<i64>, StorageError> {
        self.get(topic, partition)
            .map(|log| log.delete_records_before(offset))
            .transpose()
    }

    /// Writes Kafka's checkpoint files in every log directory: the recovery points
    /// (`recovery-point-offset-checkpoint`), the log start offsets
    /// (`log-start-offset-checkpoint`) and the high watermarks
    /// (`replication-offset-checkpoint`). Blocking file I/O.
    pub fn checkpoint(&self) -> Result<(), StorageError> {
        let logs = self.all_logs();
        for (log_dir, starts) in self.log_dirs.iter().zip(&self.log_starts) {
            let in_dir: Vec<&Arc<PartitionLog>> =
                logs.iter().filter(|log| log.log_dir() == log_dir).collect();
            // Flushes leave the active segments' index files unsynced (issue 14): they are
            // synced here, next to the recovery point they go with.
            for log in &in_dir {
                if let Err(error) = log.sync_active_indexes() {
                    tracing::warn!(partition = %log.name(), %error, "could not sync the index files");
                }
            }
            let entries = |offset: &dyn Fn(&PartitionLog) -> i64| -> Vec<(String, i32, i64)> {
                in_dir
                    .iter()
                    .map(|log| (log.topic().to_owned(), log.partition(), offset(log)))
                    .collect()
            };
            for (name, offsets) in [
                (
                    checkpoint::RECOVERY_POINT_CHECKPOINT,
                    entries(&PartitionLog::recovery_point),
                ),
                (
                    checkpoint::REPLICATION_OFFSET_CHECKPOINT,
                    entries(&PartitionLog::high_watermark),
                ),
            ] {
                let path = log_dir.join(name);
                checkpoint::write_checkpoint(&path, &offsets)
                    .map_err(|e| StorageError::io(path, e))?;
            }
            for log in &in_dir {
                starts.set(log.topic(), log.partition(), log.log_start_offset());
            }
            starts.persist().map_err(|e| {
                StorageError::io(log_dir.join(checkpoint::LOG_START_OFFSET_CHECKPOINT), e)
            })?;
        }
        Ok(())
    }

    /// Shuts the logs down cleanly, as Kafka's `LogManager.shutdown`: closes every log
    /// (closing time index entries, everything synced, later appends refused), writes the
    /// checkpoints, then Kafka's clean shutdown marker (`.kafka_cleanshutdown`) in each log
    /// directory whose logs all closed, so that the next start skips recovery. Blocking file
    /// I/O.
    pub fn shutdown(&self) -> Result<(), StorageError> {
        self.shutdown_at_epoch(-1)
    }

    /// [`Self::shutdown`], writing `broker_epoch` (this broker's registration epoch, -1 if
    /// none) into the markers as Kafka's `LogManager.shutdown(brokerEpoch)` does.
    pub fn shutdown_at_epoch(&self, broker_epoch: i64) -> Result<(), StorageError> {
        let mut failed_dirs: Vec<PathBuf> = Vec::new();
        let mut first_error = None;
        for log in self.all_logs() {
            if let Err(error) = log.close() {
                tracing::error!(log = %log.name(), %error, "could not close a log");
                failed_dirs.push(log.log_dir().to_owned());
                first_error.get_or_insert(error);
            }
        }
        self.checkpoint()?;
        for log_dir in &self.log_dirs {
            if failed_dirs.contains(log_dir) {
                continue;
            }
            checkpoint::write_clean_shutdown(log_dir, broker_epoch)
                .map_err(|e| StorageError::io(log_dir.join(checkpoint::CLEAN_SHUTDOWN_FILE), e))?;
        }
        tracing::info!(
            log_dirs = self.log_dirs.len(),
            "partition logs shut down cleanly"
        );
        first_error.map_or(Ok(()), Err)
    }

    /// Starts the periodic jobs on the current tokio runtime: flushing by `flush.ms`,
    /// retention, checkpoints and producer expiration, each at its [`MaintenanceSchedule`] interval and on the
    /// blocking thread pool. The manager is reached through `owner` (for example the
    /// broker, with `|broker| &broker.logs`), held weakly: the task ends once `owner` is
    /// dropped (or when the returned handle is aborted).
    pub fn spawn_background_tasks<T: Send + Sync + 'static>(
        owner: &Arc<T>,
        logs: fn(&T) -> &LogManager,
        schedule: MaintenanceSchedule,
    ) -> tokio::task::JoinHandle<()> {
        let owner: Weak<T> = Arc::downgrade(owner);
        tokio::spawn(async move {
            let jobs: [(Option<u64>, Job); 4] = [
                (schedule.flush_check_interval_ms, Job::Flush),
                (schedule.retention_check_interval_ms, Job::Retention),
                (schedule.checkpoint_interval_ms, Job::Checkpoint),
                (
                    schedule.producer_expiration_interval_ms,
                    Job::ProducerExpiration,
                ),
            ];
            let mut timers: Vec<(tokio::time::Interval, Job)> = jobs
                .into_iter()
                .filter_map(|(ms, job)| {
                    let period = Duration::from_millis(ms?.max(1));
                    let mut timer =
                        tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    Some((timer, job))
                })
                .collect();
            if timers.is_empty() {
                return;
            }
            loop {
                let ticks = timers.iter_mut().map(|(timer, job)| {
                    let job = *job;
                    Box::pin(async move {
                        timer.tick().await;
                        job
                    })
                });
                let (job, _, _) = futures_util::future::select_all(ticks).await;
                let Some(owner) = owner.upgrade() else {
                    return;
                };
                let run = tokio::task::spawn_blocking(move || {
                    let manager = logs(&owner);
                    match job {
                        Job::Flush => {
                            manager.flush_due(now_ms());
                        }
                        Job::Retention => {
                            manager.enforce_retention(now_ms());
                        }
                        Job::ProducerExpiration => {
                            manager.expire_producers(now_ms());
                        }
                        Job::Checkpoint => {
                            if let Err(error) = manager.checkpoint() {
                                tracing::error!(%error, "could not write the checkpoints");
                            }
                        }
                    }
                });
                if let Err(error) = run.await {
                    tracing::error!(%error, "a log maintenance job failed");
                }
            }
        })
    }

    /// Every open log.
    fn all_logs(&self) -> Vec<Arc<PartitionLog>> {
        unpoison(self.logs.read())
            .values()
            .flat_map(|partitions| partitions.values().cloned())
            .collect()
    }

    /// The open logs of `topic`.
    fn topic_logs(&self, topic: &str) -> Vec<Arc<PartitionLog>> {
        unpoison(self.logs.read())
            .get(topic)
            .map(|partitions| partitions.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The log start offsets of `log_dir`.
    pub(super) fn log_starts_of(&self, log_dir: &Path) -> Option<Arc<LogStartOffsets>> {
        self.log_dirs
            .iter()
            .position(|dir| dir == log_dir)
            .map(|i| Arc::clone(&self.log_starts[i]))
    }

    /// The usable log directory holding the fewest partitions (the first on ties).
    fn least_loaded_log_dir(&self) -> &Path {
        let logs = unpoison(self.logs.read());
        let load = |dir: &Path| {
            logs.values()
                .flat_map(HashMap::values)
                .filter(|log| log.log_dir() == dir)
                .count()
        };
        self.log_dirs
            .iter()
            .min_by_key(|dir| load(dir))
            .map(PathBuf::as_path)
            .expect("a manager has at least one log directory")
    }
}

/// Creates `log_dir` if needed and adds its partition directories to `candidates`; odd
/// names go to `errors`. Fails if the directory cannot be created or listed.
fn list_log_dir(
    log_dir: &Path,
    candidates: &mut Vec<Candidate>,
    futures: &mut Vec<FoundFuture>,
    errors: &mut Vec<DirError>,
) -> Result<(), StorageError> {
    fs::create_dir_all(log_dir).map_err(|e| StorageError::io(log_dir, e))?;
    let entries = fs::read_dir(log_dir).map_err(|e| StorageError::io(log_dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io(log_dir, e))?;
        let path = entry.path();
        // Follows symbolic links; a dangling one is not a directory.
        if !fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            errors.push(DirError {
                path: path.clone(),
                error: StorageError::InvalidPartitionDir { path },
            });
            continue;
        };
        if let Some((topic, partition)) = parse_future_dir_name(name) {
            futures.push(FoundFuture {
                log_dir: log_dir.to_owned(),
                path: path.clone(),
                topic: topic.to_owned(),
                partition,
            });
            continue;
        }
        if SKIPPED_SUFFIXES.iter().any(|suffix| name.ends_with(suffix)) {
            tracing::debug!(dir = %path.display(), "skipping a directory being deleted or moved");
            continue;
        }
        match parse_partition_dir_name(name) {
            Some((METADATA_TOPIC, _)) => {}
            Some((topic, partition)) => candidates.push(Candidate {
                log_dir: log_dir.to_owned(),
                topic: topic.to_owned(),
                partition,
                params: OpenParams::default(),
            }),
            None => errors.push(DirError {
                path: path.clone(),
                error: StorageError::InvalidPartitionDir { path },
            }),
        }
    }
    Ok(())
}

/// Opens the candidates on a few threads; results in candidate order.
fn open_all(candidates: &[Candidate]) -> Vec<Result<PartitionLog, StorageError>> {
    let open = |c: &Candidate| {
        PartitionLog::open_with(&c.log_dir, &c.topic, c.partition, c.params.clone())
    };
    let threads = std::thread::available_parallelism()
        .map_or(4, usize::from)
        .min(MAX_OPEN_THREADS)
        .min(candidates.len());
    if threads <= 1 {
        return candidates.iter().map(open).collect();
    }
    let next = AtomicUsize::new(0);
    let mut results: Vec<(usize, Result<PartitionLog, StorageError>)> =
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(candidate) = candidates.get(i) else {
                                break done;
                            };
                            done.push((i, open(candidate)));
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|worker| {
                    worker
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
    results.sort_unstable_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, result)| result).collect()
}

/// A periodic job of [`LogManager::spawn_background_tasks`].
#[derive(Clone, Copy, Debug)]
enum Job {
    Flush,
    Retention,
    Checkpoint,
    ProducerExpiration,
}

/// Kafka's `LogManager.readBrokerEpochFromCleanShutdownFiles`: the broker epoch of the
/// clean shutdown markers of `dirs` if every directory is usable (`all_usable`) and every
/// marker names the same one, else -1.
fn clean_shutdown_epoch(dirs: &[PathBuf], all_usable: bool) -> i64 {
    if !all_usable {
        return -1;
    }
    let mut epochs = dirs
        .iter()
        .map(|d| checkpoint::read_clean_shutdown_epoch(d));
    let Some(Some(first)) = epochs.next() else {
        return -1;
    };
    if epochs.all(|e| e == Some(first)) {
        first
    } else {
        -1
    }
}
