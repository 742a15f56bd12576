//! Tests of the leader's answers to the metadata log's Fetch (`fetch_serve.rs`), on real
//! openraft nodes in this process (their directories temporary, RPCs over 127.0.0.1).
//! Nothing is timed; waits are bounded by generous timeouts.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use gregor_protocol::error_code;
use gregor_protocol::messages::feature_level_record::FeatureLevelRecord;
use gregor_protocol::messages::topic_record::TopicRecord;
use gregor_protocol::metadata_frame::VersionedRecord;
use gregor_protocol::{MetadataRecord, Uuid};
use tokio::net::TcpListener;

use super::entry::{self, QuorumPayload};
use super::fetch_serve::{FetchOutcome, MetadataFetch};
use super::{Quorum, QuorumOptions, VoterNode};
use crate::cluster::controller::METADATA_VERSION;
use crate::cluster::image::METADATA_VERSION_FEATURE;

const WAIT: Duration = Duration::from_secs(120);

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

/// `n` voters with their listeners, bound at once (so no other test takes the ports).
fn voters(
    n: i32,
) -> (
    BTreeMap<i32, VoterNode>,
    BTreeMap<i32, std::net::TcpListener>,
) {
    let mut voters = BTreeMap::new();
    let mut listeners = BTreeMap::new();
    for id in 1..=n {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        voters.insert(id, VoterNode::new("127.0.0.1", port));
        listeners.insert(id, listener);
    }
    (voters, listeners)
}

async fn open(
    root: &Path,
    id: i32,
    voters: &BTreeMap<i32, VoterNode>,
    listener: std::net::TcpListener,
    tweak: impl Fn(&mut QuorumOptions),
) -> Quorum {
    let dir = root.join(format!("node-{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut options = QuorumOptions::new(id, dir, voters.clone());
    options.cluster_id = Some("fetch-test".to_string());
    options.election_timeout_ms = (400, 800);
    options.heartbeat_interval_ms = 100;
    tweak(&mut options);
    let listener = TcpListener::from_std(listener).unwrap();
    let quorum = Quorum::open(options).await.expect("open the quorum");
    quorum.serve(listener);
    quorum
}

fn fetch(offset: i64, last_epoch: i32, epoch: i32) -> MetadataFetch {
    MetadataFetch {
        fetch_offset: offset,
        last_fetched_epoch: last_epoch,
        current_leader_epoch: epoch,
        max_bytes: 1 << 20,
    }
}

fn records(outcome: &FetchOutcome) -> bytes::Bytes {
    match outcome {
        FetchOutcome::Records(bytes) => bytes.clone(),
        other => panic!("records expected, got {other:?}"),
    }
}

fn topic_names(bytes: bytes::Bytes) -> Vec<String> {
    entry::decode_entries(bytes)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.payload {
            QuorumPayload::Record(v) => match v.record {
                MetadataRecord::Topic(t) => Some(t.name.to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_sends_its_batches_with_the_high_watermark_and_waits_for_new_ones() {
    let root = tempfile::tempdir().unwrap();
    let (voters, mut listeners) = voters(1);
    let quorum = open(
        root.path(),
        1,
        &voters,
        listeners.remove(&1).unwrap(),
        |_| {},
    )
    .await;
    let (_, last) = quorum
        .propose(vec![metadata_version(), topic("a")])
        .await
        .unwrap();
    let epoch = quorum.epoch();
    let answer = quorum.answer_fetch(&fetch(0, 0, epoch));
    assert_eq!(answer.error, error_code::NONE);
    assert_eq!(answer.leader, Some(1));
    assert_eq!(answer.high_watermark, last + 1);
    assert_eq!(answer.log_start_offset, 0);
    assert_eq!(topic_names(records(&answer.outcome)), vec!["a"]);

    // At the end: nothing yet; a waiting fetch is answered by the next write.
    let end = quorum.log_end_offset();
    let at_end = quorum.answer_fetch(&fetch(end, epoch, epoch));
    assert!(records(&at_end.outcome).is_empty());
    let waiting = {
        let quorum = quorum.clone();
        tokio::spawn(async move { quorum.fetch(fetch(end, epoch, epoch), WAIT).await })
    };
    quorum.propose(vec![topic("b")]).await.unwrap();
    let answer = waiting.await.unwrap();
    assert_eq!(topic_names(records(&answer.outcome)), vec!["b"]);
    // The leader may send a batch before it is committed; the high watermark passes it
    // once the state machine applied it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut high_watermark = answer.high_watermark;
    while high_watermark <= end {
        assert!(
            std::time::Instant::now() < deadline,
            "the high watermark stays at {high_watermark}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        high_watermark = quorum
            .answer_fetch(&fetch(end, epoch, epoch))
            .high_watermark;
    }
    quorum.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetcher_past_the_end_of_its_epoch_gets_the_diverging_epoch() {
    let root = tempfile::tempdir().unwrap();
    let (voters, mut listeners) = voters(1);
    let quorum = open(
        root.path(),
        1,
        &voters,
        listeners.remove(&1).unwrap(),
        |_| {},
    )
    .await;
    quorum
        .propose(vec![metadata_version(), topic("a")])
        .await
        .unwrap();
    let old_epoch = quorum.epoch();
    let old_end = quorum.log_end_offset();
    quorum.shutdown().await;
    drop(quorum);
    // A single voter starts a new epoch at every start.
    let again = std::net::TcpListener::bind(("127.0.0.1", voters[&1].port)).unwrap();
    again.set_nonblocking(true).unwrap();
    let quorum = open(root.path(), 1, &voters, again, |_| {}).await;
    quorum.propose(vec![topic("b")]).await.unwrap();
    let epoch = quorum.epoch();
    assert!(epoch > old_epoch);

    // A fetcher that holds records of the old epoch past where that epoch ended.
    let answer = quorum.answer_fetch(&fetch(old_end + 3, old_epoch, epoch));
    assert_eq!(answer.error, error_code::NONE);
    assert_eq!(
        answer.outcome,
        FetchOutcome::Diverging {
            epoch: old_epoch,
            end_offset: old_end,
        }
    );
    // At exactly the end of the old epoch: valid, the new epoch's batches follow.
    let answer = quorum.answer_fetch(&fetch(old_end, old_epoch, epoch));
    assert_eq!(topic_names(records(&answer.outcome)), vec!["b"]);
    // In the current epoch, anywhere up to the end: valid.
    let answer = quorum.answer_fetch(&fetch(old_end, epoch, epoch));
    assert!(matches!(answer.outcome, FetchOutcome::Records(_)));
    quorum.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetcher_below_the_log_start_is_sent_to_the_snapshot() {
    let root = tempfile::tempdir().unwrap();
    let (voters, mut listeners) = voters(1);
    let quorum = open(
        root.path(),
        1,
        &voters,
        listeners.remove(&1).unwrap(),
        |o| {
            o.snapshot_after_entries = 10;
            o.entries_kept_after_snapshot = 0;
            o.log.segment_bytes = 512;
        },
    )
    .await;
    quorum
        .propose(vec![metadata_version(), topic("a")])
        .await
        .unwrap();
    for i in 0..60 {
        quorum.propose(vec![topic(&format!("t{i}"))]).await.unwrap();
    }
    quorum
        .raft()
        .wait(Some(WAIT))
        .metrics(
            |m| m.purged.is_some_and(|p| p.index > 20),
            "the log is purged below a snapshot",
        )
        .await
        .expect("purged");
    let snapshot = quorum.latest_snapshot().expect("a snapshot");
    let start = quorum.log_start_offset();
    assert!(start > 1, "log start {start}");
    let epoch = quorum.epoch();
    // An empty fetcher and one below the log start load the snapshot.
    let empty = quorum.answer_fetch(&fetch(0, 0, epoch));
    assert_eq!(empty.outcome, FetchOutcome::Snapshot(snapshot));
    let below = quorum.answer_fetch(&fetch(1, epoch, epoch));
    assert_eq!(below.outcome, FetchOutcome::Snapshot(snapshot));
    assert_eq!(below.log_start_offset, start);
    // From the snapshot's end on, the log.
    let from = quorum.answer_fetch(&fetch(snapshot.end_offset, snapshot.epoch, epoch));
    assert!(matches!(from.outcome, FetchOutcome::Records(_)), "{from:?}");
    quorum.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voter_that_does_not_lead_names_the_leader() {
    let root = tempfile::tempdir().unwrap();
    let (voters, mut listeners) = voters(3);
    let mut nodes = Vec::new();
    for id in 1..=3 {
        let listener = listeners.remove(&id).unwrap();
        nodes.push(open(root.path(), id, &voters, listener, |_| {}).await);
    }
    let leader = nodes[0].wait_for_leader(WAIT).await.unwrap();
    // Until every node knows the leader of one epoch.
    let deadline = tokio::time::Instant::now() + WAIT;
    while !nodes
        .iter()
        .all(|n| n.leader() == Some(leader) && n.epoch() == nodes[0].epoch())
    {
        assert!(tokio::time::Instant::now() < deadline, "no agreed leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let follower = nodes
        .iter()
        .find(|n| n.leader() != Some(n.inner.node_id as i32))
        .unwrap();
    let epoch = follower.epoch();
    let answer = follower.answer_fetch(&fetch(0, 0, epoch));
    assert_eq!(answer.error, error_code::NOT_LEADER_OR_FOLLOWER);
    assert_eq!((answer.leader, answer.epoch), (Some(leader), epoch));
    assert!(records(&answer.outcome).is_empty());
    let stale = follower.answer_fetch(&fetch(0, 0, epoch - 1));
    assert_eq!(stale.error, error_code::FENCED_LEADER_EPOCH);
    assert_eq!(stale.leader, Some(leader));
    let ahead = follower.answer_fetch(&fetch(0, 0, epoch + 1));
    assert_eq!(ahead.error, error_code::UNKNOWN_LEADER_EPOCH);
    // The leader itself answers in its epoch, and fences an older one.
    let leading = &nodes[(leader - 1) as usize];
    assert_eq!(
        leading.answer_fetch(&fetch(0, 0, epoch)).error,
        error_code::NONE
    );
    assert_eq!(
        leading.answer_fetch(&fetch(0, 0, epoch - 1)).error,
        error_code::FENCED_LEADER_EPOCH
    );
    for node in nodes {
        node.shutdown().await;
    }
}
