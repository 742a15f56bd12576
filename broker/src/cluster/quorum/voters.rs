//! KIP-853 voter changes on the quorum's leader: AddRaftVoter, RemoveRaftVoter and
//! UpdateRaftVoter, with the checks of Kafka's `AddVoterHandler`, `RemoveVoterHandler` and
//! `UpdateVoterHandler` and openraft's membership changes underneath.
//!
//! * One change at a time, by the leader of a settled term (Kafka: the high watermark is
//!   known in this epoch), with `kraft.version` 1 (a quorum formatted with `--standalone`
//!   or `--initial-controllers`), and only once the last voter set is committed.
//! * **Add**: the new controller is first made an openraft learner (the leader replicates
//!   the log to it, as Kafka's new voter first follows the log as an observer), and becomes
//!   a voter only once it has caught up to the leader's log end; if it does not within the
//!   request's timeout, it is dropped again and the answer is REQUEST_TIMED_OUT, as Kafka
//!   answers for a lagging observer.
//! * **Remove** takes the voter out; a leader that removed itself steps down once the new
//!   set is committed (openraft, as Kafka's `RemoveVoterHandler` resigns).
//! * **Update** replaces a voter's endpoint (its directory id must match).
//!
//! openraft changes voters through a joint configuration; for one voter added or removed
//! that step is written as the larger voter set ([`entry::written_voters`]), so the log
//! holds nothing but Kafka's `VotersRecord`s. Making a learner writes one more
//! `VotersRecord` (the same voters): openraft records learners in its membership.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use gregor_protocol::Uuid;
use gregor_protocol::messages::update_raft_voter_request::{self, UpdateRaftVoterRequest};
use openraft::ChangeMembers;
use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};

use super::{NodeId, Quorum, VoterNode, entry};

/// Why a voter change was refused; each maps to the Kafka error it is answered with.
#[derive(Debug, thiserror::Error)]
pub enum VoterChangeError {
    /// NOT_LEADER_OR_FOLLOWER: this node does not lead the quorum.
    #[error("this controller is not the quorum's leader")]
    NotLeader {
        /// The leader, if known.
        leader: Option<i32>,
    },
    /// UNSUPPORTED_VERSION: a static quorum (`kraft.version` 0).
    #[error("{0}")]
    Unsupported(String),
    /// DUPLICATE_VOTER.
    #[error("{0}")]
    Duplicate(String),
    /// VOTER_NOT_FOUND.
    #[error("{0}")]
    NotFound(String),
    /// REQUEST_TIMED_OUT: another change is pending, the term is not settled, or the change
    /// did not finish in time.
    #[error("{0}")]
    TimedOut(String),
    /// INVALID_REQUEST.
    #[error("{0}")]
    Invalid(String),
}

/// How long a removal or update may take (Kafka's `controller.quorum.request.timeout.ms`
/// default, which its `RemoveVoterHandler` waits for the commit).
pub const CHANGE_TIMEOUT: Duration = Duration::from_millis(2000);

impl Quorum {
    /// The `kraft.version` of this quorum: 1 when its voters are in the log (KIP-853), 0 for
    /// the static voters of `controller.quorum.voters`.
    pub fn kraft_version(&self) -> i16 {
        self.inner.state_machine.kraft_version()
    }

    /// The voters of the newest voter set this node knows, with their endpoints.
    pub fn voter_nodes(&self) -> BTreeMap<i32, VoterNode> {
        let metrics = self.inner.raft.metrics();
        let m = metrics.borrow();
        let membership = m.membership_config.membership();
        let ids: BTreeSet<NodeId> = match entry::written_voters(membership) {
            Ok(ids) => ids.clone(),
            Err(_) => membership.voter_ids().collect(),
        };
        ids.into_iter()
            .map(|id| {
                let node = membership.get_node(&id).cloned().unwrap_or_default();
                (id as i32, node)
            })
            .collect()
    }

    /// Checks that this node may change the voters now (see the module docs) and returns the
    /// current voters.
    async fn voter_change_allowed(
        &self,
        what: &str,
    ) -> Result<BTreeMap<i32, VoterNode>, VoterChangeError> {
        match self.settle_leadership().await {
            Ok(()) => {}
            Err(super::QuorumError::NotLeader { leader }) => {
                return Err(VoterChangeError::NotLeader { leader });
            }
            Err(e) => {
                return Err(VoterChangeError::TimedOut(format!(
                    "Request timed out waiting for leader to establish HWM and fence previous \
                     voter changes: {e}"
                )));
            }
        }
        let kraft_version = self.kraft_version();
        if kraft_version < 1 {
            return Err(VoterChangeError::Unsupported(format!(
                "Cluster doesn't support {what} voter because the kraft.version feature is \
                 {kraft_version}"
            )));
        }
        // The last voter set must be committed (and uniform). Rather than refusing at once,
        // as Kafka does, wait a little (the improvement KAFKA-17147 describes): a change that
        // was just answered may not show in the metrics yet.
        let settled = |m: &openraft::RaftMetrics<NodeId, VoterNode>| {
            let stored = &m.membership_config;
            let committed = match (stored.log_id(), m.last_applied) {
                (None, _) => true,
                (Some(at), Some(applied)) => at.index <= applied.index,
                (Some(_), None) => false,
            };
            committed && stored.membership().get_joint_config().len() == 1
        };
        let waited = self
            .inner
            .raft
            .wait(Some(CHANGE_TIMEOUT))
            .metrics(settled, "the last voter set to commit")
            .await;
        if waited.is_err() {
            let m = self.inner.raft.metrics().borrow().clone();
            tracing::debug!(metrics = ?m, "a voter change waits for the last one");
            let at = m.membership_config.log_id().map(|l| l.index);
            return Err(VoterChangeError::TimedOut(format!(
                "Request timed out waiting for voters to commit the latest voter change at {at:?} \
                 (applied up to {:?})",
                m.last_applied.map(|l| l.index)
            )));
        }
        Ok(self.voter_nodes())
    }

    /// Runs openraft's membership change `changes` through to a uniform voter set. Why the
    /// second call: openraft ends its first call early when the applied entry reads back
    /// uniform, which the joint step does here (it is written, and so read, as the larger
    /// set; [`entry::written_voters`]), while the leader's own state is still joint.
    async fn change_voters(
        &self,
        changes: ChangeMembers<NodeId, VoterNode>,
        what: &str,
    ) -> Result<(), VoterChangeError> {
        let raft = &self.inner.raft;
        raft.change_membership(changes.clone(), false)
            .await
            .map_err(|e| change_error(e, what))?;
        let joint = || {
            raft.metrics()
                .borrow()
                .membership_config
                .membership()
                .get_joint_config()
                .len()
                > 1
        };
        if joint() {
            raft.change_membership(changes, false)
                .await
                .map_err(|e| change_error(e, what))?;
        }
        if joint() {
            return Err(VoterChangeError::TimedOut(format!(
                "{what} the voter left a joint voter set"
            )));
        }
        Ok(())
    }

    /// Runs the task by which a voter of a dynamic quorum keeps its entry in the voter set
    /// true (Kafka's voters send UpdateRaftVoter once they know the leader): every second,
    /// while this node is a voter whose endpoint there differs from `own`, it sends the
    /// leader its endpoint, or, leading itself, writes it.
    pub(super) fn spawn_endpoint_updates(&self, own: VoterNode, network: super::network::Network) {
        let weak = std::sync::Arc::downgrade(&self.inner);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                let quorum = Quorum { inner };
                if quorum.kraft_version() < 1 {
                    continue;
                }
                let me = quorum.inner.node_id as i32;
                let voters = quorum.voter_nodes();
                let (Some(current), Some(leader)) = (voters.get(&me), quorum.leader()) else {
                    continue;
                };
                if *current == own {
                    continue;
                }
                if leader == me {
                    // A leader corrects its own entry directly.
                    match quorum.update_voter(me, own.directory_id, own.clone()).await {
                        Ok(()) => tracing::info!(
                            host = %own.host,
                            port = own.port,
                            "wrote this leader's new endpoint into the voter set"
                        ),
                        Err(e) => tracing::debug!("could not update this leader's entry: {e}"),
                    }
                    continue;
                }
                let Some(leader_node) = voters.get(&leader) else {
                    continue;
                };
                let request = UpdateRaftVoterRequest {
                    cluster_id: network.cluster_id.as_deref().map(Into::into),
                    current_leader_epoch: quorum.epoch(),
                    voter_id: me,
                    voter_directory_id: own.directory_id,
                    listeners: vec![update_raft_voter_request::Listener {
                        name: own.listener.as_str().into(),
                        host: own.host.as_str().into(),
                        port: own.port,
                        ..Default::default()
                    }],
                    kraft_version_feature: update_raft_voter_request::KRaftVersionFeature {
                        min_supported_version: 0,
                        max_supported_version: entry::KRAFT_VERSION_MAX,
                        ..Default::default()
                    },
                    ..Default::default()
                };
                let mut peer = super::network::Peer::to(&network, leader as NodeId, leader_node);
                match peer.update_voter(&request, CHANGE_TIMEOUT * 5).await {
                    Ok(answer) if answer.error_code == 0 => {
                        tracing::info!(
                            leader,
                            host = %own.host,
                            port = own.port,
                            "told the leader this voter's new endpoint"
                        );
                    }
                    Ok(answer) => tracing::debug!(
                        leader,
                        error = answer.error_code,
                        "the leader refused this voter's endpoint update"
                    ),
                    Err(e) => tracing::debug!(leader, "could not send UpdateRaftVoter: {e}"),
                }
            }
        });
        self.push_task(task);
    }

    /// Adds controller `id` (log directory `directory_id`, reached at `node`) to the voters
    /// (see the module docs), within `timeout`.
    pub async fn add_voter(
        &self,
        id: i32,
        directory_id: Uuid,
        node: VoterNode,
        timeout: Duration,
    ) -> Result<(), VoterChangeError> {
        let started = Instant::now();
        let Ok(_change) = self.inner.voter_change.try_lock() else {
            return Err(pending());
        };
        if id < 0 || directory_id == Uuid::nil() {
            return Err(VoterChangeError::Invalid(
                "Add voter request didn't include a valid voter".to_string(),
            ));
        }
        let voters = self.voter_change_allowed("adding").await?;
        if voters.contains_key(&id) {
            return Err(VoterChangeError::Duplicate(format!(
                "The voter id for ReplicaKey(id={id}, directoryId={directory_id}) is already \
                 part of the set of voters {:?}.",
                voters.keys().collect::<Vec<_>>()
            )));
        }
        let node = VoterNode {
            directory_id,
            ..node
        };
        let raft = &self.inner.raft;
        let learner = id as NodeId;
        let added = raft
            .change_membership(
                ChangeMembers::AddNodes(BTreeMap::from([(learner, node)])),
                true,
            )
            .await
            .map_err(|e| change_error(e, "adding"))?;
        // Caught up: the learner holds the leader's log up to the entry that added it.
        let target = added.log_id.index;
        let remaining = timeout.saturating_sub(started.elapsed());
        let caught_up = raft
            .wait(Some(remaining))
            .metrics(
                |m| {
                    m.replication
                        .as_ref()
                        .and_then(|r| r.get(&learner).cloned().flatten())
                        .is_some_and(|matched| matched.index >= target)
                },
                "the new voter to catch up",
            )
            .await;
        if caught_up.is_err() {
            // Not a voter, and not replicated to any more.
            let dropped = raft
                .change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([learner])), false)
                .await;
            if let Err(e) = dropped {
                tracing::warn!(voter = id, "could not drop the lagging learner again: {e}");
            }
            return Err(VoterChangeError::TimedOut(format!(
                "Aborted add voter operation for ReplicaKey(id={id}, directoryId={directory_id}) \
                 since it is lagging behind"
            )));
        }
        let remaining = timeout.saturating_sub(started.elapsed());
        let promote = self.change_voters(
            ChangeMembers::AddVoterIds(BTreeSet::from([learner])),
            "adding",
        );
        match tokio::time::timeout(remaining.max(CHANGE_TIMEOUT), promote).await {
            Err(_) => Err(VoterChangeError::TimedOut(format!(
                "Request timed out waiting for the voter set adding {id} to commit"
            ))),
            Ok(result) => {
                result?;
                tracing::info!(voter = id, %directory_id, "added a voter to the metadata quorum");
                Ok(())
            }
        }
    }

    /// Removes voter `id` (log directory `directory_id`) from the voters (see the module
    /// docs).
    pub async fn remove_voter(&self, id: i32, directory_id: Uuid) -> Result<(), VoterChangeError> {
        let Ok(_change) = self.inner.voter_change.try_lock() else {
            return Err(pending());
        };
        let voters = self.voter_change_allowed("removing").await?;
        let matches = voters
            .get(&id)
            .is_some_and(|node| node.directory_id == directory_id);
        if !matches || voters.len() == 1 {
            return Err(VoterChangeError::NotFound(format!(
                "Cannot remove voter ReplicaKey(id={id}, directoryId={directory_id}) from the \
                 set of voters {:?}",
                voters.keys().collect::<Vec<_>>()
            )));
        }
        let remove = self.change_voters(
            ChangeMembers::RemoveVoters(BTreeSet::from([id as NodeId])),
            "removing",
        );
        match tokio::time::timeout(CHANGE_TIMEOUT * 5, remove).await {
            Err(_) => Err(VoterChangeError::TimedOut(format!(
                "Request timed out waiting for the voter set without {id} to commit"
            ))),
            Ok(result) => {
                result?;
                tracing::info!(voter = id, "removed a voter from the metadata quorum");
                Ok(())
            }
        }
    }

    /// Replaces the endpoint of voter `id` (log directory `directory_id`) with `node`'s
    /// (Kafka's `UpdateVoterHandler`; unchanged endpoints write nothing).
    pub async fn update_voter(
        &self,
        id: i32,
        directory_id: Uuid,
        node: VoterNode,
    ) -> Result<(), VoterChangeError> {
        let Ok(_change) = self.inner.voter_change.try_lock() else {
            return Err(pending());
        };
        let voters = self.voter_change_allowed("updating").await?;
        let Some(current) = voters.get(&id).filter(|n| n.directory_id == directory_id) else {
            return Err(VoterChangeError::NotFound(format!(
                "Update voter request for ReplicaKey(id={id}, directoryId={directory_id}) is \
                 not part of the set of voters {:?}",
                voters.keys().collect::<Vec<_>>()
            )));
        };
        let node = VoterNode {
            directory_id,
            ..node
        };
        if *current == node {
            return Ok(());
        }
        let update = self.inner.raft.change_membership(
            ChangeMembers::SetNodes(BTreeMap::from([(id as NodeId, node)])),
            false,
        );
        match tokio::time::timeout(CHANGE_TIMEOUT * 5, update).await {
            Err(_) => Err(VoterChangeError::TimedOut(format!(
                "Request timed out waiting for the updated voter set to commit (voter {id})"
            ))),
            Ok(result) => result.map(|_| ()).map_err(|e| change_error(e, "updating")),
        }
    }
}

fn pending() -> VoterChangeError {
    VoterChangeError::TimedOut(
        "Request timed out waiting for leader to handle previous voter change request".to_string(),
    )
}

fn change_error(
    e: RaftError<NodeId, ClientWriteError<NodeId, VoterNode>>,
    what: &str,
) -> VoterChangeError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => VoterChangeError::NotLeader {
            leader: f.leader_id.map(|id| id as i32),
        },
        RaftError::APIError(ClientWriteError::ChangeMembershipError(
            ChangeMembershipError::InProgress(_),
        )) => pending(),
        other => VoterChangeError::TimedOut(format!("{what} the voter did not finish: {other}")),
    }
}
