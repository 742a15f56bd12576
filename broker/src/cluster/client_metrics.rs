//! IncrementalAlterConfigs on `CLIENT_METRICS` resources (KIP-714 subscriptions), as
//! Kafka's `ConfigurationControlManager` alters them: the operations apply to the
//! subscription's current configs (APPEND and SUBTRACT only on the LIST configs `metrics`
//! and `match`, else `INVALID_CONFIG` "Can't APPEND to key K because its type is not
//! LIST."), the result is checked as Kafka's `ClientMetricsConfigs.validate`
//! ([`crate::telemetry::validate`]), and each changed key becomes a `ConfigRecord` of
//! resource type 16. Deleting every config removes the subscription.

use gregor_protocol::MetadataRecord;
use gregor_protocol::error_code::INVALID_CONFIG;
use gregor_protocol::messages::config_record::ConfigRecord;
use gregor_protocol::metadata_frame::VersionedRecord;

use super::controller::{AlterConfigOp, AlterConfigsResource, ApiError, v0};
use super::image::{ConfigResource, MetadataImage};
use crate::telemetry;

/// Checks the changes of one client-metrics subscription and builds their records.
pub fn plan_alter(
    image: &MetadataImage,
    resource: &AlterConfigsResource,
) -> Result<Vec<VersionedRecord>, ApiError> {
    let name = resource.name.as_str();
    let current = image
        .config(ConfigResource::CLIENT_METRICS, name)
        .cloned()
        .unwrap_or_default();
    let mut next = current.clone();
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
                if key != telemetry::METRICS && key != telemetry::MATCH {
                    let op = if change.op == AlterConfigOp::Append {
                        "APPEND"
                    } else {
                        "SUBTRACT"
                    };
                    return Err(ApiError::new(
                        INVALID_CONFIG,
                        format!("Can't {op} to key {key} because its type is not LIST."),
                    ));
                }
                let mut items = next
                    .get(key)
                    .map_or(Vec::new(), |v| telemetry::parse_list(v));
                for item in telemetry::parse_list(value) {
                    if change.op == AlterConfigOp::Append {
                        if !items.contains(&item) {
                            items.push(item);
                        }
                    } else {
                        items.retain(|i| *i != item);
                    }
                }
                next.insert(key.to_string(), items.join(","));
            }
        }
    }
    telemetry::validate(name, &next)?;
    let keys: std::collections::BTreeSet<&String> = current.keys().chain(next.keys()).collect();
    Ok(keys
        .into_iter()
        .filter(|k| current.get(*k) != next.get(*k))
        .map(|k| {
            v0(MetadataRecord::Config(ConfigRecord {
                resource_type: ConfigResource::CLIENT_METRICS,
                resource_name: name.into(),
                name: k.as_str().into(),
                value: next.get(k).map(|v| v.as_str().into()),
                ..Default::default()
            }))
        })
        .collect())
}
