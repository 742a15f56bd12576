//! Which quota applies to a (user, client id), as Kafka's `DefaultQuotaCallback` in
//! `ClientQuotaManager` decides from the quotas of one key (one quota type):
//!
//! 1. `user=<user>, client-id=<client>`   2. `user=<user>, client-id=<default>`
//! 3. `user=<user>`                       4. `user=<default>, client-id=<client>`
//! 5. `user=<default>, client-id=<default>` 6. `user=<default>`
//! 7. `client-id=<client>`                8. `client-id=<default>`
//!
//! The first of these that has the key chooses the metric tags (which clients share one
//! rate: `(user, client)`, `(user, "")` or `("", client)`, `quotaMetricTags`), and the
//! tags choose the limit (`quotaLimit`).

use crate::cluster::client_quotas::{CLIENT_ID, ClientQuotasImage, QuotaEntity, USER};

/// The tags of a rate: `(user, client id)`, either possibly empty.
pub type MetricTags = (String, String);

fn entity(user: Option<Option<&str>>, client: Option<Option<&str>>) -> QuotaEntity {
    let mut e = QuotaEntity::new();
    if let Some(user) = user {
        e.insert(USER.to_string(), user.map(str::to_string));
    }
    if let Some(client) = client {
        e.insert(CLIENT_ID.to_string(), client.map(str::to_string));
    }
    e
}

fn has(image: &ClientQuotasImage, key: &str, e: QuotaEntity) -> bool {
    image.value(&e, key).is_some()
}

/// Kafka's `quotaMetricTags` (the general case of several quota levels in use; with one
/// level it gives the same limits).
pub fn metric_tags(image: &ClientQuotasImage, key: &str, user: &str, client: &str) -> MetricTags {
    let (u, c) = (Some(Some(user)), Some(Some(client)));
    let both = (user.to_string(), client.to_string());
    let user_only = (user.to_string(), String::new());
    if has(image, key, entity(u, c)) || has(image, key, entity(u, Some(None))) {
        both
    } else if has(image, key, entity(u, None)) {
        user_only
    } else if has(image, key, entity(Some(None), c))
        || has(image, key, entity(Some(None), Some(None)))
    {
        both
    } else if has(image, key, entity(Some(None), None)) {
        user_only
    } else {
        (String::new(), client.to_string())
    }
}

/// Kafka's `quotaLimit` for the tags; `None` when unlimited.
pub fn quota_limit(image: &ClientQuotasImage, key: &str, tags: &MetricTags) -> Option<f64> {
    let (user, client) = (tags.0.as_str(), tags.1.as_str());
    let get = |e: QuotaEntity| image.value(&e, key);
    let (u, c) = (Some(Some(user)), Some(Some(client)));
    if !user.is_empty() && !client.is_empty() {
        get(entity(u, c))
            .or_else(|| get(entity(u, Some(None))))
            .or_else(|| get(entity(Some(None), c)))
            .or_else(|| get(entity(Some(None), Some(None))))
    } else if !user.is_empty() {
        get(entity(u, None)).or_else(|| get(entity(Some(None), None)))
    } else if !client.is_empty() {
        get(entity(None, c)).or_else(|| get(entity(None, Some(None))))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_protocol::messages::client_quota_record::{ClientQuotaRecord, EntityData};

    const KEY: &str = "producer_byte_rate";

    fn set(
        image: &mut ClientQuotasImage,
        user: Option<Option<&str>>,
        client: Option<Option<&str>>,
        value: f64,
    ) {
        let mut parts = Vec::new();
        if let Some(u) = user {
            parts.push(EntityData {
                entity_type: USER.into(),
                entity_name: u.map(Into::into),
                ..Default::default()
            });
        }
        if let Some(c) = client {
            parts.push(EntityData {
                entity_type: CLIENT_ID.into(),
                entity_name: c.map(Into::into),
                ..Default::default()
            });
        }
        image.apply(&ClientQuotaRecord {
            entity: parts,
            key: KEY.into(),
            value,
            ..Default::default()
        });
    }

    fn limit(image: &ClientQuotasImage, user: &str, client: &str) -> Option<f64> {
        quota_limit(image, KEY, &metric_tags(image, KEY, user, client))
    }

    #[test]
    fn the_eight_levels_apply_in_kafkas_order() {
        let mut image = ClientQuotasImage::default();
        assert_eq!(limit(&image, "u", "c"), None);
        // Added from the lowest precedence up; each new level wins.
        type Level<'a> = (Option<Option<&'a str>>, Option<Option<&'a str>>);
        let levels: [Level<'_>; 8] = [
            (None, Some(None)),
            (None, Some(Some("c"))),
            (Some(None), None),
            (Some(None), Some(None)),
            (Some(None), Some(Some("c"))),
            (Some(Some("u")), None),
            (Some(Some("u")), Some(None)),
            (Some(Some("u")), Some(Some("c"))),
        ];
        for (i, (user, client)) in levels.into_iter().enumerate() {
            let value = 8.0 - i as f64;
            set(&mut image, user, client, value);
            assert_eq!(limit(&image, "u", "c"), Some(value), "level {}", 8 - i);
        }
        // Another user of client c: the default-user levels.
        assert_eq!(limit(&image, "v", "c"), Some(4.0));
        assert_eq!(metric_tags(&image, KEY, "v", "c"), ("v".into(), "c".into()));
        // Another client of user u: user u with the default client.
        assert_eq!(limit(&image, "u", "d"), Some(2.0));
    }

    #[test]
    fn a_client_id_quota_is_shared_by_every_user_of_that_client() {
        let mut image = ClientQuotasImage::default();
        set(&mut image, None, Some(Some("c")), 100.0);
        assert_eq!(
            metric_tags(&image, KEY, "u", "c"),
            (String::new(), "c".into())
        );
        assert_eq!(limit(&image, "u", "c"), Some(100.0));
        assert_eq!(limit(&image, "u", "other"), None);
        // A user quota makes that user's tags (user, "").
        set(&mut image, Some(Some("u")), None, 50.0);
        assert_eq!(
            metric_tags(&image, KEY, "u", "c"),
            ("u".into(), String::new())
        );
        assert_eq!(limit(&image, "u", "c"), Some(50.0));
    }
}
