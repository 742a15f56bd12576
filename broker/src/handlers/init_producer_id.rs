//! InitProducerId. For idempotent producers: a new producer id with epoch 0, from the
//! blocks of 1000 ids this node takes from the metadata log
//! ([`crate::cluster::Controller::allocate_producer_id`], a `ProducerIdsRecord` per block,
//! as Kafka's `ProducerIdControlManager`), so ids are unique across restarts. With a
//! transactional id: the transaction coordinator's producer id and epoch
//! ([`crate::transactions::TransactionCoordinator::init_producer_id`]: epoch bumps,
//! fencing, KIP-360 recovery, a new producer id when the epoch is exhausted).
//!
//! As Kafka's `KafkaApis` and `TransactionCoordinator`: a producer id without an epoch (or
//! the reverse, v3+) is `INVALID_REQUEST`; an empty transactional id is `INVALID_REQUEST`;
//! before v4 `PRODUCER_FENCED` is answered as `INVALID_PRODUCER_EPOCH`, which older
//! clients know. v6's two-phase commit (KIP-939) is not enabled, as in Kafka without
//! `transaction.two.phase.commit.enable`: `enable_2pc` is refused.

use gregor_protocol::VersionRange;
use gregor_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use gregor_protocol::messages::init_producer_id_response::InitProducerIdResponse;

use super::RequestContext;
use gregor_protocol::error_code;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 6 };

/// Kafka's `RecordBatch.NO_PRODUCER_ID`.
const NO_PRODUCER_ID: i64 = -1;
/// Kafka's `RecordBatch.NO_PRODUCER_EPOCH`.
const NO_PRODUCER_EPOCH: i16 = -1;

/// Answers an InitProducerId request.
pub async fn handle(
    ctx: &RequestContext,
    version: i16,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let transactional_id = request.transactional_id.as_deref();
    // Before v3 the fields are absent and decode as -1.
    let given_id = request.producer_id != NO_PRODUCER_ID;
    let given_epoch = request.producer_epoch != NO_PRODUCER_EPOCH;
    if given_id != given_epoch {
        return failed(error_code::INVALID_REQUEST);
    }
    // KafkaApis.handleInitProducerIdRequest: WRITE on the transactional id; an idempotent
    // producer needs IDEMPOTENT_WRITE on the cluster or WRITE on some topic (Kafka 4).
    let checker = super::authorize::Checker::new(ctx);
    match transactional_id.filter(|id| !id.is_empty()) {
        Some(id) => {
            if let Some(code) =
                checker.transactional_id_error(crate::authorizer::AclOperation::Write, id)
            {
                return failed(code);
            }
        }
        None => {
            if !checker.cluster(crate::authorizer::AclOperation::IdempotentWrite)
                && !checker.any_of_type(
                    crate::authorizer::AclOperation::Write,
                    crate::authorizer::ResourceType::Topic,
                )
            {
                return failed(error_code::CLUSTER_AUTHORIZATION_FAILED);
            }
        }
    }
    if let Some(id) = transactional_id.filter(|id| !id.is_empty()) {
        if request.enable2_pc {
            // Kafka's `TransactionCoordinator`: 2PC needs
            // `transaction.two.phase.commit.enable`, which this broker does not offer.
            return failed(error_code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
        }
        let expected = given_id.then_some((request.producer_id, request.producer_epoch));
        return match ctx
            .broker
            .transactions
            .init_producer_id(id, request.transaction_timeout_ms, expected)
            .await
        {
            Ok((producer_id, producer_epoch)) => InitProducerIdResponse {
                throttle_time_ms: 0,
                error_code: error_code::NONE,
                producer_id,
                producer_epoch,
                ..Default::default()
            },
            Err(error_code::PRODUCER_FENCED) if version < 4 => {
                failed(error_code::INVALID_PRODUCER_EPOCH)
            }
            Err(code) => failed(code),
        };
    }
    if transactional_id.is_some() {
        // An empty transactional id (the producer client refuses it as well).
        return failed(error_code::INVALID_REQUEST);
    }
    match ctx.broker.allocate_producer_id().await {
        Ok(producer_id) => InitProducerIdResponse {
            throttle_time_ms: 0,
            error_code: error_code::NONE,
            producer_id,
            producer_epoch: 0,
            ..Default::default()
        },
        Err(error) => {
            tracing::error!("allocating a producer id: {error:?}");
            failed(error.code)
        }
    }
}

fn failed(code: i16) -> InitProducerIdResponse {
    InitProducerIdResponse {
        throttle_time_ms: 0,
        error_code: code,
        producer_id: NO_PRODUCER_ID,
        producer_epoch: NO_PRODUCER_EPOCH,
        ..Default::default()
    }
}
