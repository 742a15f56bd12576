//! AddOffsetsToTxn: adds the group's `__consumer_offsets` partition to the transaction, so
//! that its TxnOffsetCommit records get the transaction's marker (Kafka's
//! `handleAddOffsetsToTxnRequest`). Before v2 `PRODUCER_FENCED` is answered as
//! `INVALID_PRODUCER_EPOCH`.

use std::collections::BTreeSet;

use gregor_protocol::VersionRange;
use gregor_protocol::error_code;
use gregor_protocol::messages::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use gregor_protocol::messages::add_offsets_to_txn_response::AddOffsetsToTxnResponse;

use super::RequestContext;
use crate::groups::OFFSETS_TOPIC;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

/// Answers an AddOffsetsToTxn request.
pub async fn handle(
    ctx: &RequestContext,
    version: i16,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let broker = &ctx.broker;
    // KafkaApis.handleAddOffsetsToTxnRequest: WRITE on the transactional id, READ on the
    // group.
    let checker = super::authorize::Checker::new(ctx);
    if let Some(error_code) = checker
        .transactional_id_error(
            crate::authorizer::AclOperation::Write,
            &request.transactional_id,
        )
        .or_else(|| checker.group_error(crate::authorizer::AclOperation::Read, &request.group_id))
    {
        return AddOffsetsToTxnResponse {
            error_code,
            ..Default::default()
        };
    }
    // The offsets partition must exist for its marker to be written.
    let mut code = match broker.groups.ensure_offsets_topic().await {
        Err(code) => code,
        Ok(()) => {
            let partition = broker.groups.partition_of(&request.group_id);
            let partitions = BTreeSet::from([(OFFSETS_TOPIC.to_string(), partition)]);
            broker
                .transactions
                .add_partitions(
                    &request.transactional_id,
                    request.producer_id,
                    request.producer_epoch,
                    &partitions,
                )
                .await
        }
    };
    if version < 2 && code == error_code::PRODUCER_FENCED {
        code = error_code::INVALID_PRODUCER_EPOCH;
    }
    AddOffsetsToTxnResponse {
        throttle_time_ms: 0,
        error_code: code,
        ..Default::default()
    }
}
