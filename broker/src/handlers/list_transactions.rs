//! ListTransactions: the transactions matching the state, producer id (v0+), duration
//! (v1+) and transactional id pattern (v2+) filters (Kafka's `listTransactionStates`);
//! state names the coordinator does not know come back in `unknown_state_filters`. Only
//! the transactional ids the principal may DESCRIBE are listed (Kafka's
//! `handleListTransactionsRequest`).

use gregor_protocol::VersionRange;
use gregor_protocol::error_code;
use gregor_protocol::messages::list_transactions_request::ListTransactionsRequest;
use gregor_protocol::messages::list_transactions_response::{
    ListTransactionsResponse, TransactionState,
};

use super::RequestContext;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

/// Answers a ListTransactions request.
pub async fn handle(
    ctx: &RequestContext,
    version: i16,
    request: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let states: Vec<String> = request
        .state_filters
        .iter()
        .map(|s| s.to_string())
        .collect();
    let duration = if version >= 1 {
        request.duration_filter
    } else {
        -1
    };
    let pattern = request
        .transactional_id_pattern
        .as_deref()
        .filter(|_| version >= 2);
    match ctx
        .broker
        .transactions
        .list(&states, &request.producer_id_filters, duration, pattern)
        .await
    {
        Ok((unknown, mut listed)) => ListTransactionsResponse {
            throttle_time_ms: 0,
            error_code: error_code::NONE,
            unknown_state_filters: unknown.into_iter().map(Into::into).collect(),
            transaction_states: {
                let checker = super::authorize::Checker::new(ctx);
                listed.retain(|t| {
                    checker.transactional_id(
                        crate::authorizer::AclOperation::Describe,
                        &t.transactional_id,
                    )
                });
                listed
            }
            .into_iter()
            .map(|t| TransactionState {
                transactional_id: t.transactional_id.into(),
                producer_id: t.producer_id,
                transaction_state: t.state.into(),
                ..Default::default()
            })
            .collect(),
            ..Default::default()
        },
        Err(code) => ListTransactionsResponse {
            error_code: code,
            ..Default::default()
        },
    }
}
