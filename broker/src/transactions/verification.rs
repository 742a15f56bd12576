//! KIP-890 part 1 for a partition leader: before it appends a producer's first
//! transactional batch to a partition it asks the transaction coordinator whether the
//! partition is in the transaction (or, with transactions v2, adds it). When this broker
//! coordinates the transactional id the coordinator is called directly; in a cluster whose
//! coordinator for the id is another broker, an AddPartitionsToTxn v4+ request goes there
//! (Kafka's `AddPartitionsToTxnManager`, `verifyOnly` unless adding), over the
//! coordinator's verification [`super::channel::BrokerChannels`].

use std::collections::BTreeSet;
use std::time::Duration;

use gregor_protocol::error_code::*;
use gregor_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};

use super::channel::ChannelError;
use super::state::TopicPartition;
use super::{TRANSACTION_STATE_TOPIC, TransactionCoordinator, partition_for};

/// How long the coordinator may take to answer; past it the producer is told to retry
/// (NETWORK_EXCEPTION, which the produce path answers as NOT_ENOUGH_REPLICAS).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

impl TransactionCoordinator {
    /// The coordinator's word on each of `partitions` of `id`'s transaction of
    /// `producer_id` at `epoch`: verified only, or added when `add` (Produce v12+,
    /// transactions v2). One code per partition, in order: `NONE`, or the coordinator's
    /// error (as [`Self::verify_partitions`] / [`Self::add_partitions`] answer), or
    /// `COORDINATOR_NOT_AVAILABLE` / `NETWORK_EXCEPTION` when the coordinator cannot be
    /// asked now.
    pub async fn verify_for_produce(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[TopicPartition],
        add: bool,
    ) -> Vec<i16> {
        let all = |code: i16| vec![code; partitions.len()];
        let remote = self
            .broker()
            .filter(|b| b.config.is_cluster())
            .and_then(|b| {
                // Another broker coordinates the id (NOT_COORDINATOR here).
                self.coordinator_error(id)?;
                let image = b.image();
                let leader = image.topic(TRANSACTION_STATE_TOPIC).and_then(|topic| {
                    let partition = partition_for(id, topic.partitions.len() as i32);
                    topic.partition(partition).map(|p| p.leader)
                });
                Some((b, image, leader))
            });
        let Some((broker, image, leader)) = remote else {
            return self
                .verify_here(id, producer_id, epoch, partitions, add)
                .await;
        };
        let leader = match leader {
            // This broker leads the partition but has not loaded it yet: its own answer
            // (NOT_COORDINATOR for now, which the producer retries).
            Some(leader) if leader == broker.config.node_id => {
                return self
                    .verify_here(id, producer_id, epoch, partitions, add)
                    .await;
            }
            Some(leader) if leader >= 0 => leader,
            _ => return all(COORDINATOR_NOT_AVAILABLE),
        };
        let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
        for (topic, partition) in partitions {
            match topics.iter_mut().find(|t| &*t.name == topic.as_str()) {
                Some(t) => t.partitions.push(*partition),
                None => topics.push(AddPartitionsToTxnTopic {
                    name: topic.as_str().into(),
                    partitions: vec![*partition],
                    ..Default::default()
                }),
            }
        }
        let request = AddPartitionsToTxnRequest {
            transactions: vec![AddPartitionsToTxnTransaction {
                transactional_id: id.into(),
                producer_id,
                producer_epoch: epoch,
                verify_only: !add,
                topics,
                ..Default::default()
            }],
            ..Default::default()
        };
        let client_id = format!("broker-{}-txn-verification", broker.config.node_id);
        let answer = self
            .verification_channels
            .call(
                &image,
                &broker.inter_broker_connector,
                &client_id,
                leader,
                &request,
                4,
                5,
                REQUEST_TIMEOUT,
            )
            .await;
        let response = match answer {
            Ok(response) => response,
            // Kafka's AddPartitionsToTxnManager: a coordinator that cannot verify (an
            // older version) lets the produce go on unverified.
            Err(ChannelError::Unsupported(message)) => {
                tracing::warn!(leader, "transaction verification skipped: {message}");
                return all(NONE);
            }
            Err(error) => {
                tracing::debug!(leader, %error, "transaction verification not answered");
                return all(NETWORK_EXCEPTION);
            }
        };
        if response.error_code != NONE {
            // The producer is not told about the brokers' own authorization.
            return all(if response.error_code == CLUSTER_AUTHORIZATION_FAILED {
                INVALID_TXN_STATE
            } else {
                response.error_code
            });
        }
        let Some(result) = response
            .results_by_transaction
            .iter()
            .find(|r| &*r.transactional_id == id)
        else {
            return all(NETWORK_EXCEPTION);
        };
        partitions
            .iter()
            .map(|(topic, partition)| {
                result
                    .topic_results
                    .iter()
                    .filter(|t| &*t.name == topic.as_str())
                    .flat_map(|t| t.results_by_partition.iter())
                    .find(|p| p.partition_index == *partition)
                    // A partition the coordinator did not answer is not verified: the
                    // producer retries (Kafka would take it as verified).
                    .map_or(NETWORK_EXCEPTION, |p| p.partition_error_code)
            })
            .collect()
    }

    /// The same answer from this broker's own coordinator.
    async fn verify_here(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[TopicPartition],
        add: bool,
    ) -> Vec<i16> {
        if add {
            let set: BTreeSet<TopicPartition> = partitions.iter().cloned().collect();
            let code = self.add_partitions(id, producer_id, epoch, &set).await;
            vec![code; partitions.len()]
        } else {
            self.verify_partitions(id, producer_id, epoch, partitions)
                .await
                .into_iter()
                .map(|(_, code)| code)
                .collect()
        }
    }
}
