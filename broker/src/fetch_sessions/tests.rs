//! The session cache's eviction (privilege, size, age) and the contexts' rules, compared
//! with Kafka's FetchSessionTest.

use bytes::Bytes;
use gregor_protocol::Uuid;
use gregor_protocol::error_code;
use gregor_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};

use super::cache::{EVICTION_MS, PartitionMap, Shard};
use super::*;

fn meta(session_id: i32, epoch: i32) -> FetchMetadata {
    FetchMetadata { session_id, epoch }
}

fn partitions(n: usize) -> PartitionMap {
    let mut map = PartitionMap::default();
    for i in 0..n {
        map.insert(CachedPartition::from_request(&named("t", i as i32, 0)));
    }
    map
}

fn named(topic: &str, partition: i32, fetch_offset: i64) -> RequestedPartition {
    RequestedPartition {
        topic_id: Uuid::nil(),
        topic: Some(topic.to_string()),
        partition,
        fetch_offset,
        log_start_offset: -1,
        max_bytes: 1 << 20,
        current_leader_epoch: -1,
        last_fetched_epoch: -1,
    }
}

fn by_id(id: Uuid, topic: Option<&str>, partition: i32, fetch_offset: i64) -> RequestedPartition {
    RequestedPartition {
        topic_id: id,
        topic: topic.map(str::to_string),
        ..named("", partition, fetch_offset)
    }
}

/// A read result of partition `p` with the given high watermark and record bytes.
fn data(p: i32, high_watermark: i64, records: usize) -> PartitionData {
    PartitionData {
        partition_index: p,
        high_watermark,
        last_stable_offset: high_watermark,
        log_start_offset: 0,
        preferred_read_replica: -1,
        records: Some(Bytes::from(vec![0u8; records])),
        ..Default::default()
    }
}

/// Read results by name (before v13).
fn named_response(topic: &str, parts: Vec<PartitionData>) -> Vec<FetchableTopicResponse> {
    vec![FetchableTopicResponse {
        topic: topic.into(),
        partitions: parts,
        ..Default::default()
    }]
}

fn returned(response: &FetchResponse) -> Vec<i32> {
    response
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.partition_index))
        .collect()
}

fn read_order(context: &FetchContext<'_>) -> Vec<(i32, i64)> {
    context
        .partitions()
        .iter()
        .map(|p| (p.partition, p.fetch_offset))
        .collect()
}

#[test]
fn next_epoch_wraps_past_the_largest_to_one_and_final_stays_final() {
    assert_eq!(next_epoch(INITIAL_EPOCH), 1);
    assert_eq!(next_epoch(41), 42);
    assert_eq!(next_epoch(i32::MAX), 1);
    assert_eq!(next_epoch(FINAL_EPOCH), FINAL_EPOCH);
    assert_eq!(next_epoch(-7), FINAL_EPOCH);
}

#[test]
fn session_ids_are_non_zero_unique_and_in_their_shards_range() {
    let range = i32::MAX / 8;
    for shard_num in [0, 3, 7] {
        let mut shard = Shard::new(200, EVICTION_MS, range, shard_num);
        let mut ids = std::collections::HashSet::new();
        for _ in 0..200 {
            let id = shard.maybe_create(0, false, 1, false, || partitions(1));
            assert_ne!(id, INVALID_SESSION_ID);
            assert!(ids.insert(id), "id {id} twice");
            assert!(id >= (shard_num * range).max(1) && id < (shard_num + 1) * range);
        }
        assert_eq!(shard.len(), 200);
        assert_eq!(shard.total_partitions(), 200);
        // Full: a young session of the same size and privilege cannot evict any.
        assert_eq!(
            shard.maybe_create(1, false, 1, false, || partitions(1)),
            INVALID_SESSION_ID
        );
    }
}

#[test]
fn eviction_by_privilege_size_and_age() {
    let mut shard = Shard::new(2, EVICTION_MS, i32::MAX / 8, 0);
    let a = shard.maybe_create(0, false, 10, false, || partitions(10));
    let b = shard.maybe_create(0, false, 5, false, || partitions(5));
    assert!(a != 0 && b != 0 && a != b);

    // Young unprivileged sessions are not evictable by an unprivileged one, however large.
    assert_eq!(
        shard.maybe_create(10, false, 100, false, || partitions(100)),
        INVALID_SESSION_ID
    );
    // A privileged (follower) session evicts the smallest unprivileged one at once.
    let f = shard.maybe_create(10, true, 1, false, || partitions(1));
    assert_ne!(f, INVALID_SESSION_ID);
    assert!(shard.get(b).is_none(), "the smaller session is evicted");
    assert!(shard.get(a).is_some());
    // Young privileged sessions are not evictable even by privileged ones; the remaining
    // unprivileged one (10 partitions) is.
    let g = shard.maybe_create(20, true, 1, false, || partitions(1));
    assert_ne!(g, INVALID_SESSION_ID);
    assert!(shard.get(a).is_none());
    assert_eq!(
        shard.maybe_create(30, true, 50, false, || partitions(50)),
        INVALID_SESSION_ID,
        "two young privileged sessions: no room"
    );

    // Touched after the eviction time, the sessions become evictable by all, ranked by
    // privilege first, then size.
    let later = 30 + EVICTION_MS + 1;
    let (fs, gs) = (shard.get(f).unwrap(), shard.get(g).unwrap());
    shard.touch(&fs, later);
    shard.touch(&gs, later);
    assert_eq!(
        shard.maybe_create(later, false, 1000, false, || partitions(1000)),
        INVALID_SESSION_ID,
        "an unprivileged session never outranks a privileged one"
    );
    // A privileged session outranks an old privileged one only with more partitions.
    assert_eq!(
        shard.maybe_create(later, true, 1, false, || partitions(1)),
        INVALID_SESSION_ID,
        "same size: not evicted"
    );
    let h = shard.maybe_create(later, true, 2, false, || partitions(2));
    assert_ne!(h, INVALID_SESSION_ID);
    assert_eq!(shard.len(), 2);
    assert_eq!(shard.total_partitions(), 3);

    // A session unused for longer than the eviction time is evicted by anyone.
    let stale = later + EVICTION_MS + 1;
    let hs = shard.get(h).unwrap();
    shard.touch(&hs, stale);
    let i = shard.maybe_create(stale, false, 1, false, || partitions(1));
    assert_ne!(i, INVALID_SESSION_ID);
    assert!(shard.get(h).is_some(), "the recently used session stays");
    assert_eq!(shard.len(), 2);
}

#[test]
fn unprivileged_sessions_evict_smaller_old_unprivileged_ones() {
    let mut shard = Shard::new(2, EVICTION_MS, i32::MAX / 8, 0);
    let a = shard.maybe_create(0, false, 3, false, || partitions(3));
    let b = shard.maybe_create(0, false, 6, false, || partitions(6));
    let old = EVICTION_MS + 1;
    for id in [a, b] {
        let s = shard.get(id).unwrap();
        shard.touch(&s, old);
    }
    assert_eq!(
        shard.maybe_create(old, false, 3, false, || partitions(3)),
        INVALID_SESSION_ID,
        "not larger than the smallest"
    );
    let c = shard.maybe_create(old, false, 4, false, || partitions(4));
    assert_ne!(c, INVALID_SESSION_ID);
    assert!(shard.get(a).is_none() && shard.get(b).is_some());
}

#[test]
fn fewer_slots_than_shards_means_no_sessions() {
    for slots in [0, 7] {
        let manager = FetchManager::new(slots);
        let context = manager.new_context(
            12,
            meta(0, 0),
            false,
            vec![named("t", 0, 0)],
            vec![],
            |_| None,
        );
        let response = context.into_response(named_response("t", vec![data(0, 5, 0)]));
        assert_eq!(response.session_id, INVALID_SESSION_ID, "{slots} slots");
        assert_eq!(returned(&response), vec![0]);
    }
}

#[test]
fn incremental_context_adds_removes_and_omits_unchanged_partitions() {
    let manager = FetchManager::new(1000);
    let full = manager.new_context(
        12,
        meta(0, INITIAL_EPOCH),
        false,
        vec![named("t", 0, 0), named("t", 1, 0), named("t", 2, 0)],
        vec![],
        |_| None,
    );
    assert_eq!(full.session_error(), None);
    let response = full.into_response(named_response(
        "t",
        vec![data(0, 5, 0), data(1, 5, 0), data(2, 0, 0)],
    ));
    assert_eq!(response.error_code, error_code::NONE);
    assert_eq!(
        returned(&response),
        vec![0, 1, 2],
        "a full response is whole"
    );
    let id = response.session_id;
    assert_ne!(id, INVALID_SESSION_ID);
    assert_eq!(manager.session_count(), 1);

    // Epoch 1, nothing named: every cached partition is read, none changed.
    let context = manager.new_context(12, meta(id, 1), false, vec![], vec![], |_| None);
    assert_eq!(read_order(&context), vec![(0, 0), (1, 0), (2, 0)]);
    let response = context.into_response(named_response(
        "t",
        vec![data(0, 5, 0), data(1, 5, 0), data(2, 0, 0)],
    ));
    assert_eq!(
        (response.error_code, response.session_id),
        (error_code::NONE, id)
    );
    assert!(response.responses.is_empty(), "{:?}", response.responses);

    // Epoch 2: records on 1, high watermark of 2 moved; 1 moves to the end of the session.
    let context = manager.new_context(12, meta(id, 2), false, vec![], vec![], |_| None);
    let response = context.into_response(named_response(
        "t",
        vec![data(0, 5, 0), data(1, 9, 100), data(2, 3, 0)],
    ));
    assert_eq!(returned(&response), vec![1, 2]);

    // Epoch 3: the client moves 1 on; an error on 0 is always sent, and again once it is
    // gone (its high watermark was forgotten); a changed log start offset is sent.
    let context = manager.new_context(
        12,
        meta(id, 3),
        false,
        vec![named("t", 1, 9)],
        vec![],
        |_| None,
    );
    assert_eq!(read_order(&context), vec![(0, 0), (2, 0), (1, 9)]);
    let mut failed = data(0, -1, 0);
    failed.error_code = error_code::NOT_LEADER_OR_FOLLOWER;
    let mut moved_start = data(2, 3, 0);
    moved_start.log_start_offset = 2;
    let response = context.into_response(named_response(
        "t",
        vec![failed, moved_start, data(1, 9, 0)],
    ));
    assert_eq!(returned(&response), vec![0, 2]);
    let context = manager.new_context(12, meta(id, 4), false, vec![], vec![], |_| None);
    let mut moved_start = data(2, 3, 0);
    moved_start.log_start_offset = 2;
    let response = context.into_response(named_response(
        "t",
        vec![data(0, 5, 0), moved_start, data(1, 9, 0)],
    ));
    assert_eq!(returned(&response), vec![0], "recovered from the error");

    // Epoch 5: a preferred read replica or a diverging epoch is always sent.
    let context = manager.new_context(12, meta(id, 5), false, vec![], vec![], |_| None);
    let mut preferred = data(0, 5, 0);
    preferred.preferred_read_replica = 3;
    let mut moved_start = data(2, 3, 0);
    moved_start.log_start_offset = 2;
    moved_start.diverging_epoch.epoch = 4;
    moved_start.diverging_epoch.end_offset = 1;
    let response = context.into_response(named_response(
        "t",
        vec![preferred, moved_start, data(1, 9, 0)],
    ));
    assert_eq!(returned(&response), vec![0, 2]);

    // Epoch 6: forget 0 and 2, add 7 (new partitions are always sent: nothing cached yet).
    let context = manager.new_context(
        12,
        meta(id, 6),
        false,
        vec![named("t", 7, 0)],
        vec![
            PartitionKey::Name("t".into(), 0),
            PartitionKey::Name("t".into(), 2),
        ],
        |_| None,
    );
    assert_eq!(read_order(&context), vec![(1, 9), (7, 0)]);
    let response = context.into_response(named_response("t", vec![data(1, 9, 0), data(7, 0, 0)]));
    assert_eq!(returned(&response), vec![7]);

    // Session errors: a wrong epoch, an unknown id, names after ids.
    let stale = manager.new_context(12, meta(id, 6), false, vec![], vec![], |_| None);
    assert_eq!(
        stale.session_error(),
        Some(error_code::INVALID_FETCH_SESSION_EPOCH)
    );
    let response = stale.into_response(Vec::new());
    assert_eq!(
        (
            response.error_code,
            response.session_id,
            response.responses.len()
        ),
        (error_code::INVALID_FETCH_SESSION_EPOCH, 0, 0)
    );
    let unknown = manager.new_context(12, meta(id ^ 1, 7), false, vec![], vec![], |_| None);
    assert_eq!(
        unknown.session_error(),
        Some(error_code::FETCH_SESSION_ID_NOT_FOUND)
    );
    let ids = manager.new_context(13, meta(id, 7), false, vec![], vec![], |_| None);
    assert_eq!(
        ids.session_error(),
        Some(error_code::FETCH_SESSION_TOPIC_ID_ERROR)
    );
    for odd in [i32::MAX, -5] {
        let context = manager.new_context(12, meta(odd, 1), false, vec![], vec![], |_| None);
        assert_eq!(
            context.session_error(),
            Some(error_code::FETCH_SESSION_ID_NOT_FOUND)
        );
    }

    // Forgetting every partition closes the session: served sessionless.
    let context = manager.new_context(
        12,
        meta(id, 7),
        false,
        vec![],
        vec![
            PartitionKey::Name("t".into(), 1),
            PartitionKey::Name("t".into(), 7),
        ],
        |_| None,
    );
    assert!(context.partitions().is_empty());
    let response = context.into_response(Vec::new());
    assert_eq!(
        (response.error_code, response.session_id),
        (error_code::NONE, 0)
    );
    assert_eq!(manager.session_count(), 0);
}

#[test]
fn a_duplicate_request_finds_the_epoch_moved_on() {
    let manager = FetchManager::new(1000);
    let full = manager.new_context(
        12,
        meta(0, 0),
        false,
        vec![named("t", 0, 0)],
        vec![],
        |_| None,
    );
    let id = full
        .into_response(named_response("t", vec![data(0, 1, 0)]))
        .session_id;
    let first = manager.new_context(12, meta(id, 1), false, vec![], vec![], |_| None);
    // The same request again while the first is still reading (long poll).
    let second = manager.new_context(12, meta(id, 1), false, vec![], vec![], |_| None);
    assert_eq!(
        second.session_error(),
        Some(error_code::INVALID_FETCH_SESSION_EPOCH)
    );
    let next = manager.new_context(12, meta(id, 2), false, vec![], vec![], |_| None);
    // The first answers after the session moved on: INVALID_FETCH_SESSION_EPOCH, with its id.
    let response = first.into_response(named_response("t", vec![data(0, 2, 0)]));
    assert_eq!(
        (response.error_code, response.session_id),
        (error_code::INVALID_FETCH_SESSION_EPOCH, id)
    );
    assert!(response.responses.is_empty());
    let response = next.into_response(named_response("t", vec![data(0, 2, 0)]));
    assert_eq!(
        (response.error_code, returned(&response)),
        (error_code::NONE, vec![0])
    );
}

#[test]
fn full_requests_close_the_session_they_name() {
    let manager = FetchManager::new(1000);
    let full = manager.new_context(
        12,
        meta(0, 0),
        false,
        vec![named("t", 0, 0)],
        vec![],
        |_| None,
    );
    let id = full
        .into_response(named_response("t", vec![data(0, 1, 0)]))
        .session_id;
    // Epoch -1: closed, served without a session.
    let last = manager.new_context(
        12,
        meta(id, FINAL_EPOCH),
        false,
        vec![named("t", 0, 1)],
        vec![],
        |_| None,
    );
    let response = last.into_response(named_response("t", vec![data(0, 1, 0)]));
    assert_eq!((response.session_id, returned(&response)), (0, vec![0]));
    assert_eq!(manager.session_count(), 0);
    let gone = manager.new_context(12, meta(id, 1), false, vec![], vec![], |_| None);
    assert_eq!(
        gone.session_error(),
        Some(error_code::FETCH_SESSION_ID_NOT_FOUND)
    );
    // Epoch 0 naming a session: closed, and a new one made.
    let full = manager.new_context(
        12,
        meta(0, 0),
        false,
        vec![named("t", 0, 0)],
        vec![],
        |_| None,
    );
    let id = full
        .into_response(named_response("t", vec![data(0, 1, 0)]))
        .session_id;
    let again = manager.new_context(
        12,
        meta(id, 0),
        false,
        vec![named("t", 0, 0)],
        vec![],
        |_| None,
    );
    let new_id = again
        .into_response(named_response("t", vec![data(0, 1, 0)]))
        .session_id;
    assert!(new_id != 0 && new_id != id);
    assert_eq!(manager.session_count(), 1);
}

#[test]
fn sessions_by_topic_id_resolve_unknown_ids_later_and_refuse_names() {
    let manager = FetchManager::new(1000);
    let known = Uuid::from_u128(1);
    let unknown = Uuid::from_u128(2);
    let full = manager.new_context(
        13,
        meta(0, 0),
        false,
        vec![by_id(known, Some("a"), 0, 0), by_id(unknown, None, 0, 0)],
        vec![],
        |_| None,
    );
    let responses = vec![
        FetchableTopicResponse {
            topic_id: known,
            partitions: vec![data(0, 4, 0)],
            ..Default::default()
        },
        FetchableTopicResponse {
            topic_id: unknown,
            partitions: vec![PartitionData {
                error_code: error_code::UNKNOWN_TOPIC_ID,
                ..data(0, -1, 0)
            }],
            ..Default::default()
        },
    ];
    let id = full.into_response(responses).session_id;
    assert_ne!(id, 0);
    // The topic now exists: the cached partition gets its name.
    let context = manager.new_context(13, meta(id, 1), false, vec![], vec![], |u| {
        (*u == unknown).then(|| "b".to_string())
    });
    let names: Vec<Option<String>> = context
        .partitions()
        .iter()
        .map(|p| p.topic.clone())
        .collect();
    assert_eq!(names, vec![Some("a".to_string()), Some("b".to_string())]);
    drop(context);
    let by_name = manager.new_context(12, meta(id, 2), false, vec![], vec![], |_| None);
    assert_eq!(
        by_name.session_error(),
        Some(error_code::FETCH_SESSION_TOPIC_ID_ERROR)
    );
    // Forgetting by id.
    let context = manager.new_context(
        13,
        meta(id, 2),
        false,
        vec![],
        vec![PartitionKey::Id(known, 0)],
        |_| None,
    );
    assert_eq!(context.partitions().len(), 1);
    assert_eq!(context.partitions()[0].topic_id, unknown);
}
