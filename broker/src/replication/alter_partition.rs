//! The leader's ISR changes on their way to the controller (Kafka's `AlterPartitionManager`).
//!
//! The leader never changes its ISR by itself: it proposes one with an [`IsrChange`] (one
//! partition of Kafka's `AlterPartitionRequest` v3: the topic id, partition, leader epoch,
//! the new ISR with each broker's epoch, the partition epoch the change is based on) and
//! keeps using the larger of the old and new ISRs for the high watermark until the
//! controller answers (KIP-497's "maximal ISR"). Whoever talks to the controller receives
//! [`IsrChangeRequest`]s from the channel [`ReplicaManager`](super::ReplicaManager) was
//! given and answers each with the partition as committed ([`CommittedIsr`], the response
//! partition's fields) or the partition's error code, as `AlterPartitionResponse` carries
//! them (`FENCED_LEADER_EPOCH`, `INVALID_UPDATE_VERSION`, `INELIGIBLE_REPLICA`, ...).

use gregor_protocol::Uuid;
use tokio::sync::{mpsc, oneshot};

/// One partition's proposed ISR: a `TopicData`/`PartitionData` entry of Kafka's
/// `AlterPartitionRequest` (v3, topic ids), with the request-level broker id and epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsrChange {
    /// `BrokerId`: the leader proposing the change.
    pub broker_id: i32,
    /// `BrokerEpoch`: the leader's broker epoch (-1 unknown).
    pub broker_epoch: i64,
    /// `TopicId`.
    pub topic_id: Uuid,
    /// The topic's name (for logs and for a controller that looks partitions up by name).
    pub topic: String,
    /// `PartitionIndex`.
    pub partition: i32,
    /// `LeaderEpoch`: the leader epoch the change is made in.
    pub leader_epoch: i32,
    /// `NewIsrWithEpochs`: each replica of the proposed ISR with the broker epoch of its
    /// last fetch (-1 for the leader itself, or unknown), so the controller can refuse a
    /// replica that restarted since (KIP-903).
    pub new_isr_with_epochs: Vec<(i32, i64)>,
    /// `LeaderRecoveryState` (0: recovered).
    pub leader_recovery_state: i8,
    /// `PartitionEpoch`: the partition epoch the proposal is based on.
    pub partition_epoch: i32,
}

impl IsrChange {
    /// The proposed ISR's broker ids.
    pub fn new_isr(&self) -> Vec<i32> {
        self.new_isr_with_epochs.iter().map(|(id, _)| *id).collect()
    }
}

/// The controller's answer for one partition: an `AlterPartitionResponse` partition
/// without error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedIsr {
    /// `LeaderId`.
    pub leader_id: i32,
    /// `LeaderEpoch`.
    pub leader_epoch: i32,
    /// `Isr`: the ISR as committed.
    pub isr: Vec<i32>,
    /// `PartitionEpoch`: the partition epoch after the change.
    pub partition_epoch: i32,
}

/// A proposal with the way to answer it: the controller's committed ISR, or the
/// partition's error code.
#[derive(Debug)]
pub struct IsrChangeRequest {
    /// The proposal.
    pub change: IsrChange,
    /// Where the answer goes (a dropped sender counts as the retriable
    /// `REQUEST_TIMED_OUT`: the leader proposes again later).
    pub reply: oneshot::Sender<Result<CommittedIsr, i16>>,
}

/// The sending half of the channel to the controller side.
pub type AlterPartitionSender = mpsc::UnboundedSender<IsrChangeRequest>;
/// The receiving half, for whoever sends `AlterPartition` to the controller.
pub type AlterPartitionReceiver = mpsc::UnboundedReceiver<IsrChangeRequest>;

/// A new channel to the controller side.
pub fn channel() -> (AlterPartitionSender, AlterPartitionReceiver) {
    mpsc::unbounded_channel()
}
