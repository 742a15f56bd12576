//! Controller-to-controller RPCs of the metadata quorum over TCP, Kafka-framed: an int32
//! size, a request header v2 (API key, version, correlation id, client id, tagged fields),
//! the body; responses carry a response header v1 (correlation id, tagged fields).
//!
//! * **Vote** is Kafka's `Vote` API (key 52, version 2, the generated types), for the topic
//!   `__cluster_metadata` partition 0: `ReplicaEpoch` = the candidate's term,
//!   `ReplicaId`, `LastOffsetEpoch`/`LastOffset` = the term and end offset (one past
//!   the last index) of the candidate's log. The response's `LeaderEpoch` is the voter's term and
//!   `LeaderId` its leader when it has one. Kafka's response has no field for the voter's
//!   last log id, which openraft only uses to delay a candidate's next election, nor for
//!   an uncommitted vote for somebody else (the candidate learns the term only); both are
//!   left out.
//! * **AppendEntries** and **InstallSnapshot** have no Kafka equivalent (Kafka's followers
//!   pull with Fetch); they use private API keys [`APPEND_ENTRIES_KEY`] and
//!   [`INSTALL_SNAPSHOT_KEY`] (outside Kafka's range) with the private body encoding
//!   below, big-endian like Kafka's: the entries travel as Kafka record batches, the same
//!   bytes as on disk ([`entry::encode_entries`]), and a snapshot chunk is a slice of the
//!   `.checkpoint` file.
//!
//! ```text
//! vote         = term:int64 voted_for:int32(-1 = none) committed:int8
//! log_id       = present:int8 [term:int64 index:int64]
//! string       = length:int16(-1 = null) utf8
//! bytes        = length:int32 data
//! AppendEntries request  = cluster_id:string vote prev_log_id:log_id leader_commit:log_id batches:bytes
//! AppendEntries response = error_code:int16 kind:int8 (0 success, 1 partial [log_id], 2 conflict, 3 higher vote [vote])
//! InstallSnapshot request  = cluster_id:string vote snapshot_id:string last_log_id:log_id
//!                            membership_log_id:log_id voters:bytes(VotersRecord v0) offset:int64 data:bytes done:int8
//! InstallSnapshot response = error_code:int16 vote
//! ```
//!
//! The server side is [`FrameHandler`]: whatever listener receives a frame (the tiny
//! [`serve`] loop here, later the broker's controller listener) hands it to the quorum and
//! writes back the response frame.

// openraft's error types are what its traits return, large or not.
#![allow(clippy::result_large_err)]

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::security::node_client::{ConnectError, NodeConnector, NodeStream};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use gregor_protocol::frame::{
    decode_request_header, encode_request, encode_response, peek_request_api,
};
use gregor_protocol::messages::request_header::RequestHeader;
use gregor_protocol::messages::response_header::ResponseHeader;
use gregor_protocol::messages::update_raft_voter_request::UpdateRaftVoterRequest;
use gregor_protocol::messages::update_raft_voter_response::UpdateRaftVoterResponse;
use gregor_protocol::messages::vote_request::{self, VoteRequest as KafkaVoteRequest};
use gregor_protocol::messages::vote_response::{self, VoteResponse as KafkaVoteResponse};
use gregor_protocol::messages::voters_record::VotersRecord;
use gregor_protocol::{ApiKey, Decodable, Encodable, error_code};
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{LeaderId, LogId, SnapshotMeta, StoredMembership, Vote};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::entry::{self, QuorumEntry};
use super::{NodeId, Raft, TypeConfig, VoterNode};

/// Private API key of AppendEntries (outside Kafka's range of keys).
pub const APPEND_ENTRIES_KEY: i16 = 32_000;
/// Private API key of InstallSnapshot.
pub const INSTALL_SNAPSHOT_KEY: i16 = 32_001;
/// The version of the Vote API used (Kafka 4's, with KIP-996's `PreVote`, always false).
pub const VOTE_VERSION: i16 = 2;
/// The largest frame accepted (a snapshot chunk is at most a quarter of it).
pub const MAX_FRAME: usize = 64 * 1024 * 1024;
/// The client id the quorum's requests carry.
const CLIENT_ID: &str = "gregor-quorum";
/// The topic of the metadata partition, as Kafka's Vote names it.
const METADATA_TOPIC: &str = "__cluster_metadata";
/// The request header version of the private APIs (flexible, as Vote's).
const HEADER_VERSION: i16 = 2;

// ---------------------------------------------------------------- private body encoding

fn put_vote(buf: &mut BytesMut, vote: &Vote<NodeId>) {
    buf.put_i64(vote.leader_id.term as i64);
    buf.put_i32(vote.leader_id.voted_for.map_or(-1, |id| id as i32));
    buf.put_i8(i8::from(vote.committed));
}

fn put_log_id(buf: &mut BytesMut, id: &Option<LogId<NodeId>>) {
    match id {
        None => buf.put_i8(0),
        Some(id) => {
            buf.put_i8(1);
            buf.put_i64(id.leader_id.term as i64);
            buf.put_i64(id.index as i64);
        }
    }
}

fn put_string(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        None => buf.put_i16(-1),
        Some(s) => {
            buf.put_i16(s.len().min(i16::MAX as usize) as i16);
            buf.put_slice(&s.as_bytes()[..s.len().min(i16::MAX as usize)]);
        }
    }
}

fn put_bytes(buf: &mut BytesMut, data: &[u8]) {
    buf.put_i32(data.len() as i32);
    buf.put_slice(data);
}

/// A bounds-checked reader of the private bodies.
struct Reader(Bytes);

fn malformed(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed quorum RPC: {what}"),
    )
}

impl Reader {
    fn need(&self, n: usize, what: &str) -> io::Result<()> {
        if self.0.remaining() < n {
            return Err(malformed(what));
        }
        Ok(())
    }
    fn i8(&mut self) -> io::Result<i8> {
        self.need(1, "int8")?;
        Ok(self.0.get_i8())
    }
    fn i16(&mut self) -> io::Result<i16> {
        self.need(2, "int16")?;
        Ok(self.0.get_i16())
    }
    fn i32(&mut self) -> io::Result<i32> {
        self.need(4, "int32")?;
        Ok(self.0.get_i32())
    }
    fn i64(&mut self) -> io::Result<i64> {
        self.need(8, "int64")?;
        Ok(self.0.get_i64())
    }
    fn u64(&mut self, what: &str) -> io::Result<u64> {
        u64::try_from(self.i64()?).map_err(|_| malformed(what))
    }
    fn vote(&mut self) -> io::Result<Vote<NodeId>> {
        let term = self.u64("term")?;
        let voted_for = self.i32()?;
        let committed = self.i8()? != 0;
        Ok(Vote {
            leader_id: LeaderId {
                term,
                voted_for: (voted_for >= 0).then_some(voted_for as NodeId),
            },
            committed,
        })
    }
    fn log_id(&mut self) -> io::Result<Option<LogId<NodeId>>> {
        if self.i8()? == 0 {
            return Ok(None);
        }
        let term = self.i64()?;
        let index = self.i64()?;
        let epoch = i32::try_from(term).map_err(|_| malformed("term"))?;
        if index < 0 || epoch < 0 {
            return Err(malformed("log id"));
        }
        Ok(Some(entry::log_id(epoch, index)))
    }
    fn string(&mut self) -> io::Result<Option<String>> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        self.need(len as usize, "string")?;
        let data = self.0.split_to(len as usize);
        String::from_utf8(data.to_vec())
            .map(Some)
            .map_err(|_| malformed("string"))
    }
    fn bytes(&mut self) -> io::Result<Bytes> {
        let len = self.i32()?;
        if len < 0 {
            return Err(malformed("bytes length"));
        }
        self.need(len as usize, "bytes")?;
        Ok(self.0.split_to(len as usize))
    }
}

fn encode_append_request(
    cluster_id: Option<&str>,
    rpc: &AppendEntriesRequest<TypeConfig>,
) -> io::Result<BytesMut> {
    let mut buf = BytesMut::new();
    put_string(&mut buf, cluster_id);
    put_vote(&mut buf, &rpc.vote);
    put_log_id(&mut buf, &rpc.prev_log_id);
    put_log_id(&mut buf, &rpc.leader_commit);
    // Entries read from the log have their leader and timestamp: the bytes are the disk's.
    let batches = entry::encode_entries(&rpc.entries, now_ms(), &|_| entry::leader_change(-1, &[]))
        .map_err(|e| io::Error::other(e.to_string()))?;
    let total: usize = batches.iter().map(|b| b.bytes.len()).sum();
    buf.put_i32(total as i32);
    for batch in batches {
        buf.put_slice(&batch.bytes);
    }
    Ok(buf)
}

fn decode_append_request(
    body: Bytes,
) -> io::Result<(Option<String>, AppendEntriesRequest<TypeConfig>)> {
    let mut r = Reader(body);
    let cluster_id = r.string()?;
    let vote = r.vote()?;
    let prev_log_id = r.log_id()?;
    let leader_commit = r.log_id()?;
    let batches = r.bytes()?;
    let entries: Vec<QuorumEntry> =
        entry::decode_entries(batches).map_err(|e| malformed(&e.to_string()))?;
    Ok((
        cluster_id,
        AppendEntriesRequest {
            vote,
            prev_log_id,
            entries,
            leader_commit,
        },
    ))
}

fn encode_append_response(error: i16, resp: &AppendEntriesResponse<NodeId>) -> BytesMut {
    let mut buf = BytesMut::new();
    buf.put_i16(error);
    match resp {
        AppendEntriesResponse::Success => buf.put_i8(0),
        AppendEntriesResponse::PartialSuccess(id) => {
            buf.put_i8(1);
            put_log_id(&mut buf, id);
        }
        AppendEntriesResponse::Conflict => buf.put_i8(2),
        AppendEntriesResponse::HigherVote(vote) => {
            buf.put_i8(3);
            put_vote(&mut buf, vote);
        }
    }
    buf
}

fn decode_append_response(body: Bytes) -> io::Result<(i16, AppendEntriesResponse<NodeId>)> {
    let mut r = Reader(body);
    let error = r.i16()?;
    let resp = match r.i8()? {
        0 => AppendEntriesResponse::Success,
        1 => AppendEntriesResponse::PartialSuccess(r.log_id()?),
        2 => AppendEntriesResponse::Conflict,
        3 => AppendEntriesResponse::HigherVote(r.vote()?),
        _ => return Err(malformed("AppendEntries response kind")),
    };
    Ok((error, resp))
}

fn encode_snapshot_request(
    cluster_id: Option<&str>,
    rpc: &InstallSnapshotRequest<TypeConfig>,
) -> io::Result<BytesMut> {
    let mut buf = BytesMut::new();
    put_string(&mut buf, cluster_id);
    put_vote(&mut buf, &rpc.vote);
    put_string(&mut buf, Some(&rpc.meta.snapshot_id));
    put_log_id(&mut buf, &rpc.meta.last_log_id);
    put_log_id(&mut buf, rpc.meta.last_membership.log_id());
    let voters = entry::voters_record(rpc.meta.last_membership.membership())
        .map_err(|e| io::Error::other(e.to_string()))?;
    let voters = voters
        .to_bytes(0)
        .map_err(|e| io::Error::other(e.to_string()))?;
    put_bytes(&mut buf, &voters);
    buf.put_i64(rpc.offset as i64);
    put_bytes(&mut buf, &rpc.data);
    buf.put_i8(i8::from(rpc.done));
    Ok(buf)
}

fn decode_snapshot_request(
    body: Bytes,
) -> io::Result<(Option<String>, InstallSnapshotRequest<TypeConfig>)> {
    let mut r = Reader(body);
    let cluster_id = r.string()?;
    let vote = r.vote()?;
    let snapshot_id = r.string()?.ok_or_else(|| malformed("snapshot id"))?;
    let last_log_id = r.log_id()?;
    let membership_log_id = r.log_id()?;
    let mut voters = r.bytes()?;
    let voters = VotersRecord::decode(&mut voters, 0).map_err(|e| malformed(&e.to_string()))?;
    let offset = r.u64("offset")?;
    let data = r.bytes()?.to_vec();
    let done = r.i8()? != 0;
    Ok((
        cluster_id,
        InstallSnapshotRequest {
            vote,
            meta: SnapshotMeta {
                last_log_id,
                last_membership: StoredMembership::new(
                    membership_log_id,
                    entry::membership_of(&voters),
                ),
                snapshot_id,
            },
            offset,
            data,
            done,
        },
    ))
}

// ---------------------------------------------------------------- framing

fn private_request(api_key: i16, correlation_id: i32, body: &[u8]) -> io::Result<BytesMut> {
    let header = RequestHeader {
        request_api_key: api_key,
        request_api_version: 0,
        correlation_id,
        client_id: Some(CLIENT_ID.into()),
        ..Default::default()
    };
    let size = header.encoded_len(HEADER_VERSION) + body.len();
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(size as i32);
    header
        .encode_to(&mut buf, HEADER_VERSION)
        .map_err(|e| io::Error::other(e.to_string()))?;
    buf.put_slice(body);
    Ok(buf)
}

fn private_response(correlation_id: i32, body: &[u8]) -> io::Result<BytesMut> {
    let header = ResponseHeader {
        correlation_id,
        ..Default::default()
    };
    let size = header.encoded_len(1) + body.len();
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(size as i32);
    header
        .encode_to(&mut buf, 1)
        .map_err(|e| io::Error::other(e.to_string()))?;
    buf.put_slice(body);
    Ok(buf)
}

/// Reads one size-prefixed frame (without its size); `None` at a clean end of stream.
pub async fn read_frame<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Option<Bytes>> {
    let mut size = [0u8; 4];
    match stream.read_exact(&mut size).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let size = i32::from_be_bytes(size);
    if size < 0 || size as usize > MAX_FRAME {
        return Err(malformed(&format!("frame size {size}")));
    }
    let mut data = vec![0u8; size as usize];
    stream.read_exact(&mut data).await?;
    Ok(Some(Bytes::from(data)))
}

// ---------------------------------------------------------------- server

/// What serves the quorum's RPC frames (implemented by [`Quorum`](super::Quorum)).
pub trait FrameHandler: Send + Sync + 'static {
    /// Answers one request frame (without its size prefix); `None` closes the connection
    /// (a frame that does not decode).
    fn handle_frame(
        &self,
        frame: Bytes,
    ) -> Pin<Box<dyn Future<Output = Option<BytesMut>> + Send + '_>>;
}

/// Accepts connections on `listener` and answers their frames with `handler` until the
/// task is aborted.
pub async fn serve(listener: TcpListener, handler: Arc<dyn FrameHandler>) {
    loop {
        let (mut stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("quorum listener: cannot accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        tokio::spawn(async move {
            loop {
                let frame = match read_frame(&mut stream).await {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(%peer, "quorum connection closed: {e}");
                        break;
                    }
                };
                let Some(response) = handler.handle_frame(frame).await else {
                    tracing::warn!(%peer, "closing a quorum connection after a malformed request");
                    break;
                };
                if stream.write_all(&response).await.is_err() {
                    break;
                }
            }
        });
    }
}

fn cluster_matches(ours: Option<&str>, theirs: Option<&str>) -> bool {
    match (ours, theirs) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

/// Answers one request frame for `raft` (node `node_id` of cluster `cluster_id`).
pub async fn handle_frame(
    raft: &Raft,
    node_id: NodeId,
    cluster_id: Option<&str>,
    mut frame: Bytes,
) -> Option<BytesMut> {
    let (key, _) = peek_request_api(&frame)?;
    if key == APPEND_ENTRIES_KEY || key == INSTALL_SNAPSHOT_KEY {
        let header = RequestHeader::decode(&mut frame, HEADER_VERSION).ok()?;
        let correlation = header.correlation_id;
        let body = if key == APPEND_ENTRIES_KEY {
            let (theirs, rpc) = decode_append_request(frame).ok()?;
            if !cluster_matches(cluster_id, theirs.as_deref()) {
                encode_append_response(
                    error_code::INCONSISTENT_CLUSTER_ID,
                    &AppendEntriesResponse::Conflict,
                )
            } else {
                match raft.append_entries(rpc).await {
                    Ok(resp) => encode_append_response(error_code::NONE, &resp),
                    Err(e) => {
                        tracing::debug!("AppendEntries failed: {e}");
                        encode_append_response(
                            error_code::UNKNOWN_SERVER_ERROR,
                            &AppendEntriesResponse::Conflict,
                        )
                    }
                }
            }
        } else {
            let (theirs, rpc) = decode_snapshot_request(frame).ok()?;
            let mut buf = BytesMut::new();
            if !cluster_matches(cluster_id, theirs.as_deref()) {
                buf.put_i16(error_code::INCONSISTENT_CLUSTER_ID);
                put_vote(&mut buf, &Vote::default());
            } else {
                match raft.install_snapshot(rpc).await {
                    Ok(resp) => {
                        buf.put_i16(error_code::NONE);
                        put_vote(&mut buf, &resp.vote);
                    }
                    Err(e) => {
                        tracing::debug!("InstallSnapshot failed: {e}");
                        buf.put_i16(error_code::UNKNOWN_SERVER_ERROR);
                        put_vote(&mut buf, &Vote::default());
                    }
                }
            }
            buf
        };
        return private_response(correlation, &body).ok();
    }
    let (api_key, header) = decode_request_header(&mut frame).ok()?;
    if api_key != ApiKey::Vote {
        return None;
    }
    let version = header.request_api_version;
    let request = KafkaVoteRequest::decode(&mut frame, version).ok()?;
    let response = answer_vote(raft, node_id, cluster_id, request).await;
    let mut buf = BytesMut::new();
    encode_response(
        &mut buf,
        ApiKey::Vote,
        version,
        header.correlation_id,
        &response,
    )
    .ok()?;
    Some(buf)
}

/// Kafka's Vote request mapped onto openraft's (see the module docs).
async fn answer_vote(
    raft: &Raft,
    node_id: NodeId,
    cluster_id: Option<&str>,
    request: KafkaVoteRequest,
) -> KafkaVoteResponse {
    let error = |code| KafkaVoteResponse {
        error_code: code,
        ..Default::default()
    };
    if !cluster_matches(cluster_id, request.cluster_id.as_deref()) {
        return error(error_code::INCONSISTENT_CLUSTER_ID);
    }
    // Kafka's `KafkaRaftClient.handleVoteRequest` refuses a request for another voter.
    if request.voter_id >= 0 && request.voter_id as NodeId != node_id {
        return error(error_code::INVALID_VOTER_KEY);
    }
    let Some(partition) = request
        .topics
        .iter()
        .find(|t| &*t.topic_name == METADATA_TOPIC)
        .and_then(|t| t.partitions.iter().find(|p| p.partition_index == 0))
    else {
        return error(error_code::INVALID_REQUEST);
    };
    // openraft 0.9 has no pre-vote (KIP-996); this quorum never sends one.
    if partition.pre_vote || partition.replica_epoch < 0 || partition.replica_id < 0 {
        return error(error_code::INVALID_REQUEST);
    }
    let rpc = VoteRequest {
        vote: Vote::new(
            partition.replica_epoch as u64,
            partition.replica_id as NodeId,
        ),
        last_log_id: (partition.last_offset > 0)
            .then(|| entry::log_id(partition.last_offset_epoch, partition.last_offset - 1)),
    };
    let resp = match raft.vote(rpc).await {
        Ok(resp) => resp,
        Err(e) => {
            tracing::debug!("Vote failed: {e}");
            return error(error_code::UNKNOWN_SERVER_ERROR);
        }
    };
    let leader_id = if resp.vote.committed {
        resp.vote.leader_id.voted_for.map_or(-1, |id| id as i32)
    } else {
        -1
    };
    KafkaVoteResponse {
        error_code: error_code::NONE,
        topics: vec![vote_response::TopicData {
            topic_name: METADATA_TOPIC.into(),
            partitions: vec![vote_response::PartitionData {
                partition_index: 0,
                error_code: error_code::NONE,
                leader_id,
                leader_epoch: resp.vote.leader_id.term.min(i32::MAX as u64) as i32,
                vote_granted: resp.vote_granted,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

// ---------------------------------------------------------------- client

/// openraft's network factory: a [`Peer`] per target voter.
#[derive(Clone, Debug)]
pub struct Network {
    /// The cluster id requests carry.
    pub cluster_id: Option<String>,
    /// How to connect (TLS, SASL) to the voters' controller listener.
    pub connector: NodeConnector,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &VoterNode) -> Peer {
        Peer {
            target,
            node: node.clone(),
            cluster_id: self.cluster_id.clone(),
            connector: self.connector.clone(),
            stream: None,
            correlation_id: 0,
        }
    }
}

/// The connection to one voter (one request at a time, reconnecting after an error).
pub struct Peer {
    target: NodeId,
    node: VoterNode,
    cluster_id: Option<String>,
    connector: NodeConnector,
    stream: Option<NodeStream>,
    correlation_id: i32,
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, VoterNode, RaftError<NodeId, E>>>;

fn network_error<E: std::error::Error>(e: io::Error) -> RPCError<NodeId, VoterNode, E> {
    RPCError::Network(NetworkError::new(&e))
}

impl Peer {
    /// Sends `frame` (whose correlation id is `self.correlation_id`) and returns the body
    /// of the response.
    async fn call<E: std::error::Error>(
        &mut self,
        frame: BytesMut,
        response_header_version: i16,
        ttl: Duration,
    ) -> Result<Bytes, RPCError<NodeId, VoterNode, E>> {
        let correlation_id = self.correlation_id;
        let addr = format!("{}:{}", self.node.host, self.node.port);
        if self.stream.is_none() {
            let stream = match self
                .connector
                .connect(&self.node.host, self.node.port, CLIENT_ID, ttl)
                .await
            {
                Ok(stream) => stream,
                Err(ConnectError::Io(e)) => {
                    return Err(RPCError::Unreachable(Unreachable::new(&e)));
                }
                Err(ConnectError::Timeout(_)) => {
                    let e =
                        io::Error::new(io::ErrorKind::TimedOut, format!("connecting to {addr}"));
                    return Err(RPCError::Unreachable(Unreachable::new(&e)));
                }
                Err(e) => {
                    // Refused certificate or credentials: loud, it will not heal by itself.
                    tracing::error!(
                        voter = self.target,
                        listener = %self.connector.listener,
                        "voter {} does not accept this node: {e}",
                        self.target
                    );
                    return Err(RPCError::Unreachable(Unreachable::new(&io::Error::other(
                        e.to_string(),
                    ))));
                }
            };
            self.stream = Some(stream);
        }
        let stream = self.stream.as_mut().expect("just connected");
        let exchange = async {
            stream.write_all(&frame).await?;
            stream.flush().await?;
            read_frame(stream)
                .await?
                .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"))
        };
        let result = match tokio::time::timeout(ttl, exchange).await {
            Ok(result) => result,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer from voter {} at {addr}", self.target),
            )),
        };
        let mut frame = match result {
            Ok(frame) => frame,
            Err(e) => {
                self.stream = None;
                return Err(network_error(e));
            }
        };
        let header = ResponseHeader::decode(&mut frame, response_header_version).map_err(|e| {
            self.stream = None;
            network_error(malformed(&e.to_string()))
        })?;
        if header.correlation_id != correlation_id {
            self.stream = None;
            return Err(network_error(malformed("correlation id")));
        }
        Ok(frame)
    }

    /// A peer for `target` at `node`, outside openraft (the KIP-853 UpdateRaftVoter a
    /// voter sends to its leader).
    pub fn to(network: &Network, target: NodeId, node: &VoterNode) -> Peer {
        Peer {
            target,
            node: node.clone(),
            cluster_id: network.cluster_id.clone(),
            connector: network.connector.clone(),
            stream: None,
            correlation_id: 0,
        }
    }

    /// Sends `request` (UpdateRaftVoter v0) and returns the leader's answer.
    pub async fn update_voter(
        &mut self,
        request: &UpdateRaftVoterRequest,
        ttl: Duration,
    ) -> io::Result<UpdateRaftVoterResponse> {
        let correlation = self.next_correlation_id();
        let mut frame = BytesMut::new();
        encode_request(&mut frame, request, 0, correlation, Some(CLIENT_ID))
            .map_err(|e| io::Error::other(e.to_string()))?;
        let header_version = ApiKey::UpdateRaftVoter.response_header_version(0);
        let mut body = self
            .call::<openraft::error::Infallible>(frame, header_version, ttl)
            .await
            .map_err(|e| io::Error::other(e.to_string()))?;
        UpdateRaftVoterResponse::decode(&mut body, 0).map_err(|e| malformed(&e.to_string()))
    }

    fn next_correlation_id(&mut self) -> i32 {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        self.correlation_id
    }
}

fn check_error<E: std::error::Error>(code: i16) -> Result<(), RPCError<NodeId, VoterNode, E>> {
    if code == error_code::NONE {
        return Ok(());
    }
    Err(network_error(io::Error::other(format!(
        "the voter answered error code {code}"
    ))))
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        let body =
            encode_append_request(self.cluster_id.as_deref(), &rpc).map_err(network_error)?;
        let correlation = self.next_correlation_id();
        let frame =
            private_request(APPEND_ENTRIES_KEY, correlation, &body).map_err(network_error)?;
        let body = self.call(frame, 1, option.hard_ttl()).await?;
        let (code, resp) = decode_append_response(body).map_err(network_error)?;
        check_error(code)?;
        Ok(resp)
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        let body =
            encode_snapshot_request(self.cluster_id.as_deref(), &rpc).map_err(network_error)?;
        let correlation = self.next_correlation_id();
        let frame =
            private_request(INSTALL_SNAPSHOT_KEY, correlation, &body).map_err(network_error)?;
        let body = self.call(frame, 1, option.hard_ttl()).await?;
        let mut r = Reader(body);
        let code = r.i16().map_err(network_error)?;
        let vote = r.vote().map_err(network_error)?;
        check_error(code)?;
        Ok(InstallSnapshotResponse { vote })
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        let candidate = rpc.vote.leader_id.voted_for.unwrap_or_default();
        let (last_epoch, last_offset) = rpc
            .last_log_id
            .map_or((0, 0), |id| (id.leader_id.term as i32, id.index as i64 + 1));
        let request = KafkaVoteRequest {
            cluster_id: self.cluster_id.as_deref().map(Into::into),
            voter_id: self.target as i32,
            topics: vec![vote_request::TopicData {
                topic_name: METADATA_TOPIC.into(),
                partitions: vec![vote_request::PartitionData {
                    partition_index: 0,
                    replica_epoch: rpc.vote.leader_id.term.min(i32::MAX as u64) as i32,
                    replica_id: candidate as i32,
                    last_offset_epoch: last_epoch,
                    last_offset,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let correlation = self.next_correlation_id();
        let mut frame = BytesMut::new();
        encode_request(
            &mut frame,
            &request,
            VOTE_VERSION,
            correlation,
            Some(CLIENT_ID),
        )
        .map_err(|e| network_error(io::Error::other(e.to_string())))?;
        let header_version = ApiKey::Vote.response_header_version(VOTE_VERSION);
        let mut body = self.call(frame, header_version, option.hard_ttl()).await?;
        let response = KafkaVoteResponse::decode(&mut body, VOTE_VERSION)
            .map_err(|e| network_error(malformed(&e.to_string())))?;
        check_error(response.error_code)?;
        let partition = response
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == 0)
            .ok_or_else(|| network_error(malformed("Vote response without the partition")))?;
        check_error(partition.error_code)?;
        let term = partition.leader_epoch.max(0) as u64;
        let vote = if partition.vote_granted {
            rpc.vote
        } else if partition.leader_id >= 0 {
            Vote::new_committed(term, partition.leader_id as NodeId)
        } else {
            let mut vote = Vote::default();
            vote.leader_id.term = term;
            vote
        };
        Ok(VoteResponse {
            vote,
            vote_granted: partition.vote_granted,
            last_log_id: None,
        })
    }
}

/// Wall-clock milliseconds since the Unix epoch.
pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
