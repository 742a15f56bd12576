//! EndTxn: commits or aborts the transaction (Kafka's `handleEndTxnRequest`). v5+ tells the
//! coordinator the client bumps its epoch at every transaction (KIP-890 part 2,
//! `transaction.version` 2): the answer then carries the new producer id and epoch.
//! Before v2 `PRODUCER_FENCED` is answered as `INVALID_PRODUCER_EPOCH`.

use gregor_protocol::VersionRange;
use gregor_protocol::error_code;
use gregor_protocol::messages::end_txn_request::EndTxnRequest;
use gregor_protocol::messages::end_txn_response::EndTxnResponse;

use super::RequestContext;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

/// Answers an EndTxn request.
pub async fn handle(ctx: &RequestContext, version: i16, request: EndTxnRequest) -> EndTxnResponse {
    // Kafka: a v5 request means the client supports transaction version 2.
    let client_tv = if version > 4 { 2 } else { 0 };
    // KafkaApis.handleEndTxnRequest: WRITE on the transactional id.
    if let Some(code) = super::authorize::Checker::new(ctx).transactional_id_error(
        crate::authorizer::AclOperation::Write,
        &request.transactional_id,
    ) {
        return EndTxnResponse {
            error_code: code,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        };
    }
    let result = ctx
        .broker
        .transactions
        .end_txn(
            &request.transactional_id,
            request.producer_id,
            request.producer_epoch,
            request.committed,
            client_tv,
        )
        .await;
    let (code, producer_id, producer_epoch) = match result {
        Ok((id, epoch)) => (error_code::NONE, id, epoch),
        Err(code) => (code, -1, -1),
    };
    let code = if version < 2 && code == error_code::PRODUCER_FENCED {
        error_code::INVALID_PRODUCER_EPOCH
    } else {
        code
    };
    EndTxnResponse {
        throttle_time_ms: 0,
        error_code: code,
        producer_id: if version >= 5 { producer_id } else { -1 },
        producer_epoch: if version >= 5 { producer_epoch } else { -1 },
        ..Default::default()
    }
}
