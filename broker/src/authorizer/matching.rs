//! The decision for one action, as Kafka's `StandardAuthorizerData.authorize`, and the
//! binding filters of DescribeAcls/DeleteAcls (Kafka's `AclBindingFilter.matches`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use uuid::Uuid;

use super::settings::AuthorizerSettings;
use super::types::{AclOperation, AclPermission, PatternType, ResourceType, StandardAcl, WILDCARD};
use crate::security::KafkaPrincipal;

/// The answer for one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The principal may.
    Allowed,
    /// The principal may not.
    Denied,
}

/// Every ACL of the cluster (keyed by the id of its `AccessControlEntryRecord`) and the
/// configured super users and default.
#[derive(Debug, Clone, Default)]
pub struct AclSet {
    acls: Arc<BTreeMap<Uuid, StandardAcl>>,
    super_users: Vec<String>,
    allow_if_no_acl: bool,
}

/// Whether an ALLOW ACL for `granted` grants `wanted`: the operation itself, ALL, and
/// the implications of `StandardAuthorizerData.findResult` (DESCRIBE by READ, WRITE,
/// DELETE, ALTER; DESCRIBE_CONFIGS by ALTER_CONFIGS).
fn allow_covers(granted: AclOperation, wanted: AclOperation) -> bool {
    use AclOperation::*;
    granted == All
        || granted == wanted
        || (wanted == Describe && matches!(granted, Read | Write | Delete | Alter))
        || (wanted == DescribeConfigs && granted == AlterConfigs)
}

/// Whether an ACL's pattern covers the resource `name`: a literal of the same name, the
/// literal `*`, or a prefix of the name.
fn pattern_covers(acl: &StandardAcl, name: &str) -> bool {
    match acl.pattern_type {
        PatternType::Literal => acl.resource_name == name || acl.resource_name == WILDCARD,
        PatternType::Prefixed => name.starts_with(acl.resource_name.as_str()),
        PatternType::Any | PatternType::Match => false,
    }
}

impl AclSet {
    /// An empty set with the configured super users and default.
    pub fn new(settings: &AuthorizerSettings) -> AclSet {
        AclSet::with_acls(settings, Arc::default())
    }

    /// The set of `acls` (the metadata image's, shared, not copied) with the configured
    /// super users and default.
    pub fn with_acls(
        settings: &AuthorizerSettings,
        acls: Arc<BTreeMap<Uuid, StandardAcl>>,
    ) -> AclSet {
        AclSet {
            acls,
            super_users: settings.super_users.clone(),
            allow_if_no_acl: settings.allow_everyone_if_no_acl_found,
        }
    }

    /// Adds (or replaces) the ACL with this id, as replaying an `AccessControlEntryRecord`.
    pub fn insert(&mut self, id: Uuid, acl: StandardAcl) {
        Arc::make_mut(&mut self.acls).insert(id, acl);
    }

    /// Removes the ACL with this id, as replaying a `RemoveAccessControlEntryRecord`.
    pub fn remove(&mut self, id: &Uuid) -> Option<StandardAcl> {
        Arc::make_mut(&mut self.acls).remove(id)
    }

    /// Every ACL with its id, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&Uuid, &StandardAcl)> {
        self.acls.iter()
    }

    /// How many ACLs the set holds.
    pub fn len(&self) -> usize {
        self.acls.len()
    }

    /// Whether the set holds no ACL.
    pub fn is_empty(&self) -> bool {
        self.acls.is_empty()
    }

    /// Whether `principal` is a super user (`super.users` names it).
    pub fn is_super_user(&self, principal: &KafkaPrincipal) -> bool {
        let text = principal.to_string();
        self.super_users.contains(&text)
    }

    /// May `principal`, connected from `host`, do `operation` on the resource
    /// (`resource_type`, `name`)?
    ///
    /// As `StandardAuthorizerData`: super users may everything; otherwise every ACL whose
    /// pattern covers the resource is considered; a matching DENY (principal or `User:*`,
    /// host or `*`, the operation itself or ALL — DENY implies nothing) wins; then a
    /// matching ALLOW; when ACLs name the resource but none matches, DENIED; when no ACL
    /// names the resource at all, `allow.everyone.if.no.acl.found` decides.
    pub fn authorize(
        &self,
        principal: &KafkaPrincipal,
        host: IpAddr,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> Decision {
        if self.is_super_user(principal) {
            return Decision::Allowed;
        }
        let principal_text = principal.to_string();
        let host_text = host.to_string();
        let mut resource_has_acls = false;
        let mut allowed = false;
        for acl in self.acls.values() {
            if acl.resource_type != resource_type || !pattern_covers(acl, name) {
                continue;
            }
            resource_has_acls = true;
            if acl.principal != super::types::WILDCARD_PRINCIPAL && acl.principal != principal_text
            {
                continue;
            }
            if acl.host != WILDCARD && acl.host != host_text {
                continue;
            }
            match acl.permission {
                AclPermission::Deny => {
                    if acl.operation == AclOperation::All || acl.operation == operation {
                        return Decision::Denied;
                    }
                }
                AclPermission::Allow => {
                    if allow_covers(acl.operation, operation) {
                        allowed = true;
                    }
                }
                AclPermission::Any => {}
            }
        }
        if allowed || (!resource_has_acls && self.allow_if_no_acl) {
            Decision::Allowed
        } else {
            Decision::Denied
        }
    }

    /// May `principal` do `operation` on some resource of `resource_type`? Kafka's default
    /// `Authorizer.authorizeByResourceType` (which `StandardAuthorizer` keeps): allowed when
    /// the resource `hardcode` would be, or when an ALLOW ACL (the operation or ALL) for
    /// the principal names some resource that no DENY (literal of the same name, or a
    /// prefix of it) takes back; a DENY of the literal `*` denies outright.
    pub fn authorize_by_resource_type(
        &self,
        principal: &KafkaPrincipal,
        host: IpAddr,
        operation: AclOperation,
        resource_type: ResourceType,
    ) -> Decision {
        if self.authorize(principal, host, operation, resource_type, "hardcode")
            == Decision::Allowed
        {
            return Decision::Allowed;
        }
        let principal_text = principal.to_string();
        let host_text = host.to_string();
        let mut deny_literal = std::collections::BTreeSet::new();
        let mut deny_prefixed = std::collections::BTreeSet::new();
        let mut allows: Vec<(PatternType, &str)> = Vec::new();
        for acl in self.acls.values() {
            if acl.resource_type != resource_type
                || (acl.host != WILDCARD && acl.host != host_text)
                || (acl.principal != super::types::WILDCARD_PRINCIPAL
                    && acl.principal != principal_text)
                || (acl.operation != operation && acl.operation != AclOperation::All)
            {
                continue;
            }
            let name = acl.resource_name.as_str();
            match (acl.permission, acl.pattern_type) {
                (AclPermission::Deny, PatternType::Literal) if name == WILDCARD => {
                    return Decision::Denied;
                }
                (AclPermission::Deny, PatternType::Literal) => {
                    deny_literal.insert(name);
                }
                (AclPermission::Deny, PatternType::Prefixed) => {
                    deny_prefixed.insert(name);
                }
                (AclPermission::Allow, PatternType::Literal | PatternType::Prefixed) => {
                    allows.push((acl.pattern_type, name))
                }
                _ => {}
            }
        }
        if allows
            .iter()
            .any(|(p, n)| *p == PatternType::Literal && *n == WILDCARD)
        {
            return Decision::Allowed;
        }
        let survives = |(pattern, name): &(PatternType, &str)| {
            if *pattern == PatternType::Literal && deny_literal.contains(name) {
                return false;
            }
            !(1..=name.len())
                .filter(|end| name.is_char_boundary(*end))
                .any(|end| deny_prefixed.contains(&name[..end]))
        };
        if allows.iter().any(survives) {
            Decision::Allowed
        } else {
            Decision::Denied
        }
    }

    /// The ACLs `filter` matches, with their ids (DescribeAcls, DeleteAcls).
    pub fn matching<'a>(
        &'a self,
        filter: &'a AclBindingFilter,
    ) -> impl Iterator<Item = (&'a Uuid, &'a StandardAcl)> + 'a {
        self.acls.iter().filter(move |(_, acl)| filter.matches(acl))
    }
}

/// A DescribeAcls/DeleteAcls filter, as Kafka's `AclBindingFilter`: `None` strings and the
/// `Any` values match everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclBindingFilter {
    /// The resource type, or `Any`.
    pub resource_type: ResourceType,
    /// The resource name, or `None` for any.
    pub resource_name: Option<String>,
    /// `Any`, `Match`, `Literal` or `Prefixed`.
    pub pattern_type: PatternType,
    /// The principal (`User:alice`), or `None` for any.
    pub principal: Option<String>,
    /// The host, or `None` for any.
    pub host: Option<String>,
    /// The operation, or `Any`.
    pub operation: AclOperation,
    /// The permission, or `Any`.
    pub permission: AclPermission,
}

impl AclBindingFilter {
    /// Whether the filter matches `acl`, as `ResourcePatternFilter.matches` and
    /// `AccessControlEntryFilter.matches`.
    ///
    /// MATCH (Kafka's `PatternType.MATCH`) matches the ACLs that would apply to a resource
    /// of the filter's name: the literal of that name, the literal `*`, and every prefix of
    /// it; with no name it matches everything.
    pub fn matches(&self, acl: &StandardAcl) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != acl.resource_type {
            return false;
        }
        let pattern_ok = match (self.pattern_type, &self.resource_name) {
            (PatternType::Any, None) => true,
            (PatternType::Any, Some(name)) => *name == acl.resource_name,
            (PatternType::Match, None) => true,
            (PatternType::Match, Some(name)) => pattern_covers(acl, name),
            (exact, name) => {
                exact == acl.pattern_type && name.as_ref().is_none_or(|n| *n == acl.resource_name)
            }
        };
        if !pattern_ok {
            return false;
        }
        self.principal.as_ref().is_none_or(|p| *p == acl.principal)
            && self.host.as_ref().is_none_or(|h| *h == acl.host)
            && (self.operation == AclOperation::Any || self.operation == acl.operation)
            && (self.permission == AclPermission::Any || self.permission == acl.permission)
    }
}
