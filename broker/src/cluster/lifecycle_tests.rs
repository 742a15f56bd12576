//! The controller channel and the broker lifecycle against a real controller: a
//! controller-only node run in process by `server::run` on a temporary directory.

use std::sync::Arc;
use std::time::Duration;

use gregor_protocol::messages::broker_heartbeat_request::BrokerHeartbeatRequest;
use tokio::sync::oneshot;

use super::broker_lifecycle::{BrokerLifecycle, LifecycleOptions, MetadataOffset, Phase};
use super::controller_channel::{
    ChannelError, ChannelOptions, ControllerAddress, ControllerChannel,
};
use super::{Endpoint, MetaProperties};
use crate::config::Config;

/// A port nothing listens on now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// A controller-only node, stopped when dropped.
struct RunningController {
    port: u16,
    cluster_id: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl RunningController {
    async fn start() -> RunningController {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let text = format!(
            "process.roles=controller\nnode.id=1\ncontroller.quorum.voters=1@127.0.0.1:{port}\n\
             listeners=CONTROLLER://127.0.0.1:{port}\ncontroller.listener.names=CONTROLLER\n\
             listener.security.protocol.map=CONTROLLER:PLAINTEXT\nlog.dirs={}\n",
            dir.path().display()
        );
        let config = Config::parse(&text).expect("controller config");
        // A controller-only node is a cluster node: its directory is formatted first.
        crate::cluster::meta_properties::MetaProperties::new(
            crate::cluster::meta_properties::random_cluster_id(),
            1,
        )
        .write(dir.path())
        .expect("format the controller's directory");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            crate::server::run(config, shutdown)
                .await
                .expect("the controller runs");
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the controller never listened"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let cluster_id = MetaProperties::read(dir.path())
            .expect("meta.properties")
            .expect("formatted")
            .cluster_id;
        RunningController {
            port,
            cluster_id,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        }
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

fn channel(ports: &[u16]) -> ControllerChannel {
    ControllerChannel::new(
        ChannelOptions {
            controllers: ports
                .iter()
                .map(|&port| ControllerAddress {
                    id: None,
                    host: "127.0.0.1".into(),
                    port,
                })
                .collect(),
            client_id: "broker-2-test".into(),
            request_timeout: Duration::from_secs(5),
            retry_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            connector: crate::security::node_client::NodeConnector::plaintext(),
        },
        None,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_channel_moves_past_a_dead_controller_and_gives_up_at_its_deadline() {
    let controller = RunningController::start().await;
    let heartbeat = BrokerHeartbeatRequest {
        broker_id: 2,
        broker_epoch: 5,
        ..Default::default()
    };
    // The dead one first: the answer (an error for an unknown broker) comes from the live one.
    let both = channel(&[free_port(), controller.port]);
    let answered = both
        .send(&heartbeat, 0, 2, Duration::from_secs(10))
        .await
        .expect("answered by the live controller");
    assert_ne!(answered.error_code, 0);

    let dead = channel(&[free_port()]);
    let failed = dead
        .send(&heartbeat, 0, 2, Duration::from_millis(300))
        .await;
    assert!(
        matches!(failed, Err(ChannelError::TimedOut { .. })),
        "{failed:?}"
    );
    controller.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_registers_is_unfenced_and_shuts_down_with_the_controllers_approval() {
    let controller = RunningController::start().await;
    let epoch = Arc::new(std::sync::atomic::AtomicI64::new(-1));
    let seen = Arc::clone(&epoch);
    let lifecycle = BrokerLifecycle::start(
        LifecycleOptions {
            node_id: 2,
            cluster_id: controller.cluster_id.clone(),
            incarnation_id: super::random_uuid(),
            listeners: vec![Endpoint {
                listener: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port: 19092,
                security_protocol: 0,
            }],
            rack: Some("r1".into()),
            log_dirs: vec![super::random_uuid()],
            previous_broker_epoch: -1,
            heartbeat_interval: Duration::from_millis(100),
            session_timeout: Duration::from_secs(9),
        },
        channel(&[controller.port]),
        MetadataOffset::AssumeCaughtUp,
        move |e| seen.store(e, std::sync::atomic::Ordering::SeqCst),
    );
    let mut state = lifecycle.state();
    let running = tokio::time::timeout(
        Duration::from_secs(30),
        state.wait_for(|s| s.phase == Phase::Running),
    )
    .await
    .expect("unfenced in time")
    .expect("lifecycle alive")
    .to_owned();
    assert!(!running.fenced);
    assert!(running.broker_epoch >= 0);
    assert_eq!(
        epoch.load(std::sync::atomic::Ordering::SeqCst),
        running.broker_epoch
    );

    assert!(lifecycle.controlled_shutdown(Duration::from_secs(30)).await);
    let last = *lifecycle.state().borrow();
    assert_eq!(last.phase, Phase::ShuttingDown);
    assert!(last.fenced);
    lifecycle.stop();
    controller.shutdown().await;
}
