//! Start-up of a broker-only node of a cluster (`Config::is_cluster` without the
//! `controller` role): its metadata comes from the quorum's leader, fetched by an
//! observer ([`crate::cluster::observer`]) that first replays the local copy in
//! `metadata.log.dir`, as Kafka's `KafkaRaftServer` starts the `RaftManager` of a broker
//! before the broker itself. The metadata log directory must be formatted
//! (`gregor format`): its cluster id is the one every Fetch carries.

use crate::broker::StartError;
use crate::cluster::observer::{Observer, ObserverOptions};
use crate::config::Config;

/// Starts the observer of a broker-only cluster node; `None` for any other node.
pub async fn open(config: &Config) -> Result<Option<Observer>, StartError> {
    if !config.is_cluster() || config.is_controller() {
        return Ok(None);
    }
    let (_, meta) = crate::server_quorum::formatted_metadata_dir(config).await?;
    if config.controller_quorum_voters.is_empty()
        && config.controller_quorum_bootstrap_servers.is_empty()
    {
        return Err(StartError::Config(
            "a broker-only node of a cluster needs controller.quorum.voters or \
             controller.quorum.bootstrap.servers"
                .to_string(),
        ));
    }
    let mut options = ObserverOptions::from_config(config, &meta.cluster_id);
    options.connector = crate::security::node_client::NodeConnector::controller(config)
        .map_err(|e| StartError::Config(e.to_string()))?;
    let observer = Observer::start(options)
        .await
        .map_err(|e| StartError::Metadata(e.to_string()))?;
    tracing::info!(
        node = config.node_id,
        cluster = %meta.cluster_id,
        applied_offset = observer.applied_offset(),
        "following the metadata log as an observer"
    );
    Ok(Some(observer))
}
