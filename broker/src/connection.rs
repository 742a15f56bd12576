//! One client connection: read size-prefixed frames, answer each request in order, and
//! close the connection (never the broker) on bad input, with a log line saying why.
//!
//! Frames are read by [`FrameReader`] (`connection_frames.rs`); a frame larger than
//! `socket.request.max.bytes` is refused from its size prefix alone, before anything is
//! allocated for it. Requests go through a [`Pipeline`] (`connection_pipeline.rs`, issue 14):
//! a request starts once the one before passed its order point (its completion, or for a
//! Produce its appends), at most five are in flight, and responses are written in request
//! order, those ready together before one flush.
//!
//! Memory: once a frame's size prefix is read, its size is taken from the broker-wide
//! `queued.max.request.bytes` budget ([`Broker::request_bytes`]) before the rest is read,
//! and given back once its handler returned. A connection whose next request does not
//! fit waits without reading (the client's sends back up in TCP), as Kafka mutes such a
//! channel; the config makes the budget at least `socket.request.max.bytes`, so every
//! acceptable frame fits on its own. Waiters are served in order (tokio's semaphore is
//! fair), so a large request is not starved by a stream of small ones.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use gregor_protocol::frame::peek_request_api;
use gregor_protocol::messages::request_header::RequestHeader;
use gregor_protocol::{ApiKey, ChunkedBuf, Decodable, RequestBody};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, watch};

use crate::connection_frames::FrameReader;
use crate::connection_pipeline::{Event, Pipeline};

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
    /// A request the principal may not make and whose API has no error answer here
    /// (the metadata quorum's RPCs, `connection_quorum.rs`).
    Unauthorized(String),
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
            Self::Unauthorized(err) => write!(f, "not authorized: {err}"),
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

/// Serves a connection over any byte stream (plain TCP, TLS), one request loop for all:
/// requests are read, started as [`Pipeline`] allows and answered in order.
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
    let mut frames = FrameReader::new(broker.config.socket_request_max_bytes);
    let idle = idle_limit(broker.config.connections_max_idle_ms);
    // The budget held for the next frame, once its size is known.
    let mut reserved: Option<OwnedSemaphorePermit> = None;
    // Waiting for that budget (kept across loop turns: the semaphore serves in order).
    let mut waiting: Option<BudgetWait> = None;
    // What the client says of itself in ApiVersions, for the rest of the connection.
    let client_software = Arc::new(std::sync::Mutex::new(ClientSoftware::default()));
    let mut pipeline = Pipeline::new();
    // The client closed its side: answer what is in flight, then close.
    let mut eof = false;
    // Responses written to `writer` and not flushed yet.
    let mut wrote = false;
    loop {
        // Write every response that is ready, in order.
        while let Some(outcome) = pipeline.ready() {
            match respond(&mut writer, outcome, &mut shutdown, peer).await {
                Some(unflushed) => wrote |= unflushed,
                None => return,
            }
        }
        // Start what the pipeline allows of the frames already buffered.
        while !eof && pipeline.may_start() {
            reserve(&broker, &frames, &mut reserved, &mut waiting, peer);
            if waiting.is_some() {
                break;
            }
            // SASL frames (the exchange, a re-authentication, an expired session) wait
            // until nothing is in flight.
            if !pipeline.is_empty()
                && frames
                    .peek_frame_head()
                    .is_some_and(|head| auth.intercepts(&head))
            {
                break;
            }
            let frame = match frames.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(reason) => {
                    let _ = writer.flush().await;
                    return close(peer, reason);
                }
            };
            let intercepted = auth.intercepts(&frame);
            // Held until the handler returns, then back to the budget.
            let held = reserved.take();
            let ctx = RequestContext {
                broker: broker.clone(),
                peer,
                listener: listener.clone(),
                client_software: client_software.clone(),
                principal: auth.principal.clone(),
            };
            if !intercepted {
                pipeline.start(ctx, frame, held);
                // Run it now: most requests finish at once, and the frames behind it are
                // answered in this same pass, before one flush.
                while let Some(outcome) = pipeline.ready() {
                    match respond(&mut writer, outcome, &mut shutdown, peer).await {
                        Some(unflushed) => wrote |= unflushed,
                        None => return,
                    }
                }
                continue;
            }
            // SASL first: nothing reaches the handlers before the exchange completes
            // (nor after its session expired, KIP-368).
            match auth.on_frame(&ctx, frame).await {
                AuthOutcome::Respond(response) => {
                    drop(held);
                    for chunk in response.into_iter().flatten() {
                        if writer.write_all(&chunk).await.is_err() {
                            return;
                        }
                        wrote = true;
                    }
                }
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
        }
        if wrote {
            if writer.flush().await.is_err() {
                return;
            }
            wrote = false;
        }
        if eof && pipeline.is_empty() {
            return;
        }
        // Read only while no whole frame waits and the next frame's budget is held (the
        // budget is taken from its size prefix before the rest is read): a connection that
        // may not start its next request leaves the rest in the socket.
        reserve(&broker, &frames, &mut reserved, &mut waiting, peer);
        let want_read = !eof && waiting.is_none() && !frames.has_frame();
        let event = tokio::select! {
            event = pipeline.event() => Wake::Pipeline(event),
            permit = async {
                match waiting.as_mut() {
                    Some(wait) => wait.await.ok(),
                    None => std::future::pending().await,
                }
            }, if waiting.is_some() => Wake::Budget(permit),
            read = frames.read(&mut reader), if want_read => Wake::Read(read),
            // Only with no request in flight; any bytes received start it again.
            _ = idle_expired(idle), if pipeline.is_empty() => {
                tracing::debug!(
                    "closing connection from {peer}: idle for more than {} ms (connections.max.idle.ms)",
                    broker.config.connections_max_idle_ms
                );
                return;
            }
            _ = shutdown.changed() => return,
        };
        match event {
            Wake::Pipeline(Event::Done(outcome)) => {
                // Flushed before the next wait, with whatever else is ready by then.
                match respond(&mut writer, outcome, &mut shutdown, peer).await {
                    Some(unflushed) => wrote |= unflushed,
                    None => return,
                }
            }
            Wake::Pipeline(Event::Passed) => {}
            Wake::Budget(permit) => {
                waiting = None;
                reserved = permit;
            }
            Wake::Read(read) => match read {
                Ok(0) if frames.is_empty() => {
                    tracing::debug!("connection from {peer} closed by the client");
                    eof = true;
                }
                Ok(0) => {
                    tracing::info!(
                        "connection from {peer} closed by the client in the middle of a frame ({} bytes unread)",
                        frames.buffered()
                    );
                    return;
                }
                Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => {
                    // TLS: the client closed without close_notify, as most Kafka clients do.
                    tracing::debug!("connection from {peer} closed by the client: {err}");
                    eof = true;
                }
                Err(err) => {
                    tracing::info!("connection from {peer} failed: {err}");
                    return;
                }
                Ok(_) => {}
            },
        }
    }
}

/// Takes the size of the next frame, once its size prefix is read, from the broker's
/// request budget (`queued.max.request.bytes`), or starts waiting for it in `waiting`.
fn reserve(
    broker: &Broker,
    frames: &FrameReader,
    reserved: &mut Option<OwnedSemaphorePermit>,
    waiting: &mut Option<BudgetWait>,
    peer: SocketAddr,
) {
    if reserved.is_some() || waiting.is_some() {
        return;
    }
    let (Some(budget), Some(size)) = (broker.request_bytes.as_ref(), frames.next_size()) else {
        return;
    };
    match budget.clone().try_acquire_many_owned(size) {
        Ok(permit) => *reserved = Some(permit),
        Err(_) => {
            tracing::debug!(
                "request of {size} bytes from {peer} waits for queued.max.request.bytes ({} bytes free)",
                budget.available_permits()
            );
            // The semaphore is never closed.
            *waiting = Some(Box::pin(budget.clone().acquire_many_owned(size)));
        }
    }
}

/// A wait for `queued.max.request.bytes`.
type BudgetWait = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = Result<OwnedSemaphorePermit, tokio::sync::AcquireError>>
            + Send,
    >,
>;

/// What woke the connection up.
enum Wake {
    Pipeline(Event),
    Budget(Option<OwnedSemaphorePermit>),
    Read(std::io::Result<usize>),
}

/// Writes one request's response and applies its throttle (KIP-219: the response waits,
/// or the connection reads no further request for the throttle time after sending it).
/// `Some(true)` when bytes were written and not flushed yet, `None` when the connection
/// closes.
async fn respond<W: AsyncWrite + Unpin>(
    writer: &mut BufWriter<W>,
    outcome: crate::connection_pipeline::Outcome,
    shutdown: &mut watch::Receiver<bool>,
    peer: SocketAddr,
) -> Option<bool> {
    match outcome {
        Ok((chunks, throttle)) => {
            if throttle.before_response() {
                // Everything before it goes out first, as it would have serially.
                if writer.flush().await.is_err() || !throttle.wait(shutdown).await {
                    return None;
                }
            }
            let mut wrote = false;
            for chunk in chunks.into_iter().flatten() {
                if writer.write_all(&chunk).await.is_err() {
                    return None;
                }
                wrote = true;
            }
            if throttle.after_response() {
                if writer.flush().await.is_err() || !throttle.wait(shutdown).await {
                    return None;
                }
                wrote = false;
            }
            Some(wrote)
        }
        Err(reason) => {
            let _ = writer.flush().await;
            close(peer, reason);
            None
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

fn close(peer: SocketAddr, reason: CloseReason) {
    match reason {
        CloseReason::Encode(_) => tracing::error!("closing connection from {peer}: {reason}"),
        CloseReason::Authentication(_) => {
            tracing::info!("closing connection from {peer}: {reason}")
        }
        _ => tracing::warn!("closing connection from {peer}: {reason}"),
    }
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
    // The frame as received, for a request forwarded to the controller (cheap: shared).
    let raw = frame.clone();
    let (key, version) = peek_request_api(&frame).ok_or(CloseReason::ShortFrame(frame.len()))?;
    // A cluster controller's quorum RPCs on the controller listener (`connection_quorum.rs`).
    if let Some(answer) = crate::connection_quorum::route(ctx, key, &frame).await {
        return answer.map(|chunks| (chunks, Throttle::NONE));
    }
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
    // In a cluster the admin APIs Kafka forwards go to the active controller (KIP-590);
    // their responses are charged to the quotas as any other.
    let dispatched = std::pin::pin!(async {
        if handlers::forwarding::should_forward(ctx, api_key) {
            match handlers::forwarding::forward(ctx, &header, api_key, version, raw, &body).await {
                handlers::forwarding::Forwarded::Answer(response) => return Ok(Some(*response)),
                handlers::forwarding::Forwarded::Close(reason) => return Err(reason),
                handlers::forwarding::Forwarded::No => {}
            }
        }
        Ok(handlers::dispatch(ctx, &header, version, body).await)
    });
    let (outcome, handler_time) = crate::quotas::PollTimed::new(dispatched).await;
    let mut response = match outcome {
        Ok(response) => response,
        Err(reason) => {
            tracing::info!(peer = %ctx.peer, "{reason}");
            return Err(CloseReason::UnsupportedVersion(api_key, version, None));
        }
    };
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
    // One allocation at the size the encoder computes (issue 14), except where most of the
    // response is records that go out as shared chunks of their own.
    let limit = if api_key == ApiKey::Fetch {
        4096
    } else {
        usize::MAX
    };
    let mut out = ChunkedBuf::new(SHARED_CHUNK_MIN).with_reserve_limit(limit);
    gregor_protocol::frame::encode_response(&mut out, api_key, version, correlation_id, body)
        .map_err(|e| CloseReason::Encode(format!("{} v{version}: {e}", api_key.name())))?;
    Ok(out.into_chunks())
}
