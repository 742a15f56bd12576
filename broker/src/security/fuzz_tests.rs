//! Property tests in place of a fuzz target (the fuzz crate builds against the protocol
//! crate only): the parsers of what clients send (SCRAM and PLAIN messages) and of what
//! operators write (JAAS, principal mapping rules, `gregor.bootstrap.scram`) return an
//! error, never panic, on any input.

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
    fn operator_texts_never_panic(text in "[ -~\n]{0,120}") {
        let _ = super::jaas::JaasConfig::parse(&text);
        if let Ok(mapper) = super::principal_mapping::PrincipalMapper::parse(&text) {
            let _ = mapper.name("CN=alice,OU=eng,O=acme");
        }
        let _ = super::bootstrap_scram::parse(&text);
    }
}
