//! The protocol versions Kafka 4.0 dropped (KIP-896).
//!
//! Our definitions under `schemas/` go back to Kafka 3.9's oldest versions, so that a
//! broker can serve the clients Kafka 4 no longer serves. A client of today (such as
//! `gregorctl`) speaks only what Kafka 4's clients speak; [`KAFKA4_FLOORS`] is where the two
//! differ.

use crate::{ApiKey, VersionRange};

/// Kafka 4.3.1's oldest version of every API whose oldest version in Kafka 3.9 was lower.
/// APIs not listed kept their floor.
pub const KAFKA4_FLOORS: &[(ApiKey, i16)] = &[
    (ApiKey::Produce, 3),
    (ApiKey::Fetch, 4),
    (ApiKey::ListOffsets, 1),
    (ApiKey::OffsetCommit, 2),
    (ApiKey::OffsetFetch, 1),
    (ApiKey::CreateTopics, 2),
    (ApiKey::DeleteTopics, 1),
    (ApiKey::OffsetForLeaderEpoch, 2),
    (ApiKey::DescribeAcls, 1),
    (ApiKey::CreateAcls, 1),
    (ApiKey::DeleteAcls, 1),
    (ApiKey::DescribeConfigs, 1),
    (ApiKey::AlterReplicaLogDirs, 1),
    (ApiKey::DescribeLogDirs, 1),
    (ApiKey::CreateDelegationToken, 1),
    (ApiKey::RenewDelegationToken, 1),
    (ApiKey::ExpireDelegationToken, 1),
    (ApiKey::DescribeDelegationToken, 1),
];

/// Kafka 4's oldest version of `api`, when it is above what Kafka 3.9 served.
pub fn kafka4_floor(api: ApiKey) -> Option<i16> {
    KAFKA4_FLOORS
        .iter()
        .find(|(key, _)| *key == api)
        .map(|(_, floor)| *floor)
}

/// The versions of `api` a Kafka 4 client speaks: the definitions' range from
/// [`kafka4_floor`] up.
pub fn kafka4_range(api: ApiKey) -> VersionRange {
    let valid = api.valid_versions();
    VersionRange {
        min: kafka4_floor(api).map_or(valid.min, |floor| valid.min.max(floor)),
        max: valid.max,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floors_lie_within_the_definitions() {
        for (api, floor) in KAFKA4_FLOORS {
            let valid = api.valid_versions();
            assert!(
                valid.min <= *floor && *floor <= valid.max,
                "{api:?}: floor {floor} against {valid:?}"
            );
        }
    }

    #[test]
    fn kafka4_range_raises_only_the_listed_floors() {
        assert_eq!(kafka4_range(ApiKey::Produce).min, 3);
        assert_eq!(kafka4_range(ApiKey::Fetch).min, 4);
        assert_eq!(
            kafka4_range(ApiKey::Produce).max,
            ApiKey::Produce.valid_versions().max
        );
        assert_eq!(
            kafka4_range(ApiKey::Metadata),
            ApiKey::Metadata.valid_versions()
        );
    }
}
