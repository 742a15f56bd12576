//! The leader's rules: the high watermark over the ISR, ISR shrinking after
//! `replica.lag.time.max.ms` and expansion after catching up, `min.insync.replicas`,
//! `acks=all` waits, the AlterPartition round trip, and a follower's fetch (epochs,
//! diverging epochs).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gregor_protocol::error_code;
use gregor_protocol::records::{NewRecord, RecordBatchBuilder};

use super::follower_fetch::{FollowerFetch, read_for_follower};
use super::leader::now_ms;
use super::replica::ReplicaState;
use super::*;
use crate::storage::{LogConfig, PartitionLog, validate_records};

const TOPIC: &str = "replicated";
const LAG_MS: i64 = 100;

fn log_in(dir: &std::path::Path) -> Arc<PartitionLog> {
    Arc::new(PartitionLog::create(dir, TOPIC, 0).expect("log"))
}

fn append(log: &PartitionLog, count: usize, epoch: i32) {
    let records: Vec<NewRecord> = (0..count)
        .map(|i| NewRecord::new(now_ms(), None, Some(Bytes::from(format!("v{i}")))))
        .collect();
    let batch = RecordBatchBuilder::new().build(&records).expect("batch");
    let validated = validate_records(batch, &log.config(), now_ms()).expect("valid");
    log.append(validated, epoch, now_ms()).expect("append");
}

fn leadership(epoch: i32, isr: &[i32], replicas: &[i32]) -> Leadership {
    Leadership {
        leader_epoch: epoch,
        partition_epoch: 0,
        isr: isr.to_vec(),
        replicas: replicas.to_vec(),
    }
}

fn leader_of(
    log: &Arc<PartitionLog>,
    leadership: Leadership,
    alter: Option<AlterPartitionSender>,
    now: i64,
) -> Arc<LeaderPartition> {
    LeaderPartition::new(
        TOPIC,
        gregor_protocol::Uuid::nil(),
        0,
        1,
        7,
        LAG_MS,
        Arc::clone(log),
        leadership,
        alter,
        now,
    )
}

fn set_min_isr(log: &PartitionLog, min: i32) {
    log.set_config(LogConfig {
        min_insync_replicas: min,
        ..LogConfig::default()
    });
}

#[test]
fn a_follower_catches_up_by_fetching_at_the_leaders_end_or_its_previous_end() {
    let mut state = ReplicaState::EMPTY;
    state.reset(1_000, 10, true, true);
    assert!(state.is_caught_up(10, 1_050, LAG_MS));
    state.update_fetch_state(4, 0, 1_010, 10, 3);
    assert_eq!(state.last_caught_up_time_ms, 1_000);
    // Reaching what the leader had at the previous fetch counts from that fetch.
    state.update_fetch_state(10, 0, 1_200, 15, 3);
    assert_eq!(state.last_caught_up_time_ms, 1_010);
    assert!(!state.is_caught_up(15, 1_200, LAG_MS));
    state.update_fetch_state(15, 0, 1_300, 15, 3);
    assert_eq!(state.last_caught_up_time_ms, 1_300);
    assert!(
        state.is_caught_up(15, 9_999, LAG_MS),
        "it has the leader's end"
    );
    // Out of the ISR when a new leader takes over: never caught up until it fetches.
    state.reset(2_000, 15, true, false);
    assert_eq!(
        (state.log_end_offset, state.last_caught_up_time_ms),
        (-1, 0)
    );
}

#[test]
fn the_high_watermark_is_the_smallest_end_of_the_isr() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = log_in(tmp.path());
    log.set_hw_follows_leo(false);
    append(&log, 10, 0);
    let now = now_ms();
    let leader = leader_of(&log, leadership(1, &[1, 2, 3], &[1, 2, 3]), None, now);
    assert_eq!(log.high_watermark(), 0, "followers' ends are unknown yet");
    leader
        .on_follower_fetch(2, 5, 4, 0, now, true)
        .expect("fetch");
    assert_eq!(log.high_watermark(), 0, "replica 3 has not fetched");
    let outcome = leader
        .on_follower_fetch(3, 5, 6, 0, now, true)
        .expect("fetch");
    assert!(outcome.high_watermark_moved);
    assert_eq!(log.high_watermark(), 4);
    leader
        .on_follower_fetch(2, 5, 10, 0, now, true)
        .expect("fetch");
    assert_eq!(log.high_watermark(), 6);
    leader
        .on_follower_fetch(3, 5, 10, 0, now, true)
        .expect("fetch");
    assert_eq!(log.high_watermark(), 10);
    assert_eq!(leader.replica_state(3).map(|r| r.broker_epoch), Some(5));
    // A broker that is not a replica is refused.
    assert_eq!(
        leader.on_follower_fetch(9, 5, 10, 0, now, true),
        Err(error_code::UNKNOWN_LEADER_EPOCH)
    );
    // Its own epoch starts at the log end offset in the epoch cache (Kafka's makeLeader).
    assert_eq!(
        log.leader_epochs()
            .last()
            .map(|e| (e.epoch, e.start_offset)),
        Some((1, 10))
    );
}

#[test]
fn a_lagging_follower_leaves_the_isr_and_the_high_watermark_moves_on() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = log_in(tmp.path());
    log.set_hw_follows_leo(false);
    append(&log, 10, 0);
    let t0 = now_ms();
    let leader = leader_of(&log, leadership(1, &[1, 2, 3], &[1, 2, 3]), None, t0);
    leader
        .on_follower_fetch(2, -1, 10, 0, t0 + 10, true)
        .expect("fetch");
    leader
        .on_follower_fetch(3, -1, 6, 0, t0 + 10, true)
        .expect("fetch");
    assert_eq!(log.high_watermark(), 6);
    assert_eq!(leader.maybe_shrink_isr(t0 + 50), None, "within the lag");
    let proposed = leader.maybe_shrink_isr(t0 + 10 + LAG_MS + 1);
    assert_eq!(
        proposed,
        Some(vec![1, 2]),
        "3 has not caught up for too long"
    );
    assert!(leader.has_inflight_change());
    assert_eq!(
        leader.maybe_shrink_isr(t0 + 1_000),
        None,
        "one change at a time"
    );
    // Until the controller commits it, the larger ISR holds the high watermark.
    assert_eq!(leader.maximal_isr(), vec![1, 2, 3]);
    assert_eq!(log.high_watermark(), 6);
    leader.on_alter_partition_answer(
        &[1, 2],
        Ok(CommittedIsr {
            leader_id: 1,
            leader_epoch: 1,
            isr: vec![1, 2],
            partition_epoch: 1,
        }),
    );
    assert_eq!(leader.isr(), vec![1, 2]);
    assert!(!leader.has_inflight_change());
    // 3 was last caught up long ago: no longer waited for.
    leader.maybe_increment_high_watermark(t0 + 1_000);
    assert_eq!(log.high_watermark(), 10);
}

#[test]
fn a_follower_rejoins_once_it_reaches_the_high_watermark_and_this_epoch() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = log_in(tmp.path());
    log.set_hw_follows_leo(false);
    append(&log, 6, 0);
    log.maybe_increment_high_watermark(6);
    log.set_hw_follows_leo(false);
    append(&log, 4, 0);
    let now = now_ms();
    // Leader of epoch 1 from offset 10 on, high watermark 6.
    let leader = leader_of(&log, leadership(1, &[1, 2], &[1, 2, 3]), None, now);
    leader
        .on_follower_fetch(2, -1, 6, 0, now, true)
        .expect("fetch");
    assert_eq!(log.high_watermark(), 6);
    let outcome = leader
        .on_follower_fetch(3, -1, 8, 0, now, true)
        .expect("fetch");
    assert!(
        !outcome.expansion_proposed,
        "at the high watermark but short of this epoch's start"
    );
    let outcome = leader
        .on_follower_fetch(3, -1, 10, 0, now, false)
        .expect("fetch");
    assert!(!outcome.expansion_proposed, "not eligible (fenced)");
    let outcome = leader
        .on_follower_fetch(3, -1, 10, 0, now, true)
        .expect("fetch");
    assert!(outcome.expansion_proposed);
    assert_eq!(leader.maximal_isr(), vec![1, 2, 3]);
    assert_eq!(leader.isr(), vec![1, 2]);
    // A refusal drops the change; the next fetch proposes again.
    leader.on_alter_partition_answer(&[1, 2, 3], Err(error_code::INELIGIBLE_REPLICA));
    assert!(!leader.has_inflight_change());
    let outcome = leader
        .on_follower_fetch(3, -1, 10, 0, now, true)
        .expect("fetch");
    assert!(outcome.expansion_proposed);
}

#[test]
fn min_insync_replicas_gates_acks_all() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = log_in(tmp.path());
    set_min_isr(&log, 2);
    log.set_hw_follows_leo(false);
    append(&log, 10, 0);
    let now = now_ms();
    let leader = leader_of(&log, leadership(1, &[1], &[1, 2]), None, now);
    assert_eq!(
        leader.check_acks_all(),
        Err(error_code::NOT_ENOUGH_REPLICAS)
    );
    // KIP-966: under min ISR the high watermark stays.
    assert_eq!(log.high_watermark(), 0);
    leader.update_leadership(
        Leadership {
            partition_epoch: 1,
            ..leadership(1, &[1, 2], &[1, 2])
        },
        now,
    );
    assert_eq!(leader.check_acks_all(), Ok(()));
    assert_eq!(leader.acks_all_outcome(10), None, "not replicated yet");
    leader
        .on_follower_fetch(2, -1, 10, 0, now, true)
        .expect("fetch");
    assert_eq!(leader.acks_all_outcome(10), Some(error_code::NONE));
    // The ISR shrank below min.insync.replicas after the records were replicated.
    leader.update_leadership(
        Leadership {
            partition_epoch: 2,
            ..leadership(1, &[1], &[1, 2])
        },
        now,
    );
    assert_eq!(
        leader.acks_all_outcome(10),
        Some(error_code::NOT_ENOUGH_REPLICAS_AFTER_APPEND)
    );
    // min.insync.replicas above the replica count: the replica count applies.
    let single = tempfile::tempdir().expect("tempdir");
    let alone = log_in(single.path());
    set_min_isr(&alone, 3);
    let only = leader_of(&alone, leadership(1, &[1], &[1]), None, now);
    assert_eq!(only.check_acks_all(), Ok(()));
    assert!(
        alone.hw_follows_leo(),
        "a single replica commits every append"
    );
    only.resign();
    assert_eq!(
        only.check_acks_all(),
        Err(error_code::NOT_LEADER_OR_FOLLOWER)
    );
    assert_eq!(
        only.acks_all_outcome(0),
        Some(error_code::NOT_LEADER_OR_FOLLOWER)
    );
}

#[tokio::test]
async fn acks_all_completes_when_the_follower_catches_up() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = log_in(tmp.path());
    log.set_hw_follows_leo(false);
    let now = now_ms();
    let leader = leader_of(&log, leadership(1, &[1, 2], &[1, 2]), None, now);
    append(&log, 5, 1);
    let waiting = {
        let leader = Arc::clone(&leader);
        tokio::spawn(async move { acks::wait_for_isr(&leader, 5, Duration::from_secs(60)).await })
    };
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished());
    leader
        .on_follower_fetch(2, -1, 3, 0, now, true)
        .expect("fetch");
    leader
        .on_follower_fetch(2, -1, 5, 0, now, true)
        .expect("fetch");
    assert_eq!(waiting.await.expect("task"), error_code::NONE);

    // Nobody fetches: the Produce's timeout answers.
    append(&log, 1, 1);
    let timed_out = acks::wait_for_isr(&leader, 6, Duration::from_millis(20)).await;
    assert_eq!(timed_out, error_code::REQUEST_TIMED_OUT);
    // Losing the lead ends the wait.
    let waiting = {
        let leader = Arc::clone(&leader);
        tokio::spawn(async move { acks::wait_for_isr(&leader, 6, Duration::from_secs(60)).await })
    };
    tokio::task::yield_now().await;
    leader.resign();
    assert_eq!(
        waiting.await.expect("task"),
        error_code::NOT_LEADER_OR_FOLLOWER
    );
}

#[tokio::test]
async fn isr_changes_go_through_the_controller_channel() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = log_in(tmp.path());
    log.set_hw_follows_leo(false);
    append(&log, 4, 0);
    let (sender, mut receiver) = alter_partition::channel();
    let leader = leader_of(
        &log,
        leadership(3, &[1, 2], &[1, 2]),
        Some(sender),
        now_ms(),
    );
    let mut changes = leader.subscribe_changes();
    // Let the follower (never fetching) fall behind for longer than the lag, so that it is
    // neither in the ISR nor waited for as about to join it.
    tokio::time::sleep(Duration::from_millis(LAG_MS as u64 + 20)).await;
    assert_eq!(leader.maybe_shrink_isr(now_ms()), Some(vec![1]));
    let request = receiver.recv().await.expect("a proposal");
    assert_eq!(
        request.change,
        IsrChange {
            broker_id: 1,
            broker_epoch: 7,
            topic_id: gregor_protocol::Uuid::nil(),
            topic: TOPIC.to_owned(),
            partition: 0,
            leader_epoch: 3,
            new_isr_with_epochs: vec![(1, -1)],
            leader_recovery_state: 0,
            partition_epoch: 0,
        }
    );
    // Answered as the controller commits it: a new partition epoch.
    request
        .reply
        .send(Ok(CommittedIsr {
            leader_id: 1,
            leader_epoch: 3,
            isr: request.change.new_isr(),
            partition_epoch: 1,
        }))
        .expect("reply");
    while leader.isr() != vec![1] {
        changes.changed().await.expect("changes");
    }
    assert!(!leader.has_inflight_change());
    // The ISR of one: the high watermark reaches the log end at once.
    assert_eq!(log.high_watermark(), 4);
    // Appends move it too (the task watching the log end).
    append(&log, 2, 3);
    let mut ends = log.subscribe();
    while log.high_watermark() != 6 {
        ends.changed().await.expect("ends");
    }
}

#[test]
fn a_follower_fetch_checks_epochs_and_answers_a_diverging_epoch() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = log_in(tmp.path());
    log.set_hw_follows_leo(false);
    append(&log, 5, 0);
    append(&log, 5, 2);
    let now = now_ms();
    let leader = leader_of(&log, leadership(2, &[1, 2], &[1, 2]), None, now);
    let fetch = FollowerFetch {
        replica_id: 2,
        broker_epoch: -1,
        fetch_offset: 7,
        log_start_offset: 0,
        current_leader_epoch: 2,
        last_fetched_epoch: 1,
        max_bytes: 1 << 20,
        min_one_message: true,
        isr_eligible: true,
    };
    // The follower wrote epoch 1 past offset 5, which the leader never had.
    let answer = read_for_follower(&leader, &fetch, now);
    assert_eq!(answer.error, error_code::NONE);
    assert_eq!(answer.diverging_epoch, Some((0, 5)));
    assert!(answer.records.is_empty());
    assert_eq!(
        leader.replica_state(2).map(|r| r.log_end_offset),
        Some(-1),
        "a diverging fetch does not move the follower's state"
    );
    // After truncating to 5 it fetches on in epoch 0.
    let answer = read_for_follower(
        &leader,
        &FollowerFetch {
            fetch_offset: 5,
            last_fetched_epoch: 0,
            ..fetch
        },
        now,
    );
    assert_eq!(
        (answer.error, answer.diverging_epoch),
        (error_code::NONE, None)
    );
    assert!(!answer.records.is_empty());
    assert_eq!(leader.replica_state(2).map(|r| r.log_end_offset), Some(5));
    assert_eq!(answer.high_watermark, 5);
    // Up to the log end, above the high watermark.
    let answer = read_for_follower(
        &leader,
        &FollowerFetch {
            fetch_offset: 10,
            last_fetched_epoch: 2,
            ..fetch
        },
        now,
    );
    assert_eq!(
        (answer.error, answer.high_watermark),
        (error_code::NONE, 10)
    );
    for (epoch, code) in [
        (1, error_code::FENCED_LEADER_EPOCH),
        (3, error_code::UNKNOWN_LEADER_EPOCH),
    ] {
        let answer = read_for_follower(
            &leader,
            &FollowerFetch {
                current_leader_epoch: epoch,
                ..fetch
            },
            now,
        );
        assert_eq!(answer.error, code);
    }
    let stranger = read_for_follower(
        &leader,
        &FollowerFetch {
            replica_id: 5,
            current_leader_epoch: -1,
            ..fetch
        },
        now,
    );
    assert_eq!(stranger.error, error_code::NOT_LEADER_OR_FOLLOWER);
    let beyond = read_for_follower(
        &leader,
        &FollowerFetch {
            fetch_offset: 11,
            last_fetched_epoch: -1,
            ..fetch
        },
        now,
    );
    assert_eq!(beyond.error, error_code::OFFSET_OUT_OF_RANGE);
}

#[test]
fn replicated_partitions_hold_their_high_watermark_at_start_up() {
    use crate::cluster::image::MetadataImage;
    let tmp = tempfile::tempdir().expect("tempdir");
    let logs = LogManager::open(&[tmp.path().to_owned()]).expect("logs");
    let single = logs.create("single", 0).expect("log");
    append(&single, 3, 0);
    // An image without topics (a single-node broker's partitions have one replica): nothing
    // changes.
    assert_eq!(
        hold_replicated_high_watermarks(&MetadataImage::empty(), &logs),
        0
    );
    assert!(single.hw_follows_leo());

    use gregor_protocol::MetadataRecord;
    use gregor_protocol::messages::partition_record::PartitionRecord;
    use gregor_protocol::messages::topic_record::TopicRecord;
    let id = gregor_protocol::Uuid::from_u128(7);
    let mut image = MetadataImage::empty();
    let records = [
        MetadataRecord::Topic(TopicRecord {
            name: "single".into(),
            topic_id: id,
            ..Default::default()
        }),
        MetadataRecord::Partition(PartitionRecord {
            partition_id: 0,
            topic_id: id,
            replicas: vec![0, 1, 2],
            isr: vec![0, 1, 2],
            leader: 1,
            ..Default::default()
        }),
    ];
    for (offset, record) in records.iter().enumerate() {
        image.apply(offset as i64, record).expect("apply");
    }
    single.restore_high_watermark(1);
    assert_eq!(hold_replicated_high_watermarks(&image, &logs), 1);
    assert_eq!(
        (single.high_watermark(), single.log_end_offset()),
        (1, 3),
        "the checkpointed high watermark, not the log end"
    );
}
