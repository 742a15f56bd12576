//! UpdateFeatures: finalized feature levels through the controller (see
//! [`crate::cluster::features`] for the checks). As Kafka's `QuorumController`
//! answers: a failure fails every update, reported at the top level as "The update failed
//! for all features since the following feature had an error: ..." with no per-feature
//! results; on success v0 and v1 list every feature of the request with error 0 (v2 lists
//! none). In v0 `AllowDowngrade` asks for a safe downgrade (`UpdateFeaturesRequest`'s
//! reading of v0), from v1 `UpgradeType` says which change is allowed. Without ALTER on
//! the cluster (Kafka's `ControllerApis.handleUpdateFeatures`) the top-level error is
//! CLUSTER_AUTHORIZATION_FAILED with no results.

use gregor_protocol::VersionRange;
use gregor_protocol::error_code;
use gregor_protocol::messages::update_features_request::UpdateFeaturesRequest;
use gregor_protocol::messages::update_features_response::{
    UpdatableFeatureResult, UpdateFeaturesResponse,
};

use super::{RequestContext, controller_failure};
use crate::cluster::features::{FeatureUpdate, UpgradeType};

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

/// Answers an UpdateFeatures request.
pub async fn handle(
    ctx: &RequestContext,
    version: i16,
    request: UpdateFeaturesRequest,
) -> UpdateFeaturesResponse {
    if let Some(code) =
        super::authorize::Checker::new(ctx).cluster_error(crate::authorizer::AclOperation::Alter)
    {
        return UpdateFeaturesResponse {
            error_code: code,
            error_message: None,
            results: Vec::new(),
            ..Default::default()
        };
    }
    let updates: Vec<FeatureUpdate> = request
        .feature_updates
        .iter()
        .map(|u| FeatureUpdate {
            feature: u.feature.to_string(),
            level: u.max_version_level,
            upgrade_type: if version == 0 {
                if u.allow_downgrade {
                    UpgradeType::SafeDowngrade
                } else {
                    UpgradeType::Upgrade
                }
            } else {
                UpgradeType::from_code(u.upgrade_type)
            },
        })
        .collect();
    let validate_only = request.validate_only;
    let outcome = ctx
        .broker
        .controller
        .run(move |controller| controller.update_features(&updates, validate_only))
        .await;
    let error = match outcome {
        Ok(Ok(offsets)) => {
            if let Some((_, last)) = offsets {
                tracing::info!(offset = last, "finalized feature levels changed");
            }
            None
        }
        Ok(Err(error)) => Some(error),
        Err(err) => Some(controller_failure(&err)),
    };
    match error {
        Some(error) => UpdateFeaturesResponse {
            throttle_time_ms: 0,
            error_code: error.code,
            error_message: Some(
                format!(
                    "The update failed for all features since the following feature had an \
                     error: {}",
                    error.message.unwrap_or_default()
                )
                .into(),
            ),
            results: Vec::new(),
            ..Default::default()
        },
        None => {
            let mut results: Vec<UpdatableFeatureResult> = Vec::new();
            if version <= 1 {
                for u in &request.feature_updates {
                    if results.iter().all(|r| r.feature != u.feature) {
                        results.push(UpdatableFeatureResult {
                            feature: u.feature.clone(),
                            error_code: error_code::NONE,
                            error_message: None,
                            ..Default::default()
                        });
                    }
                }
            }
            UpdateFeaturesResponse {
                throttle_time_ms: 0,
                error_code: error_code::NONE,
                error_message: None,
                results,
                ..Default::default()
            }
        }
    }
}
