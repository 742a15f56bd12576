//! Moving a partition's replica to another log directory of this broker (AlterReplicaLogDirs,
//! KIP-113), as Kafka's `ReplicaAlterLogDirsThread` and `LogManager.replaceCurrentWithFutureLog`
//! do, in one pass instead of a fetcher:
//!
//! 1. [`LogManager::start_move`] checks the request and makes the future replica's directory
//!    `<target>/<topic>-<partition>.<uuid>-future` (Kafka's `UnifiedLog.logFutureDirName`).
//! 2. [`LogManager::run_move`] (blocking, on its own thread) copies the files of the current
//!    replica there while it keeps serving: closed segments whole, the growing segment up to
//!    its current end. Then, under the manager's admin lock and the log's writer lock (no
//!    append runs), it copies what was appended meanwhile, syncs, renames the current
//!    directory to `<topic>-<partition>.<uuid>-delete`, renames the future directory to
//!    `<target>/<topic>-<partition>`, opens it (indexes rebuilt from the segments, the
//!    producer state handed over from the current replica), and publishes it in place of
//!    the old log, to which appends still waiting for the lock are forwarded. The `-delete` directory is removed afterwards.
//!
//! Index files are not copied: the open rebuilds them from the segments, so a buffered
//! index entry can never be lost on the way.
//!
//! Crash safety (see [`recover_future_dirs`]): a `-future` directory found at start-up next
//! to a current replica is an unfinished copy; it is discarded and the move started again
//! from scratch (Kafka resumes its copy; the outcome is the same). A `-future` directory
//! without a current replica but with the old one set aside (`-delete`) means the crash
//! came between the two renames of the swap, after the copy was complete and synced: it is
//! renamed to the partition's directory and opened (the `-delete` one is left to be
//! skipped). Any other `-future` directory is skipped.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use gregor_protocol::error_code;

use super::manager::LogManager;
use super::partition::{OpenParams, PartitionLog, partition_dir_name};
use super::{StorageError, unpoison};

/// Suffix of a future replica's directory.
const FUTURE_SUFFIX: &str = "-future";
/// The longest directory name Kafka accepts for a future replica (a file name limit of
/// most file systems; Kafka answers `INVALID_TOPIC_EXCEPTION` past it).
const MAX_DIR_NAME_LEN: usize = 255;

/// A replica being copied into another log directory: Kafka's future log.
#[derive(Debug)]
pub struct FutureReplica {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The log directory it moves to.
    pub target_log_dir: PathBuf,
    /// Its `-future` directory.
    pub dir: PathBuf,
    /// The offset up to which it holds the current replica's data.
    copied_end: AtomicI64,
    /// Set when a new request moves the replica elsewhere (or back): the copy stops and its
    /// directory is removed.
    cancelled: AtomicBool,
}

impl FutureReplica {
    /// The offset up to which the future replica holds the data.
    pub fn copied_end(&self) -> i64 {
        self.copied_end.load(Ordering::Acquire)
    }

    /// Bytes of its segment files on disk so far.
    pub fn size(&self) -> u64 {
        fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    }
}

/// The moves in progress, by partition.
#[derive(Debug, Default)]
pub(crate) struct Moves {
    moving: Mutex<HashMap<(String, i32), Arc<FutureReplica>>>,
    /// Moves to start again once the broker runs (their `-future` directories were found at
    /// start-up next to the current replica): (topic, partition, target log dir).
    resumable: Mutex<Vec<(String, i32, PathBuf)>>,
}

impl Moves {
    /// Remembers a move interrupted by a restart.
    pub(crate) fn add_resumable(&self, topic: String, partition: i32, target: PathBuf) {
        unpoison(self.resumable.lock()).push((topic, partition, target));
    }
}

/// Why a replica cannot be moved, with the error code Kafka answers.
#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    /// The path is not one of the configured log directories (`LOG_DIR_NOT_FOUND`).
    #[error("log directory {0} is not a configured log directory")]
    LogDirNotFound(String),
    /// The target directory is offline (`KAFKA_STORAGE_ERROR`).
    #[error("log directory {0} is offline")]
    LogDirOffline(String),
    /// The future directory's name would be too long (`INVALID_TOPIC_EXCEPTION`).
    #[error("the topic name is too long to move its replica")]
    TopicTooLong,
    /// This broker holds no replica of the partition (`REPLICA_NOT_AVAILABLE`, which Kafka
    /// keeps for this API where others say `NOT_LEADER_OR_FOLLOWER`).
    #[error("no replica of {0}-{1} on this broker")]
    NotHosted(String, i32),
    /// The future directory could not be made (`KAFKA_STORAGE_ERROR`).
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl MoveError {
    /// The error code of the AlterReplicaLogDirs response.
    pub fn code(&self) -> i16 {
        match self {
            MoveError::LogDirNotFound(_) => error_code::LOG_DIR_NOT_FOUND,
            MoveError::LogDirOffline(_) | MoveError::Storage(_) => error_code::KAFKA_STORAGE_ERROR,
            MoveError::TopicTooLong => error_code::INVALID_TOPIC_EXCEPTION,
            MoveError::NotHosted(..) => error_code::REPLICA_NOT_AVAILABLE,
        }
    }
}

/// What [`LogManager::start_move`] did.
#[derive(Debug)]
pub enum MoveStart {
    /// The replica is already in that directory (a move elsewhere was cancelled).
    AlreadyThere,
    /// A move to that directory is already under way.
    InProgress,
    /// A future replica was made: run [`LogManager::run_move`] with it.
    Started(Arc<FutureReplica>),
}

impl LogManager {
    /// Starts moving the replica of `topic`/`partition` to the log directory `target` (as
    /// the request spells it: one of `log.dirs`, absolute): checks it as Kafka's
    /// `ReplicaManager.alterReplicaLogDirs` does and makes the future replica's directory.
    /// Blocking file I/O.
    pub fn start_move(
        &self,
        topic: &str,
        partition: i32,
        target: &str,
    ) -> Result<MoveStart, MoveError> {
        let name = partition_dir_name(topic, partition);
        if format!("{name}.{}{FUTURE_SUFFIX}", uuid::Uuid::nil().simple()).len() > MAX_DIR_NAME_LEN
        {
            return Err(MoveError::TopicTooLong);
        }
        let target_dir = self.resolve_log_dir(target)?;
        let _admin = unpoison(self.admin.lock());
        let log = self
            .get(topic, partition)
            .ok_or_else(|| MoveError::NotHosted(topic.to_owned(), partition))?;
        let key = (topic.to_owned(), partition);
        let mut moving = unpoison(self.moves.moving.lock());
        if let Some(current) = moving.get(&key) {
            if current.target_log_dir == target_dir {
                return Ok(MoveStart::InProgress);
            }
            // Kafka's `futureReplicaDirChanged`: the old future replica is dropped.
            current.cancelled.store(true, Ordering::Release);
            moving.remove(&key);
        }
        if log.log_dir() == target_dir {
            return Ok(MoveStart::AlreadyThere);
        }
        let dir = target_dir.join(format!(
            "{name}.{}{FUTURE_SUFFIX}",
            uuid::Uuid::new_v4().simple()
        ));
        fs::create_dir(&dir).map_err(|e| StorageError::io(&dir, e))?;
        let future = Arc::new(FutureReplica {
            topic: topic.to_owned(),
            partition,
            target_log_dir: target_dir,
            dir,
            copied_end: AtomicI64::new(log.log_start_offset()),
            cancelled: AtomicBool::new(false),
        });
        moving.insert(key, Arc::clone(&future));
        tracing::info!(topic, partition, to = %future.dir.display(), "moving a replica to another log directory");
        Ok(MoveStart::Started(future))
    }

    /// Copies the replica into `future` and swaps it in (see the module docs). `Ok(true)`
    /// once the partition lives in the target directory, `Ok(false)` if the move was
    /// cancelled or the partition went away (deleted, broker shutting down); the future
    /// directory is removed unless the swap happened. Blocking file I/O, for a thread of
    /// its own.
    pub fn run_move(&self, future: &Arc<FutureReplica>) -> Result<bool, StorageError> {
        let result = self.copy_and_swap(future);
        if !matches!(result, Ok(true))
            && let Err(error) = fs::remove_dir_all(&future.dir)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %future.dir.display(), %error, "could not remove a future replica");
        }
        let key = (future.topic.clone(), future.partition);
        let mut moving = unpoison(self.moves.moving.lock());
        if moving.get(&key).is_some_and(|f| Arc::ptr_eq(f, future)) {
            moving.remove(&key);
        }
        match &result {
            Ok(true) => {
                tracing::info!(topic = %future.topic, partition = future.partition, dir = %future.target_log_dir.display(), "moved a replica")
            }
            Ok(false) => {
                tracing::info!(topic = %future.topic, partition = future.partition, "a replica move was abandoned")
            }
            Err(error) => {
                tracing::error!(topic = %future.topic, partition = future.partition, %error, "a replica move failed")
            }
        }
        result
    }

    /// The future replicas being built.
    pub fn future_replicas(&self) -> Vec<Arc<FutureReplica>> {
        unpoison(self.moves.moving.lock())
            .values()
            .cloned()
            .collect()
    }

    /// Starts again the moves a restart interrupted (each returned future replica is to be
    /// run with [`Self::run_move`]); a move that can no longer start is logged and dropped.
    pub fn resume_moves(&self) -> Vec<Arc<FutureReplica>> {
        let pending = std::mem::take(&mut *unpoison(self.moves.resumable.lock()));
        pending
            .into_iter()
            .filter_map(|(topic, partition, target)| {
                match self.start_move(&topic, partition, &target.to_string_lossy()) {
                    Ok(MoveStart::Started(future)) => Some(future),
                    Ok(_) => None,
                    Err(error) => {
                        tracing::warn!(%topic, partition, %error, "cannot resume a replica move");
                        None
                    }
                }
            })
            .collect()
    }

    /// The usable log directory `path` names, or Kafka's error for it.
    fn resolve_log_dir(&self, path: &str) -> Result<PathBuf, MoveError> {
        let wanted = Path::new(path);
        let same =
            |dir: &Path| dir == wanted || std::path::absolute(dir).is_ok_and(|a| a == wanted);
        if let Some(dir) = self.log_dirs().iter().find(|d| same(d)) {
            return Ok(dir.clone());
        }
        if self.offline_log_dirs().iter().any(|d| same(d)) {
            return Err(MoveError::LogDirOffline(path.to_owned()));
        }
        Err(MoveError::LogDirNotFound(path.to_owned()))
    }

    fn copy_and_swap(&self, future: &Arc<FutureReplica>) -> Result<bool, StorageError> {
        let Some(log) = self.get(&future.topic, future.partition) else {
            return Ok(false);
        };
        let mut copied = HashMap::new();
        let end = log.log_end_offset();
        copy_files(log.dir(), &future.dir, &mut copied)?;
        future.copied_end.store(end, Ordering::Release);
        if future.cancelled.load(Ordering::Acquire) {
            return Ok(false);
        }
        let _admin = unpoison(self.admin.lock());
        let still_current = self
            .get(&future.topic, future.partition)
            .is_some_and(|current| Arc::ptr_eq(&current, &log));
        if future.cancelled.load(Ordering::Acquire) || !still_current {
            return Ok(false);
        }
        let swapped = log.with_writer_locked(|| self.swap(&log, future, &mut copied));
        match swapped {
            Ok(parked) => {
                if let Err(error) = fs::remove_dir_all(&parked) {
                    tracing::warn!(dir = %parked.display(), %error, "could not delete the moved replica's old directory");
                }
                Ok(true)
            }
            Err(StorageError::Deleted { .. } | StorageError::Closed { .. }) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// The swap, under the old log's writer lock: the tail copied and synced, the
    /// directories renamed, the new log opened and published. Returns the old directory's
    /// `-delete` path.
    fn swap(
        &self,
        log: &Arc<PartitionLog>,
        future: &FutureReplica,
        copied: &mut HashMap<OsString, u64>,
    ) -> Result<PathBuf, StorageError> {
        copy_files(log.dir(), &future.dir, copied)?;
        sync_dir_files(&future.dir)?;
        let name = partition_dir_name(log.topic(), log.partition());
        let parked = log
            .log_dir()
            .join(format!("{name}.{}-delete", uuid::Uuid::new_v4().simple()));
        let target = future.target_log_dir.join(&name);
        fs::rename(log.dir(), &parked).map_err(|e| StorageError::io(log.dir(), e))?;
        let undo = |error: StorageError| {
            let _ = fs::rename(&target, &future.dir);
            let _ = fs::rename(&parked, log.dir());
            error
        };
        fs::rename(&future.dir, &target).map_err(|e| undo(StorageError::io(&future.dir, e)))?;
        sync_dir(&future.target_log_dir).map_err(undo)?;
        sync_dir(log.log_dir()).map_err(undo)?;
        let log_start = log.log_start_offset();
        let log_end = log.log_end_offset();
        let params = OpenParams {
            config: self.config_for(log.topic()),
            // Everything was synced just now: nothing past the end to recover.
            clean_shutdown: true,
            recovery_point: Some(log_end),
            log_start_offset: Some(log_start),
            log_starts: self.log_starts_of(&future.target_log_dir),
        };
        let moved =
            PartitionLog::open_with(&future.target_log_dir, log.topic(), log.partition(), params)
                .map_err(undo)?;
        if moved.log_end_offset() != log_end {
            return Err(undo(StorageError::InvalidBatch(
                "the copied replica does not end where the current one does",
            )));
        }
        // The snapshots came along with the other small files; the live producer state
        // (every retained batch) is handed over as it is.
        moved.take_producer_state_of(log);
        let moved = Arc::new(moved);
        future.copied_end.store(log_end, Ordering::Release);
        self.replace_log(log, Arc::clone(&moved));
        log.set_successor(moved);
        Ok(parked)
    }
}

/// Makes `to` hold the files of partition directory `from` (index files excepted): new
/// files copied whole, grown ones from where the last copy stopped (segments only grow at
/// their end), files gone from `from` (segments deleted by retention) removed. `copied`
/// keeps the bytes copied per file between calls.
fn copy_files(
    from: &Path,
    to: &Path,
    copied: &mut HashMap<OsString, u64>,
) -> Result<(), StorageError> {
    let mut present = Vec::new();
    for entry in fs::read_dir(from).map_err(|e| StorageError::io(from, e))? {
        let entry = entry.map_err(|e| StorageError::io(from, e))?;
        let name = entry.file_name();
        let text = name.to_string_lossy();
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if !is_file
            || text.ends_with(".index")
            || text.ends_with(".timeindex")
            || text.ends_with(".deleted")
        {
            continue;
        }
        present.push(name.clone());
        let source = entry.path();
        let dest = to.join(&name);
        if text.ends_with(".log") {
            let done = copied.get(&name).copied().unwrap_or(0);
            let total = copy_tail(&source, &dest, done)?;
            copied.insert(name, total);
        } else {
            // Small metadata files (partition.metadata, leader-epoch-checkpoint, snapshots)
            // may be rewritten in place: copied whole each time.
            fs::copy(&source, &dest).map_err(|e| StorageError::io(&source, e))?;
            copied.insert(name, 0);
        }
    }
    copied.retain(|name, _| {
        let keep = present.contains(name);
        if !keep {
            let _ = fs::remove_file(to.join(name));
        }
        keep
    });
    Ok(())
}

/// Appends the bytes of `source` from `from` on to `dest` (created if needed); returns the
/// bytes `dest` holds.
fn copy_tail(source: &Path, dest: &Path, from: u64) -> Result<u64, StorageError> {
    let mut input = File::open(source).map_err(|e| StorageError::io(source, e))?;
    let len = input
        .metadata()
        .map_err(|e| StorageError::io(source, e))?
        .len();
    let mut output = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(dest)
        .map_err(|e| StorageError::io(dest, e))?;
    let from = from.min(len);
    output
        .set_len(from)
        .map_err(|e| StorageError::io(dest, e))?;
    output
        .seek(SeekFrom::Start(from))
        .map_err(|e| StorageError::io(dest, e))?;
    input
        .seek(SeekFrom::Start(from))
        .map_err(|e| StorageError::io(source, e))?;
    let written = std::io::copy(&mut (&mut input).take(len - from), &mut output)
        .map_err(|e| StorageError::io(dest, e))?;
    output.flush().map_err(|e| StorageError::io(dest, e))?;
    Ok(from + written)
}

/// Syncs every file of `dir`, then `dir` itself.
fn sync_dir_files(dir: &Path) -> Result<(), StorageError> {
    for entry in fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))? {
        let path = entry.map_err(|e| StorageError::io(dir, e))?.path();
        File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(|e| StorageError::io(&path, e))?;
    }
    sync_dir(dir)
}

/// Syncs a directory's entries (renames) to disk.
fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| StorageError::io(dir, e))
}

/// Splits a future replica's directory name `<topic>-<partition>.<uuid>-future` into topic
/// and partition.
pub(crate) fn parse_future_dir_name(name: &str) -> Option<(&str, i32)> {
    let stem = name.strip_suffix(FUTURE_SUFFIX)?;
    let (dir_name, id) = stem.rsplit_once('.')?;
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    super::parse_partition_dir_name(dir_name)
}

/// Whether a log dir holds `<name>.<uuid>-delete`: the old replica a swap set aside.
fn has_parked_replica(log_dirs: &[PathBuf], name: &str) -> bool {
    let prefix = format!("{name}.");
    log_dirs.iter().any(|dir| {
        fs::read_dir(dir).into_iter().flatten().flatten().any(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with(&prefix) && n.ends_with("-delete")
        })
    })
}

/// A `-future` directory found at start-up.
#[derive(Debug)]
pub(crate) struct FoundFuture {
    pub(crate) log_dir: PathBuf,
    pub(crate) path: PathBuf,
    pub(crate) topic: String,
    pub(crate) partition: i32,
}

/// Settles the `-future` directories found at start-up (see the module docs): those whose
/// partition has a current replica (`has_current`) are removed and returned as moves to
/// start again; the others are renamed to their partition's directory and returned as
/// partitions to open there. Failures are logged; the directory is then left alone.
pub(crate) fn recover_future_dirs(
    found: Vec<FoundFuture>,
    log_dirs: &[PathBuf],
    has_current: impl Fn(&str, i32) -> bool,
) -> (Vec<(String, i32, PathBuf)>, Vec<FoundFuture>) {
    let mut resume = Vec::new();
    let mut promoted: Vec<FoundFuture> = Vec::new();
    for future in found {
        let promoted_already = promoted
            .iter()
            .any(|p| p.topic == future.topic && p.partition == future.partition);
        if has_current(&future.topic, future.partition) || promoted_already {
            match fs::remove_dir_all(&future.path) {
                Ok(()) => {
                    tracing::info!(dir = %future.path.display(), "discarded an unfinished future replica; the move starts again");
                    if !promoted_already {
                        resume.push((future.topic, future.partition, future.log_dir));
                    }
                }
                Err(error) => {
                    tracing::warn!(dir = %future.path.display(), %error, "could not remove an unfinished future replica")
                }
            }
            continue;
        }
        let name = partition_dir_name(&future.topic, future.partition);
        if !has_parked_replica(log_dirs, &name) {
            // No current replica and no sign of a swap: not ours to decide; left alone.
            tracing::warn!(dir = %future.path.display(), "a future replica without a current one; skipped");
            continue;
        }
        let target = future.log_dir.join(&name);
        match fs::rename(&future.path, &target) {
            Ok(()) => {
                tracing::info!(dir = %target.display(), "completed a replica move interrupted by a restart");
                promoted.push(future);
            }
            Err(error) => {
                tracing::warn!(dir = %future.path.display(), %error, "could not complete an interrupted replica move")
            }
        }
    }
    (resume, promoted)
}
