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
use crate::cluster::controller::{
    AlterConfigsResult, ApiError, Applied, Controller, ReplaceConfigsResource, check_no_nulls,
    check_unique_names,
};
use crate::cluster::{ConfigResource, ControllerError};
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
    let keys: Vec<(i8, &str)> = request
        .resources
        .iter()
        .map(|r| (r.resource_type, &*r.resource_name))
        .collect();
    let errors = alter(
        ctx,
        "AlterConfigs",
        &keys,
        request.validate_only,
        |at| {
            let resource = &request.resources[at];
            preprocess(ctx, resource).map(|configs| ReplaceConfigsResource {
                resource_type: resource.resource_type,
                name: resource.resource_name.to_string(),
                configs,
            })
        },
        |controller, forwarded, validate_only| {
            controller.legacy_alter_configs(forwarded, validate_only)
        },
    )
    .await;
    let responses = request
        .resources
        .iter()
        .zip(errors)
        .map(|(resource, error)| {
            let (code, message) = error_code_and_message(error);
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

/// What AlterConfigs and IncrementalAlterConfigs share (Kafka's `ConfigAdminManager.preprocess`
/// then the controller's answer, reassembled in request order): a resource given twice
/// fails every occurrence with `INVALID_REQUEST`; each other resource, identified by its
/// index in `keys` (type and name, in request order), goes through `preprocess`, and those
/// that pass go to the controller in one `apply` call. Once applied, the new metadata is
/// installed and, when a BROKER resource changed, the dynamic broker configs refreshed.
/// Returns one error (`None`: success) per resource, in request order.
pub(super) async fn alter<T, P, A>(
    ctx: &RequestContext,
    api: &str,
    keys: &[(i8, &str)],
    validate_only: bool,
    mut preprocess: P,
    apply: A,
) -> Vec<Option<ApiError>>
where
    T: Send + 'static,
    P: FnMut(usize) -> Result<T, ApiError>,
    A: FnOnce(&Controller, &[T], bool) -> Result<Applied<AlterConfigsResult>, ControllerError>
        + Send
        + 'static,
{
    let mut counts: HashMap<(i8, &str), usize> = HashMap::new();
    for key in keys {
        *counts.entry(*key).or_default() += 1;
    }
    // One outcome per request resource: decided here, or the index of its controller result.
    let mut outcomes: Vec<Result<usize, ApiError>> = Vec::new();
    let mut forwarded: Vec<T> = Vec::new();
    let mut touches_broker = false;
    // KafkaApis.handleAlterConfigsRequest / handleIncrementalAlterConfigsRequest:
    // ALTER_CONFIGS on each resource.
    let checker = super::authorize::Checker::new(ctx);
    for (at, key) in keys.iter().enumerate() {
        let denied = checker.config_resource_error(
            crate::authorizer::AclOperation::AlterConfigs,
            key.0,
            key.1,
        );
        let outcome = if let Some(code) = denied {
            Err(ApiError {
                code,
                message: None,
            })
        } else if counts[key] > 1 {
            Err(ApiError::new(
                error_code::INVALID_REQUEST,
                "Each resource must appear at most once.",
            ))
        } else {
            preprocess(at).map(|item| {
                touches_broker |= key.0 == ConfigResource::BROKER;
                forwarded.push(item);
                forwarded.len() - 1
            })
        };
        if let Err(error) = &outcome {
            tracing::info!(
                "error preprocessing {api} of resource {} {:?}: {:?}",
                key.0,
                key.1,
                error
            );
        }
        outcomes.push(outcome);
    }
    let mut results = Vec::new();
    if !forwarded.is_empty() {
        let broker = ctx.broker.clone();
        let applied = ctx
            .broker
            .controller
            .run(move |controller| {
                let applied = apply(controller, &forwarded, validate_only);
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
    outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Ok(at) => results.get(at).map_or(
                Some(ApiError {
                    code: error_code::UNKNOWN_SERVER_ERROR,
                    message: None,
                }),
                |r| r.error.clone(),
            ),
            Err(error) => Some(error),
        })
        .collect()
}

/// A resource's error as the response's code and message.
pub(super) fn error_code_and_message(error: Option<ApiError>) -> (i16, Option<String>) {
    match error {
        None => (error_code::NONE, None),
        Some(e) => (e.code, e.message),
    }
}

/// Kafka's check that a BROKER (or BROKER_LOGGER) resource names this node: "Node id must
/// be an integer, but it is: x", "Unexpected broker id, expected N, but received M".
pub(super) fn check_node_id(name: &str, node_id: i32) -> Result<(), ApiError> {
    let invalid = |message: String| ApiError::new(error_code::INVALID_REQUEST, message);
    let id: i32 = name
        .parse()
        .map_err(|_| invalid(format!("Node id must be an integer, but it is: {name}")))?;
    if id != node_id {
        return Err(invalid(format!(
            "Unexpected broker id, expected {node_id}, but received {name}"
        )));
    }
    Ok(())
}

/// Kafka's broker-side checks of one resource; its new configs for the controller.
fn preprocess(
    ctx: &RequestContext,
    resource: &AlterConfigsResource,
) -> Result<BTreeMap<String, String>, ApiError> {
    check_unique_names(resource.configs.iter().map(|c| &*c.name))?;
    check_no_nulls(
        resource
            .configs
            .iter()
            .filter(|c| c.value.is_none())
            .map(|c| &*c.name),
    )?;
    let configs: BTreeMap<String, String> = resource
        .configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    let name: &str = &resource.resource_name;
    let broker = &ctx.broker;
    match resource.resource_type {
        ConfigResource::TOPIC | ConfigResource::CLIENT_METRICS | ConfigResource::GROUP => {}
        ConfigResource::BROKER => {
            if !name.is_empty() {
                check_node_id(name, broker.node_id)?;
            }
            dynamic_broker_config::validate(
                &broker.config,
                &broker.image(),
                broker.node_id,
                &configs,
                !name.is_empty(),
            )?;
        }
        other => {
            return Err(ApiError::new(
                error_code::INVALID_REQUEST,
                format!("Unknown resource type {other}"),
            ));
        }
    }
    Ok(configs)
}
