//! The membership operations on a real metadata log: registration, unfencing, expiry,
//! leadership moves, and what a reopened controller keeps.

use std::path::Path;
use std::time::Duration;

use gregor_protocol::messages::broker_heartbeat_request::BrokerHeartbeatRequest;
use gregor_protocol::messages::broker_registration_request::{
    BrokerRegistrationRequest, Feature, Listener,
};
use uuid::Uuid;

use super::*;
use crate::cluster::meta_properties::MetaProperties;
use crate::cluster::replay::load;

/// The cluster id of the controller tests.
pub(super) const CLUSTER: &str = "AAAAAAAAAAAAAAAAAAAAAQ";

fn open(dir: &Path, session_ms: u64) -> Controller {
    let (meta, _) = MetaProperties::load_or_format(dir, 1, Some(CLUSTER)).unwrap();
    let mut options = ControllerOptions::new(1, dir.to_path_buf(), meta.directory_id.unwrap());
    options.cluster_id = CLUSTER.to_string();
    options.broker_session_timeout_ms = session_ms;
    let loaded = load(dir).unwrap();
    Controller::open(options, loaded).unwrap().0
}

/// A registration of broker `id` with one PLAINTEXT listener and every supported feature
/// (shared by the controller's test modules).
pub(super) fn registration(id: i32) -> BrokerRegistrationRequest {
    BrokerRegistrationRequest {
        broker_id: id,
        cluster_id: CLUSTER.into(),
        incarnation_id: crate::cluster::meta_properties::random_uuid(),
        listeners: vec![Listener {
            name: "PLAINTEXT".into(),
            host: "localhost".into(),
            port: 9000 + id as u16,
            security_protocol: 0,
            ..Default::default()
        }],
        features: supported_features()
            .iter()
            .map(|(name, range)| Feature {
                name: name.as_str().into(),
                min_supported_version: range.min,
                max_supported_version: range.max,
                ..Default::default()
            })
            .collect(),
        log_dirs: vec![crate::cluster::meta_properties::random_uuid()],
        ..Default::default()
    }
}

fn heartbeat(id: i32, epoch: i64) -> BrokerHeartbeatRequest {
    BrokerHeartbeatRequest {
        broker_id: id,
        broker_epoch: epoch,
        current_metadata_offset: i64::MAX,
        ..Default::default()
    }
}

#[test]
fn an_expired_session_fences_the_broker_and_moves_its_leaderships() {
    let dir = tempfile::tempdir().unwrap();
    let controller = open(dir.path(), 200);
    let epoch = controller.register_broker(&registration(2)).unwrap();
    assert!(controller.image().broker(2).unwrap().fenced);
    let reply = controller.broker_heartbeat(&heartbeat(2, epoch)).unwrap();
    assert!(!reply.is_fenced && reply.is_caught_up);
    assert!(!controller.image().broker(2).unwrap().fenced);
    let topic = NewTopic {
        assignments: vec![ReplicaAssignment {
            partition: 0,
            broker_ids: vec![2, 1],
        }],
        ..NewTopic::new("t", -1, -1)
    };
    let created = controller.create_topics(&[topic], false).unwrap();
    let id = created.results[0].topic_id;
    assert_eq!(controller.image().partition(&id, 0).unwrap().leader, 2);
    // This node's own broker never expires; broker 2 does once it stops heartbeating.
    std::thread::sleep(Duration::from_millis(300));
    assert!(controller.has_stale_session());
    assert_eq!(controller.fence_stale_brokers().unwrap(), vec![2]);
    assert!(controller.fence_stale_brokers().unwrap().is_empty());
    let image = controller.image();
    let p = image.partition(&id, 0).unwrap();
    assert_eq!((p.leader, p.leader_epoch, p.isr.clone()), (1, 1, vec![1]));
    assert!(image.broker(2).unwrap().fenced);
    assert!(!image.broker(1).unwrap().fenced);
    drop(controller);

    // Reopened: the fencing and the partition state come back from the log, and the stale
    // epoch is refused.
    let controller = open(dir.path(), 60_000);
    let image = controller.image();
    assert!(image.broker(2).unwrap().fenced);
    assert_eq!(image.partition(&id, 0).unwrap().leader, 1);
    let stale = controller
        .broker_heartbeat(&heartbeat(2, epoch - 1))
        .unwrap_err();
    assert_eq!(stale.code, STALE_BROKER_EPOCH);
    // The same incarnation may heartbeat on and is unfenced again.
    let reply = controller.broker_heartbeat(&heartbeat(2, epoch)).unwrap();
    assert!(!reply.is_fenced);
}

#[test]
fn registration_checks_and_amendments() {
    let dir = tempfile::tempdir().unwrap();
    let controller = open(dir.path(), 60_000);
    let mut request = registration(2);
    let epoch = controller.register_broker(&request).unwrap();
    controller.broker_heartbeat(&heartbeat(2, epoch)).unwrap();
    // The same incarnation again amends: same epoch, still unfenced.
    request.rack = Some("r".into());
    assert_eq!(controller.register_broker(&request).unwrap(), epoch);
    let image = controller.image();
    let broker = image.broker(2).unwrap();
    assert_eq!((broker.fenced, broker.rack.as_deref()), (false, Some("r")));
    // Another incarnation while the session lives.
    let other = registration(2);
    assert_eq!(
        controller.register_broker(&other).unwrap_err().code,
        DUPLICATE_BROKER_REGISTRATION
    );
    // A directory of another broker.
    let mut thief = registration(3);
    thief.log_dirs = request.log_dirs.clone();
    assert_eq!(
        controller.register_broker(&thief).unwrap_err().code,
        INVALID_REGISTRATION
    );
    let mut reserved = registration(3);
    reserved.log_dirs = vec![Uuid::from_u64_pair(0, 7)];
    assert_eq!(
        controller.register_broker(&reserved).unwrap_err().code,
        INVALID_REGISTRATION
    );
    // A broker that does not support the finalized group.version.
    let mut old = registration(3);
    old.features.retain(|f| &*f.name != GROUP_VERSION_FEATURE);
    assert_eq!(
        controller.register_broker(&old).unwrap_err().code,
        UNSUPPORTED_VERSION
    );
    // Unregistered: gone from the image.
    controller.unregister_broker(2).unwrap();
    assert!(controller.image().broker(2).is_none());
    assert_eq!(
        controller.unregister_broker(2).unwrap_err().code,
        BROKER_ID_NOT_REGISTERED
    );
}

#[test]
fn a_new_incarnation_takes_the_previous_one_out_of_isrs_and_leaderships() {
    let dir = tempfile::tempdir().unwrap();
    let controller = open(dir.path(), 200);
    let old = controller.register_broker(&registration(2)).unwrap();
    controller.broker_heartbeat(&heartbeat(2, old)).unwrap();
    let topic = NewTopic {
        assignments: vec![ReplicaAssignment {
            partition: 0,
            broker_ids: vec![2, 1],
        }],
        ..NewTopic::new("t", -1, -1)
    };
    let id = controller.create_topics(&[topic], false).unwrap().results[0].topic_id;
    let before = controller.image().partition(&id, 0).unwrap().clone();
    assert_eq!((before.leader, before.isr.clone()), (2, vec![2, 1]));
    // Killed and restarted: the session ran out, but nothing fenced the registration yet.
    std::thread::sleep(Duration::from_millis(300));
    assert!(!controller.image().broker(2).unwrap().fenced);
    let new = controller.register_broker(&registration(2)).unwrap();
    let image = controller.image();
    let p = image.partition(&id, 0).unwrap();
    assert_eq!(
        (p.leader, p.isr.clone(), p.leader_epoch),
        (1, vec![1], before.leader_epoch + 1)
    );
    let broker = image.broker(2).unwrap();
    assert!(broker.fenced);
    // The broker epoch is the offset of the registration, the batch's last record.
    assert_eq!((broker.epoch, controller.next_offset() - 1), (new, new));
    assert_eq!(
        controller
            .broker_heartbeat(&heartbeat(2, old))
            .unwrap_err()
            .code,
        STALE_BROKER_EPOCH
    );
    // Not unfenced before it has replayed its registration; then it follows, not leads.
    let behind = BrokerHeartbeatRequest {
        current_metadata_offset: new - 1,
        ..heartbeat(2, new)
    };
    assert!(controller.broker_heartbeat(&behind).unwrap().is_fenced);
    assert!(
        !controller
            .broker_heartbeat(&heartbeat(2, new))
            .unwrap()
            .is_fenced
    );
    let image = controller.image();
    let p = image.partition(&id, 0).unwrap();
    assert_eq!((p.leader, p.isr.clone()), (1, vec![1]));
    // The same incarnation registering again changes no partition.
    let offset = controller.next_offset();
    let mut again = registration(2);
    again.incarnation_id = image.broker(2).unwrap().incarnation_id;
    again.log_dirs = image.broker(2).unwrap().directories.clone();
    assert_eq!(controller.register_broker(&again).unwrap(), new);
    assert_eq!(controller.next_offset(), offset + 1);
}
