//! The OffsetCommit and OffsetFetch versions Kafka 4 removed, served as Kafka 3.9 did in
//! KRaft mode: OffsetCommit v1 (the group coordinator's generation and member checks, the
//! per-partition commit timestamp stored and counted from by offset expiration), v0 and
//! OffsetFetch v0 refused with `UNSUPPORTED_VERSION` (Kafka 3.9 kept v0 offsets in
//! ZooKeeper, which a KRaft broker does not have).

use gregor_protocol::Uuid;
use gregor_protocol::error_code::UNSUPPORTED_VERSION;
use gregor_protocol::messages::offset_commit_request::OffsetCommitRequest;
use gregor_protocol::messages::{GroupCoordinatorRecordKey, GroupCoordinatorRecordValue};

use crate::wire::*;

/// A v1 commit of [`TOPIC`]: (partition, offset, commit timestamp) per partition.
fn v1_request(
    group: &str,
    generation: i32,
    member_id: &str,
    offsets: &[(i32, i64, i64)],
) -> OffsetCommitRequest {
    let plain: Vec<(i32, i64, i32, Option<&str>)> = offsets
        .iter()
        .map(|&(partition, offset, _)| (partition, offset, -1, Some("v1")))
        .collect();
    let mut request = commit_request(1, group, generation, member_id, TOPIC, Uuid::nil(), &plain);
    for (partition, &(_, _, timestamp)) in request.topics[0].partitions.iter_mut().zip(offsets) {
        partition.commit_timestamp = timestamp;
    }
    request
}

/// The stored OffsetCommit values of `group`: (partition, value record version,
/// commit timestamp, expire timestamp), latest per partition.
fn stored_commits(data: &crate::support::DataDir, group: &str) -> Vec<(i32, i16, i64, i64)> {
    let mut latest = std::collections::BTreeMap::new();
    for record in stored_records(data.path(), partition_for(group, OFFSETS_PARTITIONS)) {
        if let (
            GroupCoordinatorRecordKey::OffsetCommit(key),
            Some((GroupCoordinatorRecordValue::OffsetCommit(value), version)),
        ) = (&record.key, &record.value)
        {
            if &*key.group == group {
                latest.insert(
                    key.partition,
                    (
                        version.to_owned(),
                        value.commit_timestamp,
                        value.expire_timestamp,
                    ),
                );
            }
        }
    }
    latest
        .into_iter()
        .map(|(p, (v, commit, expire))| (p, v, commit, expire))
        .collect()
}

/// Offsets committed at v1 (simple group) are read back at v1 to v10; the commit
/// timestamp a v1 client gives is the one stored, -1 stores the broker's clock, and no
/// expire timestamp is written (v1 has no retention time), as Kafka 3.9's
/// `OffsetAndMetadata.fromRequest`.
#[test]
fn offsets_committed_at_v1_are_fetched_at_every_version_and_keep_their_timestamp() {
    let data = fixture();
    let broker = start(&data, &[]);
    let mut client = connect(&broker);
    let group = "legacy-v1";
    let before = now_ms();
    let request = v1_request(group, -1, "", &[(0, 11, 1_600_000_000_000), (1, 12, -1)]);
    assert_eq!(commit(&mut client, 1, &request), [error::NONE, error::NONE]);
    let id = topic_id(&mut client, TOPIC);
    for version in 1..=10i16 {
        let (group_error, topics) = fetch(
            &mut client,
            version,
            group,
            Some(&[(TOPIC, id, &[0, 1, 2])]),
        );
        assert_eq!(group_error, error::NONE, "v{version}");
        let offsets: Vec<(i32, i64, Option<String>)> = topics[0]
            .1
            .iter()
            .map(|p| (p.partition, p.offset, p.metadata.clone()))
            .collect();
        assert_eq!(
            offsets,
            [
                (0, 11, Some("v1".to_string())),
                (1, 12, Some("v1".to_string())),
                (2, -1, Some(String::new())),
            ],
            "fetch v{version}"
        );
    }
    let stored = stored_commits(&data, group);
    assert_eq!(stored.len(), 2, "{stored:?}");
    // Value v3 (no expire timestamp), as Kafka writes without a retention time.
    assert_eq!(stored[0], (0, 3, 1_600_000_000_000, -1));
    let (partition, version, commit_ts, expire) = stored[1];
    assert_eq!((partition, version, expire), (1, 3, -1));
    assert!(commit_ts >= before, "{commit_ts} < {before}");
}

/// Kafka 3.9 stored v0 commits in ZooKeeper; in KRaft mode it answered every partition
/// with UNSUPPORTED_VERSION once one passed the metadata checks, and stored nothing.
/// OffsetFetch v0 likewise answers UNSUPPORTED_VERSION, offset -1, for each partition.
#[test]
fn offset_commit_and_fetch_v0_are_refused_as_kafka_3_9_in_kraft_mode() {
    let data = fixture();
    let broker = start(&data, &[]);
    let mut client = connect(&broker);
    let group = "legacy-v0";
    let mut request = commit_request(0, group, -1, "", TOPIC, Uuid::nil(), &[(0, 5, -1, None)]);
    request.topics[0].partitions.extend(
        commit_request(0, group, -1, "", TOPIC, Uuid::nil(), &[(9, 6, -1, None)]).topics[0]
            .partitions
            .clone(),
    );
    assert_eq!(
        commit(&mut client, 0, &request),
        [UNSUPPORTED_VERSION, UNSUPPORTED_VERSION]
    );
    assert_eq!(committed(&mut client, group), [-1, -1, -1]);
    // Nothing was written: `__consumer_offsets` was not even created.
    let offsets_dir = data.path().join(format!(
        "{OFFSETS_TOPIC}-{}",
        partition_for(group, OFFSETS_PARTITIONS)
    ));
    assert!(!offsets_dir.exists() || stored_commits(&data, group).is_empty());
    // Nothing passes the metadata checks: the per-partition errors, as Kafka answers first.
    let unknown = commit_request(
        0,
        group,
        -1,
        "",
        "missing",
        Uuid::nil(),
        &[(0, 5, -1, None)],
    );
    assert_eq!(
        commit(&mut client, 0, &unknown),
        [error::UNKNOWN_TOPIC_OR_PARTITION]
    );

    // A v1 commit is stored, but v0 still cannot read it (Kafka 3.9 read v0 from ZooKeeper).
    let request = v1_request(group, -1, "", &[(0, 7, -1)]);
    assert_eq!(commit(&mut client, 1, &request), [error::NONE]);
    let (group_error, topics) = fetch(
        &mut client,
        0,
        group,
        Some(&[(TOPIC, Uuid::nil(), &[0, 1])]),
    );
    assert_eq!(group_error, error::NONE);
    assert_eq!(topics.len(), 1);
    assert_eq!(topics[0].0, TOPIC);
    let answers: Vec<(i32, i64, i16)> = topics[0]
        .1
        .iter()
        .map(|p| (p.partition, p.offset, p.error_code))
        .collect();
    assert_eq!(
        answers,
        [(0, -1, UNSUPPORTED_VERSION), (1, -1, UNSUPPORTED_VERSION)]
    );
    assert_eq!(committed(&mut client, group), [7, -1, -1]);
}

/// v1 carries the generation and member id: Kafka's `ClassicGroup.validateOffsetCommit`
/// applies as from v2.
#[test]
fn offset_commit_v1_checks_the_generation_and_the_member() {
    let data = fixture();
    let broker = start(&data, &[]);
    let mut client = connect(&broker);
    let group = "legacy-members";
    let (member, generation) = join_and_sync(&mut client, group, b"assignment");
    let commit_v1 = |client: &mut crate::support::RawClient, generation: i32, member: &str| {
        commit(
            client,
            1,
            &v1_request(group, generation, member, &[(2, 9, -1)]),
        )
    };
    assert_eq!(commit_v1(&mut client, generation, &member), [error::NONE]);
    assert_eq!(
        commit_v1(&mut client, generation + 1, &member),
        [error::ILLEGAL_GENERATION]
    );
    assert_eq!(
        commit_v1(&mut client, generation, "someone-else"),
        [error::UNKNOWN_MEMBER_ID]
    );
    // A simple commit to a group with members.
    assert_eq!(commit_v1(&mut client, -1, ""), [error::UNKNOWN_MEMBER_ID]);
    // A generation for a group that does not exist (before v9: ILLEGAL_GENERATION).
    let request = v1_request("legacy-nobody", 3, "m", &[(0, 1, -1)]);
    assert_eq!(
        commit(&mut client, 1, &request),
        [error::ILLEGAL_GENERATION]
    );
    assert_eq!(committed(&mut client, group), [-1, -1, 9]);
}

/// Offset expiration counts from the stored commit timestamp: a v1 commit dated two hours
/// ago expires at the next check under a one-minute retention, one dated now stays.
#[test]
fn a_v1_commit_timestamp_in_the_past_expires_by_the_retention() {
    let data = fixture();
    let broker = start(
        &data,
        &[
            ("offsets.retention.minutes", "1"),
            ("offsets.retention.check.interval.ms", "500"),
        ],
    );
    let mut client = connect(&broker);
    let two_hours_ago = now_ms() - 2 * 3_600_000;
    let request = v1_request("legacy-old", -1, "", &[(0, 5, two_hours_ago)]);
    assert_eq!(commit(&mut client, 1, &request), [error::NONE]);
    let request = v1_request("legacy-new", -1, "", &[(0, 6, -1)]);
    assert_eq!(commit(&mut client, 1, &request), [error::NONE]);
    wait_until(
        std::time::Duration::from_secs(30),
        "the back-dated offset to expire",
        || committed(&mut client, "legacy-old") == [-1, -1, -1],
    );
    assert_eq!(committed(&mut client, "legacy-new"), [6, -1, -1]);
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since.as_millis()).expect("milliseconds fit")
}
