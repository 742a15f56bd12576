//! The inline half of a Produce (issue 14): each partition is validated and appended on
//! the runtime thread when that is bounded memory work plus a page-cache write
//! ([`PartitionLog::try_append_inline`] decides for the append under the partition's
//! lock); the others are deferred to one blocking task. Before, every Produce paid a
//! `spawn_blocking` round trip (two thread hand-offs, about 3 context switches), which capped
//! one producer connection.
//!
//! Validation stays off the runtime when it may be long: legacy message sets (up-converted
//! into a new buffer), and compressed records over [`INLINE_COMPRESSED_BYTES`] (their
//! decompression costs far more than their size suggests); uncompressed records are
//! validated inline up to [`INLINE_UNCOMPRESSED_BYTES`] (a CRC and a walk over the record
//! headers). Once a partition is deferred, later data for the same log in the request is
//! deferred too, so one partition's appends keep the request's order.

use std::sync::Arc;

use bytes::Bytes;
use gregor_protocol::messages::produce_response::PartitionProduceResponse;
use gregor_protocol::records::{BatchHeader, Compression, LOG_OVERHEAD, MAGIC_V2};

use super::{Target, answer, failed, validate};
use crate::storage::{InlineAppend, PartitionLog, PendingAppend, TxnVerification};

/// Largest uncompressed records of one partition validated on the runtime thread.
pub const INLINE_UNCOMPRESSED_BYTES: usize = 1024 * 1024;
/// Largest compressed records of one partition validated on the runtime thread (Kafka's
/// producer fills batches up to `batch.size`, 16 KiB by default).
pub const INLINE_COMPRESSED_BYTES: usize = 64 * 1024;

/// A partition's append left for the blocking pool.
pub(super) enum Deferred {
    /// Validate and append.
    Whole {
        topic: usize,
        index: i32,
        log: Arc<PartitionLog>,
        records: Option<Bytes>,
        leader_epoch: i32,
        verification: TxnVerification,
    },
    /// Validated; the append may roll or flush.
    Finish {
        topic: usize,
        index: i32,
        log: Arc<PartitionLog>,
        pending: PendingAppend,
    },
}

impl Deferred {
    /// Runs the deferred work (blocking file I/O), without the `flush.messages` flush the
    /// append may make due: the log comes back with the response, for [`flush_appended`].
    pub(super) fn run_unflushed(self, version: i16, now_ms: i64) -> Unflushed {
        match self {
            Deferred::Whole {
                topic,
                index,
                log,
                records,
                leader_epoch,
                verification,
            } => {
                let response = match validate(&log, index, records, now_ms, version) {
                    Ok(validated) => answer(
                        &log,
                        index,
                        log.append_unflushed(validated, leader_epoch, now_ms, verification),
                    ),
                    Err(response) => response,
                };
                (topic, response, log)
            }
            Deferred::Finish {
                topic,
                index,
                log,
                pending,
            } => {
                let response = answer(&log, index, pending.finish_unflushed(&log));
                (topic, response, log)
            }
        }
    }
}

/// A deferred partition's (topic, response, log), before the log's flush.
pub(super) type Unflushed = (usize, PartitionProduceResponse, Arc<PartitionLog>);

/// An [`Unflushed`] with its slot in the request.
pub(super) type Appended = (usize, Unflushed);

/// Runs the `flush.messages` flushes the appends made due, once per log, and answers a
/// partition whose flush failed with `KAFKA_STORAGE_ERROR`, as a failed flush inside the
/// append is answered (blocking file I/O).
pub(super) fn flush_appended(
    appended: Vec<Appended>,
) -> Vec<(usize, (usize, PartitionProduceResponse))> {
    let mut flushed: Vec<(Arc<PartitionLog>, Option<String>)> = Vec::new();
    appended
        .into_iter()
        .map(|(slot, (topic, mut response, log))| {
            if response.error_code == gregor_protocol::error_code::NONE {
                let outcome = match flushed.iter().find(|(l, _)| Arc::ptr_eq(l, &log)) {
                    Some((_, outcome)) => outcome.clone(),
                    None => {
                        let outcome = log.flush_if_reached().err().map(|err| {
                            tracing::error!("flushing {}: {err}", log.name());
                            err.to_string()
                        });
                        flushed.push((log.clone(), outcome.clone()));
                        outcome
                    }
                };
                if let Some(message) = outcome {
                    response = failed(
                        response.index,
                        gregor_protocol::error_code::KAFKA_STORAGE_ERROR,
                        Some(message),
                    );
                }
            }
            (slot, (topic, response))
        })
        .collect()
}

/// The responses of the partitions done inline (`None` at the slots deferred) and the
/// deferred work with its slot.
pub(super) type InlinePass = (
    Vec<Option<(usize, PartitionProduceResponse)>>,
    Vec<(usize, Deferred)>,
);

/// Does every partition that can be done on the runtime thread, in request order.
pub(super) fn append_inline(
    targets: Vec<Target>,
    fixed_error: Option<i16>,
    version: i16,
    now_ms: i64,
) -> InlinePass {
    let mut results = Vec::with_capacity(targets.len());
    let mut deferred: Vec<(usize, Deferred)> = Vec::new();
    for (slot, target) in targets.into_iter().enumerate() {
        let (log, leader_epoch) = match (fixed_error, target.log) {
            (Some(code), _) | (None, Err(code)) => {
                results.push(Some((target.topic, failed(target.index, code, None))));
                continue;
            }
            (None, Ok(found)) => found,
        };
        let (topic, index) = (target.topic, target.index);
        let log_deferred = deferred.iter().any(|(_, d)| match d {
            Deferred::Whole { log: l, .. } | Deferred::Finish { log: l, .. } => {
                Arc::ptr_eq(l, &log)
            }
        });
        if log_deferred || !cheap_to_validate(target.records.as_deref(), version) {
            results.push(None);
            deferred.push((
                slot,
                Deferred::Whole {
                    topic,
                    index,
                    log,
                    records: target.records,
                    leader_epoch,
                    verification: target.verification,
                },
            ));
            continue;
        }
        let validated = match validate(&log, index, target.records, now_ms, version) {
            Ok(validated) => validated,
            Err(response) => {
                results.push(Some((topic, response)));
                continue;
            }
        };
        match log.try_append_inline(validated, leader_epoch, now_ms, target.verification) {
            InlineAppend::Done(result) => results.push(Some((topic, answer(&log, index, result)))),
            InlineAppend::WouldBlock(pending) => {
                results.push(None);
                deferred.push((
                    slot,
                    Deferred::Finish {
                        topic,
                        index,
                        log,
                        pending,
                    },
                ));
            }
        }
    }
    (results, deferred)
}

/// Whether validating `records` is short enough for the runtime thread: v2 batches only
/// (legacy message sets are up-converted into a new buffer), within
/// [`INLINE_UNCOMPRESSED_BYTES`], and within [`INLINE_COMPRESSED_BYTES`] if any batch is
/// compressed. Records that are no batches at all go to the validator inline, which refuses
/// them at once.
fn cheap_to_validate(records: Option<&[u8]>, version: i16) -> bool {
    let Some(records) = records else {
        return true;
    };
    if records.len() > INLINE_UNCOMPRESSED_BYTES {
        return false;
    }
    if records.len() <= INLINE_COMPRESSED_BYTES && version >= 3 {
        return true;
    }
    let mut at = 0;
    while at < records.len() {
        let Some(header) = BatchHeader::decode(&records[at..]) else {
            return version >= 3;
        };
        if header.magic != MAGIC_V2 {
            return version >= 3;
        }
        if header.compression() != Some(Compression::None) {
            return false;
        }
        let Ok(length) = usize::try_from(header.batch_length) else {
            return true;
        };
        at = at.saturating_add(LOG_OVERHEAD).saturating_add(length);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_protocol::records::{NewRecord, RecordBatchBuilder};

    fn batch(compression: Compression, values: usize, value_size: usize) -> Vec<u8> {
        let records: Vec<NewRecord> = (0..values)
            .map(|_| NewRecord::new(0, None, Some(Bytes::from(vec![7u8; value_size]))))
            .collect();
        RecordBatchBuilder::new()
            .compression(compression)
            .build(&records)
            .expect("a batch")
            .to_vec()
    }

    #[test]
    fn small_records_are_validated_inline() {
        assert!(cheap_to_validate(None, 9));
        assert!(cheap_to_validate(
            Some(&batch(Compression::None, 10, 100)),
            9
        ));
        assert!(cheap_to_validate(
            Some(&batch(Compression::Lz4, 10, 100)),
            9
        ));
        assert!(cheap_to_validate(Some(b"not a batch"), 9));
    }

    #[test]
    fn large_compressed_and_legacy_records_are_deferred() {
        let big = batch(Compression::None, 200, 1000);
        assert!(big.len() > INLINE_COMPRESSED_BYTES);
        assert!(cheap_to_validate(Some(&big), 9));
        let mut two = big.clone();
        two.extend_from_slice(&batch(Compression::Gzip, 10, 100));
        assert!(!cheap_to_validate(Some(&two), 9));
        // Produce v0-v2: magic 0/1 message sets are up-converted, off the runtime.
        let mut legacy = vec![0u8; 100];
        legacy[16] = 1;
        assert!(!cheap_to_validate(Some(&legacy), 2));
        let huge = vec![0u8; INLINE_UNCOMPRESSED_BYTES + 1];
        assert!(!cheap_to_validate(Some(&huge), 9));
    }
}
