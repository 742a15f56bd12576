//! The order point of a request on a pipelined connection (issue 14, phase 2).
//!
//! A connection starts its next request only once the one before has passed its *order
//! point*: the moment after which nothing the next request does can be observed by, or
//! reorder against, this one. For every request that is its completion, so handlers run
//! one at a time per connection, as Kafka's `SocketServer` (which mutes a channel while a
//! request is in flight) runs them. A Produce passes it earlier, once its records are
//! written to the logs (visible to readers and to producer-state checks) but before the
//! `flush.messages` sync that its acknowledgement waits for: the next request (another
//! Produce to the same partition, a Fetch) then sees the log exactly as after a serial
//! Produce, and only the sync overlaps. Responses stay in request order (the connection
//! writes them in order), so a client can tell the difference only by speed.
//!
//! The connection runs each request inside [`scope`]; a handler calls [`pass`] (or takes
//! the signal with [`take`] to send it from a blocking task). A handler that never calls it
//! passes its order point when it completes or is dropped.

use std::future::Future;
use std::sync::Mutex;

use tokio::sync::oneshot;

tokio::task_local! {
    static ORDER_POINT: OrderPoint;
}

/// The signal of one request's order point.
#[derive(Debug)]
pub struct OrderPoint(Mutex<Option<oneshot::Sender<()>>>);

/// The signal a handler sends once it passed its order point (from any thread).
#[derive(Debug)]
pub struct Passed(oneshot::Sender<()>);

impl Passed {
    /// Signals the order point.
    pub fn send(self) {
        let _ = self.0.send(());
    }
}

/// Runs `request` with an order point; the receiver completes (with `Ok` or, once the
/// request finished without signalling, with `Err`) when it was passed.
pub fn scope<F: Future>(request: F) -> (impl Future<Output = F::Output>, oneshot::Receiver<()>) {
    let (tx, rx) = oneshot::channel();
    let point = OrderPoint(Mutex::new(Some(tx)));
    (ORDER_POINT.scope(point, request), rx)
}

/// Takes the current request's order-point signal, if it runs on a pipelined connection
/// and has not passed it yet.
pub fn take() -> Option<Passed> {
    ORDER_POINT
        .try_with(|point| {
            point
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
        })
        .ok()
        .flatten()
        .map(Passed)
}

/// Signals that the current request passed its order point.
pub fn pass() {
    if let Some(passed) = take() {
        passed.send();
    }
}
