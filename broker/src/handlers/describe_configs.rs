//! DescribeConfigs, as Kafka's `ConfigHelper.describeConfigs`:
//!
//! * TOPIC (2): every topic config with its effective value and source (the topic's
//!   override, a dynamic broker config, `server.properties`, Kafka's default), synonyms
//!   when asked (v1+), the type and documentation (v3+, when asked); an illegal name gets
//!   `INVALID_TOPIC_EXCEPTION` with Kafka's message, a missing topic
//!   `UNKNOWN_TOPIC_OR_PARTITION` (no message).
//! * BROKER (4): this node's id describes the broker configs ([`super::broker_configs`]),
//!   read-only but for those Kafka can change dynamically; an empty name the cluster-wide
//!   dynamic defaults; another id `INVALID_REQUEST` "Unexpected broker id, expected N or
//!   empty string, but received M".
//! * CLIENT_METRICS (16): the subscription's configs from the metadata log.
//! * GROUP (32): the group configs ([`crate::group_config`]) with the group's values or
//!   the broker's defaults; an empty name `INVALID_REQUEST`.
//! * BROKER_LOGGER (8): not supported here, `INVALID_REQUEST` saying so (after Kafka's
//!   own name checks).
//! * Another resource type fails the whole request: every resource gets `INVALID_REQUEST`
//!   with Kafka's default message, as Kafka's `getErrorResponse`.
//!
//! `configuration_keys` null or empty means every config; unknown keys are ignored.
//!
//! v0 (Kafka 3.9, dropped by Kafka 4) has no config source and no synonyms: each entry
//! says instead whether it is the default (`is_default`). Read-only and sensitive are as
//! for v1+, as Kafka's `ConfigHelper` sets them whatever the version. `is_default` is true
//! exactly when the source is Kafka's default (`DEFAULT_CONFIG`), the rule Kafka's broker
//! applied before KAFKA-9432 and that its client still applies when it reads v0 (a false
//! one becomes TOPIC_CONFIG or STATIC_BROKER_CONFIG). Since KAFKA-9432 (the generated
//! DescribeConfigs messages) Kafka's broker, 3.9's included, never sets the field: every
//! v0 entry says false, which tells a client nothing.

use gregor_protocol::VersionRange;
use gregor_protocol::messages::describe_configs_request::{
    DescribeConfigsRequest, DescribeConfigsResource,
};
use gregor_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResponse, DescribeConfigsResult,
    DescribeConfigsSynonym,
};

use super::{RequestContext, broker_configs, default_message};
use crate::cluster::ConfigResource;
use crate::cluster::controller::ApiError;
use crate::topic_config::{ConfigSource, DescribedConfig};
use gregor_protocol::error_code;

/// Versions served: Kafka 3.9's 0-4 (Kafka 4 serves 1-4).
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

/// Answers a DescribeConfigs request.
pub fn handle(
    ctx: &RequestContext,
    version: i16,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let mut response = describe_all(ctx, request);
    if version == 0 {
        mark_defaults(&mut response);
    }
    response
}

/// v0's `is_default`, from each entry's source (which v0 does not carry).
fn mark_defaults(response: &mut DescribeConfigsResponse) {
    for config in response
        .results
        .iter_mut()
        .flat_map(|r| r.configs.iter_mut())
    {
        config.is_default = config.config_source == ConfigSource::DefaultConfig.id();
    }
}

/// The response, with every version's fields (the encoder drops what the version lacks).
fn describe_all(ctx: &RequestContext, request: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let known = [
        ConfigResource::TOPIC,
        ConfigResource::BROKER,
        ConfigResource::BROKER_LOGGER,
        ConfigResource::CLIENT_METRICS,
        ConfigResource::GROUP,
    ];
    if let Some(bad) = request
        .resources
        .iter()
        .find(|r| !known.contains(&r.resource_type))
    {
        tracing::info!(
            "DescribeConfigs with unexpected resource type {} for resource {}",
            bad.resource_type,
            bad.resource_name
        );
        let results = request
            .resources
            .iter()
            .map(|r| DescribeConfigsResult {
                error_code: error_code::INVALID_REQUEST,
                error_message: default_message(error_code::INVALID_REQUEST).map(Into::into),
                resource_type: r.resource_type,
                resource_name: r.resource_name.clone(),
                configs: Vec::new(),
                ..Default::default()
            })
            .collect();
        return DescribeConfigsResponse {
            throttle_time_ms: 0,
            results,
            ..Default::default()
        };
    }
    let synonyms = request.include_synonyms;
    let documentation = request.include_documentation;
    // KafkaApis (ConfigHelper.handleDescribeConfigsRequest): DESCRIBE_CONFIGS on each
    // resource.
    let checker = super::authorize::Checker::new(ctx);
    let results = request
        .resources
        .iter()
        .map(|resource| {
            let answer = match checker.config_resource_error(
                crate::authorizer::AclOperation::DescribeConfigs,
                resource.resource_type,
                &resource.resource_name,
            ) {
                Some(code) => Err(ApiError {
                    code,
                    message: None,
                }),
                None => describe(ctx, resource, synonyms, documentation),
            };
            let mut result = match answer {
                Ok(configs) => DescribeConfigsResult {
                    error_code: error_code::NONE,
                    configs,
                    ..Default::default()
                },
                Err(error) => DescribeConfigsResult {
                    error_code: error.code,
                    // Kafka's `messageWithFallback`.
                    error_message: error
                        .message
                        .as_deref()
                        .or(default_message(error.code))
                        .map(Into::into),
                    configs: Vec::new(),
                    ..Default::default()
                },
            };
            result.resource_type = resource.resource_type;
            result.resource_name = resource.resource_name.clone();
            result
        })
        .collect();
    DescribeConfigsResponse {
        throttle_time_ms: 0,
        results,
        ..Default::default()
    }
}

/// The configs of one resource.
fn describe(
    ctx: &RequestContext,
    resource: &DescribeConfigsResource,
    synonyms: bool,
    documentation: bool,
) -> Result<Vec<DescribeConfigsResourceResult>, ApiError> {
    let name: &str = &resource.resource_name;
    let keys: Option<Vec<String>> = resource
        .configuration_keys
        .as_ref()
        .filter(|keys| !keys.is_empty())
        .map(|keys| keys.iter().map(|k| k.to_string()).collect());
    let invalid = |message: String| ApiError::new(error_code::INVALID_REQUEST, message);
    let broker = &ctx.broker;
    match resource.resource_type {
        ConfigResource::TOPIC => {
            let described = broker.controller.describe_topic_configs(
                name,
                keys.as_deref(),
                synonyms,
                documentation,
            );
            match described {
                Ok(configs) => Ok(configs.into_iter().map(topic_entry).collect()),
                // Kafka sets only the code: the message stays the schema's default, "".
                Err(error) if error.code == error_code::UNKNOWN_TOPIC_OR_PARTITION => {
                    Err(ApiError::new(error.code, ""))
                }
                Err(error) => Err(error),
            }
        }
        ConfigResource::BROKER => {
            let per_broker = !name.is_empty();
            if per_broker {
                let id: i32 = name.parse().map_err(|_| {
                    invalid(format!("Broker id must be an integer, but it is: {name}"))
                })?;
                if id != broker.node_id {
                    return Err(invalid(format!(
                        "Unexpected broker id, expected {} or empty string, but received {name}",
                        broker.node_id
                    )));
                }
            }
            let image = broker.image();
            Ok(broker_configs::describe(
                &broker.config,
                &image,
                broker.node_id,
                per_broker,
                keys.as_deref(),
                synonyms,
                documentation,
            )
            .into_iter()
            .map(|c| DescribeConfigsResourceResult {
                name: c.name.into(),
                value: c.value.map(Into::into),
                read_only: c.read_only,
                config_source: c.source.id(),
                is_sensitive: c.is_sensitive,
                synonyms: c
                    .synonyms
                    .into_iter()
                    .map(|(name, value, source)| synonym(&name, value, source))
                    .collect(),
                config_type: c.config_type.map_or(0, |t| t.id()),
                documentation: c.documentation.map(Into::into),
                ..Default::default()
            })
            .collect())
        }
        ConfigResource::BROKER_LOGGER => {
            if name.is_empty() {
                return Err(invalid("Broker id must not be empty".into()));
            }
            let id: i32 = name
                .parse()
                .map_err(|_| invalid(format!("Broker id must be an integer, but it is: {name}")))?;
            if id != broker.node_id {
                return Err(invalid(format!(
                    "Unexpected broker id, expected {} but received {name}",
                    broker.node_id
                )));
            }
            Err(invalid(
                "Describing broker loggers is not supported by this broker.".into(),
            ))
        }
        ConfigResource::CLIENT_METRICS => {
            if name.is_empty() {
                return Err(invalid(
                    "Client metrics subscription name must not be empty".into(),
                ));
            }
            let image = broker.image();
            let configs = image
                .config(ConfigResource::CLIENT_METRICS, name)
                .cloned()
                .unwrap_or_default();
            Ok(configs
                .into_iter()
                .filter(|(key, _)| keys.as_ref().is_none_or(|keys| keys.contains(key)))
                .map(|(key, value)| DescribeConfigsResourceResult {
                    name: key.into(),
                    value: Some(value.into()),
                    read_only: false,
                    config_source: ConfigSource::ClientMetricsConfig.id(),
                    is_sensitive: false,
                    synonyms: Vec::new(),
                    documentation: None,
                    ..Default::default()
                })
                .collect())
        }
        _ => {
            if name.is_empty() {
                return Err(invalid("Group name must not be empty".into()));
            }
            Ok(group_entries(
                ctx,
                name,
                keys.as_deref(),
                synonyms,
                documentation,
            ))
        }
    }
}

/// Kafka's `createGroupConfigEntry` for every group config: the group's value (source
/// GROUP_CONFIG) or the broker's default (DEFAULT_CONFIG), one synonym of that source when
/// asked, type INT, never read-only. Any group id is described, known or not.
fn group_entries(
    ctx: &RequestContext,
    name: &str,
    keys: Option<&[String]>,
    synonyms: bool,
    documentation: bool,
) -> Vec<DescribeConfigsResourceResult> {
    use crate::group_config;
    let bounds = group_config::Bounds::from_config(&ctx.broker.config);
    let image = ctx.broker.image();
    let stored = image.config(ConfigResource::GROUP, name);
    group_config::NAMES
        .iter()
        .filter(|key| keys.is_none_or(|keys| keys.iter().any(|k| k == *key)))
        .map(|key| {
            let (value, source) = match stored.and_then(|c| c.get(*key)) {
                Some(v) => (v.clone(), ConfigSource::GroupConfig),
                None => (
                    bounds.default_of(key).unwrap_or_default().to_string(),
                    ConfigSource::DefaultConfig,
                ),
            };
            DescribeConfigsResourceResult {
                name: (*key).into(),
                value: Some(value.as_str().into()),
                read_only: false,
                config_source: source.id(),
                is_sensitive: false,
                synonyms: if synonyms {
                    vec![synonym(key, Some(value.clone()), source)]
                } else {
                    Vec::new()
                },
                config_type: crate::topic_config::ConfigType::Int.id(),
                documentation: documentation
                    .then(|| group_config::documentation(key))
                    .flatten()
                    .map(Into::into),
                ..Default::default()
            }
        })
        .collect()
}

fn topic_entry(config: DescribedConfig) -> DescribeConfigsResourceResult {
    DescribeConfigsResourceResult {
        name: config.name.into(),
        value: config.value.map(Into::into),
        read_only: config.read_only,
        config_source: config.source.id(),
        is_sensitive: config.is_sensitive,
        synonyms: config
            .synonyms
            .into_iter()
            .map(|s| synonym(&s.name, s.value, s.source))
            .collect(),
        config_type: config.config_type.id(),
        documentation: config.documentation.map(Into::into),
        ..Default::default()
    }
}

fn synonym(name: &str, value: Option<String>, source: ConfigSource) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym {
        name: name.into(),
        value: value.map(Into::into),
        source: source.id(),
        ..Default::default()
    }
}
