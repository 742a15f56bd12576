//! DeleteAcls, as Kafka's `AclApis.handleDeleteAcls`: ALTER on the cluster, then every ACL
//! each filter matches removed through the controller (`cluster/controller/acls.rs`), one
//! result per filter listing what it matched; SECURITY_DISABLED without an authorizer.

use gregor_protocol::messages::delete_acls_request::DeleteAclsRequest;
use gregor_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl, DeleteAclsResponse,
};
use gregor_protocol::{VersionRange, error_code};

use super::authorize::Checker;
use super::describe_acls::filter_of;
use super::{RequestContext, controller_failure};
use crate::authorizer::{AclBindingFilter, PatternType};

/// Versions served (Kafka 3.9's; Kafka 4 serves 1+, see `legacy_versions`).
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 3 };

fn failed(code: i16, message: Option<String>) -> DeleteAclsFilterResult {
    DeleteAclsFilterResult {
        error_code: code,
        error_message: message.map(Into::into),
        ..Default::default()
    }
}

/// Answers a DeleteAcls request.
pub async fn handle(
    ctx: &RequestContext,
    version: i16,
    request: DeleteAclsRequest,
) -> DeleteAclsResponse {
    let all = |code: i16, message: Option<String>| DeleteAclsResponse {
        filter_results: request
            .filters
            .iter()
            .map(|_| failed(code, message.clone()))
            .collect(),
        ..Default::default()
    };
    if let Some((code, message)) =
        Checker::new(ctx).acl_change_refusal(ctx.broker.authorizer.is_some())
    {
        return all(code, message);
    }
    let parsed: Vec<Result<AclBindingFilter, String>> = request
        .filters
        .iter()
        .map(|f| {
            // Version 0 has no pattern type: LITERAL (ANY is read as LITERAL there).
            let pattern_type = if version == 0 {
                PatternType::Literal.code()
            } else {
                f.pattern_type_filter
            };
            filter_of(
                f.resource_type_filter,
                f.resource_name_filter.as_deref(),
                pattern_type,
                f.principal_filter.as_deref(),
                f.host_filter.as_deref(),
                f.operation,
                f.permission_type,
            )
        })
        .collect();
    let valid: Vec<AclBindingFilter> = parsed.iter().filter_map(|f| f.clone().ok()).collect();
    let outcome = ctx
        .broker
        .controller
        .run(move |c| c.delete_acls(&valid))
        .await;
    let mut deleted = match outcome {
        Ok(results) => results.into_iter(),
        Err(err) => {
            let error = controller_failure(&err);
            return all(error.code, error.message);
        }
    };
    let filter_results = parsed
        .into_iter()
        .map(|f| match f {
            Err(message) => failed(error_code::INVALID_REQUEST, Some(message)),
            Ok(_) => match deleted.next() {
                Some(Ok(acls)) => DeleteAclsFilterResult {
                    matching_acls: acls
                        .iter()
                        // Version 0 cannot say PREFIXED (Kafka's response refuses to
                        // serialize it); only LITERAL ACLs are listed there.
                        .filter(|a| version > 0 || a.pattern_type == PatternType::Literal)
                        .map(|a| DeleteAclsMatchingAcl {
                            resource_type: a.resource_type.code(),
                            resource_name: a.resource_name.as_str().into(),
                            pattern_type: a.pattern_type.code(),
                            principal: a.principal.as_str().into(),
                            host: a.host.as_str().into(),
                            operation: a.operation.code(),
                            permission_type: a.permission.code(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                },
                Some(Err(e)) => failed(e.code, e.message),
                None => failed(error_code::UNKNOWN_SERVER_ERROR, None),
            },
        })
        .collect();
    DeleteAclsResponse {
        filter_results,
        ..Default::default()
    }
}
