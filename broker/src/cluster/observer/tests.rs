//! Tests of the observer's local copy ([`FollowerLog`]) with batches a real quorum's
//! leader answers a Fetch with (an in-process single voter); the fetch loop itself runs
//! against real processes in `broker/tests/observer.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use gregor_protocol::messages::feature_level_record::FeatureLevelRecord;
use gregor_protocol::messages::topic_record::TopicRecord;
use gregor_protocol::metadata_frame::VersionedRecord;
use gregor_protocol::{MetadataRecord, Uuid};

use super::FollowerLog;
use crate::cluster::controller::METADATA_VERSION;
use crate::cluster::image::METADATA_VERSION_FEATURE;
use crate::cluster::metadata_log::MetadataLogOptions;
use crate::cluster::quorum::fetch_serve::{FetchOutcome, MetadataFetch};
use crate::cluster::quorum::{Quorum, QuorumOptions, VoterNode};
use crate::cluster::replay;

fn topic(name: &str) -> VersionedRecord {
    VersionedRecord {
        version: 0,
        record: MetadataRecord::Topic(TopicRecord {
            name: name.to_string().into(),
            topic_id: Uuid::new_v4(),
            ..Default::default()
        }),
    }
}

fn metadata_version() -> VersionedRecord {
    VersionedRecord {
        version: 0,
        record: MetadataRecord::FeatureLevel(FeatureLevelRecord {
            name: METADATA_VERSION_FEATURE.into(),
            feature_level: METADATA_VERSION,
            ..Default::default()
        }),
    }
}

async fn single_voter(dir: &std::path::Path) -> Quorum {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let voters: BTreeMap<i32, VoterNode> = [(1, VoterNode::new("127.0.0.1", port))].into();
    let mut options = QuorumOptions::new(1, dir.to_path_buf(), voters);
    options.cluster_id = Some("observer-test".to_string());
    Quorum::open(options).await.expect("open")
}

/// What the leader sends a fetcher at `log`'s position: its batches and high watermark.
fn fetch_from(quorum: &Quorum, log: &FollowerLog) -> (bytes::Bytes, i64) {
    let answer = quorum.answer_fetch(&MetadataFetch {
        fetch_offset: log.fetch_offset(),
        last_fetched_epoch: log.last_fetched_epoch(),
        current_leader_epoch: quorum.epoch(),
        max_bytes: 1 << 20,
    });
    match answer.outcome {
        FetchOutcome::Records(bytes) => (bytes, answer.high_watermark),
        other => panic!("records expected: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copy_keeps_committed_batches_builds_the_image_and_survives_a_restart() {
    let leader_dir = tempfile::tempdir().unwrap();
    let copy_dir = tempfile::tempdir().unwrap();
    let quorum = single_voter(leader_dir.path()).await;
    quorum
        .propose(vec![metadata_version(), topic("a")])
        .await
        .unwrap();
    let options = MetadataLogOptions::new(2);
    let mut log = FollowerLog::open(copy_dir.path(), options.clone()).unwrap();
    assert_eq!(log.fetch_offset(), 0);
    assert_eq!(log.applied_offset(), -1);

    let (bytes, hw) = fetch_from(&quorum, &log);
    assert!(log.add_fetched(bytes.clone()).unwrap() > 0);
    // The same batches again are skipped (a fetch answered twice).
    assert_eq!(log.add_fetched(bytes).unwrap(), 0);
    // Nothing is committed below offset 0: the batches stay in memory.
    assert!(!log.commit_to(0).unwrap());
    assert!(log.image().topic("a").is_none());
    assert!(log.commit_to(hw).unwrap());
    assert!(log.image().topic("a").is_some());
    assert_eq!(log.applied_offset(), hw - 1);
    assert_eq!(log.fetch_offset(), hw);

    quorum.propose(vec![topic("b")]).await.unwrap();
    let (bytes, hw) = fetch_from(&quorum, &log);
    log.add_fetched(bytes).unwrap();
    log.commit_to(hw).unwrap();
    assert!(log.image().topic("b").is_some());
    drop(log);

    // The disk holds Kafka's segments: a restart replays them and continues at the end.
    let loaded = replay::load(copy_dir.path()).unwrap();
    assert!(loaded.image.topic("b").is_some());
    let log = FollowerLog::open(copy_dir.path(), options).unwrap();
    assert_eq!(log.fetch_offset(), hw);
    assert!(log.image().topic("a").is_some());
    assert_eq!(log.last_fetched_epoch(), quorum.epoch());
    quorum.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diverging_epoch_drops_the_uncommitted_tail() {
    let leader_dir = tempfile::tempdir().unwrap();
    let copy_dir = tempfile::tempdir().unwrap();
    let quorum = single_voter(leader_dir.path()).await;
    quorum
        .propose(vec![metadata_version(), topic("a")])
        .await
        .unwrap();
    let mut log = FollowerLog::open(copy_dir.path(), MetadataLogOptions::new(2)).unwrap();
    let (bytes, hw) = fetch_from(&quorum, &log);
    log.add_fetched(bytes).unwrap();
    // The next fetch starts past what is held in memory.
    let beyond = crate::cluster::quorum::entry::decode_entries(fetch_from(&quorum, &log).0);
    assert_eq!(beyond.unwrap().len(), 0, "nothing past what is held");
    // A high watermark of 1 commits only the first batch; the rest stays in memory.
    log.commit_to(1).unwrap();
    let committed_end = log.applied_offset() + 1;
    assert!(committed_end < hw, "some batches are still held in memory");
    // The leader says the log diverges at the committed end: the tail goes.
    assert!(!log.truncate_to(committed_end).unwrap());
    assert_eq!(log.fetch_offset(), committed_end);
    // Fetching again brings it back.
    let (bytes, hw) = fetch_from(&quorum, &log);
    log.add_fetched(bytes).unwrap();
    log.commit_to(hw).unwrap();
    assert!(log.image().topic("a").is_some());
    quorum.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetcher_below_the_log_start_installs_the_leaders_snapshot_in_chunks() {
    use gregor_protocol::error_code;
    let leader_dir = tempfile::tempdir().unwrap();
    let copy_dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let voters: BTreeMap<i32, VoterNode> = [(1, VoterNode::new("127.0.0.1", port))].into();
    let mut options = QuorumOptions::new(1, leader_dir.path().to_path_buf(), voters);
    options.snapshot_after_entries = 10;
    options.entries_kept_after_snapshot = 0;
    options.log.segment_bytes = 512;
    let quorum = Quorum::open(options).await.expect("open");
    quorum
        .propose(vec![metadata_version(), topic("a")])
        .await
        .unwrap();
    for i in 0..40 {
        quorum.propose(vec![topic(&format!("t{i}"))]).await.unwrap();
    }
    quorum
        .raft()
        .wait(Some(Duration::from_secs(120)))
        .metrics(|m| m.purged.is_some(), "a purged log")
        .await
        .expect("purged");
    let mut log = FollowerLog::open(copy_dir.path(), MetadataLogOptions::new(2)).unwrap();
    let answer = quorum.answer_fetch(&MetadataFetch {
        fetch_offset: 0,
        last_fetched_epoch: 0,
        current_leader_epoch: quorum.epoch(),
        max_bytes: 1 << 20,
    });
    let FetchOutcome::Snapshot(id) = answer.outcome else {
        panic!("a snapshot id expected: {answer:?}");
    };
    // Refusals first.
    let missing = replay::SnapshotId {
        end_offset: id.end_offset + 1000,
        epoch: id.epoch,
    };
    assert_eq!(
        quorum.read_snapshot(missing, 0, 100),
        Err(error_code::SNAPSHOT_NOT_FOUND)
    );
    assert_eq!(
        quorum.read_snapshot(id, i64::MAX, 100),
        Err(error_code::POSITION_OUT_OF_RANGE)
    );
    // In chunks of 100 bytes, as FetchSnapshot sends them.
    let mut bytes = Vec::new();
    loop {
        let chunk = quorum.read_snapshot(id, bytes.len() as i64, 100).unwrap();
        assert_eq!(chunk.position, bytes.len() as i64);
        assert!(chunk.bytes.len() <= 100);
        bytes.extend_from_slice(&chunk.bytes);
        if bytes.len() as i64 == chunk.size {
            break;
        }
    }
    log.install_snapshot(id, &bytes).unwrap();
    assert_eq!(log.fetch_offset(), id.end_offset);
    assert!(log.image().topic("t5").is_some());
    // A snapshot that does not read is refused and not kept.
    let bad = replay::SnapshotId {
        end_offset: id.end_offset + 1,
        epoch: id.epoch,
    };
    assert!(log.install_snapshot(bad, b"not a snapshot").is_err());
    assert_eq!(log.fetch_offset(), id.end_offset);
    // Then the log after the snapshot.
    quorum.propose(vec![topic("after")]).await.unwrap();
    let (records, hw) = fetch_from(&quorum, &log);
    log.add_fetched(records).unwrap();
    log.commit_to(hw).unwrap();
    let leader = crate::cluster::snapshot::image_records(&quorum.image()).unwrap();
    let copy = crate::cluster::snapshot::image_records(log.image()).unwrap();
    assert_eq!(leader, copy);
    drop(log);
    let reopened = FollowerLog::open(copy_dir.path(), MetadataLogOptions::new(2)).unwrap();
    assert!(reopened.image().topic("after").is_some());
    quorum.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copy_writes_its_own_snapshots_and_trims_the_log_behind_them() {
    use crate::cluster::snapshot_retention::{RetentionPolicy, list_snapshots};
    use crate::cluster::snapshot_trigger::SnapshotOptions;

    let leader_dir = tempfile::tempdir().unwrap();
    let copy_dir = tempfile::tempdir().unwrap();
    let quorum = single_voter(leader_dir.path()).await;
    quorum.propose(vec![metadata_version()]).await.unwrap();
    let mut options = MetadataLogOptions::new(2);
    // One segment per batch or so, so that retention has whole segments to delete.
    options.segment_bytes = 200;
    // A snapshot after every batch applied; retention keeps as little as it may.
    let snapshots = SnapshotOptions {
        max_bytes_between: 1,
        max_interval_ms: 0,
        retention: RetentionPolicy {
            retention_bytes: 0,
            retention_ms: -1,
        },
    };
    let mut log = FollowerLog::open(copy_dir.path(), options.clone())
        .unwrap()
        .with_snapshots(snapshots);
    let mut written = Vec::new();
    for round in 0..6 {
        quorum
            .propose(vec![topic(&format!("t{round}"))])
            .await
            .unwrap();
        let (bytes, hw) = fetch_from(&quorum, &log);
        log.add_fetched(bytes).unwrap();
        assert!(log.commit_to(hw).unwrap());
        // Each round's snapshot finishes before the next one starts.
        written.extend(log.finish_snapshot());
    }
    assert!(written.len() >= 5, "a snapshot per round: {written:?}");
    let last = written.last().unwrap().id;
    assert_eq!(
        last.end_offset,
        log.fetch_offset(),
        "the image up to the log end"
    );

    // Retention kept the newest snapshot and dropped the segments and snapshots behind
    // the older ones.
    let dir = copy_dir.path().join(replay::METADATA_PARTITION_DIR);
    let kept = list_snapshots(&dir).unwrap();
    assert!(
        kept.len() < written.len(),
        "older snapshots deleted: {kept:?}"
    );
    assert!(kept.iter().any(|s| s.id == last));
    let start = crate::cluster::metadata_log::MetadataLog::open_replica(
        copy_dir.path(),
        &replay::load(copy_dir.path()).unwrap(),
        options.clone(),
    )
    .unwrap()
    .log_start_offset()
    .unwrap();
    assert!(start > 0, "the log start moved past deleted segments");
    drop(log);

    // A restart starts from the snapshot and has every topic.
    let loaded = replay::load(copy_dir.path()).unwrap();
    assert!(loaded.snapshot.is_some());
    let reopened = FollowerLog::open(copy_dir.path(), options).unwrap();
    for round in 0..6 {
        assert!(
            reopened.image().topic(&format!("t{round}")).is_some(),
            "t{round}"
        );
    }
    assert_eq!(reopened.fetch_offset(), last.end_offset);
    quorum.shutdown().await;
}
