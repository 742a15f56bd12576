//! DescribeTransactions: each id's state, producer, timeout, start and partitions
//! (Kafka's `handleDescribeTransactions`): `TRANSACTIONAL_ID_NOT_FOUND` for an unknown
//! (or expiring) id, `INVALID_REQUEST` for an empty one. An id the principal may not
//! DESCRIBE is `TRANSACTIONAL_ID_AUTHORIZATION_FAILED`, and only the topics it may DESCRIBE
//! are listed (Kafka's `handleDescribeTransactionsRequest`).

use std::collections::BTreeMap;

use gregor_protocol::VersionRange;
use gregor_protocol::error_code;
use gregor_protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
use gregor_protocol::messages::describe_transactions_response::{
    DescribeTransactionsResponse, TopicData, TransactionState,
};

use super::RequestContext;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

/// Answers a DescribeTransactions request.
pub async fn handle(
    ctx: &RequestContext,
    _version: i16,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let checker = super::authorize::Checker::new(ctx);
    let mut states = Vec::with_capacity(request.transactional_ids.len());
    for id in &request.transactional_ids {
        if let Some(code) =
            checker.transactional_id_error(crate::authorizer::AclOperation::Describe, id)
        {
            states.push(TransactionState {
                error_code: code,
                transactional_id: id.clone(),
                ..Default::default()
            });
            continue;
        }
        let state = match ctx.broker.transactions.describe(id).await {
            Ok(txn) => {
                let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                let visible = txn.partitions.iter().filter(|(topic, _)| {
                    checker.topic(crate::authorizer::AclOperation::Describe, topic)
                });
                for (topic, partition) in visible {
                    topics.entry(topic.clone()).or_default().push(*partition);
                }
                TransactionState {
                    error_code: error_code::NONE,
                    transactional_id: id.clone(),
                    transaction_state: txn.state.into(),
                    transaction_timeout_ms: txn.timeout_ms,
                    transaction_start_time_ms: txn.start_ms,
                    producer_id: txn.producer_id,
                    producer_epoch: txn.producer_epoch,
                    topics: topics
                        .into_iter()
                        .map(|(topic, partitions)| TopicData {
                            topic: topic.into(),
                            partitions,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }
            }
            Err(code) => TransactionState {
                error_code: code,
                transactional_id: id.clone(),
                ..Default::default()
            },
        };
        states.push(state);
    }
    DescribeTransactionsResponse {
        throttle_time_ms: 0,
        transaction_states: states,
        ..Default::default()
    }
}
