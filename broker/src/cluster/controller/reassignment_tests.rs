//! The reassignment state transitions on a real single-node controller (its metadata log
//! in a temporary directory) with brokers 2-4 registered beside this node's broker 1.

use std::path::Path;

use gregor_protocol::messages::alter_partition_request::{
    AlterPartitionRequest, BrokerState, PartitionData, TopicData,
};
use gregor_protocol::messages::broker_heartbeat_request::BrokerHeartbeatRequest;
use uuid::Uuid;

use super::super::{Controller, ControllerOptions, NewTopic, ReplicaAssignment};
use super::*;
use crate::cluster::meta_properties::MetaProperties;
use crate::cluster::replay::load;

use super::super::membership_tests::{CLUSTER, registration};

fn open(dir: &Path) -> Controller {
    let (meta, _) = MetaProperties::load_or_format(dir, 1, Some(CLUSTER)).unwrap();
    let mut options = ControllerOptions::new(1, dir.to_path_buf(), meta.directory_id.unwrap());
    options.cluster_id = CLUSTER.to_string();
    let controller = Controller::open(options, load(dir).unwrap()).unwrap().0;
    for id in [2, 3, 4] {
        let request = registration(id);
        let epoch = controller.register_broker(&request).unwrap();
        controller
            .broker_heartbeat(&BrokerHeartbeatRequest {
                broker_id: id,
                broker_epoch: epoch,
                current_metadata_offset: i64::MAX,
                ..Default::default()
            })
            .unwrap();
    }
    controller
}

/// Topic `t` with one partition on `replicas` (the first leads); its id.
fn create(controller: &Controller, replicas: &[i32]) -> Uuid {
    let topic = NewTopic {
        assignments: vec![ReplicaAssignment {
            partition: 0,
            broker_ids: replicas.to_vec(),
        }],
        ..NewTopic::new("t", -1, -1)
    };
    controller.create_topics(&[topic], false).unwrap().results[0].topic_id
}

fn alter(controller: &Controller, allow_rf: bool, target: Option<&[i32]>) -> Option<ApiError> {
    let asked = vec![("t".to_string(), vec![(0, target.map(<[i32]>::to_vec))])];
    let mut results = controller
        .alter_partition_reassignments(allow_rf, &asked)
        .unwrap();
    results.remove(0).1.remove(0).1
}

fn partition(controller: &Controller, id: Uuid) -> PartitionImage {
    controller.image().partition(&id, 0).unwrap().clone()
}

/// The leader's AlterPartition setting the ISR to `isr`; the partition's error code.
fn expand_isr(controller: &Controller, id: Uuid, isr: &[i32]) -> i16 {
    let image = controller.image();
    let p = image.partition(&id, 0).unwrap();
    let request = AlterPartitionRequest {
        broker_id: p.leader,
        broker_epoch: image.broker(p.leader).unwrap().epoch,
        topics: vec![TopicData {
            topic_id: id,
            partitions: vec![PartitionData {
                partition_index: 0,
                leader_epoch: p.leader_epoch,
                new_isr_with_epochs: isr
                    .iter()
                    .map(|b| BrokerState {
                        broker_id: *b,
                        broker_epoch: image.broker(*b).unwrap().epoch,
                        ..Default::default()
                    })
                    .collect(),
                leader_recovery_state: 0,
                partition_epoch: p.partition_epoch,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = controller.alter_partition(&request).unwrap();
    response.topics[0].partitions[0].error_code
}

#[test]
fn plan_and_revert_follow_kafka() {
    let p = plan(&[1, 2, 3], &[4, 3, 2]);
    assert_eq!(
        p,
        Plan {
            removing: vec![1],
            adding: vec![4],
            replicas: vec![4, 3, 2, 1],
        }
    );
    let moving = PartitionImage {
        replicas: vec![4, 3, 2, 1],
        isr: vec![1, 2, 4],
        adding_replicas: vec![4],
        removing_replicas: vec![1],
        ..partition_template()
    };
    let r = revert(&moving).unwrap();
    assert_eq!(
        (r.replicas, r.isr, r.unclean),
        (vec![3, 2, 1], vec![1, 2], false)
    );
    let only_new_in_isr = PartitionImage {
        isr: vec![4],
        ..moving
    };
    let r = revert(&only_new_in_isr).unwrap();
    assert_eq!((r.isr, r.unclean), (vec![3], true));
}

fn partition_template() -> PartitionImage {
    PartitionImage {
        replicas: Vec::new(),
        isr: Vec::new(),
        removing_replicas: Vec::new(),
        adding_replicas: Vec::new(),
        leader: 1,
        leader_recovery_state: crate::cluster::image::LeaderRecoveryState::Recovered,
        leader_epoch: 0,
        partition_epoch: 0,
        directories: Vec::new(),
        eligible_leader_replicas: Vec::new(),
        last_known_elr: Vec::new(),
    }
}

#[test]
fn a_move_adds_then_completes_when_the_isr_catches_up_and_the_leader_hands_over() {
    let dir = tempfile::tempdir().unwrap();
    let controller = open(dir.path());
    let id = create(&controller, &[1, 2]);
    assert_eq!(alter(&controller, true, Some(&[3, 4])), None);
    let p = partition(&controller, id);
    assert_eq!(p.replicas, [3, 4, 1, 2]);
    assert_eq!(
        (p.adding_replicas.clone(), p.removing_replicas.clone()),
        (vec![3, 4], vec![1, 2])
    );
    assert_eq!((p.leader, p.isr.clone()), (1, vec![1, 2]));
    // New replicas get their brokers' directories, kept ones keep theirs.
    let image = controller.image();
    assert_eq!(p.directories[0], image.broker(3).unwrap().directories[0]);
    assert_eq!(p.directories.len(), 4);
    let listed = controller.list_partition_reassignments(None);
    assert_eq!(
        listed,
        vec![(
            "t".to_string(),
            vec![OngoingReassignment {
                partition: 0,
                replicas: vec![3, 4, 1, 2],
                adding: vec![3, 4],
                removing: vec![1, 2],
            }]
        )]
    );
    // One new replica in the ISR: not done yet.
    assert_eq!(expand_isr(&controller, id, &[1, 2, 3]), 0);
    assert!(partition(&controller, id).is_reassigning());
    // Both: the reassignment completes and leader 1, removed, hands over to 3.
    let before = partition(&controller, id);
    assert_eq!(
        expand_isr(&controller, id, &[1, 2, 3, 4]),
        NEW_LEADER_ELECTED
    );
    let p = partition(&controller, id);
    assert_eq!(
        (p.replicas.clone(), p.isr.clone(), p.leader),
        (vec![3, 4], vec![3, 4], 3)
    );
    assert!(!p.is_reassigning());
    assert_eq!(p.leader_epoch, before.leader_epoch + 1);
    assert_eq!(p.directories.len(), 2);
    assert!(controller.list_partition_reassignments(None).is_empty());
    // Nothing left to cancel.
    assert_eq!(
        alter(&controller, true, None).map(|e| e.code),
        Some(NO_REASSIGNMENT_IN_PROGRESS)
    );
}

#[test]
fn a_target_the_isr_already_holds_completes_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let controller = open(dir.path());
    let id = create(&controller, &[1, 2, 3]);
    // A reorder.
    assert_eq!(alter(&controller, true, Some(&[3, 2, 1])), None);
    let p = partition(&controller, id);
    assert_eq!((p.replicas.clone(), p.leader), (vec![3, 2, 1], 1));
    assert!(!p.is_reassigning());
    // A shrink to ISR members removes the leader and bumps the epoch.
    let epoch = p.leader_epoch;
    assert_eq!(alter(&controller, true, Some(&[2, 3])), None);
    let p = partition(&controller, id);
    assert_eq!(
        (p.replicas.clone(), p.isr.clone(), p.leader),
        (vec![2, 3], vec![2, 3], 2)
    );
    assert_eq!(p.leader_epoch, epoch + 1);
    // Asking for the current assignment again writes nothing.
    let partition_epoch = p.partition_epoch;
    assert_eq!(alter(&controller, true, Some(&[2, 3])), None);
    assert_eq!(partition(&controller, id).partition_epoch, partition_epoch);
}

#[test]
fn cancel_reverts_to_the_original_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let controller = open(dir.path());
    let id = create(&controller, &[1, 2]);
    let original = partition(&controller, id);
    assert_eq!(alter(&controller, true, Some(&[2, 3])), None);
    assert_eq!(expand_isr(&controller, id, &[1, 2]), 0);
    let p = partition(&controller, id);
    assert_eq!(
        (p.replicas.clone(), p.adding_replicas.clone()),
        (vec![2, 3, 1], vec![3])
    );
    assert_eq!(alter(&controller, true, None), None);
    let p = partition(&controller, id);
    assert_eq!(
        (p.replicas.clone(), p.isr.clone(), p.leader),
        (vec![2, 1], vec![1, 2], 1)
    );
    assert!(!p.is_reassigning());
    assert_eq!(
        p.directories,
        vec![original.directories[1], original.directories[0]]
    );
}

#[test]
fn refusals() {
    let dir = tempfile::tempdir().unwrap();
    let controller = open(dir.path());
    create(&controller, &[1, 2]);
    let code =
        |allow: bool, target: Option<&[i32]>| alter(&controller, allow, target).map(|e| e.code);
    assert_eq!(code(true, Some(&[])), Some(INVALID_REPLICA_ASSIGNMENT));
    assert_eq!(code(true, Some(&[1, 1])), Some(INVALID_REPLICA_ASSIGNMENT));
    assert_eq!(code(true, Some(&[1, -1])), Some(INVALID_REPLICA_ASSIGNMENT));
    assert_eq!(code(true, Some(&[1, 9])), Some(INVALID_REPLICA_ASSIGNMENT));
    assert_eq!(code(true, None), Some(NO_REASSIGNMENT_IN_PROGRESS));
    let rf = alter(&controller, false, Some(&[1, 2, 3])).unwrap();
    assert_eq!(rf.code, INVALID_REPLICATION_FACTOR);
    assert_eq!(
        rf.message.as_deref(),
        Some("The replication factor is changed from 2 to 3")
    );
    assert_eq!(code(false, Some(&[3, 4])), None);
    // Heading for [3, 4]: a same-size move is still fine, another size is not.
    assert_eq!(
        code(false, Some(&[4, 3, 2])),
        Some(INVALID_REPLICATION_FACTOR)
    );
    assert_eq!(code(false, Some(&[2, 3])), None);
    let asked = vec![
        ("nope".to_string(), vec![(0, Some(vec![1]))]),
        ("t".to_string(), vec![(7, Some(vec![1]))]),
    ];
    let results = controller
        .alter_partition_reassignments(true, &asked)
        .unwrap();
    for (_, partitions) in results {
        assert_eq!(
            partitions[0].1.as_ref().unwrap().code,
            UNKNOWN_TOPIC_OR_PARTITION
        );
    }
    // Listing unknown names and partitions not moving leaves them out.
    let asked = vec![("nope".to_string(), vec![0]), ("t".to_string(), vec![0, 5])];
    let listed = controller.list_partition_reassignments(Some(&asked));
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].1.len(), 1);
}
