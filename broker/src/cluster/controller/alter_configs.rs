//! The controller's side of config changes beyond topic IncrementalAlterConfigs (Kafka's
//! `ConfigurationControlManager`): the legacy AlterConfigs, which replaces a resource's
//! whole set of dynamic configs, and changes to BROKER resources (this node's id, or `""`
//! for the cluster-wide defaults).
//!
//! The forwarding broker has already checked broker configs (Kafka's
//! `ConfigAdminManager.preprocess`; here [`crate::dynamic_broker_config`]); the controller
//! only checks the resource name and that the broker is registered
//! (`ControllerConfigurationValidator`, `ConfigResourceExistenceChecker`). A BROKER
//! resource gets a `ConfigRecord` for every key given even when its value is unchanged
//! (KAFKA-14136: the record is what makes brokers reload).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use gregor_protocol::MetadataRecord;
use gregor_protocol::messages::config_record::ConfigRecord;
use gregor_protocol::metadata_frame::VersionedRecord;

use super::{
    AlterConfigOp, AlterConfigsResource, AlterConfigsResult, ApiError, Applied, Controller,
    ControllerError, ReconfiguredTopic, TopicDelta, java_split, v0, validate_name,
};
use crate::cluster::{ConfigResource, MetadataImage};
use crate::topic_config;
use gregor_protocol::error_code::*;

/// One resource of a legacy AlterConfigs: every dynamic config it keeps afterwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplaceConfigsResource {
    /// The resource type.
    pub resource_type: i8,
    /// The resource name (a topic; a broker id or `""`).
    pub name: String,
    /// The configs: keys of the resource not named here are removed.
    pub configs: BTreeMap<String, String>,
}

fn record(resource_type: i8, name: &str, key: &str, value: Option<&str>) -> VersionedRecord {
    v0(MetadataRecord::Config(ConfigRecord {
        resource_type,
        resource_name: name.into(),
        name: key.into(),
        value: value.map(Into::into),
        ..Default::default()
    }))
}

/// `ControllerConfigurationValidator.validateBrokerName`, then the existence check: a
/// non-empty name must be a registered broker.
fn check_broker_name(image: &MetadataImage, name: &str) -> Result<(), ApiError> {
    if name.is_empty() {
        return Ok(());
    }
    let id: i32 = name.parse().map_err(|_| {
        ApiError::new(
            INVALID_REQUEST,
            "Unable to parse broker name as a base 10 number.",
        )
    })?;
    if id < 0 {
        return Err(ApiError::new(
            INVALID_REQUEST,
            "Invalid negative broker ID.",
        ));
    }
    if image.broker(id).is_none() && !image.controllers().contains_key(&id) {
        return Err(ApiError::new(
            BROKER_ID_NOT_REGISTERED,
            format!("No node with id {id} found."),
        ));
    }
    Ok(())
}

impl Controller {
    /// The records of IncrementalAlterConfigs changes to a BROKER resource: the changes
    /// applied to its current dynamic configs (APPEND and SUBTRACT on LIST configs only),
    /// one record per key named.
    pub(super) fn plan_alter_broker(
        &self,
        image: &MetadataImage,
        resource: &AlterConfigsResource,
    ) -> Result<Vec<VersionedRecord>, ApiError> {
        let name = resource.name.as_str();
        let mut next = image
            .config(ConfigResource::BROKER, name)
            .cloned()
            .unwrap_or_default();
        let mut keys = Vec::new();
        for change in &resource.changes {
            let key = change.name.as_str();
            let value = change.value.as_deref().unwrap_or_default();
            match change.op {
                AlterConfigOp::Set => {
                    next.insert(key.to_string(), value.to_string());
                }
                AlterConfigOp::Delete => {
                    next.remove(key);
                }
                AlterConfigOp::Append | AlterConfigOp::Subtract => {
                    let def = crate::handlers::broker_configs::definition(key)
                        .filter(|d| d.config_type == topic_config::ConfigType::List)
                        .ok_or_else(|| {
                            ApiError::new(
                                INVALID_CONFIG,
                                format!(
                                    "Can't {} to key {key} because its type is not LIST.",
                                    change.op.name()
                                ),
                            )
                        })?;
                    let old = next
                        .get(key)
                        .map(String::as_str)
                        .or(def.default)
                        .unwrap_or_default();
                    let mut items: Vec<String> = java_split(old)
                        .into_iter()
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect();
                    for item in java_split(value) {
                        if change.op == AlterConfigOp::Append {
                            if !items.iter().any(|i| i == item) {
                                items.push(item.to_string());
                            }
                        } else if let Some(at) = items.iter().position(|i| i == item) {
                            items.remove(at);
                        }
                    }
                    next.insert(key.to_string(), items.join(","));
                }
            }
            keys.push(key);
        }
        check_broker_name(image, name)?;
        Ok(keys
            .into_iter()
            .map(|k| {
                record(
                    ConfigResource::BROKER,
                    name,
                    k,
                    next.get(k).map(String::as_str),
                )
            })
            .collect())
    }

    /// Kafka's `legacyAlterConfigs`: each resource's dynamic configs become exactly the
    /// ones given. TOPIC resources are validated as a whole ([`topic_config::validate`],
    /// `INVALID_CONFIG`), then the topic must exist; BROKER resources must name a
    /// registered broker or be `""`. Records for the keys set (changed ones for topics,
    /// all for brokers) and a null-valued record for every key removed, all resources in
    /// one batch. Other known types get `INVALID_REQUEST` (not supported here), unknown
    /// ones `UNSUPPORTED_VERSION`.
    pub fn legacy_alter_configs(
        &self,
        resources: &[ReplaceConfigsResource],
        validate_only: bool,
    ) -> Result<Applied<AlterConfigsResult>, ControllerError> {
        let mut log = self.lock();
        let image = self.image.load_full();
        let mut counts: HashMap<(i8, &str), usize> = HashMap::new();
        for r in resources {
            *counts
                .entry((r.resource_type, r.name.as_str()))
                .or_default() += 1;
        }
        let mut seen = BTreeSet::new();
        let mut results = Vec::new();
        let mut records = Vec::new();
        let mut delta = TopicDelta::default();
        for resource in resources {
            let key = (resource.resource_type, resource.name.as_str());
            if !seen.insert(key) {
                continue;
            }
            let outcome = if counts[&key] > 1 {
                Err(ApiError::new(INVALID_REQUEST, "Duplicate resource."))
            } else {
                match resource.resource_type {
                    ConfigResource::TOPIC => self.plan_replace_topic(&image, resource),
                    ConfigResource::BROKER => check_broker_name(&image, &resource.name)
                        .map(|()| (replace_records(&image, resource, |_, _| true), None)),
                    ConfigResource::BROKER_LOGGER
                    | ConfigResource::CLIENT_METRICS
                    | ConfigResource::GROUP => Err(ApiError::new(
                        INVALID_REQUEST,
                        format!(
                            "Altering configs of resource type {} is not supported by this broker.",
                            resource.resource_type
                        ),
                    )),
                    other => Err(ApiError::new(
                        UNSUPPORTED_VERSION,
                        format!("Unknown resource type {other}."),
                    )),
                }
            };
            let error = match outcome {
                Ok((mut new_records, changed)) => {
                    records.append(&mut new_records);
                    delta.reconfigured.extend(changed);
                    None
                }
                Err(error) => Some(error),
            };
            results.push(AlterConfigsResult {
                resource_type: resource.resource_type,
                name: resource.name.clone(),
                error,
            });
        }
        if validate_only {
            return Ok(Applied {
                results,
                delta: TopicDelta::default(),
                offsets: None,
            });
        }
        let offsets = self.commit(&mut log, records)?;
        Ok(Applied {
            results,
            delta,
            offsets,
        })
    }

    /// Checks the new configs of one topic and builds their records.
    fn plan_replace_topic(
        &self,
        image: &MetadataImage,
        resource: &ReplaceConfigsResource,
    ) -> Result<(Vec<VersionedRecord>, Option<ReconfiguredTopic>), ApiError> {
        let name = resource.name.as_str();
        if name.is_empty() {
            return Err(ApiError::new(
                INVALID_REQUEST,
                "Default topic resources are not allowed.",
            ));
        }
        validate_name(name)?;
        topic_config::validate(&resource.configs, &self.broker_configs(image))
            .map_err(|e| ApiError::new(INVALID_CONFIG, e.message))?;
        let Some(topic) = image.topic(name) else {
            return Err(ApiError::new(
                UNKNOWN_TOPIC_OR_PARTITION,
                format!("The topic '{name}' does not exist."),
            ));
        };
        let records = replace_records(image, resource, |old, new| old != Some(new));
        let changed = (!records.is_empty()).then(|| ReconfiguredTopic {
            name: name.to_string(),
            id: topic.id,
            config: resource.configs.clone(),
        });
        Ok((records, changed))
    }
}

/// The records replacing `resource`'s configs: one per key given for which `write(old,
/// new)` holds, then a deletion per current key not given.
fn replace_records(
    image: &MetadataImage,
    resource: &ReplaceConfigsResource,
    write: impl Fn(Option<&str>, &str) -> bool,
) -> Vec<VersionedRecord> {
    let empty = BTreeMap::new();
    let current = image
        .config(resource.resource_type, &resource.name)
        .unwrap_or(&empty);
    let set = resource
        .configs
        .iter()
        .filter(|(k, v)| write(current.get(*k).map(String::as_str), v))
        .map(|(k, v)| record(resource.resource_type, &resource.name, k, Some(v)));
    let removed = current
        .keys()
        .filter(|k| !resource.configs.contains_key(*k))
        .map(|k| record(resource.resource_type, &resource.name, k, None));
    set.chain(removed).collect()
}
