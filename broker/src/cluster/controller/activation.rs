//! The controller of a cluster (`Config::is_cluster`): opened on the metadata quorum, and
//! activated each time this node becomes the quorum's leader, as Kafka's
//! `QuorumController` is on `handleLeaderChange` (`claim`):
//!
//! * on an empty log (no `metadata.version`), the first active controller writes the
//!   bootstrap records (Kafka writes those of `bootstrap.checkpoint` in
//!   `QuorumController.CompleteActivationEvent` when the log is empty);
//! * every registered broker gets a fresh session (Kafka's `ClusterControlManager.activate`
//!   and a new `BrokerHeartbeatManager`): a new active controller does not know when a
//!   broker last heartbeat to the old one, so it gives each a full session timeout;
//! * nothing registers this node locally: its broker side registers over the network with
//!   BrokerRegistration, as every broker of a Kafka cluster does.
//!
//! The periodic tasks of the controller (fencing expired sessions) act only while active.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use super::backend::{Backend, QuorumBackend};
use super::{
    Controller, ControllerError, ControllerOptions, METADATA_VERSION, METADATA_VERSION_NAME,
    bootstrap_batch, heartbeats, snapshots,
};
use crate::cluster::quorum::Quorum;
use crate::cluster::snapshot::KRaftState;

impl Controller {
    /// A controller committing through `quorum` (a cluster's). Call it from within the
    /// runtime the quorum runs on. Writes nothing: the bootstrap records are written by the
    /// first active controller ([`Controller::activate`], run by [`run_activation`]).
    pub fn open_quorum(options: ControllerOptions, quorum: Quorum) -> Controller {
        let backend = QuorumBackend {
            quorum: quorum.clone(),
            runtime: tokio::runtime::Handle::current(),
            node_id: options.node_id,
        };
        let image = quorum.image();
        let members =
            heartbeats::Heartbeats::new(Duration::from_millis(options.broker_session_timeout_ms));
        Controller {
            options,
            log: Arc::new(Mutex::new(Backend::Quorum(backend.clone()))),
            published: tokio::sync::watch::Sender::new(Arc::clone(&image)),
            image: ArcSwap::new(image),
            snapshots: Mutex::new(snapshots::SnapshotState::new(0, KRaftState::default())),
            producer_ids: Mutex::new(None),
            members: Mutex::new(members),
            quorum: Some(backend),
            observer: None,
        }
    }

    /// What a newly active controller does (see the module docs), once per quorum epoch;
    /// `NOT_CONTROLLER` if this node is not the leader (any more). Returns whether the
    /// bootstrap records were written. Blocking: call it through [`Controller::run`].
    pub fn activate(&self) -> Result<bool, ControllerError> {
        let mut log = self.lock();
        self.ensure_activated(&mut log)
    }

    /// Activates this controller for the current quorum epoch unless that was done
    /// already; every operation on broker sessions calls it first, under the controller's
    /// lock (`log`), since [`run_activation`] runs asynchronously after the leadership
    /// changed and may come late. Without it a controller active again after another one
    /// was (this node led epoch 3, lost epoch 4 to another voter, leads epoch 5) would
    /// fence brokers by the contact times of epoch 3, although they heartbeat to epoch 4's
    /// controller all along. Kafka's `QuorumController` has the same order by construction:
    /// its activation (`claim`, `ClusterControlManager.activate`) is the first event of the
    /// new epoch on its single event queue. Does nothing on a single node. Returns whether
    /// the bootstrap records were written.
    pub(super) fn ensure_activated(&self, log: &mut Backend) -> Result<bool, ControllerError> {
        if log.quorum().is_none() {
            return Ok(false);
        }
        log.check_active()?;
        // Settles the term first: the image is then the whole committed log's.
        let _ = log.next_offset();
        log.check_active()?;
        let epoch = log.epoch();
        if self.members().epoch() == Some(epoch) {
            return Ok(false);
        }
        let mut bootstrapped = false;
        if self.image().metadata_version().is_none() {
            self.commit(log, bootstrap_batch(&self.options))?;
            tracing::info!(
                metadata_version = METADATA_VERSION,
                "wrote the bootstrap records of a new cluster (metadata.version \
                 {METADATA_VERSION_NAME})"
            );
            bootstrapped = true;
        }
        let image = self.image();
        let now = Instant::now();
        let mut members = heartbeats::Heartbeats::for_epoch(
            Duration::from_millis(self.options.broker_session_timeout_ms),
            epoch,
        );
        for broker in image.brokers().values() {
            members.register(broker.id, broker.fenced, now);
            members.set_registration_offset(broker.id, broker.epoch);
        }
        *self.members() = members;
        tracing::info!(
            node = self.options.node_id,
            epoch,
            brokers = image.brokers().len(),
            "became the active controller"
        );
        Ok(bootstrapped)
    }

    /// The broker id exempt from session expiry: this node's own broker on a single node
    /// (registered at start-up, never heartbeating), none in a cluster (every broker
    /// heartbeats).
    pub(super) fn session_exempt(&self) -> i32 {
        if self.is_cluster() {
            -1
        } else {
            self.options.node_id
        }
    }
}

/// Activates `controller` ([`Controller::activate`]) each time its node becomes the
/// leader of a new quorum epoch, until `stop` changes. Does nothing on a single node.
pub async fn run_activation(
    controller: Arc<Controller>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let Some(quorum) = controller.quorum().cloned() else {
        return;
    };
    let me = controller.node_id();
    let mut metrics = quorum.metrics();
    let mut activated: Option<u64> = None;
    loop {
        let (leader, term) = {
            let m = metrics.borrow_and_update();
            (m.current_leader, m.current_term)
        };
        if leader == Some(me as u64) && activated != Some(term) {
            match controller.run(|c| c.activate()).await {
                Ok(_) => activated = Some(term),
                Err(ControllerError::NotController { .. }) => {}
                Err(e) => {
                    tracing::warn!(term, "activation failed, retrying: {e}");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = stop.changed() => return,
                    }
                    continue;
                }
            }
        }
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() { return },
            _ = stop.changed() => return,
        }
    }
}
