//! Kafka's per-log-directory files: the offset checkpoints and the clean shutdown marker.
//!
//! ```text
//! recovery-point-offset-checkpoint, log-start-offset-checkpoint, replication-offset-checkpoint:
//!   0                      version
//!   2                      number of entries
//!   my-topic 0 1234        topic, partition, offset (one line each)
//!   my-topic 1 99
//! .kafka_cleanshutdown:    {"version":0,"brokerEpoch":42}   (the broker epoch at the shutdown)
//! ```
//!
//! Checkpoints are written as Kafka writes them: to `<name>.tmp`, synced, renamed over the
//! old file, then the directory is synced.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Offsets up to which each partition's data was synced to disk.
pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
/// Log start offsets raised above the first segment's base offset.
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";
/// High watermarks (the log end offsets on this single-node broker).
pub const REPLICATION_OFFSET_CHECKPOINT: &str = "replication-offset-checkpoint";
/// The marker Kafka writes in each log directory after a clean shutdown.
pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";

/// The only checkpoint format version.
const VERSION: &str = "0";

/// Offsets by (topic, partition).
pub(crate) type Offsets = HashMap<(String, i32), i64>;

/// Reads a checkpoint file. `Ok(None)` if it does not exist; a file that is not in Kafka's
/// format is an `InvalidData` error.
pub(crate) fn read_checkpoint(path: &Path) -> io::Result<Option<Offsets>> {
    let Some(entries) = read_entries(path, |line| {
        let mut fields = line.split_whitespace();
        let (Some(topic), Some(partition), Some(offset), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err("malformed checkpoint line");
        };
        let partition: i32 = partition.parse().map_err(|_| "malformed partition")?;
        let offset: i64 = offset.parse().map_err(|_| "malformed offset")?;
        Ok(((topic.to_owned(), partition), offset))
    })?
    else {
        return Ok(None);
    };
    let count = entries.len();
    let offsets: Offsets = entries.into_iter().collect();
    if offsets.len() != count {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "entry count does not match the entries",
        ));
    }
    Ok(Some(offsets))
}

/// Reads a file in the format of Kafka's `CheckpointFile`: the version (`0`), the number of
/// entries, that many entry lines, then nothing but blank lines; `parse` reads one entry
/// line (or says what is wrong with it). `Ok(None)` if the file does not exist; a file not
/// in the format is an `InvalidData` error.
pub(crate) fn read_entries<T>(
    path: &Path,
    mut parse: impl FnMut(&str) -> Result<T, &'static str>,
) -> io::Result<Option<Vec<T>>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some(VERSION) {
        return Err(invalid("unsupported checkpoint version"));
    }
    let count: usize = lines
        .next()
        .and_then(|line| line.trim().parse().ok())
        .ok_or_else(|| invalid("missing entry count"))?;
    let mut entries = Vec::with_capacity(count.min(1 << 16));
    for line in lines.by_ref().take(count) {
        entries.push(parse(line).map_err(invalid)?);
    }
    if entries.len() != count || lines.any(|line| !line.trim().is_empty()) {
        return Err(invalid("entry count does not match the entries"));
    }
    Ok(Some(entries))
}

/// Writes a checkpoint file atomically (sorted entries, for stable output).
pub(crate) fn write_checkpoint(path: &Path, entries: &[(String, i32, i64)]) -> io::Result<()> {
    let mut sorted: Vec<&(String, i32, i64)> = entries.iter().collect();
    sorted.sort_unstable();
    let mut text = format!("{VERSION}\n{}\n", sorted.len());
    for (topic, partition, offset) in sorted {
        text.push_str(&format!("{topic} {partition} {offset}\n"));
    }
    write_atomically(path, text.as_bytes())
}

/// Writes the clean shutdown marker in `log_dir`, as Kafka's `CleanShutdownFileHandler`:
/// with the broker epoch of the registration that ends (-1 for none), which the next
/// registration sends as its `PreviousBrokerEpoch` (KIP-966).
pub(crate) fn write_clean_shutdown(log_dir: &Path, broker_epoch: i64) -> io::Result<()> {
    let text = format!("{{\"version\":0,\"brokerEpoch\":{broker_epoch}}}");
    let path = log_dir.join(CLEAN_SHUTDOWN_FILE);
    let mut file = File::create(&path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    sync_dir(log_dir)
}

/// Whether `log_dir` holds the clean shutdown marker.
pub(crate) fn has_clean_shutdown(log_dir: &Path) -> bool {
    log_dir.join(CLEAN_SHUTDOWN_FILE).is_file()
}

/// The broker epoch in `log_dir`'s clean shutdown marker; `None` when there is no marker,
/// it is not JSON or it has no numeric `brokerEpoch` (an empty marker of an older Kafka).
pub(crate) fn read_clean_shutdown_epoch(log_dir: &Path) -> Option<i64> {
    let text = fs::read(log_dir.join(CLEAN_SHUTDOWN_FILE)).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&text).ok()?;
    value.get("brokerEpoch")?.as_i64()
}

/// Deletes the clean shutdown marker of `log_dir` (missing is fine).
pub(crate) fn delete_clean_shutdown(log_dir: &Path) -> io::Result<()> {
    match fs::remove_file(log_dir.join(CLEAN_SHUTDOWN_FILE)) {
        Ok(()) => sync_dir(log_dir),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

/// Writes `bytes` to `<path>.tmp`, syncs it, renames it to `path` and syncs the directory.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = Path::new(&tmp);
    {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(tmp, path)?;
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => Ok(()),
    }
}

/// Syncs a directory, so that files created, renamed or removed in it stay so.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The log start offsets of one log directory's partitions, persisted to its
/// `log-start-offset-checkpoint` when they change (DeleteRecords, retention) and at
/// checkpoints.
#[derive(Debug)]
pub(crate) struct LogStartOffsets {
    log_dir: std::path::PathBuf,
    offsets: std::sync::Mutex<Offsets>,
}

impl LogStartOffsets {
    /// No partition yet, for `log_dir`.
    pub(crate) fn new(log_dir: &Path) -> LogStartOffsets {
        LogStartOffsets {
            log_dir: log_dir.to_owned(),
            offsets: std::sync::Mutex::new(Offsets::new()),
        }
    }

    /// Records a partition's log start offset (written by the next [`Self::persist`]).
    pub(crate) fn set(&self, topic: &str, partition: i32, offset: i64) {
        super::unpoison(self.offsets.lock()).insert((topic.to_owned(), partition), offset);
    }

    /// Forgets a removed partition.
    pub(crate) fn remove(&self, topic: &str, partition: i32) {
        super::unpoison(self.offsets.lock()).remove(&(topic.to_owned(), partition));
    }

    /// Writes the checkpoint file (serialised: the lock is held while writing).
    pub(crate) fn persist(&self) -> io::Result<()> {
        let offsets = super::unpoison(self.offsets.lock());
        let entries: Vec<(String, i32, i64)> = offsets
            .iter()
            .map(|((topic, partition), offset)| (topic.clone(), *partition, *offset))
            .collect();
        write_checkpoint(&self.log_dir.join(LOG_START_OFFSET_CHECKPOINT), &entries)
    }
}

#[cfg(test)]
mod tests {
    use super::super::LogManager;
    use super::*;

    #[test]
    fn the_broker_epoch_of_a_clean_shutdown_is_read_once_at_the_next_start() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dirs = vec![tmp.path().join("a"), tmp.path().join("b")];
        let manager = LogManager::open(&dirs).expect("open");
        assert_eq!(manager.previous_broker_epoch(), -1);
        manager.shutdown_at_epoch(42).expect("shutdown");
        drop(manager);
        assert_eq!(read_clean_shutdown_epoch(&dirs[0]), Some(42));
        let manager = LogManager::open(&dirs).expect("reopen");
        assert_eq!(manager.previous_broker_epoch(), 42);
        // The markers are gone: a crash now is no clean shutdown.
        drop(manager);
        assert_eq!(
            LogManager::open(&dirs)
                .expect("reopen")
                .previous_broker_epoch(),
            -1
        );
        // Directories that disagree, or an empty marker of an older Kafka: none.
        write_clean_shutdown(&dirs[0], 7).expect("marker");
        write_clean_shutdown(&dirs[1], 8).expect("marker");
        assert_eq!(
            LogManager::open(&dirs)
                .expect("reopen")
                .previous_broker_epoch(),
            -1
        );
        fs::write(dirs[0].join(CLEAN_SHUTDOWN_FILE), b"").expect("marker");
        assert_eq!(read_clean_shutdown_epoch(&dirs[0]), None);
    }
}
