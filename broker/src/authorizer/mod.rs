//! Authorization with Kafka's `StandardAuthorizer` semantics (issue 13, phase 2a).
//!
//! - [`types`]: the ACL vocabulary (resource types, pattern types, operations, permission
//!   types) with Kafka's wire codes, and [`StandardAcl`], one stored ACL.
//! - [`settings`]: `authorizer.class.name`, `super.users`, `allow.everyone.if.no.acl.found`.
//! - [`matching`]: [`AclSet`], the decision for one action (Kafka's
//!   `StandardAuthorizerData.authorize`) and the binding filters of DescribeAcls/DeleteAcls.
//!
//! - `records`: `AccessControlEntryRecord` to and from [`StandardAcl`].
//!
//! This module is state: it never imports from the handlers. The ACLs themselves live in
//! the metadata image (`cluster::image`, replayed from `AccessControlEntryRecord` and
//! `RemoveAccessControlEntryRecord`); the controller writes them (`cluster/controller/acls.rs`);
//! the broker combines them with the settings into an [`AclSet`] per decision.

pub mod matching;
mod records;
pub mod settings;
pub mod types;

#[cfg(test)]
mod tests;

pub use matching::{AclBindingFilter, AclSet, Decision};
pub use settings::AuthorizerSettings;
pub use types::{AclOperation, AclPermission, PatternType, ResourceType, StandardAcl};
