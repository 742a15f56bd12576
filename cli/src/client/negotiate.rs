//! Version negotiation: the broker's ApiVersions answer against the versions this client
//! knows (those of the generated types), the highest common version per API.

use std::collections::BTreeMap;

use gregor_protocol::messages::api_versions_response::ApiVersionsResponse;
use gregor_protocol::{ApiKey, VersionRange};

use super::Error;

/// What a broker supports, from its ApiVersions response.
#[derive(Clone, Debug, Default)]
pub struct BrokerVersions {
    ranges: BTreeMap<i16, VersionRange>,
    /// The whole response (for `gregorctl api-versions`).
    pub response: ApiVersionsResponse,
    /// The ApiVersions version the response was read at.
    pub api_versions_version: i16,
}

impl BrokerVersions {
    /// The broker's ranges from its response (the last entry wins for a duplicate key).
    pub fn new(response: ApiVersionsResponse, api_versions_version: i16) -> BrokerVersions {
        let ranges = response
            .api_keys
            .iter()
            .map(|k| {
                (
                    k.api_key,
                    VersionRange {
                        min: k.min_version,
                        max: k.max_version,
                    },
                )
            })
            .collect();
        BrokerVersions {
            ranges,
            response,
            api_versions_version,
        }
    }

    /// The broker's range for `api`, if it advertises it.
    pub fn broker_range(&self, api: ApiKey) -> Option<VersionRange> {
        self.ranges.get(&api.key()).copied()
    }

    /// Whether a version of `api` works with this broker.
    pub fn supports(&self, api: ApiKey) -> bool {
        pick(client_range(api), self.broker_range(api)).is_ok()
    }

    /// The version to use for `api` with this broker at `addr`.
    pub fn version(&self, addr: &str, api: ApiKey) -> Result<i16, Error> {
        pick(client_range(api), self.broker_range(api)).map_err(|e| match e {
            Mismatch::Missing => Error::missing_api(addr, api),
            Mismatch::Disjoint { ours, theirs } => Error::Unsupported(format!(
                "no common version of {} (API key {}) with the broker at {addr}: \
                 gregorctl supports v{}-v{}, the broker v{}-v{}",
                api.name(),
                api.key(),
                ours.min,
                ours.max,
                theirs.min,
                theirs.max
            )),
        })
    }
}

/// The versions of `api` this client can speak: the generated types' versions from Kafka 4's
/// floors up.
pub fn client_range(api: ApiKey) -> VersionRange {
    // gregorctl is a Kafka 4 client: it writes v2 batches and reads only v2 batches, so it
    // never speaks the versions KIP-896 dropped, though our definitions carry them.
    gregor_protocol::kip896::kafka4_range(api)
}

/// Why no version could be picked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// The broker does not list the API.
    Missing,
    /// Both list it, without a common version.
    Disjoint {
        /// This client's range.
        ours: VersionRange,
        /// The broker's range.
        theirs: VersionRange,
    },
}

/// The highest version in both ranges.
pub fn pick(ours: VersionRange, theirs: Option<VersionRange>) -> Result<i16, Mismatch> {
    let theirs = theirs.ok_or(Mismatch::Missing)?;
    let common = ours.intersect(theirs);
    if common.is_empty() || theirs.is_empty() {
        Err(Mismatch::Disjoint { ours, theirs })
    } else {
        Ok(common.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_protocol::messages::api_versions_response::ApiVersion;

    fn range(min: i16, max: i16) -> VersionRange {
        VersionRange { min, max }
    }

    #[test]
    fn picks_the_highest_common_version() {
        assert_eq!(pick(range(0, 13), Some(range(0, 12))), Ok(12));
        assert_eq!(pick(range(0, 12), Some(range(4, 13))), Ok(12));
        assert_eq!(pick(range(3, 13), Some(range(3, 3))), Ok(3));
        assert_eq!(pick(range(5, 9), Some(range(0, 20))), Ok(9));
    }

    #[test]
    fn reports_missing_and_disjoint() {
        assert_eq!(pick(range(3, 13), None), Err(Mismatch::Missing));
        assert_eq!(
            pick(range(3, 13), Some(range(0, 2))),
            Err(Mismatch::Disjoint {
                ours: range(3, 13),
                theirs: range(0, 2)
            })
        );
        // An empty range from the broker (min > max) matches nothing.
        assert!(matches!(
            pick(range(3, 13), Some(range(5, 4))),
            Err(Mismatch::Disjoint { .. })
        ));
    }

    #[test]
    fn messages_name_the_api_and_both_ranges() {
        let response = ApiVersionsResponse {
            api_keys: vec![
                ApiVersion {
                    api_key: ApiKey::Produce.key(),
                    min_version: 0,
                    max_version: 2,
                    ..Default::default()
                },
                ApiVersion {
                    api_key: ApiKey::Metadata.key(),
                    min_version: 0,
                    max_version: 99,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let versions = BrokerVersions::new(response, 3);
        let produce = client_range(ApiKey::Produce);
        let err = versions
            .version("h:1", ApiKey::Produce)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "no common version of Produce (API key 0) with the broker at h:1: \
                 gregorctl supports v{}-v{}, the broker v0-v2",
                produce.min, produce.max
            )
        );
        let err = versions
            .version("h:1", ApiKey::ListGroups)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "the broker at h:1 does not support ListGroups (API key 16)"
        );
        assert_eq!(
            versions.version("h:1", ApiKey::Metadata).unwrap(),
            client_range(ApiKey::Metadata).max
        );
        assert!(versions.supports(ApiKey::Metadata));
        assert!(!versions.supports(ApiKey::Produce));
        assert!(!versions.supports(ApiKey::Fetch));
    }
}
