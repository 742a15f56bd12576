//! Client quotas in the metadata image, as Kafka's `ClientQuotasImage`: every entity (a map
//! of entity type, `user`, `client-id` or `ip`, to a name, `None` for the default entity)
//! with the quota values set on it, replayed from `ClientQuotaRecord`s, written back to
//! snapshots, and described with Kafka's filter rules (DescribeClientQuotas).

use std::collections::{BTreeMap, BTreeSet};

use gregor_protocol::error_code;
use gregor_protocol::messages::client_quota_record::{ClientQuotaRecord, EntityData};

/// The `user` entity type.
pub const USER: &str = "user";
/// The `client-id` entity type.
pub const CLIENT_ID: &str = "client-id";
/// The `ip` entity type.
pub const IP: &str = "ip";

/// An entity: entity type to name (`None`: the default entity of that type). Kafka's
/// `ClientQuotaEntity` (a map, so a type appears at most once).
pub type QuotaEntity = BTreeMap<String, Option<String>>;

/// An entity's quotas: key to value.
pub type QuotaValues = BTreeMap<String, f64>;

/// What DescribeClientQuotas finds: the matching entities with their quotas, or the
/// filter's error (code and message).
pub type DescribeOutcome<'a> = Result<Vec<(&'a QuotaEntity, &'a QuotaValues)>, (i16, String)>;

/// DescribeClientQuotas' match types.
const MATCH_TYPE_EXACT: i8 = 0;
const MATCH_TYPE_DEFAULT: i8 = 1;
const MATCH_TYPE_SPECIFIED: i8 = 2;

/// One filter component of DescribeClientQuotas.
#[derive(Clone, Debug)]
pub struct QuotaFilterComponent {
    /// The entity type it looks at.
    pub entity_type: String,
    /// 0 exact name, 1 the default entity, 2 any named entity.
    pub match_type: i8,
    /// The name for match type 0.
    pub matched: Option<String>,
}

/// The client quotas of the image, by entity.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientQuotasImage {
    entities: BTreeMap<QuotaEntity, BTreeMap<String, f64>>,
}

/// The entity a record names (a type named twice keeps its last name, as Kafka's
/// `replay` builds its map).
pub fn record_entity(entity: &[EntityData]) -> QuotaEntity {
    entity
        .iter()
        .map(|e| {
            (
                e.entity_type.to_string(),
                e.entity_name.as_ref().map(ToString::to_string),
            )
        })
        .collect()
}

impl ClientQuotasImage {
    /// Applies one record, as Kafka's `ClientQuotaControlManager.replay`: a removal drops
    /// the key (and the entity once it has none left), otherwise the value is set.
    pub fn apply(&mut self, record: &ClientQuotaRecord) {
        let entity = record_entity(&record.entity);
        if record.remove {
            if let Some(quotas) = self.entities.get_mut(&entity) {
                quotas.remove(&*record.key);
                if quotas.is_empty() {
                    self.entities.remove(&entity);
                }
            }
        } else {
            self.entities
                .entry(entity)
                .or_default()
                .insert(record.key.to_string(), record.value);
        }
    }

    /// Whether no quota is set anywhere.
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    /// Every entity with its quotas.
    pub fn entities(&self) -> &BTreeMap<QuotaEntity, BTreeMap<String, f64>> {
        &self.entities
    }

    /// The quotas of exactly `entity`.
    pub fn quotas(&self, entity: &QuotaEntity) -> Option<&BTreeMap<String, f64>> {
        self.entities.get(entity)
    }

    /// The value of `key` on exactly `entity`.
    pub fn value(&self, entity: &QuotaEntity, key: &str) -> Option<f64> {
        self.entities.get(entity)?.get(key).copied()
    }

    /// The records that rebuild this image (for snapshots), one per entity and key.
    pub fn records(&self) -> Vec<ClientQuotaRecord> {
        let mut out = Vec::new();
        for (entity, quotas) in &self.entities {
            for (key, value) in quotas {
                out.push(ClientQuotaRecord {
                    entity: entity_data(entity),
                    key: key.as_str().into(),
                    value: *value,
                    remove: false,
                    ..Default::default()
                });
            }
        }
        out
    }

    /// The entities that match `components` (and `strict`), as Kafka's
    /// `ClientQuotasImage.describe`; an invalid filter is `(error code, message)`.
    pub fn describe(
        &self,
        components: &[QuotaFilterComponent],
        strict: bool,
    ) -> DescribeOutcome<'_> {
        let invalid = |message: String| (error_code::INVALID_REQUEST, message);
        let mut exact: BTreeMap<&str, Option<&str>> = BTreeMap::new();
        let mut typed: BTreeSet<&str> = BTreeSet::new();
        for component in components {
            let entity_type = component.entity_type.as_str();
            if entity_type.is_empty() {
                return Err(invalid("Invalid empty entity type.".to_string()));
            }
            if exact.contains_key(entity_type) || typed.contains(entity_type) {
                return Err(invalid(format!(
                    "Entity type {entity_type} cannot appear more than once in the filter."
                )));
            }
            if ![IP, USER, CLIENT_ID].contains(&entity_type) {
                return Err((
                    error_code::UNSUPPORTED_VERSION,
                    format!("Unsupported entity type {entity_type}"),
                ));
            }
            match component.match_type {
                MATCH_TYPE_EXACT => match &component.matched {
                    Some(name) => {
                        exact.insert(entity_type, Some(name));
                    }
                    None => {
                        return Err(invalid(
                            "Request specified MATCH_TYPE_EXACT, but set match string to null."
                                .to_string(),
                        ));
                    }
                },
                MATCH_TYPE_DEFAULT => {
                    if component.matched.is_some() {
                        return Err(invalid(
                            "Request specified MATCH_TYPE_DEFAULT, but also specified a match string."
                                .to_string(),
                        ));
                    }
                    exact.insert(entity_type, None);
                }
                MATCH_TYPE_SPECIFIED => {
                    if component.matched.is_some() {
                        return Err(invalid(
                            "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string."
                                .to_string(),
                        ));
                    }
                    typed.insert(entity_type);
                }
                other => return Err(invalid(format!("Unknown match type {other}"))),
            }
        }
        let names = |t: &str| exact.contains_key(t) || typed.contains(t);
        if names(IP) && (names(USER) || names(CLIENT_ID)) {
            return Err(invalid(
                "Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component."
                    .to_string(),
            ));
        }
        Ok(self
            .entities
            .iter()
            .filter(|(entity, _)| {
                if strict && entity.len() != exact.len() + typed.len() {
                    return false;
                }
                exact
                    .iter()
                    .all(|(t, name)| entity.get(*t).is_some_and(|have| have.as_deref() == *name))
                    && typed.iter().all(|t| entity.contains_key(*t))
            })
            .collect())
    }
}

/// The record form of an entity.
pub fn entity_data(entity: &QuotaEntity) -> Vec<EntityData> {
    entity
        .iter()
        .map(|(entity_type, name)| EntityData {
            entity_type: entity_type.as_str().into(),
            entity_name: name.as_deref().map(Into::into),
            ..Default::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        entity: &[(&str, Option<&str>)],
        key: &str,
        value: f64,
        remove: bool,
    ) -> ClientQuotaRecord {
        ClientQuotaRecord {
            entity: entity
                .iter()
                .map(|(t, n)| EntityData {
                    entity_type: (*t).into(),
                    entity_name: n.map(Into::into),
                    ..Default::default()
                })
                .collect(),
            key: key.into(),
            value,
            remove,
            ..Default::default()
        }
    }

    fn filter(entity_type: &str, match_type: i8, matched: Option<&str>) -> QuotaFilterComponent {
        QuotaFilterComponent {
            entity_type: entity_type.to_string(),
            match_type,
            matched: matched.map(str::to_string),
        }
    }

    #[test]
    fn records_set_and_remove_keys_and_empty_entities_go() {
        let mut image = ClientQuotasImage::default();
        image.apply(&record(
            &[(USER, Some("alice"))],
            "producer_byte_rate",
            1024.0,
            false,
        ));
        image.apply(&record(
            &[(USER, Some("alice"))],
            "consumer_byte_rate",
            2048.0,
            false,
        ));
        image.apply(&record(
            &[(USER, Some("alice"))],
            "producer_byte_rate",
            0.0,
            true,
        ));
        let alice: QuotaEntity = [(USER.to_string(), Some("alice".to_string()))].into();
        assert_eq!(image.value(&alice, "consumer_byte_rate"), Some(2048.0));
        assert_eq!(image.value(&alice, "producer_byte_rate"), None);
        image.apply(&record(
            &[(USER, Some("alice"))],
            "consumer_byte_rate",
            0.0,
            true,
        ));
        assert!(image.is_empty());
        // A removal of what is not there changes nothing.
        image.apply(&record(&[(USER, None)], "consumer_byte_rate", 0.0, true));
        assert!(image.is_empty());
    }

    #[test]
    fn describe_follows_kafkas_filters() {
        let mut image = ClientQuotasImage::default();
        image.apply(&record(
            &[(USER, Some("alice"))],
            "producer_byte_rate",
            1.0,
            false,
        ));
        image.apply(&record(&[(USER, None)], "producer_byte_rate", 2.0, false));
        image.apply(&record(
            &[(USER, Some("alice")), (CLIENT_ID, Some("app"))],
            "producer_byte_rate",
            3.0,
            false,
        ));
        image.apply(&record(
            &[(CLIENT_ID, None)],
            "producer_byte_rate",
            4.0,
            false,
        ));
        let values = |found: Vec<(&QuotaEntity, &BTreeMap<String, f64>)>| {
            let mut v: Vec<f64> = found.iter().map(|(_, q)| q["producer_byte_rate"]).collect();
            v.sort_by(f64::total_cmp);
            v
        };
        let all = image.describe(&[], false).unwrap();
        assert_eq!(values(all), vec![1.0, 2.0, 3.0, 4.0]);
        let alice = image
            .describe(&[filter(USER, 0, Some("alice"))], false)
            .unwrap();
        assert_eq!(values(alice), vec![1.0, 3.0]);
        let alice_only = image
            .describe(&[filter(USER, 0, Some("alice"))], true)
            .unwrap();
        assert_eq!(values(alice_only), vec![1.0]);
        let default_user = image.describe(&[filter(USER, 1, None)], false).unwrap();
        assert_eq!(values(default_user), vec![2.0]);
        let named_clients = image
            .describe(&[filter(CLIENT_ID, 2, None)], false)
            .unwrap();
        assert_eq!(values(named_clients), vec![3.0, 4.0]);

        let err =
            |components: &[QuotaFilterComponent]| image.describe(components, false).unwrap_err();
        assert_eq!(
            err(&[filter("", 0, Some("x"))]).0,
            error_code::INVALID_REQUEST
        );
        assert_eq!(
            err(&[filter("topic", 0, Some("x"))]).0,
            error_code::UNSUPPORTED_VERSION
        );
        assert_eq!(err(&[filter(USER, 0, None)]).0, error_code::INVALID_REQUEST);
        assert_eq!(
            err(&[filter(USER, 1, Some("x"))]).0,
            error_code::INVALID_REQUEST
        );
        assert_eq!(err(&[filter(USER, 7, None)]).0, error_code::INVALID_REQUEST);
        assert_eq!(
            err(&[filter(USER, 2, None), filter(USER, 1, None)]).0,
            error_code::INVALID_REQUEST
        );
        assert_eq!(
            err(&[filter(IP, 2, None), filter(USER, 1, None)]).0,
            error_code::INVALID_REQUEST
        );
    }

    #[test]
    fn records_rebuild_the_image() {
        let mut image = ClientQuotasImage::default();
        image.apply(&record(
            &[(USER, None), (CLIENT_ID, Some("c"))],
            "request_percentage",
            12.5,
            false,
        ));
        image.apply(&record(
            &[(IP, Some("10.0.0.1"))],
            "connection_creation_rate",
            5.0,
            false,
        ));
        let mut again = ClientQuotasImage::default();
        for r in image.records() {
            again.apply(&r);
        }
        assert_eq!(again, image);
    }
}
