//! The controller of a broker-only node of a cluster: it follows the metadata log as a
//! KRaft observer ([`crate::cluster::observer`]) and never commits, as a Kafka broker has
//! no `QuorumController` at all: every operation fails with `NOT_CONTROLLER` naming the
//! leader the observer last learnt (so admin requests are forwarded to it), and the image
//! and its subscription are the observer's.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;

use super::backend::Backend;
use super::{Controller, ControllerOptions, heartbeats, snapshots};
use crate::cluster::observer::Observer;
use crate::cluster::snapshot::KRaftState;

impl Controller {
    /// A controller whose metadata is `observer`'s (see the module docs).
    pub fn open_observer(options: ControllerOptions, observer: Observer) -> Controller {
        let image = observer.image();
        let members =
            heartbeats::Heartbeats::new(Duration::from_millis(options.broker_session_timeout_ms));
        Controller {
            options,
            log: Arc::new(Mutex::new(Backend::Observer(observer.clone()))),
            published: tokio::sync::watch::Sender::new(Arc::clone(&image)),
            image: ArcSwap::new(image),
            snapshots: Mutex::new(snapshots::SnapshotState::new(0, KRaftState::default())),
            producer_ids: Mutex::new(None),
            members: Mutex::new(members),
            quorum: None,
            observer: Some(observer),
        }
    }
}
