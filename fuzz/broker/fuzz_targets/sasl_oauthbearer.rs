//! The OAUTHBEARER server (unsecured JWS validator, default options) fed an arbitrary
//! client initial response; the first 8 bytes are the clock (milliseconds since the
//! epoch). Must never panic. Checks (as `security/fuzz_tests.rs`): a refused token gets
//! Kafka's JSON error challenge, after which the client's `\x01` ends the exchange with
//! an error; an accepted one has a non-blank principal and a credential lifetime.
#![no_main]

use std::sync::Arc;

use gregor_broker::security::sasl::oauthbearer::{OAuthBearerServer, UnsecuredValidatorOptions};
use gregor_broker::security::sasl::{SaslServer, Step};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((clock, message)) = data.split_first_chunk::<8>() else {
        return;
    };
    let now_ms = i64::from_be_bytes(*clock);
    let mut server = OAuthBearerServer::new(Arc::new(UnsecuredValidatorOptions::default()));
    match server.evaluate_at(message, now_ms) {
        Ok(Step::Continue(challenge)) => {
            assert!(challenge.starts_with(br#"{"status":"#), "{challenge:?}");
            assert!(server.evaluate_at(b"\x01", now_ms).is_err());
        }
        Ok(Step::Complete { principal, .. }) => {
            assert!(!principal.name.trim().is_empty());
            assert!(server.credential_lifetime_ms().is_some());
        }
        Err(_) => {}
    }
});
