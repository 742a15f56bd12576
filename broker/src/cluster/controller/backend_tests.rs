//! The controller on the metadata quorum, in process: activation (bootstrap records once,
//! fresh sessions), broker epochs, operations committed through the quorum and followed by
//! every node's image, NOT_CONTROLLER on a follower.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gregor_protocol::messages::broker_heartbeat_request::BrokerHeartbeatRequest;

use super::*;
use crate::cluster::quorum::{Quorum, QuorumOptions, VoterNode};

use super::membership_tests::{CLUSTER, registration};

/// The longest any wait may take (nothing here is timed).
const WAIT: Duration = Duration::from_secs(120);

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("gregor-qctl-")
        .tempdir()
        .expect("temp dir")
}

fn options(id: i32, dir: &Path) -> ControllerOptions {
    let mut options = ControllerOptions::new(id, dir.to_path_buf(), random_uuid());
    options.cluster_id = CLUSTER.to_string();
    options
}

fn quorum_options(id: i32, dir: &Path, voters: &BTreeMap<i32, VoterNode>) -> QuorumOptions {
    let mut options = QuorumOptions::new(id, dir.to_path_buf(), voters.clone());
    options.cluster_id = Some(CLUSTER.to_string());
    options.election_timeout_ms = (400, 800);
    options.heartbeat_interval_ms = 100;
    options
}

/// Registers broker `id` and unfences it; returns its epoch.
async fn join(controller: &Arc<Controller>, id: i32) -> i64 {
    let epoch = controller
        .run(move |c| c.register_broker(&registration(id)))
        .await
        .expect("registration");
    // The broker epoch is the offset of the RegisterBrokerRecord in the quorum's log.
    if let Some(quorum) = controller.quorum() {
        assert_eq!(quorum.applied_offset(), epoch);
    }
    let reply = controller
        .run(move |c| {
            c.broker_heartbeat(&BrokerHeartbeatRequest {
                broker_id: id,
                broker_epoch: epoch,
                current_metadata_offset: i64::MAX,
                ..Default::default()
            })
        })
        .await
        .expect("heartbeat");
    assert!(!reply.is_fenced);
    epoch
}

async fn single(dir: &Path) -> (Quorum, Arc<Controller>) {
    let voters = BTreeMap::from([(1, VoterNode::new("127.0.0.1", 1))]);
    let quorum = Quorum::open(quorum_options(1, dir, &voters))
        .await
        .expect("open the quorum");
    let controller = Arc::new(Controller::open_quorum(options(1, dir), quorum.clone()));
    (quorum, controller)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_active_controller_bootstraps_once_and_commits_through_the_quorum() {
    let dir = tempdir();
    let (quorum, controller) = single(dir.path()).await;
    assert!(controller.is_active());
    assert_eq!(controller.active_controller_id(), Some(1));
    assert!(controller.image().metadata_version().is_none());
    assert!(controller.run(|c| c.activate()).await.expect("activate"));
    assert_eq!(
        controller.image().metadata_version(),
        Some(METADATA_VERSION)
    );
    // Nothing of this node was registered locally: its broker registers over the network.
    assert!(controller.image().brokers().is_empty());
    assert!(
        !controller
            .run(|c| c.activate())
            .await
            .expect("activate again")
    );

    let epoch = join(&controller, 1).await;
    assert_eq!(controller.image().broker(1).map(|b| b.epoch), Some(epoch));

    let mut images = controller.subscribe();
    let created = controller
        .run(|c| c.create_topics(&[NewTopic::new("t", 2, 1)], false))
        .await
        .expect("create");
    assert_eq!(created.results[0].error, None);
    let id = created.results[0].topic_id;
    assert_eq!(controller.image().topic("t").map(|t| t.id), Some(id));
    assert_eq!(quorum.image().topic("t").map(|t| t.id), Some(id));
    tokio::time::timeout(WAIT, images.wait_for(|image| image.topic("t").is_some()))
        .await
        .expect("the subscription sees the topic")
        .expect("the quorum is running");
    quorum.shutdown().await;
    drop(controller);

    // Reopened: the same metadata, no second bootstrap.
    let (quorum, controller) = single(dir.path()).await;
    assert!(!controller.run(|c| c.activate()).await.expect("activate"));
    assert_eq!(controller.image().topic("t").map(|t| t.id), Some(id));
    assert_eq!(controller.image().broker(1).map(|b| b.epoch), Some(epoch));
    quorum.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_refuse_with_not_controller_and_follow_the_leaders_log() {
    let root = tempdir();
    let mut voters = BTreeMap::new();
    let mut listeners = BTreeMap::new();
    for id in 1..=3 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        voters.insert(
            id,
            VoterNode::new("127.0.0.1", listener.local_addr().unwrap().port()),
        );
        listeners.insert(id, listener);
    }
    let mut nodes = BTreeMap::new();
    for (id, listener) in listeners {
        let dir = root.path().join(format!("node-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let quorum = Quorum::open(quorum_options(id, &dir, &voters))
            .await
            .expect("open");
        quorum.serve(listener);
        let controller = Arc::new(Controller::open_quorum(options(id, &dir), quorum.clone()));
        nodes.insert(id, (quorum, controller));
    }
    let leader = nodes[&1].0.wait_for_leader(WAIT).await.expect("a leader");
    let active = nodes[&leader].1.clone();
    // The leader may not know it leads yet; activation retries until it does.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match active.run(|c| c.activate()).await {
            Ok(_) => break,
            Err(ControllerError::NotController { .. }) => {}
            Err(e) => panic!("activation: {e}"),
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for id in 1..=3 {
        join(&active, id).await;
    }
    let created = active
        .run(|c| c.create_topics(&[NewTopic::new("shared", 1, 3)], false))
        .await
        .expect("create");
    assert_eq!(created.results[0].error, None);
    let id = created.results[0].topic_id;
    for (node, (_, controller)) in &nodes {
        let mut images = controller.subscribe();
        tokio::time::timeout(
            WAIT,
            images.wait_for(|image| image.topic("shared").is_some()),
        )
        .await
        .unwrap_or_else(|_| panic!("node {node} did not apply the topic"))
        .expect("running");
        assert_eq!(controller.image().topic("shared").map(|t| t.id), Some(id));
        if *node != leader {
            assert!(!controller.is_active());
            assert_eq!(controller.active_controller_id(), Some(leader));
            let refused = controller
                .run(|c| c.create_topics(&[NewTopic::new("nope", 1, 1)], false))
                .await;
            match refused {
                Err(e @ ControllerError::NotController { .. }) => {
                    assert_eq!(e.code(), NOT_CONTROLLER)
                }
                other => panic!("a follower committed: {other:?}"),
            }
            let refused = controller
                .run(|c| c.register_broker(&registration(9)))
                .await;
            assert_eq!(refused.map_err(|e| e.code), Err(NOT_CONTROLLER));
        }
    }
    for (quorum, _) in nodes.values() {
        quorum.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_of_an_earlier_epoch_are_replaced_before_the_controller_acts() {
    let dir = tempdir();
    let voters = BTreeMap::from([(1, VoterNode::new("127.0.0.1", 1))]);
    let quorum = Quorum::open(quorum_options(1, dir.path(), &voters))
        .await
        .expect("open the quorum");
    let mut opts = options(1, dir.path());
    opts.broker_session_timeout_ms = 400;
    let controller = Arc::new(Controller::open_quorum(opts, quorum.clone()));
    quorum.wait_for_leader(WAIT).await.expect("a leader");
    // No activation ran yet: the registration activates first (bootstrap records).
    let deadline = tokio::time::Instant::now() + WAIT;
    let epoch = loop {
        match controller
            .run(|c| c.register_broker(&registration(2)))
            .await
        {
            Ok(epoch) => break epoch,
            Err(e) if e.code == NOT_CONTROLLER => {}
            Err(e) => panic!("registration: {e:?}"),
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        controller.image().metadata_version(),
        Some(METADATA_VERSION)
    );
    let quorum_epoch = controller.epoch();
    assert_eq!(controller.members().epoch(), Some(quorum_epoch));
    let beat = move |c: &Controller| {
        c.broker_heartbeat(&BrokerHeartbeatRequest {
            broker_id: 2,
            broker_epoch: epoch,
            current_metadata_offset: i64::MAX,
            ..Default::default()
        })
    };
    assert!(!controller.run(beat).await.expect("heartbeat").is_fenced);

    // What this controller knew in an earlier epoch: broker 2 heard from long ago.
    let mut stale = heartbeats::Heartbeats::for_epoch(Duration::from_millis(400), quorum_epoch - 1);
    stale.register(2, false, std::time::Instant::now());
    *controller.members() = stale;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(controller.has_stale_session());
    let fenced = controller
        .run(|c| c.fence_stale_brokers())
        .await
        .expect("fence");
    assert_eq!(fenced, Vec::<i32>::new());
    assert!(!controller.image().broker(2).unwrap().fenced);
    assert_eq!(controller.members().epoch(), Some(quorum_epoch));
    // The fresh session of this epoch does expire without heartbeats.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fenced = controller
        .run(|c| c.fence_stale_brokers())
        .await
        .expect("fence");
    assert_eq!(fenced, vec![2]);
    quorum.shutdown().await;
}
