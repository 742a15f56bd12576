//! TxnOffsetCommit: offsets committed inside a transaction (Kafka's
//! `handleTxnOffsetCommitRequest` and `commitTransactionalOffsets`), kept pending by the
//! group coordinator until the transaction's marker ([`crate::groups::txn_offsets`]). An
//! unknown topic or partition gets `UNKNOWN_TOPIC_OR_PARTITION`; before v2
//! `COORDINATOR_LOAD_IN_PROGRESS` is answered as `COORDINATOR_NOT_AVAILABLE`.
//!
//! KIP-890 part 1: before the offsets are written, the transaction coordinator (this
//! broker or, in a cluster, the one leading the id's `__transaction_state` partition)
//! verifies that the group's `__consumer_offsets` partition is in the transaction (added
//! by AddOffsetsToTxn), as Kafka's `CoordinatorPartitionWriter.maybeStartTransactionVerification`
//! does; see [`verification_error`].

use gregor_protocol::VersionRange;
use gregor_protocol::error_code;
use gregor_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequest;
use gregor_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};

use super::RequestContext;
use crate::groups::CommitPartition;
use crate::groups::txn_offsets::TxnCommitParams;

/// A partition and the error decided by the handler (`None`: the coordinator's).
type Answer = (i32, Option<i16>);

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

/// Answers a TxnOffsetCommit request.
pub async fn handle(
    ctx: &RequestContext,
    version: i16,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let image = ctx.broker.image();
    // KafkaApis.handleTxnOffsetCommitRequest: WRITE on the transactional id, READ on the
    // group (every partition gets the error), READ on each topic.
    let checker = super::authorize::Checker::new(ctx);
    let request_error = checker
        .transactional_id_error(
            crate::authorizer::AclOperation::Write,
            &request.transactional_id,
        )
        .or_else(|| checker.group_error(crate::authorizer::AclOperation::Read, &request.group_id));
    // Per requested partition: Some(error) decided here, None when passed on.
    let mut decided: Vec<(String, Vec<Answer>)> = Vec::new();
    let mut valid: Vec<(String, Vec<CommitPartition>)> = Vec::new();
    for topic in &request.topics {
        let name = topic.name.to_string();
        let known = image.topic(&name);
        let mut passed = Vec::new();
        let mut answers = Vec::new();
        let topic_error = request_error
            .or_else(|| checker.topic_error(crate::authorizer::AclOperation::Read, &name));
        for p in &topic.partitions {
            if let Some(code) = topic_error {
                answers.push((p.partition_index, Some(code)));
            } else if known.and_then(|t| t.partition(p.partition_index)).is_some() {
                answers.push((p.partition_index, None));
                passed.push(CommitPartition {
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                    // TxnOffsetCommit has no commit timestamp: the broker's clock.
                    commit_timestamp_ms: -1,
                });
            } else {
                answers.push((
                    p.partition_index,
                    Some(error_code::UNKNOWN_TOPIC_OR_PARTITION),
                ));
            }
        }
        decided.push((name.clone(), answers));
        if !passed.is_empty() {
            valid.push((name, passed));
        }
    }
    let unverified = if valid.is_empty() {
        None
    } else {
        verify(ctx, version, &request).await
    };
    let codes = if valid.is_empty() {
        Vec::new()
    } else if let Some(code) = unverified {
        valid
            .iter()
            .map(|(_, partitions)| vec![code; partitions.len()])
            .collect()
    } else {
        ctx.broker
            .groups
            .commit_transactional_offsets(TxnCommitParams {
                transactional_id: request.transactional_id.to_string(),
                group_id: request.group_id.to_string(),
                producer_id: request.producer_id,
                producer_epoch: request.producer_epoch,
                generation_id: request.generation_id,
                member_id: request.member_id.to_string(),
                group_instance_id: request.group_instance_id.as_ref().map(|i| i.to_string()),
                topics: valid,
            })
            .await
    };
    // The coordinator's codes come in the order of the passed partitions, which is the
    // order of the undecided answers.
    let mut passed: std::collections::VecDeque<i16> = codes.into_iter().flatten().collect();
    let topics = decided
        .into_iter()
        .map(|(name, answers)| {
            let partitions = answers
                .into_iter()
                .map(|(partition, code)| {
                    let mut code = code.unwrap_or_else(|| {
                        passed
                            .pop_front()
                            .unwrap_or(error_code::UNKNOWN_SERVER_ERROR)
                    });
                    if version < 2 && code == error_code::COORDINATOR_LOAD_IN_PROGRESS {
                        code = error_code::COORDINATOR_NOT_AVAILABLE;
                    }
                    TxnOffsetCommitResponsePartition {
                        partition_index: partition,
                        error_code: code,
                        ..Default::default()
                    }
                })
                .collect();
            TxnOffsetCommitResponseTopic {
                name: name.into(),
                partitions,
                ..Default::default()
            }
        })
        .collect();
    TxnOffsetCommitResponse {
        throttle_time_ms: 0,
        topics,
        ..Default::default()
    }
}

/// KIP-890: the transaction coordinator's verification of the group's
/// `__consumer_offsets` partition; the error for every partition when it is not verified.
/// Left to the group coordinator (its NOT_COORDINATOR first) when the group is not
/// coordinated here.
async fn verify(
    ctx: &RequestContext,
    version: i16,
    request: &TxnOffsetCommitRequest,
) -> Option<i16> {
    let groups = &ctx.broker.groups;
    let group = request.group_id.to_string();
    if request.transactional_id.is_empty()
        || groups.coordinator_error(&group).is_some()
        || !ctx.broker.default_log_config().transaction_verification
    {
        return None;
    }
    let partition = crate::groups::partition_for(&group, groups.partition_count());
    let tp = (crate::groups::OFFSETS_TOPIC.to_string(), partition);
    let codes = ctx
        .broker
        .transactions
        .verify_for_produce(
            &request.transactional_id,
            request.producer_id,
            request.producer_epoch,
            &[tp],
            false,
        )
        .await;
    match codes.first().copied() {
        None | Some(error_code::NONE) => None,
        Some(code) => Some(verification_error(code, version)),
    }
}

/// A failed verification as TxnOffsetCommit answers it (Kafka's `AddPartitionsToTxnManager`
/// and the group coordinator's error normalization): a fenced producer is
/// INVALID_PRODUCER_EPOCH, TRANSACTION_ABORTABLE is INVALID_TXN_STATE before v4 (the
/// clients that do not know it), and a coordinator that could not be asked is
/// COORDINATOR_NOT_AVAILABLE, which every client retries.
fn verification_error(code: i16, version: i16) -> i16 {
    match code {
        error_code::PRODUCER_FENCED => error_code::INVALID_PRODUCER_EPOCH,
        error_code::TRANSACTION_ABORTABLE if version < 4 => error_code::INVALID_TXN_STATE,
        error_code::NETWORK_EXCEPTION | error_code::NOT_COORDINATOR => {
            error_code::COORDINATOR_NOT_AVAILABLE
        }
        other => other,
    }
}
