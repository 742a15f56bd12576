//! Produce: validate every partition's batches before anything is written, assign offsets,
//! append, and answer per partition. One bad partition never fails the others.
//!
//! Produce v0-v2 (Kafka 3.9's floor, dropped by Kafka 4.0) may carry legacy message sets
//! (magic 0/1): they are validated and up-converted to one v2 batch before the append, as
//! Kafka 3.x's `LogValidator` did with message format 3.0
//! ([`crate::storage::validate_legacy_records`]). v0 has no throttle time in its response
//! and v0-v1 no log append time; the generated encoder leaves out what a version lacks.
//!
//! Single node: the in-sync replica set is this broker, so `acks=-1` and `acks=1` are both
//! answered once the append returns; `acks=0` gets no response at all. A partition that
//! replication leads with other replicas: `acks=-1` checks `min.insync.replicas` first and
//! waits for the ISR after the append ([`acks`]).
//!
//! Idempotent producers (KIP-98): the partition log checks each batch's producer epoch and
//! sequence when it assigns offsets ([`crate::storage::producer_state`]). A retried batch
//! is not appended again and is answered as Kafka does: `NONE`, the offset it was first
//! appended at, its max timestamp as `log_append_time_ms`, and the log start offset. An
//! older epoch is `INVALID_PRODUCER_EPOCH` (47), a sequence gap or a new epoch not starting
//! at 0 `OUT_OF_ORDER_SEQUENCE_NUMBER` (45), with the log start offset and a message
//! (Kafka leaves it null); nothing of the partition's records is appended then.
//!
//! Transactions (KIP-98): the partition log keeps each producer's ongoing transaction
//! ([`crate::storage::producer_state::txn`]): a non-transactional batch during one is
//! `INVALID_TXN_STATE`. Transactional batches without a transactional id are
//! `TRANSACTIONAL_ID_AUTHORIZATION_FAILED` (Kafka's `KafkaApis.handleProduceRequest`). The
//! first transactional batch of a producer in a partition is verified with the transaction
//! coordinator first (KIP-890), see [`verify_transactional`].

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gregor_protocol::messages::produce_request::ProduceRequest;
use gregor_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, ProduceResponse, TopicProduceResponse,
};
use gregor_protocol::records::{BatchHeader, MAGIC_V2};
use gregor_protocol::{Uuid, VersionRange};

use super::RequestContext;
use crate::authorizer::AclOperation;
use crate::broker::Broker;
use crate::storage::{
    AppendInfo, PartitionLog, StorageError, TxnVerification, ValidatedRecords, VerificationGuard,
    is_legacy_message_set, validate_legacy_records, validate_records,
};

mod acks;
mod inline;
use gregor_protocol::error_code;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 13 };

/// KIP-890 for the partitions of a transactional request: before the first transactional
/// batch of a producer in a partition, Kafka's `ReplicaManager` takes a guard
/// ([`PartitionLog::start_txn_verification`]) and asks the coordinator whether the
/// partition is in the transaction (from Produce v12, transactions v2, it adds it), then
/// appends with [`TxnVerification::Guard`]; a partition the coordinator refuses gets its
/// error and nothing appended.
async fn verify_transactional(
    broker: &Broker,
    version: i16,
    transactional_id: &str,
    names: &[(String, Uuid)],
    targets: &mut [Target],
) {
    // Kafka's `maybeStartTransactionVerificationForPartitions` skips it all when the
    // broker's `transaction.partition.verification.enable` is off (then, as there,
    // Produce v12+ adds no partition to the transaction either).
    if !broker.default_log_config().transaction_verification {
        return;
    }
    // The partitions whose first transactional batch needs the coordinator's word.
    let mut asked: Vec<(usize, (String, i32))> = Vec::new();
    let mut producer: Option<(i64, i16)> = None;
    for (i, target) in targets.iter_mut().enumerate() {
        let (Ok((log, _)), Some(records)) = (&target.log, &target.records) else {
            continue;
        };
        let Some(header) = BatchHeader::decode(records) else {
            continue;
        };
        if header.magic != MAGIC_V2 || !header.is_transactional() || header.producer_id < 0 {
            continue;
        }
        let guard = log.start_txn_verification(
            header.producer_id,
            header.base_sequence,
            header.producer_epoch,
        );
        target.verification = TxnVerification::Guard(guard);
        if guard != VerificationGuard::SENTINEL {
            producer = Some((header.producer_id, header.producer_epoch));
            asked.push((i, (names[target.topic].0.clone(), target.index)));
        }
    }
    let Some((producer_id, epoch)) = producer else {
        return;
    };
    let coordinator = &broker.transactions;
    // Kafka 4's ReplicaManager: from Produce v12 (transactions v2) the partitions are
    // added to the transaction implicitly; before, only verified (KIP-890 part 1). The
    // coordinator may be another broker of the cluster (AddPartitionsToTxnManager).
    let partitions: Vec<(String, i32)> = asked.iter().map(|(_, tp)| tp.clone()).collect();
    let codes = coordinator
        .verify_for_produce(
            transactional_id,
            producer_id,
            epoch,
            &partitions,
            version >= 12,
        )
        .await;
    for ((i, _), code) in asked.iter().zip(codes) {
        if code != error_code::NONE {
            targets[*i].log = Err(verification_error(code, version));
        }
    }
}

/// What a producer is told when the coordinator did not verify a partition (Kafka's
/// `AddPartitionsToTxnManager` and `ReplicaManager.appendRecords`): a fenced producer sees
/// INVALID_PRODUCER_EPOCH, TRANSACTION_ABORTABLE is INVALID_TXN_STATE before Produce v11,
/// and retriable coordinator errors become NOT_ENOUGH_REPLICAS, which every client retries.
fn verification_error(code: i16, version: i16) -> i16 {
    match code {
        error_code::PRODUCER_FENCED => error_code::INVALID_PRODUCER_EPOCH,
        error_code::TRANSACTION_ABORTABLE if version <= 10 => error_code::INVALID_TXN_STATE,
        error_code::CONCURRENT_TRANSACTIONS
        | error_code::NETWORK_EXCEPTION
        | error_code::COORDINATOR_LOAD_IN_PROGRESS
        | error_code::COORDINATOR_NOT_AVAILABLE
        | error_code::NOT_COORDINATOR => error_code::NOT_ENOUGH_REPLICAS,
        other => other,
    }
}

/// One partition's data, resolved against the image and the logs.
struct Target {
    topic: usize,
    index: i32,
    records: Option<Bytes>,
    log: Result<(Arc<PartitionLog>, i32), i16>,
    /// KIP-890: the guard of the coordinator's verification of a transactional batch.
    verification: TxnVerification,
}

/// Appends the request's records; `None` for `acks=0`.
pub async fn handle(
    ctx: &RequestContext,
    version: i16,
    request: ProduceRequest,
) -> Option<ProduceResponse> {
    let acks = request.acks;
    let timeout_ms = request.timeout_ms;
    let broker = ctx.broker.clone();
    // Kafka never creates a topic from a Produce: producers create topics through Metadata
    // with allow_auto_topic_creation (KafkaApis.handleProduceRequest answers
    // UNKNOWN_TOPIC_OR_PARTITION whatever auto.create.topics.enable says).
    let transactional_id = request
        .transactional_id
        .as_deref()
        .filter(|id| !id.is_empty())
        .map(str::to_owned);
    let checker = super::authorize::Checker::new(ctx);
    let (topics, mut targets) = resolve(&broker, &checker, version, request);
    if let Some(id) = &transactional_id {
        verify_transactional(&broker, version, id, &topics, &mut targets).await;
    }
    let fixed_error = if !matches!(acks, -1..=1) {
        Some(error_code::INVALID_REQUIRED_ACKS)
    } else {
        None
    };
    let appending = if fixed_error.is_none() {
        acks::refuse_before_append(&broker, acks, &topics, &mut targets)
    } else {
        Vec::new()
    };
    let mut results = append_all(targets, fixed_error, version).await;
    acks::wait_for_replication(&broker, acks, timeout_ms, &topics, &appending, &mut results).await;
    if acks == 0 {
        return None;
    }
    let mut responses: Vec<TopicProduceResponse> = topics
        .into_iter()
        .map(|(name, id)| TopicProduceResponse {
            name: if version < 13 {
                name.as_str().into()
            } else {
                Default::default()
            },
            topic_id: if version >= 13 { id } else { Uuid::nil() },
            ..Default::default()
        })
        .collect();
    for (topic, response) in results {
        responses[topic].partition_responses.push(response);
    }
    let mut response = ProduceResponse {
        responses,
        throttle_time_ms: 0,
        ..Default::default()
    };
    if version >= 10 {
        acks::add_current_leaders(&broker, &ctx.listener, &mut response);
    }
    Some(response)
}

/// (name, id) per requested topic, and each partition's target log and leader epoch.
fn resolve(
    broker: &Broker,
    checker: &super::authorize::Checker<'_>,
    version: i16,
    request: ProduceRequest,
) -> (Vec<(String, Uuid)>, Vec<Target>) {
    let image = broker.image();
    let mut topics = Vec::new();
    let mut targets = Vec::new();
    let refused = refuse_transactions(&request, checker);
    for (index, topic) in request.topic_data.into_iter().enumerate() {
        let found = if version >= 13 {
            image
                .topic_by_id(&topic.topic_id)
                .ok_or(error_code::UNKNOWN_TOPIC_ID)
        } else {
            image
                .topic(&topic.name)
                .ok_or(error_code::UNKNOWN_TOPIC_OR_PARTITION)
        };
        let name = found
            .map(|t| t.name.clone())
            .unwrap_or_else(|_| topic.name.to_string());
        // KafkaApis.handleProduceRequest: WRITE on the topic, checked before existence
        // (by name; a topic id must resolve first).
        let found = match found {
            Err(code) if version >= 13 => Err(code),
            _ if !checker.topic(AclOperation::Write, &name) => {
                Err(error_code::TOPIC_AUTHORIZATION_FAILED)
            }
            other => other,
        };
        topics.push((name.clone(), topic.topic_id));
        for partition in topic.partition_data {
            let log = match (&found, refused) {
                (_, Some(code)) => Err(code),
                (Err(code), _) => Err(*code),
                (Ok(t), _) => match (
                    t.partitions.get(&partition.index),
                    broker.logs.get(&name, partition.index),
                ) {
                    (Some(p), Some(log)) => Ok((log, p.leader_epoch)),
                    // In the metadata but without a log: offline, as Kafka's
                    // ReplicaManager answers for a partition of an offline log dir.
                    (Some(_), None) => Err(error_code::KAFKA_STORAGE_ERROR),
                    (None, _) => Err(error_code::UNKNOWN_TOPIC_OR_PARTITION),
                },
            };
            targets.push(Target {
                topic: index,
                index: partition.index,
                records: partition.records,
                log,
                verification: TxnVerification::NotRequired,
            });
        }
    }
    (topics, targets)
}

/// The error every partition of a transactional request gets when it cannot be served:
/// Kafka's `TRANSACTIONAL_ID_AUTHORIZATION_FAILED` for transactional batches without a
/// transactional id or without WRITE on it (Kafka's `hasTransactionalRecords` looks at
/// each partition's first batch).
fn refuse_transactions(
    request: &ProduceRequest,
    checker: &super::authorize::Checker<'_>,
) -> Option<i16> {
    let transactional_id = request
        .transactional_id
        .as_deref()
        .is_some_and(|id| !id.is_empty() && checker.transactional_id(AclOperation::Write, id));
    let transactional_records = request.topic_data.iter().any(|topic| {
        topic.partition_data.iter().any(|p| {
            p.records
                .as_deref()
                .and_then(BatchHeader::decode)
                .is_some_and(|h| h.magic == MAGIC_V2 && h.is_transactional())
        })
    });
    if transactional_records && !transactional_id {
        Some(error_code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    } else {
        None
    }
}

/// Validates and appends every partition: on the runtime thread where that only costs
/// memory work and page-cache writes ([`inline`]), the rest together in one blocking task
/// (rolls, flushes, compressed batches worth decompressing off the runtime, legacy message
/// sets).
async fn append_all(
    targets: Vec<Target>,
    fixed_error: Option<i16>,
    version: i16,
) -> Vec<(usize, PartitionProduceResponse)> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let (mut results, deferred) = inline::append_inline(targets, fixed_error, version, now_ms);
    if deferred.is_empty() {
        // Inline appends never flush: the records are written, the connection may go on.
        super::pipeline::pass();
        return results.into_iter().flatten().collect();
    }
    // Pipelined connections (issue 14): the next request starts once every partition is
    // appended, while this one still waits for its `flush.messages` syncs.
    let passed = super::pipeline::take();
    let finished = tokio::task::spawn_blocking(move || {
        let appended: Vec<_> = deferred
            .into_iter()
            .map(|(slot, work)| (slot, work.run_unflushed(version, now_ms)))
            .collect();
        if let Some(passed) = passed {
            passed.send();
        }
        inline::flush_appended(appended)
    })
    .await
    .unwrap_or_else(|err| {
        tracing::error!("produce task failed: {err}");
        Vec::new()
    });
    for (slot, result) in finished {
        results[slot] = Some(result);
    }
    results.into_iter().flatten().collect()
}

/// Validates one partition's records; the error response if they are refused (the rare
/// path: not boxed).
#[allow(clippy::result_large_err)]
fn validate(
    log: &PartitionLog,
    index: i32,
    records: Option<Bytes>,
    now_ms: i64,
    version: i16,
) -> Result<ValidatedRecords, PartitionProduceResponse> {
    let Some(records) = records else {
        return Err(failed(
            index,
            error_code::INVALID_RECORD,
            Some("records must not be null".into()),
        ));
    };
    let config = log.config();
    // Produce v0-v2 may carry magic 0/1 message sets, up-converted to v2 as Kafka 3.x did
    // (storage::validate_legacy_records); from v3 they are INVALID_RECORD
    // (ProduceRequest.validateRecords). v0-v2 with magic 2 batches take the v2 path, as
    // Kafka 3.9 (which checks nothing for those versions) stored them.
    let validated = if version < 3 && is_legacy_message_set(&records) {
        validate_legacy_records(records, &config, now_ms)
    } else {
        validate_records(records, &config, now_ms)
    };
    let validated = match validated {
        Ok(validated) => validated,
        Err(err) => {
            let mut response = failed(index, err.code, Some(err.message.clone()));
            response.record_errors = err
                .record_errors
                .into_iter()
                .map(|e| BatchIndexAndErrorMessage {
                    batch_index: e.batch_index,
                    batch_index_error_message: Some(e.message.into()),
                    ..Default::default()
                })
                .collect();
            response.log_start_offset = log.log_start_offset();
            return Err(response);
        }
    };
    // zstd arrived with Produce v7 (KIP-110): older requests may not carry it.
    if version < 7 && validated.uses_zstd() {
        let message = "zstd compression needs Produce v7 or later";
        return Err(failed(
            index,
            error_code::UNSUPPORTED_COMPRESSION_TYPE,
            Some(message.into()),
        ));
    }
    Ok(validated)
}

/// The response to an append's outcome.
fn answer(
    log: &PartitionLog,
    index: i32,
    result: Result<AppendInfo, StorageError>,
) -> PartitionProduceResponse {
    match result {
        Ok(info) => {
            if info.duplicate {
                tracing::debug!(
                    partition = %log.name(),
                    base_offset = info.base_offset,
                    "a retried idempotent batch was already appended"
                );
            }
            PartitionProduceResponse {
                index,
                error_code: error_code::NONE,
                base_offset: info.base_offset,
                log_append_time_ms: info.log_append_time,
                log_start_offset: info.log_start_offset,
                ..Default::default()
            }
        }
        Err(StorageError::Producer(err)) => {
            tracing::debug!(partition = %log.name(), "refused an idempotent batch: {err}");
            let mut response = failed(index, err.code(), Some(err.to_string()));
            response.log_start_offset = log.log_start_offset();
            response
        }
        Err(StorageError::Closed { .. }) => failed(index, error_code::NOT_LEADER_OR_FOLLOWER, None),
        Err(StorageError::Deleted { .. }) => {
            failed(index, error_code::UNKNOWN_TOPIC_OR_PARTITION, None)
        }
        Err(err) => {
            tracing::error!("appending to {}: {err}", log.name());
            failed(
                index,
                error_code::KAFKA_STORAGE_ERROR,
                Some(err.to_string()),
            )
        }
    }
}

fn failed(index: i32, code: i16, message: Option<String>) -> PartitionProduceResponse {
    PartitionProduceResponse {
        index,
        error_code: code,
        base_offset: -1,
        log_append_time_ms: -1,
        log_start_offset: -1,
        error_message: message.map(Into::into),
        ..Default::default()
    }
}
