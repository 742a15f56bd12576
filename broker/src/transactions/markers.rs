//! Writing a transaction's markers (Kafka's `TransactionMarkerChannelManager` and
//! `TransactionMarkerRequestCompletionHandler`), through [`MarkerWriter`]: the boundary
//! between the coordinator and the partition logs. The broker implements it; on a single
//! node the coordinator calls it directly, in a cluster for the partitions it leads (the
//! others through [`super::marker_sender`]), and the WriteTxnMarkers handler calls the
//! same entry point.

use super::state::TopicPartition;
use gregor_protocol::error_code::*;

/// Appends a transaction marker (a control batch) to a partition's log.
pub trait MarkerWriter: Send + Sync {
    /// Writes the COMMIT (`commit`) or ABORT marker of `producer_id` at `producer_epoch`
    /// to `topic`-`partition`, stamped with the coordinator epoch; the error code of the
    /// append otherwise. Blocking file I/O.
    fn write_marker(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        commit: bool,
    ) -> Result<(), i16>;
}

/// What to do after a partition's marker append failed with `code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkerFailure {
    /// Try the partition again later (the partition cannot take the write now).
    Retry,
    /// Stop writing this transaction's markers: this coordinator's epoch is stale or the
    /// producer was fenced by a newer marker (Kafka abandons the send).
    Abandon,
    /// Count the partition as done: it cannot hold transactions (an old message format),
    /// as Kafka drops it from the transaction.
    Drop,
}

/// Kafka's handling of a marker append's error.
pub fn classify(code: i16) -> MarkerFailure {
    match code {
        INVALID_PRODUCER_EPOCH | TRANSACTION_COORDINATOR_FENCED => MarkerFailure::Abandon,
        UNSUPPORTED_FOR_MESSAGE_FORMAT | UNSUPPORTED_VERSION => MarkerFailure::Drop,
        // UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS(_AFTER_APPEND),
        // REQUEST_TIMED_OUT, KAFKA_STORAGE_ERROR are retried by Kafka; the errors it treats
        // as impossible (CORRUPT_MESSAGE, MESSAGE_TOO_LARGE, ...) are retried here too, so
        // the transaction is never completed without its markers.
        _ => MarkerFailure::Retry,
    }
}

/// The outcome of one round of marker writes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MarkerRound {
    /// Partitions whose marker is written (or that were dropped).
    pub done: Vec<TopicPartition>,
    /// Partitions to try again, with their error.
    pub retry: Vec<(TopicPartition, i16)>,
    /// The error that made the coordinator abandon the send, if any.
    pub abandoned: Option<i16>,
}

/// Writes the marker to each of `partitions` in order (blocking).
pub fn write_round(
    writer: &dyn MarkerWriter,
    partitions: &[TopicPartition],
    producer_id: i64,
    producer_epoch: i16,
    coordinator_epoch: i32,
    commit: bool,
) -> MarkerRound {
    let mut round = MarkerRound::default();
    for tp in partitions {
        match writer.write_marker(
            &tp.0,
            tp.1,
            producer_id,
            producer_epoch,
            coordinator_epoch,
            commit,
        ) {
            Ok(()) => round.done.push(tp.clone()),
            Err(code) => match classify(code) {
                MarkerFailure::Retry => round.retry.push((tp.clone(), code)),
                MarkerFailure::Drop => {
                    tracing::warn!(
                        "{}-{}: dropped from the transaction of producer {producer_id}: error {code}",
                        tp.0,
                        tp.1
                    );
                    round.done.push(tp.clone());
                }
                MarkerFailure::Abandon => {
                    round.abandoned = Some(code);
                    return round;
                }
            },
        }
    }
    round
}
