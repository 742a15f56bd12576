//! Incremental fetch sessions (KIP-227), as Kafka's `FetchSession.scala`: `FetchManager`
//! makes a `FetchContext` for every Fetch request, which gives the partitions to read and
//! then turns the read results into the response.
//!
//! - A full request (epoch 0, INITIAL, or -1, FINAL) first closes the session it names.
//!   Epoch -1 is served sessionless (session id 0 back); epoch 0 is served whole and creates
//!   a session holding every partition of the response, if the cache has room or can evict
//!   a session for it; otherwise the response carries session id 0.
//! - An incremental request (any other epoch) names a session and its current epoch: its
//!   partitions are added to or update the session's, `forgotten_topics_data` removes some,
//!   and every partition of the session is read with its cached parameters. The response
//!   carries only the partitions that changed (records, high watermark, log start offset,
//!   preferred read replica, error, diverging epoch); the others are left out. A session
//!   left empty is closed and the request served sessionless.
//! - Errors (the whole response, no partitions): an unknown session id gives
//!   FETCH_SESSION_ID_NOT_FOUND, a wrong epoch INVALID_FETCH_SESSION_EPOCH, a session made
//!   with topic ids (v13+) continued by names (before v13) or the other way round
//!   FETCH_SESSION_TOPIC_ID_ERROR.
//!
//! The cache (`cache.rs`) is Kafka's sharded `FetchSessionCache`, sized by
//! `max.incremental.fetch.session.cache.slots`, with Kafka's eviction by privilege
//! (follower sessions), size and age.

pub mod cache;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::time::Instant;

use gregor_protocol::Uuid;
use gregor_protocol::error_code;
use gregor_protocol::messages::fetch_request::FetchRequest;
use gregor_protocol::messages::fetch_response::{
    FetchResponse, FetchableTopicResponse, PartitionData,
};

use cache::{Cache, CachedPartition, EVICTION_MS, PartitionMap, SharedSession, lock};

/// The session id of a request or response without a session.
pub const INVALID_SESSION_ID: i32 = 0;
/// The epoch of a full request that asks for a new session.
pub const INITIAL_EPOCH: i32 = 0;
/// The epoch of a full request that closes its session and wants none.
pub const FINAL_EPOCH: i32 = -1;

/// The epoch after `epoch` (Kafka's `FetchMetadata.nextEpoch`): FINAL stays FINAL, and the
/// largest epoch is followed by 1 (0 would mean a new session).
pub fn next_epoch(epoch: i32) -> i32 {
    if epoch < 0 {
        FINAL_EPOCH
    } else if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

/// The session fields of a request (Kafka's `FetchMetadata`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchMetadata {
    /// The session id (0: none).
    pub session_id: i32,
    /// The epoch: 0 and -1 for full requests, else the session's current epoch.
    pub epoch: i32,
}

impl FetchMetadata {
    /// The session fields of `request`.
    pub fn of(request: &FetchRequest) -> FetchMetadata {
        FetchMetadata {
            session_id: request.session_id,
            epoch: request.session_epoch,
        }
    }
}

/// What identifies a partition within a session: the topic id when the request carries
/// one (v13+), else the topic name (Kafka's `CachedPartition.equals`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PartitionKey {
    /// By topic id and partition.
    Id(Uuid, i32),
    /// By topic name and partition.
    Name(String, i32),
}

impl PartitionKey {
    /// The key of partition `partition` of the topic with `id` (nil before v13) and `name`.
    pub fn new(id: Uuid, name: &str, partition: i32) -> PartitionKey {
        if id.is_nil() {
            PartitionKey::Name(name.to_string(), partition)
        } else {
            PartitionKey::Id(id, partition)
        }
    }
}

/// One partition to read, with its request parameters (Kafka's `TopicIdPartition` with
/// `FetchRequest.PartitionData`).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestedPartition {
    /// The topic id (nil before v13).
    pub topic_id: Uuid,
    /// The topic name; `None` when the topic id is not known to the metadata.
    pub topic: Option<String>,
    /// The partition index.
    pub partition: i32,
    /// Where to read from.
    pub fetch_offset: i64,
    /// The fetcher's log start offset (followers; -1 for consumers).
    pub log_start_offset: i64,
    /// Most bytes for this partition.
    pub max_bytes: i32,
    /// The leader epoch the fetcher knows (-1 when absent).
    pub current_leader_epoch: i32,
    /// The epoch of the last fetched batch (-1 when absent).
    pub last_fetched_epoch: i32,
}

impl RequestedPartition {
    /// The session key of this partition.
    pub fn key(&self) -> PartitionKey {
        PartitionKey::new(
            self.topic_id,
            self.topic.as_deref().unwrap_or(""),
            self.partition,
        )
    }
}

/// The partitions of `request` in request order, each once, and the forgotten ones (Kafka's
/// `FetchRequest.fetchData` and `forgottenTopics`): by name before v13, by id from v13 with
/// names looked up through `topic_name` (`None` for an unknown id).
pub fn request_partitions(
    version: i16,
    request: &FetchRequest,
    topic_name: impl Fn(&Uuid) -> Option<String>,
) -> (Vec<RequestedPartition>, Vec<PartitionKey>) {
    let name_of = |name: &str, id: &Uuid| {
        if version >= 13 {
            topic_name(id)
        } else {
            Some(name.to_string())
        }
    };
    let mut fetch: Vec<RequestedPartition> = Vec::new();
    // A partition named twice is one entry of Kafka's map, keyed by (topic id, name,
    // partition): in the place of its first mention, with the values of its last.
    let mut seen: HashMap<(Uuid, Option<String>, i32), usize> = HashMap::new();
    for topic in &request.topics {
        let name = name_of(&topic.topic, &topic.topic_id);
        let id = if version >= 13 {
            topic.topic_id
        } else {
            Uuid::nil()
        };
        for p in &topic.partitions {
            let entry = RequestedPartition {
                topic_id: topic.topic_id,
                topic: name.clone(),
                partition: p.partition,
                fetch_offset: p.fetch_offset,
                log_start_offset: p.log_start_offset,
                max_bytes: p.partition_max_bytes,
                current_leader_epoch: p.current_leader_epoch,
                last_fetched_epoch: p.last_fetched_epoch,
            };
            match seen.entry((id, name.clone(), p.partition)) {
                std::collections::hash_map::Entry::Occupied(at) => fetch[*at.get()] = entry,
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(fetch.len());
                    fetch.push(entry);
                }
            }
        }
    }
    let mut forget = Vec::new();
    for topic in &request.forgotten_topics_data {
        let name = name_of(&topic.topic, &topic.topic_id).unwrap_or_default();
        for &partition in &topic.partitions {
            forget.push(PartitionKey::new(topic.topic_id, &name, partition));
        }
    }
    (fetch, forget)
}

/// Whether a request comes from a follower (Kafka's `FetchRequest.isFromFollower`): a
/// replica id of 0 or more, in `replica_state` from v15.
pub fn is_from_follower(version: i16, request: &FetchRequest) -> bool {
    let replica_id = if version >= 15 {
        request.replica_state.replica_id
    } else {
        request.replica_id
    };
    replica_id >= 0
}

/// Owns the session cache and makes the context of each request (Kafka's `FetchManager`).
#[derive(Debug)]
pub struct FetchManager {
    cache: Cache,
    clock: Instant,
}

impl FetchManager {
    /// A manager keeping up to `slots` sessions (`max.incremental.fetch.session.cache.slots`).
    pub fn new(slots: usize) -> FetchManager {
        FetchManager::with_eviction(slots, EVICTION_MS)
    }

    /// As [`FetchManager::new`] with another eviction time (tests).
    pub fn with_eviction(slots: usize, eviction_ms: u64) -> FetchManager {
        FetchManager {
            cache: Cache::new(slots, eviction_ms),
            clock: Instant::now(),
        }
    }

    /// Number of sessions cached.
    pub fn session_count(&self) -> usize {
        self.cache.len()
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The context of a request (Kafka's `FetchManager.newContext`): `fetch` and `forget`
    /// from [`request_partitions`], `topic_name` to resolve the ids of cached partitions
    /// whose topic was unknown when they were added.
    pub fn new_context(
        &self,
        version: i16,
        metadata: FetchMetadata,
        is_follower: bool,
        fetch: Vec<RequestedPartition>,
        forget: Vec<PartitionKey>,
        topic_name: impl Fn(&Uuid) -> Option<String>,
    ) -> FetchContext<'_> {
        let FetchMetadata { session_id, epoch } = metadata;
        if epoch == INITIAL_EPOCH || epoch == FINAL_EPOCH {
            // Any session a full request names is closed.
            if session_id != INVALID_SESSION_ID
                && let Some(mut shard) = self.cache.shard_of(session_id)
                && shard.remove(session_id).is_some()
            {
                tracing::debug!("fetch session {session_id}: closed by a full request");
            }
            let kind = if epoch == FINAL_EPOCH {
                Kind::Sessionless
            } else {
                Kind::Full {
                    manager: self,
                    uses_topic_ids: version >= 13,
                    privileged: is_follower,
                }
            };
            return FetchContext {
                kind,
                partitions: fetch,
            };
        }
        let error = |code: i16| FetchContext {
            kind: Kind::SessionError { error: code },
            partitions: Vec::new(),
        };
        let Some(mut shard) = self.cache.shard_of(session_id) else {
            tracing::debug!("fetch session {session_id}: not found");
            return error(error_code::FETCH_SESSION_ID_NOT_FOUND);
        };
        let Some(shared) = shard.get(session_id) else {
            tracing::debug!("fetch session {session_id}: not found");
            return error(error_code::FETCH_SESSION_ID_NOT_FOUND);
        };
        let mut session = lock(&shared);
        if session.epoch != epoch {
            tracing::debug!(
                "fetch session {session_id}: expected epoch {}, got {epoch}",
                session.epoch
            );
            return error(error_code::INVALID_FETCH_SESSION_EPOCH);
        }
        if session.uses_topic_ids != (version >= 13) {
            tracing::debug!(
                "fetch session {session_id}: made {} topic ids, continued at v{version}",
                if session.uses_topic_ids {
                    "with"
                } else {
                    "without"
                }
            );
            return error(error_code::FETCH_SESSION_TOPIC_ID_ERROR);
        }
        let (added, updated, removed) = update_session(&mut session.partitions, &fetch, &forget);
        if session.partitions.is_empty() {
            tracing::debug!(
                "fetch session {session_id}: closed, no partitions left after removing {removed}"
            );
            drop(session);
            shard.remove(session_id);
            return FetchContext {
                kind: Kind::Sessionless,
                partitions: fetch,
            };
        }
        // The epoch moves on before either lock is let go, so a duplicate of this request
        // finds the new epoch.
        session.epoch = next_epoch(session.epoch);
        tracing::debug!(
            "fetch session {session_id}: epoch {epoch}, added {added}, updated {updated}, removed {removed}"
        );
        let uses_topic_ids = session.uses_topic_ids;
        let partitions = session
            .partitions
            .iter_mut()
            .map(|cached| {
                if uses_topic_ids && cached.topic.is_none() {
                    cached.topic = topic_name(&cached.topic_id);
                }
                cached.request()
            })
            .collect();
        drop(session);
        shard.touch(&shared, self.now_ms());
        drop(shard);
        FetchContext {
            kind: Kind::Incremental {
                session: shared,
                request_epoch: epoch,
            },
            partitions,
        }
    }
}

/// Applies an incremental request to a session's partitions (Kafka's `FetchSession.update`):
/// returns how many were added, updated and removed.
fn update_session(
    partitions: &mut PartitionMap,
    fetch: &[RequestedPartition],
    forget: &[PartitionKey],
) -> (usize, usize, usize) {
    let (mut added, mut updated, mut removed) = (0, 0, 0);
    for requested in fetch {
        match partitions.get_mut(&requested.key()) {
            Some(cached) => {
                cached.update_request(requested);
                updated += 1;
            }
            None => {
                partitions.insert(CachedPartition::from_request(requested));
                added += 1;
            }
        }
    }
    for key in forget {
        if partitions.remove(key) {
            removed += 1;
        }
    }
    (added, updated, removed)
}

/// Decides whether a cached partition goes into an incremental response, and records what
/// the response tells the client (Kafka's `CachedPartition.maybeUpdateResponseData`). The
/// last stable offset is not compared, as in Kafka: it moves only with the high watermark
/// or with records.
pub fn must_respond(cached: &mut CachedPartition, data: &PartitionData) -> bool {
    let mut respond = data.records.as_ref().is_some_and(|r| !r.is_empty());
    if cached.high_watermark != data.high_watermark {
        respond = true;
        cached.high_watermark = data.high_watermark;
    }
    if cached.local_log_start_offset != data.log_start_offset {
        respond = true;
        cached.local_log_start_offset = data.log_start_offset;
    }
    if data.preferred_read_replica != -1 {
        respond = true;
    }
    if data.error_code != error_code::NONE {
        // Sent again once the error is gone, whatever the offsets are then.
        cached.high_watermark = -1;
        respond = true;
    }
    if data.diverging_epoch.epoch >= 0 {
        respond = true;
    }
    respond
}

/// The session state of one request: which partitions to read, and how to answer.
#[derive(Debug)]
pub struct FetchContext<'a> {
    kind: Kind<'a>,
    partitions: Vec<RequestedPartition>,
}

#[derive(Debug)]
enum Kind<'a> {
    /// A session error: no partitions, the error for the whole response.
    SessionError { error: i16 },
    /// Epoch -1, or an incremental request that emptied its session: served as is.
    Sessionless,
    /// Epoch 0: served whole; a session is made from the response.
    Full {
        manager: &'a FetchManager,
        uses_topic_ids: bool,
        privileged: bool,
    },
    /// A session continued.
    Incremental {
        session: SharedSession,
        request_epoch: i32,
    },
}

impl FetchContext<'_> {
    /// The partitions to read, in order: the request's, or every partition of the session.
    pub fn partitions(&self) -> &[RequestedPartition] {
        &self.partitions
    }

    /// The session error that answers the request without reading anything, if any.
    pub fn session_error(&self) -> Option<i16> {
        match self.kind {
            Kind::SessionError { error } => Some(error),
            _ => None,
        }
    }

    /// The response from the read results `responses` (one entry per topic, partitions in
    /// the order of [`FetchContext::partitions`]), recording them in the session (Kafka's
    /// `updateAndGenerateResponseData`). Topics are identified as the version requires:
    /// by id from v13, by name before.
    pub fn into_response(self, responses: Vec<FetchableTopicResponse>) -> FetchResponse {
        let (error, session_id, responses) = match self.kind {
            Kind::SessionError { error } => {
                tracing::debug!("fetch session error {error}");
                (error, INVALID_SESSION_ID, Vec::new())
            }
            Kind::Sessionless => (error_code::NONE, INVALID_SESSION_ID, responses),
            Kind::Full {
                manager,
                uses_topic_ids,
                privileged,
            } => {
                let size: usize = responses.iter().map(|t| t.partitions.len()).sum();
                let requested = &self.partitions;
                let id = manager.cache.next_shard().maybe_create(
                    manager.now_ms(),
                    privileged,
                    size,
                    uses_topic_ids,
                    || new_session_partitions(requested, &responses),
                );
                tracing::debug!("fetch session {id}: full, {size} partitions");
                (error_code::NONE, id, responses)
            }
            Kind::Incremental {
                session,
                request_epoch,
            } => incremental_response(&session, request_epoch, responses),
        };
        FetchResponse {
            throttle_time_ms: 0,
            error_code: error,
            session_id,
            responses,
            ..Default::default()
        }
    }
}

/// The partitions of a session made by a full request: every partition of the response,
/// with the parameters of the request and the offsets of the response.
fn new_session_partitions(
    requested: &[RequestedPartition],
    responses: &[FetchableTopicResponse],
) -> PartitionMap {
    let by_key: HashMap<PartitionKey, &RequestedPartition> =
        requested.iter().map(|p| (p.key(), p)).collect();
    let mut map = PartitionMap::default();
    for topic in responses {
        for data in &topic.partitions {
            let key = PartitionKey::new(topic.topic_id, &topic.topic, data.partition_index);
            if let Some(request) = by_key.get(&key) {
                let mut cached = CachedPartition::from_request(request);
                cached.high_watermark = data.high_watermark;
                cached.local_log_start_offset = data.log_start_offset;
                map.insert(cached);
            }
        }
    }
    map
}

/// Filters the read results of an incremental request down to what changed and records
/// them; INVALID_FETCH_SESSION_EPOCH if another request moved the session on meanwhile.
fn incremental_response(
    session: &SharedSession,
    request_epoch: i32,
    responses: Vec<FetchableTopicResponse>,
) -> (i16, i32, Vec<FetchableTopicResponse>) {
    let mut session = lock(session);
    let expected = next_epoch(request_epoch);
    if session.epoch != expected {
        tracing::info!(
            "fetch session {}: expected epoch {expected}, found {} (a duplicate request?)",
            session.id,
            session.epoch
        );
        return (
            error_code::INVALID_FETCH_SESSION_EPOCH,
            session.id,
            Vec::new(),
        );
    }
    let mut kept: Vec<FetchableTopicResponse> = Vec::new();
    let mut count = 0;
    for mut topic in responses {
        let partitions = std::mem::take(&mut topic.partitions);
        for data in partitions {
            let key = PartitionKey::new(topic.topic_id, &topic.topic, data.partition_index);
            let respond = match session.partitions.get_mut(&key) {
                Some(cached) => {
                    let respond = must_respond(cached, &data);
                    if respond && data.records.as_ref().is_some_and(|r| !r.is_empty()) {
                        session.partitions.move_to_end(&key);
                    }
                    respond
                }
                // Not in the session (cannot happen: the partitions read are the session's).
                None => true,
            };
            if respond {
                topic.partitions.push(data);
            }
        }
        if topic.partitions.is_empty() {
            continue;
        }
        count += topic.partitions.len();
        // Consecutive partitions of one topic share one entry, as Kafka writes them.
        match kept.last_mut() {
            Some(last) if last.topic == topic.topic && last.topic_id == topic.topic_id => {
                last.partitions.append(&mut topic.partitions);
            }
            _ => kept.push(topic),
        }
    }
    tracing::debug!(
        "fetch session {}: incremental, {count} of {} partitions",
        session.id,
        session.partitions.len()
    );
    (error_code::NONE, session.id, kept)
}
