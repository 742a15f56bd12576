//! Property tests, alongside the cargo-fuzz targets of `fuzz/broker/` (`sasl_scram`,
//! `sasl_plain`, `sasl_oauthbearer`, which check the same invariants on coverage-guided
//! input): the parsers of what clients send (SCRAM and PLAIN messages, OAUTHBEARER
//! client-first messages and their tokens) and of what operators write (JAAS, principal
//! mapping rules, `gregor.bootstrap.scram`) return an error, never panic, on any input.

use std::sync::Arc;

use proptest::prelude::*;

use super::sasl::scram::{ScramServer, credential_from_password};
use super::sasl::{CredentialStore, SaslServer, ScramCredential, ScramMechanism, Step};

struct One(ScramCredential);

impl CredentialStore for One {
    fn scram_credential(&self, _m: ScramMechanism, user: &str) -> Option<ScramCredential> {
        (user == "alice").then(|| self.0.clone())
    }
}

/// OAUTHBEARER client-first messages: random bytes, near-valid framings, and tokens made of
/// random JSON-ish sections in base64.
fn oauth_message() -> impl Strategy<Value = Vec<u8>> {
    use base64::Engine;
    let section = "[{}\\[\\]\":,a-z0-9. -]{0,40}"
        .prop_map(|json| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json));
    let jws = (section.clone(), section, "[A-Za-z0-9_-]{0,4}")
        .prop_map(|(h, c, sig)| format!("{h}.{c}.{sig}"));
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..120),
        ("[na,=2CD\x01-\x7f]{0,10}", "[ -~\t\x01]{0,40}")
            .prop_map(|(head, rest)| format!("{head}\x01auth={rest}\x01\x01").into_bytes()),
        (jws, "(a=[a-z]{0,4})?", "([a-z]{1,3}=[ -~]{1,5}\x01){0,2}")
            .prop_map(|(t, a, ext)| format!("n,{a},\x01auth=Bearer {t}\x01{ext}\x01").into_bytes()),
    ]
}

fn scram_message() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        "[nyp,=a-z0-9]{0,12},(a=[a-z=]{0,6})?,n=(alice|[a-z=,]{0,8}),r=[ -~]{0,20}(,[a-z]=[ -~]{0,10})*"
            .prop_map(String::into_bytes),
        "c=[A-Za-z0-9+/=]{0,8},r=[ -~]{0,30},p=[A-Za-z0-9+/=]{0,90}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #[test]
    fn scram_exchanges_never_panic(first in scram_message(), last in scram_message()) {
        let store = Arc::new(One(credential_from_password(ScramMechanism::Sha256, "pw", 4096)));
        let mut server = ScramServer::new(ScramMechanism::Sha256, store);
        if let Ok(Step::Continue(_)) = server.evaluate(&first) {
            // A random final message never authenticates.
            prop_assert!(server.evaluate(&last).is_err());
        }
    }

    #[test]
    fn plain_tokens_never_panic(token in proptest::collection::vec(any::<u8>(), 0..100)) {
        let users = std::collections::BTreeMap::from([("alice".to_string(), "pw".to_string())]);
        let outcome = super::sasl::plain::PlainServer::new(users).evaluate(&token);
        if outcome.is_ok() {
            prop_assert!(token.ends_with(b"\0alice\0pw"));
        }
    }

    #[test]
    fn oauthbearer_exchanges_never_panic(first in oauth_message(), now in any::<i64>()) {
        use super::sasl::oauthbearer::{OAuthBearerServer, UnsecuredValidatorOptions};
        let mut server = OAuthBearerServer::new(Arc::new(UnsecuredValidatorOptions::default()));
        match server.evaluate_at(&first, now) {
            // A refused token: the JSON challenge; the client's \x01 then fails.
            Ok(Step::Continue(challenge)) => {
                let is_json_error = challenge.starts_with(br#"{"status":"#);
                prop_assert!(is_json_error);
                prop_assert!(server.evaluate_at(b"\x01", now).is_err());
            }
            Ok(Step::Complete { principal, .. }) => {
                prop_assert!(!principal.name.trim().is_empty());
                prop_assert!(server.credential_lifetime_ms().is_some());
            }
            Err(_) => {}
        }
    }

    #[test]
    fn operator_texts_never_panic(text in "[ -~\n]{0,120}") {
        let _ = super::jaas::JaasConfig::parse(&text);
        if let Ok(mapper) = super::principal_mapping::PrincipalMapper::parse(&text) {
            let _ = mapper.name("CN=alice,OU=eng,O=acme");
        }
        let _ = super::bootstrap_scram::parse(&text);
    }
}
