//! The session cache: Kafka's `FetchSessionCache` of `FetchSessionCacheShard`s, each session
//! a `FetchSession` holding its `CachedPartition`s.
//!
//! Lock order, as in Kafka: a shard's lock may be held while a session's lock is taken,
//! never the other way round. Neither is held across an `.await`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use gregor_protocol::Uuid;

use super::{INVALID_SESSION_ID, PartitionKey, RequestedPartition};

/// Number of shards the cache is split into (Kafka's `NumFetchSessionCacheShards`).
pub const NUM_SHARDS: usize = 8;

/// How long a session must go unused before any new session may evict it, and how old a
/// session must be before it is evictable at all (Kafka's
/// `MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS`, two minutes).
pub const EVICTION_MS: u64 = 120_000;

/// One partition of a session: the request parameters last sent for it and what the last
/// response told the client (Kafka's `CachedPartition`).
#[derive(Debug, Clone)]
pub struct CachedPartition {
    /// The topic name; `None` while a topic id does not resolve (Kafka keeps it null and
    /// retries the lookup on every fetch).
    pub topic: Option<String>,
    /// The topic id (nil in sessions of requests before v13).
    pub topic_id: Uuid,
    /// The partition index.
    pub partition: i32,
    /// `partition_max_bytes` of the last request naming the partition.
    pub max_bytes: i32,
    /// The fetch offset of the last request naming the partition.
    pub fetch_offset: i64,
    /// The high watermark last sent (-1 after an error, so the partition is sent again
    /// once the error is gone).
    pub high_watermark: i64,
    /// `current_leader_epoch` of the last request (-1 when absent).
    pub leader_epoch: i32,
    /// The fetcher's own log start offset (followers), from the last request.
    pub fetcher_log_start_offset: i64,
    /// This broker's log start offset last sent.
    pub local_log_start_offset: i64,
    /// `last_fetched_epoch` of the last request (-1 when absent).
    pub last_fetched_epoch: i32,
}

impl CachedPartition {
    /// A partition first named by `request`, before any response.
    pub fn from_request(request: &RequestedPartition) -> CachedPartition {
        CachedPartition {
            topic: request.topic.clone(),
            topic_id: request.topic_id,
            partition: request.partition,
            max_bytes: request.max_bytes,
            fetch_offset: request.fetch_offset,
            high_watermark: -1,
            leader_epoch: request.current_leader_epoch,
            fetcher_log_start_offset: request.log_start_offset,
            local_log_start_offset: -1,
            last_fetched_epoch: request.last_fetched_epoch,
        }
    }

    /// The session key: the topic id when there is one, else the name.
    pub fn key(&self) -> PartitionKey {
        PartitionKey::new(
            self.topic_id,
            self.topic.as_deref().unwrap_or(""),
            self.partition,
        )
    }

    /// Takes the request parameters of a later request (Kafka's `updateRequestParams`).
    pub fn update_request(&mut self, request: &RequestedPartition) {
        self.max_bytes = request.max_bytes;
        self.fetch_offset = request.fetch_offset;
        self.fetcher_log_start_offset = request.log_start_offset;
        self.leader_epoch = request.current_leader_epoch;
        self.last_fetched_epoch = request.last_fetched_epoch;
    }

    /// The partition as the read path wants it, with the cached parameters.
    pub fn request(&self) -> RequestedPartition {
        RequestedPartition {
            topic_id: self.topic_id,
            topic: self.topic.clone(),
            partition: self.partition,
            fetch_offset: self.fetch_offset,
            log_start_offset: self.fetcher_log_start_offset,
            max_bytes: self.max_bytes,
            current_leader_epoch: self.leader_epoch,
            last_fetched_epoch: self.last_fetched_epoch,
        }
    }
}

/// The partitions of a session in their order: insertion order, except that a partition
/// that returned records moves to the end (Kafka's `ImplicitLinkedHashCollection` with
/// remove + add), so the next fetch reads the others first within its byte budget.
#[derive(Debug, Default)]
pub struct PartitionMap {
    index: HashMap<PartitionKey, u64>,
    order: BTreeMap<u64, CachedPartition>,
    next: u64,
}

impl PartitionMap {
    /// Number of partitions.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The partition with `key`.
    pub fn get_mut(&mut self, key: &PartitionKey) -> Option<&mut CachedPartition> {
        let seq = self.index.get(key)?;
        self.order.get_mut(seq)
    }

    /// Adds `partition` at the end, replacing one with the same key.
    pub fn insert(&mut self, partition: CachedPartition) {
        let key = partition.key();
        if let Some(old) = self.index.remove(&key) {
            self.order.remove(&old);
        }
        let seq = self.next;
        self.next += 1;
        self.index.insert(key, seq);
        self.order.insert(seq, partition);
    }

    /// Removes the partition with `key`; true if there was one.
    pub fn remove(&mut self, key: &PartitionKey) -> bool {
        match self.index.remove(key) {
            Some(seq) => self.order.remove(&seq).is_some(),
            None => false,
        }
    }

    /// Moves the partition with `key` to the end.
    pub fn move_to_end(&mut self, key: &PartitionKey) {
        if let Some(seq) = self.index.get(key).copied()
            && let Some(partition) = self.order.remove(&seq)
        {
            self.insert(partition);
        }
    }

    /// The partitions in order.
    pub fn iter(&self) -> impl Iterator<Item = &CachedPartition> {
        self.order.values()
    }

    /// The partitions in order, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut CachedPartition> {
        self.order.values_mut()
    }
}

/// An incremental fetch session (Kafka's `FetchSession`).
#[derive(Debug)]
pub struct Session {
    /// The session id (never 0).
    pub id: i32,
    /// Created by a follower: only other privileged sessions may evict it while it is young.
    pub privileged: bool,
    /// Created by a request of v13 or later: partitions are keyed by topic id, and only
    /// such requests may continue it.
    pub uses_topic_ids: bool,
    /// When it was created (ms on the cache's clock).
    pub creation_ms: u64,
    /// When it was last used; changed only by [`Shard::touch`].
    pub last_used_ms: u64,
    /// The epoch the next request must carry.
    pub epoch: i32,
    /// The size the shard last recorded for it (its place in the evictable sets), `None`
    /// while it is not in a shard.
    pub cached_size: Option<usize>,
    /// Its partitions.
    pub partitions: PartitionMap,
}

impl Session {
    fn last_used_key(&self) -> (u64, i32) {
        (self.last_used_ms, self.id)
    }

    fn evictable_key(&self) -> EvictableKey {
        EvictableKey {
            privileged: self.privileged,
            size: self.cached_size.unwrap_or(0),
            id: self.id,
        }
    }
}

/// A session handle shared by the cache and the fetches using it.
pub type SharedSession = Arc<Mutex<Session>>;

/// Locks a session, recovering from a poisoned lock (the data is plain bookkeeping).
pub fn lock(session: &SharedSession) -> MutexGuard<'_, Session> {
    session.lock().unwrap_or_else(|e| e.into_inner())
}

/// Order of eviction candidates (Kafka's `EvictableKey`): unprivileged before privileged,
/// then smaller sessions first, then by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EvictableKey {
    /// Whether the session is privileged.
    pub privileged: bool,
    /// Its number of partitions.
    pub size: usize,
    /// Its id (0 for a proposed session).
    pub id: i32,
}

/// One shard of the cache (Kafka's `FetchSessionCacheShard`): the sessions whose ids fall
/// in its range, with its own limit and eviction.
#[derive(Debug)]
pub struct Shard {
    max_entries: usize,
    eviction_ms: u64,
    session_id_range: i32,
    shard_num: i32,
    num_partitions: usize,
    sessions: HashMap<i32, SharedSession>,
    /// Sessions by (last used, id): the first is the stalest.
    last_used: BTreeSet<(u64, i32)>,
    /// Sessions any new session may evict (older than the eviction time).
    evictable_by_all: BTreeSet<EvictableKey>,
    /// Sessions a new privileged session may evict (unprivileged ones, and old ones).
    evictable_by_privileged: BTreeSet<EvictableKey>,
}

impl Shard {
    /// A shard holding at most `max_entries` sessions with ids in
    /// `max(1, shard_num * range) .. (shard_num + 1) * range`.
    pub fn new(
        max_entries: usize,
        eviction_ms: u64,
        session_id_range: i32,
        shard_num: i32,
    ) -> Shard {
        Shard {
            max_entries,
            eviction_ms,
            session_id_range,
            shard_num,
            num_partitions: 0,
            sessions: HashMap::new(),
            last_used: BTreeSet::new(),
            evictable_by_all: BTreeSet::new(),
            evictable_by_privileged: BTreeSet::new(),
        }
    }

    /// The session with `id`.
    pub fn get(&self, id: i32) -> Option<SharedSession> {
        self.sessions.get(&id).cloned()
    }

    /// Number of sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Partitions cached over all sessions (as last recorded by [`Shard::touch`]).
    pub fn total_partitions(&self) -> usize {
        self.num_partitions
    }

    /// A random session id in this shard's range, not in use and not 0.
    fn new_session_id(&self) -> i32 {
        let low = (self.shard_num.saturating_mul(self.session_id_range)).max(1);
        let high = self
            .shard_num
            .saturating_add(1)
            .saturating_mul(self.session_id_range);
        let span = u64::try_from(high.saturating_sub(low)).unwrap_or(0).max(1);
        loop {
            let random = (Uuid::new_v4().as_u128() as u64) % span;
            let id = low.saturating_add(i32::try_from(random).unwrap_or(0));
            if id != INVALID_SESSION_ID && !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }

    /// Creates a session if there is room or one can be evicted for it (Kafka's
    /// `maybeCreateSession`); returns its id, or [`INVALID_SESSION_ID`].
    pub fn maybe_create(
        &mut self,
        now: u64,
        privileged: bool,
        size: usize,
        uses_topic_ids: bool,
        partitions: impl FnOnce() -> PartitionMap,
    ) -> i32 {
        let proposed = EvictableKey {
            privileged,
            size,
            id: 0,
        };
        if self.sessions.len() < self.max_entries || self.try_evict(privileged, proposed, now) {
            let session = Session {
                id: self.new_session_id(),
                privileged,
                uses_topic_ids,
                creation_ms: now,
                last_used_ms: now,
                epoch: super::next_epoch(super::INITIAL_EPOCH),
                cached_size: None,
                partitions: partitions(),
            };
            let id = session.id;
            tracing::debug!(
                "created fetch session {id} (privileged {privileged}, {} partitions, topic ids {uses_topic_ids})",
                session.partitions.len()
            );
            let session = Arc::new(Mutex::new(session));
            self.sessions.insert(id, session.clone());
            self.touch(&session, now);
            id
        } else {
            tracing::debug!(
                "no fetch session created (privileged {privileged}, {size} partitions)"
            );
            INVALID_SESSION_ID
        }
    }

    /// Evicts one session for a proposed one (Kafka's `tryEvict`): the stalest session if it
    /// has gone unused longer than the eviction time; otherwise the first evictable one (of
    /// the set open to the proposed session's privilege) if the proposed session ranks at
    /// least as high (privilege, then size). True if one was evicted.
    fn try_evict(&mut self, privileged: bool, proposed: EvictableKey, now: u64) -> bool {
        let Some(&(last_used_ms, stalest)) = self.last_used.first() else {
            return false;
        };
        if now.saturating_sub(last_used_ms) > self.eviction_ms {
            tracing::debug!("evicting stale fetch session {stalest}");
            self.remove(stalest);
            return true;
        }
        let set = if privileged {
            &self.evictable_by_privileged
        } else {
            &self.evictable_by_all
        };
        match set.first() {
            Some(first) if proposed >= *first => {
                let id = first.id;
                tracing::debug!("evicting fetch session {id} for {proposed:?}");
                self.remove(id);
                true
            }
            _ => false,
        }
    }

    /// Removes the session with `id`; returns it if it was there.
    pub fn remove(&mut self, id: i32) -> Option<SharedSession> {
        let session = self.sessions.remove(&id)?;
        let mut s = lock(&session);
        self.last_used.remove(&s.last_used_key());
        let key = s.evictable_key();
        self.evictable_by_all.remove(&key);
        self.evictable_by_privileged.remove(&key);
        if let Some(size) = s.cached_size.take() {
            self.num_partitions = self.num_partitions.saturating_sub(size);
        }
        drop(s);
        Some(session)
    }

    /// Records a use of `session` at `now`: its place among the stalest, and its size and
    /// evictability (Kafka's `touch`). A session becomes evictable by unprivileged sessions
    /// only once it is older than the eviction time; an unprivileged one is evictable by
    /// privileged sessions at once.
    pub fn touch(&mut self, session: &SharedSession, now: u64) {
        let mut s = lock(session);
        self.last_used.remove(&s.last_used_key());
        s.last_used_ms = now;
        self.last_used.insert(s.last_used_key());
        if let Some(old_size) = s.cached_size {
            let old = s.evictable_key();
            self.evictable_by_privileged.remove(&old);
            self.evictable_by_all.remove(&old);
            self.num_partitions = self.num_partitions.saturating_sub(old_size);
        }
        s.cached_size = Some(s.partitions.len());
        let key = s.evictable_key();
        let old_enough = now.saturating_sub(s.creation_ms) > self.eviction_ms;
        if !s.privileged || old_enough {
            self.evictable_by_privileged.insert(key);
        }
        if old_enough {
            self.evictable_by_all.insert(key);
        }
        self.num_partitions += s.partitions.len();
    }
}

/// All shards (Kafka's `FetchSessionCache`): new sessions go to the shards in turn; a
/// session id names its shard.
#[derive(Debug)]
pub struct Cache {
    shards: Vec<Mutex<Shard>>,
    session_id_range: i32,
    next_shard: AtomicUsize,
}

impl Cache {
    /// A cache of `slots` sessions over [`NUM_SHARDS`] shards, `slots / NUM_SHARDS` each
    /// (Kafka divides the same way, so fewer than 8 slots means no sessions at all).
    pub fn new(slots: usize, eviction_ms: u64) -> Cache {
        let session_id_range = i32::MAX / NUM_SHARDS as i32;
        let shards = (0..NUM_SHARDS as i32)
            .map(|n| {
                Mutex::new(Shard::new(
                    slots / NUM_SHARDS,
                    eviction_ms,
                    session_id_range,
                    n,
                ))
            })
            .collect();
        Cache {
            shards,
            session_id_range,
            next_shard: AtomicUsize::new(0),
        }
    }

    /// The shard that owns session `id`, `None` for an id no shard could have made (Kafka
    /// would index out of its shard list there).
    pub fn shard_of(&self, id: i32) -> Option<MutexGuard<'_, Shard>> {
        let index = usize::try_from(id / self.session_id_range).ok()?;
        self.shards
            .get(index)
            .map(|shard| shard.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The next shard in turn, for a new session.
    pub fn next_shard(&self) -> MutexGuard<'_, Shard> {
        let n = self.next_shard.fetch_add(1, Ordering::Relaxed) % self.shards.len();
        self.shards[n].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of sessions over all shards.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    /// True when there are no sessions.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
