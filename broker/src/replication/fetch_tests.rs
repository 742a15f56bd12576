//! The follower's fetcher against a real broker in this process: a [`Broker`] (opened as
//! `gregor` opens it) serving connections on 127.0.0.1 leads the partitions, a second
//! [`LogManager`] with its own [`ReplicaManager`] follows them over TCP. Until cluster
//! metadata makes two `gregor` processes replicate, this is the end-to-end check of the
//! replica path: Fetch with replica state, follower appends, the high watermark and
//! `acks=all`, diverging-epoch truncation and the out-of-range reset.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gregor_protocol::error_code;
use gregor_protocol::messages::create_topics_request::{CreatableTopic, CreateTopicsRequest};
use gregor_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use gregor_protocol::records::{NewRecord, RecordBatchBuilder};
use tokio::sync::watch;

use super::client::BrokerClient;
use super::leader::now_ms;
use super::*;
use crate::broker::Broker;
use crate::config::Config;
use crate::storage::{FetchIsolation, LogManager, validate_records};

/// Generous: these only bound a broken test, never a passing one.
const PATIENCE: Duration = Duration::from_secs(60);

struct Leader {
    broker: Arc<Broker>,
    port: u16,
    stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Opens a one-node broker (node 1) and serves its PLAINTEXT listener.
async fn start_leader() -> Leader {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let controller = free_port();
    let config = Config::from_properties([
        ("process.roles", "broker,controller".to_owned()),
        ("node.id", "1".to_owned()),
        (
            "controller.quorum.voters",
            format!("1@127.0.0.1:{controller}"),
        ),
        (
            "listeners",
            format!("PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}"),
        ),
        ("controller.listener.names", "CONTROLLER".to_owned()),
        ("inter.broker.listener.name", "PLAINTEXT".to_owned()),
        ("log.dirs", dir.path().display().to_string()),
    ])
    .expect("config");
    let broker = tokio::task::spawn_blocking(move || Broker::open(config))
        .await
        .expect("task")
        .expect("open");
    let (stop, stopped) = watch::channel(false);
    let serving = Arc::clone(&broker);
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                return;
            };
            tokio::spawn(crate::connection_auth::serve_secured(
                stream,
                peer,
                "PLAINTEXT".to_owned(),
                crate::security::ListenerSecurity::plaintext(),
                Arc::clone(&serving),
                stopped.clone(),
            ));
        }
    });
    Leader {
        broker,
        port,
        stop,
        _dir: dir,
    }
}

async fn client(port: u16) -> BrokerClient {
    BrokerClient::connect(
        &crate::security::node_client::NodeConnector::plaintext(),
        "127.0.0.1",
        port,
        "test",
        64 << 20,
        PATIENCE,
    )
    .await
    .expect("connect")
}

async fn create_topic(leader: &Leader, name: &str) -> (gregor_protocol::Uuid, i32) {
    let mut client = client(leader.port).await;
    let version = client
        .version_for::<CreateTopicsRequest>(2, 7)
        .expect("version");
    let request = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.into(),
            num_partitions: 1,
            replication_factor: 1,
            ..Default::default()
        }],
        timeout_ms: 30_000,
        ..Default::default()
    };
    let response = client
        .send(&request, version, PATIENCE)
        .await
        .expect("send");
    assert_eq!(response.topics[0].error_code, error_code::NONE);
    let image = leader.broker.image();
    let topic = image.topic(name).expect("topic");
    (topic.id, topic.partitions[&0].leader_epoch)
}

fn batch(tag: &str, count: usize) -> Bytes {
    let records: Vec<NewRecord> = (0..count)
        .map(|i| NewRecord::new(now_ms(), None, Some(Bytes::from(format!("{tag}-{i}")))))
        .collect();
    RecordBatchBuilder::new().build(&records).expect("batch")
}

fn append(log: &PartitionLog, tag: &str, count: usize, epoch: i32) {
    let validated = validate_records(batch(tag, count), &log.config(), now_ms()).expect("valid");
    log.append(validated, epoch, now_ms()).expect("append");
}

fn whole_log(log: &PartitionLog) -> Bytes {
    let start = log.log_start_offset();
    log.read_with_isolation(start, usize::MAX, true, FetchIsolation::LogEnd)
        .expect("read")
        .records
}

async fn produce(port: u16, topic: &str, acks: i16, tag: &str) -> i16 {
    let mut client = client(port).await;
    let version = client
        .version_for::<ProduceRequest>(3, 11)
        .expect("version");
    let request = ProduceRequest {
        acks,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(batch(tag, 3)),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = client
        .send(&request, version, PATIENCE)
        .await
        .expect("send");
    response.responses[0].partition_responses[0].error_code
}

/// Polls `done` every few milliseconds until it holds (at most [`PATIENCE`]).
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn follower_config() -> ReplicationConfig {
    ReplicationConfig {
        fetch_backoff_ms: 20,
        fetch_wait_max_ms: 200,
        ..ReplicationConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_copies_the_leader_and_acks_all_waits_for_it() {
    let leader = start_leader().await;
    let (topic_id, epoch) = create_topic(&leader, "copied").await;
    let leader_log = leader.broker.logs.get("copied", 0).expect("log");
    let led = leader.broker.replicas.become_leader(
        Arc::clone(&leader_log),
        topic_id,
        Leadership {
            leader_epoch: epoch,
            partition_epoch: 0,
            isr: vec![1, 2],
            replicas: vec![1, 2],
        },
    );

    let follower_dir = tempfile::tempdir().expect("tempdir");
    let follower_logs = LogManager::open(&[follower_dir.path().to_owned()]).expect("logs");
    let follower_log = follower_logs.create("copied", 0).expect("log");
    let follower = ReplicaManager::new(2, follower_config(), None);
    let endpoint = LeaderEndpoint {
        id: 1,
        host: "127.0.0.1".to_owned(),
        port: leader.port,
    };
    follower.become_follower(Arc::clone(&follower_log), topic_id, &endpoint, epoch);
    assert_eq!(follower.fetchers().leader_of("copied", 0), Some(1));

    // acks=all is answered once the follower has the records (the high watermark passed
    // them), three times over.
    for tag in ["a", "b", "c"] {
        assert_eq!(
            produce(leader.port, "copied", -1, tag).await,
            error_code::NONE
        );
        assert!(follower_log.log_end_offset() >= leader_log.high_watermark());
    }
    assert_eq!(leader_log.high_watermark(), 9);
    eventually("the follower has the leader's log", || {
        follower_log.log_end_offset() == 9 && follower_log.high_watermark() == 9
    })
    .await;
    assert_eq!(whole_log(&follower_log), whole_log(&leader_log));
    assert_eq!(follower_log.leader_epochs(), leader_log.leader_epochs());
    assert_eq!(led.replica_state(2).map(|r| r.log_end_offset), Some(9));

    // An ISR below min.insync.replicas refuses acks=all before appending; acks=1 goes on.
    let mut config = leader_log.config().as_ref().clone();
    config.min_insync_replicas = 2;
    leader_log.set_config(config);
    led.update_leadership(
        Leadership {
            leader_epoch: epoch,
            partition_epoch: 1,
            isr: vec![1],
            replicas: vec![1, 2],
        },
        now_ms(),
    );
    assert_eq!(
        produce(leader.port, "copied", -1, "d").await,
        error_code::NOT_ENOUGH_REPLICAS
    );
    assert_eq!(leader_log.log_end_offset(), 9, "nothing appended");
    assert_eq!(
        produce(leader.port, "copied", 1, "e").await,
        error_code::NONE
    );
    eventually("the follower fetched the acks=1 records", || {
        follower_log.log_end_offset() == 12
    })
    .await;

    // The fetcher stops with the role.
    follower.stop_replica("copied", 0);
    assert_eq!(follower.fetchers().leader_of("copied", 0), None);
    let _ = leader.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diverged_follower_truncates_and_one_behind_the_log_start_starts_over() {
    let leader = start_leader().await;
    let (diverged_id, _) = create_topic(&leader, "diverged").await;
    let (behind_id, behind_epoch) = create_topic(&leader, "behind").await;
    let follower_dir = tempfile::tempdir().expect("tempdir");
    let follower_logs = LogManager::open(&[follower_dir.path().to_owned()]).expect("logs");
    let follower = ReplicaManager::new(2, follower_config(), None);
    let endpoint = LeaderEndpoint {
        id: 1,
        host: "127.0.0.1".to_owned(),
        port: leader.port,
    };

    // Both wrote offsets 0-4 in epoch 0; the follower, leader of epoch 1 for a moment,
    // wrote 5-7 that no one else has; the leader of epoch 2 wrote others from 5 on.
    let leader_log = leader.broker.logs.get("diverged", 0).expect("log");
    let follower_log = follower_logs.create("diverged", 0).expect("log");
    append(&leader_log, "a", 5, 0);
    follower_log
        .append_as_follower(whole_log(&leader_log))
        .expect("copy");
    append(&follower_log, "x", 3, 1);
    leader.broker.replicas.become_leader(
        Arc::clone(&leader_log),
        diverged_id,
        Leadership {
            leader_epoch: 2,
            partition_epoch: 0,
            isr: vec![1, 2],
            replicas: vec![1, 2],
        },
    );
    append(&leader_log, "b", 4, 2);
    follower.become_follower(Arc::clone(&follower_log), diverged_id, &endpoint, 2);

    // The leader's log start offset (8, inside its second batch) is past the follower's
    // empty log: the follower starts over there.
    let behind_leader = leader.broker.logs.get("behind", 0).expect("log");
    append(&behind_leader, "p", 5, behind_epoch);
    append(&behind_leader, "q", 5, behind_epoch);
    leader.broker.replicas.become_leader(
        Arc::clone(&behind_leader),
        behind_id,
        Leadership {
            leader_epoch: behind_epoch,
            partition_epoch: 0,
            isr: vec![1],
            replicas: vec![1, 2],
        },
    );
    assert_eq!(behind_leader.high_watermark(), 10, "an ISR of one");
    assert_eq!(behind_leader.delete_records_before(8).expect("delete"), 8);
    let behind_follower = follower_logs.create("behind", 0).expect("log");
    follower.become_follower(
        Arc::clone(&behind_follower),
        behind_id,
        &endpoint,
        behind_epoch,
    );

    eventually("the diverged follower has the leader's log", || {
        follower_log.log_end_offset() == 9
    })
    .await;
    assert_eq!(whole_log(&follower_log), whole_log(&leader_log));
    assert_eq!(
        follower_log
            .leader_epochs()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect::<Vec<_>>(),
        [(0, 0), (2, 5)]
    );
    eventually("the follower behind the log start caught up", || {
        behind_follower.log_end_offset() == 10 && behind_follower.log_start_offset() == 8
    })
    .await;
    assert_eq!(
        behind_follower
            .read_with_isolation(8, usize::MAX, true, FetchIsolation::LogEnd)
            .expect("read")
            .records,
        behind_leader
            .read_with_isolation(8, usize::MAX, true, FetchIsolation::LogEnd)
            .expect("read")
            .records
    );
    follower.shutdown();
    let _ = leader.stop.send(true);
}

/// One partition of a Fetch at `version` (by id from v13, else by name): as replica
/// `replica` (-1 a consumer), at `offset` in `leader_epoch`.
async fn fetch_one(
    port: u16,
    version: i16,
    replica: i32,
    (name, id): (&str, gregor_protocol::Uuid),
    offset: i64,
    leader_epoch: i32,
) -> gregor_protocol::messages::fetch_response::PartitionData {
    use gregor_protocol::messages::fetch_request::{
        FetchPartition, FetchRequest, FetchTopic, ReplicaState as FetchReplicaState,
    };
    let mut client = client(port).await;
    let request = FetchRequest {
        replica_id: if version < 15 { replica } else { -1 },
        replica_state: FetchReplicaState {
            replica_id: if version >= 15 { replica } else { -1 },
            replica_epoch: -1,
            ..Default::default()
        },
        max_wait_ms: 0,
        min_bytes: 0,
        max_bytes: 1 << 20,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: if version < 13 {
                name.into()
            } else {
                Default::default()
            },
            topic_id: if version >= 13 {
                id
            } else {
                gregor_protocol::Uuid::nil()
            },
            partitions: vec![FetchPartition {
                partition: 0,
                current_leader_epoch: leader_epoch,
                fetch_offset: offset,
                last_fetched_epoch: -1,
                log_start_offset: -1,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = client
        .send(&request, version, PATIENCE)
        .await
        .expect("fetch");
    assert_eq!(response.error_code, error_code::NONE);
    response.responses[0].partitions[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_read_below_the_high_watermark_and_followers_are_sent_to_the_leader() {
    let leader = start_leader().await;
    let (id, _) = create_topic(&leader, "watermarked").await;
    // A leader epoch above 0, so that an older one can be sent.
    let epoch = 5;
    let log = leader.broker.logs.get("watermarked", 0).expect("log");
    leader.broker.replicas.become_leader(
        Arc::clone(&log),
        id,
        Leadership {
            leader_epoch: epoch,
            partition_epoch: 0,
            isr: vec![1, 2],
            replicas: vec![1, 2],
        },
    );
    // acks=1: appended, not replicated (no follower fetches).
    assert_eq!(
        produce(leader.port, "watermarked", 1, "a").await,
        error_code::NONE
    );
    assert_eq!((log.log_end_offset(), log.high_watermark()), (3, 0));
    let topic = ("watermarked", id);
    let consumer = fetch_one(leader.port, 12, -1, topic, 0, epoch).await;
    assert_eq!(consumer.error_code, error_code::NONE);
    assert_eq!(
        (consumer.high_watermark, consumer.last_stable_offset),
        (0, 0)
    );
    assert!(consumer.records.unwrap_or_default().is_empty());
    // A consumer with an old epoch is fenced and told the leader (KIP-951).
    let fenced = fetch_one(leader.port, 16, -1, topic, 0, epoch - 1).await;
    assert_eq!(fenced.error_code, error_code::FENCED_LEADER_EPOCH);
    assert_eq!(
        (
            fenced.current_leader.leader_id,
            fenced.current_leader.leader_epoch
        ),
        (1, epoch)
    );
    // The follower reads up to the log end; the high watermark comes with its next fetch.
    let follower = fetch_one(leader.port, 17, 2, topic, 0, epoch).await;
    assert_eq!(follower.error_code, error_code::NONE);
    assert!(!follower.records.unwrap_or_default().is_empty());
    let follower = fetch_one(leader.port, 12, 2, topic, 3, epoch).await;
    assert_eq!(follower.high_watermark, 3);
    let stranger = fetch_one(leader.port, 17, 5, topic, 3, -1).await;
    assert_eq!(stranger.error_code, error_code::NOT_LEADER_OR_FOLLOWER);

    // Once this broker follows broker 3 for the partition: followers and old consumers go
    // to the leader, consumers from v11 read here (KIP-392).
    leader.broker.replicas.become_follower(
        Arc::clone(&log),
        id,
        &LeaderEndpoint {
            id: 3,
            host: "127.0.0.1".to_owned(),
            port: free_port(),
        },
        epoch + 1,
    );
    let sent_away = fetch_one(leader.port, 17, 2, topic, 3, epoch + 1).await;
    assert_eq!(sent_away.error_code, error_code::NOT_LEADER_OR_FOLLOWER);
    assert_eq!(
        (
            sent_away.current_leader.leader_id,
            sent_away.current_leader.leader_epoch
        ),
        (3, epoch + 1)
    );
    let old_consumer = fetch_one(leader.port, 10, -1, topic, 0, -1).await;
    assert_eq!(old_consumer.error_code, error_code::NOT_LEADER_OR_FOLLOWER);
    let consumer = fetch_one(leader.port, 12, -1, topic, 0, epoch + 1).await;
    assert_eq!(consumer.error_code, error_code::NONE);
    assert_eq!(consumer.high_watermark, 3);
    leader.broker.replicas.shutdown();
    let _ = leader.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_and_offset_for_leader_epoch_go_to_the_leader() {
    use gregor_protocol::messages::offset_for_leader_epoch_request::{
        OffsetForLeaderEpochRequest, OffsetForLeaderPartition, OffsetForLeaderTopic,
    };
    let leader = start_leader().await;
    let (id, _) = create_topic(&leader, "elsewhere").await;
    let log = leader.broker.logs.get("elsewhere", 0).expect("log");
    leader.broker.replicas.become_follower(
        Arc::clone(&log),
        id,
        &LeaderEndpoint {
            id: 3,
            host: "127.0.0.1".to_owned(),
            port: free_port(),
        },
        4,
    );
    let mut client = client(leader.port).await;
    let version = client
        .version_for::<ProduceRequest>(10, 11)
        .expect("version");
    let request = ProduceRequest {
        acks: -1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: "elsewhere".into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(batch("z", 1)),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = client
        .send(&request, version, PATIENCE)
        .await
        .expect("send");
    let partition = &response.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, error_code::NOT_LEADER_OR_FOLLOWER);
    assert_eq!(
        (
            partition.current_leader.leader_id,
            partition.current_leader.leader_epoch
        ),
        (3, 4)
    );
    assert_eq!(log.log_end_offset(), 0, "nothing appended");

    let version = client
        .version_for::<OffsetForLeaderEpochRequest>(3, 4)
        .expect("version");
    let request = OffsetForLeaderEpochRequest {
        replica_id: -1,
        topics: vec![OffsetForLeaderTopic {
            topic: "elsewhere".into(),
            partitions: vec![OffsetForLeaderPartition {
                partition: 0,
                current_leader_epoch: 4,
                leader_epoch: 4,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = client
        .send(&request, version, PATIENCE)
        .await
        .expect("send");
    assert_eq!(
        response.topics[0].partitions[0].error_code,
        error_code::NOT_LEADER_OR_FOLLOWER
    );
    leader.broker.replicas.shutdown();
    let _ = leader.stop.send(true);
}
