//! The requests of one connection in flight together (issue 14, phase 2).
//!
//! Kafka's `SocketServer` mutes a channel from the moment it reads a request until its
//! response is sent, so a connection's requests are handled one at a time and answered in
//! order; clients rely on both (idempotent producers' sequence numbers, a Fetch after a
//! Produce, group and transaction requests in order). This pipeline keeps every guarantee
//! a client can observe and only overlaps what it cannot:
//!
//! * responses are written strictly in request order ([`Pipeline::next`] yields in order);
//! * a request starts only once the request before it passed its *order point*
//!   ([`crate::handlers::pipeline`]): for every request but Produce that is its completion,
//!   so handlers still run one at a time; a Produce passes it once its records are appended
//!   (readers and the producer state see them), before the `flush.messages` sync its
//!   acknowledgement waits for. So a later Produce to the same partition appends after it,
//!   in order, while its sync is in flight (and group commit shares the syncs), and a
//!   Fetch after it sees its records as it would after a serial Produce. acks=-1 is still
//!   answered only after the sync it confirms;
//! * SASL frames ([`crate::connection_auth`]: the exchange, a re-authentication, an expired
//!   session) start only with nothing in flight, so they see and change the connection's
//!   principal between requests, as before;
//! * a request that fails to decode stops the pipeline: nothing after it starts and the
//!   connection closes once the responses before it are written;
//! * at most [`PIPELINE_DEPTH`] requests are in flight; more wait unread in the socket;
//! * each request's `queued.max.request.bytes` share is held until its handler returns,
//!   as before, so a connection holds at most its requests in flight of the budget, and one
//!   that stops reading its responses holds none of it once its handlers are done;
//! * quotas (KIP-219): a throttled response is held back, or the connection muted after it,
//!   exactly as before; requests already started when the throttle was decided are not held
//!   back (Kafka would not have read them yet). Their responses are, as every response
//!   after the throttled one.
//!
//! When the connection closes (client gone, bad frame, shutdown) the requests in flight are
//! dropped: a Produce already in the blocking pool finishes its append and sync there, its
//! response unsent (as when a client disconnects during a Produce in Kafka).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::stream::{FuturesOrdered, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, oneshot};

use crate::connection::{CloseReason, handle_frame_throttled};
use crate::handlers::{self, RequestContext};
use crate::quotas::Throttle;

/// Requests in flight per connection: the default of Kafka's producer
/// `max.in.flight.requests.per.connection` (and the most an idempotent producer may have).
pub const PIPELINE_DEPTH: usize = 5;

/// A request's outcome: its response chunks (none for acks=0) and throttle, or why the
/// connection closes.
pub type Outcome = Result<(Option<Vec<Bytes>>, Throttle), CloseReason>;

type InFlight = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// One connection's requests in flight.
pub struct Pipeline {
    in_flight: FuturesOrdered<InFlight>,
    /// The order point of the request started last, until it passed it.
    gate: Option<oneshot::Receiver<()>>,
    /// A request failed: nothing more starts.
    failed: Arc<AtomicBool>,
}

impl Default for Pipeline {
    fn default() -> Self {
        Self::new()
    }
}

impl Pipeline {
    /// An empty pipeline.
    pub fn new() -> Self {
        Pipeline {
            in_flight: FuturesOrdered::new(),
            gate: None,
            failed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// No request in flight.
    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// Whether the next request may start now: room in the pipeline, the last request past
    /// its order point and none failed.
    pub fn may_start(&mut self) -> bool {
        if self.in_flight.len() >= PIPELINE_DEPTH || self.failed.load(Ordering::Acquire) {
            return false;
        }
        match self.gate.as_mut().map(|gate| gate.try_recv()) {
            None => true,
            Some(Err(oneshot::error::TryRecvError::Empty)) => false,
            Some(_) => {
                self.gate = None;
                true
            }
        }
    }

    /// Starts a request (decode, handler, encode); `held` is its share of
    /// `queued.max.request.bytes`, given back when its handler returns.
    pub fn start(&mut self, ctx: RequestContext, frame: Bytes, held: Option<OwnedSemaphorePermit>) {
        let failed = self.failed.clone();
        let (request, gate) =
            handlers::pipeline::scope(async move { handle_frame_throttled(&ctx, frame).await });
        self.in_flight.push_back(Box::pin(async move {
            let outcome = request.await;
            drop(held);
            if outcome.is_err() {
                failed.store(true, Ordering::Release);
            }
            outcome
        }));
        self.gate = Some(gate);
    }

    /// The next outcome in request order, if it is ready now.
    pub fn ready(&mut self) -> Option<Outcome> {
        if self.in_flight.is_empty() {
            return None;
        }
        self.in_flight.next().now_or_never().flatten()
    }

    /// Waits for the next outcome in request order, or for the last request started to
    /// pass its order point (pending forever when there is neither to wait for).
    pub async fn event(&mut self) -> Event {
        let Pipeline {
            in_flight, gate, ..
        } = self;
        let event = tokio::select! {
            Some(outcome) = in_flight.next(), if !in_flight.is_empty() => Event::Done(outcome),
            _ = async {
                match gate.as_mut() {
                    Some(gate) => {
                        let _ = gate.await;
                    }
                    None => std::future::pending().await,
                }
            }, if gate.is_some() => Event::Passed,
            else => std::future::pending().await,
        };
        if matches!(event, Event::Passed) {
            *gate = None;
        }
        event
    }
}

/// What [`Pipeline::event`] saw.
pub enum Event {
    /// The next request in order finished.
    Done(Outcome),
    /// The last request started passed its order point: the next may start.
    Passed,
}
