//! The ACL vocabulary with Kafka's wire codes (`org.apache.kafka.common.acl` and
//! `org.apache.kafka.common.resource`), and one stored ACL.

use crate::security::KafkaPrincipal;

/// Kafka's `ResourceType`; the `i8` is its wire code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceType {
    /// Only in filters: any resource type.
    Any,
    /// A topic.
    Topic,
    /// A consumer group.
    Group,
    /// The cluster (`kafka-cluster`).
    Cluster,
    /// A transactional id.
    TransactionalId,
    /// A delegation token.
    DelegationToken,
    /// A user (for SCRAM credentials and delegation tokens).
    User,
}

impl ResourceType {
    /// The wire code, as Kafka's `ResourceType.code()`.
    pub fn code(self) -> i8 {
        match self {
            ResourceType::Any => 1,
            ResourceType::Topic => 2,
            ResourceType::Group => 3,
            ResourceType::Cluster => 4,
            ResourceType::TransactionalId => 5,
            ResourceType::DelegationToken => 6,
            ResourceType::User => 7,
        }
    }

    /// The type of a wire code; `None` for UNKNOWN (0) and codes Kafka does not define.
    pub fn from_code(code: i8) -> Option<ResourceType> {
        Some(match code {
            1 => ResourceType::Any,
            2 => ResourceType::Topic,
            3 => ResourceType::Group,
            4 => ResourceType::Cluster,
            5 => ResourceType::TransactionalId,
            6 => ResourceType::DelegationToken,
            7 => ResourceType::User,
            _ => return None,
        })
    }
}

/// Kafka's `PatternType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PatternType {
    /// Only in filters: any pattern type.
    Any,
    /// Only in filters: every pattern that would match the filter's name.
    Match,
    /// The name exactly, or every resource when the name is `*`.
    Literal,
    /// Every resource whose name starts with the name.
    Prefixed,
}

impl PatternType {
    /// The wire code, as Kafka's `PatternType.code()`.
    pub fn code(self) -> i8 {
        match self {
            PatternType::Any => 1,
            PatternType::Match => 2,
            PatternType::Literal => 3,
            PatternType::Prefixed => 4,
        }
    }

    /// The pattern type of a wire code; `None` for UNKNOWN (0) and undefined codes.
    pub fn from_code(code: i8) -> Option<PatternType> {
        Some(match code {
            1 => PatternType::Any,
            2 => PatternType::Match,
            3 => PatternType::Literal,
            4 => PatternType::Prefixed,
            _ => return None,
        })
    }
}

/// Kafka's `AclOperation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum AclOperation {
    /// Only in filters: any operation.
    Any,
    /// Every operation (in an ACL).
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
    CreateTokens,
    DescribeTokens,
    TwoPhaseCommit,
}

impl AclOperation {
    /// The wire code, as Kafka's `AclOperation.code()`.
    pub fn code(self) -> i8 {
        match self {
            AclOperation::Any => 1,
            AclOperation::All => 2,
            AclOperation::Read => 3,
            AclOperation::Write => 4,
            AclOperation::Create => 5,
            AclOperation::Delete => 6,
            AclOperation::Alter => 7,
            AclOperation::Describe => 8,
            AclOperation::ClusterAction => 9,
            AclOperation::DescribeConfigs => 10,
            AclOperation::AlterConfigs => 11,
            AclOperation::IdempotentWrite => 12,
            AclOperation::CreateTokens => 13,
            AclOperation::DescribeTokens => 14,
            AclOperation::TwoPhaseCommit => 15,
        }
    }

    /// The operation of a wire code; `None` for UNKNOWN (0) and undefined codes.
    pub fn from_code(code: i8) -> Option<AclOperation> {
        const ALL: [AclOperation; 15] = [
            AclOperation::Any,
            AclOperation::All,
            AclOperation::Read,
            AclOperation::Write,
            AclOperation::Create,
            AclOperation::Delete,
            AclOperation::Alter,
            AclOperation::Describe,
            AclOperation::ClusterAction,
            AclOperation::DescribeConfigs,
            AclOperation::AlterConfigs,
            AclOperation::IdempotentWrite,
            AclOperation::CreateTokens,
            AclOperation::DescribeTokens,
            AclOperation::TwoPhaseCommit,
        ];
        ALL.into_iter().find(|op| op.code() == code)
    }
}

/// Kafka's `AclPermissionType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AclPermission {
    /// Only in filters: either permission.
    Any,
    /// The ACL denies the operation; a matching DENY wins over every ALLOW.
    Deny,
    /// The ACL allows the operation.
    Allow,
}

impl AclPermission {
    /// The wire code, as Kafka's `AclPermissionType.code()`.
    pub fn code(self) -> i8 {
        match self {
            AclPermission::Any => 1,
            AclPermission::Deny => 2,
            AclPermission::Allow => 3,
        }
    }

    /// The permission of a wire code; `None` for UNKNOWN (0) and undefined codes.
    pub fn from_code(code: i8) -> Option<AclPermission> {
        Some(match code {
            1 => AclPermission::Any,
            2 => AclPermission::Deny,
            3 => AclPermission::Allow,
            _ => return None,
        })
    }
}

/// The literal name that matches every resource of its type (Kafka's
/// `ResourcePattern.WILDCARD_RESOURCE`), and the host that matches every host.
pub const WILDCARD: &str = "*";

/// The principal every principal matches (Kafka's `StandardAuthorizerData.WILDCARD_PRINCIPAL`).
pub const WILDCARD_PRINCIPAL: &str = "User:*";

/// One ACL as Kafka's `StandardAcl` (and `AccessControlEntryRecord`) holds it.
///
/// Only concrete values: a resource type, pattern type, operation or permission of `Any`
/// (or `Match`) belongs to filters; [`StandardAcl::validate`] refuses them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StandardAcl {
    /// The resource type.
    pub resource_type: ResourceType,
    /// The resource name (or prefix, or `*`).
    pub resource_name: String,
    /// LITERAL or PREFIXED.
    pub pattern_type: PatternType,
    /// `Type:name`, e.g. `User:alice` or `User:*`.
    pub principal: String,
    /// An IP address or `*`.
    pub host: String,
    /// The operation (ALL for every operation).
    pub operation: AclOperation,
    /// ALLOW or DENY.
    pub permission: AclPermission,
}

impl StandardAcl {
    /// Why this ACL cannot be stored, as Kafka's `AclControlManager.validateNewAcl` and the
    /// CreateAcls handler say it; `None` when it can.
    pub fn validate(&self) -> Option<String> {
        if self.resource_type == ResourceType::Any {
            return Some("Invalid resourceType ANY".to_string());
        }
        match self.pattern_type {
            PatternType::Literal | PatternType::Prefixed => {}
            PatternType::Any => return Some("Invalid patternType ANY".to_string()),
            PatternType::Match => return Some("Invalid patternType MATCH".to_string()),
        }
        if matches!(self.operation, AclOperation::Any) {
            return Some("Invalid operation ANY".to_string());
        }
        if self.permission == AclPermission::Any {
            return Some("Invalid permissionType ANY".to_string());
        }
        if self.resource_name.is_empty() {
            return Some("Resource name should not be empty".to_string());
        }
        // Kafka's SecurityUtils.parseKafkaPrincipal: `Type:name`, both parts non-empty.
        match self.principal.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {}
            _ => {
                return Some(format!(
                    "Could not parse principal from `{}` (no colon is present separating the \
                     principal type from the principal name)",
                    self.principal
                ));
            }
        }
        // Kafka's `AclApis` (the CreateAcls handler): the cluster resource has one name.
        if self.resource_type == ResourceType::Cluster && self.resource_name != "kafka-cluster" {
            return Some(
                "The only valid name for the CLUSTER resource is kafka-cluster".to_string(),
            );
        }
        None
    }

    /// Whether `principal` is this ACL's principal, or this ACL names every user (`User:*`).
    pub fn matches_principal(&self, principal: &KafkaPrincipal) -> bool {
        self.principal == WILDCARD_PRINCIPAL || self.principal == principal.to_string()
    }
}
