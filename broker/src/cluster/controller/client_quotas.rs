//! AlterClientQuotas, as Kafka's `ClientQuotaControlManager.alterClientQuotas`: each entity
//! checked (known types `user`, `client-id`, `ip`, no empty names, `ip` never combined with
//! the others, an `ip` that parses or resolves), each key checked against the keys of the
//! entity's kind with its type (LONG keys integral, INT/SHORT in range, every value above 0),
//! and one `ClientQuotaRecord` written per key that changes (a removal only of a key that is
//! set), all in one batch. Every error is INVALID_REQUEST with Kafka's message.

use std::collections::BTreeMap;

use gregor_protocol::MetadataRecord;
use gregor_protocol::error_code;
use gregor_protocol::messages::client_quota_record::ClientQuotaRecord;

use super::{Controller, ControllerError, v0};
use crate::cluster::client_quotas::{CLIENT_ID, IP, QuotaEntity, USER, entity_data};

/// Kafka's `BoundedList` limit on the records of one user operation.
const MAX_RECORDS_PER_USER_OP: usize = 10_000;

/// One entity's changes, as the request names them.
#[derive(Clone, Debug)]
pub struct QuotaAlteration {
    /// The entity (a type named twice in the request keeps its last name, as Kafka's
    /// `AlterClientQuotasRequest.entries` builds its map).
    pub entity: QuotaEntity,
    /// The operations in request order: key and new value (`None`: remove).
    pub ops: Vec<(String, Option<f64>)>,
}

/// The outcome for one entity.
#[derive(Clone, Debug, PartialEq)]
pub struct QuotaAlterationResult {
    /// The entity.
    pub entity: QuotaEntity,
    /// The error code (0 for none).
    pub error_code: i16,
    /// The message, `None` on success.
    pub error_message: Option<String>,
}

/// The value types of Kafka's quota keys (`QuotaConfig`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyType {
    Long,
    Int,
    Double,
}

/// Kafka's `QuotaConfig.userAndClientQuotaConfigs`.
const USER_CLIENT_KEYS: &[(&str, KeyType)] = &[
    ("producer_byte_rate", KeyType::Long),
    ("consumer_byte_rate", KeyType::Long),
    ("request_percentage", KeyType::Double),
    ("controller_mutation_rate", KeyType::Double),
];

/// Kafka's `QuotaConfig.ipConfigs`.
const IP_KEYS: &[(&str, KeyType)] = &[("connection_creation_rate", KeyType::Int)];

fn invalid(message: String) -> (i16, String) {
    (error_code::INVALID_REQUEST, message)
}

/// Kafka's `validateEntity`: the map form already holds each type once.
fn validate_entity(entity: &QuotaEntity) -> Result<(), (i16, String)> {
    if entity.is_empty() {
        return Err(invalid("Invalid empty client quota entity".to_string()));
    }
    for (entity_type, name) in entity {
        if ![USER, CLIENT_ID, IP].contains(&entity_type.as_str()) {
            return Err(invalid(format!(
                "Unhandled client quota entity type: {entity_type}"
            )));
        }
        if name.as_deref() == Some("") {
            return Err(invalid(format!("Empty {entity_type} not supported")));
        }
    }
    Ok(())
}

/// Kafka's `isValidIpEntity`: the default, an address, or a name that resolves.
fn valid_ip_entity(ip: Option<&str>) -> bool {
    let Some(ip) = ip else { return true };
    if ip.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    std::net::ToSocketAddrs::to_socket_addrs(&(ip, 0)).is_ok_and(|mut a| a.next().is_some())
}

/// Kafka's `configKeysForEntityType`.
fn keys_for(entity: &QuotaEntity) -> Result<&'static [(&'static str, KeyType)], (i16, String)> {
    let has = |t: &str| entity.contains_key(t);
    if has(IP) {
        if has(USER) || has(CLIENT_ID) {
            // Kafka's message, missing space included.
            return Err(invalid(
                "Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId"
                    .to_string(),
            ));
        }
        let ip = entity.get(IP).and_then(|n| n.as_deref());
        if valid_ip_entity(ip) {
            Ok(IP_KEYS)
        } else {
            Err(invalid(format!(
                "{} is not a valid IP or resolvable host.",
                ip.unwrap_or("null")
            )))
        }
    } else if has(USER) || has(CLIENT_ID) {
        Ok(USER_CLIENT_KEYS)
    } else {
        Err(invalid("Invalid empty client quota entity".to_string()))
    }
}

/// Kafka's `validateQuotaKeyValue`.
fn validate_value(keys: &[(&str, KeyType)], key: &str, value: f64) -> Result<(), (i16, String)> {
    let Some((_, key_type)) = keys.iter().find(|(k, _)| *k == key) else {
        return Err(invalid(format!("Invalid configuration key {key}")));
    };
    // `!(value > 0)` also refuses NaN, which Java's `value <= 0.0` lets through to a
    // record no quota can use.
    if value.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return Err(invalid(format!("Quota {key} must be greater than 0")));
    }
    let (max, name) = match key_type {
        KeyType::Double => return Ok(()),
        KeyType::Int => (f64::from(i32::MAX), "an INT"),
        KeyType::Long => (i64::MAX as f64, "a LONG"),
    };
    if value > max {
        return Err(invalid(format!(
            "Proposed value for {key} is too large for {name}."
        )));
    }
    if (value % 1.0).abs() > 1e-6 {
        return Err(invalid(format!("{key} cannot be a fractional value.")));
    }
    Ok(())
}

fn entity_text(entity: &QuotaEntity) -> String {
    let parts: Vec<String> = entity
        .iter()
        .map(|(t, n)| format!("{t}={}", n.as_deref().unwrap_or("<default>")))
        .collect();
    format!("ClientQuotaEntity({})", parts.join(", "))
}

impl Controller {
    /// Applies `alterations` (unless `validate_only`); one result per distinct entity, in
    /// the order the entities first appear.
    pub fn alter_client_quotas(
        &self,
        alterations: &[QuotaAlteration],
        validate_only: bool,
    ) -> Result<Vec<QuotaAlterationResult>, ControllerError> {
        let mut log = self.lock();
        log.check_active()?;
        let image = self.image();
        let mut results: Vec<QuotaAlterationResult> = Vec::new();
        let mut records: Vec<ClientQuotaRecord> = Vec::new();
        let set_result = |results: &mut Vec<QuotaAlterationResult>,
                          entity: &QuotaEntity,
                          error: Result<(), (i16, String)>| {
            let (error_code, error_message) = match error {
                Ok(()) => (error_code::NONE, None),
                Err((code, message)) => (code, Some(message)),
            };
            let result = QuotaAlterationResult {
                entity: entity.clone(),
                error_code,
                error_message,
            };
            match results.iter_mut().find(|r| r.entity == *entity) {
                Some(existing) => *existing = result,
                None => results.push(result),
            }
        };
        for alteration in alterations {
            let entity = &alteration.entity;
            let mut ops: BTreeMap<&str, Option<f64>> = BTreeMap::new();
            let mut duplicate_key = false;
            for (key, value) in &alteration.ops {
                if ops.contains_key(key.as_str()) {
                    duplicate_key = true;
                } else {
                    ops.insert(key, *value);
                }
            }
            // As Kafka: an entity seen before (or one with a key twice, whose error was
            // just recorded) is answered "Ignoring duplicate entity"; the records of its
            // first appearance stay.
            if duplicate_key || results.iter().any(|r| r.entity == *entity) {
                set_result(
                    &mut results,
                    entity,
                    Err(invalid(format!(
                        "Ignoring duplicate entity {}",
                        entity_text(entity)
                    ))),
                );
                continue;
            }
            let keys = match validate_entity(entity).and_then(|()| keys_for(entity)) {
                Ok(keys) => keys,
                Err(error) => {
                    set_result(&mut results, entity, Err(error));
                    continue;
                }
            };
            let current = image.client_quotas().quotas(entity);
            let mut new_records = Vec::new();
            let mut failed = None;
            for (key, value) in &ops {
                match value {
                    None => {
                        if current.is_some_and(|c| c.contains_key(*key)) {
                            new_records.push(ClientQuotaRecord {
                                entity: entity_data(entity),
                                key: (*key).into(),
                                remove: true,
                                ..Default::default()
                            });
                        }
                    }
                    Some(value) => {
                        if let Err(error) = validate_value(keys, key, *value) {
                            failed = Some(error);
                            break;
                        }
                        if current.and_then(|c| c.get(*key)) != Some(value) {
                            new_records.push(ClientQuotaRecord {
                                entity: entity_data(entity),
                                key: (*key).into(),
                                value: *value,
                                ..Default::default()
                            });
                        }
                    }
                }
            }
            match failed {
                Some(error) => set_result(&mut results, entity, Err(error)),
                None => {
                    records.extend(new_records);
                    set_result(&mut results, entity, Ok(()));
                }
            }
        }
        if records.len() > MAX_RECORDS_PER_USER_OP {
            let message = format!(
                "The request would write {} records, more than the {MAX_RECORDS_PER_USER_OP} allowed",
                records.len()
            );
            return Ok(results
                .into_iter()
                .map(|r| QuotaAlterationResult {
                    error_code: error_code::INVALID_REQUEST,
                    error_message: Some(message.clone()),
                    ..r
                })
                .collect());
        }
        if !validate_only {
            let records = records
                .into_iter()
                .map(|r| v0(MetadataRecord::ClientQuota(r)))
                .collect();
            self.commit(&mut log, records)?;
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(parts: &[(&str, Option<&str>)]) -> QuotaEntity {
        parts
            .iter()
            .map(|(t, n)| (t.to_string(), n.map(str::to_string)))
            .collect()
    }

    #[test]
    fn keys_and_values_are_checked_as_kafka_does() {
        let user = entity(&[(USER, Some("alice"))]);
        let keys = keys_for(&user).unwrap();
        assert!(validate_value(keys, "producer_byte_rate", 1024.0).is_ok());
        assert!(validate_value(keys, "request_percentage", 12.5).is_ok());
        let err = |key: &str, value: f64| validate_value(keys, key, value).unwrap_err().1;
        assert_eq!(
            err("producer_byte_rate", 1.5),
            "producer_byte_rate cannot be a fractional value."
        );
        assert_eq!(
            err("producer_byte_rate", 0.0),
            "Quota producer_byte_rate must be greater than 0"
        );
        assert_eq!(
            err("producer_byte_rate", f64::NAN),
            "Quota producer_byte_rate must be greater than 0"
        );
        assert_eq!(
            err("connection_creation_rate", 1.0),
            "Invalid configuration key connection_creation_rate"
        );
        assert_eq!(
            err("producer_byte_rate", 1e30),
            "Proposed value for producer_byte_rate is too large for a LONG."
        );
        let ip = entity(&[(IP, Some("127.0.0.1"))]);
        let ip_keys = keys_for(&ip).unwrap();
        assert!(validate_value(ip_keys, "connection_creation_rate", 10.0).is_ok());
        assert!(validate_value(ip_keys, "producer_byte_rate", 10.0).is_err());
        assert!(keys_for(&entity(&[(IP, None), (USER, None)])).is_err());
        assert!(validate_entity(&entity(&[("topic", Some("t"))])).is_err());
        assert!(validate_entity(&entity(&[(USER, Some(""))])).is_err());
        assert!(validate_entity(&entity(&[])).is_err());
        assert!(validate_entity(&entity(&[(USER, None), (CLIENT_ID, Some("c"))])).is_ok());
    }
}
