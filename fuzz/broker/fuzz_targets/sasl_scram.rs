//! The server side of a SCRAM exchange fed arbitrary client messages. The first byte picks
//! SCRAM-SHA-256 or -512 (bit 0) and where the input splits (the rest of the byte, as a
//! length) into the client-first and client-final messages; a user `alice` exists. Must
//! never panic. Checks (as `security/fuzz_tests.rs`): a client-first message the server
//! continues from gets a server-first message carrying the client's nonce as its prefix,
//! and no client-final message authenticates (the server's nonce is random, so no input
//! can hold the proof); a failed exchange stays failed.
#![no_main]

use std::sync::{Arc, OnceLock};

use gregor_broker::security::sasl::scram::{ScramServer, credential_from_password};
use gregor_broker::security::sasl::{
    CredentialStore, SaslServer, ScramCredential, ScramMechanism, Step,
};
use libfuzzer_sys::fuzz_target;

struct Alice(ScramMechanism);

impl CredentialStore for Alice {
    fn scram_credential(&self, mechanism: ScramMechanism, user: &str) -> Option<ScramCredential> {
        // Salting takes thousands of HMACs: once per mechanism, not once per input.
        static CREDENTIALS: OnceLock<[ScramCredential; 2]> = OnceLock::new();
        let [sha256, sha512] = CREDENTIALS.get_or_init(|| {
            [
                credential_from_password(ScramMechanism::Sha256, "pw", 4096),
                credential_from_password(ScramMechanism::Sha512, "pw", 4096),
            ]
        });
        assert_eq!(mechanism, self.0, "looked up for another mechanism");
        (user == "alice").then(|| match mechanism {
            ScramMechanism::Sha256 => sha256.clone(),
            ScramMechanism::Sha512 => sha512.clone(),
        })
    }
}

fn client_nonce(message: &[u8]) -> Option<&[u8]> {
    let text = std::str::from_utf8(message).ok()?;
    text.split(',')
        .find_map(|part| part.strip_prefix("r="))
        .map(str::as_bytes)
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mechanism = if selector & 1 == 0 {
        ScramMechanism::Sha256
    } else {
        ScramMechanism::Sha512
    };
    let split = usize::from(selector >> 1).min(rest.len());
    let (first, last) = rest.split_at(rest.len() - split);
    let mut server = ScramServer::new(mechanism, Arc::new(Alice(mechanism)));
    match server.evaluate(first) {
        Ok(Step::Continue(server_first)) => {
            let nonce = client_nonce(&server_first).expect("server-first without a nonce");
            if let Some(client) = client_nonce(first) {
                assert!(nonce.starts_with(client), "server nonce lost the client's");
            }
            assert!(
                server.evaluate(last).is_err(),
                "a fuzzed client-final message authenticated"
            );
        }
        Ok(Step::Complete { .. }) => panic!("SCRAM completed on its first message"),
        Err(_) => assert!(server.evaluate(last).is_err(), "a failed exchange went on"),
    }
});
