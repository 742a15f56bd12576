//! UpdateFeatures on the controller: finalized feature levels as `FeatureLevelRecord`s,
//! checked as Kafka's `FeatureControlManager.updateFeatures` checks them.
//!
//! For each update, in request order, the first failure fails the whole request (nothing
//! is written) with `INVALID_UPDATE_VERSION` and the message "Invalid update version
//! {level} for feature {name}. {reason}":
//!
//! 1. an upgrade type Kafka does not know (not 1-3): "The controller does not support the
//!    given upgrade type.";
//! 2. a level below 0: "A feature version cannot be less than 0.";
//! 3. a level outside what this controller supports ([`supported_features`]), then outside
//!    what each registered broker supports: "Local controller N only supports versions
//!    7-29" (or "... does not support this feature." when the supported maximum is 0);
//! 4. a lower level with upgrade type UPGRADE: "Can't downgrade the version of this
//!    feature without setting the upgrade type to either safe or unsafe downgrade."; a
//!    higher one with a downgrade type: "Can't downgrade to a newer version.";
//! 5. for `metadata.version`, a downgrade across a level that changed the metadata format
//!    ([`metadata_changed`]) is refused, as Kafka does for both downgrade types, with
//!    "Invalid metadata.version {level}. Refusing to perform the requested downgrade
//!    because it might delete metadata information." (or "Unsafe metadata downgrade is not
//!    supported in this version." for UNSAFE_DOWNGRADE).
//!
//! All records of a request go in one batch (Kafka's `ControllerResult.atomicOf`);
//! `validate_only` writes nothing. A level equal to the current one still writes its
//! record, as Kafka does. `kraft.version` is not a metadata-log feature: Kafka changes it
//! through the Raft layer, and this static quorum only supports 0, so the only accepted
//! update (to 0) writes nothing.

use std::collections::BTreeMap;

use gregor_protocol::MetadataRecord;
use gregor_protocol::error_code::INVALID_UPDATE_VERSION;
use gregor_protocol::messages::feature_level_record::FeatureLevelRecord;
use gregor_protocol::metadata_frame::VersionedRecord;

use super::controller::{
    ApiError, Controller, ControllerError, KRAFT_VERSION_FEATURE, supported_features, v0,
};
use super::image::{METADATA_VERSION_FEATURE, MetadataImage};
use gregor_protocol::VersionRange;

/// Kafka's `FeatureUpdate.UpgradeType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpgradeType {
    /// A code Kafka does not know.
    Unknown,
    /// 1: the level may only go up (or stay).
    Upgrade,
    /// 2: the level may go down when no metadata is lost.
    SafeDowngrade,
    /// 3: the level may go down even when metadata is lost.
    UnsafeDowngrade,
}

impl UpgradeType {
    /// The type of a wire code (`UpgradeType.fromCode`).
    pub fn from_code(code: i8) -> UpgradeType {
        match code {
            1 => UpgradeType::Upgrade,
            2 => UpgradeType::SafeDowngrade,
            3 => UpgradeType::UnsafeDowngrade,
            _ => UpgradeType::Unknown,
        }
    }
}

/// One feature update of an UpdateFeatures request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeatureUpdate {
    /// The feature name.
    pub feature: String,
    /// The new level (0 removes the feature).
    pub level: i16,
    /// The upgrade type.
    pub upgrade_type: UpgradeType,
}

/// The `metadata.version` levels this broker knows whose introduction changed the metadata
/// format (Kafka's `MetadataVersion.didMetadataChange`), from 7 (3.3-IV3) to 29 (4.2-IV1;
/// 26 to 29 changed nothing).
const METADATA_CHANGED: &[i16] = &[7, 8, 11, 13, 14, 15, 17, 23];

/// Whether going between `from` and `to` crosses a level that changed the metadata format
/// (Kafka's `MetadataVersion.checkIfMetadataChanged`): some level in `(low, high]` did.
pub fn metadata_changed(from: i16, to: i16) -> bool {
    let (low, high) = if from <= to { (from, to) } else { (to, from) };
    METADATA_CHANGED.iter().any(|l| *l > low && *l <= high)
}

fn invalid_update(feature: &str, level: i16, reason: &str) -> ApiError {
    let message = format!("Invalid update version {level} for feature {feature}. {reason}");
    tracing::warn!("{message}");
    ApiError::new(INVALID_UPDATE_VERSION, message)
}

fn invalid_metadata_version(level: i16, reason: &str) -> ApiError {
    let message = format!("Invalid metadata.version {level}. {reason}");
    tracing::warn!("{message}");
    ApiError::new(INVALID_UPDATE_VERSION, message)
}

/// Kafka's `VersionRange.toString`: `7`, `7-25` or `7+`.
fn range_text(range: VersionRange) -> String {
    if range.min == range.max {
        range.min.to_string()
    } else if range.max == i16::MAX {
        format!("{}+", range.min)
    } else {
        format!("{}-{}", range.min, range.max)
    }
}

/// Kafka's `QuorumFeatures.reasonNotSupported`.
fn reason_not_supported(level: i16, what: &str, range: VersionRange) -> Option<String> {
    if level >= range.min && level <= range.max {
        None
    } else if range.max == 0 {
        Some(format!("{what} does not support this feature."))
    } else {
        Some(format!(
            "{what} only supports versions {}",
            range_text(range)
        ))
    }
}

const DISABLED: VersionRange = VersionRange { min: 0, max: 0 };

/// Checks one update against `image` and builds its record (none for `kraft.version`).
fn plan_update(
    node_id: i32,
    image: &MetadataImage,
    update: &FeatureUpdate,
) -> Result<Option<VersionedRecord>, ApiError> {
    let name = update.feature.as_str();
    let level = update.level;
    if update.upgrade_type == UpgradeType::Unknown {
        return Err(invalid_update(
            name,
            level,
            "The controller does not support the given upgrade type.",
        ));
    }
    let current = image.feature_level(name).unwrap_or(0);
    if level < 0 {
        return Err(invalid_update(
            name,
            level,
            "A feature version cannot be less than 0.",
        ));
    }
    let local = supported_features();
    let range = local.get(name).copied().unwrap_or(DISABLED);
    if let Some(reason) = reason_not_supported(level, &format!("Local controller {node_id}"), range)
    {
        return Err(invalid_update(name, level, &reason));
    }
    for (id, broker) in image.brokers() {
        let range = broker
            .supported_features
            .get(name)
            .copied()
            .unwrap_or(DISABLED);
        if let Some(reason) = reason_not_supported(level, &format!("Broker {id}"), range) {
            return Err(invalid_update(name, level, &reason));
        }
    }
    if level < current && update.upgrade_type == UpgradeType::Upgrade {
        return Err(invalid_update(
            name,
            level,
            "Can't downgrade the version of this feature without setting the upgrade type to \
             either safe or unsafe downgrade.",
        ));
    }
    if level > current && update.upgrade_type != UpgradeType::Upgrade {
        return Err(invalid_update(
            name,
            level,
            "Can't downgrade to a newer version.",
        ));
    }
    if name == METADATA_VERSION_FEATURE {
        if level < current && metadata_changed(current, level) {
            return Err(invalid_metadata_version(
                level,
                if update.upgrade_type == UpgradeType::UnsafeDowngrade {
                    "Unsafe metadata downgrade is not supported in this version."
                } else {
                    "Refusing to perform the requested downgrade because it might delete \
                     metadata information."
                },
            ));
        }
        if level < current {
            tracing::warn!("downgrading metadata.version from {current} to {level}");
        } else {
            tracing::warn!("upgrading metadata.version from {current} to {level}");
        }
    } else if name == KRAFT_VERSION_FEATURE {
        // Only level 0 is supported (checked above), which is what a static quorum has.
        return Ok(None);
    } else if !local.contains_key(name) {
        // Only level 0 of a feature this node does not know gets here; Kafka's
        // `Features.featureFromName` refuses names it does not know.
        return Err(invalid_update(
            name,
            level,
            &format!("Feature {name} not found."),
        ));
    }
    Ok(Some(v0(MetadataRecord::FeatureLevel(FeatureLevelRecord {
        name: name.into(),
        feature_level: level,
        ..Default::default()
    }))))
}

impl Controller {
    /// UpdateFeatures (see the module docs): `Ok(Ok(offsets))` when every update passed
    /// (and, unless `validate_only`, was written; `offsets` of the batch, `None` when
    /// nothing was written), `Ok(Err(error))` for the first update that failed. Blocking
    /// file I/O.
    pub fn update_features(
        &self,
        updates: &[FeatureUpdate],
        validate_only: bool,
    ) -> Result<Result<Option<(i64, i64)>, ApiError>, ControllerError> {
        let mut log = self.lock();
        let image = self.image();
        // Kafka collects the updates in a map: a feature named twice takes its last entry.
        let mut last: BTreeMap<&str, &FeatureUpdate> = BTreeMap::new();
        for update in updates {
            last.insert(&update.feature, update);
        }
        let mut records = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for update in updates {
            if !seen.insert(update.feature.as_str()) {
                continue;
            }
            let update = last[update.feature.as_str()];
            match plan_update(self.node_id(), &image, update) {
                Ok(record) => records.extend(record),
                Err(error) => return Ok(Err(error)),
            }
        }
        if validate_only {
            return Ok(Ok(None));
        }
        let offsets = self.commit(&mut log, records)?;
        Ok(Ok(offsets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_changes_between_levels() {
        // 25 (4.0-IV3) and 24 (4.0-IV2) changed nothing since 23 (4.0-IV1).
        assert!(!metadata_changed(25, 23));
        assert!(!metadata_changed(25, 24));
        assert!(!metadata_changed(29, 23));
        assert!(metadata_changed(25, 22));
        assert!(!metadata_changed(21, 18));
        assert!(metadata_changed(21, 16));
        assert!(!metadata_changed(9, 10));
    }

    #[test]
    fn unsupported_reasons_name_the_range() {
        let range = VersionRange { min: 7, max: 29 };
        assert_eq!(
            reason_not_supported(30, "Local controller 1", range).as_deref(),
            Some("Local controller 1 only supports versions 7-29")
        );
        assert_eq!(
            reason_not_supported(1, "Broker 1", DISABLED).as_deref(),
            Some("Broker 1 does not support this feature.")
        );
        assert_eq!(reason_not_supported(0, "Broker 1", DISABLED), None);
    }

    fn open(dir: &std::path::Path) -> Controller {
        let (meta, _) =
            super::super::meta_properties::MetaProperties::load_or_format(dir, 1, None).unwrap();
        let options = super::super::controller::ControllerOptions::new(
            1,
            dir.to_path_buf(),
            meta.directory_id.unwrap(),
        );
        let loaded = super::super::replay::load(dir).unwrap();
        Controller::open(options, loaded).unwrap().0
    }

    fn update(feature: &str, level: i16, upgrade_type: UpgradeType) -> FeatureUpdate {
        FeatureUpdate {
            feature: feature.into(),
            level,
            upgrade_type,
        }
    }

    fn refused(controller: &Controller, updates: &[FeatureUpdate]) -> String {
        let error = controller
            .update_features(updates, false)
            .unwrap()
            .unwrap_err();
        assert_eq!(error.code, INVALID_UPDATE_VERSION);
        error.message.unwrap()
    }

    #[test]
    fn metadata_version_downgrades_and_upgrades_persist() {
        let dir = tempfile::tempdir().unwrap();
        let controller = open(dir.path());
        let mv = METADATA_VERSION_FEATURE;
        assert_eq!(
            refused(&controller, &[update(mv, 23, UpgradeType::Upgrade)]),
            "Invalid update version 23 for feature metadata.version. Can't downgrade the \
             version of this feature without setting the upgrade type to either safe or \
             unsafe downgrade."
        );
        assert_eq!(
            refused(&controller, &[update(mv, 22, UpgradeType::SafeDowngrade)]),
            "Invalid metadata.version 22. Refusing to perform the requested downgrade because \
             it might delete metadata information."
        );
        assert_eq!(
            refused(&controller, &[update(mv, 22, UpgradeType::UnsafeDowngrade)]),
            "Invalid metadata.version 22. Unsafe metadata downgrade is not supported in this \
             version."
        );
        assert_eq!(
            refused(&controller, &[update(mv, 30, UpgradeType::Upgrade)]),
            "Invalid update version 30 for feature metadata.version. Local controller 1 only \
             supports versions 7-29"
        );
        assert_eq!(
            refused(
                &controller,
                &[update("share.version", 1, UpgradeType::Upgrade)]
            ),
            "Invalid update version 1 for feature share.version. Local controller 1 does not \
             support this feature."
        );
        assert_eq!(
            refused(
                &controller,
                &[update("group.version", 2, UpgradeType::Upgrade)]
            ),
            "Invalid update version 2 for feature group.version. Local controller 1 only \
             supports versions 0-1"
        );
        // validate_only checks and writes nothing.
        let before = controller.next_offset();
        let ok = controller
            .update_features(&[update(mv, 23, UpgradeType::SafeDowngrade)], true)
            .unwrap();
        assert_eq!(ok, Ok(None));
        assert_eq!(controller.next_offset(), before);
        assert_eq!(controller.image().metadata_version(), Some(25));
        // A failing update fails the whole request.
        refused(
            &controller,
            &[
                update(mv, 23, UpgradeType::SafeDowngrade),
                update("kraft.version", 1, UpgradeType::Upgrade),
            ],
        );
        assert_eq!(controller.image().metadata_version(), Some(25));
        controller
            .update_features(&[update(mv, 23, UpgradeType::SafeDowngrade)], false)
            .unwrap()
            .unwrap();
        assert_eq!(controller.image().metadata_version(), Some(23));
        assert_eq!(
            refused(&controller, &[update(mv, 25, UpgradeType::SafeDowngrade)]),
            "Invalid update version 25 for feature metadata.version. Can't downgrade to a \
             newer version."
        );
        drop(controller);
        let controller = open(dir.path());
        assert_eq!(controller.image().metadata_version(), Some(23));
        controller
            .update_features(&[update(mv, 25, UpgradeType::Upgrade)], false)
            .unwrap()
            .unwrap();
        assert_eq!(controller.image().metadata_version(), Some(25));
    }

    #[test]
    fn upgrade_types() {
        assert_eq!(UpgradeType::from_code(1), UpgradeType::Upgrade);
        assert_eq!(UpgradeType::from_code(3), UpgradeType::UnsafeDowngrade);
        assert_eq!(UpgradeType::from_code(0), UpgradeType::Unknown);
        assert_eq!(UpgradeType::from_code(4), UpgradeType::Unknown);
    }
}
