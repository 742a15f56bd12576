//! The protocol versions Kafka 4 dropped (KIP-896) and the switch that refuses them.
//!
//! This broker serves, for the APIs whose oldest versions Kafka 4.0 removed, the versions
//! Kafka 3.9 still served (each handler's `VERSIONS`). An operator who wants Kafka 4's
//! behaviour sets `legacy.api.versions.enable=false`: then every API is served from
//! [`KAFKA4_FLOORS`] up, whatever its handler could do below that, ApiVersions advertises
//! that, and an older request is refused as Kafka 4 refuses a version it does not know.
//!
//! The floors here are Kafka 4.3.1's (its `validVersions`), for the APIs whose floor moved;
//! they are applied to the handlers' ranges as they are at run time, so a handler that
//! widens or narrows its own range needs no change here.

use gregor_protocol::{ApiKey, VersionRange};

/// Kafka 4.3.1's oldest version of every API whose oldest version Kafka 3.9 served was
/// lower (KIP-896). APIs not listed kept their floor.
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

/// The versions of `api` served, given what its handler serves (`handled`) and whether
/// the versions Kafka 4 dropped are served (`legacy`, the config key
/// `legacy.api.versions.enable`). `None` when nothing is left.
pub fn served(api: ApiKey, handled: VersionRange, legacy: bool) -> Option<VersionRange> {
    let min = match kafka4_floor(api) {
        Some(floor) if !legacy => handled.min.max(floor),
        _ => handled.min,
    };
    (min <= handled.max).then_some(VersionRange {
        min,
        max: handled.max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_applies_only_when_legacy_versions_are_off() {
        let handled = VersionRange { min: 0, max: 7 };
        assert_eq!(
            served(ApiKey::CreateTopics, handled, true),
            Some(VersionRange { min: 0, max: 7 })
        );
        assert_eq!(
            served(ApiKey::CreateTopics, handled, false),
            Some(VersionRange { min: 2, max: 7 })
        );
        // APIs whose floor did not move are served as their handler serves them.
        assert_eq!(served(ApiKey::Metadata, handled, false), Some(handled));
    }

    #[test]
    fn a_handler_floor_above_kafka4s_is_kept() {
        let handled = VersionRange { min: 5, max: 13 };
        assert_eq!(served(ApiKey::Produce, handled, false), Some(handled));
        // A range entirely below the floor leaves nothing.
        let old = VersionRange { min: 0, max: 2 };
        assert_eq!(served(ApiKey::Produce, old, false), None);
    }

    #[test]
    fn the_config_key_defaults_to_serving_the_legacy_versions() {
        use crate::config::Config;
        let parse = |text: &str| Config::parse(text).map(|c| c.legacy_api_versions_enable);
        assert!(parse("node.id=1\n").unwrap());
        assert!(!parse("node.id=1\nlegacy.api.versions.enable=FALSE\n").unwrap());
        assert!(parse("node.id=1\nlegacy.api.versions.enable=true\n").unwrap());
        let err = parse("node.id=1\nlegacy.api.versions.enable=no\n").unwrap_err();
        assert!(
            err.to_string().contains("legacy.api.versions.enable"),
            "{err}"
        );
        // A key of its own, not an unknown one.
        let config = Config::parse("node.id=1\nlegacy.api.versions.enable=false\n").unwrap();
        assert!(config.unknown_keys.is_empty(), "{:?}", config.unknown_keys);
    }

    #[test]
    fn every_floor_is_within_kafkas_definitions() {
        for (api, floor) in KAFKA4_FLOORS {
            let defined = api.valid_versions();
            assert!(
                defined.min <= *floor && *floor <= defined.max,
                "{}: floor {floor} outside {}-{}",
                api.name(),
                defined.min,
                defined.max
            );
        }
    }
}
