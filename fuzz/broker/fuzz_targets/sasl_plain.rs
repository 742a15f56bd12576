//! The PLAIN server fed an arbitrary token (`[authzid] NUL authcid NUL password`), with one
//! user `alice` of password `pw`. Must never panic. Checks (as `security/fuzz_tests.rs`):
//! only a token ending in `\0alice\0pw` authenticates, as `alice`, and no second token is
//! accepted after the exchange.
#![no_main]

use std::collections::BTreeMap;

use gregor_broker::security::sasl::plain::PlainServer;
use gregor_broker::security::sasl::{SaslServer, Step};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|token: &[u8]| {
    let users = BTreeMap::from([("alice".to_string(), "pw".to_string())]);
    let mut server = PlainServer::new(users);
    match server.evaluate(token) {
        Ok(Step::Complete { principal, .. }) => {
            assert!(token.ends_with(b"\0alice\0pw"), "authenticated: {token:?}");
            assert_eq!(principal.name, "alice");
            assert!(server.evaluate(token).is_err(), "a second token was taken");
        }
        Ok(Step::Continue(_)) => panic!("PLAIN has a single step"),
        Err(_) => {}
    }
});
