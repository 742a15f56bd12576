//! SASL authentication of a connection on a SASL_PLAINTEXT or SASL_SSL listener, as Kafka's
//! `SaslServerAuthenticator`: until the exchange completes, the connection hands every frame
//! here instead of to the handlers.
//!
//! The states, as Kafka's: first an ApiVersions (answered as usual, once) or a
//! SaslHandshake; then a SaslHandshake naming one of `sasl.enabled.mechanisms`
//! (UNSUPPORTED_SASL_MECHANISM otherwise, then the connection is closed); then the
//! mechanism's tokens: in SaslAuthenticate requests after a SaslHandshake v1, or after a
//! v0 handshake as bare size-prefixed frames with no Kafka header, answered the same way.
//! Any other request before the exchange completes closes the connection unanswered
//! ("Unexpected Kafka request of type ... during SASL handshake."), so nothing is served
//! to a client that did not authenticate. A failed exchange is answered with
//! SASL_AUTHENTICATION_FAILED and Kafka's message, after
//! `connection.failed.authentication.delay.ms`, and the connection closed.
//!
//! Re-authentication (KIP-368): a completed exchange whose session has a lifetime (see
//! `security::reauth`) expires; the first request after that closes the connection
//! unanswered, unless it is a SaslHandshake on a connection that authenticated after a
//! SaslHandshake v1, which starts a new exchange (v1 handshake, same mechanism) that must
//! end with the same principal (Kafka's `SaslServerAuthenticator.ReauthInfo`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use gregor_protocol::frame::peek_request_api;
use gregor_protocol::messages::request_header::RequestHeader;
use gregor_protocol::messages::sasl_authenticate_response::SaslAuthenticateResponse;
use gregor_protocol::messages::sasl_handshake_response::SaslHandshakeResponse;
use gregor_protocol::{ApiKey, Decodable, RequestBody, error_code};

use crate::connection::{CloseReason, encode, handle_frame};
use crate::handlers::RequestContext;
use crate::security::sasl::{self, SaslServer, Step};
use crate::security::{KafkaPrincipal, SaslSettings};

/// What the connection does with a frame's outcome during authentication.
pub enum AuthOutcome {
    /// Write these response chunks (if any) and go on.
    Respond(Option<Vec<Bytes>>),
    /// Wait `delay`, write `response` (if any), then close for `reason`.
    Fail {
        /// The last response, e.g. a SaslAuthenticate with SASL_AUTHENTICATION_FAILED.
        response: Option<Vec<Bytes>>,
        /// `connection.failed.authentication.delay.ms` for failed credentials.
        delay: Duration,
        /// Why (logged).
        reason: CloseReason,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    HandshakeOrVersions,
    Handshake,
    Authenticate,
    Complete,
}

/// The authentication state of one connection, and who it is.
pub struct ConnectionAuth {
    /// The connection's principal: from the client certificate on an SSL listener, from the
    /// SASL exchange once it completes, `User:ANONYMOUS` otherwise.
    pub principal: Arc<KafkaPrincipal>,
    sasl: Option<Exchange>,
}

struct Exchange {
    settings: Arc<SaslSettings>,
    state: State,
    mechanism: String,
    server: Option<Box<dyn SaslServer>>,
    /// SaslHandshake v1+: tokens come in SaslAuthenticate requests.
    framed: bool,
    /// When the completed session expires (KIP-368); `None`: never.
    session_expiry: Option<Instant>,
    /// When the last re-authentication started.
    last_reauth_start: Option<Instant>,
    /// The exchange in progress is a re-authentication of this principal and mechanism.
    reauth: Option<(Arc<KafkaPrincipal>, String)>,
    /// A re-authentication asked for another mechanism: the failure its token gets.
    bad_mechanism: Option<String>,
    /// Re-authentications completed on this connection.
    reauthentications: u64,
}

impl Exchange {
    /// Kafka's `KafkaChannel.maybeBeginServerReauthentication`: only a session that
    /// expires can be renewed, and at most once a second; here only on connections that
    /// authenticated with SaslAuthenticate requests (SaslHandshake v1).
    fn may_reauthenticate(&self) -> bool {
        self.state == State::Complete
            && self.framed
            && self.session_expiry.is_some()
            && self
                .last_reauth_start
                .is_none_or(|t| t.elapsed() >= crate::security::reauth::MIN_REAUTH_INTERVAL)
    }

    fn expired(&self) -> bool {
        self.state == State::Complete && self.session_expiry.is_some_and(|t| Instant::now() > t)
    }

    /// Records a completed exchange: the principal (unchanged on re-authentication, as
    /// Kafka insists) and the session's lifetime, returned in ms (0: none).
    fn complete(
        &mut self,
        who: KafkaPrincipal,
        principal: &mut Arc<KafkaPrincipal>,
        peer: std::net::SocketAddr,
    ) -> Result<i64, String> {
        let credential = self
            .server
            .as_ref()
            .and_then(|s| s.credential_lifetime_ms());
        if let Some((previous, _)) = &self.reauth {
            if **previous != who {
                return Err(format!(
                    "Cannot change principals during re-authentication from {}.{}: {}.{}",
                    previous.principal_type, previous.name, who.principal_type, who.name
                ));
            }
        }
        let max = self
            .settings
            .max_reauth_ms
            .get(&self.mechanism)
            .copied()
            .unwrap_or(0);
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let lifetime = crate::security::reauth::session_lifetime_ms(max, credential, now_ms);
        self.session_expiry = lifetime.map(|ms| Instant::now() + Duration::from_millis(ms as u64));
        if self.reauth.take().is_some() {
            self.reauthentications += 1;
            tracing::info!(
                peer = %peer,
                mechanism = self.mechanism,
                "re-authenticated as {who} (re-authentication {} of this connection; session lifetime {} ms)",
                self.reauthentications,
                lifetime.unwrap_or(0)
            );
        } else {
            tracing::debug!(peer = %peer, mechanism = self.mechanism, "authenticated as {who}");
        }
        *principal = Arc::new(who);
        self.state = State::Complete;
        self.server = None;
        Ok(lifetime.unwrap_or(0))
    }
}

impl ConnectionAuth {
    /// A connection that needs no SASL exchange, with this principal.
    pub fn authenticated(principal: KafkaPrincipal) -> ConnectionAuth {
        ConnectionAuth {
            principal: Arc::new(principal),
            sasl: None,
        }
    }

    /// A connection that must complete a SASL exchange with these settings first.
    pub fn sasl(settings: Arc<SaslSettings>) -> ConnectionAuth {
        ConnectionAuth {
            principal: Arc::new(KafkaPrincipal::anonymous()),
            sasl: Some(Exchange {
                settings,
                state: State::HandshakeOrVersions,
                mechanism: String::new(),
                server: None,
                framed: false,
                session_expiry: None,
                last_reauth_start: None,
                reauth: None,
                bad_mechanism: None,
                reauthentications: 0,
            }),
        }
    }

    /// Whether frames must still go to [`ConnectionAuth::on_frame`].
    pub fn authenticating(&self) -> bool {
        self.sasl
            .as_ref()
            .is_some_and(|e| e.state != State::Complete)
    }

    /// Whether `frame` must go to [`ConnectionAuth::on_frame`] rather than the handlers:
    /// while authenticating, once the session expired (KIP-368), and for a SaslHandshake
    /// that starts a re-authentication.
    pub fn intercepts(&self, frame: &Bytes) -> bool {
        let Some(exchange) = self.sasl.as_ref() else {
            return false;
        };
        exchange.state != State::Complete
            || exchange.expired()
            || (exchange.may_reauthenticate() && is_handshake(frame))
    }

    /// Handles one frame (without its size prefix) that [`ConnectionAuth::intercepts`].
    pub async fn on_frame(&mut self, ctx: &RequestContext, frame: Bytes) -> AuthOutcome {
        let Some(exchange) = self.sasl.as_mut() else {
            return AuthOutcome::Respond(None);
        };
        if exchange.state == State::Complete {
            // SocketServer.Processor: a SaslHandshake may begin a re-authentication even
            // after the session expired; anything else on an expired session closes it.
            if exchange.may_reauthenticate() && is_handshake(&frame) {
                exchange.last_reauth_start = Some(Instant::now());
                exchange.reauth = Some((self.principal.clone(), exchange.mechanism.clone()));
                exchange.bad_mechanism = None;
                exchange.state = State::Handshake;
            } else if exchange.expired() {
                return refuse(CloseReason::Authentication(format!(
                    "the SASL session of {} expired without re-authentication (KIP-368, \
                     connections.max.reauth.ms or the credential's lifetime)",
                    self.principal
                )));
            } else {
                return refuse(CloseReason::Authentication(
                    "not authenticating".to_string(),
                ));
            }
        }
        if exchange.state == State::Authenticate && !exchange.framed {
            return raw_token(exchange, &mut self.principal, ctx.peer, frame);
        }
        let Some((key, version)) = peek_request_api(&frame) else {
            return refuse(CloseReason::ShortFrame(frame.len()));
        };
        let Some(api_key) = ApiKey::from_i16(key) else {
            // Kafka takes a first packet that is no Kafka request for a GSSAPI token.
            return refuse(CloseReason::Authentication(
                "first SASL packet is not a Kafka request (GSSAPI is not supported by this \
                 server)"
                    .to_string(),
            ));
        };
        match (exchange.state, api_key) {
            (State::HandshakeOrVersions, ApiKey::ApiVersions) => {
                let served = ctx
                    .served_versions(api_key)
                    .is_some_and(|r| r.contains(version));
                match handle_frame(ctx, frame).await {
                    Ok(response) => {
                        if served {
                            exchange.state = State::Handshake;
                        }
                        AuthOutcome::Respond(response)
                    }
                    Err(reason) => refuse(reason),
                }
            }
            (State::HandshakeOrVersions | State::Handshake, ApiKey::SaslHandshake) => {
                handshake(exchange, ctx, frame, version)
            }
            (State::Authenticate, ApiKey::SaslAuthenticate) => {
                authenticate(exchange, &mut self.principal, ctx, frame, version)
            }
            (State::Authenticate, _) => refuse(CloseReason::Authentication(format!(
                "Unexpected Kafka request of type {} during SASL authentication.",
                api_key.name()
            ))),
            _ => refuse(CloseReason::Authentication(format!(
                "Unexpected Kafka request of type {} during SASL handshake.",
                api_key.name()
            ))),
        }
    }
}

fn is_handshake(frame: &Bytes) -> bool {
    peek_request_api(frame).is_some_and(|(key, _)| key == ApiKey::SaslHandshake as i16)
}

fn refuse(reason: CloseReason) -> AuthOutcome {
    AuthOutcome::Fail {
        response: None,
        delay: Duration::ZERO,
        reason,
    }
}

/// Decodes a request of `api_key` at `version`, with its correlation id.
fn decode(
    ctx: &RequestContext,
    api_key: ApiKey,
    version: i16,
    mut frame: Bytes,
) -> Result<(i32, RequestBody), CloseReason> {
    let header = RequestHeader::decode(&mut frame, api_key.request_header_version(version))
        .map_err(|e| {
            CloseReason::Malformed(format!("{} v{version} header: {e}", api_key.name()))
        })?;
    let served = ctx.served_versions(api_key);
    if !served.is_some_and(|r| r.contains(version)) {
        return Err(CloseReason::UnsupportedVersion(api_key, version, served));
    }
    let body = RequestBody::decode(api_key, version, &mut frame)
        .map_err(|e| CloseReason::Malformed(format!("{} v{version}: {e}", api_key.name())))?;
    Ok((header.correlation_id, body))
}

fn handshake(
    exchange: &mut Exchange,
    ctx: &RequestContext,
    frame: Bytes,
    version: i16,
) -> AuthOutcome {
    let (correlation_id, body) = match decode(ctx, ApiKey::SaslHandshake, version, frame) {
        Ok(decoded) => decoded,
        Err(reason) => return refuse(reason),
    };
    let RequestBody::SaslHandshake(request) = body else {
        return refuse(CloseReason::Malformed("not a SaslHandshake".to_string()));
    };
    let mechanism = request.mechanism.to_string();
    let enabled = &exchange.settings.mechanisms;
    let mut response = SaslHandshakeResponse {
        error_code: error_code::NONE,
        mechanisms: enabled.iter().map(|m| m.as_str().into()).collect(),
    };
    let server = enabled
        .contains(&mechanism)
        .then(|| sasl::new_server(&mechanism, &exchange.settings, ctx.broker.clone()))
        .flatten();
    let Some(server) = server else {
        response.error_code = error_code::UNSUPPORTED_SASL_MECHANISM;
        let encoded = encode(
            ApiKey::SaslHandshake,
            version,
            correlation_id,
            &response.into(),
        )
        .ok();
        return AuthOutcome::Fail {
            response: encoded,
            delay: failed_delay(&exchange.settings),
            reason: CloseReason::Authentication(format!("Unsupported SASL mechanism {mechanism}")),
        };
    };
    if let Some((_, previous)) = &exchange.reauth {
        if version < 1 {
            return refuse(CloseReason::Authentication(format!(
                "re-authentication needs SaslHandshake v1 or later, not v{version}"
            )));
        }
        if *previous != mechanism {
            // Kafka answers the handshake and fails the next token (REAUTH_BAD_MECHANISM).
            exchange.bad_mechanism = Some(format!(
                "SASL mechanism '{mechanism}' requested by client is not supported for \
                 re-authentication of mechanism '{previous}'"
            ));
        }
    }
    if exchange.bad_mechanism.is_none() {
        exchange.mechanism = mechanism;
        exchange.server = Some(server);
    }
    exchange.framed = version >= 1;
    exchange.state = State::Authenticate;
    match encode(
        ApiKey::SaslHandshake,
        version,
        correlation_id,
        &response.into(),
    ) {
        Ok(chunks) => AuthOutcome::Respond(Some(chunks)),
        Err(reason) => refuse(reason),
    }
}

fn failed_delay(settings: &SaslSettings) -> Duration {
    Duration::from_millis(settings.failed_authentication_delay_ms)
}

fn authenticate(
    exchange: &mut Exchange,
    principal: &mut Arc<KafkaPrincipal>,
    ctx: &RequestContext,
    frame: Bytes,
    version: i16,
) -> AuthOutcome {
    let (correlation_id, body) = match decode(ctx, ApiKey::SaslAuthenticate, version, frame) {
        Ok(decoded) => decoded,
        Err(reason) => return refuse(reason),
    };
    let RequestBody::SaslAuthenticate(request) = body else {
        return refuse(CloseReason::Malformed("not a SaslAuthenticate".to_string()));
    };
    let respond = |response: SaslAuthenticateResponse| {
        encode(
            ApiKey::SaslAuthenticate,
            version,
            correlation_id,
            &response.into(),
        )
    };
    let evaluated = match (exchange.bad_mechanism.clone(), exchange.server.as_mut()) {
        (Some(message), _) => Err(sasl::SaslFailure(message)),
        (None, Some(server)) => server.evaluate(&request.auth_bytes),
        (None, None) => {
            return refuse(CloseReason::Authentication(
                "no SASL mechanism chosen".to_string(),
            ));
        }
    };
    let evaluated = evaluated.and_then(|step| match step {
        Step::Continue(bytes) => Ok((bytes, 0)),
        Step::Complete {
            response,
            principal: who,
        } => exchange
            .complete(who, principal, ctx.peer)
            .map(|lifetime| (response, lifetime))
            .map_err(sasl::SaslFailure),
    });
    match evaluated {
        Ok((bytes, session_lifetime_ms)) => {
            match respond(SaslAuthenticateResponse {
                error_code: error_code::NONE,
                error_message: None,
                auth_bytes: Bytes::from(bytes),
                session_lifetime_ms,
                ..Default::default()
            }) {
                Ok(chunks) => AuthOutcome::Respond(Some(chunks)),
                Err(reason) => refuse(reason),
            }
        }
        Err(failure) => AuthOutcome::Fail {
            response: respond(SaslAuthenticateResponse {
                error_code: error_code::SASL_AUTHENTICATION_FAILED,
                error_message: Some(failure.0.as_str().into()),
                ..Default::default()
            })
            .ok(),
            delay: failed_delay(&exchange.settings),
            reason: CloseReason::Authentication(format!(
                "failed authentication with mechanism {}: {}",
                exchange.mechanism, failure.0
            )),
        },
    }
}

/// A token after a v0 handshake: the whole frame is the token, the answer a bare
/// size-prefixed frame; a failure closes the connection unanswered, as Kafka does.
fn raw_token(
    exchange: &mut Exchange,
    principal: &mut Arc<KafkaPrincipal>,
    peer: std::net::SocketAddr,
    frame: Bytes,
) -> AuthOutcome {
    let Some(server) = exchange.server.as_mut() else {
        return refuse(CloseReason::Authentication(
            "no SASL mechanism chosen".to_string(),
        ));
    };
    // The session expires here too (Kafka computes it for v0 clients, which cannot learn
    // it nor re-authenticate).
    let evaluated = server.evaluate(&frame).and_then(|step| match step {
        Step::Continue(bytes) => Ok(bytes),
        Step::Complete {
            response,
            principal: who,
        } => exchange
            .complete(who, principal, peer)
            .map(|_| response)
            .map_err(sasl::SaslFailure),
    });
    match evaluated {
        Ok(bytes) => {
            let mut out = BytesMut::with_capacity(4 + bytes.len());
            out.put_u32(bytes.len() as u32);
            out.put_slice(&bytes);
            AuthOutcome::Respond(Some(vec![out.freeze()]))
        }
        Err(failure) => AuthOutcome::Fail {
            response: None,
            delay: failed_delay(&exchange.settings),
            reason: CloseReason::Authentication(format!(
                "failed authentication with mechanism {}: {}",
                exchange.mechanism, failure.0
            )),
        },
    }
}

/// Serves one accepted TCP connection with its listener's security: the TLS handshake
/// first on an SSL or SASL_SSL listener (the principal of an SSL connection taken from the
/// client certificate through `ssl.principal.mapping.rules`, `User:ANONYMOUS` without
/// one), a SASL exchange first on a SASL listener, then the request loop.
pub async fn serve_secured(
    stream: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    listener: String,
    security: crate::security::ListenerSecurity,
    broker: Arc<crate::broker::Broker>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    use crate::config::SecurityProtocol;
    let auth = || match &security.sasl {
        Some(settings) => ConnectionAuth::sasl(settings.clone()),
        None => ConnectionAuth::authenticated(KafkaPrincipal::anonymous()),
    };
    let Some(acceptor) = security.tls.clone() else {
        return crate::connection::serve_tcp(stream, peer, listener, broker, shutdown, auth())
            .await;
    };
    let _ = stream.set_nodelay(true);
    // The handshake gets the idle limit: a client that never finishes it is closed as an
    // idle connection would be.
    let limit = u64::try_from(broker.config.connections_max_idle_ms)
        .map(Duration::from_millis)
        .unwrap_or(Duration::MAX);
    let tls = tokio::select! {
        tls = tokio::time::timeout(limit, acceptor.accept(stream)) => tls,
        _ = shutdown.changed() => return,
    };
    let tls = match tls {
        Ok(Ok(tls)) => tls,
        Ok(Err(err)) => {
            tracing::info!("TLS handshake with {peer} on {listener} failed: {err}");
            return;
        }
        Err(_) => {
            tracing::info!("TLS handshake with {peer} on {listener} timed out");
            return;
        }
    };
    let mut connection_auth = auth();
    if security.protocol == SecurityProtocol::Ssl {
        let certificate = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
        if let Some(certificate) = certificate {
            // Kafka's DefaultKafkaPrincipalBuilder: the mapped subject of the peer's certificate.
            let name = crate::security::dn::subject_of_der(certificate)
                .and_then(|dn| security.principal_mapper.name(&dn));
            match name {
                Ok(name) => {
                    tracing::debug!("TLS client {peer} on {listener} is User:{name}");
                    connection_auth = ConnectionAuth::authenticated(KafkaPrincipal::user(name));
                }
                Err(err) => {
                    tracing::info!(
                        "closing connection from {peer} on {listener}: no principal for its \
                         certificate: {err}"
                    );
                    return;
                }
            }
        }
    }
    let (reader, writer) = tokio::io::split(tls);
    crate::connection::serve_stream(
        reader,
        writer,
        peer,
        listener,
        broker,
        shutdown,
        connection_auth,
    )
    .await
}
