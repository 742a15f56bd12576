//! CreateAcls and DeleteAcls in the metadata log, as Kafka's `AclControlManager`: each new
//! ACL is an `AccessControlEntryRecord` under a fresh random id (an ACL that exists already
//! is a success that writes nothing), each deleted one a `RemoveAccessControlEntryRecord`;
//! one request's records are committed together.

use std::collections::BTreeSet;

use gregor_protocol::MetadataRecord;
use gregor_protocol::error_code;
use gregor_protocol::messages::remove_access_control_entry_record::RemoveAccessControlEntryRecord;
use uuid::Uuid;

use super::super::meta_properties::random_uuid;
use super::{ApiError, Controller, ControllerError, v0};
use crate::authorizer::{AclBindingFilter, StandardAcl};

/// Kafka's `QuorumController.MAX_RECORDS_PER_USER_OP`: the most records one request may
/// write.
pub const MAX_RECORDS_PER_USER_OP: usize = 10_000;

/// The ACLs one DeleteAcls filter removed, or why the filter failed.
pub type AclDeletion = Result<Vec<StandardAcl>, ApiError>;

impl Controller {
    /// Stores each ACL that is not stored yet; one result per ACL, in order. Invalid ACLs
    /// (see [`StandardAcl::validate`]) get INVALID_REQUEST.
    pub fn create_acls(
        &self,
        acls: &[StandardAcl],
    ) -> Result<Vec<Result<(), ApiError>>, ControllerError> {
        let mut log = self.lock();
        log.check_active()?;
        let image = self.image();
        let mut existing: BTreeSet<&StandardAcl> = image.acls().values().collect();
        let mut taken: BTreeSet<Uuid> = image.acls().keys().copied().collect();
        let mut records = Vec::new();
        let mut results = Vec::with_capacity(acls.len());
        for acl in acls {
            if let Some(reason) = acl.validate() {
                results.push(Err(ApiError {
                    code: error_code::INVALID_REQUEST,
                    message: Some(reason),
                }));
                continue;
            }
            if records.len() >= MAX_RECORDS_PER_USER_OP {
                results.push(Err(ApiError {
                    code: error_code::POLICY_VIOLATION,
                    message: Some(format!(
                        "Cannot create more than {MAX_RECORDS_PER_USER_OP} acls in a single \
                         request"
                    )),
                }));
                continue;
            }
            if existing.insert(acl) {
                let id = loop {
                    let id = random_uuid();
                    if taken.insert(id) {
                        break id;
                    }
                };
                records.push(v0(MetadataRecord::AccessControlEntry(acl.to_record(id))));
            }
            results.push(Ok(()));
        }
        self.commit(&mut log, records)?;
        Ok(results)
    }

    /// Removes every ACL each filter matches; one result per filter, in order, listing the
    /// ACLs it matched (an ACL two filters match is listed by both, removed once). A
    /// request that would remove more than [`MAX_RECORDS_PER_USER_OP`] ACLs fails that
    /// filter, as Kafka's `BoundedListTooLongException`.
    pub fn delete_acls(
        &self,
        filters: &[AclBindingFilter],
    ) -> Result<Vec<AclDeletion>, ControllerError> {
        let mut log = self.lock();
        log.check_active()?;
        let image = self.image();
        let mut removed: BTreeSet<Uuid> = BTreeSet::new();
        let mut results = Vec::with_capacity(filters.len());
        for filter in filters {
            let mut matched = Vec::new();
            let mut ids = Vec::new();
            for (id, acl) in image.acls().iter() {
                if filter.matches(acl) {
                    matched.push(acl.clone());
                    ids.push(*id);
                }
            }
            let would_remove =
                removed.len() + ids.iter().filter(|id| !removed.contains(id)).count();
            if would_remove > MAX_RECORDS_PER_USER_OP {
                results.push(Err(ApiError {
                    code: error_code::POLICY_VIOLATION,
                    message: Some(format!(
                        "Cannot remove more than {MAX_RECORDS_PER_USER_OP} acls in a single \
                         delete operation."
                    )),
                }));
                continue;
            }
            removed.extend(ids);
            results.push(Ok(matched));
        }
        let records = removed
            .into_iter()
            .map(|id| {
                v0(MetadataRecord::RemoveAccessControlEntry(
                    RemoveAccessControlEntryRecord {
                        id,
                        ..Default::default()
                    },
                ))
            })
            .collect();
        self.commit(&mut log, records)?;
        Ok(results)
    }
}
