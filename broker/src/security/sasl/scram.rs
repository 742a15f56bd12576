//! SASL/SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), as Kafka's `ScramSaslServer`.
//!
//! Three messages: the client's first (`n,,n=<user>,r=<nonce>`), answered with the
//! combined nonce, the salt and the iteration count of the user's stored credential; the
//! client's final (`c=<binding>,r=<nonce>,p=<proof>`), whose proof is checked against the
//! stored key (constant time), answered with the server signature (`v=...`). Kafka sends
//! the client the generic "Authentication failed during authentication due to invalid
//! credentials with SASL mechanism SCRAM-SHA-512" for any failure of its SCRAM server
//! (a `SaslException`), so an unknown user and a wrong password look alike; only an
//! authorization id other than the user is told as such.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::{CredentialStore, SaslFailure, SaslServer, ScramCredential, ScramMechanism, Step};
use crate::security::KafkaPrincipal;

/// Kafka's upper bound on iterations (`ScramControlManager.MAX_ITERATIONS`).
pub const MAX_ITERATIONS: i32 = 16384;

/// `HMAC(key, data)` with the mechanism's hash.
pub fn hmac(mechanism: ScramMechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    match mechanism {
        ScramMechanism::Sha256 => {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        ScramMechanism::Sha512 => {
            let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(key).expect("any key length");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
    }
}

/// `H(data)` with the mechanism's hash.
pub fn hash(mechanism: ScramMechanism, data: &[u8]) -> Vec<u8> {
    match mechanism {
        ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
        ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
    }
}

/// `Hi(password, salt, iterations)`: PBKDF2 with the mechanism's HMAC.
pub fn salted_password(
    mechanism: ScramMechanism,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Vec<u8> {
    match mechanism {
        ScramMechanism::Sha256 => {
            let mut out = vec![0u8; 32];
            pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
            out
        }
        ScramMechanism::Sha512 => {
            let mut out = vec![0u8; 64];
            pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
            out
        }
    }
}

/// The stored credential of a salted password (Kafka's `ScramFormatter`: `StoredKey =
/// H(HMAC(salted, "Client Key"))`, `ServerKey = HMAC(salted, "Server Key")`).
pub fn credential_from_salted(
    mechanism: ScramMechanism,
    salted: &[u8],
    salt: &[u8],
    iterations: i32,
) -> ScramCredential {
    let client_key = hmac(mechanism, salted, b"Client Key");
    ScramCredential {
        salt: salt.to_vec(),
        stored_key: hash(mechanism, &client_key),
        server_key: hmac(mechanism, salted, b"Server Key"),
        iterations,
    }
}

/// A credential for `password` with a random salt, as `kafka-configs --add-config
/// 'SCRAM-SHA-512=[password=...]'` and `kafka-storage format --add-scram` make one.
pub fn credential_from_password(
    mechanism: ScramMechanism,
    password: &str,
    iterations: i32,
) -> ScramCredential {
    let salt: [u8; 24] = rand::random();
    let salted = salted_password(
        mechanism,
        password.as_bytes(),
        &salt,
        iterations.max(1) as u32,
    );
    credential_from_salted(mechanism, &salted, &salt, iterations)
}

/// RFC 5802 `saslname`: `=2C` is `,` and `=3D` is `=`; any other `=` is invalid.
fn decode_saslname(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let escape = rest.get(i..i + 3)?;
        out.push(match escape {
            "=2C" => ',',
            "=3D" => '=',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    if rest.contains(',') {
        return None;
    }
    out.push_str(rest);
    Some(out)
}

enum State {
    ReceiveClientFirst,
    ReceiveClientFinal {
        user: String,
        credential: ScramCredential,
        client_first_bare: String,
        server_first: String,
        nonce: String,
    },
    Complete,
    /// A message was refused: nothing more is taken (Kafka's `ScramSaslServer` state
    /// `FAILED`), so one connection cannot try again.
    Failed,
}

/// The SCRAM server of one connection.
pub struct ScramServer {
    mechanism: ScramMechanism,
    credentials: std::sync::Arc<dyn CredentialStore>,
    state: State,
}

impl ScramServer {
    /// A server for `mechanism` looking credentials up in `credentials`.
    pub fn new(
        mechanism: ScramMechanism,
        credentials: std::sync::Arc<dyn CredentialStore>,
    ) -> ScramServer {
        ScramServer {
            mechanism,
            credentials,
            state: State::ReceiveClientFirst,
        }
    }

    /// The message Kafka's `SaslServerAuthenticator` gives for a failed SCRAM exchange.
    fn invalid(&self, detail: &str) -> SaslFailure {
        tracing::debug!("{} authentication failed: {detail}", self.mechanism.name());
        SaslFailure(format!(
            "Authentication failed during authentication due to invalid credentials with SASL \
             mechanism {}",
            self.mechanism.name()
        ))
    }

    fn client_first(&mut self, message: &str) -> Result<Step, SaslFailure> {
        let invalid_format = || {
            self.invalid(&format!(
                "Invalid SCRAM client first message format: {message}"
            ))
        };
        // gs2-header: a channel binding flag (n or y; p= is not supported), an optional
        // authorization id, then the bare message.
        let (cbind, rest) = message.split_once(',').ok_or_else(invalid_format)?;
        if cbind != "n" && cbind != "y" {
            return Err(invalid_format());
        }
        let (authzid, bare) = rest.split_once(',').ok_or_else(invalid_format)?;
        let authzid = match authzid {
            "" => None,
            a => Some(
                a.strip_prefix("a=")
                    .and_then(decode_saslname)
                    .ok_or_else(invalid_format)?,
            ),
        };
        let mut parts = bare.split(',');
        let mut first = parts.next().ok_or_else(invalid_format)?;
        if first.starts_with("m=") {
            // The reserved mandatory-extension attribute: Kafka's pattern allows it.
            first = parts.next().ok_or_else(invalid_format)?;
        }
        let user = first
            .strip_prefix("n=")
            .and_then(decode_saslname)
            .filter(|u| !u.is_empty())
            .ok_or_else(invalid_format)?;
        let client_nonce = parts
            .next()
            .and_then(|p| p.strip_prefix("r="))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b','))
            .ok_or_else(invalid_format)?;
        // Extensions (`tokenauth=true`, ...) are accepted and ignored: delegation tokens are
        // not implemented.
        let credential = self
            .credentials
            .scram_credential(self.mechanism, &user)
            .ok_or_else(|| self.invalid("Authentication failed: Invalid user credentials"))?;
        if let Some(authzid) = authzid
            && authzid != user
        {
            return Err(SaslFailure(
                "Authentication failed: Client requested an authorization id that is different from username"
                    .to_string(),
            ));
        }
        if credential.iterations < self.mechanism.min_iterations() {
            return Err(self.invalid(&format!(
                "Iterations {} is less than the minimum {} for {}",
                credential.iterations,
                self.mechanism.min_iterations(),
                self.mechanism.name()
            )));
        }
        let server_nonce: String = {
            let bytes: [u8; 24] = rand::random();
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        };
        let nonce = format!("{client_nonce}{server_nonce}");
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64.encode(&credential.salt),
            credential.iterations
        );
        let response = server_first.clone().into_bytes();
        self.state = State::ReceiveClientFinal {
            user,
            credential,
            client_first_bare: bare.to_string(),
            server_first,
            nonce,
        };
        Ok(Step::Continue(response))
    }

    fn client_final(&mut self, message: &str) -> Result<Step, SaslFailure> {
        let State::ReceiveClientFinal {
            user,
            credential,
            client_first_bare,
            server_first,
            nonce,
        } = std::mem::replace(&mut self.state, State::Complete)
        else {
            return Err(self.invalid("Unexpected challenge in Sasl server state"));
        };
        let invalid_format = || {
            self.invalid(&format!(
                "Authentication failed: Invalid client final message: {message}"
            ))
        };
        let (without_proof, proof) = message.rsplit_once(",p=").ok_or_else(invalid_format)?;
        let mut parts = without_proof.split(',');
        let binding = parts.next().and_then(|c| c.strip_prefix("c="));
        let client_nonce = parts.next().and_then(|r| r.strip_prefix("r="));
        let (Some(_binding), Some(client_nonce)) = (binding, client_nonce) else {
            return Err(invalid_format());
        };
        if client_nonce != nonce {
            return Err(self.invalid("Invalid client nonce in the final client message."));
        }
        let proof = BASE64.decode(proof).map_err(|_| invalid_format())?;
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = hmac(
            self.mechanism,
            &credential.stored_key,
            auth_message.as_bytes(),
        );
        if proof.len() != signature.len() {
            return Err(self.invalid("Invalid client credentials"));
        }
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
        let computed = hash(self.mechanism, &client_key);
        if !bool::from(computed.ct_eq(&credential.stored_key)) {
            return Err(self.invalid("Invalid client credentials"));
        }
        let server_signature = hmac(
            self.mechanism,
            &credential.server_key,
            auth_message.as_bytes(),
        );
        Ok(Step::Complete {
            response: format!("v={}", BASE64.encode(server_signature)).into_bytes(),
            principal: KafkaPrincipal::user(user),
        })
    }
}

impl SaslServer for ScramServer {
    fn evaluate(&mut self, token: &[u8]) -> Result<Step, SaslFailure> {
        let outcome = match std::str::from_utf8(token) {
            Err(_) => Err(self.invalid("the SCRAM message is not UTF-8")),
            Ok(message) => match self.state {
                State::ReceiveClientFirst => self.client_first(message),
                State::ReceiveClientFinal { .. } => self.client_final(message),
                State::Complete => Err(self.invalid("Authentication exchange has completed")),
                State::Failed => Err(self.invalid("the exchange has already failed")),
            },
        };
        if outcome.is_err() {
            self.state = State::Failed;
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    struct Users(Vec<(String, ScramMechanism, ScramCredential)>);

    impl CredentialStore for Users {
        fn scram_credential(&self, m: ScramMechanism, user: &str) -> Option<ScramCredential> {
            self.0
                .iter()
                .find(|(u, mm, _)| u == user && *mm == m)
                .map(|(_, _, c)| c.clone())
        }
    }

    /// RFC 7677's SCRAM-SHA-256 example, with the server nonce it used.
    #[test]
    fn rfc_7677_example_proof_verifies() {
        let m = ScramMechanism::Sha256;
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = salted_password(m, b"pencil", &salt, 4096);
        let credential = credential_from_salted(m, &salted, &salt, 4096);
        let client_first_bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let without_proof = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let client_key = hmac(m, &salted, b"Client Key");
        let signature = hmac(m, &credential.stored_key, auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        assert_eq!(
            BASE64.encode(&proof),
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        let server_signature = hmac(m, &credential.server_key, auth.as_bytes());
        assert_eq!(
            BASE64.encode(server_signature),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    fn exchange(password: &str, user: &str) -> Result<Step, SaslFailure> {
        let m = ScramMechanism::Sha512;
        let credential = credential_from_password(m, "secret", 4096);
        let store = Arc::new(Users(vec![("alice".to_string(), m, credential.clone())]));
        let mut server = ScramServer::new(m, store);
        let first = format!("n,,n={user},r=abc");
        let Step::Continue(server_first) = server.evaluate(first.as_bytes())? else {
            panic!("no challenge");
        };
        let server_first = String::from_utf8(server_first).unwrap();
        let nonce = server_first
            .split(',')
            .next()
            .unwrap()
            .strip_prefix("r=")
            .unwrap();
        assert!(nonce.starts_with("abc"));
        let salted = salted_password(m, password.as_bytes(), &credential.salt, 4096);
        let without_proof = format!("c=biws,r={nonce}");
        let auth = format!("n={user},r=abc,{server_first},{without_proof}");
        let client_key = hmac(m, &salted, b"Client Key");
        let stored = hash(m, &client_key);
        let signature = hmac(m, &stored, auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        server.evaluate(format!("{without_proof},p={}", BASE64.encode(proof)).as_bytes())
    }

    #[test]
    fn the_right_password_completes_with_the_server_signature() {
        match exchange("secret", "alice").unwrap() {
            Step::Complete {
                response,
                principal,
            } => {
                assert!(response.starts_with(b"v="));
                assert_eq!(principal, KafkaPrincipal::user("alice"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn wrong_password_unknown_user_and_bad_messages_fail_alike() {
        let generic = "Authentication failed during authentication due to invalid credentials \
                       with SASL mechanism SCRAM-SHA-512";
        assert_eq!(exchange("nope", "alice").unwrap_err().0, generic);
        assert_eq!(exchange("secret", "bob").unwrap_err().0, generic);
        let store = Arc::new(Users(vec![]));
        for bad in [
            "",
            "x",
            "n,,",
            "n,,n=,r=a",
            "p=x,,n=a,r=b",
            "n,,n=a=b,r=c",
            "n,,n=a",
        ] {
            let mut server = ScramServer::new(ScramMechanism::Sha512, store.clone());
            assert_eq!(
                server.evaluate(bad.as_bytes()).unwrap_err().0,
                generic,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn saslnames_unescape() {
        assert_eq!(decode_saslname("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
        assert_eq!(decode_saslname("a=2"), None);
        assert_eq!(decode_saslname("a=41"), None);
    }
}
