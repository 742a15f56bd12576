use std::collections::BTreeSet;
use std::sync::Mutex as StdMutex;

use super::log::{Replay, build_batch, decode, encode_key, encode_value};
use super::markers::{MarkerWriter, write_round};
use super::rules::{self, AddDecision, EndDecision, InitDecision};
use super::state::*;
use super::*;

fn tp(topic: &str, p: i32) -> TopicPartition {
    (topic.to_string(), p)
}

fn no_id() -> impl FnMut() -> Result<i64, i16> {
    || Err(UNKNOWN_SERVER_ERROR)
}

/// A new id after its first InitProducerId: epoch 0, Empty.
fn initialized(id: &str) -> TxnMetadata {
    let mut meta = TxnMetadata::new(id, 7, 60_000, 1_000);
    let InitDecision::Write(t) =
        rules::init_producer_id(&mut meta, 60_000, None, &mut no_id(), 1_000).unwrap()
    else {
        panic!("expected a write");
    };
    meta.complete_transition(&t).unwrap();
    assert_eq!(
        (meta.producer_id, meta.producer_epoch, meta.state),
        (7, 0, TxnState::Empty)
    );
    meta
}

fn add(meta: &mut TxnMetadata, parts: &[TopicPartition], now: i64) {
    let set: BTreeSet<_> = parts.iter().cloned().collect();
    let (pid, epoch) = (meta.producer_id, meta.producer_epoch);
    match rules::add_partitions(meta, pid, epoch, &set, now).unwrap() {
        AddDecision::Write(t) => meta.complete_transition(&t).unwrap(),
        AddDecision::AlreadyAdded => {}
    }
}

fn end(meta: &mut TxnMetadata, commit: bool, tv: i16) -> Transit {
    let (pid, epoch) = (meta.producer_id, meta.producer_epoch);
    match rules::end_txn(meta, pid, epoch, commit, true, tv, &mut no_id(), 5_000).unwrap() {
        EndDecision::Write { transit, .. } => {
            meta.complete_transition(&transit).unwrap();
            transit
        }
        other => panic!("expected a write, got {other:?}"),
    }
}

fn complete(meta: &mut TxnMetadata) {
    let t = meta.prepare_complete(6_000).unwrap();
    meta.complete_transition(&t).unwrap();
}

#[test]
fn state_ids_and_names_match_kafka() {
    let names: Vec<(i8, &str)> = TxnState::ALL.iter().map(|s| (s.id(), s.name())).collect();
    assert_eq!(
        names,
        vec![
            (0, "Empty"),
            (1, "Ongoing"),
            (2, "PrepareCommit"),
            (3, "PrepareAbort"),
            (4, "CompleteCommit"),
            (5, "CompleteAbort"),
            (6, "Dead"),
            (7, "PrepareEpochFence"),
        ]
    );
    assert_eq!(TxnState::from_id(8), None);
    assert_eq!(TxnState::from_name("ongoing"), None, "names are exact");
}

#[test]
fn every_transition_outside_kafkas_table_is_refused() {
    for from in TxnState::ALL {
        for to in TxnState::ALL {
            let mut meta = TxnMetadata::new("t", 1, 1000, 0);
            meta.state = from;
            meta.producer_epoch = 3;
            let result = meta.prepare(to, 1, -1, 3, -1, 1000, BTreeSet::new(), 0, 0, 0);
            assert_eq!(
                result.is_ok(),
                to.valid_previous().contains(&from),
                "{from:?} -> {to:?}"
            );
        }
    }
}

#[test]
fn a_commit_goes_ongoing_prepare_complete_and_a_retry_is_answered() {
    let mut meta = initialized("t");
    add(&mut meta, &[tp("a", 0), tp("a", 1)], 2_000);
    assert_eq!(meta.state, TxnState::Ongoing);
    assert_eq!(meta.start_ms, 2_000);
    // Adding the same partitions again writes nothing.
    let set = BTreeSet::from([tp("a", 0)]);
    assert_eq!(
        rules::add_partitions(&mut meta, 7, 0, &set, 2_500),
        Ok(AddDecision::AlreadyAdded)
    );
    let t = end(&mut meta, true, 0);
    assert_eq!((t.state, t.producer_epoch), (TxnState::PrepareCommit, 0));
    // While preparing: CONCURRENT_TRANSACTIONS for the same result, INVALID_TXN_STATE for
    // the other, and AddPartitions / InitProducerId wait.
    assert_eq!(
        rules::end_txn(&mut meta, 7, 0, true, true, 0, &mut no_id(), 1),
        Err(CONCURRENT_TRANSACTIONS)
    );
    assert_eq!(
        rules::end_txn(&mut meta, 7, 0, false, true, 0, &mut no_id(), 1),
        Err(INVALID_TXN_STATE)
    );
    assert_eq!(
        rules::add_partitions(&mut meta, 7, 0, &set, 1),
        Err(CONCURRENT_TRANSACTIONS)
    );
    assert_eq!(
        rules::init_producer_id(&mut meta, 60_000, None, &mut no_id(), 1),
        Err(CONCURRENT_TRANSACTIONS)
    );
    complete(&mut meta);
    assert_eq!(meta.state, TxnState::CompleteCommit);
    assert!(meta.partitions.is_empty());
    assert_eq!(
        rules::end_txn(&mut meta, 7, 0, true, true, 0, &mut no_id(), 1),
        Ok(EndDecision::Done {
            producer_id: 7,
            producer_epoch: 0
        })
    );
    assert_eq!(
        rules::end_txn(&mut meta, 7, 0, false, true, 0, &mut no_id(), 1),
        Err(INVALID_TXN_STATE)
    );
    // A new transaction starts from CompleteCommit.
    add(&mut meta, &[tp("b", 0)], 9_000);
    assert_eq!((meta.state, meta.start_ms), (TxnState::Ongoing, 9_000));
}

#[test]
fn wrong_producer_ids_and_epochs_are_refused() {
    let mut meta = initialized("t");
    let set = BTreeSet::from([tp("a", 0)]);
    assert_eq!(
        rules::add_partitions(&mut meta, 8, 0, &set, 1),
        Err(INVALID_PRODUCER_ID_MAPPING)
    );
    assert_eq!(
        rules::add_partitions(&mut meta, 7, 1, &set, 1),
        Err(PRODUCER_FENCED)
    );
    assert_eq!(
        rules::end_txn(&mut meta, 7, 0, true, true, 0, &mut no_id(), 1),
        Err(INVALID_TXN_STATE)
    );
    assert_eq!(
        rules::end_txn(&mut meta, 8, 0, true, true, 0, &mut no_id(), 1),
        Err(INVALID_PRODUCER_ID_MAPPING)
    );
    assert_eq!(
        rules::end_txn(&mut meta, 7, 1, true, true, 0, &mut no_id(), 1),
        Err(PRODUCER_FENCED)
    );
}

#[test]
fn verification_answers_per_partition() {
    let mut meta = initialized("t");
    add(&mut meta, &[tp("a", 0)], 2_000);
    let codes = rules::verify_partitions(&meta, 7, 0, &[tp("a", 0), tp("a", 1)]).unwrap();
    assert_eq!(codes[&tp("a", 0)], NONE);
    assert_eq!(codes[&tp("a", 1)], TRANSACTION_ABORTABLE);
    assert_eq!(
        rules::verify_partitions(&meta, 7, 1, &[tp("a", 0)]),
        Err(PRODUCER_FENCED)
    );
    assert_eq!(
        rules::verify_partitions(&meta, 6, 0, &[tp("a", 0)]),
        Err(INVALID_PRODUCER_ID_MAPPING)
    );
}

#[test]
fn a_new_producer_fences_an_ongoing_transaction_through_an_abort() {
    let mut meta = initialized("t");
    add(&mut meta, &[tp("a", 0)], 2_000);
    let InitDecision::Fence(fence) =
        rules::init_producer_id(&mut meta, 60_000, None, &mut no_id(), 3_000).unwrap()
    else {
        panic!("expected a fence");
    };
    assert_eq!(
        (fence.state, fence.producer_epoch),
        (TxnState::PrepareEpochFence, 1)
    );
    // The coordinator's own abort at the fenced epoch (TV0).
    let EndDecision::Write {
        transit,
        epoch_fence,
    } = rules::end_txn(&mut meta, 7, 1, false, false, 0, &mut no_id(), 3_000).unwrap()
    else {
        panic!("expected a write");
    };
    assert!(epoch_fence);
    assert_eq!(
        (transit.state, transit.producer_epoch),
        (TxnState::PrepareAbort, 1)
    );
    meta.complete_transition(&transit).unwrap();
    // The old producer is fenced now.
    assert_eq!(
        rules::end_txn(&mut meta, 7, 0, true, true, 0, &mut no_id(), 1),
        Err(PRODUCER_FENCED)
    );
    complete(&mut meta);
    // The new producer's retry bumps again.
    let InitDecision::Write(t) =
        rules::init_producer_id(&mut meta, 60_000, None, &mut no_id(), 4_000).unwrap()
    else {
        panic!("expected a write");
    };
    meta.complete_transition(&t).unwrap();
    assert_eq!((meta.state, meta.producer_epoch), (TxnState::Empty, 2));
}

#[test]
fn a_failed_fence_write_does_not_bump_twice() {
    let mut meta = initialized("t");
    add(&mut meta, &[tp("a", 0)], 2_000);
    meta.producer_epoch = 4;
    let fence = meta.prepare_fence_epoch().unwrap();
    assert_eq!(fence.producer_epoch, 5);
    meta.abort_transition();
    meta.has_failed_epoch_fence = true;
    assert_eq!(meta.prepare_fence_epoch().unwrap().producer_epoch, 4);
}

#[test]
fn kip_360_recovery_with_the_clients_producer_id_and_epoch() {
    let mut meta = initialized("t");
    // The current epoch: bump, the old one kept as the last epoch.
    let InitDecision::Write(t) =
        rules::init_producer_id(&mut meta, 60_000, Some((7, 0)), &mut no_id(), 2).unwrap()
    else {
        panic!()
    };
    meta.complete_transition(&t).unwrap();
    assert_eq!((meta.producer_epoch, meta.last_producer_epoch), (1, 0));
    // A retry with the last epoch gets the current one again, without a bump.
    let InitDecision::Write(t) =
        rules::init_producer_id(&mut meta, 60_000, Some((7, 0)), &mut no_id(), 3).unwrap()
    else {
        panic!()
    };
    meta.complete_transition(&t).unwrap();
    assert_eq!(meta.producer_epoch, 1);
    // An older epoch, or another producer id: fenced.
    meta.last_producer_epoch = -1;
    assert_eq!(
        rules::init_producer_id(&mut meta, 60_000, Some((7, 0)), &mut no_id(), 4),
        Err(PRODUCER_FENCED)
    );
    assert_eq!(
        rules::init_producer_id(&mut meta, 60_000, Some((99, 1)), &mut no_id(), 4),
        Err(PRODUCER_FENCED)
    );
}

#[test]
fn an_exhausted_epoch_gets_a_new_producer_id() {
    let mut meta = initialized("t");
    meta.producer_epoch = i16::MAX - 1;
    let mut allocate = || Ok(42);
    let expected = Some((7, i16::MAX - 1));
    let InitDecision::Write(t) =
        rules::init_producer_id(&mut meta, 60_000, expected, &mut allocate, 2).unwrap()
    else {
        panic!()
    };
    meta.complete_transition(&t).unwrap();
    assert_eq!(
        (
            meta.producer_id,
            meta.producer_epoch,
            meta.previous_producer_id
        ),
        (42, 0, 7)
    );
    // KIP-360: a retry with the previous id and its exhausted epoch (the answer was lost)
    // gets the new id and epoch again, without a bump.
    let InitDecision::Write(t) =
        rules::init_producer_id(&mut meta, 60_000, expected, &mut no_id(), 3).unwrap()
    else {
        panic!()
    };
    meta.complete_transition(&t).unwrap();
    assert_eq!((meta.producer_id, meta.producer_epoch), (42, 0));
}

#[test]
fn transactions_v2_bump_the_epoch_at_every_end_and_overflow_to_a_new_id() {
    let mut meta = initialized("t");
    add(&mut meta, &[tp("a", 0)], 2_000);
    let t = end(&mut meta, true, 2);
    assert_eq!((t.producer_epoch, t.last_producer_epoch), (1, 0));
    assert_eq!(meta.producer_epoch, 1, "the bump is applied once prepared");
    // A retry with the old epoch while preparing is a retry, answered CONCURRENT.
    assert_eq!(
        rules::end_txn(&mut meta, 7, 0, true, true, 2, &mut no_id(), 1),
        Err(CONCURRENT_TRANSACTIONS)
    );
    complete(&mut meta);
    assert_eq!(
        (meta.state, meta.producer_epoch),
        (TxnState::CompleteCommit, 1)
    );
    // A retry after completion with the old epoch: done, answering the bumped epoch.
    assert_eq!(
        rules::end_txn(&mut meta, 7, 0, true, true, 2, &mut no_id(), 1),
        Ok(EndDecision::Done {
            producer_id: 7,
            producer_epoch: 1
        })
    );

    // The bump that exhausts the epoch moves to a new producer id on completion.
    add(&mut meta, &[tp("a", 0)], 7_000);
    meta.producer_epoch = i16::MAX - 1;
    let mut allocate = || Ok(99);
    let EndDecision::Write { transit, .. } = rules::end_txn(
        &mut meta,
        7,
        i16::MAX - 1,
        false,
        true,
        2,
        &mut allocate,
        8_000,
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(transit.next_producer_id, 99);
    meta.complete_transition(&transit).unwrap();
    complete(&mut meta);
    assert_eq!(
        (meta.producer_id, meta.producer_epoch, meta.state),
        (99, 0, TxnState::CompleteAbort)
    );
    // The client's retry with the old id and epoch is recognised.
    assert_eq!(
        rules::end_txn(&mut meta, 7, i16::MAX - 1, false, true, 2, &mut no_id(), 1),
        Ok(EndDecision::Done {
            producer_id: 99,
            producer_epoch: 0
        })
    );
}

#[test]
fn timeouts_and_expiration() {
    let mut meta = initialized("t");
    add(&mut meta, &[tp("a", 0)], 2_000);
    assert!(!rules::timed_out(&meta, 62_000));
    assert!(rules::timed_out(&meta, 62_001));
    assert!(
        !rules::expired(&meta, 10, 1_000_000),
        "an ongoing transaction never expires"
    );
    end(&mut meta, false, 0);
    complete(&mut meta);
    assert!(!rules::expired(&meta, 1_000, 6_999));
    assert!(rules::expired(&meta, 1_000, 7_000));
    let dead = meta.prepare_dead().unwrap();
    assert_eq!(dead.state, TxnState::Dead);
}

#[test]
fn java_hash_code_partitioning() {
    assert_eq!(crate::groups::java_string_hash("hello"), 99_162_322);
    assert_eq!(partition_for("hello", 50), 99_162_322 % 50);
    // Integer.MIN_VALUE: Kafka's Utils.abs maps it to 0.
    assert_eq!(
        crate::groups::java_string_hash("polygenelubricants"),
        i32::MIN
    );
    assert_eq!(partition_for("polygenelubricants", 50), 0);
    assert_eq!(partition_for("my-transactional-id", 50), 959_806_496 % 50);
}

#[test]
fn records_round_trip_at_both_value_versions() {
    let mut meta = initialized("t");
    add(&mut meta, &[tp("a", 0), tp("a", 3), tp("b", 1)], 2_000);
    let t = end(&mut meta, true, 2);
    for tv in [0, 2] {
        let key = encode_key("t");
        let value = encode_value(&t, tv);
        assert_eq!(&value[..2], &[0, if tv >= 1 { 1 } else { 0 }]);
        let (id, loaded) = decode(&key, Some(&value)).unwrap();
        let loaded = loaded.unwrap();
        assert_eq!(id, "t");
        assert_eq!(loaded.state, TxnState::PrepareCommit);
        assert_eq!((loaded.producer_id, loaded.producer_epoch), (7, 1));
        assert_eq!(loaded.partitions, t.partitions);
        assert_eq!(loaded.start_ms, 2_000);
        assert_eq!(loaded.client_tv, if tv >= 1 { 2 } else { 0 });
    }
    // Empty carries null partitions.
    let empty = TxnMetadata::new("e", 3, 1000, 0).as_transit();
    let (_, loaded) = decode(&encode_key("e"), Some(&encode_value(&empty, 1))).unwrap();
    assert!(loaded.unwrap().partitions.is_empty());
    assert!(decode(&encode_key("e"), None).unwrap().1.is_none());
    assert!(decode(&bytes::Bytes::from_static(&[0]), None).is_err());
}

#[test]
fn replay_from_a_partition_log_keeps_the_last_value_and_drops_tombstones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{TRANSACTION_STATE_TOPIC}-0"));
    std::fs::create_dir_all(&path).unwrap();
    let log = crate::storage::PartitionLog::open(dir.path(), TRANSACTION_STATE_TOPIC, 0).unwrap();
    let mut a = initialized("a");
    let first = a.as_transit();
    add(&mut a, &[tp("x", 0)], 2_000);
    let second = a.as_transit();
    let b = initialized("b").as_transit();
    let batches = [
        build_batch("a", Some(&first), 2, 1).unwrap(),
        build_batch("b", Some(&b), 2, 1).unwrap(),
        build_batch("a", Some(&second), 2, 2).unwrap(),
        build_batch("b", None, 2, 3).unwrap(),
    ];
    for batch in batches {
        let validated = crate::storage::validate_records(batch, &log.config(), 10).unwrap();
        log.append(validated, 0, 10).unwrap();
    }
    let mut replay = Replay::default();
    replay.load(&log);
    assert_eq!(replay.records, 4);
    assert_eq!(replay.skipped, 0);
    assert_eq!(replay.transactions.len(), 1);
    let loaded = &replay.transactions["a"];
    assert_eq!(loaded.state, TxnState::Ongoing);
    assert_eq!(loaded.partitions, BTreeSet::from([tp("x", 0)]));
}

/// One marker written: topic, partition, producer id, epoch, coordinator epoch, commit.
type Written = (String, i32, i64, i16, i32, bool);

/// The coordinator's boundary: records the markers asked for, failing the partitions
/// listed in `failing` with their code.
struct TestMarkers {
    written: StdMutex<Vec<Written>>,
    failing: Vec<(TopicPartition, i16)>,
}

impl MarkerWriter for TestMarkers {
    fn write_marker(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        commit: bool,
    ) -> Result<(), i16> {
        if let Some((_, code)) = self
            .failing
            .iter()
            .find(|(p, _)| *p == tp(topic, partition))
        {
            return Err(*code);
        }
        self.written.lock().unwrap().push((
            topic.to_string(),
            partition,
            producer_id,
            producer_epoch,
            coordinator_epoch,
            commit,
        ));
        Ok(())
    }
}

#[test]
fn marker_rounds_retry_drop_and_abandon_as_kafka() {
    let writer = TestMarkers {
        written: StdMutex::new(Vec::new()),
        failing: vec![
            (tp("b", 0), NOT_LEADER_OR_FOLLOWER),
            (tp("c", 0), UNSUPPORTED_FOR_MESSAGE_FORMAT),
        ],
    };
    let parts = [tp("a", 0), tp("b", 0), tp("c", 0)];
    let round = write_round(&writer, &parts, 7, 3, 5, true);
    assert_eq!(round.done, vec![tp("a", 0), tp("c", 0)]);
    assert_eq!(round.retry, vec![(tp("b", 0), NOT_LEADER_OR_FOLLOWER)]);
    assert_eq!(round.abandoned, None);
    assert_eq!(
        writer.written.lock().unwrap().as_slice(),
        &[("a".to_string(), 0, 7, 3, 5, true)]
    );

    let fenced = TestMarkers {
        written: StdMutex::new(Vec::new()),
        failing: vec![(tp("a", 0), TRANSACTION_COORDINATOR_FENCED)],
    };
    let round = write_round(&fenced, &parts, 7, 3, 5, false);
    assert_eq!(round.abandoned, Some(TRANSACTION_COORDINATOR_FENCED));
    assert!(fenced.written.lock().unwrap().is_empty());
}

#[test]
fn append_errors_map_as_kafkas_append_transaction_to_log() {
    assert_eq!(append_error(NOT_ENOUGH_REPLICAS), COORDINATOR_NOT_AVAILABLE);
    assert_eq!(
        append_error(UNKNOWN_TOPIC_OR_PARTITION),
        COORDINATOR_NOT_AVAILABLE
    );
    assert_eq!(append_error(NOT_LEADER_OR_FOLLOWER), NOT_COORDINATOR);
    assert_eq!(append_error(KAFKA_STORAGE_ERROR), NOT_COORDINATOR);
    assert_eq!(append_error(MESSAGE_TOO_LARGE), UNKNOWN_SERVER_ERROR);
}

#[test]
fn a_fence_under_transaction_version_2_bumps_past_the_fenced_epoch() {
    let mut meta = initialized("t");
    add(&mut meta, &[tp("a", 0)], 2_000);
    let fence = meta.prepare_fence_epoch().unwrap();
    assert_eq!(fence.producer_epoch, 1);
    let EndDecision::Write {
        transit,
        epoch_fence,
    } = rules::end_txn(&mut meta, 7, 1, false, false, 2, &mut no_id(), 3_000).unwrap()
    else {
        panic!("expected a write");
    };
    assert!(epoch_fence);
    assert_eq!(
        (transit.producer_epoch, transit.last_producer_epoch),
        (2, 1)
    );
    meta.complete_transition(&transit).unwrap();
    complete(&mut meta);
    assert_eq!(
        (meta.state, meta.producer_epoch),
        (TxnState::CompleteAbort, 2)
    );
    assert_eq!(
        rules::end_txn(&mut meta, 7, 0, true, true, 2, &mut no_id(), 1),
        Err(PRODUCER_FENCED)
    );
}
