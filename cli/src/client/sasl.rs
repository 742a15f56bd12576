//! The client side of SASL: SaslHandshake v1, then SaslAuthenticate v1 frames carrying the
//! mechanism's tokens (KIP-152), as Kafka's `SaslClientAuthenticator` sends them, on the
//! connection before its reader and writer tasks start.
//!
//! PLAIN is RFC 4616 (`\0user\0password`). SCRAM is RFC 5802 (RFC 7677 for SHA-256):
//! client-first `n,,n=<user>,r=<nonce>`, the server's salt and iteration count, the
//! client-final message with the proof, and the server's signature checked before the
//! connection is used.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::{Bytes, BytesMut};
use gregor_protocol::frame::{decode_response_header, encode_request};
use gregor_protocol::messages::sasl_authenticate_request::SaslAuthenticateRequest;
use gregor_protocol::messages::sasl_authenticate_response::SaslAuthenticateResponse;
use gregor_protocol::messages::sasl_handshake_request::SaslHandshakeRequest;
use gregor_protocol::messages::sasl_handshake_response::SaslHandshakeResponse;
use gregor_protocol::{Decodable, Request};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::security::{Sasl, SaslMechanism};
use super::{Error, Result, io_reason};

/// SaslHandshake v1: the tokens travel in SaslAuthenticate requests.
const HANDSHAKE_VERSION: i16 = 1;
/// SaslAuthenticate v1 (session lifetime in the response; Kafka 2.2+).
const AUTHENTICATE_VERSION: i16 = 1;
/// Largest SASL response frame accepted.
const MAX_SASL_FRAME: usize = 1 << 20;

/// Authenticates the connection `stream` to `addr` with `sasl`.
pub async fn authenticate<S>(stream: &mut S, addr: &str, sasl: &Sasl, client_id: &str) -> Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut exchange = Exchange {
        stream,
        addr,
        client_id,
        next_id: 1,
    };
    let handshake: SaslHandshakeResponse = exchange
        .call(
            &SaslHandshakeRequest {
                mechanism: sasl.mechanism.name().into(),
            },
            HANDSHAKE_VERSION,
        )
        .await?;
    if handshake.error_code != 0 {
        let enabled: Vec<&str> = handshake.mechanisms.iter().map(|m| &**m).collect();
        return Err(Error::Kafka {
            context: format!("SASL {} to {addr}", sasl.mechanism.name()),
            code: handshake.error_code,
            message: Some(format!("the listener enables {}", enabled.join(", "))),
        });
    }
    match sasl.mechanism {
        SaslMechanism::Plain => {
            let token = format!("\0{}\0{}", sasl.username, sasl.password);
            exchange.token(token.into_bytes().into(), sasl).await?;
            Ok(())
        }
        SaslMechanism::ScramSha256 => scram::<Sha256>(&mut exchange, sasl).await,
        SaslMechanism::ScramSha512 => scram::<Sha512>(&mut exchange, sasl).await,
    }
}

/// The request/response loop of the handshake.
struct Exchange<'a, S> {
    stream: &'a mut S,
    addr: &'a str,
    client_id: &'a str,
    next_id: i32,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Exchange<'_, S> {
    async fn call<R: Request>(&mut self, request: &R, version: i16) -> Result<R::Response>
    where
        R::Response: Decodable,
    {
        let id = self.next_id;
        self.next_id += 1;
        let mut frame = BytesMut::new();
        encode_request(&mut frame, request, version, id, Some(self.client_id))
            .map_err(|e| Error::Protocol(format!("cannot encode {}: {e}", R::API_KEY.name())))?;
        let lost = |e: std::io::Error| Error::Disconnected {
            addr: self.addr.to_string(),
            reason: format!("{} during SASL authentication", io_reason(&e)),
        };
        self.stream.write_all(&frame).await.map_err(lost)?;
        self.stream.flush().await.map_err(lost)?;
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).await.map_err(lost)?;
        let size = i32::from_be_bytes(size);
        let size = usize::try_from(size)
            .ok()
            .filter(|s| (4..=MAX_SASL_FRAME).contains(s))
            .ok_or_else(|| {
                Error::Protocol(format!(
                    "{}: a SASL response frame of {size} bytes",
                    self.addr
                ))
            })?;
        let mut body = BytesMut::zeroed(size);
        self.stream.read_exact(&mut body).await.map_err(lost)?;
        let mut body = body.freeze();
        let header = decode_response_header(&mut body, R::API_KEY, version)
            .map_err(|e| Error::Protocol(format!("{}: {e}", self.addr)))?;
        if header.correlation_id != id {
            return Err(Error::Protocol(format!(
                "{}: SASL response for correlation id {} to request {id}",
                self.addr, header.correlation_id
            )));
        }
        R::Response::decode(&mut body, version)
            .map_err(|e| Error::Protocol(format!("{}: {e}", self.addr)))
    }

    /// Sends one token and returns the server's, failing on an error code.
    async fn token(&mut self, auth_bytes: Bytes, sasl: &Sasl) -> Result<Bytes> {
        let response: SaslAuthenticateResponse = self
            .call(
                &SaslAuthenticateRequest {
                    auth_bytes,
                    ..Default::default()
                },
                AUTHENTICATE_VERSION,
            )
            .await?;
        if response.error_code != 0 {
            return Err(Error::Kafka {
                context: format!(
                    "SASL {} authentication of {:?} at {}",
                    sasl.mechanism.name(),
                    sasl.username,
                    self.addr
                ),
                code: response.error_code,
                message: response.error_message.map(|m| m.to_string()),
            });
        }
        Ok(response.auth_bytes)
    }
}

/// RFC 5802's `saslname`: `=` and `,` escaped.
fn sasl_name(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// The value of attribute `key` (`r`, `s`, `i`, `v`, `e`) in a SCRAM message.
fn attribute(message: &str, key: char) -> Option<&str> {
    message.split(',').find_map(|part| {
        let mut chars = part.chars();
        (chars.next() == Some(key) && chars.next() == Some('=')).then(|| &part[2..])
    })
}

/// The hash a SCRAM mechanism is built on.
trait ScramHash {
    /// HMAC of `data` under `key`.
    fn hmac(key: &[u8], data: &[u8]) -> Vec<u8>;
    /// The hash of `data`.
    fn hash(data: &[u8]) -> Vec<u8>;
    /// RFC 5802's `Hi`: PBKDF2 with this hash's HMAC.
    fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8>;
}

macro_rules! scram_hash {
    ($hash:ty) => {
        impl ScramHash for $hash {
            fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
                let mut mac =
                    Hmac::<$hash>::new_from_slice(key).expect("HMAC takes keys of any length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }

            fn hash(data: &[u8]) -> Vec<u8> {
                <$hash>::digest(data).to_vec()
            }

            fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
                let mut out = vec![0u8; <$hash as Digest>::output_size()];
                pbkdf2::pbkdf2_hmac::<$hash>(password, salt, iterations, &mut out);
                out
            }
        }
    };
}
scram_hash!(Sha256);
scram_hash!(Sha512);

async fn scram<D: ScramHash>(
    exchange: &mut Exchange<'_, impl AsyncRead + AsyncWrite + Unpin>,
    sasl: &Sasl,
) -> Result<()> {
    let addr = exchange.addr;
    let failed = |what: &str| {
        Error::Protocol(format!(
            "SASL {} with {addr}: {what}",
            sasl.mechanism.name()
        ))
    };
    let nonce = BASE64.encode(rand::random::<[u8; 24]>());
    let client_first_bare = format!("n={},r={nonce}", sasl_name(&sasl.username));
    let server_first = exchange
        .token(format!("n,,{client_first_bare}").into_bytes().into(), sasl)
        .await?;
    let server_first = String::from_utf8(server_first.to_vec())
        .map_err(|_| failed("the server-first message is not UTF-8"))?;
    if let Some(error) = attribute(&server_first, 'e') {
        return Err(failed(&format!("the broker refused: {error}")));
    }
    let (Some(server_nonce), Some(salt), Some(iterations)) = (
        attribute(&server_first, 'r'),
        attribute(&server_first, 's'),
        attribute(&server_first, 'i'),
    ) else {
        return Err(failed("the server-first message lacks r, s or i"));
    };
    if !server_nonce.starts_with(&nonce) || server_nonce.len() == nonce.len() {
        return Err(failed("the server's nonce does not extend the client's"));
    }
    let salt = BASE64
        .decode(salt)
        .map_err(|_| failed("the salt is not base64"))?;
    let iterations: u32 = iterations
        .parse()
        .ok()
        .filter(|i| (1..=1_000_000).contains(i))
        .ok_or_else(|| failed("the iteration count is out of range"))?;
    let salted = D::salted_password(sasl.password.as_bytes(), &salt, iterations);
    let client_key = D::hmac(&salted, b"Client Key");
    let stored_key = D::hash(&client_key);
    let without_proof = format!("c=biws,r={server_nonce}");
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let signature = D::hmac(&stored_key, auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(k, s)| k ^ s)
        .collect();
    let server_final = exchange
        .token(
            format!("{without_proof},p={}", BASE64.encode(proof))
                .into_bytes()
                .into(),
            sasl,
        )
        .await?;
    let server_final = String::from_utf8(server_final.to_vec())
        .map_err(|_| failed("the server-final message is not UTF-8"))?;
    if let Some(error) = attribute(&server_final, 'e') {
        return Err(failed(&format!("the broker refused: {error}")));
    }
    let server_key = D::hmac(&salted, b"Server Key");
    let expected = BASE64.encode(D::hmac(&server_key, auth_message.as_bytes()));
    if attribute(&server_final, 'v') != Some(expected.as_str()) {
        return Err(failed(
            "the broker's signature is wrong (not the server that holds the credential)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_and_attributes_found() {
        assert_eq!(sasl_name("a=b,c"), "a=3Db=2Cc");
        let message = "r=abc,s=c2FsdA==,i=4096";
        assert_eq!(attribute(message, 'r'), Some("abc"));
        assert_eq!(attribute(message, 's'), Some("c2FsdA=="));
        assert_eq!(attribute(message, 'i'), Some("4096"));
        assert_eq!(attribute(message, 'v'), None);
    }

    // RFC 7677's SCRAM-SHA-256 example: user "user", password "pencil".
    #[test]
    fn the_rfc_7677_proof() {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = Sha256::salted_password(b"pencil", &salt, 4096);
        let client_key = Sha256::hmac(&salted, b"Client Key");
        let stored_key = Sha256::hash(&client_key);
        let auth = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
                    r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
                    c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let signature = Sha256::hmac(&stored_key, auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        assert_eq!(
            BASE64.encode(proof),
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        let server_key = Sha256::hmac(&salted, b"Server Key");
        assert_eq!(
            BASE64.encode(Sha256::hmac(&server_key, auth.as_bytes())),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }
}
