//! One client connection: read size-prefixed frames, answer each request in order, and
//! close the connection (never the broker) on bad input, with a log line saying why.
//!
//! Frames are read into one growing buffer; a frame larger than `socket.request.max.bytes`
//! is refused from its size prefix alone, before anything is allocated for it. Requests are
//! processed one at a time, in order, as Kafka does; pipelined requests wait in the read
//! buffer and their responses are written together before one flush.
//!
//! Memory: once a frame's size prefix is read, its size is taken from the broker-wide
//! `queued.max.request.bytes` budget ([`Broker::request_bytes`]) before the rest is read,
//! and given back once its response is written. A connection whose next request does not
//! fit waits without reading (the client's sends back up in TCP), as Kafka mutes such a
//! channel; the config makes the budget at least `socket.request.max.bytes`, so every
//! acceptable frame fits on its own. Waiters are served in order (tokio's semaphore is
//! fair), so a large request is not starved by a stream of small ones.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use gregor_protocol::frame::peek_request_api;
use gregor_protocol::messages::request_header::RequestHeader;
use gregor_protocol::{ApiKey, ChunkedBuf, Decodable, RequestBody};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, watch};

use crate::broker::Broker;
use crate::connection_auth::{AuthOutcome, ConnectionAuth};
use crate::handlers::{self, ClientSoftware, RequestContext};
use crate::quotas::Throttle;

/// Values of at least this size go to the socket from their own buffer, uncopied.
const SHARED_CHUNK_MIN: usize = 16 * 1024;

/// Why a connection was closed by the broker.
#[derive(Debug)]
pub enum CloseReason {
    /// The size prefix is negative or above `socket.request.max.bytes`.
    FrameTooLarge(i32, i32),
    /// The frame is too short to hold a request header.
    ShortFrame(usize),
    /// The API key is not defined.
    UnknownApiKey(i16),
    /// This broker does not serve this version of the API (with what it serves of it).
    UnsupportedVersion(ApiKey, i16, Option<gregor_protocol::VersionRange>),
    /// The header or body did not decode.
    Malformed(String),
    /// The response could not be encoded (a broker bug, logged loudly).
    Encode(String),
    /// SASL authentication failed, or a request came before it completed.
    Authentication(String),
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::FrameTooLarge(size, max) => {
                write!(
                    f,
                    "frame size {size} is outside 0..={max} (socket.request.max.bytes)"
                )
            }
            Self::ShortFrame(len) => {
                write!(f, "frame of {len} bytes is too short for a request header")
            }
            Self::UnknownApiKey(key) => write!(f, "unknown API key {key}"),
            Self::UnsupportedVersion(api, version, range) => match range {
                Some(r) => write!(
                    f,
                    "unsupported {} version {version} (this broker serves {}-{})",
                    api.name(),
                    r.min,
                    r.max
                ),
                None => write!(f, "{} is not served by this broker", api.name()),
            },
            Self::Malformed(err) => write!(f, "malformed request: {err}"),
            Self::Encode(err) => write!(f, "could not encode the response: {err}"),
            Self::Authentication(err) => write!(f, "authentication: {err}"),
        }
    }
}

/// Serves one plain TCP connection (a PLAINTEXT listener, `User:ANONYMOUS`) until the
/// client closes it, it misbehaves, or shutdown.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    listener: String,
    broker: Arc<Broker>,
    shutdown: watch::Receiver<bool>,
) {
    let auth = ConnectionAuth::authenticated(crate::security::KafkaPrincipal::anonymous());
    serve_tcp(stream, peer, listener, broker, shutdown, auth).await
}

/// Serves a plain TCP connection with `auth` (a SASL exchange to complete first, or the
/// principal).
pub async fn serve_tcp(
    stream: TcpStream,
    peer: SocketAddr,
    listener: String,
    broker: Arc<Broker>,
    shutdown: watch::Receiver<bool>,
    auth: ConnectionAuth,
) {
    let _ = stream.set_nodelay(true);
    let (reader, writer) = stream.into_split();
    serve_stream(reader, writer, peer, listener, broker, shutdown, auth).await
}

/// Serves a connection over any byte stream (plain TCP, TLS), one request loop for all.
pub async fn serve_stream<R, W>(
    mut reader: R,
    writer: W,
    peer: SocketAddr,
    listener: String,
    broker: Arc<Broker>,
    mut shutdown: watch::Receiver<bool>,
    mut auth: ConnectionAuth,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut writer = BufWriter::with_capacity(64 * 1024, writer);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let max = broker.config.socket_request_max_bytes;
    let idle = idle_limit(broker.config.connections_max_idle_ms);
    // The budget held for the frame at the front of `buf`, once its size is known.
    let mut reserved: Option<OwnedSemaphorePermit> = None;
    // What the client says of itself in ApiVersions, for the rest of the connection.
    let client_software = Arc::new(std::sync::Mutex::new(ClientSoftware::default()));
    loop {
        // Answer every complete frame already buffered, then flush once.
        let mut wrote = false;
        loop {
            if reserved.is_none() {
                // Waiting for budget must not hold up shutdown either.
                tokio::select! {
                    permit = reserve(&broker, &buf, max, peer) => reserved = permit,
                    _ = shutdown.changed() => return,
                }
            }
            let frame = match next_frame(&mut buf, max) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(reason) => return close(peer, reason),
            };
            // Held until the response is written, then back to the budget.
            let _held = reserved.take();
            let ctx = RequestContext {
                broker: broker.clone(),
                peer,
                listener: listener.clone(),
                client_software: client_software.clone(),
                principal: auth.principal.clone(),
            };
            let outcome = if auth.intercepts(&frame) {
                // SASL first: nothing reaches the handlers before the exchange completes
                // (nor after its session expired, KIP-368).
                match auth.on_frame(&ctx, frame).await {
                    AuthOutcome::Respond(response) => Ok((response, Throttle::NONE)),
                    AuthOutcome::Fail {
                        response,
                        delay,
                        reason,
                    } => {
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {}
                            _ = shutdown.changed() => return,
                        }
                        for chunk in response.into_iter().flatten() {
                            if writer.write_all(&chunk).await.is_err() {
                                return;
                            }
                        }
                        let _ = writer.flush().await;
                        // Give the client up to a second to read the failure response and
                        // close its end first: a FIN right behind the response makes some
                        // clients (kafka-python 3) drop the response unread, and closing
                        // with bytes unread here would reset the connection.
                        let mut sink = [0u8; 512];
                        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
                            while matches!(reader.read(&mut sink).await, Ok(n) if n > 0) {}
                        })
                        .await;
                        let _ = writer.shutdown().await;
                        return close(peer, reason);
                    }
                }
            } else {
                // A long-polling fetch must not hold up shutdown.
                tokio::select! {
                    outcome = handle_frame_throttled(&ctx, frame) => outcome,
                    _ = shutdown.changed() => return,
                }
            };
            match outcome {
                Ok((chunks, throttle)) => {
                    // Quotas (KIP-219): the response waits, or the connection reads no
                    // further request for the throttle time after sending it.
                    drop(_held);
                    if throttle.before_response() && !throttle.wait(&mut shutdown).await {
                        return;
                    }
                    for chunk in chunks.into_iter().flatten() {
                        if writer.write_all(&chunk).await.is_err() {
                            return;
                        }
                        wrote = true;
                    }
                    if throttle.after_response() {
                        if writer.flush().await.is_err() || !throttle.wait(&mut shutdown).await {
                            return;
                        }
                        wrote = false;
                    }
                }
                Err(reason) => {
                    let _ = writer.flush().await;
                    return close(peer, reason);
                }
            }
        }
        if wrote && writer.flush().await.is_err() {
            return;
        }
        tokio::select! {
            read = reader.read_buf(&mut buf) => match read {
                Ok(0) if buf.is_empty() => {
                    tracing::debug!("connection from {peer} closed by the client");
                    return;
                }
                Ok(0) => {
                    tracing::info!(
                        "connection from {peer} closed by the client in the middle of a frame ({} bytes unread)",
                        buf.len()
                    );
                    return;
                }
                Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => {
                    // TLS: the client closed without close_notify, as most Kafka clients do.
                    tracing::debug!("connection from {peer} closed by the client: {err}");
                    return;
                }
                Err(err) => {
                    tracing::info!("connection from {peer} failed: {err}");
                    return;
                }
                Ok(_) => {}
            },
            // Only reached with no request in flight; any bytes received start it again.
            _ = idle_expired(idle) => {
                tracing::debug!(
                    "closing connection from {peer}: idle for more than {} ms (connections.max.idle.ms)",
                    broker.config.connections_max_idle_ms
                );
                return;
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// `connections.max.idle.ms` as a duration; `None` (never) when negative, as in Kafka's
/// `Selector`.
fn idle_limit(ms: i64) -> Option<std::time::Duration> {
    u64::try_from(ms).ok().map(std::time::Duration::from_millis)
}

/// Completes once `idle` has passed (never for `None`).
async fn idle_expired(idle: Option<std::time::Duration>) {
    match idle {
        Some(idle) => tokio::time::sleep(idle).await,
        None => std::future::pending().await,
    }
}

/// Takes the size of the frame whose size prefix starts `buf` from the broker's request
/// budget, waiting until it fits. `None` when there is no budget, no complete size prefix
/// yet, or a size that [`next_frame`] refuses.
async fn reserve(
    broker: &Broker,
    buf: &BytesMut,
    max: i32,
    peer: SocketAddr,
) -> Option<OwnedSemaphorePermit> {
    let budget = broker.request_bytes.as_ref()?;
    let prefix = buf.get(..4)?;
    let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    let size = u32::try_from(size).ok().filter(|&s| s <= max as u32)?;
    if let Ok(permit) = budget.clone().try_acquire_many_owned(size) {
        return Some(permit);
    }
    tracing::debug!(
        "request of {size} bytes from {peer} waits for queued.max.request.bytes ({} bytes free)",
        budget.available_permits()
    );
    // The semaphore is never closed.
    budget.clone().acquire_many_owned(size).await.ok()
}

fn close(peer: SocketAddr, reason: CloseReason) {
    match reason {
        CloseReason::Encode(_) => tracing::error!("closing connection from {peer}: {reason}"),
        CloseReason::Authentication(_) => {
            tracing::info!("closing connection from {peer}: {reason}")
        }
        _ => tracing::warn!("closing connection from {peer}: {reason}"),
    }
}

/// Splits the next complete frame (without its size prefix) off the buffer, reserving room
/// for a partial one only after its size has been checked.
fn next_frame(buf: &mut BytesMut, max: i32) -> Result<Option<Bytes>, CloseReason> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if size < 0 || size > max {
        return Err(CloseReason::FrameTooLarge(size, max));
    }
    let total = 4 + size as usize;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    let mut frame = buf.split_to(total);
    frame.advance(4);
    Ok(Some(frame.freeze()))
}

/// Decodes one request, runs its handler and encodes the response frame as chunks.
/// `Ok(None)` means no response is due (a Produce with acks=0).
pub(crate) async fn handle_frame(
    ctx: &RequestContext,
    frame: Bytes,
) -> Result<Option<Vec<Bytes>>, CloseReason> {
    Ok(handle_frame_throttled(ctx, frame).await?.0)
}

/// [`handle_frame`], with the response charged to the client's quotas (`quotas/`) and the
/// throttle the connection applies.
pub(crate) async fn handle_frame_throttled(
    ctx: &RequestContext,
    mut frame: Bytes,
) -> Result<(Option<Vec<Bytes>>, Throttle), CloseReason> {
    let request_size = frame.len();
    let (key, version) = peek_request_api(&frame).ok_or(CloseReason::ShortFrame(frame.len()))?;
    let api_key = ApiKey::from_i16(key).ok_or(CloseReason::UnknownApiKey(key))?;
    let header = RequestHeader::decode(&mut frame, api_key.request_header_version(version))
        .map_err(|e| {
            CloseReason::Malformed(format!("{} v{version} header: {e}", api_key.name()))
        })?;
    let correlation_id = header.correlation_id;
    // With `legacy.api.versions.enable=false` a version Kafka 4 dropped is outside this
    // range, and refused here as Kafka 4's SocketServer refuses a version it does not
    // enable (`InvalidRequestException`, the connection closed).
    let served = ctx.served_versions(api_key);
    if !served.is_some_and(|r| r.contains(version)) {
        if api_key == ApiKey::ApiVersions {
            // KIP-511: UNSUPPORTED_VERSION in a v0 body with our ApiVersions range.
            let body = handlers::api_versions::unsupported_version_response();
            return encode(api_key, 0, correlation_id, &body.into())
                .map(|chunks| (Some(chunks), Throttle::NONE));
        }
        return Err(CloseReason::UnsupportedVersion(api_key, version, served));
    }
    let body = RequestBody::decode(api_key, version, &mut frame)
        .map_err(|e| CloseReason::Malformed(format!("{} v{version}: {e}", api_key.name())))?;
    tracing::debug!(peer = %ctx.peer, api = api_key.name(), version, correlation_id, client = ?header.client_id, "request");
    let dispatched = std::pin::pin!(handlers::dispatch(ctx, &header, version, body));
    let (mut response, handler_time) = crate::quotas::PollTimed::new(dispatched).await;
    let throttle = crate::quotas::throttle(
        ctx,
        &header,
        api_key,
        version,
        request_size,
        handler_time,
        response.as_mut(),
    );
    match response {
        Some(response) => encode(api_key, version, correlation_id, &response)
            .map(|chunks| (Some(chunks), throttle)),
        None => Ok((None, throttle)),
    }
}

pub(crate) fn encode(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &gregor_protocol::ResponseBody,
) -> Result<Vec<Bytes>, CloseReason> {
    let mut out = ChunkedBuf::new(SHARED_CHUNK_MIN);
    gregor_protocol::frame::encode_response(&mut out, api_key, version, correlation_id, body)
        .map_err(|e| CloseReason::Encode(format!("{} v{version}: {e}", api_key.name())))?;
    Ok(out.into_chunks())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_split_only_when_complete() {
        let mut buf = BytesMut::from(&[0, 0, 0, 3, 1, 2][..]);
        assert!(next_frame(&mut buf, 100).unwrap().is_none());
        buf.extend_from_slice(&[3, 0, 0]);
        assert_eq!(&next_frame(&mut buf, 100).unwrap().unwrap()[..], &[1, 2, 3]);
        assert_eq!(buf.len(), 2);
    }

    #[test]
    fn oversized_and_negative_sizes_are_refused_before_allocating() {
        let mut buf = BytesMut::from(&[0x7f, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            next_frame(&mut buf, 1024),
            Err(CloseReason::FrameTooLarge(_, 1024))
        ));
        assert!(buf.capacity() < 1024);
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            next_frame(&mut buf, 1024),
            Err(CloseReason::FrameTooLarge(-1, _))
        ));
    }
}
