//! Authorization with Kafka's `StandardAuthorizer` semantics (issue 13, phase 2a).
//!
//! - [`types`]: the ACL vocabulary (resource types, pattern types, operations, permission
//!   types) with Kafka's wire codes, and [`StandardAcl`], one stored ACL.
//! - [`settings`]: `authorizer.class.name`, `super.users`, `allow.everyone.if.no.acl.found`.
//! - [`matching`]: [`AclSet`], the decision for one action (Kafka's
//!   `StandardAuthorizerData.authorize`) and the binding filters of DescribeAcls/DeleteAcls.
//!
//! This module is state: it never imports from the handlers. Not wired yet: the metadata
//! records, the ACL APIs and the handlers' checks are phase 2b (see the report of this
//! branch).

pub mod matching;
pub mod settings;
pub mod types;

#[cfg(test)]
mod tests;

pub use matching::{AclBindingFilter, AclSet, Decision};
pub use settings::AuthorizerSettings;
pub use types::{AclOperation, AclPermission, PatternType, ResourceType, StandardAcl};
