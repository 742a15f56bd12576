//! CreateAcls, as Kafka's `AclApis.handleCreateAcls`: ALTER on the cluster, then each ACL
//! checked (the cluster resource has one name, names are not empty, codes are known) and
//! the valid ones stored through the controller (`cluster/controller/acls.rs`);
//! SECURITY_DISABLED without an authorizer.

use gregor_protocol::messages::create_acls_request::{AclCreation, CreateAclsRequest};
use gregor_protocol::messages::create_acls_response::{AclCreationResult, CreateAclsResponse};
use gregor_protocol::{VersionRange, error_code};

use super::authorize::{CLUSTER_NAME, Checker};
use super::{RequestContext, controller_failure};
use crate::authorizer::{AclOperation, AclPermission, PatternType, ResourceType, StandardAcl};

/// Versions served (Kafka 3.9's; Kafka 4 serves 1+, see `legacy_versions`).
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 3 };

/// The ACL a creation asks for, or the INVALID_REQUEST message.
fn acl_of(version: i16, creation: &AclCreation) -> Result<StandardAcl, String> {
    // Version 0 has no pattern type: LITERAL (the field's default).
    let pattern_code = if version == 0 {
        PatternType::Literal.code()
    } else {
        creation.resource_pattern_type
    };
    let resource_type = ResourceType::from_code(creation.resource_type)
        .ok_or_else(|| "Invalid resourceType UNKNOWN".to_string())?;
    let pattern_type = PatternType::from_code(pattern_code)
        .ok_or_else(|| "Invalid patternType UNKNOWN".to_string())?;
    let operation = AclOperation::from_code(creation.operation)
        .ok_or_else(|| "Invalid operation UNKNOWN".to_string())?;
    let permission = AclPermission::from_code(creation.permission_type)
        .ok_or_else(|| "Invalid permissionType UNKNOWN".to_string())?;
    if resource_type == ResourceType::Cluster && *creation.resource_name != *CLUSTER_NAME {
        return Err(format!(
            "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
        ));
    }
    if creation.resource_name.is_empty() {
        return Err("Invalid empty resource name".to_string());
    }
    let acl = StandardAcl {
        resource_type,
        resource_name: creation.resource_name.to_string(),
        pattern_type,
        principal: creation.principal.to_string(),
        host: creation.host.to_string(),
        operation,
        permission,
    };
    match acl.validate() {
        Some(reason) => Err(reason),
        None => Ok(acl),
    }
}

fn result(code: i16, message: Option<String>) -> AclCreationResult {
    AclCreationResult {
        error_code: code,
        error_message: message.map(Into::into),
        ..Default::default()
    }
}

/// Answers a CreateAcls request.
pub async fn handle(
    ctx: &RequestContext,
    version: i16,
    request: CreateAclsRequest,
) -> CreateAclsResponse {
    let all = |code: i16, message: Option<String>| CreateAclsResponse {
        results: request
            .creations
            .iter()
            .map(|_| result(code, message.clone()))
            .collect(),
        ..Default::default()
    };
    if let Some((code, message)) =
        Checker::new(ctx).acl_change_refusal(ctx.broker.authorizer.is_some())
    {
        return all(code, message);
    }
    let checked: Vec<Result<StandardAcl, String>> = request
        .creations
        .iter()
        .map(|c| acl_of(version, c))
        .collect();
    let valid: Vec<StandardAcl> = checked.iter().filter_map(|c| c.clone().ok()).collect();
    let outcome = ctx
        .broker
        .controller
        .run(move |c| c.create_acls(&valid))
        .await;
    let mut stored = match outcome {
        Ok(results) => results.into_iter(),
        Err(err) => {
            let error = controller_failure(&err);
            return all(error.code, error.message);
        }
    };
    let results = checked
        .into_iter()
        .map(|c| match c {
            Err(message) => result(error_code::INVALID_REQUEST, Some(message)),
            Ok(_) => match stored.next() {
                Some(Ok(())) => result(error_code::NONE, None),
                Some(Err(e)) => result(e.code, e.message),
                None => result(error_code::UNKNOWN_SERVER_ERROR, None),
            },
        })
        .collect();
    CreateAclsResponse {
        results,
        ..Default::default()
    }
}
