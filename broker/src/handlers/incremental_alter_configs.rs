//! IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT on topic configs through the
//! controller, with what Kafka's broker checks first (`ConfigAdminManager.preprocess`) and
//! its answer in request order (`reassembleIncrementalResponse`):
//!
//! * a resource given twice: `INVALID_REQUEST` "Each resource must appear at most once."
//!   for every occurrence;
//! * a config name given twice in a resource: "Error due to duplicate config keys"; a null
//!   value for anything but DELETE: "Null value not supported for : a, b"; an operation
//!   other than 0-3: "Unknown operations type N";
//! * resource types Kafka does not know: "Unknown resource type N"; BROKER and
//!   BROKER_LOGGER resources must name this node (or, for BROKER, be empty);
//! * then the controller (see [`crate::cluster::Controller::incremental_alter_configs`]):
//!   topic configs are validated as Kafka does (`INVALID_CONFIG`), the topic must exist
//!   (`UNKNOWN_TOPIC_OR_PARTITION`); `validate_only` changes nothing.
//!
//! * BROKER resources (this node's id, or `""` for the cluster-wide default): the
//!   resource's stored configs with the changes applied must pass Kafka's dynamic broker
//!   config checks ([`crate::dynamic_broker_config::validate`], `INVALID_REQUEST`; APPEND
//!   or SUBTRACT on a key that is not a LIST `INVALID_CONFIG`) before they go to the
//!   controller; once written they apply at once ([`crate::broker::Broker::refresh_dynamic_configs`]).
//! * Client-metrics subscriptions (CLIENT_METRICS, 16) are altered by the controller too
//!   (see [`crate::cluster::client_metrics`]).
//!
//! * GROUP resources (Kafka 4's group configs) are checked and written by the controller
//!   ([`crate::cluster::group_configs`]); the coordinator reads them at each use.
//!
//! Logger levels are not supported: such resources get
//! `INVALID_REQUEST` with a message saying so. The new configs of altered topics apply to
//! their partition logs at once (retention, `max.message.bytes`, segment settings, ...).

use gregor_protocol::VersionRange;
use gregor_protocol::messages::incremental_alter_configs_request::IncrementalAlterConfigsRequest;
use gregor_protocol::messages::incremental_alter_configs_response::{
    AlterConfigsResourceResponse, IncrementalAlterConfigsResponse,
};

use super::{RequestContext, alter_configs, broker_configs};
use crate::cluster::ConfigResource;
use crate::cluster::controller::{
    AlterConfigOp, AlterConfigsResource, ApiError, ConfigChange, apply_changes_with,
    check_no_nulls, check_unique_names,
};
use crate::dynamic_broker_config;
use crate::topic_config::ConfigType;
use gregor_protocol::error_code;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

/// Answers an IncrementalAlterConfigs request.
pub async fn handle(
    ctx: &RequestContext,
    _version: i16,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let node_id = ctx.broker.node_id;
    let keys: Vec<(i8, &str)> = request
        .resources
        .iter()
        .map(|r| (r.resource_type, &*r.resource_name))
        .collect();
    let errors = alter_configs::alter(
        ctx,
        "IncrementalAlterConfigs",
        &keys,
        request.validate_only,
        |at| {
            let resource = &request.resources[at];
            preprocess(ctx, resource, node_id).map(|changes| AlterConfigsResource {
                resource_type: resource.resource_type,
                name: resource.resource_name.to_string(),
                changes,
            })
        },
        |controller, forwarded, validate_only| {
            controller.incremental_alter_configs(forwarded, validate_only)
        },
    )
    .await;
    let responses = request
        .resources
        .iter()
        .zip(errors)
        .map(|(resource, error)| {
            let (code, message) = alter_configs::error_code_and_message(error);
            AlterConfigsResourceResponse {
                error_code: code,
                error_message: message.map(Into::into),
                resource_type: resource.resource_type,
                resource_name: resource.resource_name.clone(),
                ..Default::default()
            }
        })
        .collect();
    IncrementalAlterConfigsResponse {
        throttle_time_ms: 0,
        responses,
        ..Default::default()
    }
}

/// Kafka's broker-side checks of one resource; its changes for the controller.
fn preprocess(
    ctx: &RequestContext,
    resource: &gregor_protocol::messages::incremental_alter_configs_request::AlterConfigsResource,
    node_id: i32,
) -> Result<Vec<ConfigChange>, ApiError> {
    let invalid = |message: String| ApiError::new(error_code::INVALID_REQUEST, message);
    check_unique_names(resource.configs.iter().map(|c| &*c.name))?;
    check_no_nulls(
        resource
            .configs
            .iter()
            .filter(|c| c.config_operation != 1 && c.value.is_none())
            .map(|c| &*c.name),
    )?;
    let name: &str = &resource.resource_name;
    match resource.resource_type {
        ConfigResource::TOPIC | ConfigResource::CLIENT_METRICS | ConfigResource::GROUP => {}
        ConfigResource::BROKER if name.is_empty() => {}
        ConfigResource::BROKER | ConfigResource::BROKER_LOGGER => {
            alter_configs::check_node_id(name, node_id)?;
        }
        other => return Err(invalid(format!("Unknown resource type {other}"))),
    }
    let changes = resource
        .configs
        .iter()
        .map(|c| {
            let op = AlterConfigOp::from_i8(c.config_operation).ok_or_else(|| {
                invalid(format!("Unknown operations type {}", c.config_operation))
            })?;
            Ok(ConfigChange {
                name: c.name.to_string(),
                op,
                value: c.value.as_ref().map(|v| v.to_string()),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    if resource.resource_type == ConfigResource::BROKER {
        validate_broker_change(ctx, name, &changes)?;
    }
    Ok(changes)
}

/// Kafka's `validateBrokerConfigChange` for IncrementalAlterConfigs: the resource's stored
/// configs (as the broker reads them) with the changes applied (`prepareIncrementalConfigs`)
/// must be a valid dynamic broker config.
fn validate_broker_change(
    ctx: &RequestContext,
    name: &str,
    changes: &[ConfigChange],
) -> Result<(), ApiError> {
    let broker = &ctx.broker;
    let image = broker.image();
    let per_broker = !name.is_empty();
    let mut props = image
        .config(ConfigResource::BROKER, name)
        .map(|stored| dynamic_broker_config::persistent(stored, per_broker))
        .unwrap_or_default();
    apply_changes_with(
        &mut props,
        changes,
        |op, key| {
            broker_configs::definition(key)
                .filter(|d| d.config_type == ConfigType::List)
                .map(|d| d.default.unwrap_or_default())
                .ok_or_else(|| {
                    let verb = if op == AlterConfigOp::Append {
                        "append"
                    } else {
                        "subtract"
                    };
                    ApiError::new(
                        error_code::INVALID_CONFIG,
                        format!("Config value {verb} is not allowed for config key: {key}"),
                    )
                })
        },
        |op, old, value| {
            let mut items: Vec<&str> = old.split(',').filter(|s| !s.is_empty()).collect();
            if op == AlterConfigOp::Append {
                for item in value.split(',') {
                    if !items.contains(&item) {
                        items.push(item);
                    }
                }
            } else {
                items.retain(|i| !value.split(',').any(|v| v == *i));
            }
            items.join(",")
        },
    )?;
    dynamic_broker_config::validate(&broker.config, &image, broker.node_id, &props, per_broker)
}
