//! Heartbeat state machine tests of consumer groups (no I/O).

use std::collections::{BTreeMap, BTreeSet};

use gregor_protocol::Uuid;
use gregor_protocol::error_code::*;

use super::*;

fn settings() -> ConsumerSettings {
    ConsumerSettings {
        session_timeout_ms: 45_000,
        heartbeat_interval_ms: 5_000,
        max_size: 3,
        assignors: vec!["uniform".into(), "range".into()],
        migration: migration::MigrationPolicy::Bidirectional,
        classic_max_size: 10,
    }
}

fn topic_id() -> Uuid {
    Uuid::from_bytes([9; 16])
}

fn topics(partitions: i32) -> impl Fn(&str) -> Option<TopicMeta> {
    move |name| (name == "t").then_some(TopicMeta::without_racks(name, topic_id(), partitions))
}

fn join(member: &str) -> HeartbeatRequest {
    HeartbeatRequest {
        member_id: member.into(),
        member_epoch: 0,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(vec!["t".into()]),
        owned: Some(Assignment::new()),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        ..Default::default()
    }
}

fn beat(member: &str, epoch: i32, owned: &[i32]) -> HeartbeatRequest {
    HeartbeatRequest {
        member_id: member.into(),
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        owned: Some(owned_of(owned)),
        ..Default::default()
    }
}

fn owned_of(ps: &[i32]) -> Assignment {
    if ps.is_empty() {
        Assignment::new()
    } else {
        BTreeMap::from([(topic_id(), ps.iter().copied().collect::<BTreeSet<i32>>())])
    }
}

fn parts(outcome: &HeartbeatOutcome) -> Vec<i32> {
    outcome
        .assignment
        .as_ref()
        .and_then(|a| a.get(&topic_id()))
        .map(|s| s.iter().copied().collect())
        .unwrap_or_default()
}

fn run(g: &mut ConsumerGroup, r: HeartbeatRequest, n: i32) -> Result<HeartbeatOutcome, OpError> {
    let mut changes = Changes::default();
    g.heartbeat(&settings(), r, &topics(n), 0, &mut changes)
}

#[test]
fn first_member_gets_every_partition_at_epoch_one() {
    let mut g = ConsumerGroup::new("g");
    let out = run(&mut g, join("a"), 3).unwrap();
    assert_eq!(out.member_epoch, 1);
    assert_eq!(parts(&out), vec![0, 1, 2]);
    assert_eq!(state_name(&g), "Stable");
}

#[test]
fn a_second_member_waits_for_the_first_to_revoke() {
    let mut g = ConsumerGroup::new("g");
    run(&mut g, join("a"), 4).unwrap();
    let b = run(&mut g, join("b"), 4).unwrap();
    assert_eq!(b.member_epoch, 2);
    // Nothing free yet: every partition is still a's.
    assert!(parts(&b).is_empty());
    assert_eq!(
        g.members["b"].assignment.state,
        MemberState::UnreleasedPartitions
    );
    // a is told to keep two and revoke two, still at epoch 1.
    let a = run(&mut g, beat("a", 1, &[0, 1, 2, 3]), 4).unwrap();
    assert_eq!(a.member_epoch, 1);
    let kept = parts(&a);
    assert_eq!(kept.len(), 2);
    assert_eq!(state_name(&g), "Reconciling");
    // a revokes: it moves to epoch 2.
    let a = run(&mut g, beat("a", 1, &kept), 4).unwrap();
    assert_eq!(a.member_epoch, 2);
    // b now gets the released two.
    let b = run(&mut g, beat("b", 2, &[]), 4).unwrap();
    let got = parts(&b);
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|p| !kept.contains(p)));
    assert_eq!(state_name(&g), "Stable");
}

#[test]
fn epochs_are_fenced_as_kafka_does() {
    let mut g = ConsumerGroup::new("g");
    run(&mut g, join("a"), 2).unwrap();
    assert_eq!(
        run(&mut g, beat("a", 5, &[]), 2).unwrap_err().0,
        FENCED_MEMBER_EPOCH
    );
    assert_eq!(
        run(&mut g, beat("zz", 1, &[]), 2).unwrap_err().0,
        UNKNOWN_MEMBER_ID
    );
    // A new partition bumps the epoch; the previous epoch is still accepted once.
    let out = run(&mut g, beat("a", 1, &[0, 1]), 3).unwrap();
    assert_eq!(out.member_epoch, 2);
    assert_eq!(parts(&out), vec![0, 1, 2]);
    let again = run(&mut g, beat("a", 1, &[0, 1]), 3).unwrap();
    assert_eq!(again.member_epoch, 2);
}

#[test]
fn max_size_and_invalid_requests() {
    let mut g = ConsumerGroup::new("g");
    for m in ["a", "b", "c"] {
        run(&mut g, join(m), 3).unwrap();
    }
    assert_eq!(
        run(&mut g, join("d"), 3).unwrap_err().0,
        GROUP_MAX_SIZE_REACHED
    );
    let s = settings();
    let mut r = join("x");
    r.rebalance_timeout_ms = -1;
    assert_eq!(
        ConsumerGroup::validate_request("g", &r, 1, &s)
            .unwrap_err()
            .0,
        INVALID_REQUEST
    );
    let mut r = join("x");
    r.subscribed_topic_names = None;
    assert_eq!(
        ConsumerGroup::validate_request("g", &r, 1, &s)
            .unwrap_err()
            .0,
        INVALID_REQUEST
    );
    let r = join("");
    assert_eq!(
        ConsumerGroup::validate_request("g", &r, 1, &s)
            .unwrap_err()
            .0,
        INVALID_REQUEST
    );
    assert!(ConsumerGroup::validate_request("g", &r, 0, &s).is_ok());
    let mut r = join("x");
    r.server_assignor = Some("sticky".into());
    assert_eq!(
        ConsumerGroup::validate_request("g", &r, 1, &s)
            .unwrap_err()
            .0,
        UNSUPPORTED_ASSIGNOR
    );
}

#[test]
fn a_fenced_member_s_partitions_go_to_the_others() {
    let mut g = ConsumerGroup::new("g");
    run(&mut g, join("a"), 2).unwrap();
    run(&mut g, join("b"), 2).unwrap();
    let a = run(&mut g, beat("a", 1, &[0, 1]), 2).unwrap();
    let kept = parts(&a);
    run(&mut g, beat("a", 1, &kept), 2).unwrap();
    let mut changes = Changes::default();
    assert!(g.fence("a", &topics(2), &mut changes));
    assert!(changes.records.iter().any(|r| r.value.is_none()));
    let b = run(&mut g, beat("b", 2, &[]), 2).unwrap();
    assert_eq!(parts(&b), vec![0, 1]);
    assert_eq!(b.member_epoch, g.epoch);
}

#[test]
fn offset_commit_checks_member_epochs() {
    let mut g = ConsumerGroup::new("g");
    run(&mut g, join("a"), 1).unwrap();
    assert_eq!(g.validate_offset_commit("a", 1, 9), Ok(()));
    assert_eq!(g.validate_offset_commit("a", 0, 9), Err(STALE_MEMBER_EPOCH));
    assert_eq!(g.validate_offset_commit("b", 1, 9), Err(UNKNOWN_MEMBER_ID));
    assert_eq!(
        g.validate_offset_commit("a", 1, 8),
        Err(UNSUPPORTED_VERSION)
    );
    assert_eq!(g.validate_offset_fetch(None, -1), Ok(()));
    assert_eq!(g.validate_txn_offset_commit("a", 1), Ok(()));
    assert_eq!(
        g.validate_txn_offset_commit("a", 0),
        Err(ILLEGAL_GENERATION)
    );
    assert_eq!(g.validate_txn_offset_commit("", -1), Err(UNKNOWN_MEMBER_ID));
    assert_eq!(
        g.validate_offset_fetch(Some("a"), 2),
        Err(STALE_MEMBER_EPOCH)
    );
}

#[test]
fn replayed_records_rebuild_the_group() {
    let mut g = ConsumerGroup::new("g");
    let mut all = Vec::new();
    for r in [join("a"), join("b")] {
        let mut changes = Changes::default();
        g.heartbeat(&settings(), r, &topics(2), 0, &mut changes)
            .unwrap();
        all.extend(changes.records);
    }
    let mut replayed = ConsumerGroup::new("g");
    for r in &all {
        assert!(replayed.replay(r));
    }
    assert_eq!(replayed.epoch, g.epoch);
    assert_eq!(replayed.assignment_epoch, g.assignment_epoch);
    assert_eq!(replayed.target, g.target);
    assert_eq!(replayed.members, g.members);
    assert_eq!(replayed.metadata_hash, g.metadata_hash);
}

#[test]
fn deleted_topics_and_new_partitions_bump_the_epoch() {
    let mut g = ConsumerGroup::new("g");
    run(&mut g, join("a"), 2).unwrap();
    assert_eq!(g.epoch, 1);
    // The topic is gone: a new epoch, an empty target, the member revokes.
    let mut changes = Changes::default();
    let gone = |_: &str| None;
    let out = g
        .heartbeat(&settings(), beat("a", 1, &[0, 1]), &gone, 0, &mut changes)
        .unwrap();
    assert_eq!(g.epoch, 2);
    assert!(parts(&out).is_empty());
    assert_eq!(
        g.members["a"].assignment.state,
        MemberState::UnrevokedPartitions
    );
    let out = g
        .heartbeat(&settings(), beat("a", 1, &[]), &gone, 0, &mut changes)
        .unwrap();
    assert_eq!(out.member_epoch, 2);
}

#[test]
fn offsets_of_subscribed_topics_do_not_expire() {
    use crate::groups::group::{ClassicGroup, OffsetAndMetadata, Record};
    let mut consumer = ConsumerGroup::new("g");
    run(&mut consumer, join("a"), 1).unwrap();
    let mut holder = ClassicGroup::new("g");
    holder.consumer = Some(Box::new(consumer));
    let old = OffsetAndMetadata {
        committed_offset: 1,
        leader_epoch: None,
        metadata: String::new(),
        commit_timestamp_ms: 0,
        expire_timestamp_ms: None,
    };
    for topic in ["t", "u"] {
        holder
            .offsets
            .entry(topic.to_string())
            .or_default()
            .insert(0, old.clone());
    }
    assert!(!holder.expire_offsets(1_000_000, 1000));
    let expired: Vec<String> = holder
        .take_effects()
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Offset {
                topic, value: None, ..
            } => Some(topic.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(expired, ["u"]);
    assert!(holder.is_subscribed_to_topic("t") && !holder.is_subscribed_to_topic("u"));
}

#[test]
fn a_known_member_rejoins_with_epoch_zero_and_revocations_have_a_deadline() {
    let mut g = ConsumerGroup::new("g");
    run(&mut g, join("a"), 2).unwrap();
    run(&mut g, beat("a", 1, &[0, 1]), 2).unwrap();
    // Rejoining with epoch 0 (after being fenced on the client side) is accepted.
    let out = run(&mut g, join("a"), 2).unwrap();
    assert_eq!(out.member_epoch, 1);
    assert_eq!(parts(&out), vec![0, 1]);
    // b joins: a must revoke, within its rebalance timeout.
    run(&mut g, join("b"), 2).unwrap();
    let mut changes = Changes::default();
    g.heartbeat(
        &settings(),
        beat("a", 1, &[0, 1]),
        &topics(2),
        0,
        &mut changes,
    )
    .unwrap();
    assert!(
        changes
            .timers
            .contains(&TimerChange::Rebalance("a".into(), 1, 30_000)),
        "{:?}",
        changes.timers
    );
    let mut changes = Changes::default();
    let kept: Vec<i32> = g.members["a"].assignment.assigned[&topic_id()]
        .iter()
        .copied()
        .collect();
    g.heartbeat(
        &settings(),
        beat("a", 1, &kept),
        &topics(2),
        0,
        &mut changes,
    )
    .unwrap();
    assert!(
        changes
            .timers
            .contains(&TimerChange::CancelRebalance("a".into()))
    );
}

fn static_join(member: &str, instance: &str) -> HeartbeatRequest {
    HeartbeatRequest {
        instance_id: Some(instance.into()),
        ..join(member)
    }
}

#[test]
fn a_static_member_leaves_for_a_while_and_comes_back_with_its_partitions() {
    let mut g = ConsumerGroup::new("g");
    run(&mut g, static_join("a1", "i-a"), 2).unwrap();
    run(&mut g, static_join("b1", "i-b"), 2).unwrap();
    let a = run(&mut g, beat("a1", 1, &[0, 1]), 2).unwrap();
    let kept = parts(&a);
    run(&mut g, beat("a1", 1, &kept), 2).unwrap();
    let b = run(&mut g, beat("b1", 2, &[]), 2).unwrap();
    let b_parts = parts(&b);
    assert_eq!(b_parts.len(), 1);
    let epoch = g.epoch;

    // The instance is taken: another member id cannot join with it.
    let err = run(&mut g, static_join("a2", "i-a"), 2).unwrap_err();
    assert_eq!(err.0, UNRELEASED_INSTANCE_ID);
    // A heartbeat of the instance from another member id is fenced.
    let mut r = beat("a2", 2, &[]);
    r.instance_id = Some("i-a".into());
    assert_eq!(run(&mut g, r, 2).unwrap_err().0, FENCED_INSTANCE_ID);
    let mut r = beat("a2", 2, &[]);
    r.instance_id = Some("i-x".into());
    assert_eq!(run(&mut g, r, 2).unwrap_err().0, UNKNOWN_MEMBER_ID);

    // a1 leaves for now (-2): it stays, at epoch -2, with its partitions; no new epoch.
    let mut changes = Changes::default();
    let answer = g
        .leave("a1", Some("i-a"), -2, &topics(2), &mut changes)
        .unwrap();
    assert_eq!(answer, -2);
    assert_eq!(g.epoch, epoch);
    assert_eq!(g.members["a1"].assignment.epoch, -2);
    // Its replacement takes over the same partitions without a rebalance.
    let mut changes = Changes::default();
    let back = g
        .heartbeat(
            &settings(),
            static_join("a2", "i-a"),
            &topics(2),
            0,
            &mut changes,
        )
        .unwrap();
    assert_eq!(parts(&back), kept);
    assert_eq!(back.member_epoch, epoch);
    assert_eq!(g.epoch, epoch);
    assert!(!g.members.contains_key("a1"));
    assert!(
        changes
            .timers
            .contains(&TimerChange::CancelAll("a1".into()))
    );
    // The records replay to the same group.
    let tombstones = changes.records.iter().filter(|r| r.value.is_none()).count();
    assert_eq!(tombstones, 3);
    // A full leave (-1) of a static member removes it.
    let mut changes = Changes::default();
    g.leave("b1", Some("i-b"), -1, &topics(2), &mut changes)
        .unwrap();
    assert!(!g.members.contains_key("b1"));
    assert_eq!(g.epoch, epoch + 1);
}

/// Topics by name with ids 1, 2, ... in name order.
struct Cluster(Vec<(&'static str, i32)>);

impl TopicSource for Cluster {
    fn meta(&self, name: &str) -> Option<TopicMeta> {
        self.0.iter().position(|(n, _)| *n == name).map(|i| {
            TopicMeta::without_racks(name, Uuid::from_bytes([i as u8 + 1; 16]), self.0[i].1)
        })
    }

    fn names(&self) -> Vec<String> {
        self.0.iter().map(|(n, _)| n.to_string()).collect()
    }

    fn version(&self) -> i64 {
        self.0.len() as i64
    }
}

#[test]
fn regex_subscriptions_pick_up_topics_created_later() {
    let mut g = ConsumerGroup::new("g");
    let mut request = join("a");
    request.subscribed_topic_names = None;
    request.subscribed_topic_regex = Some("ev.*".into());
    assert!(ConsumerGroup::validate_request("g", &request, 1, &settings()).is_ok());
    let mut bad = request.clone();
    bad.subscribed_topic_regex = Some("(".into());
    assert_eq!(
        ConsumerGroup::validate_request("g", &bad, 1, &settings())
            .unwrap_err()
            .0,
        INVALID_REGULAR_EXPRESSION
    );
    let mut all = Vec::new();
    let before = Cluster(vec![("__consumer_offsets", 3), ("events", 2), ("other", 1)]);
    let mut changes = Changes::default();
    let out = g
        .heartbeat(&settings(), request, &before, 0, &mut changes)
        .unwrap();
    let events = Uuid::from_bytes([2; 16]);
    assert_eq!(
        out.assignment.unwrap().keys().copied().collect::<Vec<_>>(),
        vec![events]
    );
    assert_eq!(g.regexes["ev.*"], BTreeSet::from(["events".to_string()]));
    all.extend(changes.records);
    // "evolved" appears: a new epoch and its partitions.
    let after = Cluster(vec![
        ("__consumer_offsets", 3),
        ("events", 2),
        ("evolved", 1),
        ("other", 1),
    ]);
    let mut changes = Changes::default();
    let mut r = beat("a", 1, &[0, 1]);
    r.owned = Some(BTreeMap::from([(events, BTreeSet::from([0, 1]))]));
    let out = g
        .heartbeat(&settings(), r, &after, 0, &mut changes)
        .unwrap();
    assert_eq!(out.member_epoch, 2);
    let assigned = out.assignment.unwrap();
    assert_eq!(assigned.len(), 2, "{assigned:?}");
    assert!(g.is_subscribed_to_topic("evolved"));
    all.extend(changes.records);
    // Replay gives the same group; leaving deletes the regex.
    let mut replayed = ConsumerGroup::new("g");
    for r in &all {
        replayed.replay(r);
    }
    assert_eq!(replayed.regexes, g.regexes);
    assert_eq!(replayed.members, g.members);
    let mut changes = Changes::default();
    g.fence("a", &after, &mut changes);
    assert!(g.regexes.is_empty());
    assert!(changes.records.iter().any(|r| matches!(
        r.key,
        gregor_protocol::messages::GroupCoordinatorRecordKey::ConsumerGroupRegularExpression(_)
    ) && r.value.is_none()));
}
