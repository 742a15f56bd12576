//! `gregor format` and `gregor random-uuid`: Kafka's `kafka-storage.sh` (`StorageTool`,
//! `Formatter`) for the nodes of a cluster, which must share one cluster id: each node's
//! directories (every `log.dirs` entry and `metadata.log.dir`) get a version 1
//! `meta.properties` with the given cluster id, this node's id and a directory id of their
//! own.
//!
//! Differences from Kafka: no `bootstrap.checkpoint` is written; the first active
//! controller of an empty metadata log writes the bootstrap records itself (at the
//! `metadata.version` this broker writes), which is the content Kafka's formatter would
//! have put in that file. `--release-version`, `--feature` and `--add-scram` are not
//! offered (`gregor.bootstrap.scram` carries SCRAM credentials).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::meta_properties::{MetaProperties, uuid_from_base64};
use crate::config::Config;

/// The directories `format` writes: every log directory and the metadata log directory.
pub fn directories(config: &Config) -> Vec<PathBuf> {
    let mut seen = BTreeSet::new();
    config
        .log_dirs
        .iter()
        .map(PathBuf::as_path)
        .chain(std::iter::once(config.effective_metadata_log_dir()))
        .filter(|dir| seen.insert(dir.to_path_buf()))
        .map(Path::to_path_buf)
        .collect()
}

/// Formats this node's directories with `cluster_id` (Kafka's `Formatter.doFormat`):
/// refuses a directory whose `meta.properties` names another cluster or node, and any
/// formatted directory unless `ignore_formatted` (which then formats the others). Returns
/// the lines to print.
pub fn format(
    config: &Config,
    cluster_id: &str,
    ignore_formatted: bool,
) -> Result<Vec<String>, String> {
    uuid_from_base64(cluster_id).map_err(|e| {
        format!("Cluster ID string {cluster_id} does not appear to be a valid UUID: {e}")
    })?;
    if config.node_id < 0 {
        return Err("You must specify a valid non-negative node ID.".to_string());
    }
    let dirs = directories(config);
    let mut empty = Vec::new();
    let mut formatted = Vec::new();
    for dir in &dirs {
        match MetaProperties::read(dir) {
            Ok(None) => empty.push(dir.clone()),
            Ok(Some(meta)) => {
                let path = dir.join("meta.properties");
                if meta.cluster_id != cluster_id {
                    return Err(format!(
                        "Invalid cluster.id in: {}. Expected {cluster_id}, but read {}",
                        path.display(),
                        meta.cluster_id
                    ));
                }
                meta.check_node_id(config.node_id, &path)
                    .map_err(|e| e.to_string())?;
                formatted.push(dir.clone());
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    if let Some(first) = formatted.first()
        && !ignore_formatted
    {
        return Err(format!(
            "Log directory {} is already formatted. Use --ignore-formatted to ignore this \
             directory and format the others.",
            first.display()
        ));
    }
    if empty.is_empty() {
        return Ok(vec![
            "All of the log directories are already formatted.".to_string(),
        ]);
    }
    let metadata_dir = config.effective_metadata_log_dir();
    let mut lines = Vec::new();
    for dir in empty {
        std::fs::create_dir_all(&dir).map_err(|e| {
            format!(
                "Error while writing meta.properties file {}: {e}",
                dir.display()
            )
        })?;
        // A directory id of its own (`MetaProperties::new` draws one).
        let meta = MetaProperties::new(cluster_id, config.node_id);
        meta.write(&dir).map_err(|e| {
            format!(
                "Error while writing meta.properties file {}: {e}",
                dir.display()
            )
        })?;
        let kind = if dir == metadata_dir {
            "metadata log directory"
        } else {
            "data directory"
        };
        lines.push(format!(
            "Formatting {kind} {} with cluster id {cluster_id}.",
            dir.display()
        ));
    }
    Ok(lines)
}

/// Kafka's refusal to start a KRaft node on an unformatted directory
/// (`KafkaRaftServer.initializeLogDirs`).
pub fn unformatted_message(dir: &Path) -> String {
    format!(
        "No `meta.properties` found in {} (have you run `gregor format` to format the \
         directory?)",
        dir.display()
    )
}

/// A new random cluster id (`random-uuid`).
pub fn random_cluster_id() -> String {
    super::meta_properties::random_cluster_id()
}
