//! Where the controller commits its records: the local [`MetadataLog`] of a single node
//! (its own single-voter quorum, as today), or the replicated metadata [`Quorum`] of a
//! cluster (`Config::is_cluster`), as Kafka's `QuorumController` writes through its
//! `RaftClient`.
//!
//! Either way an operation validates against the current image under the controller's
//! lock and then commits its records as one unit. In quorum mode:
//!
//! * the image is the quorum's state machine's (every node, follower or leader, reads the
//!   committed log's image: [`Controller::image`](super::Controller::image) and
//!   [`Controller::subscribe`](super::Controller::subscribe) come from the quorum);
//! * only the leader commits: a follower fails with `NOT_CONTROLLER` before anything is
//!   proposed, as Kafka's controller fails an event with `NotControllerException`;
//! * the offset the next record gets ([`Backend::next_offset`], for broker epochs) is the
//!   leader's log end once its term is settled (its first entry applied and any unfinished
//!   transaction aborted), so under the controller's lock it is the offset the next
//!   single-record proposal lands at. Kafka's controller predicts it the same way (its
//!   `OffsetControlManager.nextWriteOffset`); [`Backend::commit`] checks the prediction
//!   and logs when it was wrong (a change of leader between prediction and commit).

use std::sync::Arc;
use std::time::Duration;

use gregor_protocol::metadata_frame::VersionedRecord;

use super::super::image::MetadataImage;
use super::super::metadata_log::MetadataLog;
use super::super::quorum::{Quorum, QuorumError};
use super::ControllerError;

/// How long a proposal may take before the operation fails with `REQUEST_TIMED_OUT`
/// (Kafka's controller times out its write events the same way, with the request's
/// timeout); a quorum without a majority must not hold the controller's lock forever.
pub const PROPOSAL_TIMEOUT: Duration = Duration::from_secs(30);

/// The replicated metadata of a cluster controller.
#[derive(Clone)]
pub struct QuorumBackend {
    /// The quorum.
    pub quorum: Quorum,
    /// The runtime the quorum runs on (operations run on its blocking threads).
    pub runtime: tokio::runtime::Handle,
    /// This node's id.
    pub node_id: i32,
}

impl std::fmt::Debug for QuorumBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuorumBackend")
            .field("node_id", &self.node_id)
            .field("leader", &self.quorum.leader())
            .finish()
    }
}

impl QuorumBackend {
    /// Runs `future` to completion from a blocking thread (or a runtime worker, which is
    /// then handed over to blocking mode first).
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        let runtime = &self.runtime;
        match tokio::runtime::Handle::try_current() {
            Ok(current)
                if current.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread =>
            {
                tokio::task::block_in_place(|| runtime.block_on(future))
            }
            _ => runtime.block_on(future),
        }
    }

    /// Whether this node leads the quorum.
    pub fn is_leader(&self) -> bool {
        self.quorum.leader() == Some(self.node_id)
    }

    /// The leader's log end after its term is settled, or `NOT_CONTROLLER`.
    fn settled_end(&self) -> Result<i64, ControllerError> {
        if !self.is_leader() {
            return Err(ControllerError::NotController {
                active: self.quorum.leader(),
            });
        }
        let quorum = self.quorum.clone();
        match self.block_on(async move {
            tokio::time::timeout(PROPOSAL_TIMEOUT, quorum.settle_leadership()).await
        }) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(quorum_error(e)),
            Err(_) => return Err(ControllerError::Timeout),
        }
        Ok(self.quorum.log_end_offset())
    }
}

/// Maps a quorum failure to the controller's.
fn quorum_error(error: QuorumError) -> ControllerError {
    match error {
        QuorumError::NotLeader { leader } => ControllerError::NotController { active: leader },
        other => ControllerError::Quorum(other.to_string()),
    }
}

/// The controller's log: local, or the cluster's quorum. One per controller, behind its
/// lock (the size difference of the variants does not matter).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Backend {
    /// A single node's own metadata log.
    Local(MetadataLog),
    /// The replicated log of a cluster.
    Quorum(QuorumBackend),
    /// A broker-only node of a cluster: it follows the log (a KRaft observer,
    /// [`crate::cluster::observer`]) and never commits.
    Observer(crate::cluster::observer::Observer),
}

impl Backend {
    /// The offset the next record written gets (see the module docs); in quorum mode the
    /// applied end when this node is not the leader.
    pub fn next_offset(&self) -> i64 {
        match self {
            Backend::Local(log) => log.next_offset(),
            Backend::Quorum(q) => q
                .settled_end()
                .unwrap_or_else(|_| q.quorum.applied_offset() + 1),
            Backend::Observer(o) => o.applied_offset() + 1,
        }
    }

    /// The current epoch of the log (the quorum's term).
    pub fn epoch(&self) -> i32 {
        match self {
            Backend::Local(log) => log.epoch(),
            Backend::Quorum(q) => q.quorum.epoch(),
            Backend::Observer(o) => o.epoch(),
        }
    }

    /// The local log (`None` in quorum mode).
    pub fn local(&mut self) -> Option<&mut MetadataLog> {
        match self {
            Backend::Local(log) => Some(log),
            Backend::Quorum(_) | Backend::Observer(_) => None,
        }
    }

    /// The quorum (`None` on a single node).
    pub fn quorum(&self) -> Option<&QuorumBackend> {
        match self {
            Backend::Local(_) | Backend::Observer(_) => None,
            Backend::Quorum(q) => Some(q),
        }
    }

    /// Fails with `NOT_CONTROLLER` unless this node may commit.
    pub fn check_active(&self) -> Result<(), ControllerError> {
        match self {
            Backend::Quorum(q) if !q.is_leader() => Err(ControllerError::NotController {
                active: q.quorum.leader(),
            }),
            Backend::Observer(o) => Err(ControllerError::NotController { active: o.leader() }),
            _ => Ok(()),
        }
    }
}

/// Proposes `records` through the quorum and returns their offsets and the image they
/// were applied to. `predicted`: the offset the first record was expected at (checked
/// for single records, whose offset may be a broker epoch).
pub fn commit_quorum(
    q: &QuorumBackend,
    records: Vec<VersionedRecord>,
    predicted: Option<i64>,
) -> Result<((i64, i64), Arc<MetadataImage>), ControllerError> {
    if !q.is_leader() {
        return Err(ControllerError::NotController {
            active: q.quorum.leader(),
        });
    }
    let single = records.len() == 1;
    let quorum = q.quorum.clone();
    let proposed =
        q.block_on(
            async move { tokio::time::timeout(PROPOSAL_TIMEOUT, quorum.propose(records)).await },
        );
    let offsets = match proposed {
        Ok(Ok(offsets)) => offsets,
        Ok(Err(e)) => return Err(quorum_error(e)),
        Err(_) => return Err(ControllerError::Timeout),
    };
    if single
        && let Some(predicted) = predicted
        && predicted != offsets.0
    {
        tracing::warn!(
            predicted,
            written = offsets.0,
            "a record landed at another offset than predicted (the leadership changed)"
        );
    }
    Ok((offsets, q.quorum.image()))
}
