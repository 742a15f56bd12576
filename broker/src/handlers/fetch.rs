//! Fetch: whole record batches from the partition logs, by topic name (before v13) or id.
//!
//! Limits follow Kafka (`KafkaApis.handleFetchRequest`, `ReplicaManager.readFromLog`):
//! `partition_max_bytes` per partition, and in all the request's `max_bytes` capped by the
//! broker's `fetch.max.bytes` (55 MiB by default), except that the first batch of the first
//! partition with data is returned whole even when it is larger (KIP-74), so a consumer
//! always progresses; `min_bytes` is capped by the same limit. (Fetch v0-2, which have no
//! `max_bytes` and a hard limit without that exception, are not served.) An empty
//! partition gets a zero-length `records`, never null. When less than `min_bytes` is
//! available the request waits up to `max_wait_ms` for any of its partitions to grow.
//!
//! A partition named more than once is answered once, as Kafka's `FetchRequest.fetchData`
//! collects the partitions into a map keyed by topic (name before v13, id from v13) and
//! partition: in the place of its first mention, with the offset and limit of its last.
//! The response groups consecutive partitions of one topic, as Kafka's
//! `FetchResponse.toMessage` does.
//!
//! Fetch sessions (KIP-227): full requests (epoch 0 or -1) are served; this broker does not
//! create sessions, answering session id 0, which tells clients to keep sending full
//! requests. An incremental request (any other epoch) gets FETCH_SESSION_ID_NOT_FOUND,
//! from which clients recover by starting over with a full request.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gregor_protocol::messages::fetch_request::FetchRequest;
use gregor_protocol::messages::fetch_response::{
    FetchResponse, FetchableTopicResponse, PartitionData,
};
use gregor_protocol::{Uuid, VersionRange};
use tokio::time::Instant;

use super::RequestContext;
use crate::storage::{PartitionLog, ReadError};
use gregor_protocol::error_code;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 4, max: 18 };

/// Longest wait honoured, whatever the client asks (Kafka clients ask for 500 ms).
const MAX_WAIT_CAP: Duration = Duration::from_secs(30);

/// `isolation_level` of READ_COMMITTED.
const READ_COMMITTED: i8 = 1;

/// One requested partition, resolved against the logs.
struct Wanted {
    /// The topic's name (as requested, when unknown) and id (nil before v13).
    topic: (String, Uuid),
    partition: i32,
    fetch_offset: i64,
    max_bytes: usize,
    log: Result<Arc<PartitionLog>, i16>,
}

/// Answers a Fetch request, waiting for data when asked to.
pub async fn handle(ctx: &RequestContext, version: i16, request: FetchRequest) -> FetchResponse {
    // Epoch 0 (open a session) and -1 (no session) are full requests, whatever the id
    // (Kafka drops the named session first). Anything else continues a session, and this
    // broker keeps none.
    if request.session_epoch != 0 && request.session_epoch != -1 {
        return session_error(error_code::FETCH_SESSION_ID_NOT_FOUND);
    }
    let wanted = resolve(ctx, version, &request);
    let read_committed = request.isolation_level == READ_COMMITTED;
    let max_bytes = request.max_bytes.min(ctx.broker.config.fetch_max_bytes);
    let min_bytes = request.min_bytes.min(max_bytes);
    let max_bytes = usize::try_from(max_bytes).unwrap_or(0);
    let min_bytes = usize::try_from(min_bytes).unwrap_or(0);
    let wait =
        Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0)).min(MAX_WAIT_CAP);
    let deadline = Instant::now() + wait;
    let wanted = Arc::new(wanted);

    loop {
        // Subscribe before reading, so growth during the read still wakes us.
        let mut watches: Vec<_> = wanted
            .iter()
            .filter_map(|w| w.log.as_ref().ok().map(|log| log.subscribe()))
            .collect();
        let reads = {
            let wanted = wanted.clone();
            tokio::task::spawn_blocking(move || read_all(&wanted, max_bytes)).await
        };
        let reads = match reads {
            Ok(reads) => reads,
            Err(err) => {
                tracing::error!("fetch read task failed: {err}");
                Vec::new()
            }
        };
        let total: usize = reads.iter().map(|r| r.records.len()).sum();
        let has_error = reads.iter().any(|r| r.error != error_code::NONE);
        if total >= min_bytes
            || has_error
            || wait.is_zero()
            || Instant::now() >= deadline
            || watches.is_empty()
        {
            return response(version, &wanted, reads, read_committed);
        }
        let changed =
            futures_util::future::select_all(watches.iter_mut().map(|w| Box::pin(w.changed())));
        tokio::select! {
            _ = changed => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

fn session_error(code: i16) -> FetchResponse {
    FetchResponse {
        error_code: code,
        session_id: 0,
        ..Default::default()
    }
}

/// Every requested partition with its log, each partition once (see the module docs).
fn resolve(ctx: &RequestContext, version: i16, request: &FetchRequest) -> Vec<Wanted> {
    let image = ctx.broker.image();
    let mut wanted: Vec<Wanted> = Vec::new();
    // Kafka's key: (topic id, topic name, partition); the id is nil before v13 and the
    // name is the one the id resolves to from v13.
    let mut seen: HashMap<(Uuid, String, i32), usize> = HashMap::new();
    for topic in &request.topics {
        let found = if version >= 13 {
            image
                .topic_by_id(&topic.topic_id)
                .map(|t| t.name.clone())
                .ok_or(error_code::UNKNOWN_TOPIC_ID)
        } else {
            let name = topic.topic.to_string();
            if image.topic(&name).is_some() {
                Ok(name)
            } else {
                Err(error_code::UNKNOWN_TOPIC_OR_PARTITION)
            }
        };
        let name = found.clone().unwrap_or_else(|_| topic.topic.to_string());
        let id = if version >= 13 {
            topic.topic_id
        } else {
            Uuid::nil()
        };
        for partition in &topic.partitions {
            let fetch_offset = partition.fetch_offset;
            let max_bytes = usize::try_from(partition.partition_max_bytes).unwrap_or(0);
            match seen.entry((id, name.clone(), partition.partition)) {
                Entry::Occupied(at) => {
                    let earlier = &mut wanted[*at.get()];
                    earlier.fetch_offset = fetch_offset;
                    earlier.max_bytes = max_bytes;
                    continue;
                }
                Entry::Vacant(slot) => {
                    slot.insert(wanted.len());
                }
            }
            let log = found.clone().and_then(|name| {
                ctx.broker
                    .logs
                    .get(&name, partition.partition)
                    .ok_or_else(|| {
                        // In the metadata but without a log: offline (Kafka's ReplicaManager).
                        let known = image
                            .topic(&name)
                            .is_some_and(|t| t.partitions.contains_key(&partition.partition));
                        if known {
                            error_code::KAFKA_STORAGE_ERROR
                        } else {
                            error_code::UNKNOWN_TOPIC_OR_PARTITION
                        }
                    })
            });
            wanted.push(Wanted {
                topic: (name.clone(), id),
                partition: partition.partition,
                fetch_offset,
                max_bytes,
                log,
            });
        }
    }
    wanted
}

/// What one partition read produced.
struct PartitionRead {
    error: i16,
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
    records: Bytes,
}

/// Reads every partition in request order within the byte budgets (blocking file I/O).
fn read_all(wanted: &[Wanted], max_bytes: usize) -> Vec<PartitionRead> {
    let mut budget = max_bytes;
    let mut have_data = false;
    wanted
        .iter()
        .map(|w| {
            let log = match &w.log {
                Ok(log) => log,
                Err(code) => return failed(*code, -1, -1, -1),
            };
            let limit = w.max_bytes.min(budget);
            match log.read(w.fetch_offset, limit, !have_data) {
                Ok(read) => {
                    budget = budget.saturating_sub(read.records.len());
                    have_data |= !read.records.is_empty();
                    PartitionRead {
                        error: error_code::NONE,
                        high_watermark: read.high_watermark,
                        last_stable_offset: read.last_stable_offset,
                        log_start_offset: read.log_start_offset,
                        records: read.records,
                    }
                }
                // Kafka reports unknown offsets (-1) with OFFSET_OUT_OF_RANGE.
                Err(ReadError::OffsetOutOfRange { .. }) => {
                    failed(error_code::OFFSET_OUT_OF_RANGE, -1, -1, -1)
                }
                Err(err) => {
                    tracing::error!("reading {:?} at {}: {err}", log.name(), w.fetch_offset);
                    failed(error_code::UNKNOWN_SERVER_ERROR, -1, -1, -1)
                }
            }
        })
        .collect()
}

fn failed(
    error: i16,
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
) -> PartitionRead {
    PartitionRead {
        error,
        high_watermark,
        last_stable_offset,
        log_start_offset,
        records: Bytes::new(),
    }
}

fn response(
    version: i16,
    wanted: &[Wanted],
    reads: Vec<PartitionRead>,
    read_committed: bool,
) -> FetchResponse {
    let mut responses: Vec<FetchableTopicResponse> = Vec::new();
    let mut previous: Option<&(String, Uuid)> = None;
    for (w, read) in wanted.iter().zip(reads) {
        if previous != Some(&w.topic) {
            let (name, id) = &w.topic;
            responses.push(FetchableTopicResponse {
                topic: if version < 13 {
                    name.as_str().into()
                } else {
                    Default::default()
                },
                topic_id: if version >= 13 { *id } else { Uuid::nil() },
                partitions: Vec::new(),
                ..Default::default()
            });
            previous = Some(&w.topic);
        }
        let topic = responses.last_mut().expect("pushed above");
        topic.partitions.push(PartitionData {
            partition_index: w.partition,
            error_code: read.error,
            high_watermark: read.high_watermark,
            last_stable_offset: read.last_stable_offset,
            log_start_offset: read.log_start_offset,
            // READ_COMMITTED readers get the (empty) list of aborted transactions.
            aborted_transactions: read_committed.then(Vec::new),
            preferred_read_replica: -1,
            records: Some(read.records),
            ..Default::default()
        });
    }
    FetchResponse {
        throttle_time_ms: 0,
        error_code: error_code::NONE,
        session_id: 0,
        responses,
        ..Default::default()
    }
}
