//! ACLs in the metadata log: `AccessControlEntryRecord` to and from [`StandardAcl`], as
//! Kafka's `StandardAclWithId.fromRecord` / `toRecord`.

use gregor_protocol::messages::access_control_entry_record::AccessControlEntryRecord;
use uuid::Uuid;

use super::types::{AclOperation, AclPermission, PatternType, ResourceType, StandardAcl};

impl StandardAcl {
    /// The ACL a record holds, or why it cannot be one (a code Kafka does not define, or a
    /// filter-only value such as ANY).
    pub fn from_record(record: &AccessControlEntryRecord) -> Result<StandardAcl, String> {
        let acl = StandardAcl {
            resource_type: ResourceType::from_code(record.resource_type)
                .ok_or_else(|| format!("unknown resource type {}", record.resource_type))?,
            resource_name: record.resource_name.to_string(),
            pattern_type: PatternType::from_code(record.pattern_type)
                .ok_or_else(|| format!("unknown pattern type {}", record.pattern_type))?,
            principal: record.principal.to_string(),
            host: record.host.to_string(),
            operation: AclOperation::from_code(record.operation)
                .ok_or_else(|| format!("unknown operation {}", record.operation))?,
            permission: AclPermission::from_code(record.permission_type)
                .ok_or_else(|| format!("unknown permission type {}", record.permission_type))?,
        };
        match acl.validate() {
            Some(reason) => Err(reason),
            None => Ok(acl),
        }
    }

    /// The record that stores this ACL under `id`.
    pub fn to_record(&self, id: Uuid) -> AccessControlEntryRecord {
        AccessControlEntryRecord {
            id,
            resource_type: self.resource_type.code(),
            resource_name: self.resource_name.as_str().into(),
            pattern_type: self.pattern_type.code(),
            principal: self.principal.as_str().into(),
            host: self.host.as_str().into(),
            operation: self.operation.code(),
            permission_type: self.permission.code(),
            ..Default::default()
        }
    }
}
