//! AddPartitionsToTxn (Kafka's `KafkaApis.handleAddPartitionsToTxnRequest`). v0-v3 come
//! from producers: one transaction, the partitions added to it. v4+ come from brokers
//! (KIP-890): a batch of transactions, each either added or, with `verify_only`, checked
//! ([`crate::transactions::TransactionCoordinator::verify_partitions`]).
//!
//! A partition that does not exist fails its whole transaction: it gets
//! `UNKNOWN_TOPIC_OR_PARTITION` and the others `OPERATION_NOT_ATTEMPTED`. Otherwise every
//! partition gets the transaction's error (a verification answers per partition). Before
//! v2 `PRODUCER_FENCED` is answered as `INVALID_PRODUCER_EPOCH`.

use std::collections::{BTreeMap, BTreeSet};

use gregor_protocol::VersionRange;
use gregor_protocol::error_code;
use gregor_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic,
};
use gregor_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResponse, AddPartitionsToTxnResult,
    AddPartitionsToTxnTopicResult,
};

use super::RequestContext;
use crate::transactions::state::TopicPartition;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

/// The partitions of a request, in order, duplicates once (Kafka collects them in a set).
fn partitions_of(topics: &[AddPartitionsToTxnTopic]) -> Vec<TopicPartition> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for topic in topics {
        for p in &topic.partitions {
            let tp = (topic.name.to_string(), *p);
            if seen.insert(tp.clone()) {
                out.push(tp);
            }
        }
    }
    out
}

/// Results grouped by topic, in the order partitions first appear.
fn results(codes: &[(TopicPartition, i16)]) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut order: Vec<String> = Vec::new();
    let mut by_topic: BTreeMap<String, Vec<AddPartitionsToTxnPartitionResult>> = BTreeMap::new();
    for ((topic, partition), code) in codes {
        if !by_topic.contains_key(topic) {
            order.push(topic.clone());
        }
        by_topic
            .entry(topic.clone())
            .or_default()
            .push(AddPartitionsToTxnPartitionResult {
                partition_index: *partition,
                partition_error_code: *code,
                ..Default::default()
            });
    }
    order
        .into_iter()
        .map(|topic| AddPartitionsToTxnTopicResult {
            results_by_partition: by_topic.remove(&topic).unwrap_or_default(),
            name: topic.into(),
            ..Default::default()
        })
        .collect()
}

/// One transaction's per-partition errors.
async fn handle_one(
    ctx: &RequestContext,
    version: i16,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    verify_only: bool,
    partitions: Vec<TopicPartition>,
) -> Vec<(TopicPartition, i16)> {
    let image = ctx.broker.image();
    // KafkaApis.handleAddPartitionsToTxnRequest: v4+ (broker to broker) needs
    // CLUSTER_ACTION; before, WRITE on the transactional id, then WRITE on each
    // (non-internal) topic: TOPIC_AUTHORIZATION_FAILED, the others OPERATION_NOT_ATTEMPTED.
    let checker = super::authorize::Checker::new(ctx);
    let whole = if version >= 4 {
        checker.cluster_error(crate::authorizer::AclOperation::ClusterAction)
    } else {
        checker.transactional_id_error(crate::authorizer::AclOperation::Write, transactional_id)
    };
    if let Some(code) = whole {
        return partitions.iter().map(|tp| (tp.clone(), code)).collect();
    }
    let denied: BTreeSet<&TopicPartition> = partitions
        .iter()
        .filter(|(t, _)| {
            !crate::topic_names::is_internal(t)
                && !checker.topic(crate::authorizer::AclOperation::Write, t)
        })
        .collect();
    if !denied.is_empty() {
        return partitions
            .iter()
            .map(|tp| {
                let code = if denied.contains(tp) {
                    error_code::TOPIC_AUTHORIZATION_FAILED
                } else {
                    error_code::OPERATION_NOT_ATTEMPTED
                };
                (tp.clone(), code)
            })
            .collect();
    }
    let missing: BTreeSet<&TopicPartition> = partitions
        .iter()
        .filter(|(t, p)| {
            image
                .topic(t)
                .and_then(|topic| topic.partition(*p))
                .is_none()
        })
        .collect();
    if !missing.is_empty() {
        return partitions
            .iter()
            .map(|tp| {
                let code = if missing.contains(tp) {
                    error_code::UNKNOWN_TOPIC_OR_PARTITION
                } else {
                    error_code::OPERATION_NOT_ATTEMPTED
                };
                (tp.clone(), code)
            })
            .collect();
    }
    let coordinator = &ctx.broker.transactions;
    if verify_only {
        return coordinator
            .verify_partitions(transactional_id, producer_id, producer_epoch, &partitions)
            .await;
    }
    let set: BTreeSet<TopicPartition> = partitions.iter().cloned().collect();
    let mut code = coordinator
        .add_partitions(transactional_id, producer_id, producer_epoch, &set)
        .await;
    if version < 2 && code == error_code::PRODUCER_FENCED {
        code = error_code::INVALID_PRODUCER_EPOCH;
    }
    partitions.into_iter().map(|tp| (tp, code)).collect()
}

/// Answers an AddPartitionsToTxn request.
pub async fn handle(
    ctx: &RequestContext,
    version: i16,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    if version < 4 {
        let codes = handle_one(
            ctx,
            version,
            &request.v3_and_below_transactional_id,
            request.v3_and_below_producer_id,
            request.v3_and_below_producer_epoch,
            false,
            partitions_of(&request.v3_and_below_topics),
        )
        .await;
        return AddPartitionsToTxnResponse {
            results_by_topic_v3_and_below: results(&codes),
            ..Default::default()
        };
    }
    let mut out = Vec::with_capacity(request.transactions.len());
    for txn in &request.transactions {
        let codes = handle_one(
            ctx,
            version,
            &txn.transactional_id,
            txn.producer_id,
            txn.producer_epoch,
            txn.verify_only,
            partitions_of(&txn.topics),
        )
        .await;
        out.push(AddPartitionsToTxnResult {
            transactional_id: txn.transactional_id.clone(),
            topic_results: results(&codes),
            ..Default::default()
        });
    }
    AddPartitionsToTxnResponse {
        results_by_transaction: out,
        ..Default::default()
    }
}
