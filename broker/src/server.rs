//! The accept loop: one task per connection, a shutdown signal broadcast to all of them.
//!
//! Each listener accepts only while [`ConnectionQuotas`] has a slot for it (otherwise new
//! connections wait in the listen backlog, as in Kafka), waits after a connection that
//! takes the broker or the listener over its connection creation rate, closes after a
//! delay a connection from an address over its `connection_creation_rate`
//! (`connection_rate.rs`), and closes at once a connection from an address over its
//! connection count. A failing `accept` (out of file descriptors, say) is
//! retried after a pause; the connections already open are served by their own tasks
//! meanwhile, and accepting resumes once descriptors are free again.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::broker::{Broker, StartError};
use crate::config::Config;
use crate::connection_quotas::ConnectionQuotas;
use crate::storage::{LogManager, MaintenanceSchedule};

/// Runs the broker until `shutdown` completes, then closes every connection.
///
/// Refuses a configuration that asks for security the broker does not enforce
/// ([`Config::check_enforceable`]) before opening anything.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
    config.check_enforceable()?;
    // Keystores, truststores, JAAS users: read and checked before anything is opened.
    let security = crate::security::ListenerSecurity::for_config(&config)?;
    // A cluster controller's metadata quorum first (`server_quorum.rs`).
    let quorum = crate::server_quorum::open(&config).await?;
    // A broker-only node of a cluster follows the metadata log (`server_observer.rs`).
    let observer = crate::server_observer::open(&config).await?;
    let broker =
        tokio::task::spawn_blocking(move || Broker::open_following(config, quorum, observer))
            .await
            .map_err(|e| StartError::Storage(format!("start-up task failed: {e}")))??;
    let mut listeners = Vec::new();
    // The controller listeners too when this node is a controller: brokers register and
    // heartbeat there (`handlers/controller_apis.rs`).
    let controller_listeners = broker
        .config
        .controller_listeners()
        .filter(|_| broker.config.is_controller());
    for listener in broker.config.broker_listeners().chain(controller_listeners) {
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
    // The controller listeners count against quotas of their own, as Kafka's controller
    // has a socket server of its own (and they do not make PLAINTEXT a "protected"
    // inter-broker listener of the broker's).
    let is_controller_listener =
        |name: &str| broker.config.is_controller() && broker.config.is_controller_listener(name);
    let served: Vec<String> = listeners
        .iter()
        .map(|(name, _)| name.clone())
        .filter(|name| !is_controller_listener(name))
        .collect();
    let controller_served: Vec<String> = listeners
        .iter()
        .map(|(name, _)| name.clone())
        .filter(|name| is_controller_listener(name))
        .collect();
    // With the dynamic broker configs already in the metadata log on top.
    let quota_config = crate::dynamic_broker_config::effective_config(
        &broker.config,
        &broker.image(),
        broker.node_id,
    );
    let (quotas, controller_quotas) = tokio::task::spawn_blocking(move || {
        Ok::<_, String>((
            ConnectionQuotas::new(&quota_config, &served)?,
            ConnectionQuotas::new(&quota_config, &controller_served)?,
        ))
    })
    .await
    .map_err(|e| StartError::Storage(format!("start-up task failed: {e}")))?
    .map_err(StartError::Config)?;
    let quotas = Arc::new(quotas);
    let controller_quotas = Arc::new(controller_quotas);
    let _ = broker.connection_quotas.set(quotas.clone());
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
    // The log cleaner's own OS threads (log compaction); stopped before the logs close.
    let cleaner = crate::storage::cleaner::LogCleaner::start(
        &broker,
        |b| &b.logs,
        crate::storage::cleaner::CleanerConfig::from_broker(&broker.config),
    );

    // Kafka's `isr-expiration`: a no-op until the metadata makes this broker a leader
    // of replicated partitions.
    let isr_expiration = broker.replicas.spawn_isr_expiration();
    // In a cluster, the committed metadata makes this broker's local state
    // (cluster/publisher.rs); a single node makes it on the request path.
    let publisher = broker
        .config
        .is_cluster()
        .then(|| crate::cluster::publisher::spawn(&broker, broker.controller.subscribe()));

    // In a cluster: register with the active controller and heartbeat, forward admin
    // requests, send ISR changes (Kafka's BrokerServer.startup, after the socket server).
    if broker.config.is_cluster() {
        let isr_changes = broker
            .pending_isr_changes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let link = crate::cluster::controller_link::ControllerLink::start(
            &broker.config,
            &broker.cluster_id,
            &broker.controller,
            &broker.replicas,
            isr_changes,
            // The epoch of the last clean shutdown (KIP-966), -1 after a crash.
            broker.logs.previous_broker_epoch(),
        )
        .map_err(StartError::Config)?;
        let _ = broker.controller_link.set(link);
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    // Brokers whose sessions expire are fenced (Kafka's `maybeFenceStaleBroker`).
    tasks.spawn(crate::cluster::controller::run_session_timer(
        broker.controller.clone(),
        stop_rx.clone(),
    ));
    // A cluster controller activates itself whenever it becomes the quorum's leader.
    tasks.spawn(crate::cluster::controller::run_activation(
        broker.controller.clone(),
        stop_rx.clone(),
    ));
    for (name, socket) in listeners {
        let listener_security = security
            .get(&name)
            .cloned()
            .unwrap_or_else(crate::security::ListenerSecurity::plaintext);
        let listener_quotas = if is_controller_listener(&name) {
            controller_quotas.clone()
        } else {
            quotas.clone()
        };
        tasks.spawn(accept_loop(
            socket,
            name,
            listener_security,
            broker.clone(),
            listener_quotas,
            stop_rx.clone(),
        ));
    }
    shutdown.await;
    tracing::info!("shutting down");
    // Kafka's BrokerServer.shutdown: the controlled shutdown before the listeners close.
    if let Some(link) = broker.controller_link.get() {
        link.shutdown().await;
    }
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    maintenance.abort();
    isr_expiration.abort();
    if let Some(publisher) = publisher {
        publisher.abort();
    }
    broker.replicas.shutdown();
    if let Some(quorum) = broker.controller.quorum() {
        quorum.shutdown().await;
    }
    let _ = tokio::task::spawn_blocking(move || cleaner.shutdown()).await;
    let closing = broker.clone();
    let _ = tokio::task::spawn_blocking(move || closing.shutdown()).await;
    tracing::info!("stopped");
    Ok(())
}

async fn accept_loop(
    socket: TcpListener,
    listener: String,
    security: crate::security::ListenerSecurity,
    broker: Arc<Broker>,
    quotas: Arc<ConnectionQuotas>,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        // Kafka's acceptor waits for a slot (max.connections) before taking the next one.
        let next = async {
            quotas.wait_for_slot(&listener).await;
            socket.accept().await
        };
        tokio::select! {
            accepted = next => match accepted {
                Ok((stream, peer)) => {
                    // Kafka's ConnectionQuotas.inc: the creation rates first (the acceptor
                    // waits; a throttled address's connection is closed after its delay),
                    // then the connection counts.
                    let delay = quotas.record_connection(&listener);
                    if !delay.is_zero() {
                        tracing::debug!("delaying connection from {peer} on {listener} by {delay:?}");
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {}
                            _ = stop.changed() => break,
                        }
                    }
                    let ip_limit = crate::connection_rate::ip_rate_limit(
                        broker.image().client_quotas(),
                        peer.ip(),
                    );
                    if let Some(close_after) = quotas.record_ip_connection(&listener, peer.ip(), ip_limit) {
                        tracing::debug!("throttled connection from {peer} on {listener}: closing it in {close_after:?}");
                        let mut stop = stop.clone();
                        connections.spawn(async move {
                            tokio::select! {
                                _ = tokio::time::sleep(close_after) => {}
                                _ = stop.changed() => {}
                            }
                            drop(stream);
                        });
                        continue;
                    }
                    let slot = match quotas.register(&listener, peer.ip()) {
                        Ok(slot) => slot,
                        Err(refused) => {
                            tracing::info!("rejected connection from {peer} on {listener}: {refused}");
                            drop(stream);
                            continue;
                        }
                    };
                    tracing::debug!("connection from {peer} on {listener}");
                    let serve = crate::connection_auth::serve_secured(
                        stream,
                        peer,
                        listener.clone(),
                        security.clone(),
                        broker.clone(),
                        stop.clone(),
                    );
                    connections.spawn(async move {
                        serve.await;
                        drop(slot);
                    });
                }
                Err(err) => {
                    // Out of file descriptors (EMFILE) and the like: back off instead of
                    // spinning; the open connections keep being served by their tasks.
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
