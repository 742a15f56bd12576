//! The protocol versions Kafka 4 dropped (KIP-896) and the switch that refuses them.
//!
//! This broker serves, for the APIs whose oldest versions Kafka 4.0 removed, the versions
//! Kafka 3.9 still served (each handler's `VERSIONS`). An operator who wants Kafka 4's
//! behaviour sets `legacy.api.versions.enable=false`: then every API is served from
//! [`KAFKA4_FLOORS`] up, whatever its handler could do below that, ApiVersions advertises
//! that, and an older request is refused as Kafka 4 refuses a version it does not know.
//!
//! The floors are Kafka 4.3.1's (its `validVersions`), for the APIs whose floor moved
//! (`gregor_protocol::kip896`, which `gregorctl` uses too); they are applied to the handlers' ranges as they are at run time, so a handler that
//! widens or narrows its own range needs no change here.

use gregor_protocol::{ApiKey, VersionRange};

pub use gregor_protocol::kip896::{KAFKA4_FLOORS, kafka4_floor};

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
