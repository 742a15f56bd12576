//! ApiVersions: the APIs and versions this broker serves (derived from the handlers), the
//! features this node supports and those finalized in the metadata log (with the offset of
//! the image as their epoch).

use gregor_protocol::messages::api_versions_request::ApiVersionsRequest;
use gregor_protocol::messages::api_versions_response::{
    ApiVersion, ApiVersionsResponse, FinalizedFeatureKey, SupportedFeatureKey,
};
use gregor_protocol::{ApiKey, VersionRange};

use super::{HANDLED, RequestContext, served_versions};
use crate::cluster::controller::supported_features;
use gregor_protocol::error_code;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

/// Answers with every handled API and the finalized features.
pub fn handle(
    ctx: &RequestContext,
    version: i16,
    request: ApiVersionsRequest,
) -> ApiVersionsResponse {
    // From v3 the client names itself; Kafka refuses names outside its pattern.
    if version >= 3
        && !(valid_software_field(&request.client_software_name)
            && valid_software_field(&request.client_software_version))
    {
        return ApiVersionsResponse {
            error_code: error_code::INVALID_REQUEST,
            ..Default::default()
        };
    }
    if version >= 3 {
        // Kafka keeps a valid request's client software for the connection (telemetry
        // `match`, logs).
        *ctx.client_software
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = super::ClientSoftware {
            name: request.client_software_name.to_string(),
            version: request.client_software_version.to_string(),
        };
    }
    let image = ctx.broker.image();
    let finalized: Vec<FinalizedFeatureKey> = image
        .features()
        .map(|(name, level)| FinalizedFeatureKey {
            name: name.into(),
            max_version_level: level,
            min_version_level: level,
            ..Default::default()
        })
        .collect();
    // The features this node supports, as registered. Before v4, features whose minimum
    // is 0 are left out, as Kafka does (KAFKA-17492: older clients fail on them).
    let supported: Vec<SupportedFeatureKey> = supported_features()
        .into_iter()
        .filter(|(_, range)| version >= 4 || range.min != 0)
        .map(|(name, range)| SupportedFeatureKey {
            name: name.into(),
            min_version: range.min,
            max_version: range.max,
            ..Default::default()
        })
        .collect();
    ApiVersionsResponse {
        error_code: error_code::NONE,
        api_keys: if ctx.on_controller_listener() {
            controller_api_keys(
                ctx.broker.config.legacy_api_versions_enable,
                ctx.broker.config.is_cluster(),
            )
        } else {
            api_keys(ctx.broker.config.legacy_api_versions_enable)
        },
        throttle_time_ms: 0,
        supported_features: supported,
        finalized_features_epoch: image.last_offset(),
        finalized_features: finalized,
        zk_migration_ready: false,
        ..Default::default()
    }
}

/// The v0-shaped answer to an ApiVersions version this broker does not serve (KIP-511):
/// the error and, as Kafka does, only the ApiVersions range, so the client can retry at a
/// version both sides know.
pub fn unsupported_version_response() -> ApiVersionsResponse {
    // ApiVersions' own floor is the same with or without the legacy versions.
    let api_versions = api_keys(true)
        .into_iter()
        .filter(|k| k.api_key == ApiKey::ApiVersions.key())
        .collect();
    ApiVersionsResponse {
        error_code: error_code::UNSUPPORTED_VERSION,
        api_keys: api_versions,
        ..Default::default()
    }
}

/// Kafka's pattern for client software names and versions:
/// `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`.
fn valid_software_field(value: &str) -> bool {
    let bytes = value.as_bytes();
    let edge = |b: &u8| b.is_ascii_alphanumeric();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            edge(first)
                && edge(last)
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'.')
        }
        _ => false,
    }
}

/// The range advertised for an API: what its handler serves, except Produce, which is
/// always advertised from v0 as Kafka 4 advertises it (KAFKA-18659: librdkafka before 2.10
/// only compresses when the broker lists Produce v0-v2); its handler serves v0-v2 too.
pub fn advertised(api: ApiKey, served: VersionRange) -> VersionRange {
    if api == ApiKey::Produce {
        VersionRange {
            min: 0,
            max: served.max,
        }
    } else {
        served
    }
}

/// Every API served and its advertised range; `legacy`: `legacy.api.versions.enable`.
fn api_keys(legacy: bool) -> Vec<ApiVersion> {
    let mut keys: Vec<ApiVersion> = HANDLED
        .iter()
        .filter_map(|(api, _)| Some((api, served_versions(*api, legacy)?)))
        .map(|(api, served)| {
            let versions = advertised(*api, served);
            ApiVersion {
                api_key: api.key(),
                min_version: versions.min,
                max_version: versions.max,
                ..Default::default()
            }
        })
        .collect();
    keys.sort_by_key(|k| k.api_key);
    keys
}

/// The controller listener's APIs ([`super::controller_apis`]) and advertised ranges.
fn controller_api_keys(legacy: bool, cluster: bool) -> Vec<ApiVersion> {
    super::controller_apis::all_in(legacy, cluster)
        .into_iter()
        .map(|(api, served)| {
            let versions = advertised(api, served);
            ApiVersion {
                api_key: api.key(),
                min_version: versions.min,
                max_version: versions.max,
                ..Default::default()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::valid_software_field;

    #[test]
    fn client_software_pattern() {
        for ok in [
            "librdkafka",
            "apache-kafka-java",
            "2.0.2",
            "a",
            "kafka-python.3",
        ] {
            assert!(valid_software_field(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", ".", "a b", "é"] {
            assert!(!valid_software_field(bad), "{bad}");
        }
    }
}
