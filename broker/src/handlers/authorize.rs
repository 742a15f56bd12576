//! The authorization checks of the handlers, as Kafka's `AuthHelper` makes them: each
//! handler asks with one call; without an authorizer (`authorizer.class.name` unset)
//! every check passes and the authorized-operations bit sets hold every operation of the
//! resource type.

use gregor_protocol::error_code;

use super::RequestContext;
use crate::authorizer::{AclOperation, AclSet, Decision, ResourceType};

/// The name of the cluster resource (Kafka's `Resource.CLUSTER_NAME`).
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// The operations Kafka's `AclEntry.supportedOperations` lists for a resource type (the
/// members of an authorized-operations bit set).
pub fn supported_operations(resource_type: ResourceType) -> &'static [AclOperation] {
    use AclOperation::*;
    match resource_type {
        ResourceType::Topic => &[
            Read,
            Write,
            Create,
            Describe,
            Delete,
            Alter,
            DescribeConfigs,
            AlterConfigs,
        ],
        ResourceType::Group => &[Read, Describe, Delete, DescribeConfigs, AlterConfigs],
        ResourceType::Cluster => &[
            Create,
            ClusterAction,
            DescribeConfigs,
            AlterConfigs,
            IdempotentWrite,
            Alter,
            Describe,
        ],
        ResourceType::TransactionalId => &[Describe, Write, TwoPhaseCommit],
        ResourceType::DelegationToken => &[Describe],
        ResourceType::User => &[CreateTokens, DescribeTokens],
        ResourceType::Any => &[],
    }
}

/// One request's view of the authorizer: the ACLs of the current image with who asks.
/// `None` inside means no authorizer is configured.
pub struct Checker<'a> {
    ctx: &'a RequestContext,
    acls: Option<AclSet>,
}

impl<'a> Checker<'a> {
    /// The checker for `ctx` (reads the image's ACLs once).
    pub fn new(ctx: &'a RequestContext) -> Checker<'a> {
        let acls = ctx
            .broker
            .authorizer
            .as_ref()
            .map(|a| a.acls(&ctx.broker.image()));
        Checker { ctx, acls }
    }

    /// Whether an authorizer is configured.
    pub fn enabled(&self) -> bool {
        self.acls.is_some()
    }

    /// May the request's principal do `operation` on (`resource_type`, `name`)?
    pub fn allowed(
        &self,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        match &self.acls {
            None => true,
            Some(acls) => {
                let decision = acls.authorize(
                    &self.ctx.principal,
                    self.ctx.peer.ip(),
                    operation,
                    resource_type,
                    name,
                );
                if decision == Decision::Denied {
                    tracing::debug!(
                        "principal {} denied {:?} on {:?}:{} from {}",
                        self.ctx.principal,
                        operation,
                        resource_type,
                        name,
                        self.ctx.peer.ip()
                    );
                }
                decision == Decision::Allowed
            }
        }
    }

    /// May the principal do `operation` on some resource of `resource_type` (Kafka's
    /// `authorizeByResourceType`, e.g. any topic WRITE for an idempotent producer)?
    pub fn any_of_type(&self, operation: AclOperation, resource_type: ResourceType) -> bool {
        match &self.acls {
            None => true,
            Some(acls) => {
                acls.authorize_by_resource_type(
                    &self.ctx.principal,
                    self.ctx.peer.ip(),
                    operation,
                    resource_type,
                ) == Decision::Allowed
            }
        }
    }

    /// May the principal do `operation` on the cluster?
    pub fn cluster(&self, operation: AclOperation) -> bool {
        self.allowed(operation, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// May the principal do `operation` on topic `name`?
    pub fn topic(&self, operation: AclOperation, name: &str) -> bool {
        self.allowed(operation, ResourceType::Topic, name)
    }

    /// May the principal do `operation` on group `name`?
    pub fn group(&self, operation: AclOperation, name: &str) -> bool {
        self.allowed(operation, ResourceType::Group, name)
    }

    /// May the principal do `operation` on transactional id `name`?
    pub fn transactional_id(&self, operation: AclOperation, name: &str) -> bool {
        self.allowed(operation, ResourceType::TransactionalId, name)
    }

    /// TOPIC_AUTHORIZATION_FAILED unless the principal may do `operation` on topic `name`.
    pub fn topic_error(&self, operation: AclOperation, name: &str) -> Option<i16> {
        (!self.topic(operation, name)).then_some(error_code::TOPIC_AUTHORIZATION_FAILED)
    }

    /// GROUP_AUTHORIZATION_FAILED unless the principal may do `operation` on group `name`.
    pub fn group_error(&self, operation: AclOperation, name: &str) -> Option<i16> {
        (!self.group(operation, name)).then_some(error_code::GROUP_AUTHORIZATION_FAILED)
    }

    /// TRANSACTIONAL_ID_AUTHORIZATION_FAILED unless the principal may do `operation` on
    /// transactional id `name`.
    pub fn transactional_id_error(&self, operation: AclOperation, name: &str) -> Option<i16> {
        (!self.transactional_id(operation, name))
            .then_some(error_code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    }

    /// Why a CreateAcls or DeleteAcls request is refused as a whole, as Kafka's `AclApis`
    /// decides: CLUSTER_AUTHORIZATION_FAILED without ALTER on the cluster, then
    /// SECURITY_DISABLED when no authorizer is configured; the code and its message.
    pub fn acl_change_refusal(&self, broker_has_authorizer: bool) -> Option<(i16, Option<String>)> {
        if let Some(code) = self.cluster_error(AclOperation::Alter) {
            let message = gregor_protocol::ErrorCode::from(code)
                .default_message()
                .map(str::to_string);
            return Some((code, message));
        }
        (!broker_has_authorizer).then(|| {
            (
                error_code::SECURITY_DISABLED,
                Some("No Authorizer is configured.".to_string()),
            )
        })
    }

    /// CLUSTER_AUTHORIZATION_FAILED unless the principal may do `operation` on the cluster.
    pub fn cluster_error(&self, operation: AclOperation) -> Option<i16> {
        (!self.cluster(operation)).then_some(error_code::CLUSTER_AUTHORIZATION_FAILED)
    }

    /// The error for a config resource (`ConfigResource` type code and name) without
    /// `operation` (ALTER_CONFIGS or DESCRIBE_CONFIGS), as `KafkaApis.configsAuthorizationApiError`:
    /// brokers, loggers and client-metrics subscriptions are the cluster's
    /// (CLUSTER_AUTHORIZATION_FAILED), topics TOPIC_AUTHORIZATION_FAILED, groups
    /// GROUP_AUTHORIZATION_FAILED; other types are left to the handler.
    pub fn config_resource_error(
        &self,
        operation: AclOperation,
        resource_type: i8,
        name: &str,
    ) -> Option<i16> {
        use crate::cluster::image::ConfigResource;
        match resource_type {
            ConfigResource::BROKER
            | ConfigResource::BROKER_LOGGER
            | ConfigResource::CLIENT_METRICS => self.cluster_error(operation),
            ConfigResource::TOPIC => self.topic_error(operation, name),
            ConfigResource::GROUP => self.group_error(operation, name),
            _ => None,
        }
    }

    /// The authorized operations on (`resource_type`, `name`) as Kafka's bit set (bit =
    /// operation code), as `AuthHelper.authorizedOperations`: every supported operation
    /// without an authorizer.
    pub fn operations(&self, resource_type: ResourceType, name: &str) -> i32 {
        supported_operations(resource_type)
            .iter()
            .filter(|op| self.allowed(**op, resource_type, name))
            .fold(0i32, |bits, op| bits | (1 << op.code()))
    }
}
