//! `<log.dir>/__cluster_metadata-0/quorum-state`: the Raft vote, in the JSON of Kafka's
//! `FileQuorumStateStore` (`QuorumStateData` version 1):
//!
//! ```json
//! {"leaderId":1,"leaderEpoch":3,"votedId":1,"votedDirectoryId":"AAAAAAAAAAAAAAAAAAAAAA","data_version":1}
//! ```
//!
//! openraft's vote is `(term, voted_for, committed)`; `committed` means that a quorum
//! granted it, i.e. that `voted_for` is the leader of the term. So it maps onto Kafka's
//! fields without an extra one: `leaderEpoch` = term, `votedId` = voted_for (-1 for none),
//! `leaderId` = voted_for when committed, else -1; reading back, the vote is committed
//! exactly when `leaderId` is set (and then `leaderId` is the one voted for, as openraft
//! replaces the vote by the elected leader's). Version 0 files (with `clusterId`,
//! `appliedOffset`, `currentVoters`) read the same way.
//!
//! The file is written as Kafka writes it: to `quorum-state.tmp`, fsynced, renamed over the
//! old one.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use gregor_protocol::Uuid;
use openraft::Vote;

use super::NodeId;
use crate::cluster::meta_properties::{uuid_from_base64, uuid_to_base64};

/// The file name.
pub const QUORUM_STATE_FILE: &str = "quorum-state";
/// The version written.
pub const DATA_VERSION: i64 = 1;

/// Why the file cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum QuorumStateError {
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The file is not a quorum state.
    #[error("{}: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The vote and the directory id voted for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuorumState {
    /// The Raft vote.
    pub vote: Vote<NodeId>,
    /// `votedDirectoryId` (nil when unknown).
    pub voted_directory_id: Uuid,
}

/// Reads `quorum-state` in partition directory `dir`; `None` if there is none.
pub fn read(dir: &Path) -> Result<Option<QuorumState>, QuorumStateError> {
    let path = dir.join(QUORUM_STATE_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(QuorumStateError::Io { path, source }),
    };
    let malformed = |reason: String| QuorumStateError::Malformed {
        path: path.clone(),
        reason,
    };
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| malformed(format!("not JSON: {e}")))?;
    let int = |name: &str, default: i64| -> Result<i64, QuorumStateError> {
        match json.get(name) {
            None => Ok(default),
            Some(v) => v
                .as_i64()
                .ok_or_else(|| malformed(format!("{name} is not an integer"))),
        }
    };
    let version = int("data_version", -1)?;
    if !(0..=DATA_VERSION).contains(&version) {
        // Kafka's FileQuorumStateStore refuses a missing or unknown data_version too.
        return Err(malformed(format!("unsupported data_version {version}")));
    }
    let leader_id = int("leaderId", -1)?;
    let epoch = int("leaderEpoch", -1)?;
    let voted_id = int("votedId", -1)?;
    let voted_directory_id = match json.get("votedDirectoryId").and_then(|v| v.as_str()) {
        Some(text) => uuid_from_base64(text).map_err(|e| malformed(e.to_string()))?,
        None => Uuid::nil(),
    };
    if epoch > i64::from(i32::MAX)
        || leader_id > i64::from(i32::MAX)
        || voted_id > i64::from(i32::MAX)
    {
        return Err(malformed("a value out of range".to_string()));
    }
    let term = epoch.max(0) as u64;
    let vote = if leader_id >= 0 {
        Vote::new_committed(term, leader_id as NodeId)
    } else if voted_id >= 0 {
        Vote::new(term, voted_id as NodeId)
    } else {
        let mut vote = Vote::default();
        vote.leader_id.term = term;
        vote
    };
    Ok(Some(QuorumState {
        vote,
        voted_directory_id,
    }))
}

/// Writes `state` as `quorum-state` in partition directory `dir` (see the module docs).
pub fn write(dir: &Path, state: &QuorumState) -> Result<(), QuorumStateError> {
    let path = dir.join(QUORUM_STATE_FILE);
    let tmp = dir.join(format!("{QUORUM_STATE_FILE}.tmp"));
    let vote = &state.vote;
    let voted = vote.leader_id.voted_for.map_or(-1, |id| id as i64);
    let leader = if vote.committed { voted } else { -1 };
    let json = serde_json::json!({
        "leaderId": leader,
        "leaderEpoch": vote.leader_id.term,
        "votedId": voted,
        "votedDirectoryId": uuid_to_base64(state.voted_directory_id),
        "data_version": DATA_VERSION,
    });
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| QuorumStateError::Io { path, source }
    };
    let mut file = File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(json.to_string().as_bytes())
        .map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(io(&path))?;
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
    Ok(())
}
