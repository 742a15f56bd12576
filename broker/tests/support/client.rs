//! [`RawClient`]: a minimal blocking Kafka client over `std::net::TcpStream`, built on
//! gregor-protocol's framing and generated types, for tests that look at exact requests and
//! responses (pipelining, versions, malformed frames).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use gregor_protocol::frame::{decode_response_header, encode_request};
use gregor_protocol::messages::api_versions_request::ApiVersionsRequest;
use gregor_protocol::messages::api_versions_response::ApiVersionsResponse;
use gregor_protocol::messages::response_header::ResponseHeader;
use gregor_protocol::{ApiKey, Decodable, Request};

/// How long a read waits before the test fails (the broker should answer long before).
pub const READ_TIMEOUT: Duration = Duration::from_secs(15);

/// Client id sent in request headers.
pub const CLIENT_ID: &str = "gregor-tests";

/// A request sent and not answered yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    /// Its correlation id.
    pub correlation_id: i32,
    /// Its API.
    pub api_key: ApiKey,
    /// Its version.
    pub version: i16,
}

/// A decoded response with its header.
#[derive(Clone, Debug, PartialEq)]
pub struct Response<B> {
    /// The response header.
    pub header: ResponseHeader,
    /// The body.
    pub body: B,
}

/// What reading a frame found.
#[derive(Debug)]
pub enum ReadOutcome {
    /// A whole frame (without its size prefix).
    Frame(Bytes),
    /// The broker closed the connection cleanly (EOF before any byte of a frame).
    Closed,
    /// The connection was reset.
    Reset,
    /// Nothing arrived within the timeout.
    TimedOut,
}

/// One connection to a broker.
#[derive(Debug)]
pub struct RawClient {
    stream: TcpStream,
    next_correlation_id: i32,
    pending: VecDeque<Pending>,
    client_id: Option<String>,
}

impl RawClient {
    /// Connects to `addr` (timeouts of [`READ_TIMEOUT`]).
    pub fn connect(addr: SocketAddr) -> io::Result<RawClient> {
        RawClient::from_stream(TcpStream::connect_timeout(&addr, READ_TIMEOUT)?)
    }

    /// A client on a stream connected already (from a chosen source address, say).
    pub fn from_stream(stream: TcpStream) -> io::Result<RawClient> {
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        stream.set_write_timeout(Some(READ_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(RawClient {
            stream,
            next_correlation_id: 1,
            pending: VecDeque::new(),
            client_id: Some(CLIENT_ID.to_string()),
        })
    }

    /// Sets the client id of later requests (`None` sends a null client id).
    pub fn set_client_id(&mut self, client_id: Option<&str>) {
        self.client_id = client_id.map(str::to_string);
    }

    /// The underlying stream (to set timeouts, or shut down one direction).
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Requests sent and not yet read.
    pub fn pending(&self) -> &VecDeque<Pending> {
        &self.pending
    }

    /// Encodes one request frame at `version` with the next correlation id, without
    /// sending it.
    pub fn encode<R: Request>(&mut self, request: &R, version: i16) -> (Pending, Bytes) {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let mut buf = BytesMut::new();
        encode_request(
            &mut buf,
            request,
            version,
            correlation_id,
            self.client_id.as_deref(),
        )
        .unwrap_or_else(|e| panic!("encode {:?} v{version}: {e}", R::API_KEY));
        let pending = Pending {
            correlation_id,
            api_key: R::API_KEY,
            version,
        };
        (pending, buf.freeze())
    }

    /// Sends a request at `version`; returns its correlation id. Read the answer with
    /// [`RawClient::recv`]; several requests may be sent first (pipelining).
    pub fn send<R: Request>(&mut self, request: &R, version: i16) -> io::Result<i32> {
        let (pending, frame) = self.encode(request, version);
        self.stream.write_all(&frame)?;
        self.pending.push_back(pending);
        Ok(pending.correlation_id)
    }

    /// Sends several requests in one write (they arrive together, as pipelined requests
    /// from a real client do); returns their correlation ids.
    pub fn send_all<R: Request>(&mut self, requests: &[(R, i16)]) -> io::Result<Vec<i32>> {
        let mut out = BytesMut::new();
        let mut ids = Vec::new();
        for (request, version) in requests {
            let (pending, frame) = self.encode(request, *version);
            out.extend_from_slice(&frame);
            self.pending.push_back(pending);
            ids.push(pending.correlation_id);
        }
        self.stream.write_all(&out)?;
        Ok(ids)
    }

    /// Reads the response to the oldest pending request, which must be an `R` (panics
    /// otherwise, or when the correlation id does not match, or the body does not decode
    /// to its end).
    pub fn recv<R: Request>(&mut self) -> io::Result<Response<R::Response>> {
        let pending = self
            .pending
            .pop_front()
            .expect("recv without a pending request");
        assert_eq!(
            pending.api_key,
            R::API_KEY,
            "the oldest pending request is {:?}, not {:?}",
            pending.api_key,
            R::API_KEY
        );
        let mut frame = self.read_frame()?;
        let header = decode_response_header(&mut frame, pending.api_key, pending.version)
            .unwrap_or_else(|e| {
                panic!(
                    "response header to {:?} v{}: {e}",
                    pending.api_key, pending.version
                )
            });
        assert_eq!(
            header.correlation_id, pending.correlation_id,
            "response to {:?} v{} carries the wrong correlation id",
            pending.api_key, pending.version
        );
        let body = R::Response::decode(&mut frame, pending.version).unwrap_or_else(|e| {
            panic!(
                "response body to {:?} v{}: {e}",
                pending.api_key, pending.version
            )
        });
        assert!(
            frame.is_empty(),
            "{} bytes left after the response body to {:?} v{}",
            frame.len(),
            pending.api_key,
            pending.version
        );
        Ok(Response { header, body })
    }

    /// Sends a request and reads its response body.
    pub fn call<R: Request>(&mut self, request: &R, version: i16) -> io::Result<R::Response> {
        assert!(
            self.pending.is_empty(),
            "call with {} responses still pending",
            self.pending.len()
        );
        self.send(request, version)?;
        Ok(self.recv::<R>()?.body)
    }

    /// Writes raw bytes (a hand-made or malformed frame, or part of one).
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Writes `body` behind a correct size prefix.
    pub fn send_raw_frame(&mut self, body: &[u8]) -> io::Result<()> {
        let mut frame = Vec::with_capacity(4 + body.len());
        frame.extend_from_slice(&(body.len() as i32).to_be_bytes());
        frame.extend_from_slice(body);
        self.send_raw(&frame)
    }

    /// Reads one whole frame (without its size prefix); an error if the connection ends
    /// or times out first.
    pub fn read_frame(&mut self) -> io::Result<Bytes> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size)?;
        let size = i32::from_be_bytes(size);
        let size = usize::try_from(size).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidData, format!("frame size {size}"))
        })?;
        let mut frame = vec![0; size];
        self.stream.read_exact(&mut frame)?;
        Ok(Bytes::from(frame))
    }

    /// Reads one frame, or tells how the connection ended, waiting at most `timeout`.
    pub fn read_outcome(&mut self, timeout: Duration) -> ReadOutcome {
        self.stream
            .set_read_timeout(Some(timeout))
            .expect("set the read timeout");
        let outcome = match self.read_frame() {
            Ok(frame) => ReadOutcome::Frame(frame),
            Err(e) => match e.kind() {
                io::ErrorKind::UnexpectedEof => ReadOutcome::Closed,
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ReadOutcome::TimedOut,
                io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
                    ReadOutcome::Reset
                }
                _ => panic!("reading a frame: {e}"),
            },
        };
        self.stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("set the read timeout");
        outcome
    }

    /// True when the broker closes (or resets) the connection within `timeout` without
    /// sending anything more.
    pub fn is_closed_by_peer(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        self.stream
            .set_read_timeout(Some(timeout))
            .expect("set the read timeout");
        let mut byte = [0u8; 1];
        let closed = loop {
            match self.stream.read(&mut byte) {
                Ok(0) => break true,
                Ok(_) => break false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted && Instant::now() < deadline => {}
                Err(e) => {
                    break matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                    );
                }
            }
        };
        self.stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("set the read timeout");
        closed
    }

    /// Closes the sending side (the broker sees EOF after what was sent).
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        self.stream.shutdown(Shutdown::Write)
    }
}

/// Asks the broker at `addr` for its ApiVersions (v3, the version current clients send
/// first).
pub fn api_versions(addr: SocketAddr) -> io::Result<ApiVersionsResponse> {
    let mut client = RawClient::connect(addr)?;
    let request = ApiVersionsRequest {
        client_software_name: "gregor-tests".into(),
        client_software_version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    };
    client.call(&request, 3)
}

/// The version range the broker at `addr` advertises for `api`, if any.
pub fn advertised_versions(addr: SocketAddr, api: ApiKey) -> Option<(i16, i16)> {
    let response = api_versions(addr).expect("ApiVersions request");
    response
        .api_keys
        .iter()
        .find(|k| k.api_key == api.key())
        .map(|k| (k.min_version, k.max_version))
}

/// One transactional record of `producer` (sequence `sequence`, transactional id `id`)
/// produced to `topic`-`partition` on its leader `addr` with Produce v9 (before
/// transactions v2: the partition must have been added); the partition's error code.
pub fn produce_transactional(
    addr: SocketAddr,
    id: &str,
    producer: (i64, i16),
    topic: &str,
    partition: i32,
    sequence: i32,
) -> i16 {
    use gregor_protocol::messages::produce_request::{
        PartitionProduceData, ProduceRequest, TopicProduceData,
    };
    use gregor_protocol::records::{NewRecord, RecordBatchBuilder};
    let record = NewRecord {
        timestamp: 0,
        key: Some(Bytes::from_static(b"raw")),
        value: Some(Bytes::from_static(b"raw:0")),
        headers: Vec::new(),
    };
    let batch = RecordBatchBuilder::new()
        .producer(producer.0, producer.1)
        .base_sequence(sequence)
        .transactional(true)
        .build(&[record])
        .expect("encode a record batch");
    let request = ProduceRequest {
        transactional_id: Some(id.into()),
        acks: -1,
        timeout_ms: 10_000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index: partition,
                records: Some(batch),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut client = RawClient::connect(addr).expect("the leader's listener");
    let response = client.call(&request, 9).expect("Produce");
    response.responses[0].partition_responses[0].error_code
}
