//! Tests of the metadata quorum: real openraft nodes in one process, talking over TCP on
//! 127.0.0.1, each with its own temporary log directory. Waits are bounded by generous
//! timeouts; nothing asserts on timing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gregor_protocol::messages::feature_level_record::FeatureLevelRecord;
use gregor_protocol::messages::topic_record::TopicRecord;
use gregor_protocol::metadata_frame::VersionedRecord;
use gregor_protocol::{MetadataRecord, Uuid};
use tokio::net::TcpListener;

use super::entry::{self, QuorumEntry, QuorumPayload};
use super::{Quorum, QuorumError, QuorumOptions, VoterNode, quorum_state};
use crate::cluster::controller::METADATA_VERSION;
use crate::cluster::image::METADATA_VERSION_FEATURE;
use crate::cluster::replay::{self, METADATA_PARTITION_DIR, parse_segment_file_name};
use crate::cluster::snapshot::image_records;
use crate::cluster::snapshot_retention::list_snapshots;

/// The longest any wait may take (a loaded machine is slow; nothing here is timed).
const WAIT: Duration = Duration::from_secs(120);

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("gregor-quorum-")
        .tempdir()
        .expect("temp dir")
}

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

/// `metadata.version` first, as the controller's bootstrap writes it (snapshots need it).
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

/// A test cluster: the voters, their directories and the running nodes.
struct Cluster {
    voters: BTreeMap<i32, VoterNode>,
    dirs: BTreeMap<i32, PathBuf>,
    nodes: BTreeMap<i32, Quorum>,
    /// Settings changed by a test before nodes start.
    tweak: fn(&mut QuorumOptions),
}

fn fast(options: &mut QuorumOptions) {
    options.election_timeout_ms = (400, 800);
    options.heartbeat_interval_ms = 100;
}

impl Cluster {
    /// `n` voters on free ports of 127.0.0.1, directories under `root`.
    async fn new(root: &Path, n: i32, tweak: fn(&mut QuorumOptions)) -> Cluster {
        let mut voters = BTreeMap::new();
        let mut dirs = BTreeMap::new();
        for id in 1..=n {
            // Reserve a port: bind, note it, release; the node binds it again.
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            drop(listener);
            voters.insert(id, VoterNode::new("127.0.0.1", port));
            let dir = root.join(format!("node-{id}"));
            std::fs::create_dir_all(&dir).unwrap();
            dirs.insert(id, dir);
        }
        Cluster {
            voters,
            dirs,
            nodes: BTreeMap::new(),
            tweak,
        }
    }

    fn options(&self, id: i32) -> QuorumOptions {
        let mut options = QuorumOptions::new(id, self.dirs[&id].clone(), self.voters.clone());
        options.cluster_id = Some("quorum-test-cluster".to_string());
        fast(&mut options);
        (self.tweak)(&mut options);
        options
    }

    /// Starts node `id` from its directory, serving on its port.
    async fn start(&mut self, id: i32) {
        let node = &self.voters[&id];
        let listener = TcpListener::bind(("127.0.0.1", node.port))
            .await
            .expect("bind the node's port");
        let quorum = Quorum::open(self.options(id)).await.expect("open");
        quorum.serve(listener);
        self.nodes.insert(id, quorum);
    }

    async fn start_all(&mut self) {
        for id in self.voters.keys().copied().collect::<Vec<_>>() {
            self.start(id).await;
        }
    }

    /// Stops node `id` (what killing a process does to the quorum: it stops answering).
    async fn stop(&mut self, id: i32) {
        if let Some(quorum) = self.nodes.remove(&id) {
            quorum.shutdown().await;
        }
    }

    /// Waits until the running nodes agree on a leader among them; returns it.
    async fn leader(&self) -> i32 {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let leaders: Vec<Option<i32>> = self.nodes.values().map(|q| q.leader()).collect();
            if let Some(Some(leader)) = leaders.first()
                && leaders.iter().all(|l| l == &Some(*leader))
                && self.nodes.contains_key(leader)
            {
                return *leader;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no agreed leader: {leaders:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Proposes at the leader, retrying while leadership moves.
    async fn propose(&self, records: Vec<VersionedRecord>) -> (i64, i64) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let leader = self.leader().await;
            match self.nodes[&leader].propose(records.clone()).await {
                Ok(offsets) => return offsets,
                Err(QuorumError::NotLeader { .. }) => {}
                Err(e) => panic!("propose failed: {e}"),
            }
            assert!(tokio::time::Instant::now() < deadline, "no leader accepted");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every running node applied `offset`.
    async fn applied_everywhere(&self, offset: i64) {
        for (id, quorum) in &self.nodes {
            quorum
                .raft()
                .wait(Some(WAIT))
                .applied_index_at_least(Some(offset as u64), format!("node {id} applies {offset}"))
                .await
                .expect("applied");
        }
    }

    async fn shutdown(&mut self) {
        for id in self.nodes.keys().copied().collect::<Vec<_>>() {
            self.stop(id).await;
        }
    }
}

/// Every entry of the segments of `log_dir`, in offset order.
fn log_entries(log_dir: &Path) -> Vec<QuorumEntry> {
    let dir = log_dir.join(METADATA_PARTITION_DIR);
    let mut segments: Vec<(i64, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let base = parse_segment_file_name(e.file_name().to_str()?)?;
            Some((base, e.path()))
        })
        .collect();
    segments.sort();
    let mut out = Vec::new();
    for (_, path) in segments {
        let data = bytes::Bytes::from(std::fs::read(&path).unwrap());
        out.extend(entry::decode_entries(data).expect("valid Kafka batches"));
    }
    out
}

/// Checks what Kafka requires of a metadata log: offsets contiguous, epochs never
/// decreasing, and every epoch starting with a LeaderChange naming its leader.
fn check_kafka_log(entries: &[QuorumEntry]) {
    let mut previous: Option<&QuorumEntry> = None;
    for e in entries {
        if let Some(p) = previous {
            assert_eq!(e.log_id.index, p.log_id.index + 1, "contiguous offsets");
            assert!(
                e.log_id.leader_id.term >= p.log_id.leader_id.term,
                "monotonic epochs"
            );
        }
        let new_epoch = previous.is_none_or(|p| p.log_id.leader_id.term < e.log_id.leader_id.term);
        if new_epoch {
            match &e.payload {
                QuorumPayload::LeaderChange(Some(message)) => {
                    assert!(
                        message.leader_id >= 0,
                        "the LeaderChange names its leader: {e}"
                    )
                }
                other => panic!("epoch {} starts with {other:?}", e.log_id.leader_id.term),
            }
        }
        previous = Some(e);
    }
}

fn topic_names(quorum: &Quorum) -> Vec<String> {
    let mut names: Vec<String> = quorum.image().topics().map(|t| t.name.clone()).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_voter_elects_itself_and_behaves_as_one_node() {
    let root = tempdir();
    let mut cluster = Cluster::new(root.path(), 1, |_| {}).await;
    cluster.start(1).await;
    let quorum = cluster.nodes[&1].clone();
    // Open returns with the node elected and settled: it can write at once.
    assert_eq!(quorum.leader(), Some(1));
    assert_eq!(quorum.epoch(), 1);
    let (first, last) = quorum.propose(vec![metadata_version()]).await.unwrap();
    assert_eq!(
        (first, last),
        (1, 1),
        "offset 0 is the LeaderChange of epoch 1"
    );
    quorum.propose(vec![topic("a")]).await.unwrap();
    assert_eq!(topic_names(&quorum), ["a"]);
    let (first, last) = quorum.propose(vec![topic("b"), topic("c")]).await.unwrap();
    assert_eq!((first, last), (3, 6), "begin, two records, end");
    assert_eq!(topic_names(&quorum), ["a", "b", "c"]);
    assert_eq!(quorum.image().last_offset(), 6);

    let state = quorum_state::read(&root.path().join("node-1").join(METADATA_PARTITION_DIR))
        .unwrap()
        .expect("quorum-state written");
    assert!(state.vote.committed);
    assert_eq!(state.vote.leader_id.voted_for, Some(1));
    assert_eq!(state.vote.leader_id.term, 1);
    cluster.shutdown().await;

    // The start-up reader reads what the quorum wrote.
    let dir = root.path().join("node-1");
    let loaded = replay::load(&dir).unwrap();
    assert_eq!(loaded.next_offset, 7);
    assert_eq!(loaded.last_epoch, 1);
    assert!(loaded.image.topic("c").is_some());
    check_kafka_log(&log_entries(&dir));

    // A restart continues the log and the image.
    cluster.start(1).await;
    let quorum = cluster.nodes[&1].clone();
    assert_eq!(quorum.leader(), Some(1));
    assert_eq!(quorum.epoch(), 2, "a new epoch per start");
    assert_eq!(topic_names(&quorum), ["a", "b", "c"]);
    let (first, _) = quorum.propose(vec![topic("d")]).await.unwrap();
    assert!(first >= 7);
    assert_eq!(topic_names(&quorum), ["a", "b", "c", "d"]);
    cluster.shutdown().await;
    let entries = log_entries(&dir);
    check_kafka_log(&entries);
    assert!(replay::load(&dir).unwrap().image.topic("d").is_some());
    assert!(matches!(
        quorum.propose(vec![topic("e")]).await,
        Err(QuorumError::ShuttingDown)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_replicate_fail_over_and_catch_up() {
    let root = tempdir();
    let mut cluster = Cluster::new(root.path(), 3, |_| {}).await;
    cluster.start_all().await;
    let first_leader = cluster.leader().await;
    let first_epoch = cluster.nodes[&first_leader].epoch();
    cluster.propose(vec![metadata_version()]).await;
    for i in 0..5 {
        cluster.propose(vec![topic(&format!("t{i}"))]).await;
    }
    let (_, last) = cluster.propose(vec![topic("txn-a"), topic("txn-b")]).await;
    cluster.applied_everywhere(last).await;
    let images: Vec<_> = cluster
        .nodes
        .values()
        .map(|q| image_records(&q.image()).unwrap())
        .collect();
    assert!(images.windows(2).all(|w| w[0] == w[1]), "identical images");
    assert_eq!(topic_names(&cluster.nodes[&1]).len(), 7);

    // Kill the leader: another is elected in a later epoch and takes proposals.
    cluster.stop(first_leader).await;
    let second_leader = cluster.leader().await;
    assert_ne!(second_leader, first_leader);
    let second_epoch = cluster.nodes[&second_leader].epoch();
    assert!(second_epoch > first_epoch, "{second_epoch} > {first_epoch}");
    for i in 0..3 {
        cluster.propose(vec![topic(&format!("after-{i}"))]).await;
    }
    let (_, last) = cluster.propose(vec![topic("last")]).await;
    cluster.applied_everywhere(last).await;

    // The old leader restarts from its directory and catches up.
    cluster.start(first_leader).await;
    cluster.applied_everywhere(last).await;
    let images: Vec<_> = cluster
        .nodes
        .values()
        .map(|q| image_records(&q.image()).unwrap())
        .collect();
    assert_eq!(images.len(), 3);
    assert!(images.windows(2).all(|w| w[0] == w[1]), "identical images");
    assert_eq!(topic_names(&cluster.nodes[&first_leader]).len(), 11);
    cluster.shutdown().await;

    // The logs are valid Kafka logs with the same records, up to the last proposal.
    let logs: Vec<Vec<QuorumEntry>> = cluster
        .dirs
        .values()
        .map(|dir| {
            let mut entries = log_entries(dir);
            check_kafka_log(&entries);
            entries.retain(|e| e.log_id.index as i64 <= last);
            entries
        })
        .collect();
    assert_eq!(logs[0].len() as i64, last + 1);
    assert!(logs.windows(2).all(|w| w[0] == w[1]), "identical records");
    let epochs: Vec<u64> = logs[0].iter().map(|e| e.log_id.leader_id.term).collect();
    assert!(epochs.contains(&(first_epoch as u64)) && epochs.contains(&(second_epoch as u64)));
    for dir in cluster.dirs.values() {
        let loaded = replay::load(dir).unwrap();
        assert!(loaded.image.topic("last").is_some());
        assert!(loaded.image.topic("txn-b").is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_voter_gets_a_snapshot_after_the_leader_purged_its_log() {
    let root = tempdir();
    let mut cluster = Cluster::new(root.path(), 3, |o| {
        o.snapshot_after_entries = 20;
        o.entries_kept_after_snapshot = 0;
        o.log.segment_bytes = 512;
    })
    .await;
    cluster.start_all().await;
    let leader = cluster.leader().await;
    let lagging = *cluster.voters.keys().find(|id| **id != leader).unwrap();
    let (_, last) = cluster
        .propose(vec![metadata_version(), topic("early")])
        .await;
    cluster.applied_everywhere(last).await;
    cluster.stop(lagging).await;

    let mut last = 0;
    for i in 0..60 {
        last = cluster.propose(vec![topic(&format!("t{i}"))]).await.1;
    }
    // The leader snapshots and purges below the snapshot (deleting whole segments).
    let quorum = &cluster.nodes[&leader];
    quorum
        .raft()
        .wait(Some(WAIT))
        .metrics(
            |m| m.purged.is_some_and(|p| p.index > 30),
            "the leader purged its log",
        )
        .await
        .expect("purged");
    let leader_dir = cluster.dirs[&leader].join(METADATA_PARTITION_DIR);
    let snapshots = list_snapshots(&leader_dir).unwrap().len();
    assert!((1..=super::state_machine::SNAPSHOTS_KEPT).contains(&snapshots));
    let first_segment = log_entries(&cluster.dirs[&leader])[0].log_id.index;
    assert!(
        first_segment > 2,
        "segments below the snapshot were deleted"
    );

    cluster.start(lagging).await;
    cluster.applied_everywhere(last).await;
    let lagging_dir = cluster.dirs[&lagging].join(METADATA_PARTITION_DIR);
    assert!(
        !list_snapshots(&lagging_dir).unwrap().is_empty(),
        "the lagging voter installed a .checkpoint"
    );
    let a = image_records(&cluster.nodes[&leader].image()).unwrap();
    let b = image_records(&cluster.nodes[&lagging].image()).unwrap();
    assert_eq!(a, b);
    assert!(cluster.nodes[&lagging].image().topic("t59").is_some());
    // It keeps following after the snapshot.
    let (_, last) = cluster.propose(vec![topic("after-snapshot")]).await;
    cluster.applied_everywhere(last).await;
    cluster.shutdown().await;
    let loaded = replay::load(&cluster.dirs[&lagging]).unwrap();
    assert!(loaded.image.topic("after-snapshot").is_some());
    assert!(loaded.snapshot.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_state_round_trips_in_kafkas_json() {
    let dir = tempdir();
    let state = quorum_state::QuorumState {
        vote: openraft::Vote::new_committed(7, 2),
        voted_directory_id: Uuid::nil(),
    };
    quorum_state::write(dir.path(), &state).unwrap();
    let text = std::fs::read_to_string(dir.path().join(quorum_state::QUORUM_STATE_FILE)).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["leaderId"], 2);
    assert_eq!(json["leaderEpoch"], 7);
    assert_eq!(json["votedId"], 2);
    assert_eq!(json["data_version"], 1);
    assert_eq!(quorum_state::read(dir.path()).unwrap(), Some(state));
    // A Kafka follower that voted but knows no leader yet.
    std::fs::write(
        dir.path().join(quorum_state::QUORUM_STATE_FILE),
        r#"{"clusterId":"","leaderId":-1,"leaderEpoch":3,"votedId":1,"appliedOffset":0,"currentVoters":[{"voterId":1}],"data_version":0}"#,
    )
    .unwrap();
    let read = quorum_state::read(dir.path()).unwrap().unwrap();
    assert_eq!(read.vote, openraft::Vote::new(3, 1));
    std::fs::write(dir.path().join(quorum_state::QUORUM_STATE_FILE), "{").unwrap();
    assert!(quorum_state::read(dir.path()).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_aborts_the_unfinished_transaction_of_the_old_one() {
    let root = tempdir();
    let mut cluster = Cluster::new(root.path(), 3, |_| {}).await;
    cluster.start_all().await;
    cluster.propose(vec![metadata_version()]).await;
    // An old leader that wrote the start of a transaction and then died.
    let begin = VersionedRecord {
        version: 0,
        record: MetadataRecord::BeginTransaction(Default::default()),
    };
    let (begin_offset, _) = cluster.propose(vec![begin]).await;
    let (_, last) = cluster.propose(vec![topic("inside")]).await;
    cluster.applied_everywhere(last).await;
    let old = cluster.leader().await;
    assert_eq!(
        cluster.nodes[&old].image().pending_transaction(),
        Some(begin_offset)
    );
    assert!(cluster.nodes[&old].image().topic("inside").is_none());
    cluster.stop(old).await;

    // The new leader aborts it before anything else: the records inside are dropped.
    let (offset, _) = cluster.propose(vec![topic("after")]).await;
    cluster.applied_everywhere(offset).await;
    for quorum in cluster.nodes.values() {
        let image = quorum.image();
        assert_eq!(image.pending_transaction(), None);
        assert!(image.topic("inside").is_none());
        assert!(image.topic("after").is_some());
    }
    let new = cluster.leader().await;
    cluster.shutdown().await;
    let entries = log_entries(&cluster.dirs[&new]);
    check_kafka_log(&entries);
    let abort = entries
        .iter()
        .position(|e| {
            matches!(&e.payload, QuorumPayload::Record(r)
                if matches!(r.record, MetadataRecord::AbortTransaction(_)))
        })
        .expect("an AbortTransactionRecord");
    assert!(abort as i64 > last && (abort as i64) < offset);
    assert!(matches!(
        entries[abort - 1].payload,
        QuorumPayload::LeaderChange(_)
    ));
    let loaded = replay::load(&cluster.dirs[&new]).unwrap();
    assert!(loaded.image.topic("inside").is_none());
    assert!(loaded.image.topic("after").is_some());
}

#[test]
fn the_log_truncates_a_conflicting_suffix_inside_a_batch() {
    use crate::cluster::metadata_log::{MetadataLog, MetadataLogOptions};
    let root = tempdir();
    let loaded = replay::load(root.path()).unwrap();
    let mut options = MetadataLogOptions::new(1);
    options.segment_bytes = 300;
    let mut log = MetadataLog::open_replica(root.path(), &loaded, options.clone()).unwrap();
    let entry_at = |term: i32, index: i64, payload: QuorumPayload| QuorumEntry {
        log_id: entry::log_id(term, index),
        timestamp: 1000 + index,
        payload,
    };
    let record = |name: &str| QuorumPayload::Record(topic(name));
    let mut entries = vec![entry_at(
        1,
        0,
        QuorumPayload::LeaderChange(Some(entry::leader_change(1, &[1, 2, 3]))),
    )];
    entries.push(entry_at(1, 1, QuorumPayload::Record(metadata_version())));
    for i in 2..8 {
        entries.push(entry_at(1, i, record(&format!("t{i}"))));
    }
    let fill = |_: &QuorumEntry| entry::leader_change(-1, &[]);
    for batch in entry::encode_entries(&entries, 0, &fill).unwrap() {
        log.append_batch_at(
            &batch.bytes,
            batch.base_offset,
            batch.count,
            batch.epoch,
            batch.max_timestamp,
        )
        .unwrap();
    }
    // Offsets 1..=7 are one batch; a leader of epoch 2 disagrees from offset 5 on.
    assert!(log.segments().unwrap().len() >= 2, "segments rolled");
    let rewritten = log
        .truncate_to(5)
        .unwrap()
        .expect("the straddling batch is rewritten");
    assert_eq!((rewritten.base_offset, rewritten.last_offset), (1, 4));
    assert_eq!(log.next_offset(), 5);
    let mut more = vec![entry_at(
        2,
        5,
        QuorumPayload::LeaderChange(Some(entry::leader_change(2, &[1, 2, 3]))),
    )];
    more.push(entry_at(2, 6, record("new")));
    for batch in entry::encode_entries(&more, 0, &fill).unwrap() {
        log.append_batch_at(
            &batch.bytes,
            batch.base_offset,
            batch.count,
            batch.epoch,
            batch.max_timestamp,
        )
        .unwrap();
    }
    assert_eq!(log.epochs(), [(1, 0), (2, 5)]);
    // An append that does not continue the log, or goes back an epoch, is refused.
    let stale = entry::encode_entries(&[entry_at(1, 7, record("x"))], 0, &fill).unwrap();
    assert!(log.append_batch_at(&stale[0].bytes, 7, 1, 1, 0).is_err());
    assert!(log.append_batch_at(&stale[0].bytes, 3, 1, 2, 0).is_err());
    drop(log);

    let read = log_entries(root.path());
    let mut expected: Vec<QuorumEntry> = entries[..5].to_vec();
    expected.extend(more);
    assert_eq!(read, expected);
    let loaded = replay::load(root.path()).unwrap();
    assert_eq!(loaded.next_offset, 7);
    assert_eq!(loaded.last_epoch, 2);
    assert!(loaded.image.topic("t4").is_some());
    assert!(loaded.image.topic("t5").is_none());
    assert!(loaded.image.topic("new").is_some());
    assert_eq!(
        crate::cluster::metadata_log::read_leader_epoch_checkpoint(
            &root.path().join(METADATA_PARTITION_DIR)
        ),
        Some(vec![(1, 0), (2, 5)])
    );

    // Starting over past a snapshot leaves one empty segment at the new start.
    let mut log = MetadataLog::open_replica(root.path(), &loaded, options).unwrap();
    log.reset_to(100).unwrap();
    assert_eq!(log.next_offset(), 100);
    let segments = log.segments().unwrap();
    assert_eq!(segments.len(), 1);
    assert_eq!(segments[0].0, 100);
}

#[test]
fn entries_round_trip_through_kafka_batches() {
    use std::collections::{BTreeMap, BTreeSet};
    let mut nodes = BTreeMap::new();
    nodes.insert(1, VoterNode::new("127.0.0.1", 9093));
    nodes.insert(2, VoterNode::new("127.0.0.1", 9094));
    let membership = openraft::Membership::new(vec![BTreeSet::from([1, 2])], nodes.clone());
    let voters = entry::voters_record(&membership).unwrap();
    assert_eq!(voters.voters.len(), 2);
    assert_eq!(voters.voters[1].endpoints[0].port, 9094);
    assert_eq!(
        voters.voters[0].kraft_version_feature.max_supported_version,
        1
    );
    let entries = vec![
        QuorumEntry {
            log_id: entry::log_id(3, 10),
            timestamp: 5,
            payload: QuorumPayload::LeaderChange(Some(entry::leader_change(2, &[1, 2]))),
        },
        QuorumEntry {
            log_id: entry::log_id(3, 11),
            timestamp: 6,
            payload: QuorumPayload::Voters(Box::new((membership.clone(), voters))),
        },
        QuorumEntry {
            log_id: entry::log_id(3, 12),
            timestamp: 7,
            payload: QuorumPayload::Record(topic("x")),
        },
        QuorumEntry {
            log_id: entry::log_id(4, 13),
            timestamp: 8,
            payload: QuorumPayload::Record(topic("y")),
        },
    ];
    let fill = |_: &QuorumEntry| entry::leader_change(-1, &[]);
    let batches = entry::encode_entries(&entries, 0, &fill).unwrap();
    // Control records, data of epoch 3, data of epoch 4: three batches.
    assert_eq!(batches.len(), 3);
    assert_eq!(
        batches
            .iter()
            .map(|b| (b.base_offset, b.count, b.epoch))
            .collect::<Vec<_>>(),
        [(10, 2, 3), (12, 1, 3), (13, 1, 4)]
    );
    let mut bytes = Vec::new();
    for b in &batches {
        bytes.extend_from_slice(&b.bytes);
    }
    let decoded = entry::decode_entries(bytes::Bytes::from(bytes.clone())).unwrap();
    assert_eq!(decoded, entries);
    use openraft::entry::RaftPayload;
    assert_eq!(decoded[1].get_membership(), Some(&membership));
    assert!(decoded[0].is_blank());

    // The joint step of a single-voter change is written as its larger set (either way
    // round); any other joint membership has no VotersRecord. A gap or damaged bytes are
    // refused.
    let adding = openraft::Membership::new(
        vec![BTreeSet::from([1]), BTreeSet::from([1, 2])],
        nodes.clone(),
    );
    let ids = |r: gregor_protocol::messages::voters_record::VotersRecord| {
        r.voters.iter().map(|v| v.voter_id).collect::<Vec<_>>()
    };
    assert_eq!(ids(entry::voters_record(&adding).unwrap()), [1, 2]);
    let removing = openraft::Membership::new(
        vec![BTreeSet::from([1, 2]), BTreeSet::from([2])],
        nodes.clone(),
    );
    assert_eq!(ids(entry::voters_record(&removing).unwrap()), [1, 2]);
    let swapping = openraft::Membership::new(
        vec![BTreeSet::from([1]), BTreeSet::from([2])],
        nodes.clone(),
    );
    assert!(entry::voters_record(&swapping).is_err());
    let two_more =
        openraft::Membership::new(vec![BTreeSet::from([1]), BTreeSet::from([1, 2, 3])], nodes);
    assert!(entry::voters_record(&two_more).is_err());
    let mut gap = entries[2..].to_vec();
    gap[1].log_id = entry::log_id(3, 20);
    assert!(entry::encode_entries(&gap, 0, &fill).is_err());
    let mut damaged = bytes.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 0xff;
    assert!(entry::decode_entries(bytes::Bytes::from(damaged)).is_err());
    assert!(entry::decode_entries(bytes::Bytes::from(bytes[..bytes.len() - 3].to_vec())).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quorum_listener_answers_kafka_vote_and_survives_bad_frames() {
    use bytes::BytesMut;
    use gregor_protocol::frame::{decode_response_header, encode_request};
    use gregor_protocol::messages::vote_request::{PartitionData, TopicData, VoteRequest};
    use gregor_protocol::messages::vote_response::VoteResponse;
    use gregor_protocol::{ApiKey, Decodable, error_code};
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;

    let root = tempdir();
    let mut cluster = Cluster::new(root.path(), 1, |_| {}).await;
    cluster.start(1).await;
    let port = cluster.voters[&1].port;
    let epoch = cluster.nodes[&1].epoch();

    // Garbage, then an oversized frame: each connection is closed, the listener lives on.
    for frame in [&[0, 0, 0, 3, 1, 2, 3][..], &[0x7f, 0xff, 0xff, 0xff][..]] {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream.write_all(frame).await.unwrap();
        let answer = super::network::read_frame(&mut stream).await;
        assert!(matches!(answer, Ok(None) | Err(_)), "closed: {answer:?}");
    }

    let vote = |cluster_id: &str, candidate_epoch: i32| VoteRequest {
        cluster_id: Some(cluster_id.into()),
        voter_id: 1,
        topics: vec![TopicData {
            topic_name: "__cluster_metadata".into(),
            partitions: vec![PartitionData {
                partition_index: 0,
                replica_epoch: candidate_epoch,
                replica_id: 2,
                last_offset_epoch: 0,
                last_offset: 0,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let ask = |request: VoteRequest| async move {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut buf = BytesMut::new();
        encode_request(&mut buf, &request, 2, 42, Some("test")).unwrap();
        stream.write_all(&buf).await.unwrap();
        let mut frame = super::network::read_frame(&mut stream)
            .await
            .unwrap()
            .unwrap();
        let header = decode_response_header(&mut frame, ApiKey::Vote, 2).unwrap();
        assert_eq!(header.correlation_id, 42);
        VoteResponse::decode(&mut frame, 2).unwrap()
    };
    let wrong_cluster = ask(vote("another-cluster", epoch + 1)).await;
    assert_eq!(
        wrong_cluster.error_code,
        error_code::INCONSISTENT_CLUSTER_ID
    );
    // A stale candidate is refused and told the epoch and leader.
    let stale = ask(vote("quorum-test-cluster", 0)).await;
    assert_eq!(stale.error_code, error_code::NONE);
    let partition = &stale.topics[0].partitions[0];
    assert!(!partition.vote_granted);
    assert_eq!(partition.leader_epoch, epoch);
    assert_eq!(partition.leader_id, 1);
    // The node still works.
    cluster.nodes[&1]
        .propose(vec![metadata_version()])
        .await
        .unwrap();
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_voter_continues_a_log_of_the_single_node_appender() {
    use crate::cluster::metadata_log::{MetadataLog, MetadataLogOptions};
    let root = tempdir();
    let dir = root.path().join("node-1");
    std::fs::create_dir_all(&dir).unwrap();
    // Today's single node: two starts (epochs 1 and 2), one of them ending inside a
    // transaction.
    let loaded = replay::load(&dir).unwrap();
    let (mut log, _) = MetadataLog::open(&dir, &loaded, MetadataLogOptions::new(1)).unwrap();
    log.append(&[metadata_version(), topic("old")]).unwrap();
    drop(log);
    let loaded = replay::load(&dir).unwrap();
    let (mut log, report) = MetadataLog::open(&dir, &loaded, MetadataLogOptions::new(1)).unwrap();
    assert_eq!(report.epoch, 2);
    let begin = VersionedRecord {
        version: 0,
        record: MetadataRecord::BeginTransaction(Default::default()),
    };
    log.append(&[begin, topic("half")]).unwrap();
    drop(log);

    let mut cluster = Cluster::new(root.path(), 1, |_| {}).await;
    cluster.start(1).await;
    let quorum = cluster.nodes[&1].clone();
    assert_eq!(quorum.leader(), Some(1));
    assert_eq!(quorum.epoch(), 3, "a new epoch after the log's last");
    assert_eq!(topic_names(&quorum), ["old"]);
    assert_eq!(quorum.image().pending_transaction(), None, "aborted");
    quorum.propose(vec![topic("new")]).await.unwrap();
    assert_eq!(topic_names(&quorum), ["new", "old"]);
    assert_eq!(quorum.epochs().last().map(|e| e.0), Some(3));
    cluster.shutdown().await;
    let entries = log_entries(&dir);
    check_kafka_log(&entries);
    let loaded = replay::load(&dir).unwrap();
    assert!(loaded.image.topic("new").is_some() && loaded.image.topic("half").is_none());
    assert_eq!(loaded.discarded_transaction, None);
}
