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

use crate::cluster::MetadataImage;
pub use matching::{AclBindingFilter, AclSet, Decision};
pub use settings::AuthorizerSettings;
pub use types::{AclOperation, AclPermission, PatternType, ResourceType, StandardAcl};

/// The configured authorizer (present only when `authorizer.class.name` names the
/// StandardAuthorizer): its settings, combined with the image's ACLs per decision.
#[derive(Debug, Clone)]
pub struct Authorizer {
    settings: AuthorizerSettings,
}

impl Authorizer {
    /// The authorizer `authorizer.class.name`, `super.users` and
    /// `allow.everyone.if.no.acl.found` ask for; `None` without one. The error names the key.
    pub fn from_config(config: &crate::config::Config) -> Result<Option<Authorizer>, String> {
        let settings = AuthorizerSettings::parse(
            config.get("authorizer.class.name"),
            config.get("super.users"),
            config.get("allow.everyone.if.no.acl.found"),
        )?;
        Ok(settings.enabled.then_some(Authorizer { settings }))
    }

    /// The settings.
    pub fn settings(&self) -> &AuthorizerSettings {
        &self.settings
    }

    /// The ACLs of `image` with the settings, ready for decisions (shares the image's map).
    pub fn acls(&self, image: &MetadataImage) -> AclSet {
        AclSet::with_acls(&self.settings, std::sync::Arc::clone(image.acls()))
    }
}
