//! Tests of a log's replication side: follower appends keeping the leader's offsets and
//! epochs, truncation (then the leader's batches again, byte for byte), the high watermark
//! separate from the log end offset and its checkpoint across a restart.

use std::fs;

use bytes::Bytes;
use gregor_protocol::records::{NewRecord, RecordBatchBuilder};

use super::leader_epoch::EpochEntry;
use super::segment::now_ms;
use super::*;

const TOPIC: &str = "repl";

fn batch(tag: &str, count: usize) -> Bytes {
    let records: Vec<NewRecord> = (0..count)
        .map(|i| NewRecord::new(now_ms(), None, Some(Bytes::from(format!("{tag}-{i}")))))
        .collect();
    RecordBatchBuilder::new().build(&records).expect("batch")
}

/// A batch of producer `pid` (`txn_tests`' builder).
fn idempotent(pid: i64, seq: i32, count: usize, transactional: bool) -> Bytes {
    super::txn_tests::batch(pid, seq, count, transactional)
}

fn append(log: &PartitionLog, records: Bytes, epoch: i32) -> AppendInfo {
    let now = now_ms();
    let validated = validate_records(records, &log.config(), now).expect("valid");
    log.append(validated, epoch, now).expect("append")
}

/// Everything the log holds from `from`, as a follower reads it (up to the log end).
fn read_all(log: &PartitionLog, from: i64) -> Bytes {
    let mut out = Vec::new();
    let mut at = from;
    while at < log.log_end_offset() {
        let read = log
            .read_with_isolation(at, usize::MAX, true, FetchIsolation::LogEnd)
            .expect("read");
        if read.records.is_empty() {
            break;
        }
        at = last_offset(&read.records) + 1;
        out.extend_from_slice(&read.records);
    }
    Bytes::from(out)
}

fn last_offset(records: &Bytes) -> i64 {
    let mut at = 0;
    let mut last = -1;
    while at < records.len() {
        let header = gregor_protocol::records::BatchHeader::decode(&records[at..]).expect("batch");
        last = header.last_offset();
        at += header.batch_length as usize + 12;
    }
    last
}

fn pairs(entries: &[EpochEntry]) -> Vec<(i32, i64)> {
    entries.iter().map(|e| (e.epoch, e.start_offset)).collect()
}

fn segment_bytes(log: &PartitionLog) -> Vec<Vec<u8>> {
    log.segments()
        .iter()
        .map(|s| fs::read(&s.path).expect("segment"))
        .collect()
}

#[test]
fn a_follower_append_keeps_the_leaders_offsets_and_epochs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(tmp.path().join("a")).expect("dir");
    fs::create_dir_all(tmp.path().join("b")).expect("dir");
    let leader = PartitionLog::create(&tmp.path().join("a"), TOPIC, 0).expect("leader");
    let follower = PartitionLog::create(&tmp.path().join("b"), TOPIC, 0).expect("follower");
    append(&leader, batch("a", 3), 0);
    append(&leader, batch("b", 2), 0);
    append(&leader, batch("c", 4), 3);
    // A compacted leader's log has gaps between batches; a follower keeps them.
    let mut gap = batch("d", 1).to_vec();
    gregor_protocol::records::set_base_offset(&mut gap, 20).expect("v2");
    gregor_protocol::records::set_partition_leader_epoch(&mut gap, 5).expect("v2");
    leader.append_as_follower(Bytes::from(gap)).expect("gap");

    let records = read_all(&leader, 0);
    let info = follower
        .append_as_follower(records.clone())
        .expect("append")
        .expect("records");
    assert_eq!((info.base_offset, info.last_offset), (0, 20));
    assert_eq!(follower.log_end_offset(), 21);
    assert_eq!(read_all(&follower, 0), records);
    assert_eq!(
        pairs(&follower.leader_epochs()),
        [(0, 0), (3, 5), (5, 20)],
        "the leader's epochs start entries in the follower's cache"
    );
    assert_eq!(segment_bytes(&follower), segment_bytes(&leader));
    assert_eq!(
        follower.append_as_follower(Bytes::new()).expect("empty"),
        None
    );
}

#[test]
fn a_follower_append_refuses_what_the_leader_could_not_have_sent() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let leader = PartitionLog::create(tmp.path(), TOPIC, 0).expect("leader");
    let other = tempfile::tempdir().expect("tempdir");
    let follower = PartitionLog::create(other.path(), TOPIC, 0).expect("follower");
    append(&leader, batch("a", 3), 0);
    let records = read_all(&leader, 0);
    follower
        .append_as_follower(records.clone())
        .expect("append");
    // The same batch again starts below the log end offset: truncate first.
    assert!(matches!(
        follower.append_as_follower(records.clone()),
        Err(StorageError::OffsetOutOfRange { offset: 0, .. })
    ));
    // A flipped byte in the records fails the CRC.
    let mut bad = records.to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    gregor_protocol::records::set_base_offset(&mut bad, 3).expect("v2");
    assert!(matches!(
        follower.append_as_follower(Bytes::from(bad)),
        Err(StorageError::InvalidBatch(_))
    ));
    // A response cut inside its last batch: the whole ones go in, the rest is left out.
    let mut next = records.to_vec();
    gregor_protocol::records::set_base_offset(&mut next, 3).expect("v2");
    let mut cut = next.clone();
    gregor_protocol::records::set_base_offset(&mut cut, 6).expect("v2");
    let whole = next.len();
    next.extend_from_slice(&cut[..cut.len() - 5]);
    assert_eq!(
        follower
            .append_as_follower(Bytes::from(next.clone()))
            .expect("append")
            .map(|info| (info.base_offset, info.last_offset)),
        Some((3, 5))
    );
    assert_eq!(follower.log_end_offset(), 6);
    assert_eq!(
        follower
            .append_as_follower(Bytes::from(cut[..10].to_vec()))
            .expect("nothing whole"),
        None
    );
    assert_eq!(follower.log_end_offset(), 6);
    assert_eq!(read_all(&follower, 3), Bytes::from(next[..whole].to_vec()));
}

#[test]
fn truncation_then_the_leaders_batches_give_the_leaders_log() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    fs::create_dir_all(&a).expect("dir");
    fs::create_dir_all(&b).expect("dir");
    let leader = PartitionLog::create(&a, TOPIC, 0).expect("leader");
    let follower = PartitionLog::create(&b, TOPIC, 0).expect("follower");
    append(&leader, batch("a", 5), 0);
    append(&leader, batch("b", 5), 0);
    follower
        .append_as_follower(read_all(&leader, 0))
        .expect("append");
    // The follower, leader in epoch 1 for a while, wrote batches the new leader (epoch 2)
    // never had; the leader writes others at the same offsets.
    append(&follower, batch("x", 4), 1);
    append(&follower, idempotent(7, 0, 2, false), 1);
    follower.roll_segment().expect("roll");
    append(&follower, batch("y", 3), 1);
    assert_eq!(pairs(&follower.leader_epochs()), [(0, 0), (1, 10)]);
    assert!(follower.producer_state(7).is_some());
    append(&leader, batch("c", 6), 2);
    append(&leader, batch("d", 1), 2);

    // The diverging epoch's end offset on the leader: where the follower truncates.
    assert_eq!(leader.end_offset_for_epoch(1, 2), (0, 10));
    assert!(follower.truncate_to(10).expect("truncate"));
    assert_eq!(follower.log_end_offset(), 10);
    assert_eq!(pairs(&follower.leader_epochs()), [(0, 0)]);
    assert_eq!(follower.segments().len(), 1, "the later segment is gone");
    assert!(
        follower.producer_state(7).is_none(),
        "rebuilt without the cut batch"
    );
    assert_eq!(
        fs::read_to_string(follower.dir().join(leader_epoch::LEADER_EPOCH_CHECKPOINT))
            .expect("checkpoint"),
        "0\n1\n0 0\n"
    );
    assert!(
        !follower.truncate_to(10).expect("again"),
        "nothing past the end"
    );

    follower
        .append_as_follower(read_all(&leader, 10))
        .expect("append the leader's rest");
    assert_eq!(read_all(&follower, 0), read_all(&leader, 0));
    assert_eq!(segment_bytes(&follower), segment_bytes(&leader));
    assert_eq!(follower.leader_epochs(), leader.leader_epochs());
    for suffix in ["index", "timeindex"] {
        let name = format!("{:020}.{suffix}", 0);
        assert_eq!(
            fs::read(follower.dir().join(&name)).expect("follower index"),
            fs::read(leader.dir().join(&name)).expect("leader index"),
            "{name}"
        );
    }

    // The indexes were rebuilt for the truncated segment: a reopened follower agrees.
    follower.close().expect("close");
    drop(follower);
    let reopened = PartitionLog::open(&b, TOPIC, 0).expect("reopen");
    assert_eq!(read_all(&reopened, 0), read_all(&leader, 0));
    assert_eq!(reopened.leader_epochs(), leader.leader_epochs());
}

/// A broker that led an epoch without appending in it has the epoch cached at its log end;
/// the new leader answers its fetch with the epoch before and that same end offset. The
/// truncation there removes nothing from the log but must drop the cached epoch, or the
/// follower sends it again with every fetch (Kafka's `truncateTo` comment on this case).
#[test]
fn truncation_at_the_log_end_drops_an_epoch_led_without_appends() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = PartitionLog::create(tmp.path(), TOPIC, 0).expect("log");
    append(&log, batch("a", 4), 0);
    // Leader in epoch 1 (cached at the log end, as `makeLeader` does), nothing appended.
    log.end_offset_for_epoch(1, 1);
    assert_eq!(pairs(&log.leader_epochs()), [(0, 0), (1, 4)]);

    assert!(!log.truncate_to(4).expect("truncate"), "no batch removed");
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(pairs(&log.leader_epochs()), [(0, 0)]);
    assert_eq!(
        fs::read_to_string(log.dir().join(leader_epoch::LEADER_EPOCH_CHECKPOINT))
            .expect("checkpoint"),
        "0\n1\n0 0\n"
    );
}

#[test]
fn truncation_inside_a_batch_drops_the_whole_batch() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = PartitionLog::create(tmp.path(), TOPIC, 0).expect("log");
    append(&log, batch("a", 4), 0);
    append(&log, batch("b", 4), 0);
    log.truncate_to(6).expect("truncate");
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(last_offset(&read_all(&log, 0)), 3);
    // The next append goes on at the new end.
    assert_eq!(append(&log, batch("c", 1), 1).base_offset, 4);
}

#[test]
fn truncating_fully_starts_an_empty_log_at_the_offset() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = PartitionLog::create(tmp.path(), TOPIC, 0).expect("log");
    append(&log, batch("a", 4), 0);
    append(&log, idempotent(3, 0, 2, false), 1);
    log.truncate_fully_and_start_at(100).expect("truncate");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (100, 100));
    assert_eq!(log.high_watermark(), 100);
    assert!(log.leader_epochs().is_empty());
    assert!(log.producer_state(3).is_none());
    assert_eq!(log.segments().len(), 1);
    assert_eq!(log.segments()[0].base_offset, 100);
    let mut next = batch("b", 2).to_vec();
    gregor_protocol::records::set_base_offset(&mut next, 100).expect("v2");
    gregor_protocol::records::set_partition_leader_epoch(&mut next, 4).expect("v2");
    log.append_as_follower(Bytes::from(next)).expect("append");
    assert_eq!(log.log_end_offset(), 102);
    assert_eq!(pairs(&log.leader_epochs()), [(4, 100)]);
    // A target at or below the first segment's base offset is the same.
    log.truncate_to(50).expect("truncate");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (50, 50));
}

#[test]
fn the_high_watermark_bounds_consumers_not_followers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = PartitionLog::create(tmp.path(), TOPIC, 0).expect("log");
    append(&log, batch("a", 3), 0);
    assert!(
        log.hw_follows_leo(),
        "a single replica commits every append"
    );
    assert_eq!(log.high_watermark(), 3);
    log.set_hw_follows_leo(false);
    append(&log, batch("b", 3), 0);
    assert_eq!((log.high_watermark(), log.log_end_offset()), (3, 6));
    let read = log.read(0, usize::MAX, true).expect("read");
    assert_eq!(
        last_offset(&read.records),
        2,
        "consumers stop at the high watermark"
    );
    assert_eq!((read.high_watermark, read.last_stable_offset), (3, 3));
    assert!(
        log.read(3, usize::MAX, true)
            .expect("read")
            .records
            .is_empty()
    );
    let follower_read = log
        .read_with_isolation(0, usize::MAX, true, FetchIsolation::LogEnd)
        .expect("read");
    assert_eq!(last_offset(&follower_read.records), 5);
    // Only upwards for the leader, bounded by the log end offset.
    assert_eq!(log.maybe_increment_high_watermark(2), None);
    assert_eq!(log.maybe_increment_high_watermark(99), Some(6));
    assert_eq!(log.high_watermark(), 6);
    // A follower takes the leader's, bounded by its own end, both ways.
    assert_eq!(log.update_follower_high_watermark(4), 4);
    assert_eq!(log.update_follower_high_watermark(50), 6);
    // DeleteRecords may not pass the high watermark.
    log.update_follower_high_watermark(4);
    assert!(matches!(
        log.delete_records_before(5),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    // Truncation brings it down.
    log.truncate_to(3).expect("truncate");
    assert_eq!(log.high_watermark(), 3);
    // Following the log end offset again (an ISR of one): everything is committed.
    append(&log, batch("c", 2), 1);
    log.set_hw_follows_leo(true);
    assert_eq!(log.high_watermark(), 5);
}

#[test]
fn the_high_watermark_checkpoint_survives_a_restart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dirs = vec![tmp.path().to_owned()];
    {
        let manager = LogManager::open(&dirs).expect("open");
        let log = manager.create(TOPIC, 0).expect("create");
        let single = manager.create(TOPIC, 1).expect("create");
        log.set_hw_follows_leo(false);
        append(&log, batch("a", 10), 0);
        append(&single, batch("a", 7), 0);
        log.maybe_increment_high_watermark(4);
        manager.shutdown().expect("shutdown");
    }
    let text = fs::read_to_string(tmp.path().join(REPLICATION_OFFSET_CHECKPOINT)).expect("file");
    assert_eq!(text, "0\n2\nrepl 0 4\nrepl 1 7\n");
    let manager = LogManager::open(&dirs).expect("reopen");
    let log = manager.get(TOPIC, 0).expect("log");
    // Until replication says otherwise the partition is its own only replica.
    assert_eq!(log.high_watermark(), 10);
    log.set_hw_follows_leo(false);
    assert_eq!(log.high_watermark(), 4, "restored from the checkpoint");
    assert_eq!(manager.get(TOPIC, 1).expect("log").high_watermark(), 7);
    manager.shutdown().expect("shutdown");

    // A checkpoint above the log end offset is clamped to it.
    fs::write(
        tmp.path().join(REPLICATION_OFFSET_CHECKPOINT),
        "0\n1\nrepl 0 99\n",
    )
    .expect("write");
    let manager = LogManager::open(&dirs).expect("reopen");
    let log = manager.get(TOPIC, 0).expect("log");
    log.set_hw_follows_leo(false);
    assert_eq!(log.high_watermark(), 10);
}

#[test]
fn follower_transactions_fill_the_transaction_index_and_truncation_cuts_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    fs::create_dir_all(&a).expect("dir");
    fs::create_dir_all(&b).expect("dir");
    let leader = PartitionLog::create(&a, TOPIC, 0).expect("leader");
    let follower = PartitionLog::create(&b, TOPIC, 0).expect("follower");
    append(&leader, idempotent(9, 0, 3, true), 0);
    leader
        .append_txn_marker(9, 0, 0, false, 0, now_ms())
        .expect("abort");
    append(&leader, idempotent(9, 3, 2, true), 0);
    follower
        .append_as_follower(read_all(&leader, 0))
        .expect("append");
    assert_eq!(follower.transaction_index(0), leader.transaction_index(0));
    assert_eq!(follower.transaction_index(0).len(), 1);
    assert_eq!(
        follower.last_stable_offset(),
        4,
        "the second transaction is open"
    );
    assert!(follower.has_ongoing_txn(9));
    follower.truncate_to(3).expect("truncate below the marker");
    assert!(follower.transaction_index(0).is_empty());
    assert!(
        follower.has_ongoing_txn(9),
        "the first transaction is open again"
    );
    assert_eq!(follower.last_stable_offset(), 0);
}

#[test]
fn a_follower_keeps_the_leaders_producer_state_for_when_it_leads() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    fs::create_dir_all(&a).expect("dir");
    fs::create_dir_all(&b).expect("dir");
    let leader = PartitionLog::create(&a, TOPIC, 0).expect("leader");
    let follower = PartitionLog::create(&b, TOPIC, 0).expect("follower");
    append(&leader, idempotent(11, 0, 3, false), 0);
    append(&leader, idempotent(11, 3, 2, false), 0);
    follower
        .append_as_follower(read_all(&leader, 0))
        .expect("append");
    assert_eq!(follower.producer_state(11), leader.producer_state(11));
    // Leading now: the producer's retry is recognised, its next batch continues the
    // sequence, a gap is refused, as on the old leader.
    let now = now_ms();
    let retry =
        validate_records(idempotent(11, 3, 2, false), &follower.config(), now).expect("valid");
    let info = follower.append(retry, 1, now).expect("retry");
    assert!(info.duplicate);
    assert_eq!(info.base_offset, 3);
    let next =
        validate_records(idempotent(11, 5, 1, false), &follower.config(), now).expect("valid");
    assert_eq!(follower.append(next, 1, now).expect("next").base_offset, 5);
    let gap =
        validate_records(idempotent(11, 9, 1, false), &follower.config(), now).expect("valid");
    assert!(matches!(
        follower.append(gap, 1, now),
        Err(StorageError::Producer(_))
    ));
}
