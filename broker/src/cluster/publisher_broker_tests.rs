//! The metadata publisher over real brokers in this process (opened as `gregor` opens
//! them, each in a temporary directory): images fed through a watch channel make and
//! delete the partition directories, give roles, load and unload the group coordinator's
//! partitions, and make a follower copy its leader over TCP. Images are the broker's own
//! controller image with records applied on top, standing for what a quorum would commit.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gregor_protocol::MetadataRecord;
use gregor_protocol::error_code;
use gregor_protocol::messages::config_record::ConfigRecord;
use gregor_protocol::messages::partition_change_record::PartitionChangeRecord;
use gregor_protocol::messages::partition_record::PartitionRecord;
use gregor_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use gregor_protocol::messages::register_broker_record::{BrokerEndpoint, RegisterBrokerRecord};
use gregor_protocol::messages::remove_topic_record::RemoveTopicRecord;
use gregor_protocol::messages::topic_record::TopicRecord;
use gregor_protocol::records::{NewRecord, RecordBatchBuilder};
use tokio::sync::watch;
use uuid::Uuid;

use super::image::{MetadataImage, NO_LEADER_CHANGE};
use super::publisher::{Publisher, spawn};
use super::reconcile::PartitionMetadata;
use crate::broker::Broker;
use crate::config::Config;
use crate::groups::{CommitParams, CommitPartition, OFFSETS_TOPIC};
use crate::replication::Role;
use crate::replication::client::BrokerClient;

/// Generous: these only bound a broken test, never a passing one.
const PATIENCE: Duration = Duration::from_secs(60);

struct Node {
    broker: Arc<Broker>,
    port: u16,
    _stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Opens broker `node_id` (its own one-node controller) and serves its PLAINTEXT listener.
async fn start_node(node_id: i32) -> Node {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let controller = free_port();
    let config = Config::from_properties([
        ("process.roles", "broker,controller".to_owned()),
        ("node.id", node_id.to_string()),
        (
            "controller.quorum.voters",
            format!("{node_id}@127.0.0.1:{controller}"),
        ),
        (
            "listeners",
            format!("PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}"),
        ),
        ("controller.listener.names", "CONTROLLER".to_owned()),
        ("inter.broker.listener.name", "PLAINTEXT".to_owned()),
        ("log.dirs", dir.path().display().to_string()),
        ("offsets.topic.num.partitions", "1".to_owned()),
        ("offsets.topic.replication.factor", "1".to_owned()),
        ("transaction.state.log.num.partitions", "1".to_owned()),
        ("transaction.state.log.replication.factor", "1".to_owned()),
        ("transaction.state.log.min.isr", "1".to_owned()),
        ("replica.fetch.backoff.ms", "20".to_owned()),
        ("replica.fetch.wait.max.ms", "200".to_owned()),
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
    Node {
        broker,
        port,
        _stop: stop,
        _dir: dir,
    }
}

fn id(n: u64) -> Uuid {
    Uuid::from_u64_pair(0xabcd, n)
}

fn topic(name: &str, topic_id: Uuid) -> MetadataRecord {
    MetadataRecord::Topic(TopicRecord {
        name: name.to_string().into(),
        topic_id,
        ..Default::default()
    })
}

fn partition(topic_id: Uuid, index: i32, replicas: &[i32], leader: i32) -> MetadataRecord {
    MetadataRecord::Partition(PartitionRecord {
        partition_id: index,
        topic_id,
        replicas: replicas.to_vec(),
        isr: replicas.to_vec(),
        leader,
        leader_epoch: 0,
        partition_epoch: 0,
        ..Default::default()
    })
}

fn change(
    topic_id: Uuid,
    index: i32,
    edit: impl FnOnce(&mut PartitionChangeRecord),
) -> MetadataRecord {
    let mut record = PartitionChangeRecord {
        partition_id: index,
        topic_id,
        leader: NO_LEADER_CHANGE,
        leader_recovery_state: -1,
        ..Default::default()
    };
    edit(&mut record);
    MetadataRecord::PartitionChange(record)
}

fn register(broker_id: i32, port: u16) -> MetadataRecord {
    MetadataRecord::RegisterBroker(RegisterBrokerRecord {
        broker_id,
        incarnation_id: id(1000 + broker_id as u64),
        broker_epoch: 100 + i64::from(broker_id),
        end_points: vec![BrokerEndpoint {
            name: "PLAINTEXT".to_string().into(),
            host: "127.0.0.1".to_string().into(),
            port,
            security_protocol: 0,
            ..Default::default()
        }],
        ..Default::default()
    })
}

/// `base` with `records` applied after it.
fn with(base: &MetadataImage, records: &[MetadataRecord]) -> Arc<MetadataImage> {
    let mut next = base.clone();
    let start = next.last_offset() + 1;
    for (n, record) in records.iter().enumerate() {
        next.apply(start + n as i64, record).expect("apply");
    }
    Arc::new(next)
}

async fn publish(publisher: Publisher, image: &Arc<MetadataImage>) -> Publisher {
    let image = Arc::clone(image);
    tokio::task::spawn_blocking(move || {
        let mut publisher = publisher;
        publisher.publish(image);
        publisher
    })
    .await
    .expect("publish")
}

/// Polls `done` every few milliseconds until it holds (at most [`PATIENCE`]).
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn topic_id_on_disk(broker: &Broker, topic: &str, partition: i32) -> Option<Uuid> {
    let log = broker.logs.get(topic, partition)?;
    PartitionMetadata::read(log.dir())
        .expect("partition.metadata")
        .map(|m| m.topic_id)
}

fn partition_dirs(broker: &Broker, topic: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(broker.data_dir())
        .expect("read dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("{topic}-")))
        .collect();
    names.sort();
    names
}

fn role(broker: &Broker, topic: &str, partition: i32) -> Option<(bool, i32)> {
    match broker.replicas.role(topic, partition)? {
        Role::Leader(leader) => Some((true, leader.leader_epoch())),
        Role::Follower { leader_id, .. } => Some((false, leader_id)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_make_and_delete_the_local_logs_and_give_their_roles() {
    let node = start_node(1).await;
    let broker = &node.broker;
    let base = broker.image();
    let mut publisher = Publisher::new(broker);

    // t: partition 0 led here, 1 followed (leader 2 is registered), 2 on other brokers.
    let first = with(
        &base,
        &[
            register(2, free_port()),
            topic("t", id(1)),
            partition(id(1), 0, &[1, 2], 1),
            partition(id(1), 1, &[2, 1], 2),
            partition(id(1), 2, &[2, 3], 2),
            MetadataRecord::Config(ConfigRecord {
                resource_type: 2,
                resource_name: "t".to_string().into(),
                name: "retention.ms".to_string().into(),
                value: Some("12345".to_string().into()),
                ..Default::default()
            }),
        ],
    );
    publisher = publish(publisher, &first).await;
    assert_eq!(partition_dirs(broker, "t"), vec!["t-0", "t-1"]);
    assert_eq!(topic_id_on_disk(broker, "t", 0), Some(id(1)));
    assert_eq!(topic_id_on_disk(broker, "t", 1), Some(id(1)));
    assert_eq!(role(broker, "t", 0), Some((true, 0)));
    assert_eq!(role(broker, "t", 1), Some((false, 2)));
    assert_eq!(broker.replicas.fetchers().leader_of("t", 1), Some(2));
    assert_eq!(role(broker, "t", 2), None);
    let log = broker.logs.get("t", 0).expect("log");
    assert_eq!(log.config().retention_ms, 12345, "the topic's config");

    // Leadership moves: 0 to broker 2, 1 to here with the epoch bumped; a config change.
    let second = with(
        &first,
        &[
            change(id(1), 0, |c| c.leader = 2),
            change(id(1), 1, |c| c.leader = 1),
            MetadataRecord::Config(ConfigRecord {
                resource_type: 2,
                resource_name: "t".to_string().into(),
                name: "retention.ms".to_string().into(),
                value: Some("54321".to_string().into()),
                ..Default::default()
            }),
        ],
    );
    publisher = publish(publisher, &second).await;
    assert_eq!(role(broker, "t", 0), Some((false, 2)));
    assert_eq!(role(broker, "t", 1), Some((true, 1)));
    assert_eq!(broker.replicas.fetchers().leader_of("t", 1), None);
    assert_eq!(log.config().retention_ms, 54321, "the changed config");

    // Partition 0 is reassigned away: stopped and deleted; 2 is reassigned here.
    let third = with(
        &second,
        &[
            change(id(1), 0, |c| {
                c.replicas = Some(vec![2, 3]);
                c.isr = Some(vec![2, 3]);
            }),
            change(id(1), 2, |c| {
                c.replicas = Some(vec![2, 3, 1]);
            }),
        ],
    );
    publisher = publish(publisher, &third).await;
    assert_eq!(partition_dirs(broker, "t"), vec!["t-1", "t-2"]);
    assert!(broker.logs.get("t", 0).is_none());
    assert_eq!(role(broker, "t", 0), None);
    assert_eq!(role(broker, "t", 2), Some((false, 2)));

    // Deleted and created again under the same name with a new id (one partition here).
    let fourth = with(
        &third,
        &[
            MetadataRecord::RemoveTopic(RemoveTopicRecord {
                topic_id: id(1),
                ..Default::default()
            }),
            topic("t", id(2)),
            partition(id(2), 1, &[1], 1),
        ],
    );
    let old = broker.logs.get("t", 1).expect("old log");
    publisher = publish(publisher, &fourth).await;
    let _ = publisher;
    assert_eq!(partition_dirs(broker, "t"), vec!["t-1"]);
    assert_eq!(topic_id_on_disk(broker, "t", 1), Some(id(2)));
    let new = broker.logs.get("t", 1).expect("new log");
    assert!(!Arc::ptr_eq(&old, &new), "a new log for the new topic");
    assert_eq!(new.log_end_offset(), 0);
    assert_eq!(role(broker, "t", 1), Some((true, 0)));
    assert_eq!(role(broker, "t", 2), None);
    assert_eq!(
        new.config().retention_ms,
        broker.default_log_config().retention_ms,
        "the old topic's config went with it"
    );
}

fn commit(group: &str, offset: i64) -> CommitParams {
    CommitParams {
        group_id: group.to_owned(),
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
        retention_time_ms: -1,
        version: 8,
        topics: vec![(
            "some-topic".to_owned(),
            vec![CommitPartition {
                partition: 0,
                offset,
                leader_epoch: -1,
                metadata: None,
                commit_timestamp_ms: -1,
            }],
        )],
    }
}

async fn committed(broker: &Broker, group: &str) -> i64 {
    let fetched = broker
        .groups
        .fetch_offsets(group, Some(&[("some-topic".to_owned(), vec![0])]))
        .await;
    fetched[0].1[0].offset
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_group_coordinator_follows_the_leadership_of_its_partition() {
    let node = start_node(1).await;
    let broker = &node.broker;
    broker
        .groups
        .ensure_offsets_topic()
        .await
        .expect("offsets topic");
    assert_eq!(
        broker.groups.commit_offsets(commit("g", 42)).await,
        vec![vec![error_code::NONE]]
    );
    let image = broker.image();
    let offsets = image.topic(OFFSETS_TOPIC).expect("topic");
    let offsets_id = offsets.id;
    assert_eq!(offsets.partitions[&0].leader, 1);

    let mut publisher = Publisher::new(broker);
    assert_eq!(
        broker.groups.coordinator_error("g"),
        Some(error_code::NOT_COORDINATOR),
        "not elected yet"
    );
    publisher = publish(publisher, &image).await;
    assert_eq!(broker.groups.coordinator_error("g"), None);
    assert_eq!(committed(broker, "g").await, 42, "loaded from the log");

    // Leadership of __consumer_offsets-0 moves to broker 2 (and the replicas with it).
    let resigned = with(
        &image,
        &[change(offsets_id, 0, |c| {
            c.replicas = Some(vec![1, 2]);
            c.isr = Some(vec![1, 2]);
            c.leader = 2;
        })],
    );
    publisher = publish(publisher, &resigned).await;
    assert_eq!(role(broker, OFFSETS_TOPIC, 0), Some((false, 2)));
    assert_eq!(
        broker.groups.coordinator_error("g"),
        Some(error_code::NOT_COORDINATOR)
    );
    assert_eq!(
        broker.groups.commit_offsets(commit("g", 43)).await,
        vec![vec![error_code::NOT_COORDINATOR]]
    );

    // Back here in a new epoch: loaded again from the log.
    let elected = with(&resigned, &[change(offsets_id, 0, |c| c.leader = 1)]);
    publisher = publish(publisher, &elected).await;
    assert_eq!(role(broker, OFFSETS_TOPIC, 0), Some((true, 2)));
    assert_eq!(broker.groups.coordinator_error("g"), None);
    assert_eq!(committed(broker, "g").await, 42);
    // Coordinators write with acks=all: broker 2, in the ISR, never fetches, so the
    // commit is not acknowledged (Kafka's REQUEST_TIMED_OUT, answered
    // COORDINATOR_NOT_AVAILABLE after `offsets.commit.timeout.ms`).
    assert_eq!(
        broker.groups.commit_offsets(commit("g", 44)).await,
        vec![vec![error_code::COORDINATOR_NOT_AVAILABLE]]
    );
    // Once the ISR is this broker alone, a commit is acknowledged.
    let alone = with(
        &elected,
        &[change(offsets_id, 0, |c| c.isr = Some(vec![1]))],
    );
    publisher = publish(publisher, &alone).await;
    let _ = publisher;
    assert_eq!(
        broker.groups.commit_offsets(commit("g", 45)).await,
        vec![vec![error_code::NONE]]
    );
    assert_eq!(committed(broker, "g").await, 45);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transaction_coordinator_follows_the_leadership_of_its_partition() {
    use crate::transactions::TRANSACTION_STATE_TOPIC;
    let node = start_node(1).await;
    let broker = &node.broker;
    let txns = &broker.transactions;
    let (producer_id, epoch) = txns
        .init_producer_id("tx", 60_000, None)
        .await
        .expect("init");
    let image = broker.image();
    let state_id = image.topic(TRANSACTION_STATE_TOPIC).expect("topic").id;

    let mut publisher = Publisher::new(broker);
    assert_eq!(
        txns.coordinator_error("tx"),
        Some(error_code::NOT_COORDINATOR)
    );
    assert_eq!(
        txns.init_producer_id("tx", 60_000, None).await,
        Err(error_code::NOT_COORDINATOR)
    );
    publisher = publish(publisher, &image).await;
    assert_eq!(txns.coordinator_error("tx"), None);
    // Loaded from the log: the same producer id, the next epoch.
    assert_eq!(
        txns.init_producer_id("tx", 60_000, None).await,
        Ok((producer_id, epoch + 1))
    );

    let resigned = with(
        &image,
        &[change(state_id, 0, |c| {
            c.replicas = Some(vec![1, 2]);
            c.isr = Some(vec![1, 2]);
            c.leader = 2;
        })],
    );
    publisher = publish(publisher, &resigned).await;
    let _ = publisher;
    assert_eq!(
        txns.coordinator_error("tx"),
        Some(error_code::NOT_COORDINATOR)
    );
    assert_eq!(
        txns.describe("tx").await.map(|d| d.producer_id),
        Err(error_code::NOT_COORDINATOR)
    );
}

fn batch(tag: &str, count: usize) -> Bytes {
    let records: Vec<NewRecord> = (0..count)
        .map(|i| {
            NewRecord::new(
                crate::replication::leader::now_ms(),
                None,
                Some(Bytes::from(format!("{tag}-{i}"))),
            )
        })
        .collect();
    RecordBatchBuilder::new().build(&records).expect("batch")
}

async fn produce(port: u16, topic: &str, tag: &str) -> i16 {
    let mut client = BrokerClient::connect(
        &crate::security::node_client::NodeConnector::plaintext(),
        "127.0.0.1",
        port,
        "test",
        64 << 20,
        PATIENCE,
    )
    .await
    .expect("connect");
    let version = client
        .version_for::<ProduceRequest>(3, 11)
        .expect("version");
    let request = ProduceRequest {
        acks: 1,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_made_by_the_images_copies_its_leader_over_tcp() {
    let one = start_node(1).await;
    let two = start_node(2).await;
    // The topic exists in node 1's own metadata (its handlers serve it); the images
    // given to both publishers make it a two-replica partition led by node 1.
    let created = one
        .broker
        .create_topics(
            vec![crate::cluster::controller::NewTopic::new("r", 1, 1)],
            false,
        )
        .await
        .expect("create");
    assert!(created.results[0].error.is_none());
    let base = one.broker.image();
    let r = base.topic("r").expect("topic").id;
    let image = with(
        &base,
        &[
            register(1, one.port),
            register(2, two.port),
            change(r, 0, |c| {
                c.replicas = Some(vec![1, 2]);
                c.isr = Some(vec![1, 2]);
            }),
        ],
    );
    let (feed_one, images_one) = watch::channel(Arc::clone(&image));
    let (feed_two, images_two) = watch::channel(Arc::clone(&image));
    let task_one = spawn(&one.broker, images_one);
    let task_two = spawn(&two.broker, images_two);
    eventually("roles from the first image", || {
        role(&one.broker, "r", 0) == Some((true, 0))
            && role(&two.broker, "r", 0) == Some((false, 1))
    })
    .await;
    assert_eq!(topic_id_on_disk(&two.broker, "r", 0), Some(r));
    assert_eq!(produce(one.port, "r", "x").await, error_code::NONE);
    let copy = two.broker.logs.get("r", 0).expect("follower log");
    eventually("the follower has the records", || {
        copy.log_end_offset() == 3
    })
    .await;
    let leader_log = one.broker.logs.get("r", 0).expect("leader log");
    eventually("the leader's high watermark", || {
        leader_log.high_watermark() == 3
    })
    .await;

    // The images move the leadership to node 2 (epoch 1): roles swap.
    let moved = with(&image, &[change(r, 0, |c| c.leader = 2)]);
    feed_one.send(Arc::clone(&moved)).expect("feed");
    feed_two.send(moved).expect("feed");
    eventually("roles swapped", || {
        role(&one.broker, "r", 0) == Some((false, 2))
            && role(&two.broker, "r", 0) == Some((true, 1))
    })
    .await;
    assert_eq!(
        one.broker.replicas.fetchers().leader_of("r", 0),
        Some(2),
        "node 1 fetches from node 2 now"
    );
    task_one.abort();
    task_two.abort();
    one.broker.replicas.shutdown();
    two.broker.replicas.shutdown();
}
