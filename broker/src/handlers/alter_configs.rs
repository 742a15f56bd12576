//! AlterConfigs (API 33), the legacy form of config changes that librdkafka's and
//! kafka-python's `alter_configs` still send: each resource's whole set of dynamic configs
//! is replaced by the one given, every key not named is removed (Kafka's
//! `ConfigurationControlManager.legacyAlterConfigs`). What Kafka's broker checks first
//! (`ConfigAdminManager.preprocess` for `AlterConfigsRequestData`), in request order:
//!
//! * a resource given twice: `INVALID_REQUEST` "Each resource must appear at most once."
//!   for every occurrence;
//! * a config named twice: "Error due to duplicate config keys"; a null value: "Null value
//!   not supported for : a, b";
//! * BROKER must name this node or be `""` ("Node id must be an integer, but it is: x",
//!   "Unexpected broker id, expected N, but received M"), and its new configs pass the
//!   dynamic broker config checks ([`crate::dynamic_broker_config::validate`]);
//! * BROKER_LOGGER and unknown types: "Unknown resource type N" (the legacy API cannot
//!   change logger levels);
//! * then the controller ([`crate::cluster::Controller::legacy_alter_configs`]): topic
//!   configs validated as a whole (`INVALID_CONFIG`), the topic must exist
//!   (`UNKNOWN_TOPIC_OR_PARTITION`); `validate_only` changes nothing.
//!
//! Changed topic configs apply to their partition logs at once, changed broker configs to
//! every log without its own override ([`crate::broker::Broker::refresh_dynamic_configs`]).

use std::collections::{BTreeMap, HashMap};

use gregor_protocol::VersionRange;
use gregor_protocol::messages::alter_configs_request::{AlterConfigsRequest, AlterConfigsResource};
use gregor_protocol::messages::alter_configs_response::{
    AlterConfigsResourceResponse, AlterConfigsResponse,
};

use super::{RequestContext, controller_failure};
use crate::cluster::ConfigResource;
use crate::cluster::controller::{ApiError, ReplaceConfigsResource};
use crate::dynamic_broker_config;
use gregor_protocol::error_code;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

/// Answers an AlterConfigs request.
pub async fn handle(
    ctx: &RequestContext,
    _version: i16,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let mut counts: HashMap<(i8, &str), usize> = HashMap::new();
    for r in &request.resources {
        *counts
            .entry((r.resource_type, &*r.resource_name))
            .or_default() += 1;
    }
    // One outcome per request resource: decided here, or the index of its controller result.
    let mut outcomes: Vec<Result<usize, ApiError>> = Vec::new();
    let mut forwarded: Vec<ReplaceConfigsResource> = Vec::new();
    for resource in &request.resources {
        let outcome = if counts[&(resource.resource_type, &*resource.resource_name)] > 1 {
            Err(ApiError::new(
                error_code::INVALID_REQUEST,
                "Each resource must appear at most once.",
            ))
        } else {
            preprocess(ctx, resource).map(|configs| {
                forwarded.push(ReplaceConfigsResource {
                    resource_type: resource.resource_type,
                    name: resource.resource_name.to_string(),
                    configs,
                });
                forwarded.len() - 1
            })
        };
        if let Err(error) = &outcome {
            tracing::info!(
                "error preprocessing AlterConfigs of resource {} {:?}: {:?}",
                resource.resource_type,
                &*resource.resource_name,
                error
            );
        }
        outcomes.push(outcome);
    }
    let mut results = Vec::new();
    if !forwarded.is_empty() {
        let validate_only = request.validate_only;
        let touches_broker = forwarded
            .iter()
            .any(|r| r.resource_type == ConfigResource::BROKER);
        let broker = ctx.broker.clone();
        let applied = ctx
            .broker
            .controller
            .run(move |controller| {
                let applied = controller.legacy_alter_configs(&forwarded, validate_only);
                if let Ok(applied) = &applied {
                    broker.apply_delta(&applied.delta);
                    if touches_broker && !validate_only {
                        broker.refresh_dynamic_configs();
                    }
                }
                applied
            })
            .await;
        match applied {
            Ok(applied) => results = applied.results,
            Err(err) => {
                let error = controller_failure(&err);
                for outcome in outcomes.iter_mut().filter(|o| o.is_ok()) {
                    *outcome = Err(error.clone());
                }
            }
        }
    }
    let responses = request
        .resources
        .iter()
        .zip(outcomes)
        .map(|(resource, outcome)| {
            let error = match outcome {
                Ok(at) => results.get(at).map_or(
                    Some(ApiError {
                        code: error_code::UNKNOWN_SERVER_ERROR,
                        message: None,
                    }),
                    |r| r.error.clone(),
                ),
                Err(error) => Some(error),
            };
            let (code, message) = match error {
                None => (error_code::NONE, None),
                Some(e) => (e.code, e.message),
            };
            AlterConfigsResourceResponse {
                error_code: code,
                error_message: message.map(Into::into),
                resource_type: resource.resource_type,
                resource_name: resource.resource_name.clone(),
                ..Default::default()
            }
        })
        .collect();
    AlterConfigsResponse {
        throttle_time_ms: 0,
        responses,
        ..Default::default()
    }
}

/// Kafka's broker-side checks of one resource; its new configs for the controller.
fn preprocess(
    ctx: &RequestContext,
    resource: &AlterConfigsResource,
) -> Result<BTreeMap<String, String>, ApiError> {
    let invalid = |message: String| ApiError::new(error_code::INVALID_REQUEST, message);
    let mut configs = BTreeMap::new();
    for config in &resource.configs {
        if configs.contains_key(&*config.name) {
            return Err(invalid("Error due to duplicate config keys".into()));
        }
        configs.insert(
            config.name.to_string(),
            config.value.as_ref().map(|v| v.to_string()),
        );
    }
    let nulls: Vec<&str> = resource
        .configs
        .iter()
        .filter(|c| c.value.is_none())
        .map(|c| &*c.name)
        .collect();
    if !nulls.is_empty() {
        return Err(invalid(format!(
            "Null value not supported for : {}",
            nulls.join(", ")
        )));
    }
    let configs: BTreeMap<String, String> = configs
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect();
    let name: &str = &resource.resource_name;
    let broker = &ctx.broker;
    match resource.resource_type {
        ConfigResource::TOPIC | ConfigResource::CLIENT_METRICS | ConfigResource::GROUP => {}
        ConfigResource::BROKER => {
            if !name.is_empty() {
                let id: i32 = name.parse().map_err(|_| {
                    invalid(format!("Node id must be an integer, but it is: {name}"))
                })?;
                if id != broker.node_id {
                    return Err(invalid(format!(
                        "Unexpected broker id, expected {}, but received {name}",
                        broker.node_id
                    )));
                }
            }
            dynamic_broker_config::validate(
                &broker.config,
                &broker.image(),
                broker.node_id,
                &configs,
                !name.is_empty(),
            )?;
        }
        other => return Err(invalid(format!("Unknown resource type {other}"))),
    }
    Ok(configs)
}
