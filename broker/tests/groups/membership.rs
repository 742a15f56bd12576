//! FindCoordinator, JoinGroup, SyncGroup, Heartbeat and LeaveGroup with the raw client.

use std::thread;
use std::time::{Duration, Instant};

use gregor_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use gregor_protocol::messages::leave_group_request::{LeaveGroupRequest, MemberIdentity};

use crate::wire::{self, *};

#[test]
fn find_coordinator_answers_this_broker_at_every_version() {
    let data = fixture();
    let broker = start(&data, &[]);
    let mut client = connect(&broker);
    let port = i32::from(broker.addr().port());
    for version in 0..=3 {
        let response = client
            .call(
                &FindCoordinatorRequest {
                    key: "readers".into(),
                    key_type: 0,
                    ..Default::default()
                },
                version,
            )
            .unwrap();
        assert_eq!(response.error_code, error::NONE, "v{version}: {response:?}");
        assert_eq!(response.node_id, data.node_id);
        assert_eq!(&*response.host, "127.0.0.1");
        assert_eq!(response.port, port);
        if version >= 1 {
            // Kafka sends `Errors.NONE.message()`.
            assert_eq!(response.error_message.as_deref(), Some("NONE"));
        }
    }
    for version in 4..=6 {
        let response = client
            .call(
                &FindCoordinatorRequest {
                    key_type: 0,
                    coordinator_keys: vec!["a".into(), "b".into(), "".into()],
                    ..Default::default()
                },
                version,
            )
            .unwrap();
        let keys: Vec<&str> = response.coordinators.iter().map(|c| &*c.key).collect();
        assert_eq!(keys, ["a", "b", ""]);
        for c in &response.coordinators {
            assert_eq!(c.error_code, error::NONE, "v{version}: {c:?}");
            assert_eq!(
                (c.node_id, &*c.host, c.port),
                (data.node_id, "127.0.0.1", port)
            );
            assert_eq!(c.error_message, None);
        }
    }

    // Transactional ids (key type 1) are coordinated here too.
    let response = client
        .call(
            &FindCoordinatorRequest {
                key: "txn".into(),
                key_type: 1,
                ..Default::default()
            },
            3,
        )
        .unwrap();
    assert_eq!(response.error_code, error::NONE);
    assert_eq!(response.port, i32::from(broker.addr().port()));
    let response = client
        .call(
            &FindCoordinatorRequest {
                key_type: 1,
                coordinator_keys: vec!["txn".into()],
                ..Default::default()
            },
            4,
        )
        .unwrap();
    assert_eq!(response.coordinators[0].error_code, error::NONE);
    // An unknown key type.
    let response = client
        .call(
            &FindCoordinatorRequest {
                key: "x".into(),
                key_type: 7,
                ..Default::default()
            },
            2,
        )
        .unwrap();
    assert_eq!(response.error_code, error::INVALID_REQUEST);

    // The first FindCoordinator created __consumer_offsets: internal, 5 partitions.
    let offsets = topic_metadata(&mut client, OFFSETS_TOPIC);
    assert_eq!(offsets.error_code, error::NONE);
    assert!(offsets.is_internal);
    assert_eq!(offsets.partitions.len(), OFFSETS_PARTITIONS as usize);
    for p in 0..OFFSETS_PARTITIONS {
        assert!(
            data.path().join(format!("{OFFSETS_TOPIC}-{p}")).is_dir(),
            "no directory for partition {p}"
        );
    }
}

#[test]
fn the_offsets_topic_is_compacted_with_kafkas_configs() {
    use gregor_protocol::messages::describe_configs_request::{
        DescribeConfigsRequest, DescribeConfigsResource,
    };
    let data = fixture();
    let broker = start(&data, &[("offsets.topic.segment.bytes", "1048576")]);
    let mut client = connect(&broker);
    client
        .call(
            &FindCoordinatorRequest {
                key: "g".into(),
                ..Default::default()
            },
            1,
        )
        .unwrap();
    let response = client
        .call(
            &DescribeConfigsRequest {
                resources: vec![DescribeConfigsResource {
                    resource_type: 2,
                    resource_name: OFFSETS_TOPIC.into(),
                    configuration_keys: Some(vec![
                        "cleanup.policy".into(),
                        "compression.type".into(),
                        "segment.bytes".into(),
                    ]),
                    ..Default::default()
                }],
                ..Default::default()
            },
            4,
        )
        .unwrap();
    let configs: Vec<(String, Option<String>)> = response.results[0]
        .configs
        .iter()
        .map(|c| (c.name.to_string(), c.value.as_deref().map(str::to_string)))
        .collect();
    for (key, value) in [
        ("cleanup.policy", "compact"),
        ("compression.type", "producer"),
        ("segment.bytes", "1048576"),
    ] {
        assert!(
            configs.contains(&(key.to_string(), Some(value.to_string()))),
            "{key}={value} not in {configs:?}"
        );
    }
}

#[test]
fn without_enough_brokers_for_the_offsets_topic_the_coordinator_is_not_available() {
    // Kafka's default replication factor of 3 cannot be met by one broker.
    let data = fixture();
    let broker = start(&data, &[("offsets.topic.replication.factor", "3")]);
    let mut client = connect(&broker);
    let response = client
        .call(
            &FindCoordinatorRequest {
                key: "g".into(),
                ..Default::default()
            },
            3,
        )
        .unwrap();
    assert_eq!(response.error_code, error::COORDINATOR_NOT_AVAILABLE);
    assert_eq!(response.node_id, -1);
}

#[test]
fn one_member_joins_syncs_heartbeats_and_leaves_at_low_versions() {
    let data = fixture();
    let broker = start(&data, &[]);
    let mut client = connect(&broker);
    let group = "low";
    // JoinGroup v0: no member id required; the rebalance timeout is the session timeout.
    let mut request = join_request(group, "", protocols(&[("range", b"sub-a")]));
    request.rebalance_timeout_ms = 999_999;
    let joined = join(&mut client, 0, &request);
    assert_eq!(joined.error_code, error::NONE, "{joined:?}");
    let member = joined.member_id.to_string();
    assert!(member.starts_with("gregor-tests-"), "{member}");
    assert_eq!(member.len(), "gregor-tests-".len() + 36, "{member}");
    assert_eq!(joined.generation_id, 1);
    assert_eq!(joined.protocol_name.as_deref(), Some("range"));
    assert_eq!(&*joined.leader, member);
    assert_eq!(joined.members.len(), 1);
    assert_eq!(&*joined.members[0].member_id, member);
    assert_eq!(&joined.members[0].metadata[..], b"sub-a");

    let synced = sync(
        &mut client,
        0,
        &sync_request(group, 1, &member, &[(&member, b"assignment-a")]),
    );
    assert_eq!(synced.error_code, error::NONE);
    assert_eq!(&synced.assignment[..], b"assignment-a");
    // A follower's view: SyncGroup again in Stable answers the stored assignment.
    let again = sync(&mut client, 1, &sync_request(group, 1, &member, &[]));
    assert_eq!(&again.assignment[..], b"assignment-a");

    assert_eq!(
        heartbeat(&mut client, 0, group, 1, &member, None),
        error::NONE
    );
    assert_eq!(
        heartbeat(&mut client, 1, group, 7, &member, None),
        error::ILLEGAL_GENERATION
    );
    assert_eq!(
        heartbeat(&mut client, 2, group, 1, "nobody", None),
        error::UNKNOWN_MEMBER_ID
    );
    let described = describe(&mut client, 0, group);
    assert_eq!(&*described.group_state, "Stable");
    assert_eq!(&*described.protocol_type, "consumer");
    assert_eq!(&*described.protocol_data, "range");
    assert_eq!(described.members.len(), 1);
    let m = &described.members[0];
    assert_eq!(&*m.client_id, "gregor-tests");
    assert_eq!(&*m.client_host, "/127.0.0.1");
    assert_eq!(&m.member_metadata[..], b"sub-a");
    assert_eq!(&m.member_assignment[..], b"assignment-a");

    // The leader joining again while Stable starts a rebalance (generation 2).
    let rejoined = join(
        &mut client,
        1,
        &join_request(group, &member, protocols(&[("range", b"sub-a")])),
    );
    assert_eq!(rejoined.error_code, error::NONE);
    assert_eq!(rejoined.generation_id, 2);
    let stale = sync(&mut client, 2, &sync_request(group, 1, &member, &[]));
    assert_eq!(stale.error_code, error::ILLEGAL_GENERATION);
    let synced = sync(
        &mut client,
        2,
        &sync_request(group, 2, &member, &[(&member, b"a2")]),
    );
    assert_eq!(synced.error_code, error::NONE);
    assert_eq!(&synced.assignment[..], b"a2");

    assert_eq!(leave(&mut client, 0, group, &member), error::NONE);
    assert_eq!(
        heartbeat(&mut client, 0, group, 2, &member, None),
        error::UNKNOWN_MEMBER_ID
    );
    let described = describe(&mut client, 0, group);
    assert_eq!(&*described.group_state, "Empty");
    assert_eq!(&*described.protocol_type, "consumer");
    assert_eq!(&*described.protocol_data, "");
    assert!(described.members.is_empty());
    assert_eq!(
        leave(&mut client, 1, group, &member),
        error::UNKNOWN_MEMBER_ID
    );
}

#[test]
fn new_members_need_a_member_id_from_v4_and_high_versions_carry_the_protocol() {
    let data = fixture();
    let broker = start(&data, &[]);
    let mut client = connect(&broker);
    let group = "high";
    let request = join_request(group, "", protocols(&[("range", b"s")]));
    let first = join(&mut client, 9, &request);
    assert_eq!(first.error_code, error::MEMBER_ID_REQUIRED);
    assert_eq!(first.generation_id, -1);
    assert_eq!(first.protocol_name, None);
    assert_eq!(first.protocol_type, None);
    assert_eq!(&*first.leader, "");
    assert!(first.members.is_empty());
    let member = first.member_id.to_string();
    assert!(member.starts_with("gregor-tests-"), "{member}");
    // The pending member is not a member yet.
    assert!(describe(&mut client, 5, group).members.is_empty());

    let mut request = request.clone();
    request.member_id = member.as_str().into();
    request.reason = Some("testing".into());
    let joined = join(&mut client, 9, &request);
    assert_eq!(joined.error_code, error::NONE, "{joined:?}");
    assert_eq!(joined.member_id, member);
    assert_eq!(joined.generation_id, 1);
    assert_eq!(joined.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(joined.protocol_name.as_deref(), Some("range"));
    assert!(!joined.skip_assignment);
    assert_eq!(joined.leader, member);

    // A member id the group does not know, and a group that does not exist.
    let unknown = join(
        &mut client,
        7,
        &join_request(group, "bogus", protocols(&[("range", b"s")])),
    );
    assert_eq!(unknown.error_code, error::UNKNOWN_MEMBER_ID);
    assert_eq!(&*unknown.member_id, "bogus");
    let nowhere = join(
        &mut client,
        6,
        &join_request("nowhere", "m", protocols(&[("range", b"s")])),
    );
    assert_eq!(nowhere.error_code, error::UNKNOWN_MEMBER_ID);

    // SyncGroup v5 needs the protocol type and name, and they must match.
    let mut missing = sync_request(group, 1, &member, &[]);
    missing.protocol_type = None;
    assert_eq!(
        sync(&mut client, 5, &missing).error_code,
        error::INCONSISTENT_GROUP_PROTOCOL
    );
    let mut other = sync_request(group, 1, &member, &[]);
    other.protocol_name = Some("roundrobin".into());
    assert_eq!(
        sync(&mut client, 5, &other).error_code,
        error::INCONSISTENT_GROUP_PROTOCOL
    );
    let synced = sync(
        &mut client,
        5,
        &sync_request(group, 1, &member, &[(&member, b"mine")]),
    );
    assert_eq!(synced.error_code, error::NONE);
    assert_eq!(synced.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(synced.protocol_name.as_deref(), Some("range"));
    assert_eq!(&synced.assignment[..], b"mine");
    assert_eq!(
        heartbeat(&mut client, 4, group, 1, &member, None),
        error::NONE
    );

    // LeaveGroup v5: a batch with a member and a stranger.
    let response = client
        .call(
            &LeaveGroupRequest {
                group_id: group.into(),
                members: vec![
                    MemberIdentity {
                        member_id: member.as_str().into(),
                        reason: Some("done".into()),
                        ..Default::default()
                    },
                    MemberIdentity {
                        member_id: "ghost".into(),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
            5,
        )
        .unwrap();
    assert_eq!(response.error_code, error::NONE);
    let errors: Vec<(&str, i16)> = response
        .members
        .iter()
        .map(|m| (&*m.member_id, m.error_code))
        .collect();
    assert_eq!(
        errors,
        [
            (member.as_str(), error::NONE),
            ("ghost", error::UNKNOWN_MEMBER_ID)
        ]
    );
    assert_eq!(state(&mut client, group), "Empty");

    // A pending member (MEMBER_ID_REQUIRED) that never comes back expires with its
    // session timeout.
    let mut short = join_request(group, "", protocols(&[("range", b"s")]));
    short.session_timeout_ms = 1000;
    let pending = join(&mut client, 5, &short);
    assert_eq!(pending.error_code, error::MEMBER_ID_REQUIRED);
    thread::sleep(Duration::from_millis(1600));
    short.member_id = pending.member_id.clone();
    let late = join(&mut client, 5, &short);
    assert_eq!(late.error_code, error::UNKNOWN_MEMBER_ID, "{late:?}");
}

#[test]
fn a_second_member_triggers_a_rebalance_and_both_get_their_assignment() {
    let data = fixture();
    let broker = start(&data, &[]);
    let group = "pair";
    let mut a = connect(&broker);
    let (member_a, generation) = join_and_sync(&mut a, group, b"all-partitions");
    assert_eq!(generation, 1);

    // B joins: its JoinGroup waits until A rejoins.
    let mut b = connect(&broker);
    let b_thread = thread::spawn(move || {
        let joined = join_new(
            &mut b,
            5,
            join_request(group, "", protocols(&[("range", b"sub-b")])),
        );
        (b, joined)
    });
    wait_until(
        Duration::from_secs(10),
        "A's heartbeat to see the rebalance",
        || heartbeat(&mut a, 3, group, 1, &member_a, None) == error::REBALANCE_IN_PROGRESS,
    );
    assert_eq!(state(&mut a, group), "PreparingRebalance");
    // A commit from the current generation is still accepted while preparing.
    let commits = commit(
        &mut a,
        7,
        &commit_request(
            7,
            group,
            1,
            &member_a,
            TOPIC,
            Default::default(),
            &[(0, 3, -1, None)],
        ),
    );
    assert_eq!(commits, [error::NONE]);

    let rejoined = join(
        &mut a,
        5,
        &join_request(group, &member_a, protocols(&[("range", b"sub-a")])),
    );
    let (mut b, b_joined) = b_thread.join().unwrap();
    assert_eq!(rejoined.error_code, error::NONE);
    assert_eq!(b_joined.error_code, error::NONE, "{b_joined:?}");
    let member_b = b_joined.member_id.to_string();
    assert_eq!(rejoined.generation_id, 2);
    assert_eq!(b_joined.generation_id, 2);
    // A stays the leader and gets both members' metadata; B gets none.
    assert_eq!(rejoined.leader, member_a);
    assert_eq!(b_joined.leader, member_a);
    let mut seen: Vec<(String, Vec<u8>)> = rejoined
        .members
        .iter()
        .map(|m| (m.member_id.to_string(), m.metadata.to_vec()))
        .collect();
    seen.sort();
    let mut expected = vec![
        (member_a.clone(), b"sub-a".to_vec()),
        (member_b.clone(), b"sub-b".to_vec()),
    ];
    expected.sort();
    assert_eq!(seen, expected);
    assert!(b_joined.members.is_empty());
    assert_eq!(state(&mut a, group), "CompletingRebalance");
    // Commits wait for the rebalance to complete.
    let commits = commit(
        &mut a,
        8,
        &commit_request(
            8,
            group,
            2,
            &member_a,
            TOPIC,
            Default::default(),
            &[(0, 4, -1, None)],
        ),
    );
    assert_eq!(commits, [error::REBALANCE_IN_PROGRESS]);

    // B's SyncGroup waits for the leader's.
    let b_sync = thread::spawn({
        let member_b = member_b.clone();
        move || {
            let synced = sync(&mut b, 4, &sync_request(group, 2, &member_b, &[]));
            (b, synced)
        }
    });
    thread::sleep(Duration::from_millis(200));
    let a_synced = sync(
        &mut a,
        4,
        &sync_request(
            group,
            2,
            &member_a,
            &[(&member_a, b"p0,p1"), (&member_b, b"p2")],
        ),
    );
    let (mut b, b_synced) = b_sync.join().unwrap();
    assert_eq!(a_synced.error_code, error::NONE);
    assert_eq!(&a_synced.assignment[..], b"p0,p1");
    assert_eq!(b_synced.error_code, error::NONE);
    assert_eq!(&b_synced.assignment[..], b"p2");

    let described = describe(&mut a, 5, group);
    assert_eq!(&*described.group_state, "Stable");
    assert_eq!(described.members.len(), 2);
    for m in &described.members {
        let (metadata, assignment): (&[u8], &[u8]) = if m.member_id == member_a {
            (b"sub-a", b"p0,p1")
        } else {
            (b"sub-b", b"p2")
        };
        assert_eq!(&m.member_metadata[..], metadata);
        assert_eq!(&m.member_assignment[..], assignment);
    }
    assert_eq!(heartbeat(&mut b, 4, group, 2, &member_b, None), error::NONE);

    // B leaves: A rejoins alone.
    assert_eq!(leave(&mut b, 2, group, &member_b), error::NONE);
    assert_eq!(
        heartbeat(&mut a, 4, group, 2, &member_a, None),
        error::REBALANCE_IN_PROGRESS
    );
    let alone = join(
        &mut a,
        5,
        &join_request(group, &member_a, protocols(&[("range", b"sub-a")])),
    );
    assert_eq!(alone.generation_id, 3);
    assert_eq!(alone.members.len(), 1);
}

#[test]
fn the_group_uses_a_protocol_every_member_supports() {
    let data = fixture();
    let broker = start(&data, &[]);
    let group = "vote";
    let mut a = connect(&broker);
    let joined = join(
        &mut a,
        3,
        &join_request(
            group,
            "",
            protocols(&[("range", b"a-range"), ("roundrobin", b"a-rr")]),
        ),
    );
    assert_eq!(joined.protocol_name.as_deref(), Some("range"));
    let member_a = joined.member_id.to_string();

    // Another protocol type, or no protocol in common: rejected at once.
    let mut c = connect(&broker);
    let mut connect_type = join_request(group, "", protocols(&[("range", b"c")]));
    connect_type.protocol_type = "connect".into();
    let rejected = join(&mut c, 3, &connect_type);
    assert_eq!(rejected.error_code, error::INCONSISTENT_GROUP_PROTOCOL);
    assert_eq!(&*rejected.member_id, "");
    let rejected = join(
        &mut c,
        3,
        &join_request(group, "", protocols(&[("sticky", b"c")])),
    );
    assert_eq!(rejected.error_code, error::INCONSISTENT_GROUP_PROTOCOL);
    let mut empty_type = join_request("fresh", "", protocols(&[("range", b"c")]));
    empty_type.protocol_type = "".into();
    assert_eq!(
        join(&mut c, 3, &empty_type).error_code,
        error::INCONSISTENT_GROUP_PROTOCOL
    );
    assert_eq!(
        join(&mut c, 3, &join_request("fresh", "", Vec::new())).error_code,
        error::INCONSISTENT_GROUP_PROTOCOL
    );

    // B supports only roundrobin: the only candidate.
    let mut b = connect(&broker);
    let b_thread = thread::spawn(move || {
        join(
            &mut b,
            3,
            &join_request(group, "", protocols(&[("roundrobin", b"b-rr")])),
        )
    });
    wait_until(Duration::from_secs(10), "the rebalance", || {
        heartbeat(&mut a, 2, group, 1, &member_a, None) == error::REBALANCE_IN_PROGRESS
    });
    let rejoined = join(
        &mut a,
        3,
        &join_request(
            group,
            &member_a,
            protocols(&[("range", b"a-range"), ("roundrobin", b"a-rr")]),
        ),
    );
    let b_joined = b_thread.join().unwrap();
    assert_eq!(rejoined.protocol_name.as_deref(), Some("roundrobin"));
    assert_eq!(b_joined.protocol_name.as_deref(), Some("roundrobin"));
    let a_metadata = rejoined
        .members
        .iter()
        .find(|m| m.member_id == member_a)
        .map(|m| m.metadata.to_vec());
    assert_eq!(a_metadata.as_deref(), Some(&b"a-rr"[..]));
}

#[test]
fn a_member_that_stops_heartbeating_is_removed_after_its_session_timeout() {
    let data = fixture();
    let broker = start(&data, &[]);
    let mut client = connect(&broker);
    let group = "sessions";
    let mut too_short = join_request(group, "", protocols(&[("range", b"s")]));
    too_short.session_timeout_ms = 999;
    assert_eq!(
        join(&mut client, 5, &too_short).error_code,
        error::INVALID_SESSION_TIMEOUT
    );
    too_short.session_timeout_ms = 60_001;
    assert_eq!(
        join(&mut client, 5, &too_short).error_code,
        error::INVALID_SESSION_TIMEOUT
    );

    let mut request = join_request(group, "", protocols(&[("range", b"s")]));
    request.session_timeout_ms = 1000;
    let joined = join_new(&mut client, 5, request);
    let member = joined.member_id.to_string();
    sync(
        &mut client,
        3,
        &sync_request(group, 1, &member, &[(&member, b"x")]),
    );
    // Heartbeats keep it.
    for _ in 0..4 {
        thread::sleep(Duration::from_millis(400));
        assert_eq!(
            heartbeat(&mut client, 3, group, 1, &member, None),
            error::NONE
        );
    }
    assert_eq!(state(&mut client, group), "Stable");
    // Silence removes it: the group becomes Empty (a new generation).
    thread::sleep(Duration::from_millis(1600));
    let described = describe(&mut client, 5, group);
    assert_eq!(&*described.group_state, "Empty");
    assert!(described.members.is_empty());
    assert_eq!(
        heartbeat(&mut client, 3, group, 1, &member, None),
        error::UNKNOWN_MEMBER_ID
    );
}

#[test]
fn the_initial_rebalance_delay_holds_the_first_join_of_a_new_group() {
    let data = fixture();
    let broker = start(&data, &[("group.initial.rebalance.delay.ms", "1500")]);
    let mut a = connect(&broker);
    let mut b = connect(&broker);
    let group = "delayed";
    let started = Instant::now();
    // B joins 500 ms after A, within the delay: one rebalance takes both.
    let b_thread = thread::spawn(move || {
        thread::sleep(Duration::from_millis(500));
        join(
            &mut b,
            3,
            &join_request(group, "", protocols(&[("range", b"b")])),
        )
    });
    let a_joined = join(
        &mut a,
        3,
        &join_request(group, "", protocols(&[("range", b"a")])),
    );
    let b_joined = b_thread.join().unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1400),
        "joined after {elapsed:?}"
    );
    assert_eq!(a_joined.error_code, error::NONE);
    assert_eq!(b_joined.error_code, error::NONE);
    assert_eq!(a_joined.generation_id, 1);
    assert_eq!(b_joined.generation_id, 1);
    let leader_members = if a_joined.leader == a_joined.member_id {
        &a_joined.members
    } else {
        &b_joined.members
    };
    assert_eq!(leader_members.len(), 2);
}

#[test]
fn static_members_rejoin_without_a_rebalance_and_fence_their_old_id() {
    let data = fixture();
    let broker = start(&data, &[]);
    let mut client = connect(&broker);
    let group = "static";
    let mut request = join_request(group, "", protocols(&[("range", b"s")]));
    request.group_instance_id = Some("instance-1".into());
    // A static member needs no MEMBER_ID_REQUIRED round.
    let joined = join(&mut client, 5, &request);
    assert_eq!(joined.error_code, error::NONE, "{joined:?}");
    let old = joined.member_id.to_string();
    assert!(old.starts_with("instance-1-"), "{old}");
    let synced = sync(
        &mut client,
        5,
        &sync_request(group, 1, &old, &[(&old, b"mine")]),
    );
    assert_eq!(synced.error_code, error::NONE);

    // It restarts: same instance id, no member id. Stable, same protocol: no rebalance.
    let mut restarted = connect(&broker);
    let rejoined = join(&mut restarted, 9, &request);
    assert_eq!(rejoined.error_code, error::NONE, "{rejoined:?}");
    let new = rejoined.member_id.to_string();
    assert_ne!(new, old);
    assert_eq!(rejoined.generation_id, 1);
    // v9: the leader learns it may skip the assignment.
    assert_eq!(rejoined.leader, new);
    assert!(rejoined.skip_assignment);
    assert_eq!(rejoined.members.len(), 1);
    assert_eq!(state(&mut client, group), "Stable");
    let synced = sync(&mut restarted, 5, &sync_request(group, 1, &new, &[]));
    assert_eq!(&synced.assignment[..], b"mine");

    // The old member id is fenced.
    assert_eq!(
        heartbeat(&mut client, 4, group, 1, &old, Some("instance-1")),
        error::FENCED_INSTANCE_ID
    );
    assert_eq!(
        heartbeat(&mut restarted, 4, group, 1, &new, Some("instance-1")),
        error::NONE
    );
    assert_eq!(
        heartbeat(&mut restarted, 4, group, 1, &new, Some("instance-2")),
        error::UNKNOWN_MEMBER_ID
    );
    let described = describe(&mut client, 5, group);
    assert_eq!(
        described.members[0].group_instance_id.as_deref(),
        Some("instance-1")
    );

    // An administrator removes it by instance id.
    let response = client
        .call(
            &LeaveGroupRequest {
                group_id: group.into(),
                members: vec![MemberIdentity {
                    member_id: "".into(),
                    group_instance_id: Some("instance-1".into()),
                    ..Default::default()
                }],
                ..Default::default()
            },
            4,
        )
        .unwrap();
    assert_eq!(response.members[0].error_code, error::NONE);
    assert_eq!(state(&mut client, group), "Empty");

    // The GroupMetadata record kept the instance id.
    let partition = partition_for(group, OFFSETS_PARTITIONS);
    let records = stored_records(data.path(), partition);
    let with_instance = records.iter().any(|r| match &r.value {
        Some((gregor_protocol::messages::GroupCoordinatorRecordValue::GroupMetadata(v), 3)) => v
            .members
            .iter()
            .any(|m| m.group_instance_id.as_deref() == Some("instance-1")),
        _ => false,
    });
    assert!(with_instance, "{records:#?}");
}

#[test]
fn requests_for_unknown_groups_and_empty_group_ids() {
    let data = fixture();
    let broker = start(&data, &[]);
    let mut client = connect(&broker);
    assert_eq!(
        heartbeat(&mut client, 4, "missing", 1, "m", None),
        error::UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        sync(&mut client, 5, &sync_request("missing", 1, "m", &[])).error_code,
        error::UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        leave(&mut client, 1, "missing", "m"),
        error::UNKNOWN_MEMBER_ID
    );
    let response = client
        .call(
            &LeaveGroupRequest {
                group_id: "missing".into(),
                members: vec![MemberIdentity {
                    member_id: "m".into(),
                    ..Default::default()
                }],
                ..Default::default()
            },
            3,
        )
        .unwrap();
    assert_eq!(response.error_code, error::NONE);
    assert_eq!(response.members[0].error_code, error::UNKNOWN_MEMBER_ID);

    // An empty group id is invalid for membership and commits.
    assert_eq!(
        join(
            &mut client,
            5,
            &join_request("", "", protocols(&[("range", b"s")]))
        )
        .error_code,
        error::INVALID_GROUP_ID
    );
    assert_eq!(
        sync(&mut client, 3, &sync_request("", 1, "m", &[])).error_code,
        error::INVALID_GROUP_ID
    );
    assert_eq!(
        heartbeat(&mut client, 2, "", 1, "m", None),
        error::INVALID_GROUP_ID
    );
    assert_eq!(leave(&mut client, 2, "", "m"), error::INVALID_GROUP_ID);
    let commits = commit(
        &mut client,
        8,
        &commit_request(
            8,
            "",
            -1,
            "",
            TOPIC,
            Default::default(),
            &[(0, 1, -1, None)],
        ),
    );
    assert_eq!(commits, [error::INVALID_GROUP_ID]);
    // ... but OffsetFetch accepts it (no offsets).
    assert_eq!(wire::committed(&mut client, ""), [-1, -1, -1]);
}
