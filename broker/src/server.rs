//! The accept loop: one task per connection, a shutdown signal broadcast to all of them.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::broker::{Broker, StartError};
use crate::config::Config;
use crate::connection;
use crate::storage::{LogManager, MaintenanceSchedule};

/// Runs the broker until `shutdown` completes, then closes every connection.
///
/// Refuses a configuration that asks for security the broker does not enforce
/// ([`Config::check_enforceable`]) before opening anything.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
    config.check_enforceable()?;
    let broker = tokio::task::spawn_blocking(move || Broker::open(config))
        .await
        .map_err(|e| StartError::Storage(format!("start-up task failed: {e}")))??;
    let mut listeners = Vec::new();
    for listener in broker.config.broker_listeners() {
        let address = listener.bind_address();
        let socket = TcpListener::bind(&address)
            .await
            .map_err(|source| StartError::Bind {
                listener: listener.name.clone(),
                address: address.clone(),
                source,
            })?;
        listeners.push((listener.name.clone(), socket));
    }
    let names: Vec<String> = listeners
        .iter()
        .map(|(name, socket)| match socket.local_addr() {
            Ok(addr) => format!("{name}://{addr}"),
            Err(_) => name.clone(),
        })
        .collect();
    tracing::info!(
        "gregor {} started: node {} of cluster {}, listening on {}, data in {}, {} topics loaded",
        env!("CARGO_PKG_VERSION"),
        broker.node_id,
        broker.cluster_id,
        names.join(", "),
        broker.data_dir().display(),
        broker.image().topics().count(),
    );

    let maintenance = LogManager::spawn_background_tasks(
        &broker,
        |b| &b.logs,
        MaintenanceSchedule::from_broker(&broker.config),
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    for (name, socket) in listeners {
        tasks.spawn(accept_loop(socket, name, broker.clone(), stop_rx.clone()));
    }
    shutdown.await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    maintenance.abort();
    let closing = broker.clone();
    let _ = tokio::task::spawn_blocking(move || closing.shutdown()).await;
    tracing::info!("stopped");
    Ok(())
}

async fn accept_loop(
    socket: TcpListener,
    listener: String,
    broker: Arc<Broker>,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = socket.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracing::debug!("connection from {peer} on {listener}");
                    connections.spawn(connection::serve(stream, peer, listener.clone(), broker.clone(), stop.clone()));
                }
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept on {listener} failed: {err}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = stop.changed() => break,
        }
    }
    while connections.join_next().await.is_some() {}
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
