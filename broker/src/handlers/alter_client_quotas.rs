//! AlterClientQuotas (KIP-546): quotas set or removed in the metadata log through the
//! controller (`cluster/controller/client_quotas.rs`), or only checked with
//! `validate_only`. Without ALTER_CONFIGS on the cluster every entry of the request, as
//! sent, gets CLUSTER_AUTHORIZATION_FAILED with its default message (Kafka's
//! `AlterClientQuotasRequest.getErrorResponse`).

use gregor_protocol::VersionRange;
use gregor_protocol::messages::alter_client_quotas_request::AlterClientQuotasRequest;
use gregor_protocol::messages::alter_client_quotas_response::{
    AlterClientQuotasResponse, EntityData, EntryData,
};

use super::{RequestContext, controller_failure};
use crate::cluster::client_quotas::QuotaEntity;
use crate::cluster::controller::QuotaAlteration;

/// Versions served (Kafka 4.3.1's).
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

/// Applies (or validates) the request's changes.
pub async fn handle(
    ctx: &RequestContext,
    _version: i16,
    request: AlterClientQuotasRequest,
) -> AlterClientQuotasResponse {
    if let Some(code) = super::authorize::Checker::new(ctx)
        .cluster_error(crate::authorizer::AclOperation::AlterConfigs)
    {
        let message = gregor_protocol::ErrorCode::from(code).default_message();
        return all_failed(&request, code, message);
    }
    let alterations: Vec<QuotaAlteration> = request
        .entries
        .iter()
        .map(|entry| QuotaAlteration {
            // A type named twice keeps its last name, as Kafka's request map does.
            entity: entry
                .entity
                .iter()
                .map(|e| {
                    (
                        e.entity_type.to_string(),
                        e.entity_name.as_ref().map(ToString::to_string),
                    )
                })
                .collect(),
            ops: entry
                .ops
                .iter()
                .map(|op| (op.key.to_string(), (!op.remove).then_some(op.value)))
                .collect(),
        })
        .collect();
    let entities: Vec<QuotaEntity> = alterations.iter().map(|a| a.entity.clone()).collect();
    let validate_only = request.validate_only;
    let outcome = ctx
        .broker
        .controller
        .run(move |c| c.alter_client_quotas(&alterations, validate_only))
        .await;
    let entries = match outcome {
        Ok(results) => results
            .into_iter()
            .map(|r| entry(&r.entity, r.error_code, r.error_message))
            .collect(),
        Err(err) => {
            let error = controller_failure(&err);
            let mut seen: Vec<QuotaEntity> = Vec::new();
            for entity in entities {
                if !seen.contains(&entity) {
                    seen.push(entity);
                }
            }
            seen.iter()
                .map(|entity| entry(entity, error.code, error.message.clone()))
                .collect()
        }
    };
    AlterClientQuotasResponse {
        entries,
        ..Default::default()
    }
}

fn entry(entity: &QuotaEntity, error_code: i16, error_message: Option<String>) -> EntryData {
    EntryData {
        error_code,
        error_message: error_message.map(Into::into),
        entity: entity
            .iter()
            .map(|(entity_type, name)| EntityData {
                entity_type: entity_type.as_str().into(),
                entity_name: name.as_deref().map(Into::into),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// Every entry of `request` failed with `code` (and `message`).
pub(crate) fn all_failed(
    request: &AlterClientQuotasRequest,
    code: i16,
    message: Option<&str>,
) -> AlterClientQuotasResponse {
    AlterClientQuotasResponse {
        entries: request
            .entries
            .iter()
            .map(|e| EntryData {
                error_code: code,
                error_message: message.map(Into::into),
                entity: e
                    .entity
                    .iter()
                    .map(|d| EntityData {
                        entity_type: d.entity_type.clone(),
                        entity_name: d.entity_name.clone(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}
