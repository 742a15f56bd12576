//! IncrementalAlterConfigs on `CLIENT_METRICS` resources (KIP-714 subscriptions), as
//! Kafka's `ConfigurationControlManager` alters them: the operations apply to the
//! subscription's current configs (APPEND and SUBTRACT only on the LIST configs `metrics`
//! and `match`, else `INVALID_CONFIG` "Can't APPEND to key K because its type is not
//! LIST."), the result is checked as Kafka's `ClientMetricsConfigs.validate`
//! ([`crate::telemetry::validate`]), and each changed key becomes a `ConfigRecord` of
//! resource type 16. Deleting every config removes the subscription.

use gregor_protocol::metadata_frame::VersionedRecord;

use super::controller::{
    AlterConfigOp, AlterConfigsResource, ApiError, apply_changes, changed_config_records,
};
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
    apply_changes(
        &mut next,
        &resource.changes,
        |key| (key == telemetry::METRICS || key == telemetry::MATCH).then_some(""),
        |op, old, value| {
            let mut items = telemetry::parse_list(old);
            for item in telemetry::parse_list(value) {
                if op == AlterConfigOp::Append {
                    if !items.contains(&item) {
                        items.push(item);
                    }
                } else {
                    items.retain(|i| *i != item);
                }
            }
            items.join(",")
        },
    )?;
    telemetry::validate(name, &next)?;
    Ok(changed_config_records(
        ConfigResource::CLIENT_METRICS,
        name,
        &current,
        &next,
    ))
}
