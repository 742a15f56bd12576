//! Every partition log of the broker's log directories.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use super::partition::{PartitionLog, partition_dir_name};
use super::{StorageError, unpoison};

/// The KRaft metadata log's topic, whose directory the `cluster` module reads.
const METADATA_TOPIC: &str = "__cluster_metadata";
/// Suffixes of directories Kafka is deleting, has set aside or is moving between log dirs.
const SKIPPED_SUFFIXES: [&str; 3] = ["-delete", "-stray", "-future"];
/// Most threads opening partition directories at start-up.
const MAX_OPEN_THREADS: usize = 16;
/// Kafka's longest topic name.
const MAX_TOPIC_LENGTH: usize = 249;

/// A directory that could not be used, with the reason.
#[derive(Debug)]
pub struct DirError {
    /// The log directory or partition directory.
    pub path: PathBuf,
    /// What went wrong.
    pub error: StorageError,
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

/// Kafka's topic name rule: 1 to 249 ASCII letters, digits, `.`, `_` or `-`, not `.` or `..`.
pub(crate) fn is_valid_topic_name(topic: &str) -> bool {
    !topic.is_empty()
        && topic.len() <= MAX_TOPIC_LENGTH
        && topic != "."
        && topic != ".."
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A partition directory found at start-up.
#[derive(Debug)]
struct Candidate {
    log_dir: PathBuf,
    topic: String,
    partition: i32,
}

/// Partition logs by topic name, then partition index (looked up without allocating).
type LogMap = HashMap<String, HashMap<i32, Arc<PartitionLog>>>;

/// The partition logs of all log directories, keyed by topic name and partition index.
///
/// Lookups ([`Self::get`]) take a read lock for a hash lookup and an `Arc` clone; creating
/// and removing logs do their file system work outside that lock.
#[derive(Debug)]
pub struct LogManager {
    log_dirs: Vec<PathBuf>,
    logs: RwLock<LogMap>,
    /// Serialises [`Self::create`] and [`Self::remove`].
    admin: Mutex<()>,
    errors: Vec<DirError>,
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
    /// Blocking: call it at start-up or from a blocking context.
    pub fn open(log_dirs: &[PathBuf]) -> Result<LogManager, StorageError> {
        let mut errors = Vec::new();
        let mut usable = Vec::new();
        let mut candidates = Vec::new();
        for log_dir in log_dirs {
            match list_log_dir(log_dir, &mut candidates, &mut errors) {
                Ok(()) => usable.push(log_dir.clone()),
                Err(error) => errors.push(DirError {
                    path: log_dir.clone(),
                    error,
                }),
            }
        }
        if usable.is_empty() {
            return Err(errors
                .into_iter()
                .next()
                .map_or(StorageError::NoLogDirs, |e| e.error));
        }

        let mut logs = LogMap::new();
        let mut count = 0;
        for (candidate, opened) in candidates.iter().zip(open_all(&candidates)) {
            let log = match opened {
                Ok(log) => log,
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
            errors,
        })
    }

    /// The usable log directories.
    pub fn log_dirs(&self) -> &[PathBuf] {
        &self.log_dirs
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
    /// A directory already on disk but not open is opened. Blocking file I/O.
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
        let log_dir = self.least_loaded_log_dir();
        let log = Arc::new(PartitionLog::create(log_dir, topic, partition)?);
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
    let open = |c: &Candidate| PartitionLog::open(&c.log_dir, &c.topic, c.partition);
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
