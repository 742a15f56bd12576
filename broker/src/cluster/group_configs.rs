//! IncrementalAlterConfigs on GROUP resources (resource type 32, Kafka 4's group configs),
//! as Kafka's `ConfigurationControlManager` alters them: the group id must not be empty
//! (`INVALID_REQUEST`), the operations apply to the group's current configs (APPEND and
//! SUBTRACT are refused: no group config is a LIST), the result is checked as Kafka's
//! `GroupConfig.validate` ([`crate::group_config::validate`], `INVALID_CONFIG`) against the
//! broker's bounds, and each changed key becomes a `ConfigRecord` of resource type 32.

use gregor_protocol::error_code::{INVALID_CONFIG, INVALID_REQUEST};
use gregor_protocol::metadata_frame::VersionedRecord;

use super::controller::{AlterConfigsResource, ApiError, apply_changes, changed_config_records};
use super::image::{ConfigResource, MetadataImage};
use crate::group_config::{self, Bounds};

/// Checks the changes of one group's configs and builds their records.
pub fn plan_alter(
    image: &MetadataImage,
    resource: &AlterConfigsResource,
    bounds: &Bounds,
) -> Result<Vec<VersionedRecord>, ApiError> {
    let name = resource.name.as_str();
    if name.is_empty() {
        // Kafka's `ControllerConfigurationValidator` for GROUP resources.
        return Err(ApiError::new(INVALID_REQUEST, "Group name can't be empty."));
    }
    let current = image
        .config(ConfigResource::GROUP, name)
        .cloned()
        .unwrap_or_default();
    let mut next = current.clone();
    apply_changes(
        &mut next,
        &resource.changes,
        |_| None,
        |_, old, _| old.to_string(),
    )?;
    group_config::validate(&next, bounds).map_err(|m| ApiError::new(INVALID_CONFIG, m))?;
    Ok(changed_config_records(
        ConfigResource::GROUP,
        name,
        &current,
        &next,
    ))
}
