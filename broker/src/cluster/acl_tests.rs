//! ACLs in the metadata log: the controller's CreateAcls/DeleteAcls records, replayed on a
//! restart and carried by snapshots.

use std::path::Path;

use super::controller::ControllerOptions;
use super::meta_properties::MetaProperties;
use super::replay::SnapshotId;
use super::snapshot::{self, KRaftState};
use super::*;
use crate::authorizer::{
    AclBindingFilter, AclOperation, AclPermission, PatternType, ResourceType, StandardAcl,
};

const NODE: i32 = 1;

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("gregor-acls-")
        .tempdir()
        .unwrap()
}

fn open(dir: &Path) -> Controller {
    let (meta, _) = MetaProperties::load_or_format(dir, NODE, None).unwrap();
    let options = ControllerOptions::new(NODE, dir.to_path_buf(), meta.directory_id.unwrap());
    let loaded = load(&options.metadata_log_dir).unwrap();
    Controller::open(options, loaded).unwrap().0
}

fn acl(name: &str, pattern: PatternType, principal: &str, op: AclOperation) -> StandardAcl {
    StandardAcl {
        resource_type: ResourceType::Topic,
        resource_name: name.to_string(),
        pattern_type: pattern,
        principal: principal.to_string(),
        host: "*".to_string(),
        operation: op,
        permission: AclPermission::Allow,
    }
}

fn stored(controller: &Controller) -> Vec<StandardAcl> {
    let mut acls: Vec<StandardAcl> = controller.image().acls().values().cloned().collect();
    acls.sort();
    acls
}

#[test]
fn created_acls_survive_a_restart_and_duplicates_write_nothing() {
    let dir = tempdir();
    let controller = open(dir.path());
    let a = acl(
        "orders",
        PatternType::Literal,
        "User:alice",
        AclOperation::Write,
    );
    let b = acl(
        "logs-",
        PatternType::Prefixed,
        "User:bob",
        AclOperation::Read,
    );
    let mut bad = a.clone();
    bad.pattern_type = PatternType::Match;
    let results = controller
        .create_acls(&[a.clone(), b.clone(), bad])
        .unwrap();
    assert!(results[0].is_ok() && results[1].is_ok());
    let err = results[2].as_ref().unwrap_err();
    assert_eq!(err.code, gregor_protocol::error_code::INVALID_REQUEST);
    assert_eq!(err.message.as_deref(), Some("Invalid patternType MATCH"));
    let offset = controller.next_offset();
    // Creating an ACL that exists is a success that writes no record.
    assert!(controller.create_acls(std::slice::from_ref(&a)).unwrap()[0].is_ok());
    assert_eq!(controller.next_offset(), offset);
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort();
    assert_eq!(stored(&controller), expected);
    drop(controller);

    let controller = open(dir.path());
    assert_eq!(stored(&controller), expected);

    // Delete with a filter; the other ACL stays, also after a restart.
    let filter = AclBindingFilter {
        resource_type: ResourceType::Topic,
        resource_name: None,
        pattern_type: PatternType::Prefixed,
        principal: None,
        host: None,
        operation: AclOperation::Any,
        permission: AclPermission::Any,
    };
    let deleted = controller.delete_acls(&[filter.clone(), filter]).unwrap();
    assert_eq!(deleted[0].as_ref().unwrap(), &vec![b.clone()]);
    assert_eq!(deleted[1].as_ref().unwrap(), &vec![b]);
    assert_eq!(stored(&controller), vec![a.clone()]);
    drop(controller);
    let controller = open(dir.path());
    assert_eq!(stored(&controller), vec![a]);
}

#[test]
fn a_snapshot_carries_the_acls_with_their_ids() {
    let dir = tempdir();
    let controller = open(dir.path());
    controller
        .create_acls(&[
            acl("t", PatternType::Literal, "User:*", AclOperation::Describe),
            acl("*", PatternType::Literal, "User:carol", AclOperation::All),
        ])
        .unwrap();
    let image = controller.image();
    let other = tempdir();
    let partition = other.path().join(replay::METADATA_PARTITION_DIR);
    std::fs::create_dir_all(&partition).unwrap();
    let id = SnapshotId {
        end_offset: image.last_offset() + 1,
        epoch: image.last_epoch().max(0),
    };
    snapshot::write_snapshot(
        &partition,
        id,
        &image,
        1_700_000_000_000,
        &KRaftState::default(),
    )
    .unwrap();
    let loaded = load(other.path()).unwrap();
    assert_eq!(loaded.image.acls(), image.acls());
    assert_eq!(loaded.image.acls().len(), 2);
}
