//! openraft's [`RaftStateMachine`]: the [`MetadataImage`], with Kafka's `.checkpoint` files
//! as snapshots.
//!
//! * **apply**: each committed metadata record is applied with its offset and epoch
//!   ([`MetadataImage::apply_with_epoch`]; records of a metadata transaction are buffered
//!   by the image until its `EndTransactionRecord`); a `VotersRecord` changes the
//!   membership; leader changes and other control records change nothing but the applied
//!   position. A record that does not apply (a controller bug: the leader validated it) is
//!   logged and skipped, the image unchanged, and reported to the proposer.
//! * **snapshots**: [`write_snapshot`] writes the image as `<end offset>-<epoch>.checkpoint`
//!   (the openraft snapshot id is that file name's stem; the end offset is the last
//!   applied index + 1, the epoch its term). As Kafka's `SnapshotGenerator`, never inside a
//!   metadata transaction: the snapshot is taken at the last applied entry outside one.
//!   The snapshot data openraft sends to a lagging follower is the file's bytes; the
//!   follower writes them as its own `.checkpoint` (`.part`, fsync, rename) and loads it
//!   with the start-up reader ([`load_snapshot_file`]). The newest [`SNAPSHOTS_KEPT`]
//!   snapshots are kept.
//! * **membership**: a snapshot's `VotersRecord` (KIP-853, `kraft.version` 1) when there is
//!   one; else the static voters of `controller.quorum.voters` (`kraft.version` 0, where
//!   Kafka, too, takes the voters from the configuration and not from the log). A
//!   snapshot does not record at which offset its voters were written: the snapshot's last
//!   entry stands for it.

use std::fs::{self, File, OpenOptions};
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    AnyError, ErrorSubject, ErrorVerb, LogId, Membership, OptionalSend, StorageError,
    StorageIOError, StoredMembership,
};
use tokio::sync::watch;

use super::entry::{self, QuorumEntry, QuorumPayload};
use super::{Applied, NodeId, TypeConfig, VoterNode};
use crate::cluster::image::MetadataImage;
use crate::cluster::replay::{SnapshotId, load_snapshot_file};
use crate::cluster::snapshot::{KRaftState, PARTIAL_SUFFIX, write_snapshot};
use crate::cluster::snapshot_retention::list_snapshots;

/// The state machine (cheap to clone: clones share the state).
#[derive(Clone)]
pub struct StateMachine {
    shared: Arc<Shared>,
}

struct Shared {
    dir: PathBuf,
    state: Mutex<SmState>,
    image_tx: watch::Sender<Arc<MetadataImage>>,
}

/// The applied state at one point of the log.
#[derive(Clone)]
struct Point {
    image: MetadataImage,
    applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, VoterNode>,
    kraft: KRaftState,
    last_timestamp: i64,
}

struct SmState {
    current: Point,
    /// The last point outside a metadata transaction: what a snapshot holds.
    stable: Point,
    /// The newest snapshot: its meta and file.
    snapshot: Option<(SnapshotMeta<NodeId, VoterNode>, PathBuf)>,
}

fn sm_error(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::new(
        ErrorSubject::StateMachine,
        verb,
        AnyError::error(e.to_string()),
    )
    .into()
}

fn snapshot_error(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::new(
        ErrorSubject::Snapshot(None),
        verb,
        AnyError::error(e.to_string()),
    )
    .into()
}

/// The Kafka snapshot id of a snapshot whose last entry is `last`.
pub fn snapshot_id_of(last: Option<LogId<NodeId>>) -> SnapshotId {
    match last {
        None => SnapshotId {
            end_offset: 0,
            epoch: 0,
        },
        Some(id) => SnapshotId {
            end_offset: id.index as i64 + 1,
            epoch: id.leader_id.term as i32,
        },
    }
}

/// The openraft snapshot id: Kafka's file name without `.checkpoint`.
fn snapshot_name(id: SnapshotId) -> String {
    let name = id.file_name();
    name.trim_end_matches(".checkpoint").to_string()
}

impl StateMachine {
    /// Opens the state machine of partition directory `dir` at `snapshot` (the newest
    /// readable snapshot that start-up found) or empty; `static_voters` is the membership
    /// when no snapshot names voters.
    pub fn open(
        dir: &Path,
        snapshot: Option<SnapshotId>,
        static_voters: Membership<NodeId, VoterNode>,
    ) -> Result<StateMachine, super::QuorumError> {
        let mut point = Point {
            image: MetadataImage::empty(),
            applied: None,
            membership: StoredMembership::new(None, static_voters.clone()),
            kraft: KRaftState::default(),
            last_timestamp: -1,
        };
        let mut current_snapshot = None;
        if let Some(id) = snapshot {
            let path = dir.join(id.file_name());
            let (image, kraft) = load_snapshot_file(&path, id)?;
            let applied = (id.end_offset > 0).then(|| entry::log_id(id.epoch, id.end_offset - 1));
            let membership = match &kraft.voters {
                Some(voters) => StoredMembership::new(applied, entry::membership_of(voters)),
                None => StoredMembership::new(None, static_voters),
            };
            let meta = SnapshotMeta {
                last_log_id: applied,
                last_membership: membership.clone(),
                snapshot_id: snapshot_name(id),
            };
            // The bootstrap snapshot `0-0` of a dynamic quorum (`format --standalone` or
            // `--initial-controllers`) holds only the voters: nothing to install anywhere.
            if id.end_offset > 0 {
                current_snapshot = Some((meta, path));
            }
            point = Point {
                image,
                applied,
                membership,
                kraft,
                last_timestamp: -1,
            };
        }
        let (image_tx, _) = watch::channel(Arc::new(point.image.clone()));
        Ok(StateMachine {
            shared: Arc::new(Shared {
                dir: dir.to_path_buf(),
                state: Mutex::new(SmState {
                    current: point.clone(),
                    stable: point,
                    snapshot: current_snapshot,
                }),
                image_tx,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, SmState> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A receiver of the image after each applied change.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.shared.image_tx.subscribe()
    }

    /// The last applied image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.shared.image_tx.borrow().clone()
    }

    /// The `kraft.version` after the last applied entry (1 once voters are in the log).
    pub fn kraft_version(&self) -> i16 {
        self.lock().current.kraft.kraft_version
    }

    /// The last applied entry.
    pub fn applied(&self) -> Option<LogId<NodeId>> {
        self.lock().current.applied
    }

    fn publish(&self, image: &MetadataImage) {
        self.shared.image_tx.send_replace(Arc::new(image.clone()));
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, VoterNode>), StorageError<NodeId>>
    {
        let state = self.lock();
        Ok((state.current.applied, state.current.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = QuorumEntry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut out = Vec::new();
        let image = {
            let mut state = self.lock();
            for entry in entries {
                let mut applied = Applied::default();
                let offset = entry.log_id.index as i64;
                let epoch = entry.log_id.leader_id.term as i32;
                match &entry.payload {
                    QuorumPayload::Record(versioned) => {
                        if let Err(e) =
                            state
                                .current
                                .image
                                .apply_with_epoch(offset, epoch, &versioned.record)
                        {
                            tracing::error!(
                                offset,
                                epoch,
                                "a committed metadata record does not apply: {e}"
                            );
                            applied.error = Some(e.to_string());
                        }
                    }
                    QuorumPayload::Voters(voters) => {
                        state.current.membership =
                            StoredMembership::new(Some(entry.log_id), voters.0.clone());
                        state.current.kraft = KRaftState {
                            kraft_version: entry::KRAFT_VERSION_MAX,
                            voters: Some(voters.1.clone()),
                        };
                    }
                    QuorumPayload::LeaderChange(_) | QuorumPayload::OtherControl { .. } => {}
                }
                state.current.applied = Some(entry.log_id);
                state.current.last_timestamp = entry.timestamp;
                if state.current.image.pending_transaction().is_none() {
                    state.stable = state.current.clone();
                }
                out.push(applied);
            }
            state.current.image.clone()
        };
        self.publish(&image);
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, VoterNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let id = snapshot_id_of(meta.last_log_id);
        let dir = &self.shared.dir;
        let path = dir.join(id.file_name());
        if !path.exists() {
            let partial = dir.join(format!("{}{PARTIAL_SUFFIX}", snapshot_name(id)));
            let written = (|| {
                let mut file = OpenOptions::new()
                    .create(true)
                    .truncate(true)
                    .write(true)
                    .open(&partial)?;
                file.write_all(snapshot.get_ref())?;
                file.sync_all()?;
                drop(file);
                fs::rename(&partial, &path)?;
                if let Ok(handle) = File::open(dir) {
                    let _ = handle.sync_all();
                }
                Ok::<(), std::io::Error>(())
            })();
            if let Err(e) = written {
                let _ = fs::remove_file(&partial);
                return Err(snapshot_error(ErrorVerb::Write, e));
            }
        }
        let (image, kraft) =
            load_snapshot_file(&path, id).map_err(|e| snapshot_error(ErrorVerb::Read, e))?;
        tracing::info!(snapshot = %path.display(), "installed a metadata snapshot from the leader");
        let point = Point {
            image,
            applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
            kraft,
            last_timestamp: -1,
        };
        {
            let mut state = self.lock();
            state.current = point.clone();
            state.stable = point.clone();
            state.snapshot = Some((meta.clone(), path));
        }
        self.publish(&point.image);
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let Some((meta, path)) = self.lock().snapshot.clone() else {
            return Ok(None);
        };
        let data = fs::read(&path).map_err(|e| snapshot_error(ErrorVerb::Read, e))?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

/// How many snapshots are kept: the newest, and one before it for start-up to fall back on
/// if the newest is damaged (see [`replay`](crate::cluster::replay)).
pub const SNAPSHOTS_KEPT: usize = 2;

/// Deletes all but the newest [`SNAPSHOTS_KEPT`] snapshots. The log below the newest is
/// purged by openraft, so older snapshots only matter for that fallback; a failure is
/// logged and retried after the next snapshot.
fn remove_old_snapshots(dir: &Path) {
    let snapshots = match list_snapshots(dir) {
        Ok(snapshots) => snapshots,
        Err(e) => {
            tracing::warn!("cannot list the metadata snapshots: {e}");
            return;
        }
    };
    let old = snapshots.len().saturating_sub(SNAPSHOTS_KEPT);
    for snapshot in &snapshots[..old] {
        match fs::remove_file(&snapshot.path) {
            Ok(()) => {
                tracing::info!(snapshot = %snapshot.path.display(), "deleted an old metadata snapshot")
            }
            Err(e) => {
                tracing::warn!(snapshot = %snapshot.path.display(), "cannot delete an old metadata snapshot: {e}")
            }
        }
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let point = self.lock().stable.clone();
        let id = snapshot_id_of(point.applied);
        let dir = self.shared.dir.clone();
        let path = dir.join(id.file_name());
        if !path.exists() {
            let written =
                write_snapshot(&dir, id, &point.image, point.last_timestamp, &point.kraft)
                    .map_err(|e| sm_error(ErrorVerb::Write, e))?;
            tracing::info!(
                snapshot = %written.path.display(),
                records = written.records,
                "wrote a metadata snapshot"
            );
        }
        let data = fs::read(&path).map_err(|e| snapshot_error(ErrorVerb::Read, e))?;
        let meta = SnapshotMeta {
            last_log_id: point.applied,
            last_membership: point.membership.clone(),
            snapshot_id: snapshot_name(id),
        };
        self.lock().snapshot = Some((meta.clone(), path));
        remove_old_snapshots(&dir);
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}
