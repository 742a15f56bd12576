//! OffsetCommit, OffsetFetch, DescribeGroups, ListGroups, DeleteGroups, the records of
//! `__consumer_offsets`, and what survives a restart.

use std::collections::BTreeMap;

use gregor_protocol::Uuid;
use gregor_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use gregor_protocol::messages::offset_commit_request::OffsetCommitRequestTopic;
use gregor_protocol::messages::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use gregor_protocol::messages::{GroupCoordinatorRecordKey, GroupCoordinatorRecordValue};

use crate::wire::*;

/// (topic id, partition, offset, error) of an OffsetFetch answer.
type FetchedPartition = (Uuid, i32, i64, i16);

/// Simple commits (generation -1, no member: a group without members) at every
/// OffsetCommit version, read back at every OffsetFetch version.
#[test]
fn offsets_committed_at_every_version_are_fetched_at_every_version() {
    let data = fixture();
    let broker = start(&data, &[]);
    let mut client = connect(&broker);
    let id = topic_id(&mut client, TOPIC);
    for commit_version in 2..=10i16 {
        let group = format!("simple-v{commit_version}");
        let offset = 100 + i64::from(commit_version);
        let metadata = format!("m{commit_version}");
        let request = commit_request(
            commit_version,
            &group,
            -1,
            "",
            TOPIC,
            id,
            &[(0, offset, 7, Some(&metadata)), (1, 5, -1, None)],
        );
        assert_eq!(
            commit(&mut client, commit_version, &request),
            [error::NONE, error::NONE],
            "commit v{commit_version}"
        );
        // Leader epochs are sent from OffsetCommit v6 and returned from OffsetFetch v5.
        let stored_epoch = if commit_version >= 6 { 7 } else { -1 };
        for fetch_version in 1..=10i16 {
            let (group_error, topics) = fetch(
                &mut client,
                fetch_version,
                &group,
                Some(&[(TOPIC, id, &[0, 1, 2])]),
            );
            assert_eq!(group_error, error::NONE);
            assert_eq!(topics.len(), 1);
            let expected_name = if fetch_version >= 10 {
                id.to_string()
            } else {
                TOPIC.to_string()
            };
            assert_eq!(topics[0].0, expected_name);
            let epoch = |e: i32| if fetch_version >= 5 { e } else { -1 };
            assert_eq!(
                topics[0].1,
                [
                    Fetched {
                        partition: 0,
                        offset,
                        leader_epoch: epoch(stored_epoch),
                        metadata: Some(metadata.clone()),
                        error_code: error::NONE,
                    },
                    Fetched {
                        partition: 1,
                        offset: 5,
                        leader_epoch: -1,
                        metadata: Some(String::new()),
                        error_code: error::NONE,
                    },
                    // Nothing committed: -1, no error.
                    Fetched {
                        partition: 2,
                        offset: -1,
                        leader_epoch: -1,
                        metadata: Some(String::new()),
                        error_code: error::NONE,
                    },
                ],
                "commit v{commit_version}, fetch v{fetch_version}"
            );
        }
        // All topics (null), from v2.
        for fetch_version in [2i16, 7, 8, 10] {
            let (_, topics) = fetch(&mut client, fetch_version, &group, None);
            assert_eq!(topics.len(), 1, "v{fetch_version}");
            let partitions: Vec<(i32, i64)> = topics[0]
                .1
                .iter()
                .map(|p| (p.partition, p.offset))
                .collect();
            assert_eq!(partitions, [(0, offset), (1, 5)], "v{fetch_version}");
        }
        // A simple group is listed (no protocol type) and Empty.
        let described = describe(&mut client, 5, &group);
        assert_eq!(&*described.group_state, "Empty");
        assert_eq!(&*described.protocol_type, "");
    }
    // Unknown groups answer -1 everywhere.
    assert_eq!(committed(&mut client, "never-committed"), [-1, -1, -1]);
    let (_, topics) = fetch(&mut client, 8, "never-committed", None);
    assert!(topics.is_empty());
}

#[test]
fn offset_fetch_of_several_groups_and_topic_ids() {
    let data = fixture();
    let broker = start(&data, &[]);
    let mut client = connect(&broker);
    let id = topic_id(&mut client, TOPIC);
    for (group, offset) in [("g-one", 11), ("g-two", 22)] {
        let request = commit_request(9, group, -1, "", TOPIC, id, &[(2, offset, -1, None)]);
        assert_eq!(commit(&mut client, 9, &request), [error::NONE]);
    }
    let unknown_id = Uuid::from_u128(0x1234);
    let response = client
        .call(
            &OffsetFetchRequest {
                groups: ["g-one", "g-two", "g-three"]
                    .iter()
                    .map(|g| OffsetFetchRequestGroup {
                        group_id: (*g).into(),
                        topics: Some(vec![
                            OffsetFetchRequestTopics {
                                topic_id: id,
                                partition_indexes: vec![2],
                                ..Default::default()
                            },
                            OffsetFetchRequestTopics {
                                topic_id: unknown_id,
                                partition_indexes: vec![0],
                                ..Default::default()
                            },
                        ]),
                        ..Default::default()
                    })
                    .collect(),
                require_stable: true,
                ..Default::default()
            },
            10,
        )
        .unwrap();
    let answers: Vec<(String, Vec<FetchedPartition>)> = response
        .groups
        .iter()
        .map(|g| {
            (
                g.group_id.to_string(),
                g.topics
                    .iter()
                    .flat_map(|t| {
                        t.partitions.iter().map(|p| {
                            (
                                t.topic_id,
                                p.partition_index,
                                p.committed_offset,
                                p.error_code,
                            )
                        })
                    })
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        answers,
        [
            (
                "g-one".to_string(),
                vec![
                    (id, 2, 11, error::NONE),
                    (unknown_id, 0, -1, error::UNKNOWN_TOPIC_ID)
                ]
            ),
            (
                "g-two".to_string(),
                vec![
                    (id, 2, 22, error::NONE),
                    (unknown_id, 0, -1, error::UNKNOWN_TOPIC_ID)
                ]
            ),
            (
                "g-three".to_string(),
                vec![
                    (id, 2, -1, error::NONE),
                    (unknown_id, 0, -1, error::UNKNOWN_TOPIC_ID)
                ]
            ),
        ]
    );
    // All topics of a group, by id (v10).
    let (_, topics) = fetch(&mut client, 10, "g-two", None);
    assert_eq!(topics.len(), 1);
    assert_eq!(topics[0].0, id.to_string());
}

#[test]
fn offset_commit_errors() {
    let data = fixture();
    let broker = start(&data, &[]);
    let mut client = connect(&broker);
    let id = topic_id(&mut client, TOPIC);
    let group = "checked";
    let (member, generation) = join_and_sync(&mut client, group, b"a");

    // The member, at its generation.
    let ok = commit_request(
        8,
        group,
        generation,
        &member,
        TOPIC,
        id,
        &[(0, 9, 3, Some("x"))],
    );
    assert_eq!(commit(&mut client, 8, &ok), [error::NONE]);
    // A wrong generation, an unknown member, no member in a group with members.
    let wrong = commit_request(
        8,
        group,
        generation + 1,
        &member,
        TOPIC,
        id,
        &[(0, 1, -1, None)],
    );
    assert_eq!(commit(&mut client, 8, &wrong), [error::ILLEGAL_GENERATION]);
    let stranger = commit_request(
        8,
        group,
        generation,
        "stranger",
        TOPIC,
        id,
        &[(0, 1, -1, None)],
    );
    assert_eq!(
        commit(&mut client, 8, &stranger),
        [error::UNKNOWN_MEMBER_ID]
    );
    let simple = commit_request(8, group, -1, "", TOPIC, id, &[(0, 1, -1, None)]);
    assert_eq!(commit(&mut client, 8, &simple), [error::UNKNOWN_MEMBER_ID]);
    assert_eq!(committed(&mut client, group), [9, -1, -1]);

    // A generation for a group that does not exist: ILLEGAL_GENERATION before v9,
    // GROUP_ID_NOT_FOUND from v9.
    let nowhere = commit_request(8, "nowhere", 3, "m", TOPIC, id, &[(0, 1, -1, None)]);
    assert_eq!(
        commit(&mut client, 8, &nowhere),
        [error::ILLEGAL_GENERATION]
    );
    let nowhere = commit_request(9, "nowhere", 3, "m", TOPIC, id, &[(0, 1, -1, None)]);
    assert_eq!(
        commit(&mut client, 9, &nowhere),
        [error::GROUP_ID_NOT_FOUND]
    );

    // Metadata over offset.metadata.max.bytes (4096), unknown partitions and topics.
    let long = "x".repeat(4097);
    let mixed = commit_request(
        8,
        group,
        generation,
        &member,
        TOPIC,
        id,
        &[
            (0, 10, -1, Some(&long)),
            (1, 10, -1, Some("fine")),
            (99, 1, -1, None),
        ],
    );
    assert_eq!(
        commit(&mut client, 8, &mixed),
        [
            error::OFFSET_METADATA_TOO_LARGE,
            error::NONE,
            error::UNKNOWN_TOPIC_OR_PARTITION
        ]
    );
    assert_eq!(committed(&mut client, group), [9, 10, -1]);
    let mut two_topics = commit_request(
        8,
        group,
        generation,
        &member,
        TOPIC,
        id,
        &[(2, 4, -1, None)],
    );
    two_topics.topics.push(OffsetCommitRequestTopic {
        name: "no-such-topic".into(),
        partitions: two_topics.topics[0].partitions.clone(),
        ..Default::default()
    });
    assert_eq!(
        commit(&mut client, 8, &two_topics),
        [error::NONE, error::UNKNOWN_TOPIC_OR_PARTITION]
    );
    let unknown_id = commit_request(
        10,
        group,
        generation,
        &member,
        TOPIC,
        Uuid::from_u128(9),
        &[(0, 1, -1, None)],
    );
    assert_eq!(
        commit(&mut client, 10, &unknown_id),
        [error::UNKNOWN_TOPIC_ID]
    );
    assert_eq!(committed(&mut client, group), [9, 10, 4]);
}

#[test]
fn describe_list_and_delete_groups() {
    let data = fixture();
    let broker = start(&data, &[]);
    let mut client = connect(&broker);
    let id = topic_id(&mut client, TOPIC);
    let (member, _) = join_and_sync(&mut client, "busy", b"a");
    let request = commit_request(
        8,
        "idle",
        -1,
        "",
        TOPIC,
        id,
        &[(0, 3, -1, None), (1, 4, -1, None)],
    );
    assert_eq!(commit(&mut client, 8, &request), [error::NONE, error::NONE]);

    // Unknown groups: "Dead" without an error before v6, GROUP_ID_NOT_FOUND from v6.
    for version in 0..=5 {
        let described = describe(&mut client, version, "ghost");
        assert_eq!(described.error_code, error::NONE, "v{version}");
        assert_eq!(&*described.group_state, "Dead");
        assert_eq!(&*described.protocol_type, "");
        assert!(described.members.is_empty());
    }
    let described = describe(&mut client, 6, "ghost");
    assert_eq!(described.error_code, error::GROUP_ID_NOT_FOUND);
    assert_eq!(
        described.error_message.as_deref(),
        Some("Group ghost not found.")
    );
    assert_eq!(&*described.group_state, "Dead");
    assert_eq!(described.authorized_operations, OPERATIONS_OMITTED);
    // Authorized operations (READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS: every
    // group operation of Kafka's AclEntry.supportedOperations) when asked for (v3+).
    let described = describe(&mut client, 3, "busy");
    assert_eq!(
        described.authorized_operations,
        (1 << 3) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 11)
    );
    assert_eq!(
        describe(&mut client, 2, "busy").authorized_operations,
        OPERATIONS_OMITTED
    );
    assert_eq!(
        &*describe(&mut client, 6, "busy").members[0].member_id,
        member
    );

    let listed = |groups: Vec<gregor_protocol::messages::list_groups_response::ListedGroup>| {
        groups
            .iter()
            .map(|g| {
                (
                    g.group_id.to_string(),
                    g.protocol_type.to_string(),
                    g.group_state.to_string(),
                    g.group_type.to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    let all = listed(list(&mut client, 5, &[], &[]));
    assert_eq!(
        all,
        [
            (
                "busy".into(),
                "consumer".into(),
                "Stable".into(),
                "classic".into()
            ),
            ("idle".into(), "".into(), "Empty".into(), "classic".into()),
        ]
    );
    let v0: Vec<String> = list(&mut client, 0, &[], &[])
        .iter()
        .map(|g| g.group_id.to_string())
        .collect();
    assert_eq!(v0, ["busy", "idle"]);
    // Filters, matched without case.
    let stable = listed(list(&mut client, 4, &["stable"], &[]));
    assert_eq!(stable.len(), 1);
    assert_eq!(stable[0].0, "busy");
    let empty = listed(list(&mut client, 5, &["Empty", "Dead"], &["Classic"]));
    assert_eq!(empty.len(), 1);
    assert_eq!(empty[0].0, "idle");
    assert!(list(&mut client, 5, &[], &["consumer"]).is_empty());

    // DeleteGroups: only empty groups.
    let response = client
        .call(
            &DeleteGroupsRequest {
                groups_names: vec!["busy".into(), "idle".into(), "ghost".into(), "idle".into()],
                ..Default::default()
            },
            2,
        )
        .unwrap();
    let results: Vec<(&str, i16)> = response
        .results
        .iter()
        .map(|r| (&*r.group_id, r.error_code))
        .collect();
    assert_eq!(
        results,
        [
            ("busy", error::NON_EMPTY_GROUP),
            ("idle", error::NONE),
            ("ghost", error::GROUP_ID_NOT_FOUND),
            ("idle", error::GROUP_ID_NOT_FOUND),
        ]
    );
    assert_eq!(committed(&mut client, "idle"), [-1, -1, -1]);
    let names: Vec<String> = list(&mut client, 3, &[], &[])
        .iter()
        .map(|g| g.group_id.to_string())
        .collect();
    assert_eq!(names, ["busy"]);

    // The deletion left tombstones: both offsets, then the group.
    let partition = partition_for("idle", OFFSETS_PARTITIONS);
    let records = stored_records(data.path(), partition);
    let idle: Vec<&StoredRecord> = records
        .iter()
        .filter(|r| match &r.key {
            GroupCoordinatorRecordKey::OffsetCommit(k) => &*k.group == "idle",
            GroupCoordinatorRecordKey::GroupMetadata(k) => &*k.group == "idle",
            _ => false,
        })
        .collect();
    let tombstones: Vec<String> = idle
        .iter()
        .filter(|r| r.value.is_none())
        .map(|r| match &r.key {
            GroupCoordinatorRecordKey::OffsetCommit(k) => {
                format!("offset {}-{}", k.topic, k.partition)
            }
            GroupCoordinatorRecordKey::GroupMetadata(_) => "group".to_string(),
            other => unreachable!("{other:?}"),
        })
        .collect();
    assert_eq!(
        tombstones,
        [
            format!("offset {TOPIC}-0"),
            format!("offset {TOPIC}-1"),
            "group".to_string()
        ]
    );
    // Once its member leaves, the group can go.
    assert_eq!(leave(&mut client, 0, "busy", &member), error::NONE);
    let response = client
        .call(
            &DeleteGroupsRequest {
                groups_names: vec!["busy".into()],
                ..Default::default()
            },
            0,
        )
        .unwrap();
    assert_eq!(response.results[0].error_code, error::NONE);
}

/// The records in `__consumer_offsets`: the partition Kafka would choose, OffsetCommitKey
/// (record type 1) with OffsetCommitValue v3 (v1 with a retention time), GroupMetadataKey
/// (record type 2) with GroupMetadataValue v3.
#[test]
fn records_in_consumer_offsets_use_kafkas_formats() {
    let data = fixture();
    let broker = start(&data, &[]);
    let mut client = connect(&broker);
    let id = topic_id(&mut client, TOPIC);
    let group = "recorded";
    let (member, generation) = join_and_sync(&mut client, group, b"the-assignment");
    let request = commit_request(
        8,
        group,
        generation,
        &member,
        TOPIC,
        id,
        &[(1, 42, 5, Some("meta"))],
    );
    assert_eq!(commit(&mut client, 8, &request), [error::NONE]);
    let mut with_retention = commit_request(
        2,
        group,
        generation,
        &member,
        TOPIC,
        id,
        &[(2, 7, -1, None)],
    );
    with_retention.retention_time_ms = 3_600_000;
    assert_eq!(commit(&mut client, 2, &with_retention), [error::NONE]);

    let partition = partition_for(group, OFFSETS_PARTITIONS);
    // Nothing in the other partitions.
    for other in (0..OFFSETS_PARTITIONS).filter(|p| *p != partition) {
        assert!(
            stored_records(data.path(), other).is_empty(),
            "partition {other}"
        );
    }
    let records = stored_records(data.path(), partition);
    let mut metadata_generations = Vec::new();
    let mut offsets = BTreeMap::new();
    for record in &records {
        match (&record.key, &record.value) {
            (
                GroupCoordinatorRecordKey::GroupMetadata(key),
                Some((GroupCoordinatorRecordValue::GroupMetadata(value), version)),
            ) => {
                assert_eq!(&*key.group, group);
                assert_eq!(*version, 3);
                metadata_generations.push(value.generation);
                if value.generation == generation {
                    assert_eq!(&*value.protocol_type, "consumer");
                    assert_eq!(value.protocol.as_deref(), Some("range"));
                    assert_eq!(value.leader.as_deref(), Some(member.as_str()));
                    assert!(value.current_state_timestamp > 0);
                    assert_eq!(value.members.len(), 1);
                    let m = &value.members[0];
                    assert_eq!(&*m.member_id, member);
                    assert_eq!(&*m.client_id, "gregor-tests");
                    assert_eq!(&*m.client_host, "/127.0.0.1");
                    assert_eq!(m.session_timeout, 10_000);
                    assert_eq!(m.rebalance_timeout, 10_000);
                    assert_eq!(m.group_instance_id, None);
                    assert_eq!(&m.subscription[..], b"subscription");
                    assert_eq!(&m.assignment[..], b"the-assignment");
                }
            }
            (
                GroupCoordinatorRecordKey::OffsetCommit(key),
                Some((GroupCoordinatorRecordValue::OffsetCommit(value), version)),
            ) => {
                assert_eq!(&*key.group, group);
                assert_eq!(&*key.topic, TOPIC);
                offsets.insert(key.partition, (value.clone(), *version));
            }
            other => panic!("unexpected record {other:?}"),
        }
    }
    // The new group's empty record (generation 0), then the stable generation.
    assert_eq!(metadata_generations, [0, generation]);
    let (value, version) = &offsets[&1];
    assert_eq!(*version, 3);
    assert_eq!(
        (value.offset, value.leader_epoch, &*value.metadata),
        (42, 5, "meta")
    );
    assert!(value.commit_timestamp > 0);
    let (value, version) = &offsets[&2];
    assert_eq!(*version, 1, "a retention time makes Kafka write v1");
    assert_eq!(value.expire_timestamp, value.commit_timestamp + 3_600_000);
}

/// Committed offsets, simple groups and a stable group's members are loaded back from
/// `__consumer_offsets` on start-up; a member keeps heartbeating with its generation.
#[test]
fn groups_and_offsets_survive_a_restart() {
    let data = fixture();
    let mut broker = start(&data, &[]);
    let mut client = connect(&broker);
    let id = topic_id(&mut client, TOPIC);
    let mut request = join_request("durable", "", protocols(&[("range", b"sub")]));
    request.session_timeout_ms = 30_000;
    let joined = join_new(&mut client, 5, request);
    let member = joined.member_id.to_string();
    let generation = joined.generation_id;
    sync(
        &mut client,
        3,
        &sync_request("durable", generation, &member, &[(&member, b"asg")]),
    );
    let request = commit_request(
        8,
        "durable",
        generation,
        &member,
        TOPIC,
        id,
        &[(0, 12, 2, Some("d"))],
    );
    assert_eq!(commit(&mut client, 8, &request), [error::NONE]);
    for (partition, offset) in [(0, 1), (1, 2), (2, 3), (1, 20)] {
        let request = commit_request(
            7,
            "simple",
            -1,
            "",
            TOPIC,
            id,
            &[(partition, offset, -1, None)],
        );
        assert_eq!(commit(&mut client, 7, &request), [error::NONE]);
    }
    let request = commit_request(7, "dropped", -1, "", TOPIC, id, &[(0, 1, -1, None)]);
    assert_eq!(commit(&mut client, 7, &request), [error::NONE]);
    let deleted = client
        .call(
            &DeleteGroupsRequest {
                groups_names: vec!["dropped".into()],
                ..Default::default()
            },
            1,
        )
        .unwrap();
    assert_eq!(deleted.results[0].error_code, error::NONE);
    // A member that will not come back after the restart.
    let mut request = join_request("vanishing", "", protocols(&[("range", b"sub")]));
    request.session_timeout_ms = 6000;
    let gone = join_new(&mut client, 5, request);
    let gone_member = gone.member_id.to_string();
    sync(
        &mut client,
        3,
        &sync_request("vanishing", 1, &gone_member, &[(&gone_member, b"x")]),
    );
    drop(client);
    assert!(broker.stop().success());

    let broker = start(&data, &[]);
    let mut client = connect(&broker);
    // Loaded members get their session timers again (Kafka's onLoaded).
    assert_eq!(state(&mut client, "vanishing"), "Stable");
    assert_eq!(committed(&mut client, "simple"), [1, 20, 3]);
    assert_eq!(committed(&mut client, "durable"), [12, -1, -1]);
    assert_eq!(committed(&mut client, "dropped"), [-1, -1, -1]);
    let (_, topics) = fetch(&mut client, 7, "durable", Some(&[(TOPIC, id, &[0])]));
    assert_eq!(topics[0].1[0].leader_epoch, 2);
    assert_eq!(topics[0].1[0].metadata.as_deref(), Some("d"));
    let names: Vec<(String, String)> = list(&mut client, 4, &[], &[])
        .iter()
        .map(|g| (g.group_id.to_string(), g.group_state.to_string()))
        .collect();
    assert_eq!(
        names,
        [
            ("durable".to_string(), "Stable".to_string()),
            ("simple".to_string(), "Empty".to_string()),
            ("vanishing".to_string(), "Stable".to_string()),
        ]
    );
    let described = describe(&mut client, 5, "durable");
    assert_eq!(&*described.protocol_data, "range");
    assert_eq!(&*described.members[0].member_id, member);
    assert_eq!(&described.members[0].member_assignment[..], b"asg");
    // The member carries on at its generation.
    assert_eq!(
        heartbeat(&mut client, 4, "durable", generation, &member, None),
        error::NONE
    );
    let synced = sync(
        &mut client,
        5,
        &sync_request("durable", generation, &member, &[]),
    );
    assert_eq!(&synced.assignment[..], b"asg");
    let request = commit_request(
        8,
        "durable",
        generation,
        &member,
        TOPIC,
        id,
        &[(0, 13, -1, None)],
    );
    assert_eq!(commit(&mut client, 8, &request), [error::NONE]);
    assert_eq!(leave(&mut client, 1, "durable", &member), error::NONE);
    wait_until(
        std::time::Duration::from_secs(15),
        "the member that did not come back to expire",
        || state(&mut client, "vanishing") == "Empty",
    );
}

#[test]
fn expired_offsets_and_empty_groups_are_cleaned_up() {
    let data = fixture();
    // Offsets expire one minute after their commit (or after the group became empty);
    // the check runs every 500 ms.
    let broker = start(
        &data,
        &[
            ("offsets.retention.minutes", "1"),
            ("offsets.retention.check.interval.ms", "500"),
        ],
    );
    let mut client = connect(&broker);
    let id = topic_id(&mut client, TOPIC);
    // OffsetCommit v2 with a retention time of 1 s: the offset expires then.
    let mut request = commit_request(2, "short-lived", -1, "", TOPIC, id, &[(0, 5, -1, None)]);
    request.retention_time_ms = 1000;
    assert_eq!(commit(&mut client, 2, &request), [error::NONE]);
    let request = commit_request(8, "long-lived", -1, "", TOPIC, id, &[(0, 6, -1, None)]);
    assert_eq!(commit(&mut client, 8, &request), [error::NONE]);
    assert_eq!(committed(&mut client, "short-lived"), [5, -1, -1]);
    wait_until(
        std::time::Duration::from_secs(10),
        "the offset to expire",
        || committed(&mut client, "short-lived") == [-1, -1, -1],
    );
    // The group had nothing left and was empty: deleted too.
    assert_eq!(
        describe(&mut client, 6, "short-lived").error_code,
        error::GROUP_ID_NOT_FOUND
    );
    assert_eq!(committed(&mut client, "long-lived"), [6, -1, -1]);
    let records = stored_records(
        data.path(),
        partition_for("short-lived", OFFSETS_PARTITIONS),
    );
    let tombstones = records
        .iter()
        .filter(|r| r.value.is_none())
        .filter(|r| match &r.key {
            GroupCoordinatorRecordKey::OffsetCommit(k) => &*k.group == "short-lived",
            GroupCoordinatorRecordKey::GroupMetadata(k) => &*k.group == "short-lived",
            _ => false,
        })
        .count();
    assert_eq!(tombstones, 2);
}

/// Deleting a topic deletes the offsets committed for it (Kafka's `onTopicsDeleted`).
#[test]
fn offsets_of_a_deleted_topic_are_deleted() {
    use gregor_protocol::messages::delete_topics_request::DeleteTopicsRequest;
    let data = fixture();
    let broker = start(&data, &[]);
    let mut client = connect(&broker);
    let id = topic_id(&mut client, TOPIC);
    let request = commit_request(
        8,
        "doomed",
        -1,
        "",
        TOPIC,
        id,
        &[(0, 3, -1, None), (2, 4, -1, None)],
    );
    assert_eq!(commit(&mut client, 8, &request), [error::NONE, error::NONE]);
    let response = client
        .call(
            &DeleteTopicsRequest {
                topic_names: vec![TOPIC.into()],
                timeout_ms: 30_000,
                ..Default::default()
            },
            4,
        )
        .unwrap();
    assert_eq!(response.responses[0].error_code, error::NONE);
    wait_until(
        std::time::Duration::from_secs(10),
        "the offsets of the deleted topic to go",
        || fetch(&mut client, 8, "doomed", None).1.is_empty(),
    );
    let records = stored_records(data.path(), partition_for("doomed", OFFSETS_PARTITIONS));
    let tombstones: Vec<i32> = records
        .iter()
        .filter(|r| r.value.is_none())
        .filter_map(|r| match &r.key {
            GroupCoordinatorRecordKey::OffsetCommit(k) => Some(k.partition),
            _ => None,
        })
        .collect();
    assert_eq!(tombstones, [0, 2]);
}
