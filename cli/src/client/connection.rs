//! One TCP connection to a broker.
//!
//! A writer task owns the socket's write half and a reader task its read half. A request
//! is encoded by the caller (with the next correlation id), registered as pending, and
//! queued for the writer; the reader matches each response frame to its pending request
//! by correlation id and hands the body over. Requests are pipelined: up to
//! `max_in_flight` may be outstanding at once (a semaphore; a caller waits for a free slot,
//! which is the back-pressure the load generator relies on). The writer flushes once per
//! burst of queued frames, so pipelined requests share system calls.
//!
//! Every wait is bounded: the connect by `connect_timeout`, each response by
//! `request_timeout`. A broken connection fails every pending request with the reason.

use std::collections::{HashMap, HashSet};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use gregor_protocol::frame::{decode_response_header, encode_request};
use gregor_protocol::messages::api_versions_request::ApiVersionsRequest;
use gregor_protocol::messages::api_versions_response::ApiVersionsResponse;
use gregor_protocol::{ApiKey, Decodable, Request};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::negotiate::BrokerVersions;
use super::security::Security;
use super::{Error, Result, io_reason, sasl};

/// The read half of a connection (TCP, or TLS over TCP).
type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;
/// The write half of a connection.
type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

/// Largest response frame accepted (a fetch response is bounded by the request's max
/// bytes; this only guards against a garbage size prefix).
const MAX_FRAME: usize = 1 << 30;

/// The UNSUPPORTED_VERSION error code, answered to an ApiVersions version the broker does
/// not know, with a v0 body listing its versions (KIP-511).
const UNSUPPORTED_VERSION: i16 = 35;

/// How to connect and how long to wait.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// The `client.id` sent in every request header.
    pub client_id: String,
    /// Longest wait for the TCP connection.
    pub connect_timeout: Duration,
    /// Longest wait for each response (a long-polling fetch adds its own wait to this).
    pub request_timeout: Duration,
    /// Most requests outstanding on the connection at once.
    pub max_in_flight: usize,
    /// TLS and SASL (`--command-config`); PLAINTEXT by default.
    pub security: Security,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            client_id: "gregorctl".into(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_in_flight: 5,
            security: Security::default(),
        }
    }
}

/// A request waiting for its response.
struct Waiter {
    api: ApiKey,
    version: i16,
    /// The body after the response header, and the whole frame's size on the wire.
    reply: oneshot::Sender<Result<(Bytes, usize)>>,
    /// The in-flight slot, freed with the waiter.
    _permit: OwnedSemaphorePermit,
}

#[derive(Default)]
struct Pending {
    waiters: HashMap<i32, Waiter>,
    /// Requests whose caller gave up (timed out): their responses are dropped.
    abandoned: HashSet<i32>,
    /// Why the connection is unusable, once it is.
    closed: Option<String>,
}

/// State shared by the handle and both tasks.
struct Shared {
    addr: String,
    pending: Mutex<Pending>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding the lock cannot leave `Pending` inconsistent.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn disconnected(&self, reason: &str) -> Error {
        Error::Disconnected {
            addr: self.addr.clone(),
            reason: reason.to_string(),
        }
    }

    /// Marks the connection closed and fails everything pending.
    fn fail_all(&self, reason: String) {
        let waiters: Vec<Waiter> = {
            let mut pending = self.lock();
            pending.closed.get_or_insert(reason.clone());
            pending.waiters.drain().map(|(_, w)| w).collect()
        };
        for waiter in waiters {
            let _ = waiter.reply.send(Err(self.disconnected(&reason)));
        }
    }
}

/// A frame for the writer.
struct Outbound {
    frame: Bytes,
    /// Told once the frame is on the socket (requests without a response).
    written: Option<oneshot::Sender<()>>,
    /// The in-flight slot of a request without a response, freed once written.
    _permit: Option<OwnedSemaphorePermit>,
}

/// A connection to one broker, after version negotiation. Cheap to share behind an `Arc`;
/// every method takes `&self`, so requests from many tasks pipeline on it.
pub struct Connection {
    shared: Arc<Shared>,
    outbound: mpsc::Sender<Outbound>,
    window: Arc<Semaphore>,
    next_id: AtomicI32,
    client_id: String,
    request_timeout: Duration,
    versions: BrokerVersions,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.shared.addr)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects to `addr` (`host:port`) and negotiates versions with ApiVersions.
    pub async fn connect(addr: &str, options: &ConnectOptions) -> Result<Connection> {
        let connect_error = |reason: String| Error::Connect {
            addr: addr.to_string(),
            reason,
        };
        let stream =
            match tokio::time::timeout(options.connect_timeout, TcpStream::connect(addr)).await {
                Err(_) => {
                    return Err(connect_error(format!(
                        "timed out after {:?}",
                        options.connect_timeout
                    )));
                }
                Ok(Err(e)) => return Err(connect_error(io_reason(&e))),
                Ok(Ok(stream)) => stream,
            };
        // Requests are small and latency matters (acks are measured): no Nagle delay.
        let _ = stream.set_nodelay(true);
        let (read, write) =
            tokio::time::timeout(options.connect_timeout, secure(stream, addr, options))
                .await
                .map_err(|_| {
                    connect_error(format!(
                        "the TLS or SASL handshake took longer than {:?}",
                        options.connect_timeout
                    ))
                })??;
        let shared = Arc::new(Shared {
            addr: addr.to_string(),
            pending: Mutex::default(),
        });
        let max_in_flight = options.max_in_flight.max(1);
        let (outbound, queue) = mpsc::channel(max_in_flight + 1);
        let tasks = vec![
            tokio::spawn(read_loop(BufReader::new(read), shared.clone())),
            tokio::spawn(write_loop(
                BufWriter::with_capacity(64 * 1024, write),
                queue,
                shared.clone(),
            )),
        ];
        let mut connection = Connection {
            shared,
            outbound,
            window: Arc::new(Semaphore::new(max_in_flight)),
            next_id: AtomicI32::new(1),
            client_id: options.client_id.clone(),
            request_timeout: options.request_timeout,
            versions: BrokerVersions::default(),
            tasks,
        };
        connection.versions = connection.negotiate().await.map_err(|e| match e {
            // A peer that accepts TCP but is not a Kafka broker (or hangs up at once).
            Error::Disconnected { reason, .. } => connect_error(format!(
                "{reason} during the ApiVersions handshake (is this a Kafka listener?)"
            )),
            other => other,
        })?;
        Ok(connection)
    }

    /// ApiVersions at our highest version; on UNSUPPORTED_VERSION, again at the broker's
    /// highest (from the v0 body it answers with).
    async fn negotiate(&self) -> Result<BrokerVersions> {
        let request = ApiVersionsRequest {
            client_software_name: "gregorctl".into(),
            client_software_version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        };
        let mut version = ApiKey::ApiVersions.valid_versions().max;
        loop {
            let body = self
                .dispatch_at(&request, version)
                .await?
                .wait_raw()
                .await?;
            let error = body.get(..2).map(|b| i16::from_be_bytes([b[0], b[1]]));
            if error == Some(UNSUPPORTED_VERSION) {
                let response = decode_body::<ApiVersionsResponse>(&self.shared.addr, body, 0)?;
                let theirs = response
                    .api_keys
                    .iter()
                    .find(|k| k.api_key == ApiKey::ApiVersions.key())
                    .map(|k| k.max_version);
                match theirs {
                    Some(max) if max < version && max >= 0 => {
                        version = max;
                        continue;
                    }
                    _ => {
                        return Err(Error::Unsupported(format!(
                            "the broker at {} refused every ApiVersions version gregorctl tried (down to v{version})",
                            self.shared.addr
                        )));
                    }
                }
            }
            let response = decode_body::<ApiVersionsResponse>(&self.shared.addr, body, version)?;
            Error::check(response.error_code, None, || {
                format!("ApiVersions to {}", self.shared.addr)
            })?;
            return Ok(BrokerVersions::new(response, version));
        }
    }

    /// The broker's address as given.
    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// What the broker supports.
    pub fn versions(&self) -> &BrokerVersions {
        &self.versions
    }

    /// The negotiated version of `api`, or an error naming the API and both ranges.
    pub fn version(&self, api: ApiKey) -> Result<i16> {
        self.versions.version(self.addr(), api)
    }

    /// Whether some version of `api` works with this broker.
    pub fn supports(&self, api: ApiKey) -> bool {
        self.versions.supports(api)
    }

    /// Sends `request` at the negotiated version and waits for the response.
    pub async fn send<R: Request>(&self, request: &R) -> Result<R::Response> {
        self.dispatch(request).await?.wait().await
    }

    /// Queues `request` at the negotiated version; the returned future yields the
    /// response. Waits only for a free in-flight slot, so callers can pipeline.
    pub async fn dispatch<R: Request>(&self, request: &R) -> Result<ResponseFuture<R>> {
        let version = self.version(R::API_KEY)?;
        self.dispatch_at(request, version).await
    }

    /// [`Connection::dispatch`] at an explicit version.
    pub async fn dispatch_at<R: Request>(
        &self,
        request: &R,
        version: i16,
    ) -> Result<ResponseFuture<R>> {
        let permit = self.acquire().await?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = self.encode(request, version, id)?;
        let request_bytes = frame.len();
        let (reply, rx) = oneshot::channel();
        {
            let mut pending = self.shared.lock();
            if let Some(reason) = &pending.closed {
                return Err(self.shared.disconnected(reason));
            }
            pending.waiters.insert(
                id,
                Waiter {
                    api: R::API_KEY,
                    version,
                    reply,
                    _permit: permit,
                },
            );
        }
        let queued = self
            .outbound
            .send(Outbound {
                frame,
                written: None,
                _permit: None,
            })
            .await;
        if queued.is_err() {
            self.shared.lock().waiters.remove(&id);
            return Err(self.shared.disconnected("the writer stopped"));
        }
        Ok(ResponseFuture {
            rx,
            id,
            shared: self.shared.clone(),
            timeout: self.request_timeout,
            version,
            request_bytes,
            _request: PhantomData,
        })
    }

    /// Sends a request the broker does not answer (Produce with acks=0); returns once it
    /// is written to the socket.
    pub async fn send_without_response<R: Request>(&self, request: &R, version: i16) -> Result<()> {
        let permit = self.acquire().await?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = self.encode(request, version, id)?;
        let (written, done) = oneshot::channel();
        self.outbound
            .send(Outbound {
                frame,
                written: Some(written),
                _permit: Some(permit),
            })
            .await
            .map_err(|_| self.shared.disconnected("the writer stopped"))?;
        match tokio::time::timeout(self.request_timeout, done).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(self.closed_error()),
            Err(_) => Err(Error::Timeout {
                addr: self.shared.addr.clone(),
                api: R::API_KEY.name(),
                timeout: self.request_timeout,
            }),
        }
    }

    async fn acquire(&self) -> Result<OwnedSemaphorePermit> {
        if let Some(reason) = &self.shared.lock().closed {
            return Err(self.shared.disconnected(reason));
        }
        self.window
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| self.shared.disconnected("closed"))
    }

    fn encode<R: Request>(&self, request: &R, version: i16, id: i32) -> Result<Bytes> {
        let mut frame = BytesMut::new();
        encode_request(&mut frame, request, version, id, Some(&self.client_id)).map_err(|e| {
            Error::Protocol(format!(
                "cannot encode {} v{version}: {e}",
                R::API_KEY.name()
            ))
        })?;
        Ok(frame.freeze())
    }

    fn closed_error(&self) -> Error {
        let reason = self
            .shared
            .lock()
            .closed
            .clone()
            .unwrap_or_else(|| "closed".into());
        self.shared.disconnected(&reason)
    }
}

/// A response on its way: [`ResponseFuture::wait`] for it.
pub struct ResponseFuture<R: Request> {
    rx: oneshot::Receiver<Result<(Bytes, usize)>>,
    id: i32,
    shared: Arc<Shared>,
    timeout: Duration,
    version: i16,
    /// The request's frame on the wire, size prefix included.
    request_bytes: usize,
    _request: PhantomData<fn() -> R>,
}

impl<R: Request> ResponseFuture<R> {
    /// Allows `extra` more time than the request timeout (a fetch that long-polls).
    pub fn extend_timeout(mut self, extra: Duration) -> Self {
        self.timeout += extra;
        self
    }

    /// Bytes of the request's frame on the wire (the 4-byte size prefix, the header and
    /// the body).
    pub fn request_bytes(&self) -> usize {
        self.request_bytes
    }

    /// Waits for the response and decodes it.
    pub async fn wait(self) -> Result<R::Response> {
        Ok(self.wait_sized().await?.0)
    }

    /// Waits for the response and decodes it; with the bytes of its frame on the wire
    /// (size prefix, header and body), for load generators that count traffic.
    pub async fn wait_sized(self) -> Result<(R::Response, usize)> {
        let version = self.version;
        let shared = self.shared.clone();
        let (body, size) = self.wait_framed().await?;
        Ok((
            decode_body::<R::Response>(&shared.addr, body, version)?,
            size,
        ))
    }

    /// Waits for the response body, undecoded.
    async fn wait_raw(self) -> Result<Bytes> {
        Ok(self.wait_framed().await?.0)
    }

    /// Waits for the response body, undecoded, and its frame's size on the wire.
    async fn wait_framed(self) -> Result<(Bytes, usize)> {
        match tokio::time::timeout(self.timeout, self.rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => {
                let reason = self
                    .shared
                    .lock()
                    .closed
                    .clone()
                    .unwrap_or_else(|| "closed".into());
                Err(self.shared.disconnected(&reason))
            }
            Err(_) => {
                let mut pending = self.shared.lock();
                pending.waiters.remove(&self.id);
                pending.abandoned.insert(self.id);
                Err(Error::Timeout {
                    addr: self.shared.addr.clone(),
                    api: R::API_KEY.name(),
                    timeout: self.timeout,
                })
            }
        }
    }
}

/// Decodes a response body at `version`, naming the message on failure.
fn decode_body<T: Decodable + gregor_protocol::Message>(
    addr: &str,
    mut body: Bytes,
    version: i16,
) -> Result<T> {
    T::decode(&mut body, version).map_err(|e| {
        Error::Protocol(format!(
            "cannot decode the {} v{version} from {addr}: {e}",
            T::NAME
        ))
    })
}

/// The TLS handshake and SASL exchange `options.security` asks for, then the stream's
/// two halves.
async fn secure(
    stream: TcpStream,
    addr: &str,
    options: &ConnectOptions,
) -> Result<(ReadHalf, WriteHalf)> {
    let security = &options.security;
    let Some(tls) = &security.tls else {
        let mut stream = stream;
        if let Some(sasl) = &security.sasl {
            sasl::authenticate(&mut stream, addr, sasl, &options.client_id).await?;
        }
        let (read, write) = stream.into_split();
        return Ok((Box::new(read), Box::new(write)));
    };
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name =
        rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| Error::Connect {
            addr: addr.to_string(),
            reason: format!("{host:?} is not a TLS server name: {e}"),
        })?;
    let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
    let mut stream = connector
        .connect(name, stream)
        .await
        .map_err(|e| Error::Connect {
            addr: addr.to_string(),
            reason: format!("TLS handshake failed: {e}"),
        })?;
    if let Some(sasl) = &security.sasl {
        sasl::authenticate(&mut stream, addr, sasl, &options.client_id).await?;
    }
    let (read, write) = tokio::io::split(stream);
    Ok((Box::new(read), Box::new(write)))
}

/// Reads response frames and completes their waiters until the socket ends.
async fn read_loop(mut reader: BufReader<ReadHalf>, shared: Arc<Shared>) {
    let reason = loop {
        let mut size = [0u8; 4];
        if let Err(e) = reader.read_exact(&mut size).await {
            break io_reason(&e);
        }
        let size = i32::from_be_bytes(size);
        let Ok(size) = usize::try_from(size) else {
            break format!("the broker sent a negative frame size ({size})");
        };
        if !(4..=MAX_FRAME).contains(&size) {
            break format!("the broker sent a frame of {size} bytes");
        }
        let mut frame = BytesMut::zeroed(size);
        if let Err(e) = reader.read_exact(&mut frame).await {
            break io_reason(&e);
        }
        let mut frame = frame.freeze();
        let wire_size = 4 + size;
        let id = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        let waiter = {
            let mut pending = shared.lock();
            match pending.waiters.remove(&id) {
                Some(waiter) => Some(waiter),
                None if pending.abandoned.remove(&id) => None,
                None => {
                    drop(pending);
                    break format!("the broker answered an unknown correlation id {id}");
                }
            }
        };
        let Some(waiter) = waiter else { continue };
        match decode_response_header(&mut frame, waiter.api, waiter.version) {
            Ok(_) => {
                let _ = waiter.reply.send(Ok((frame, wire_size)));
            }
            Err(e) => {
                let message = format!(
                    "cannot decode the {} v{} response header: {e}",
                    waiter.api.name(),
                    waiter.version
                );
                let _ = waiter.reply.send(Err(Error::Protocol(message.clone())));
                break message;
            }
        }
    };
    shared.fail_all(reason);
}

/// Writes queued frames, flushing once per burst.
async fn write_loop(
    mut writer: BufWriter<WriteHalf>,
    mut queue: mpsc::Receiver<Outbound>,
    shared: Arc<Shared>,
) {
    let mut burst = Vec::new();
    while let Some(first) = queue.recv().await {
        burst.push(first);
        while burst.len() < 64 {
            match queue.try_recv() {
                Ok(more) => burst.push(more),
                Err(_) => break,
            }
        }
        for outbound in &burst {
            if let Err(e) = writer.write_all(&outbound.frame).await {
                shared.fail_all(io_reason(&e));
                return;
            }
        }
        if let Err(e) = writer.flush().await {
            shared.fail_all(io_reason(&e));
            return;
        }
        for outbound in burst.drain(..) {
            if let Some(written) = outbound.written {
                let _ = written.send(());
            }
        }
    }
}
