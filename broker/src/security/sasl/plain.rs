//! SASL/PLAIN (RFC 4616), as Kafka's `PlainSaslServer` with `PlainServerCallbackHandler`:
//! one message `[authzid] NUL authcid NUL passwd`, checked against the `user_<name>`
//! options of the listener's PLAIN JAAS configuration in constant time.

use std::collections::BTreeMap;

use subtle::ConstantTimeEq;

use super::{SaslFailure, SaslServer, Step};
use crate::security::KafkaPrincipal;

/// The PLAIN server of one connection.
pub struct PlainServer {
    users: BTreeMap<String, String>,
    complete: bool,
}

impl PlainServer {
    /// A server checking against `users` (name to password).
    pub fn new(users: BTreeMap<String, String>) -> PlainServer {
        PlainServer {
            users,
            complete: false,
        }
    }
}

fn fail(message: &str) -> SaslFailure {
    SaslFailure(message.to_string())
}

impl SaslServer for PlainServer {
    fn evaluate(&mut self, token: &[u8]) -> Result<Step, SaslFailure> {
        if self.complete {
            return Err(fail("Authentication exchange has completed"));
        }
        // PlainSaslServer.extractTokens: up to four NUL-separated parts, exactly three wanted.
        let text = String::from_utf8_lossy(token);
        let parts: Vec<&str> = text.splitn(4, '\0').collect();
        if parts.len() != 3 {
            return Err(SaslFailure(format!(
                "Invalid SASL/PLAIN response: expected 3 tokens, got {}",
                parts.len()
            )));
        }
        let (authzid, user, password) = (parts[0], parts[1], parts[2]);
        if user.is_empty() {
            return Err(fail("Authentication failed: username not specified"));
        }
        if password.is_empty() {
            return Err(fail("Authentication failed: password not specified"));
        }
        let matches = self
            .users
            .get(user)
            .is_some_and(|expected| bool::from(expected.as_bytes().ct_eq(password.as_bytes())));
        if !matches {
            return Err(fail("Authentication failed: Invalid username or password"));
        }
        if !authzid.is_empty() && authzid != user {
            return Err(fail(
                "Authentication failed: Client requested an authorization id that is different from username",
            ));
        }
        self.complete = true;
        Ok(Step::Complete {
            response: Vec::new(),
            principal: KafkaPrincipal::user(user),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> PlainServer {
        PlainServer::new(BTreeMap::from([(
            "alice".to_string(),
            "secret".to_string(),
        )]))
    }

    #[test]
    fn right_password_authenticates() {
        assert_eq!(
            server().evaluate(b"\0alice\0secret").unwrap(),
            Step::Complete {
                response: vec![],
                principal: KafkaPrincipal::user("alice")
            }
        );
        assert!(server().evaluate(b"alice\0alice\0secret").is_ok());
    }

    #[test]
    fn failures_carry_kafka_messages() {
        let msg = |t: &[u8]| server().evaluate(t).unwrap_err().0;
        assert_eq!(
            msg(b"\0alice\0wrong"),
            "Authentication failed: Invalid username or password"
        );
        assert_eq!(
            msg(b"\0bob\0secret"),
            "Authentication failed: Invalid username or password"
        );
        assert_eq!(
            msg(b"\0\0secret"),
            "Authentication failed: username not specified"
        );
        assert_eq!(
            msg(b"\0alice\0"),
            "Authentication failed: password not specified"
        );
        assert_eq!(
            msg(b"alice"),
            "Invalid SASL/PLAIN response: expected 3 tokens, got 1"
        );
        assert_eq!(
            msg(b"a\0b\0c\0d"),
            "Invalid SASL/PLAIN response: expected 3 tokens, got 4"
        );
        assert!(msg(b"bob\0alice\0secret").contains("authorization id"));
    }
}
