//! Unit tests of the group coordinator: partition choice, record formats and their replay,
//! and the state machine driven without a broker.

use bytes::Bytes;
use gregor_protocol::messages::join_group_response::JoinGroupResponse;
use tokio::sync::oneshot;

use super::group::*;
use super::records::{self, Decoded, Replay};
use super::*;

#[test]
fn java_string_hash_matches_java() {
    // Values of "...".hashCode() in Java.
    assert_eq!(java_string_hash(""), 0);
    assert_eq!(java_string_hash("a"), 97);
    assert_eq!(java_string_hash("hello"), 99_162_322);
    // UTF-16 code units: a character outside the BMP counts as two.
    assert_eq!(java_string_hash("\u{1F600}"), 0xD83D * 31 + 0xDE00);
    // "polygenelubricants".hashCode() == Integer.MIN_VALUE: Utils.abs makes it 0.
    assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
    assert_eq!(partition_for("polygenelubricants", 50), 0);
    assert_eq!(partition_for("hello", 50), 99_162_322 % 50);
}

#[test]
fn client_hosts_are_shown_as_java_does() {
    assert_eq!(
        client_host(&"127.0.0.1:5000".parse().unwrap()),
        "/127.0.0.1"
    );
    assert_eq!(
        client_host(&"[::1]:5000".parse().unwrap()),
        "/0:0:0:0:0:0:0:1"
    );
    assert_eq!(
        client_host(&"[::ffff:10.0.0.1]:5000".parse().unwrap()),
        "/10.0.0.1"
    );
}

fn offset(value: i64, expire: Option<i64>) -> OffsetAndMetadata {
    OffsetAndMetadata {
        committed_offset: value,
        leader_epoch: Some(3),
        metadata: "meta".to_string(),
        commit_timestamp_ms: 1000,
        expire_timestamp_ms: expire,
    }
}

#[test]
fn offset_records_round_trip_with_kafkas_versions() {
    let record = Record::Offset {
        topic: "t".into(),
        partition: 4,
        value: Some(offset(42, None)),
    };
    let (key, value) = records::encode("g", &record);
    // Record type 1, then group, topic, partition.
    assert_eq!(&key[..], &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 4]);
    let value = value.unwrap();
    assert_eq!(&value[..2], &[0, 3], "OffsetCommitValue v3");
    assert_eq!(
        records::decode(&key, Some(&value)).unwrap(),
        Some(Decoded::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 4,
            value: Some(offset(42, None)),
        })
    );
    let expiring = Record::Offset {
        topic: "t".into(),
        partition: 4,
        value: Some(offset(42, Some(5000))),
    };
    let (_, value) = records::encode("g", &expiring);
    let value = value.unwrap();
    assert_eq!(&value[..2], &[0, 1], "v1 with an expire timestamp");
    let Some(Decoded::Offset { value: Some(v), .. }) = records::decode(&key, Some(&value)).unwrap()
    else {
        panic!("not an offset");
    };
    assert_eq!(v.expire_timestamp_ms, Some(5000));
    assert_eq!(v.leader_epoch, None, "v1 has no leader epoch");
}

#[test]
fn unknown_record_types_are_skipped() {
    // Record type 10 (a share-group record) is not for this coordinator.
    let key = Bytes::from_static(&[0, 10, 0, 1, b'g']);
    assert_eq!(records::decode(&key, None).unwrap(), None);
    assert!(records::decode(&Bytes::from_static(&[0]), None).is_err());
}

fn join_request(member_id: &str, version: i16) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_string(),
        group_instance_id: None,
        client_id: "client".to_string(),
        client_host: "/127.0.0.1".to_string(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        protocol_type: "consumer".to_string(),
        protocols: vec![Protocol {
            name: "range".to_string(),
            metadata: Bytes::from_static(b"sub"),
        }],
        version,
        reason: None,
    }
}

fn config() -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay_ms: 0,
        max_size: 2,
        new_member_join_timeout_ms: NEW_MEMBER_JOIN_TIMEOUT_MS,
    }
}

/// Fires the pending timers with `keys` (in order, and those they start in turn), as the
/// runtime would once their delays pass.
fn fire_timers(group: &mut ClassicGroup, config: &GroupConfig, keys: &[TimerKey]) {
    for _ in 0..10 {
        let effects = group.take_effects();
        let mut fired = false;
        for timer in effects.timers {
            if keys.contains(&timer.key) && group.claim_timer(&timer.key, timer.token) {
                group.on_timer(config, timer.action);
                fired = true;
            }
        }
        if !fired {
            return;
        }
    }
}

fn joined(rx: &mut oneshot::Receiver<JoinGroupResponse>) -> JoinGroupResponse {
    rx.try_recv().expect("a join response")
}

#[test]
fn a_member_joins_and_syncs_and_the_group_replays_from_its_records() {
    let config = config();
    let mut group = ClassicGroup::new("g");
    let (tx, mut rx) = oneshot::channel();
    group.join(&config, join_request("", 5), tx);
    let first = joined(&mut rx);
    assert_eq!(
        first.error_code,
        gregor_protocol::error_code::MEMBER_ID_REQUIRED
    );
    let member = first.member_id.to_string();
    assert!(member.starts_with("client-"));
    group.take_effects();

    let (tx, mut rx) = oneshot::channel();
    group.join(&config, join_request(&member, 5), tx);
    assert_eq!(group.state(), GroupState::PreparingRebalance);
    assert!(rx.try_recv().is_err(), "waits for the initial delay");
    fire_timers(&mut group, &config, &[TimerKey::Join]);
    let response = joined(&mut rx);
    assert_eq!(response.error_code, 0);
    assert_eq!(response.generation_id, 1);
    assert_eq!(group.state(), GroupState::CompletingRebalance);

    let outcome = group.sync(SyncRequest {
        generation_id: 1,
        member_id: member.clone(),
        group_instance_id: None,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments: vec![(member.clone(), Bytes::from_static(b"asg"))],
    });
    let SyncOutcome::Wait(mut sync_rx) = outcome else {
        panic!("the leader waits for the write");
    };
    let mut effects = group.take_effects();
    assert_eq!(effects.records.len(), 1);
    let Record::GroupMetadata(metadata) = effects.records[0].clone() else {
        panic!("not group metadata");
    };
    let continuation = effects.after_append.take().expect("a continuation");
    group.after_append(&config, continuation, Ok(()));
    assert_eq!(group.state(), GroupState::Stable);
    let synced = sync_rx.try_recv().unwrap();
    assert_eq!(&synced.assignment[..], b"asg");

    // Replaying the record gives the same group, Stable.
    let (key, value) = records::encode("g", &Record::GroupMetadata(metadata));
    let mut replay = Replay::default();
    replay.apply(records::decode(&key, value.as_ref()).unwrap().unwrap());
    let loaded = replay.groups.get("g").unwrap();
    assert_eq!(loaded.state(), GroupState::Stable);
    assert_eq!(loaded.generation_id(), 1);
    assert_eq!(loaded.leader(), Some(member.as_str()));
    assert_eq!(loaded.protocol_name(), Some("range"));
    let described = loaded.describe();
    assert_eq!(&described.members[0].assignment[..], b"asg");
    assert_eq!(&described.members[0].metadata[..], b"sub");
}

#[test]
fn a_failed_write_of_the_assignment_fails_the_sync_and_rebalances() {
    let config = config();
    let mut group = ClassicGroup::new("g");
    let (tx, mut rx) = oneshot::channel();
    group.join(&config, join_request("", 3), tx);
    fire_timers(&mut group, &config, &[TimerKey::Join]);
    let member = joined(&mut rx).member_id.to_string();
    group.take_effects();
    let SyncOutcome::Wait(mut sync_rx) = group.sync(SyncRequest {
        generation_id: 1,
        member_id: member.clone(),
        group_instance_id: None,
        protocol_type: None,
        protocol_name: None,
        assignments: Vec::new(),
    }) else {
        panic!("waits");
    };
    let continuation = group.take_effects().after_append.unwrap();
    group.after_append(
        &config,
        continuation,
        Err(gregor_protocol::error_code::NOT_LEADER_OR_FOLLOWER),
    );
    assert_eq!(
        sync_rx.try_recv().unwrap().error_code,
        gregor_protocol::error_code::NOT_COORDINATOR
    );
    assert_eq!(group.state(), GroupState::PreparingRebalance);
}

#[test]
fn the_group_refuses_members_beyond_its_max_size() {
    let config = config();
    let mut group = ClassicGroup::new("g");
    let mut receivers = Vec::new();
    for _ in 0..3 {
        let (tx, rx) = oneshot::channel();
        group.join(&config, join_request("", 3), tx);
        receivers.push(rx);
    }
    // The third is refused at once; the first two wait for the join phase (the initial
    // delay is extended once since the second joined during it).
    assert_eq!(
        receivers[2].try_recv().unwrap().error_code,
        gregor_protocol::error_code::GROUP_MAX_SIZE_REACHED
    );
    fire_timers(&mut group, &config, &[TimerKey::Join]);
    assert_eq!(receivers[0].try_recv().unwrap().generation_id, 1);
    assert_eq!(receivers[1].try_recv().unwrap().generation_id, 1);
    assert_eq!(group.members().count(), 2);
}

#[test]
fn offsets_of_simple_groups_expire_after_the_retention() {
    let mut group = ClassicGroup::new("simple");
    group.commit(vec![("t".into(), 0, offset(1, None))]);
    let continuation = group.take_effects().after_append.unwrap();
    group.after_append(&config(), continuation, Ok(()));
    assert!(!group.expire_offsets(1000 + 59_999, 60_000));
    assert!(group.take_effects().records.is_empty());
    assert!(group.expire_offsets(1000 + 60_000, 60_000));
    let effects = group.take_effects();
    assert_eq!(
        effects.records,
        [Record::Offset {
            topic: "t".into(),
            partition: 0,
            value: None
        }]
    );
}
