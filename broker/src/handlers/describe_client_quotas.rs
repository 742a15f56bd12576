//! DescribeClientQuotas (KIP-546): the image's client quotas that match the request's filter
//! (`cluster/client_quotas.rs`, Kafka's `ClientQuotasImage.describe`); an invalid filter
//! fails the whole request with null entries, as Kafka's `getErrorResponse`; so does a
//! principal without DESCRIBE_CONFIGS on the cluster (CLUSTER_AUTHORIZATION_FAILED, no
//! message).

use gregor_protocol::VersionRange;
use gregor_protocol::messages::describe_client_quotas_request::DescribeClientQuotasRequest;
use gregor_protocol::messages::describe_client_quotas_response::{
    DescribeClientQuotasResponse, EntityData, EntryData, ValueData,
};

use super::RequestContext;
use crate::cluster::client_quotas::QuotaFilterComponent;

/// Versions served (Kafka 4.3.1's).
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

/// Describes the quotas the filter selects.
pub fn handle(
    ctx: &RequestContext,
    _version: i16,
    request: DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    if let Some(code) = super::authorize::Checker::new(ctx)
        .cluster_error(crate::authorizer::AclOperation::DescribeConfigs)
    {
        return DescribeClientQuotasResponse {
            error_code: code,
            error_message: None,
            entries: None,
            ..Default::default()
        };
    }
    let components: Vec<QuotaFilterComponent> = request
        .components
        .iter()
        .map(|c| QuotaFilterComponent {
            entity_type: c.entity_type.to_string(),
            match_type: c.match_type,
            matched: c.r#match.as_ref().map(ToString::to_string),
        })
        .collect();
    let image = ctx.broker.image();
    match image.client_quotas().describe(&components, request.strict) {
        Ok(found) => DescribeClientQuotasResponse {
            entries: Some(
                found
                    .into_iter()
                    .map(|(entity, values)| EntryData {
                        entity: entity
                            .iter()
                            .map(|(entity_type, name)| EntityData {
                                entity_type: entity_type.as_str().into(),
                                entity_name: name.as_deref().map(Into::into),
                                ..Default::default()
                            })
                            .collect(),
                        values: values
                            .iter()
                            .map(|(key, value)| ValueData {
                                key: key.as_str().into(),
                                value: *value,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        },
        Err((code, message)) => DescribeClientQuotasResponse {
            error_code: code,
            error_message: Some(message.into()),
            entries: None,
            ..Default::default()
        },
    }
}
