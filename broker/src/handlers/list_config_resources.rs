//! ListConfigResources (KIP-1142; version 0 is KIP-714's ListClientMetricsResources): the
//! resources with configs, as Kafka's `KafkaApis.handleListConfigResources` answers.
//!
//! Version 0 lists client metrics resources only. Version 1 takes resource types (empty:
//! every supported one: topic 2, broker 4, broker logger 8, client metrics 16, group 32); a
//! type outside those fails the request with `UNSUPPORTED_VERSION`. Topics are every topic
//! of the metadata, brokers and broker loggers every registered broker (by id), groups and
//! client metrics those with dynamic configs in the metadata. Without DESCRIBE_CONFIGS on
//! the cluster the request fails with CLUSTER_AUTHORIZATION_FAILED and nothing listed.

use gregor_protocol::VersionRange;
use gregor_protocol::error_code;
use gregor_protocol::messages::list_config_resources_request::ListConfigResourcesRequest;
use gregor_protocol::messages::list_config_resources_response::{
    ConfigResource, ListConfigResourcesResponse,
};

use super::RequestContext;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
const CLIENT_METRICS: i8 = 16;
const GROUP: i8 = 32;

/// Answers a ListConfigResources request.
pub fn handle(
    ctx: &RequestContext,
    version: i16,
    request: ListConfigResourcesRequest,
) -> ListConfigResourcesResponse {
    if let Some(code) = super::authorize::Checker::new(ctx)
        .cluster_error(crate::authorizer::AclOperation::DescribeConfigs)
    {
        return ListConfigResourcesResponse {
            error_code: code,
            ..Default::default()
        };
    }
    let supported: &[i8] = if version == 0 {
        &[CLIENT_METRICS]
    } else {
        &[TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP]
    };
    let types = if request.resource_types.is_empty() {
        supported.to_vec()
    } else {
        request.resource_types
    };
    if types.iter().any(|t| !supported.contains(t)) {
        return ListConfigResourcesResponse {
            error_code: error_code::UNSUPPORTED_VERSION,
            ..Default::default()
        };
    }
    let image = ctx.broker.image();
    let mut found = Vec::new();
    let mut add = |name: String, resource_type: i8| {
        found.push(ConfigResource {
            resource_name: name.into(),
            resource_type,
            ..Default::default()
        });
    };
    let with_configs = |resource_type: i8| -> Vec<String> {
        image
            .configs()
            .iter()
            .filter(|(resource, configs)| {
                resource.resource_type == resource_type && !configs.is_empty()
            })
            .map(|(resource, _)| resource.name.clone())
            .collect()
    };
    // Kafka's order: groups, client metrics, broker loggers, brokers, topics.
    if types.contains(&GROUP) {
        with_configs(GROUP).into_iter().for_each(|n| add(n, GROUP));
    }
    if types.contains(&CLIENT_METRICS) {
        with_configs(CLIENT_METRICS)
            .into_iter()
            .for_each(|n| add(n, CLIENT_METRICS));
    }
    for resource_type in [BROKER_LOGGER, BROKER] {
        if types.contains(&resource_type) {
            for id in image.brokers().keys() {
                add(id.to_string(), resource_type);
            }
        }
    }
    if types.contains(&TOPIC) {
        for topic in image.topics() {
            add(topic.name.clone(), TOPIC);
        }
    }
    ListConfigResourcesResponse {
        error_code: error_code::NONE,
        config_resources: found,
        ..Default::default()
    }
}
