//! DescribeAcls, as Kafka's `AclApis.handleDescribeAcls`: DESCRIBE on the cluster, then
//! the ACLs the filter matches grouped by resource pattern; SECURITY_DISABLED without an
//! authorizer. Also the filter decoding DeleteAcls shares.

use gregor_protocol::messages::describe_acls_request::DescribeAclsRequest;
use gregor_protocol::messages::describe_acls_response::{
    AclDescription, DescribeAclsResource, DescribeAclsResponse,
};
use gregor_protocol::{ErrorCode, VersionRange, error_code};

use super::RequestContext;
use super::authorize::Checker;
use crate::authorizer::{
    AclBindingFilter, AclOperation, AclPermission, PatternType, ResourceType, StandardAcl,
};

/// Versions served (Kafka 3.9's; Kafka 4 serves 1+, see `legacy_versions`).
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 3 };

/// The filter of the wire codes, or the INVALID_REQUEST message for a code Kafka reads as
/// UNKNOWN (`DescribeAclsRequest.normalizeAndValidate`, `AclControlManager.validateFilter`).
#[allow(clippy::too_many_arguments)]
pub fn filter_of(
    resource_type: i8,
    resource_name: Option<&str>,
    pattern_type: i8,
    principal: Option<&str>,
    host: Option<&str>,
    operation: i8,
    permission: i8,
) -> Result<AclBindingFilter, String> {
    let (Some(resource_type), Some(pattern_type)) = (
        ResourceType::from_code(resource_type),
        PatternType::from_code(pattern_type),
    ) else {
        return Err("Unknown patternFilter.".to_string());
    };
    let (Some(operation), Some(permission)) = (
        AclOperation::from_code(operation),
        AclPermission::from_code(permission),
    ) else {
        return Err("Unknown entryFilter.".to_string());
    };
    Ok(AclBindingFilter {
        resource_type,
        resource_name: resource_name.map(str::to_string),
        pattern_type,
        principal: principal.map(str::to_string),
        host: host.map(str::to_string),
        operation,
        permission,
    })
}

/// The ACLs grouped by resource pattern, as `DescribeAclsResponse.aclsResources` (in
/// resource order here; Kafka's order is its hash map's).
fn resources<'a>(acls: impl Iterator<Item = &'a StandardAcl>) -> Vec<DescribeAclsResource> {
    let mut grouped: std::collections::BTreeMap<(i8, &str, i8), Vec<AclDescription>> =
        std::collections::BTreeMap::new();
    for acl in acls {
        grouped
            .entry((
                acl.resource_type.code(),
                acl.resource_name.as_str(),
                acl.pattern_type.code(),
            ))
            .or_default()
            .push(AclDescription {
                principal: acl.principal.as_str().into(),
                host: acl.host.as_str().into(),
                operation: acl.operation.code(),
                permission_type: acl.permission.code(),
                ..Default::default()
            });
    }
    grouped
        .into_iter()
        .map(
            |((resource_type, name, pattern_type), acls)| DescribeAclsResource {
                resource_type,
                resource_name: name.into(),
                pattern_type,
                acls,
                ..Default::default()
            },
        )
        .collect()
}

fn failed(code: i16, message: &str) -> DescribeAclsResponse {
    DescribeAclsResponse {
        error_code: code,
        error_message: Some(message.into()),
        ..Default::default()
    }
}

/// Answers a DescribeAcls request.
pub fn handle(
    ctx: &RequestContext,
    version: i16,
    request: DescribeAclsRequest,
) -> DescribeAclsResponse {
    let checker = Checker::new(ctx);
    if let Some(code) = checker.cluster_error(AclOperation::Describe) {
        return failed(
            code,
            ErrorCode::from(code).default_message().unwrap_or_default(),
        );
    }
    let Some(authorizer) = ctx.broker.authorizer.as_ref() else {
        return failed(
            error_code::SECURITY_DISABLED,
            "No Authorizer is configured on the broker",
        );
    };
    // Version 0 has no pattern type (LITERAL): ANY is read as LITERAL there, as Kafka's
    // request normalizes it.
    let pattern_type = if version == 0 {
        PatternType::Literal.code()
    } else {
        request.pattern_type_filter
    };
    let filter = match filter_of(
        request.resource_type_filter,
        request.resource_name_filter.as_deref(),
        pattern_type,
        request.principal_filter.as_deref(),
        request.host_filter.as_deref(),
        request.operation,
        request.permission_type,
    ) {
        Ok(filter) => filter,
        Err(message) => return failed(error_code::INVALID_REQUEST, &message),
    };
    let acls = authorizer.acls(&ctx.broker.image());
    DescribeAclsResponse {
        resources: resources(acls.matching(&filter).map(|(_, acl)| acl)),
        ..Default::default()
    }
}
