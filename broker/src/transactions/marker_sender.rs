//! A transaction's markers in a cluster (Kafka's `TransactionMarkerChannelManager`): each
//! partition's marker goes to the partition's leader in the current metadata image. The
//! partitions this broker leads are written through the local [`MarkerWriter`]; the others
//! are grouped per leader and sent as one WriteTxnMarkers request to each, over
//! [`BrokerChannels`] (one connection per destination), all destinations at once.
//!
//! Each partition's outcome is classified as Kafka's
//! `TransactionMarkerRequestCompletionHandler` does ([`markers::classify`]): a partition
//! without a leader, or whose leader is unreachable (network error, timeout, no endpoint),
//! or that answers NOT_LEADER_OR_FOLLOWER / UNKNOWN_TOPIC_OR_PARTITION / NOT_ENOUGH_REPLICAS,
//! is retried by the coordinator's next round, which looks the leader up again in the image
//! as it is then. The transaction completes only once every partition has its marker.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gregor_protocol::error_code::*;
use gregor_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic, WriteTxnMarkersRequest,
};

use super::channel::BrokerChannels;
use super::markers::{self, MarkerFailure, MarkerRound, MarkerWriter};
use super::state::TopicPartition;
use crate::broker::Broker;

/// How long a WriteTxnMarkers request may take: the receiving leader answers once the ISR
/// has the marker (Kafka appends markers with `acks=all` and `request.timeout.ms`), so a
/// little more than the coordinator's own replicated-write timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(35);

/// One transaction's marker, as the round sends it.
#[derive(Clone, Copy, Debug)]
pub struct Marker {
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// The coordinator epoch (the leader epoch of the id's `__transaction_state` partition).
    pub coordinator_epoch: i32,
    /// COMMIT (true) or ABORT.
    pub commit: bool,
    /// The finalized `transaction.version`, sent in WriteTxnMarkers v2.
    pub transaction_version: i16,
}

/// Writes `marker` to each of `partitions` through its leader (see the module docs).
pub async fn send_round(
    broker: &Arc<Broker>,
    channels: &BrokerChannels,
    local: Arc<dyn MarkerWriter>,
    partitions: &[TopicPartition],
    marker: Marker,
) -> MarkerRound {
    let image = broker.image();
    let local_id = broker.config.node_id;
    let mut round = MarkerRound::default();
    let mut here: Vec<TopicPartition> = Vec::new();
    let mut remote: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
    for tp in partitions {
        let Some(topic) = image.topic(&tp.0) else {
            // A deleted topic has nothing left to mark (Kafka drops such partitions).
            round.done.push(tp.clone());
            continue;
        };
        match topic.partition(tp.1).map(|p| p.leader) {
            None => round.retry.push((tp.clone(), UNKNOWN_TOPIC_OR_PARTITION)),
            Some(leader) if leader < 0 => round.retry.push((tp.clone(), NOT_LEADER_OR_FOLLOWER)),
            Some(leader) if leader == local_id => here.push(tp.clone()),
            Some(leader) => remote.entry(leader).or_default().push(tp.clone()),
        }
    }
    let local_round = async {
        if here.is_empty() {
            return MarkerRound::default();
        }
        let parts = here.clone();
        tokio::task::spawn_blocking(move || {
            markers::write_round(
                local.as_ref(),
                &parts,
                marker.producer_id,
                marker.producer_epoch,
                marker.coordinator_epoch,
                marker.commit,
            )
        })
        .await
        .unwrap_or_else(|_| MarkerRound {
            retry: here
                .iter()
                .map(|p| (p.clone(), UNKNOWN_SERVER_ERROR))
                .collect(),
            ..Default::default()
        })
    };
    let remote_rounds = futures_util::future::join_all(
        remote
            .into_iter()
            .map(|(leader, parts)| send_to(broker, channels, &image, leader, parts, marker)),
    );
    let (local_round, remote_rounds) = tokio::join!(local_round, remote_rounds);
    for part in std::iter::once(local_round).chain(remote_rounds) {
        round.done.extend(part.done);
        round.retry.extend(part.retry);
        if round.abandoned.is_none() {
            round.abandoned = part.abandoned;
        }
    }
    round
}

/// One WriteTxnMarkers request to `leader` for `partitions`, its answers classified.
async fn send_to(
    broker: &Arc<Broker>,
    channels: &BrokerChannels,
    image: &crate::cluster::image::MetadataImage,
    leader: i32,
    partitions: Vec<TopicPartition>,
    marker: Marker,
) -> MarkerRound {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in &partitions {
        by_topic.entry(topic).or_default().push(*partition);
    }
    let request = WriteTxnMarkersRequest {
        markers: vec![WritableTxnMarker {
            producer_id: marker.producer_id,
            producer_epoch: marker.producer_epoch,
            transaction_result: marker.commit,
            topics: by_topic
                .into_iter()
                .map(|(name, partition_indexes)| WritableTxnMarkerTopic {
                    name: name.into(),
                    partition_indexes,
                    ..Default::default()
                })
                .collect(),
            coordinator_epoch: marker.coordinator_epoch,
            transaction_version: i8::try_from(marker.transaction_version).unwrap_or(0),
            ..Default::default()
        }],
        ..Default::default()
    };
    let client_id = format!("broker-{}-txn-markers", broker.config.node_id);
    let answer = channels
        .call(
            image,
            &broker.inter_broker_connector,
            &client_id,
            leader,
            &request,
            1,
            2,
            REQUEST_TIMEOUT,
        )
        .await;
    let mut round = MarkerRound::default();
    let response = match answer {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(leader, %error, "WriteTxnMarkers not answered; retrying");
            // Kafka re-enqueues a disconnected request's markers for the next round.
            round.retry = partitions
                .into_iter()
                .map(|p| (p, NETWORK_EXCEPTION))
                .collect();
            return round;
        }
    };
    let mut codes: BTreeMap<TopicPartition, i16> = BTreeMap::new();
    for result in response
        .markers
        .iter()
        .filter(|m| m.producer_id == marker.producer_id)
    {
        for topic in &result.topics {
            for p in &topic.partitions {
                codes.insert((topic.name.to_string(), p.partition_index), p.error_code);
            }
        }
    }
    for tp in partitions {
        // A partition the answer leaves out is asked again (Kafka treats it as an error).
        let code = codes.get(&tp).copied().unwrap_or(UNKNOWN_SERVER_ERROR);
        if code == NONE {
            round.done.push(tp);
            continue;
        }
        match markers::classify(code) {
            MarkerFailure::Retry => round.retry.push((tp, code)),
            MarkerFailure::Drop => {
                tracing::warn!(
                    "{}-{}: dropped from the transaction of producer {}: error {code}",
                    tp.0,
                    tp.1,
                    marker.producer_id
                );
                round.done.push(tp);
            }
            MarkerFailure::Abandon => round.abandoned = Some(code),
        }
    }
    round
}
