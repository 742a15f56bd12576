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
    AlterConfigOp, AlterConfigsResource, AlterConfigsResult, ApiError, Applied, ConfigChange,
    Controller, ControllerError, ReconfiguredTopic, TopicDelta, java_split, v0, validate_name,
};
use crate::cluster::{ConfigResource, MetadataImage};
use crate::topic_config;
use gregor_protocol::error_code::*;

/// A resource's planned change: its records, and the topic reconfigured (if a topic's
/// configs change).
pub(super) type Planned = (Vec<VersionedRecord>, Option<ReconfiguredTopic>);

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

/// The `ConfigRecord`s that take a resource's configs from `current` to `next`: one per key
/// whose value changed (a null value for a key `next` no longer has), in key order.
pub(crate) fn changed_config_records(
    resource_type: i8,
    name: &str,
    current: &BTreeMap<String, String>,
    next: &BTreeMap<String, String>,
) -> Vec<VersionedRecord> {
    let keys: BTreeSet<&String> = current.keys().chain(next.keys()).collect();
    keys.into_iter()
        .filter(|k| current.get(*k) != next.get(*k))
        .map(|k| record(resource_type, name, k, next.get(k).map(String::as_str)))
        .collect()
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
        apply_changes(
            &mut next,
            &resource.changes,
            |key| {
                crate::handlers::broker_configs::definition(key)
                    .filter(|d| d.config_type == topic_config::ConfigType::List)
                    .map(|d| d.default.unwrap_or_default())
            },
            merge_list,
        )?;
        check_broker_name(image, name)?;
        Ok(resource
            .changes
            .iter()
            .map(|c| c.name.as_str())
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
        self.alter_resources(
            resources,
            |r| (r.resource_type, r.name.as_str()),
            validate_only,
            |image, resource| match resource.resource_type {
                ConfigResource::TOPIC => self.plan_replace_topic(image, resource),
                ConfigResource::BROKER => check_broker_name(image, &resource.name)
                    .map(|()| (replace_records(image, resource, |_, _| true), None)),
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
            },
        )
    }

    /// What both config-altering operations do around their per-resource plans (Kafka's
    /// `ConfigurationControlManager`): a resource given twice gets one result,
    /// `INVALID_REQUEST` "Duplicate resource."; every other one is planned by `plan` on the
    /// current image, and the records of those that pass are written in one batch (none
    /// when `validate_only`). One result per distinct resource, in request order.
    pub(super) fn alter_resources<R>(
        &self,
        resources: &[R],
        key: fn(&R) -> (i8, &str),
        validate_only: bool,
        plan: impl Fn(&MetadataImage, &R) -> Result<Planned, ApiError>,
    ) -> Result<Applied<AlterConfigsResult>, ControllerError> {
        let mut log = self.lock();
        log.check_active()?;
        let image = self.image();
        let mut counts: HashMap<(i8, &str), usize> = HashMap::new();
        for r in resources {
            *counts.entry(key(r)).or_default() += 1;
        }
        let mut seen = BTreeSet::new();
        let mut results = Vec::new();
        let mut records = Vec::new();
        let mut delta = TopicDelta::default();
        for resource in resources {
            let key = key(resource);
            if !seen.insert(key) {
                continue;
            }
            let outcome = if counts[&key] > 1 {
                Err(ApiError::new(INVALID_REQUEST, "Duplicate resource."))
            } else {
                plan(&image, resource)
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
                resource_type: key.0,
                name: key.1.to_string(),
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
    ) -> Result<Planned, ApiError> {
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

/// Applies IncrementalAlterConfigs `changes` to a resource's `configs` as Kafka's
/// `ConfigurationControlManager.incrementalAlterConfigResource` does: SET and DELETE on any
/// key; APPEND and SUBTRACT only on keys for which `list_default` gives a default (LIST
/// configs; else `INVALID_CONFIG` "Can't APPEND to key K because its type is not LIST."),
/// the current value (or that default) and the operation's value combined by `merge`.
pub(crate) fn apply_changes(
    configs: &mut BTreeMap<String, String>,
    changes: &[ConfigChange],
    list_default: impl Fn(&str) -> Option<&'static str>,
    merge: impl Fn(AlterConfigOp, &str, &str) -> String,
) -> Result<(), ApiError> {
    apply_changes_with(
        configs,
        changes,
        |op, key| {
            list_default(key).ok_or_else(|| {
                ApiError::new(
                    INVALID_CONFIG,
                    format!(
                        "Can't {} to key {key} because its type is not LIST.",
                        op.name()
                    ),
                )
            })
        },
        merge,
    )
}

/// [`apply_changes`] with the error for APPEND or SUBTRACT on a key that is not a LIST
/// chosen by the caller: `list_default` gives the default of a LIST key or that error (the
/// broker's own check, Kafka's `ConfigAdminManager.prepareIncrementalConfigs`, words it
/// differently from the controller's).
pub(crate) fn apply_changes_with(
    configs: &mut BTreeMap<String, String>,
    changes: &[ConfigChange],
    list_default: impl Fn(AlterConfigOp, &str) -> Result<&'static str, ApiError>,
    merge: impl Fn(AlterConfigOp, &str, &str) -> String,
) -> Result<(), ApiError> {
    for change in changes {
        let key = change.name.as_str();
        let value = change.value.as_deref().unwrap_or_default();
        match change.op {
            AlterConfigOp::Set => {
                configs.insert(key.to_string(), value.to_string());
            }
            AlterConfigOp::Delete => {
                configs.remove(key);
            }
            AlterConfigOp::Append | AlterConfigOp::Subtract => {
                let default = list_default(change.op, key)?;
                let old = configs.get(key).map_or(default, String::as_str);
                let merged = merge(change.op, old, value);
                configs.insert(key.to_string(), merged);
            }
        }
    }
    Ok(())
}

/// APPEND or SUBTRACT on a topic or broker LIST config, split as Kafka's `getParts` does
/// (Java's `split(",")`, empty parts of the current value dropped): APPEND adds the items
/// not there yet, SUBTRACT removes each item given.
pub(super) fn merge_list(op: AlterConfigOp, old: &str, value: &str) -> String {
    let mut items: Vec<&str> = java_split(old)
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    for item in java_split(value) {
        if op == AlterConfigOp::Append {
            if !items.contains(&item) {
                items.push(item);
            }
        } else if let Some(at) = items.iter().position(|i| *i == item) {
            items.remove(at);
        }
    }
    items.join(",")
}

/// Kafka's check that no config is given twice in a resource ("Error due to duplicate
/// config keys").
pub(crate) fn check_unique_names<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), ApiError> {
    let mut seen = std::collections::HashSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(ApiError::new(
                INVALID_REQUEST,
                "Error due to duplicate config keys",
            ));
        }
    }
    Ok(())
}

/// Kafka's check that no config that needs a value has a null one ("Null value not
/// supported for : a, b"); `nulls` are the names of those that do not have one.
pub(crate) fn check_no_nulls<'a>(nulls: impl IntoIterator<Item = &'a str>) -> Result<(), ApiError> {
    let nulls: Vec<&str> = nulls.into_iter().collect();
    if nulls.is_empty() {
        return Ok(());
    }
    Err(ApiError::new(
        INVALID_REQUEST,
        format!("Null value not supported for : {}", nulls.join(", ")),
    ))
}
