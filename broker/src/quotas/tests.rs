use gregor_protocol::messages::client_quota_record::{ClientQuotaRecord, EntityData};

use super::*;
use crate::cluster::client_quotas::CLIENT_ID;

fn client_quota(client: &str, key: &str, value: f64) -> ClientQuotasImage {
    let mut image = ClientQuotasImage::default();
    image.apply(&ClientQuotaRecord {
        entity: vec![EntityData {
            entity_type: CLIENT_ID.into(),
            entity_name: Some(client.into()),
            ..Default::default()
        }],
        key: key.into(),
        value,
        ..Default::default()
    });
    image
}

#[test]
fn the_throttle_time_brings_the_rate_back_to_the_quota() {
    let manager = ClientQuotaManager::new(RateConfig::default());
    let image = client_quota("app", "producer_byte_rate", 100.0);
    // 2000 bytes at once: 200 B/s over the 10 s minimum window, twice the quota, so the
    // client waits another 10 s: 2000 B over 20 s is 100 B/s.
    let throttle = manager.record(&image, QuotaType::Produce, "ANONYMOUS", "app", 2000.0, 0);
    assert_eq!(throttle, 10_000);
    // Other clients and other quota types are not charged.
    assert_eq!(
        manager.record(&image, QuotaType::Produce, "ANONYMOUS", "other", 1e9, 0),
        0
    );
    assert_eq!(
        manager.record(&image, QuotaType::Fetch, "ANONYMOUS", "app", 1e9, 0),
        0
    );
}

#[test]
fn a_client_that_waits_as_told_stays_at_its_quota() {
    let manager = ClientQuotaManager::new(RateConfig::default());
    let image = client_quota("app", "producer_byte_rate", 1000.0);
    let (mut now, mut sent) = (0i64, 0f64);
    while now < 60_000 {
        sent += 500.0;
        let throttle = manager.record(&image, QuotaType::Produce, "u", "app", 500.0, now);
        now += 50 + throttle;
    }
    let rate = sent / (now as f64 / 1000.0);
    assert!((rate - 1000.0).abs() < 100.0, "{rate} B/s");
}

#[test]
fn the_request_quota_is_bounded_by_one_window() {
    let manager = ClientQuotaManager::new(RateConfig::default());
    let image = client_quota("app", "request_percentage", 1.0);
    let throttle = manager.record(&image, QuotaType::Request, "u", "app", 500.0, 0);
    assert_eq!(throttle, 1000);
}

#[test]
fn kip219_versions_are_kafkas() {
    assert!(client_throttles(ApiKey::Produce, 6));
    assert!(!client_throttles(ApiKey::Produce, 5));
    assert!(client_throttles(ApiKey::Fetch, 8));
    assert!(!client_throttles(ApiKey::Fetch, 7));
    assert!(!client_throttles(ApiKey::DescribeClientQuotas, 1));
}

#[test]
fn responses_get_the_throttle_time_where_they_have_the_field() {
    use gregor_protocol::messages::produce_response::ProduceResponse;
    let mut body: ResponseBody = ProduceResponse::default().into();
    assert!(body.set_throttle_time_ms(7, 250));
    let ResponseBody::Produce(produce) = &body else {
        unreachable!()
    };
    assert_eq!(produce.throttle_time_ms, 250);
    // Produce v0 has no throttle_time_ms.
    let mut old: ResponseBody = ProduceResponse::default().into();
    assert!(!old.set_throttle_time_ms(0, 250));
}
